"""EWS items (as exchangelib parses them) into `MessageFacts`; no IO, never raising.

Which fields. A sync asks GetItem for `FACT_FIELDS` only (exchangelib's `only_fields`):
the ids (InternetMessageId, InReplyTo, References), From, To, Cc, ReplyTo, Subject,
DateTimeSent (the Date), DateTimeReceived (arrival), Size, ItemClass, ConversationId (the
provider thread id) and InternetMessageHeaders, from which the classification headers of
SPEC section 4 are kept. Exchange has parsed the addresses and ids already; they are
still run through `connectors.headers.parse_header_block`, so that ids are normalised,
capped and their defects named exactly as for IMAP. Items the rep's own client created
(Sent Items, Drafts) carry few or no Internet headers: the item fields are what counts,
the transport headers only fill gaps (an `EX` routing-type address without SMTP form is
replaced by the header's address when there is one).

Excerpts. For inbound mail in the Inbox that `MessageFacts.wants_excerpt`, a second
GetItem reads `text_body` (Exchange 2013 and later convert any body to text) or, on
older servers, `body` (HTML made plain here); `rules.excerpt.reply_text` keeps the new
text.

Delivery reports. Exchange files DSNs and MDNs as report items (ItemClass `REPORT.IPM.
Note.NDR`, `.DR`, `.Delayed...`, `.IPNRN`, `.IPNNRN`). For those the MIME Exchange holds
is read and its message/delivery-status (or disposition-notification) part parsed as
for IMAP (`connectors.rawmail`); when the MIME has none, the report is told by the item
class alone (a non-delivery report is a failed delivery, a read notification a
disposition), and a report item without a `multipart/report` Content-Type header gets
one, so that `rules.classify` sees it as the report it is.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from email.utils import format_datetime
from html.parser import HTMLParser
from typing import Any

from connectors.base import CLASSIFICATION_HEADERS, Address, DeliveryReport, MessageFacts
from connectors.headers import MAX_ADDRESSES, MAX_SUBJECT_CHARS, parse_header_block

__all__ = [
    "BODY_FIELDS",
    "FACT_FIELDS",
    "facts_from_item",
    "html_text",
    "is_report_item",
    "report_from_class",
    "with_report",
]

FACT_FIELDS = (
    "item_class",
    "subject",
    "datetime_sent",
    "datetime_received",
    "size",
    "author",
    "to_recipients",
    "cc_recipients",
    "reply_to",
    "message_id",
    "in_reply_to",
    "references",
    "conversation_id",
    "headers",
)
BODY_FIELDS = ("text_body",)  # Exchange 2013+; `body` before
_KEPT = frozenset(CLASSIFICATION_HEADERS)
_GAP_FILLERS = ("message-id", "in-reply-to", "references", "from", "to", "cc", "reply-to")
_LINE_BREAKS = re.compile(r"[\r\n]+")
_WHITESPACE = re.compile(r"\s+")


def facts_from_item(remote_id: str, item: Any) -> MessageFacts:
    """The facts of one GetItem answer (FACT_FIELDS asked for)."""
    headers = [
        (str(header.name or "").strip().lower(), _one_line(header.value))
        for header in (getattr(item, "headers", None) or ())
        if getattr(header, "name", None)
    ]
    item_fields = {
        "message-id": getattr(item, "message_id", None),
        "in-reply-to": getattr(item, "in_reply_to", None),
        "references": getattr(item, "references", None),
    }
    lines = [f"{name}: {_one_line(value)}" for name, value in item_fields.items() if value]
    for name, value in headers:
        if name in _KEPT or (name in _GAP_FILLERS and not item_fields.get(name)):
            lines.append(f"{name}: {value}")
    sent = _moment(getattr(item, "datetime_sent", None))
    if sent is not None:
        lines.append(f"date: {format_datetime(sent)}")
    else:
        lines += [f"date: {value}" for name, value in headers if name == "date"][:1]
    parsed = parse_header_block(("\r\n".join(lines) + "\r\n\r\n").encode("utf-8"))
    defects = list(parsed.defects)

    sender = _address(getattr(item, "author", None), defects, "from")
    to = _addresses(getattr(item, "to_recipients", None), defects, "to")
    cc = _addresses(getattr(item, "cc_recipients", None), defects, "cc")
    reply_to = _addresses(getattr(item, "reply_to", None), defects, "reply-to")
    subject = _WHITESPACE.sub(" ", str(getattr(item, "subject", None) or "")).strip()
    if len(subject) > MAX_SUBJECT_CHARS:
        defects.append("subject: truncated")
        subject = subject[:MAX_SUBJECT_CHARS]
    conversation = getattr(item, "conversation_id", None)
    size = getattr(item, "size", None)
    facts = MessageFacts(
        remote_id=remote_id,
        message_id=parsed.message_id,
        in_reply_to=parsed.in_reply_to,
        references=parsed.references,
        sender=sender or parsed.sender,
        to=to or parsed.to,
        cc=cc or parsed.cc,
        reply_to=reply_to or parsed.reply_to,
        date=sent or parsed.date,
        received_at=_moment(getattr(item, "datetime_received", None)),
        subject=subject or parsed.subject,
        thread_id=str(getattr(conversation, "id", "") or "") or None,
        headers=parsed.headers,
        size=size if isinstance(size, int) else None,
        defects=tuple(defects),
    )
    if is_report_item(item) and not facts.is_report:
        report_type = report_from_class(str(item.item_class)).report_type
        header = ("content-type", f"multipart/report; report-type={report_type}")
        facts = dataclasses.replace(facts, headers=(*facts.headers, header))
    return facts


def is_report_item(item: Any) -> bool:
    """A delivery or read report, as Exchange files them (ItemClass REPORT.*)."""
    return str(getattr(item, "item_class", None) or "").upper().startswith("REPORT.")


def report_from_class(item_class: str) -> DeliveryReport:
    """What a report item's class alone says (no recipients: those are in the MIME)."""
    upper = item_class.upper()
    if "IPNRN" in upper or "IPNNRN" in upper:
        return DeliveryReport("disposition-notification")
    if upper.endswith(".NDR") or ".NDR." in upper:
        return DeliveryReport("delivery-status", action="failed")
    if "DELAY" in upper:
        return DeliveryReport("delivery-status", action="delayed")
    if upper.endswith(".DR") or ".DR." in upper:
        return DeliveryReport("delivery-status", action="delivered")
    return DeliveryReport("delivery-status")


