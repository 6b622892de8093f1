"""Raw header bytes -> the plain fields of `MessageFacts`; pure, fast and never raising.

Every connector that sees raw RFC 5322 headers (the IMAP header FETCH, Maildir files)
turns them into facts here. The input is whatever a server or a file holds: CRLF, LF or
CR-only line endings, raw 8-bit bytes, RFC 2047 words in charsets nobody has heard of,
dates that are not dates, 200 KB subjects. Nothing in it may raise: what cannot be read is
left empty and named in `defects`, so one broken message never stops a mailbox sync.

Theory of operation. The header block is unfolded and split by hand, and only the fields
Relight keeps are decoded: the stdlib `email` parser with `policy.default` is accurate
but costs ~1 ms a message, and a sync reads tens of thousands of them. The expensive
helpers (`email.utils.getaddresses` and `parsedate_to_datetime`, the RFC 2047 decoder of
`connectors.encoded_words`) run only when the cheap form does not fit: the common
`Name <addr>` and bare `addr` shapes and the usual Date form are matched by regexes.
Caps keep hostile input bounded: the subject, the number of references and addresses, and
the classification header values are truncated (with a defect) rather than kept whole.

The same module reads the two small body parts a connector may fetch for an inbound
message: the start of the first text/plain part (`decode_part`; `rules.excerpt` keeps its
new text) and the machine-readable part of a multipart/report (`parse_delivery_report`).
"""

from __future__ import annotations

import binascii
import codecs
import functools
import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta, timezone
from email.utils import getaddresses, parsedate_to_datetime
from typing import NamedTuple

from connectors.base import CLASSIFICATION_HEADERS, Address, DeliveryReport, MessageFacts
from connectors.encoded_words import decode_words

__all__ = [
    "MAX_ADDRESSES",
    "MAX_REFERENCES",
    "MAX_SUBJECT_CHARS",
    "MONTHS",
    "HeaderFields",
    "decode_words",
    "facts_from_headers",
    "fixed_zone",
    "parse_delivery_report",
    "parse_header_block",
]

MAX_SUBJECT_CHARS = 1000
MAX_REFERENCES = 200
MAX_ADDRESSES = 500
MAX_HEADER_VALUE_CHARS = 1000  # classification header values
MAX_CLASSIFICATION_HEADERS = 100
MAX_ADDRESS_FIELD_BYTES = 64 * 1024  # beyond this an address list is junk, not people
MAX_CACHED_ADDRESS_BYTES = 512
MAX_ID_CHARS = 998  # RFC 5322 line length: no real Message-ID is longer

_ADDRESS_FIELDS = (b"from", b"to", b"cc", b"reply-to")
_SINGLE_FIELDS = (b"message-id", b"in-reply-to", b"references", b"date", b"subject")
_CLASSIFICATION = frozenset(name.encode() for name in CLASSIFICATION_HEADERS)
_WANTED = frozenset(_ADDRESS_FIELDS) | frozenset(_SINGLE_FIELDS) | _CLASSIFICATION

_FOLD = (b" ", b"\t")
_ANGLE_ID = re.compile(r"<([^<>]*)>")
_WHITESPACE = re.compile(r"\s+")
# The shapes nearly every address list is made of; anything else goes to getaddresses.
_ADDR = r'([^\s<>,;:"()\[\]\\]+)'
_ADDRESS_ITEM = re.compile(
    rf'\s*(?:"((?:[^"\\]|\\.)*)"\s*<{_ADDR}>|([^<>,;:"()\[\]\\@]*?)\s*<{_ADDR}>|<?{_ADDR}>?)?'
    r"\s*(?:,|\Z)"
)
_SINGLE_ADDRESS = re.compile(
    rf'\s*(?:(?:"((?:[^"\\]|\\.)*)"|([^<>,;:"()\[\]\\@]*?))\s*<{_ADDR}>|<?{_ADDR}>?)\s*'
)
_ADDR_SPEC = re.compile(r'[^\s<>,;:"()\[\]\\]+')

