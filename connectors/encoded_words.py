"""RFC 2047 encoded words (`=?charset?Q?...?=`) in header text, decoded; never raising.

Header fields Relight reads (subjects, display names) may carry encoded words in any
charset, broken base64, or charsets no codec knows. `decode_words` decodes what it can,
keeps what it cannot as written, and names the problem in `defects`.
"""

from __future__ import annotations

import binascii
import re

__all__ = ["decode_words"]

_ENCODED_WORD = re.compile(r"=\?([^?\s]*)\?([bBqQ])\?(.*?)\?=")


def decode_words(text: str, defects: list[str] | None = None) -> str:
    """Decode RFC 2047 encoded words; unknown charsets and broken payloads never raise.

    Adjacent words in one charset are joined before decoding, so a character split over
    two words (common with long subjects) comes out whole.
    """
    if "=?" not in text:
        return text
    out: list[str] = []
    pending_charset: str | None = None
    pending: list[bytes] = []
    position = 0

    def flush() -> None:
        nonlocal pending_charset
        if pending_charset is not None:
            out.append(_decode_bytes(b"".join(pending), pending_charset, defects))
            pending.clear()
            pending_charset = None

    for match in _ENCODED_WORD.finditer(text):
        gap = text[position : match.start()]
        if gap and (pending_charset is None or gap.strip()):
            flush()
            out.append(gap)
        charset = match.group(1).split("*", 1)[0].lower()
        payload = _word_payload(match.group(2), match.group(3), defects)
        if payload is None:
            flush()
            out.append(match.group(0))
        else:
            if charset != pending_charset:
                flush()
                pending_charset = charset
            pending.append(payload)
        position = match.end()
    flush()
    out.append(text[position:])
    return "".join(out)


def _word_payload(encoding: str, encoded: str, defects: list[str] | None) -> bytes | None:
    data = encoded.encode("utf-8", "surrogateescape")
    if encoding in "qQ":
        return binascii.a2b_qp(data, header=True)
    data = re.sub(rb"[^A-Za-z0-9+/]", b"", data)
    if len(data) % 4 == 1:
        data = data[:-1]  # a stray character: the rest still decodes
    try:
        return binascii.a2b_base64(data + b"=" * (-len(data) % 4))
    except binascii.Error:
        if defects is not None:
            defects.append("encoded word: broken base64 kept as text")
        return None


def _decode_bytes(data: bytes, charset: str, defects: list[str] | None) -> str:
    if charset in ("", "unknown-8bit", "x-unknown", "unknown", "none"):
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            return data.decode("latin-1")
    try:
        return data.decode(charset, "replace")
    except Exception:  # unknown or non-text codecs, codec bugs on hostile input
        if defects is not None:
            defects.append(f"encoded word: unknown charset {charset[:40]!r}")
        return data.decode("utf-8", "replace")
