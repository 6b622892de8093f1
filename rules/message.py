"""The message as the rules see it: one frozen value, checked when built.

The daemon turns each stored row into a `Message` and hands it to `rules`; nothing
here knows where it came from (IMAP, Graph, EWS, a Maildir file or a test table).
It holds the header facts of SPEC section 2 and the few things classification reads
besides: the classification headers of section 4 (lower-case name, value), the
start of the first text part (`excerpt`) and the machine-readable part of a
multipart/report (`report`).

Values are normalised by the caller, and refused here when they are not: addresses
stripped and lower-case, Message-IDs without angle brackets, header names lower-case,
times timezone-aware. A bad value is a bug in the conversion, so it raises
`ValueError` at once instead of leading a rule astray later.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from datetime import datetime

__all__ = ["Address", "DeliveryReport", "Folder", "Message"]

# `\s` in a str pattern is exactly `str.isspace` (both are Py_UNICODE_ISSPACE), and one
# search is far cheaper than a test per character: every stored message is built here.
_WHITESPACE = re.compile(r"\s")


class Folder(enum.StrEnum):
    """What the folder a message sits in is for (SPEC section 2)."""

    INBOX = "inbox"
    SENT = "sent"
    DRAFTS = "drafts"


@dataclass(frozen=True)
class Address:
    """One mailbox: the address stripped and lower-case, the display name decoded."""

    email: str
    name: str = ""

    def __post_init__(self) -> None:
        if not self.email or self.email != self.email.strip().lower():
            raise ValueError(f"address must be non-empty, stripped, lower-case: {self.email!r}")
        if _WHITESPACE.search(self.email):
            raise ValueError(f"address must not contain whitespace: {self.email!r}")

    @property
    def local_part(self) -> str:
        """What stands before the last `@` (the whole address when there is none)."""
        return self.email.rpartition("@")[0] or self.email

    @property
    def domain(self) -> str:
        """What stands after the last `@`, or "" when there is none."""
        return self.email.rpartition("@")[2] if "@" in self.email else ""


_REPORT_TYPES = frozenset({"delivery-status", "disposition-notification"})


@dataclass(frozen=True)
class DeliveryReport:
    """The machine-readable part of a multipart/report (RFC 3464 / RFC 8098).

    `report_type` is the report-type parameter, lower-case ("delivery-status",
    "disposition-notification", or another type such as "feedback-report");
    `action` the first Action field, lower-case (failed, delayed, delivered,
    relayed, expanded), and `recipients` the Final-Recipient addresses.
    """

    report_type: str
    action: str | None = None
    recipients: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.report_type or self.report_type != self.report_type.strip().lower():
            raise ValueError(f"report_type must be stripped and lower-case: {self.report_type!r}")
        if self.action is not None and (
            not self.action or self.action != self.action.strip().lower()
        ):
            raise ValueError(f"action must be stripped and lower-case: {self.action!r}")
        for recipient in self.recipients:
            if not recipient or recipient != recipient.strip().lower():
                raise ValueError(f"recipients must be stripped and lower-case: {recipient!r}")

    @property
    def is_delivery_status(self) -> bool:
        return self.report_type == "delivery-status"

    @property
    def is_disposition(self) -> bool:
        return self.report_type == "disposition-notification"

    @property
    def is_known_type(self) -> bool:
        return self.report_type in _REPORT_TYPES


@dataclass(frozen=True, kw_only=True)
class Message:
    """The header facts of one message in one folder, as `rules` reads them.

    `at` is when the message was written: the Date header, or the server's arrival
    time when the header is missing or unreadable (the daemon picks). `headers` holds
    the classification headers present (connectors.base.CLASSIFICATION_HEADERS), in
    order, repeated names allowed. `excerpt` is the start of the first text part
    (None when not fetched or disabled by `privacy.excerpt_chars = 0`).
    """

    at: datetime
    folder: Folder = Folder.INBOX
    message_id: str | None = None
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()
    sender: Address | None = None
    to: tuple[Address, ...] = ()
    cc: tuple[Address, ...] = ()
    subject: str = ""
    thread_id: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    excerpt: str | None = None
    report: DeliveryReport | None = None

    def __post_init__(self) -> None:
        if self.at.tzinfo is None or self.at.utcoffset() is None:
            raise ValueError("message time must be timezone-aware")
        # A plain "sent" is accepted and stored as the enum member.
        if type(self.folder) is not Folder:
            object.__setattr__(self, "folder", Folder(self.folder))
        for name, value in (
            ("message_id", self.message_id),
            ("in_reply_to", self.in_reply_to),
            ("thread_id", self.thread_id),
        ):
            _check_id(name, value)
        for reference in self.references:
            _check_id("references", reference)
        for header_name, _value in self.headers:
            if not header_name or header_name != header_name.strip().lower():
                raise ValueError(f"header names must be stripped and lower-case: {header_name!r}")

    def header(self, name: str) -> str | None:
        """The first value of a classification header, or None when absent."""
        # A plain loop: classification asks ~17 times per message, and the few headers
        # kept make a scan as quick as a dict lookup without a dict per message.
        wanted = name.lower()
        for key, value in self.headers:
            if key == wanted:
                return value
        return None

    def header_values(self, name: str) -> tuple[str, ...]:
        """Every value of a classification header, in order."""
        wanted = name.lower()
        return tuple(value for key, value in self.headers if key == wanted)

    @property
    def recipients(self) -> tuple[Address, ...]:
        return self.to + self.cc


# What makes an id bad, found in one search (the common case: the id is fine).
_BAD_ID = re.compile(r"\A<|>\Z|\s")


def _check_id(name: str, value: str | None) -> None:
    if value is None or (value and _BAD_ID.search(value) is None):
        return
    if not value or value.startswith("<") or value.endswith(">"):
        raise ValueError(f"{name} must be non-empty and without angle brackets: {value!r}")
    if _WHITESPACE.search(value):
        raise ValueError(f"{name} must not contain whitespace: {value!r}")