# The date form nearly every mail carries. Years below 1000 are left to the real parser
# (it reads two- and three-digit years its own way), as are named zones (GMT, EST).
_DATE = re.compile(
    rb"(?:[A-Za-z]{3}, ?)?(\d{1,2}) ([A-Za-z]{3}) ([1-9]\d{3}) (\d\d):(\d\d)(?::(\d\d))? "
    rb"([+-])(\d\d)(\d\d)(?:[ \t].*)?",
    re.DOTALL,
)
MONTHS = {  # three-letter English month names, as IMAP and RFC 5322 dates write them
    name: number
    for number, name in enumerate(
        (b"jan", b"feb", b"mar", b"apr", b"may", b"jun",
         b"jul", b"aug", b"sep", b"oct", b"nov", b"dec"),
        start=1,
    )
}  # fmt: skip
_QUOTED_PAIR = re.compile(r"\\(.)")


class HeaderFields(NamedTuple):
    """The facts one header block holds (everything of `MessageFacts` a header gives)."""

    message_id: str | None
    in_reply_to: str | None
    references: tuple[str, ...]
    sender: Address | None
    to: tuple[Address, ...]
    cc: tuple[Address, ...]
    reply_to: tuple[Address, ...]
    date: datetime | None
    subject: str
    headers: tuple[tuple[str, str], ...]
    defects: tuple[str, ...]


def parse_header_block(raw: bytes) -> HeaderFields:
    """Read the fields Relight keeps from a raw header block (or a whole message).

    Never raises. Anything unreadable is left empty and named in `defects`.
    """
    defects: list[str] = []
    first, addresses, classification = _collect(_split_fields(raw, defects), defects)
    message_id = _single_id(first.get(b"message-id"), "message-id", defects, required=True)
    in_reply_to = _single_id(first.get(b"in-reply-to"), "in-reply-to", defects, required=False)
    references = _references(first.get(b"references"), defects)
    date = _date(first.get(b"date"), defects)
    subject = ""
    if b"subject" in first:
        subject = _clean_space(decode_words(_text(first[b"subject"], b"subject", defects), defects))
        if len(subject) > MAX_SUBJECT_CHARS:
            defects.append("subject: truncated")
            subject = subject[:MAX_SUBJECT_CHARS]

    senders = _address_field(addresses.get(b"from"), "from", defects)
    if len(addresses.get(b"from", ())) > 1:
        defects.append("from: repeated, first kept")
    return HeaderFields(
        message_id=message_id,
        in_reply_to=in_reply_to,
        references=references,
        sender=senders[0] if senders else None,
        to=_address_field(addresses.get(b"to"), "to", defects),
        cc=_address_field(addresses.get(b"cc"), "cc", defects),
        reply_to=_address_field(addresses.get(b"reply-to"), "reply-to", defects),
        date=date,
        subject=subject,
        headers=tuple(classification),
        defects=tuple(defects),
    )


def _collect(
    fields: list[tuple[bytes, bytes]], defects: list[str]
) -> tuple[dict[bytes, bytes], dict[bytes, list[bytes]], list[tuple[str, str]]]:
    """Sort the fields: single-valued (first kept), address lists, classification."""
    first: dict[bytes, bytes] = {}
    addresses: dict[bytes, list[bytes]] = {}
    classification: list[tuple[str, str]] = []
    for name, value in fields:
        if name in _CLASSIFICATION:
            if len(classification) < MAX_CLASSIFICATION_HEADERS:
                text = _clean_space(_text(value, name, defects))
                if len(text) > MAX_HEADER_VALUE_CHARS:
                    defects.append(f"{name.decode()}: value truncated")
                    text = text[:MAX_HEADER_VALUE_CHARS]
                classification.append((name.decode(), text))
        elif name in _ADDRESS_FIELDS:
            addresses.setdefault(name, []).append(value)
        elif name not in first:
            first[name] = value
        elif name == b"references":  # some clients split References over several fields
            first[name] += b" " + value
        else:
            defects.append(f"{name.decode()}: repeated, first kept")
    return first, addresses, classification


def facts_from_headers(
    remote_id: str,
    raw_headers: bytes,
    *,
    received_at: datetime | None,
    size: int | None,
    thread_id: str | None,
    excerpt: str | None = None,
    report: DeliveryReport | None = None,
    extra_defects: Iterable[str] = (),
) -> MessageFacts:
    """One message's facts from its raw header block and what the server said about it."""
    fields = parse_header_block(raw_headers)
    return MessageFacts(
        remote_id=remote_id,
        message_id=fields.message_id,
        in_reply_to=fields.in_reply_to,
        references=fields.references,
        sender=fields.sender,
        to=fields.to,
        cc=fields.cc,
        reply_to=fields.reply_to,
        date=fields.date,
        received_at=received_at,
        subject=fields.subject,
        thread_id=thread_id,
        headers=fields.headers,
        size=size,
        excerpt=excerpt,
        report=report,
        defects=fields.defects + tuple(extra_defects),
    )


