"""The lean IMAP reader: bulk commands sent and read straight on imaplib's socket.

imapclient parses every response into Python objects through a general tokenizer, which
is correct and about ten times slower than the network for a header FETCH of tens of
thousands of messages. The few bulk commands a sync sends (the header FETCH, UID SEARCH,
LIST) have answers of a known shape, so here they are read line by line with imaplib's
documented `send`, `readline` and `read`, literals `{n}` are read exactly, and each
response is picked apart with a few small regexes, one message at a time, so memory stays
flat whatever the size of the mailbox. The small follow-up FETCHes (BODYSTRUCTURE, one
body section) go through a tiny tokenizer of the same reader. imapclient keeps the rest
(connection, TLS, login, capabilities, STATUS, EXAMINE).

Our tags (`rl1`, `rl2`, ...) are lower-case, so they cannot collide with imaplib's own
(upper-case letters and digits); each command is read to its tagged completion before
anything else is sent, so imaplib's bookkeeping never sees our traffic. A command may be
sent some time before its answer is read (`Command`, `HeaderFetch`), so that the server
prepares it meanwhile, but it is still the only one outstanding.

The module also knows how to find, in a parsed BODYSTRUCTURE, the small part a connector
fetches for an inbound message (the first text/plain, or the machine-readable part of a
multipart/report).
"""

from __future__ import annotations

import imaplib
import itertools
import re
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from imapclient import imap_utf7

from connectors.base import CLASSIFICATION_HEADERS, ProtocolError, TransientError
from connectors.headers import MONTHS, fixed_zone

__all__ = [
    "HEADER_FIELDS",
    "BodyPart",
    "Command",
    "HeaderFetch",
    "RawHeaders",
    "Response",
    "fetch_headers",
    "fetch_items",
    "find_report_part",
    "find_text_part",
    "header_fetch_items",
    "list_mailboxes",
    "parse_sequence_set",
    "run_command",
    "search_uids",
    "sequence_set",
]

# The header fields the initial sync fetches (SPEC sections 2 and 4). The benchmark
# sends the same FETCH, so it lives here as a constant.
HEADER_FIELDS: tuple[str, ...] = (
    "MESSAGE-ID",
    "IN-REPLY-TO",
    "REFERENCES",
    "FROM",
    "TO",
    "CC",
    "REPLY-TO",
    "DATE",
    "SUBJECT",
    *(name.upper() for name in CLASSIFICATION_HEADERS),
)

# Without ESEARCH a UID SEARCH answers in one line; imaplib refuses lines over 1 MB, so
# plain searches go in windows of UIDs small enough to stay well below that.
SEARCH_WINDOW = 100_000

_TAGS = itertools.count(1)
_LITERAL_AT_END = re.compile(rb"\{(\d+)\+?\}$")
_UID = re.compile(rb"[( ]UID (\d+)")
_INTERNALDATE = re.compile(
    rb'INTERNALDATE "\s?(\d{1,2})-([A-Za-z]{3})-(\d{4}) '
    rb'(\d{2}):(\d{2}):(\d{2}) ([+-])(\d{2})(\d{2})"'
)
_SIZE = re.compile(rb"RFC822\.SIZE (\d+)")
_THREAD = re.compile(rb"X-GM-THRID (\d+)")
_HEADER_LITERAL = re.compile(rb"BODY\[HEADER[^\]]*\]\s*\{\d+\+?\}$")
_HEADER_QUOTED = re.compile(rb'BODY\[HEADER[^\]]*\]\s*(NIL|"((?:[^"\\]|\\.)*)")')
_FETCH = re.compile(rb"\* \d+ FETCH ")
_LIST = re.compile(rb'\* (?:LIST|XLIST) \(([^)]*)\) (NIL|"(?:[^"\\]|\\.)*") ?(.*)', re.DOTALL)
_ESEARCH_ALL = re.compile(rb"\bALL ([0-9:,]+)")
_TRANSIENT_CODES = (b"[UNAVAILABLE]", b"[INUSE]", b"[LIMIT]", b"[SERVERBUG]", b"[OVERQUOTA]")


class Response(NamedTuple):
    """One untagged response: its text lines, and the literal read after each but the last."""

    lines: list[bytes]
    literals: list[bytes]


