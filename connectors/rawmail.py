"""Whole raw messages (files on disk) into `MessageFacts`.

The IMAP connector asks the server for header fields and the one body part it needs;
here the whole message is at hand (an .eml file, an mbox, a Maildir), so the same facts
are read from the bytes: the header block through `connectors.headers`, the first
text/plain part for the excerpt, and the machine-readable part of a multipart/report.
`mail_files` walks the paths a user names (`relight classify PATH...`). Nothing here
raises on malformed mail; unreadable files are reported as such by the caller.
"""

from __future__ import annotations

import email
import email.message
import email.policy
import mailbox
import re
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

from connectors.base import DeliveryReport, MessageFacts
from connectors.headers import decode_part, facts_from_headers, parse_delivery_report

__all__ = ["MAX_BODY_BYTES", "facts_from_bytes", "first_text", "mail_files"]

MAX_BODY_BYTES = 64 * 1024  # of the first text part: enough for any reply's new text
_HEADER_END = re.compile(rb"\r?\n\r?\n|\r\r")
_MBOX_START = b"From "


def facts_from_bytes(
    remote_id: str,
    raw: bytes,
    *,
    received_at: datetime | None = None,
    excerpt: Callable[[str], str | None] | None = None,
) -> MessageFacts:
    """The facts of one whole message. `excerpt` turns the first text part into the
    stored excerpt (None: keep none)."""
    match = _HEADER_END.search(raw)
    header_block = raw[: match.end()] if match else raw
    parsed = email.message_from_bytes(raw, policy=email.policy.compat32)
    text = first_text(parsed) if excerpt is not None else None
    return facts_from_headers(
        remote_id,
        header_block,
        received_at=received_at,
        size=len(raw),
        thread_id=None,
        excerpt=excerpt(text) if excerpt is not None and text else None,
        report=_report(parsed),
    )


def first_text(message: email.message.Message) -> str | None:
    """The decoded start of the first text/plain part that is not an attachment."""
    for part in message.walk():
        if part.get_content_type() != "text/plain":
            continue
        if (part.get("Content-Disposition") or "").lower().startswith("attachment"):
            continue
        # The transfer encoding undone, as bytes: get_payload(decode=False) would hand an
        # 8-bit body back already charset-decoded (with U+FFFD for what did not fit).
        data = part.get_payload(decode=True)
        if not isinstance(data, bytes):
            continue
        return decode_part(
            data[:MAX_BODY_BYTES],
            "8bit",
            part.get_content_charset() or "us-ascii",
            complete=len(data) <= MAX_BODY_BYTES,
        )
    return None


def _report(message: email.message.Message) -> DeliveryReport | None:
    if message.get_content_type() != "multipart/report":
        return None
    report_type = (message.get_param("report-type") or "").__str__().lower()
    for part in message.walk():
        if part.get_content_type() in (
            "message/delivery-status",
            "message/disposition-notification",
        ):
            body = part.as_bytes() if part.is_multipart() else _raw_payload(part)
            return parse_delivery_report(report_type or part.get_content_subtype(), body)
    return DeliveryReport(report_type=report_type or "unknown")


def _raw_payload(part: email.message.Message) -> bytes:
    payload = part.get_payload(decode=False)
    if isinstance(payload, str):
        return payload.encode("ascii", "surrogateescape")
    # message/* parts are parsed into sub-messages by the stdlib; give back their text
    return b"\n".join(sub.as_bytes() for sub in payload if isinstance(sub, email.message.Message))


def mail_files(paths: list[Path]) -> Iterator[tuple[str, bytes | OSError]]:
    """(label, raw bytes) of every message in the paths: .eml files, mbox files, Maildirs
    (a folder with cur/ and new/), and folders of such files. An unreadable file yields
    its OSError in place of the bytes."""
    for path in paths:
        yield from _walk(path)


def _walk(path: Path) -> Iterator[tuple[str, bytes | OSError]]:
    if path.is_dir():
        if (path / "cur").is_dir() and (path / "new").is_dir():
            for sub in ("new", "cur"):
                for entry in sorted((path / sub).iterdir()):
                    yield from _file(entry)
            return
        for entry in sorted(path.iterdir()):
            if not entry.name.startswith("."):
                yield from _walk(entry)
        return
    yield from _file(path)


def _file(path: Path) -> Iterator[tuple[str, bytes | OSError]]:
    try:
        with path.open("rb") as handle:
            start = handle.read(len(_MBOX_START))
    except OSError as exc:
        yield str(path), exc
        return
    if start != _MBOX_START:
        try:
            yield str(path), path.read_bytes()
        except OSError as exc:
            yield str(path), exc
        return
    box = mailbox.mbox(path, create=False)
    try:
        for index, key in enumerate(box.iterkeys()):
            yield f"{path}#{index}", box.get_bytes(key)
    except OSError as exc:
        yield str(path), exc
    finally:
        box.close()