def with_report(
    facts: MessageFacts, item_class: str, from_mime: DeliveryReport | None
) -> MessageFacts:
    """The facts of a report item with its report: from the MIME, else from the class."""
    report = from_mime
    if report is None or (report.report_type == "unknown" and report.action is None):
        report = report_from_class(item_class)
    return dataclasses.replace(facts, report=report)


def html_text(markup: str) -> str:
    """The text of an HTML body, paragraphs and line breaks kept, scripts and styles not."""
    parser = _TextParser()
    with contextlib.suppress(Exception):  # malformed markup: what was read is the text
        parser.feed(markup)
        parser.close()
    return re.sub(r"\n{3,}", "\n\n", "".join(parser.parts)).strip()


class _TextParser(HTMLParser):
    _BREAKS = frozenset({"br", "p", "div", "tr", "li", "h1", "h2", "h3", "h4", "blockquote"})
    _HIDDEN = frozenset({"script", "style", "head", "title"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._HIDDEN:
            self._hidden += 1
        elif tag in self._BREAKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._HIDDEN:
            self._hidden = max(0, self._hidden - 1)
        elif tag in ("p", "div", "tr", "blockquote"):
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.parts.append(data)


def _one_line(value: object) -> str:
    return _LINE_BREAKS.sub(" ", str(value or "")).strip()


def _moment(value: object) -> datetime | None:
    """exchangelib's EWSDateTime as a plain aware datetime (UTC)."""
    if not isinstance(value, datetime) or value.tzinfo is None:
        return None
    return datetime.fromtimestamp(value.timestamp(), UTC)


def _address(mailbox: Any, defects: list[str], field: str) -> Address | None:
    if mailbox is None:
        return None
    email = str(getattr(mailbox, "email_address", None) or "").strip().lower()
    routing = str(getattr(mailbox, "routing_type", None) or "SMTP").upper()
    if routing not in ("SMTP", "") or "@" not in email or any(c.isspace() for c in email):
        defects.append(f"{field}: no SMTP address ({routing})")
        return None
    name = _one_line(getattr(mailbox, "name", None))
    return Address(email, "" if name.lower() == email else name)


def _addresses(
    mailboxes: Iterable[Any] | None, defects: list[str], field: str
) -> tuple[Address, ...]:
    found: list[Address] = []
    for mailbox in mailboxes or ():
        if len(found) >= MAX_ADDRESSES:
            defects.append(f"{field}: truncated")
            break
        address = _address(mailbox, defects, field)
        if address is not None and address not in found:
            found.append(address)
    return tuple(found)