class RawHeaders(NamedTuple):
    """What the header FETCH returned for one message."""

    uid: int
    received_at: datetime | None
    size: int | None
    thread_id: str | None
    headers: bytes


def header_fetch_items(*, gmail_thread_ids: bool = False) -> bytes:
    """The FETCH item list of the header sync (UID, dates, size, the header fields)."""
    fields = " ".join(HEADER_FIELDS)
    extra = " X-GM-THRID" if gmail_thread_ids else ""
    return f"(UID INTERNALDATE RFC822.SIZE{extra} BODY.PEEK[HEADER.FIELDS ({fields})])".encode()


def run_command(imap: imaplib.IMAP4, command: bytes) -> Iterator[Response]:
    """Send `command` under a tag of our own, yield each untagged response, and check the
    tagged completion (NO/BAD raise).

    Left early (an exception in the caller, or a parse error), the rest of the answer is
    read and dropped, so the next command on the session starts in step.
    """
    yield from Command(imap, command).responses()  # sent when the caller starts reading


class Command:
    """A command sent now under a tag of our own, its answer read later by `responses`
    (see `run_command`), so that the server can prepare it meanwhile.

    Until the answer is read to its completion nothing else may be read on the session:
    `close` reads and drops whatever is left of it.
    """

    def __init__(self, imap: imaplib.IMAP4, command: bytes) -> None:
        self._imap = imap
        self._command = command
        self._done = b"rl%d " % next(_TAGS)
        self._finished = False
        imap.send(self._done + command + b"\r\n")

    def responses(self) -> Iterator[Response]:
        """Each untagged response, then the tagged completion is checked."""
        command, done = self._command, self._done
        try:
            while True:
                response = _read_response(self._imap)
                first = response.lines[0]
                if first.startswith(done):
                    self._finished = True
                    _check_completion(command, first[len(done) :])
                    return
                if first.startswith(b"* BYE"):
                    self._finished = True  # nothing more will come
                    raise TransientError(f"server closed the connection: {_printable(first[5:])}")
                if first.startswith(b"+"):
                    raise ProtocolError(f"unexpected continuation request after {_verb(command)}")
                yield response
        except (TransientError, OSError):
            self._finished = True  # the connection itself failed: there is nothing to drain
            raise
        finally:
            self.close()

    def close(self) -> None:
        """Read and drop the rest of the answer, if any is left."""
        if not self._finished:
            self._finished = True
            _drain(self._imap, self._done)


def _drain(imap: imaplib.IMAP4, done: bytes) -> None:
    try:
        while not _read_response(imap).lines[0].startswith(done):
            pass
    except (TransientError, OSError, imaplib.IMAP4.error):
        pass  # the session is broken anyway; the next command will say so


def _read_response(imap: imaplib.IMAP4) -> Response:
    lines: list[bytes] = []
    literals: list[bytes] = []
    while True:
        line = imap.readline()
        if not line.endswith(b"\n"):
            raise TransientError("connection closed in the middle of a response")
        line = line.rstrip(b"\r\n")
        lines.append(line)
        literal = _LITERAL_AT_END.search(line)
        if literal is None:
            return Response(lines, literals)
        size = int(literal.group(1))
        data = imap.read(size)
        if len(data) != size:
            raise TransientError("connection closed in the middle of a literal")
        literals.append(data)


def _check_completion(command: bytes, status: bytes) -> None:
    if status.startswith(b"OK"):
        return
    text = _printable(status)
    if status.startswith(b"NO") and any(code in status for code in _TRANSIENT_CODES):
        raise TransientError(f"{_verb(command)} refused for now: {text}")
    raise ProtocolError(f"{_verb(command)} failed: {text}")


def _verb(command: bytes) -> str:
    words = command.split(b" ", 2)
    verb = b" ".join(words[:2]) if words[0].upper() == b"UID" else words[0]
    return verb.decode("ascii", "replace").upper()


def _printable(text: bytes) -> str:
    return text.decode("utf-8", "replace").strip()[:200]


# -- the header FETCH -----------------------------------------------------------------------