# -- splitting and unfolding --------------------------------------------------------------


def _split_fields(raw: bytes, defects: list[str]) -> list[tuple[bytes, bytes]]:
    """(lower-case name, unfolded raw value) of each wanted field, in order."""
    if b"\r" in raw:
        raw = raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    end = raw.find(b"\n\n")
    if end >= 0:
        raw = raw[:end]
    lines = raw.split(b"\n")
    if lines[0].startswith(b"From "):  # an mbox separator, not a field
        del lines[0]
    elif lines[0][:1] in (b" ", b"\t") and lines[0].strip():
        defects.append("header: first line starts with whitespace")
        lines[0] = lines[0].lstrip()
    fields: list[tuple[bytes, bytes]] = []
    name: bytes | None = None
    parts: list[bytes] = []
    for line in lines:
        if line[:1] in _FOLD:
            if name is not None:
                parts.append(line)
            continue  # otherwise the continuation of a field we skip
        if name is not None:
            fields.append((name, b"".join(parts).strip()))
            name = None
        colon = line.find(b":")
        if colon <= 0:
            if line.strip():
                defects.append("header: line without a field name skipped")
            continue
        candidate = line[:colon].rstrip().lower()
        if candidate in _WANTED:
            name, parts = candidate, [line[colon + 1 :]]
    if name is not None:
        fields.append((name, b"".join(parts).strip()))
    return fields


def _text(value: bytes, name: bytes, defects: list[str]) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        defects.append(f"{name.decode()}: raw 8-bit bytes read as latin-1")
        return value.decode("latin-1")


def _clean_space(text: str) -> str:
    if "\t" in text or "  " in text or "\n" in text:
        return _WHITESPACE.sub(" ", text).strip()
    return text.strip()


# -- ids, dates, addresses ----------------------------------------------------------------


def _normalise_id(text: str) -> str | None:
    if " " in text or "\t" in text:
        text = _WHITESPACE.sub("", text)
    text = text.strip()
    return text[:MAX_ID_CHARS] if text else None


def _single_id(value: bytes | None, name: str, defects: list[str], *, required: bool) -> str | None:
    if value is None:
        if required:
            defects.append(f"{name}: missing")
        return None
    text = value.decode("utf-8", "replace")
    match = _ANGLE_ID.search(text)
    if match is not None:
        found = _normalise_id(match.group(1))
        if found is not None:
            return found
    loose = next((token for token in re.split(r"[\s,;]+", text) if "@" in token), None)
    if loose is not None:
        defects.append(f"{name}: id without angle brackets")
        return _normalise_id(loose.strip("<>\"'()"))
    if text.strip() or required:
        defects.append(f"{name}: no usable id")
    return None


def _references(value: bytes | None, defects: list[str]) -> tuple[str, ...]:
    if value is None:
        return ()
    text = value.decode("utf-8", "replace")
    found = [_normalise_id(item) for item in _ANGLE_ID.findall(text)]
    ids = [item for item in found if item]
    if not ids and text.strip():
        ids = [token.strip("\"'()") for token in re.split(r"[\s,;]+", text) if "@" in token]
        if ids:
            defects.append("references: ids without angle brackets")
        else:
            defects.append("references: no usable id")
    if len(ids) > MAX_REFERENCES:
        # Keep the root and the nearest ancestors: those are what threading needs.
        defects.append("references: truncated")
        ids = [ids[0], *ids[-(MAX_REFERENCES - 1) :]]
    return tuple(ids)


def _date(value: bytes | None, defects: list[str]) -> datetime | None:
    if value is None:
        defects.append("date: missing")
        return None
    moment = _common_date(value)
    if moment is None:
        text = value.decode("utf-8", "replace").strip()
        if not text:
            defects.append("date: empty")
            return None
        try:
            moment = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError, OverflowError):
            defects.append("date: unparseable")
            return None
        if moment.tzinfo is None:  # "-0000" or no zone: RFC 5322 says the zone is unknown
            moment = moment.replace(tzinfo=UTC)
    try:
        moment.astimezone(UTC)
    except OverflowError:
        # "31 Dec 9999 23:59 -1200" parses but cannot be moved to UTC to be stored;
        # it is a broken header, not a time.
        defects.append("date: out of range")
        return None
    return moment


