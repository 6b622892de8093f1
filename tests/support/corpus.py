"""Raw mail files -> `rules.message.Message`, for measuring classification on real mail.

A stand-in for what the connectors and the daemon do, built only on the stdlib `email`
package (compat32 policy) so the corpus test does not depend on connector internals:
the classification headers, subject, From, Date, the start of the first text/plain part
(quoted history cut, as the connectors do) and the machine-readable part of a
multipart/report. It never raises on garbage: what cannot be read is left empty.
"""

from __future__ import annotations

import email
import email.errors
import email.header
import email.message
import email.policy
import email.utils
import mailbox
import re
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

from connectors.base import CLASSIFICATION_HEADERS
from rules.message import Address, DeliveryReport, Folder, Message

__all__ = ["CORPORA", "iter_mbox", "message_from_bytes", "read_file"]

CORPORA = Path(__file__).resolve().parents[3] / "shared" / "corpora"

EXCERPT_CHARS = 2000
FALLBACK_TIME = datetime(2001, 1, 1, tzinfo=UTC)  # for the few files without a usable Date

_QUOTE_HEADER = re.compile(
    r"^\s*(?:-{3,}\s*(?:original message|urspr[üu]ngliche nachricht|message d'origine|"
    r"forwarded (?:message|by)|mensaje original)|_{10,}\s*$|on .{0,200} wrote:\s*$|"
    r"from:\s.+\s(?:sent|date):)",
    re.IGNORECASE,
)
_ID = re.compile(r"<([^<>\s]+)>")


def read_file(path: Path, folder: Folder = Folder.INBOX) -> Message:
    """One .eml / .txt file as a Message."""
    return message_from_bytes(path.read_bytes(), folder)


def iter_mbox(path: Path, folder: Folder = Folder.INBOX) -> Iterator[tuple[str, Message]]:
    """Each message of an mbox file, keyed `path#index`."""
    box = mailbox.mbox(path, factory=None, create=False)
    try:
        for index, key in enumerate(box.iterkeys()):
            yield f"{path.name}#{index}", message_from_bytes(box.get_bytes(key), folder)
    finally:
        box.close()


def message_from_bytes(raw: bytes, folder: Folder = Folder.INBOX) -> Message:
    """Parse one message; never raises on malformed input.

    Blank lines before the first header (a few fixtures were saved with one) are dropped:
    a server never hands those out, and they would hide every header.
    """
    parsed = email.message_from_bytes(raw.lstrip(b" \t\r\n"), policy=email.policy.compat32)
    headers = tuple(
        (name.lower(), _text(value))
        for name, value in parsed.items()
        if name.lower() in CLASSIFICATION_HEADERS
    )
    return Message(
        at=_date(parsed.get("date")),
        folder=folder,
        message_id=_first_id(parsed.get("message-id")),
        in_reply_to=_first_id(parsed.get("in-reply-to")),
        references=tuple(_ID.findall(_text(parsed.get("references", "")))),
        sender=_address(parsed.get("from")),
        to=_addresses(parsed.get_all("to", [])),
        cc=_addresses(parsed.get_all("cc", [])),
        subject=" ".join(_text(parsed.get("subject", "")).split()),
        headers=headers,
        excerpt=_excerpt(parsed),
        report=_report(parsed),
    )


def _text(value: object) -> str:
    """A header value as text: RFC 2047 words decoded, undecodable bytes replaced."""
    if value is None:
        return ""
    try:
        return str(email.header.make_header(email.header.decode_header(str(value))))
    except (ValueError, LookupError, UnicodeError, email.errors.HeaderParseError):
        return str(value)


def _date(value: object) -> datetime:
    if value is None:
        return FALLBACK_TIME
    try:
        parsed = email.utils.parsedate_to_datetime(str(value))
    except (TypeError, ValueError, IndexError, OverflowError):
        return FALLBACK_TIME
    if parsed is None:
        return FALLBACK_TIME
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _first_id(value: object) -> str | None:
    found = _ID.findall(_text(value))
    return found[0] if found else None


def _clean(email_address: str) -> str | None:
    cleaned = email_address.strip().strip("<>").strip().lower()
    if not cleaned or any(character.isspace() for character in cleaned):
        return None
    return cleaned


MAX_ADDRESS_FIELD = 64 * 1024  # beyond this an address list is junk (the connectors cap it too)


def _address(value: object) -> Address | None:
    addresses = _addresses([] if value is None else [value])
    return addresses[0] if addresses else None


def _addresses(values: Sequence[object]) -> tuple[Address, ...]:
    texts = [text for value in values if len(text := _text(value)) <= MAX_ADDRESS_FIELD]
    try:
        pairs = email.utils.getaddresses(texts)
    except (RecursionError, ValueError, IndexError):
        return ()
    return tuple(Address(cleaned, name) for name, found in pairs if (cleaned := _clean(found)))


def _part_text(part: email.message.Message) -> str:
    try:
        payload = part.get_payload(decode=True)
    except (ValueError, LookupError, AssertionError):
        payload = None
    if not isinstance(payload, bytes):
        raw = part.get_payload()
        return raw if isinstance(raw, str) else ""
    charset = part.get_content_charset() or "utf-8"
    try:
        return payload.decode(charset, "replace")
    except LookupError:
        return payload.decode("latin-1", "replace")


def _excerpt(parsed: email.message.Message) -> str | None:
    for part in parsed.walk():
        if part.get_content_type() != "text/plain" or part.get_filename():
            continue
        kept: list[str] = []
        for line in _part_text(part).replace("\r\n", "\n").replace("\r", "\n").split("\n"):
            if line.lstrip().startswith(">"):
                continue
            if _QUOTE_HEADER.match(line):
                break
            kept.append(line.rstrip())
        text = re.sub(r"\n{3,}", "\n\n", "\n".join(kept)).strip()[:EXCERPT_CHARS]
        return text or None
    return None


def _report(parsed: email.message.Message) -> DeliveryReport | None:
    if parsed.get_content_type() != "multipart/report":
        return None
    report_type = (parsed.get_param("report-type") or "").__str__().strip().lower()
    action: str | None = None
    recipients: list[str] = []
    for part in parsed.walk():
        if part.get_content_type() not in (
            "message/delivery-status",
            "message/disposition-notification",
            "message/feedback-report",
        ):
            continue
        if not report_type:
            report_type = part.get_content_type().partition("/")[2]
        for name, value in _report_fields(part):
            if name == "action" and action is None and value.split():
                action = value.split()[0].lower()
            elif name == "final-recipient":
                address = _clean(value.split(";", 1)[-1])
                if address and address not in recipients:
                    recipients.append(address)
    if not report_type:
        return None
    return DeliveryReport(report_type=report_type, action=action, recipients=tuple(recipients))


def _report_fields(part: email.message.Message) -> list[tuple[str, str]]:
    payload = part.get_payload()
    if isinstance(payload, list):
        return [
            (name.lower(), _text(value))
            for block in payload
            if isinstance(block, email.message.Message)
            for name, value in block.items()
        ]
    fields = []
    for line in re.sub(r"\n[ \t]+", " ", _part_text(part).replace("\r", "")).split("\n"):
        name, colon, value = line.partition(":")
        if colon:
            fields.append((name.strip().lower(), value.strip()))
    return fields