def fetch_headers(
    imap: imaplib.IMAP4, first_uid: int, last_uid: int, items: bytes
) -> Iterator[RawHeaders]:
    """UID FETCH first:last with `items`, one message at a time, in server order.

    Responses without the header item (unsolicited FLAGS updates) and UIDs outside the
    range (`n:*` quirks) are skipped.
    """
    yield from HeaderFetch(imap, first_uid, last_uid, items).read()


class HeaderFetch:
    """`fetch_headers` sent now, read later (`read`), or dropped unread (`close`)."""

    def __init__(self, imap: imaplib.IMAP4, first_uid: int, last_uid: int, items: bytes) -> None:
        self.first_uid, self.last_uid = first_uid, last_uid
        self._command = Command(imap, b"UID FETCH %d:%d %s" % (first_uid, last_uid, items))

    def read(self) -> Iterator[RawHeaders]:
        """The messages of the answer, as `fetch_headers` yields them."""
        first_uid, last_uid = self.first_uid, self.last_uid
        for response in self._command.responses():
            if not _FETCH.match(response.lines[0]):
                continue
            parsed = _parse_fetch(response)
            if parsed is not None and first_uid <= parsed.uid <= last_uid:
                yield parsed

    def close(self) -> None:
        """Drop what is left of the answer, so that the session is in step again."""
        self._command.close()


def _parse_fetch(response: Response) -> RawHeaders | None:
    lines, literals = response
    text = lines[0] if len(lines) == 1 else b" ".join(lines)
    uid = _UID.search(text)
    if uid is None:
        return None
    headers: bytes | None = None
    for index, literal in enumerate(literals):
        if _HEADER_LITERAL.search(lines[index]):
            headers = literal
            break
    else:
        quoted = _HEADER_QUOTED.search(text)
        if quoted is None:
            return None
        headers = re.sub(rb"\\(.)", rb"\1", quoted.group(2) or b"")
    size = _SIZE.search(text)
    thread = _THREAD.search(text)
    return RawHeaders(
        uid=int(uid.group(1)),
        received_at=_internaldate(text),
        size=int(size.group(1)) if size else None,
        thread_id=thread.group(1).decode() if thread else None,
        headers=headers,
    )


def _internaldate(text: bytes) -> datetime | None:
    match = _INTERNALDATE.search(text)
    if match is None:
        return None
    day, month_name, year, hour, minute, second, sign, zone_h, zone_m = match.groups()
    month = MONTHS.get(month_name.lower())
    if month is None:
        return None
    try:
        zone = fixed_zone(sign, zone_h, zone_m)
        return datetime(
            int(year), month, int(day), int(hour), int(minute), int(second), tzinfo=zone
        )
    except ValueError:
        return None


# -- SEARCH and LIST -----------------------------------------------------------------------


def search_uids(
    imap: imaplib.IMAP4, first_uid: int, last_uid: int | None, *, esearch: bool
) -> list[int]:
    """The UIDs in first:last (None: up to the newest), ascending. With ESEARCH one compact
    answer; without, one plain SEARCH per window of UIDs (imaplib caps a line at 1 MB)."""
    if last_uid is not None and last_uid < first_uid:
        return []
    if last_uid is None:
        windows = [(first_uid, b"*")]
    elif esearch:
        windows = [(first_uid, b"%d" % last_uid)]
    else:
        windows = [
            (start, b"%d" % min(start + SEARCH_WINDOW - 1, last_uid))
            for start in range(first_uid, last_uid + 1, SEARCH_WINDOW)
        ]
    uids: set[int] = set()
    for start, end in windows:
        if esearch:
            command = b"UID SEARCH RETURN (ALL) UID %d:%s" % (start, end)
        else:
            command = b"UID SEARCH UID %d:%s" % (start, end)
        for response in run_command(imap, command):
            line = response.lines[0]
            if line.startswith(b"* ESEARCH"):
                match = _ESEARCH_ALL.search(line)
                if match is not None:
                    uids.update(parse_sequence_set(match.group(1)))
            elif line.startswith(b"* SEARCH"):
                uids.update(int(token) for token in line[8:].split() if token.isdigit())
    # `n:*` always matches the newest message, even below n: keep the range only.
    return sorted(uid for uid in uids if uid >= first_uid and (last_uid is None or uid <= last_uid))