@functools.cache
def fixed_zone(sign: bytes, hours: bytes, minutes: bytes) -> timezone:
    """The zone of a `+hhmm` / `-hhmm` offset, one object per offset (dates of one mailbox
    share a handful); ValueError past 24 hours."""
    offset = timedelta(hours=int(hours), minutes=int(minutes))
    return timezone(-offset if sign == b"-" else offset)


def _common_date(value: bytes) -> datetime | None:
    """The date of the usual RFC 5322 form (`Mon, 4 Mar 2024 09:30:00 +0100`, weekday and
    seconds optional, anything after the zone ignored) exactly as `parsedate_to_datetime`
    reads it, several times faster; None for any other form, left to the real parser."""
    match = _DATE.fullmatch(value)
    if match is None:
        return None
    day, month, year, hour, minute, second, sign, zone_hours, zone_minutes = match.groups()
    month_number = MONTHS.get(month.lower())
    if month_number is None:
        return None
    try:
        return datetime(
            int(year),
            month_number,
            int(day),
            int(hour),
            int(minute),
            int(second) if second else 0,
            # "-0000" (zone unknown) is UTC, as `_date` makes it
            tzinfo=fixed_zone(sign, zone_hours, zone_minutes),
        )
    except ValueError:  # 31 Feb, 25:00, a zone past 24 hours: the real parser says so
        return None


def _address_field(
    values: list[bytes] | None, name: str, defects: list[str]
) -> tuple[Address, ...]:
    if not values:
        return ()
    raw = values[0] if len(values) == 1 else b", ".join(values)
    if len(raw) > MAX_ADDRESS_FIELD_BYTES:
        defects.append(f"{name}: field truncated")
        raw = raw[:MAX_ADDRESS_FIELD_BYTES]
    if len(raw) > MAX_CACHED_ADDRESS_BYTES:
        return _parse_addresses(raw, name, defects)
    # The same From and To values come back message after message (the rep, the same
    # prospects): Address values are frozen, so one parse serves them all.
    addresses, found = _cached_addresses(raw, name)
    defects.extend(found)
    return addresses


@functools.lru_cache(maxsize=8192)
def _cached_addresses(raw: bytes, name: str) -> tuple[tuple[Address, ...], tuple[str, ...]]:
    defects: list[str] = []
    return _parse_addresses(raw, name, defects), tuple(defects)


def _parse_addresses(raw: bytes, name: str, defects: list[str]) -> tuple[Address, ...]:
    text = _text(raw, name.encode(), defects)
    single = _SINGLE_ADDRESS.fullmatch(text) if "," not in text else None
    if single is not None:  # the usual From: one address, no comment, no group
        display = single.group(1) or single.group(2) or ""
        email = single.group(3) or single.group(4)
        if "=?" in email or not _usable_address(email, bare_allowed=name == "from"):
            defects.append(f"{name}: no address")  # e.g. an encoded name and no address
            return ()
        if "\\" in display:
            display = _QUOTED_PAIR.sub(r"\1", display)
        return (Address(email=email.lower(), name=_display_name(display, defects)),)
    pairs = _fast_addresses(text)
    if pairs is None:
        pairs = _clean_pairs(_slow_addresses(text))
    result: list[Address] = []
    seen: set[str] = set()
    for display, email in pairs:
        if email in seen or not _usable_address(email, bare_allowed=name == "from"):
            continue
        if len(result) == MAX_ADDRESSES:
            defects.append(f"{name}: more than {MAX_ADDRESSES} addresses, rest dropped")
            break
        seen.add(email)
        result.append(Address(email=email, name=_display_name(display, defects)))
    if not result and text.strip():
        defects.append(f"{name}: no address")
    return tuple(result)


def _usable_address(email: str, *, bare_allowed: bool) -> bool:
    """`local@domain`, or a bare local part where one means something (From: MAILER-DAEMON)."""
    local, at, domain = email.rpartition("@")
    if at:
        return bool(local) and bool(domain)
    return bare_allowed


def _display_name(display: str, defects: list[str]) -> str:
    if not display:
        return ""
    if "=?" in display:
        display = decode_words(display, defects)
    return _clean_space(display)


def _fast_addresses(text: str) -> list[tuple[str, str]] | None:
    """(name, lower-case address) for lists made only of the common shapes (`a@b`,
    `Name <a@b>`, `"Last, First" <a@b>`), or None for the real parser."""
    if "(" in text:
        return None  # comments: leave them to the real parser
    pairs: list[tuple[str, str]] = []
    position, end = 0, len(text)
    while position < end:
        match = _ADDRESS_ITEM.match(text, position)
        if match is None:
            return None
        position = match.end()
        quoted, quoted_email, plain, plain_email, bare = match.groups()
        if quoted_email is not None:
            name = _QUOTED_PAIR.sub(r"\1", quoted) if "\\" in quoted else quoted
            pairs.append((name, quoted_email.lower()))
        elif plain_email is not None:
            pairs.append((plain, plain_email.lower()))
        elif bare is not None:
            pairs.append(("", bare.lower()))
        elif position >= end or match.end() == match.start():
            break
    return pairs


def _clean_pairs(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    cleaned = []
    for display, found in pairs:
        email = found.strip().strip("<>").strip().lower()
        if email and "=?" not in email and _ADDR_SPEC.fullmatch(email):
            cleaned.append((display, email))
    return cleaned


def _slow_addresses(text: str) -> list[tuple[str, str]]:
    try:
        return getaddresses([text])
    except Exception:  # the stdlib parser on hostile input must never be fatal
        return [("", found) for found in re.findall(r"[^\s<>,;:\"()]+@[^\s<>,;:\"()]+", text)]


# -- small body parts ---------------------------------------------------------------------


def decode_part(
    data: bytes, transfer_encoding: str, charset: str | None, *, complete: bool = False
) -> str:
    """Decode a body part, or the start of one (`complete=False`: a character or base64
    quantum cut off at the end is dropped rather than garbled); never raises."""
    encoding = transfer_encoding.strip().lower()
    if encoding == "base64":
        cleaned = re.sub(rb"[^A-Za-z0-9+/]", b"", data.split(b"=", 1)[0])
        if len(cleaned) % 4 == 1:
            cleaned = cleaned[:-1]  # a lone character decodes to nothing
        data = binascii.a2b_base64(cleaned + b"=" * (-len(cleaned) % 4))
    elif encoding == "quoted-printable":
        data = binascii.a2b_qp(re.sub(rb"=[0-9A-Fa-f]?$", b"", data))
    name = (charset or "").strip().lower()
    if name in ("", "us-ascii", "ascii", "unknown-8bit", "x-unknown"):
        # Undeclared 8-bit text: UTF-8 when it is valid UTF-8, else latin-1.
        try:
            codecs.getincrementaldecoder("utf-8")().decode(data, final=complete)
            name = "utf-8"
        except UnicodeDecodeError:
            name = "latin-1"
    try:
        b"".decode(name)  # LookupError for unknown names and for bytes-to-bytes codecs
        decoder = codecs.getincrementaldecoder(name)(errors="replace")
        return str(decoder.decode(data, final=complete))
    except Exception:  # any codec on hostile input: fall back, never fail the sync
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        return str(decoder.decode(data, final=complete))


def parse_delivery_report(report_type: str, body: bytes) -> DeliveryReport:
    """Read Action and Final-Recipient from a message/delivery-status (RFC 3464) or
    message/disposition-notification (RFC 8098) part; never raises."""
    text = body.decode("utf-8", "replace").replace("\r\n", "\n").replace("\r", "\n")
    action: str | None = None
    recipients: list[str] = []
    for line in re.sub(r"\n[ \t]+", " ", text).split("\n"):
        name, colon, value = line.partition(":")
        if not colon:
            continue
        name = name.strip().lower()
        if name == "action" and action is None:
            action = value.strip().split()[0].lower() if value.strip() else None
        elif name == "final-recipient":
            address = value.split(";", 1)[-1].strip().strip("<>").strip().lower()
            if address and address not in recipients and len(recipients) < MAX_ADDRESSES:
                recipients.append(address)
    return DeliveryReport(report_type=report_type, action=action, recipients=tuple(recipients))