def parse_sequence_set(text: bytes) -> Iterator[int]:
    """Expand an IMAP sequence set such as `1:3,7,9:8` (no `*`)."""
    for item in text.split(b","):
        low, _, high = item.partition(b":")
        if not low.isdigit() or (high and not high.isdigit()):
            raise ProtocolError("unreadable sequence set in a SEARCH answer")
        start, end = int(low), int(high or low)
        yield from range(min(start, end), max(start, end) + 1)


def list_mailboxes(
    imap: imaplib.IMAP4, *, special_use: bool
) -> list[tuple[frozenset[str], str | None, str]]:
    """(lower-case attributes, delimiter, decoded name) of every mailbox.

    With `special_use`, asks for the RFC 6154 attributes explicitly (servers may leave
    them out of a plain LIST).
    """
    command = b'LIST "" "*" RETURN (SPECIAL-USE)' if special_use else b'LIST "" "*"'
    mailboxes = []
    for response in run_command(imap, command):
        match = _LIST.match(response.lines[0])
        if match is None:
            continue
        attributes = frozenset(match.group(1).decode("ascii", "replace").lower().split())
        delimiter_raw = match.group(2)
        delimiter = None if delimiter_raw == b"NIL" else _unquote(delimiter_raw).decode()
        rest = match.group(3)
        raw_name = response.literals[0] if response.literals else _first_astring(rest)
        mailboxes.append((attributes, delimiter, _decode_mailbox(raw_name)))
    return mailboxes


def _unquote(text: bytes) -> bytes:
    if text.startswith(b'"') and text.endswith(b'"') and len(text) >= 2:
        return re.sub(rb"\\(.)", rb"\1", text[1:-1])
    return text


def _first_astring(text: bytes) -> bytes:
    if text.startswith(b'"'):
        match = re.match(rb'"((?:[^"\\]|\\.)*)"', text)
        return re.sub(rb"\\(.)", rb"\1", match.group(1)) if match else text.strip(b'"')
    return text.split(b" ", 1)[0]


def _decode_mailbox(raw: bytes) -> str:
    try:
        return str(imap_utf7.decode(raw))
    except (ValueError, UnicodeError):
        return raw.decode("utf-8", "replace")


# -- small FETCHes of a few items (BODYSTRUCTURE, one body section) -------------------------

# One token of a FETCH response: a paren, a quoted string, a literal marker at the end of a
# line, or an atom (which may carry a bracketed section such as BODY[1.2]<0>).
_TOKEN = re.compile(rb'[()]|"(?:[^"\\]|\\.)*"|\{\d+\+?\}$|[^\s()"\[\]]+(?:\[[^\]]*\][^\s()"]*)?')
_QUOTED_PAIR = re.compile(rb"\\(.)")
MAX_UIDS_PER_COMMAND = 500  # keeps the command line well inside servers' limits


def fetch_items(
    imap: imaplib.IMAP4, uids: Sequence[int], items: bytes
) -> Iterator[tuple[int, dict[bytes, Any]]]:
    """(UID, {item name: value}) for each message of a small UID FETCH. Values are bytes,
    None (NIL) or nested lists (BODYSTRUCTURE); names are upper-case as the server wrote
    them (`BODY[1]<0>` for `BODY.PEEK[1]<0.4096>`)."""
    ordered = sorted(set(uids))
    for start in range(0, len(ordered), MAX_UIDS_PER_COMMAND):
        chunk = ordered[start : start + MAX_UIDS_PER_COMMAND]
        wanted = set(chunk)
        command = b"UID FETCH %s (UID %s)" % (sequence_set(chunk), items)
        for response in run_command(imap, command):
            if not _FETCH.match(response.lines[0]):
                continue
            parsed = _parse_tokens(response)
            if len(parsed) < 4 or not isinstance(parsed[3], list):
                continue
            values = parsed[3]
            found = {
                key.upper(): values[index + 1]
                for index, key in enumerate(values[:-1])
                if index % 2 == 0 and isinstance(key, bytes)
            }
            uid = found.get(b"UID")
            if isinstance(uid, bytes) and uid.isdigit() and int(uid) in wanted:
                yield int(uid), found


def _parse_tokens(response: Response) -> list[Any]:
    """The response as nested lists: bytes for atoms, strings and literals, None for NIL."""
    top: list[Any] = []
    stack = [top]
    current = top
    for index, line in enumerate(response.lines):
        for token in _TOKEN.findall(line):
            if token == b"(":
                nested: list[Any] = []
                current.append(nested)
                stack.append(nested)
                current = nested
            elif token == b")":
                if len(stack) > 1:
                    stack.pop()
                    current = stack[-1]
            elif token[:1] == b'"':
                text = token[1:-1]
                current.append(_QUOTED_PAIR.sub(rb"\1", text) if b"\\" in text else text)
            elif token[:1] == b"{" and index < len(response.literals):
                current.append(response.literals[index])
            else:
                current.append(None if token.upper() == b"NIL" else token)
    return top


def sequence_set(uids: Sequence[int]) -> bytes:
    """`1:3,7,9:10` for [1, 2, 3, 7, 9, 10] (ascending input)."""
    ranges: list[bytes] = []
    first = previous = uids[0]
    for uid in [*uids[1:], None]:
        if uid is not None and uid == previous + 1:
            previous = uid
            continue
        ranges.append(b"%d" % first if first == previous else b"%d:%d" % (first, previous))
        if uid is not None:
            first = previous = uid
    return b",".join(ranges)


# -- BODYSTRUCTURE -----------------------------------------------------------------------


class BodyPart(NamedTuple):
    """A leaf part of a message worth fetching, and how to decode it."""

    section: str  # "1", "1.2", ... as BODY[<section>] wants it
    media_type: str  # e.g. "text/plain", "message/delivery-status"
    transfer_encoding: str
    charset: str | None


_REPORT_TYPES = (
    "message/delivery-status",
    "message/global-delivery-status",
    "message/disposition-notification",
    "message/global-disposition-notification",
)
_MAX_DEPTH = 40


def find_text_part(structure: Any) -> BodyPart | None:
    """The first text/plain part that is not an attachment (attached messages skipped)."""
    for part in _leaves(structure, "", 0):
        if part[0] == "text/plain" and not part[2]:
            return part[1]
    return None


def find_report_part(structure: Any) -> BodyPart | None:
    """The message/delivery-status (or disposition-notification) part of a report."""
    for part in _leaves(structure, "", 0):
        if part[0] in _REPORT_TYPES:
            return part[1]
    return None


def _leaves(structure: Any, section: str, depth: int) -> Iterator[tuple[str, BodyPart, bool]]:
    """(media type, part, is an attachment) of each leaf, depth first, in MIME order.

    A multipart body is its children (lists) followed by its subtype; a leaf is
    (type subtype params id description encoding size ...), as RFC 3501 section 7.4.2 says.
    """
    if depth > _MAX_DEPTH or not isinstance(structure, list) or len(structure) < 2:
        return
    if isinstance(structure[0], list):
        for number, child in enumerate(itertools.takewhile(_is_list, structure), start=1):
            yield from _leaves(child, f"{section}.{number}" if section else str(number), depth + 1)
        return
    media_type = f"{_atom(structure[0])}/{_atom(structure[1])}"
    if media_type == "message/rfc822":
        return  # an attached message: its text is not the sender's
    params = _params(structure[2] if len(structure) > 2 else None)
    encoding = _atom(structure[5]) if len(structure) > 5 else "7bit"
    disposition_index = 9 if media_type.startswith("text/") else 8
    disposition = structure[disposition_index] if len(structure) > disposition_index else None
    attachment = (
        isinstance(disposition, list)
        and bool(disposition)
        and _atom(disposition[0]) == "attachment"
    )
    part = BodyPart(section or "1", media_type, encoding or "7bit", params.get("charset"))
    yield media_type, part, attachment


def _is_list(value: object) -> bool:
    return isinstance(value, list)


def _atom(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("ascii", "replace").lower()
    if isinstance(value, str):
        return value.lower()
    return ""


def _params(value: object) -> dict[str, str]:
    if not isinstance(value, list):
        return {}
    params: dict[str, str] = {}
    for index in range(0, len(value) - 1, 2):
        key, item = value[index], value[index + 1]
        if isinstance(item, bytes):
            params[_atom(key)] = item.decode("utf-8", "replace")
    return params
