"""Scenario files: a short team mailbox, a `now`, and the status each prospect must have.

One TOML file per scenario in `tests/scenarios/`. The same file feeds the pure tests
(`messages_as_rules`: `rules.message.Message` values) and an end-to-end test that loads
real RFC 5322 messages into a Dovecot (`as_raw_messages`). The format:

    description = "engaged, then silent: stage 1"
    now = 2020-11-10T12:00:00+01:00

    [rules]                          # all optional; these are the defaults
    timezone = "Europe/Berlin"
    holidays = { country = "DE", subdivision = "BY" }   # default: none (weekends only)
    group_by = "company"             # or "contact"
    team_replies = true
    draft_cold = false
    internal_domains = []
    freemail_domains = []
    do_not_contact = []              # "someone@example.com" or "@example.com"
    snooze = [{ address = "alice@bigcorp.example", until = 2020-11-20 }]
    stages = [{ after_business_days = 3, playbook = "release_pressure" }, ...]
    max_followups = 4                # default: the number of stages

    [[accounts]]                     # optional; default one account "dana"
    name = "dana"
    rep_name = "Dana Reyes"
    addresses = ["dana@acmesoft.example"]

    [[messages]]
    id = "m1"                        # local name; the Message-ID is <stem.m1@sender-domain>
    account = "dana"                 # default: the first account
    folder = "sent"                  # inbox | sent | drafts; or folders = ["sent", "inbox"]
    from = "Dana Reyes <dana@acmesoft.example>"   # RFC 2047 words allowed
    to = ["Alice Doe <alice@bigcorp.example>"]
    cc = []
    date = 2020-11-02T10:00:00+01:00 # omitted: no Date header, `arrival` is the time
    arrival = 2020-11-02T10:00:07+01:00           # server arrival; default: `date`
    subject = "Pricing"
    in_reply_to = "m0"               # a local id, or a Message-ID containing "@"
    references = ["m0"]
    thread_id = "t1"                 # provider thread id (optional)
    headers = { "Auto-Submitted" = "auto-replied" }
    body = "text"
    report = { type = "delivery-status", action = "failed", recipients = ["..."] }
    calendar = "ACCEPTED"            # a text/calendar METHOD:REPLY part

    [[expect]]                       # one per (account, prospect) evaluated: no more, no less
    prospect = "alice@bigcorp.example"
    account = "dana"                 # default: the first account
    status = "ghosted"
    followups_sent = 0
    next_stage = 1                   # or "none"
    next_action_at = 2020-11-05T10:00:00+01:00    # optional
    reason = "stage 1 (release_pressure)"         # a substring of the reason
    name = "Alice Doe"               # optional, as are company and subject
    commitment = "you'd discuss it"  # optional: in the quoted commitment ("" for none)
"""

from __future__ import annotations

import email.utils
import tomllib
from dataclasses import dataclass
from datetime import datetime
from email.header import decode_header, make_header
from email.headerregistry import Address as HeaderAddress
from pathlib import Path
from typing import Any

from connectors.base import CLASSIFICATION_HEADERS
from rules.business_days import BusinessCalendar
from rules.excerpt import reply_text
from rules.message import Address, DeliveryReport, Folder, Message
from rules.prospects import AccountView, Policy, Snooze, Team
from rules.stages import DEFAULT_STAGE_PLAN, StagePlan

__all__ = ["Expectation", "Scenario", "ScenarioMessage", "load_scenario", "scenario_paths"]

SCENARIO_DIR = Path(__file__).resolve().parent.parent / "scenarios"
DEFAULT_ACCOUNT = {
    "name": "dana",
    "rep_name": "Dana Reyes",
    "addresses": ["dana@acmesoft.example"],
}
_CRLF = "\r\n"


def scenario_paths() -> list[Path]:
    return sorted(SCENARIO_DIR.glob("*.toml"))


@dataclass(frozen=True)
class Expectation:
    """What one (account, prospect) must evaluate to."""

    account: str
    prospect: str
    status: str
    followups_sent: int
    next_stage: int | None
    reason: str
    next_action_at: datetime | None = None
    checks_next_action: bool = False
    name: str | None = None
    company: str | None = None
    subject: str | None = None
    commitment: str | None = None


@dataclass(frozen=True)
class ScenarioMessage:
    """One [[messages]] entry, references resolved to Message-IDs."""

    local_id: str
    account: str
    folders: tuple[str, ...]
    sender: str
    to: tuple[str, ...]
    cc: tuple[str, ...]
    date: datetime | None
    arrival: datetime
    subject: str
    message_id: str
    in_reply_to: str | None
    references: tuple[str, ...]
    thread_id: str | None
    headers: tuple[tuple[str, str], ...]
    body: str
    report: dict[str, Any] | None
    calendar: str | None

    @property
    def at(self) -> datetime:
        return self.date or self.arrival

    def content_type(self, boundary: str) -> str:
        if self.report is not None:
            kind = self.report.get("type", "delivery-status")
            return f'multipart/report; report-type={kind}; boundary="{boundary}"'
        if self.calendar is not None:
            return f'multipart/alternative; boundary="{boundary}"'
        return "text/plain; charset=utf-8"

    def as_rules(self, folder: str) -> Message:
        boundary = self.boundary
        extra = [(name.lower(), value) for name, value in self.headers]
        headers = [("content-type", self.content_type(boundary)), *extra]
        kept = tuple(pair for pair in headers if pair[0] in CLASSIFICATION_HEADERS)
        report = None
        if self.report is not None:
            report = DeliveryReport(
                report_type=str(self.report.get("type", "delivery-status")),
                action=self.report.get("action"),
                recipients=tuple(r.lower() for r in _report_recipients(self.report, self.sender)),
            )
        return Message(
            at=self.at,
            folder=Folder(folder),
            message_id=self.message_id,
            in_reply_to=self.in_reply_to,
            references=self.references,
            sender=_rules_address(self.sender),
            to=tuple(_rules_address(value) for value in self.to),
            cc=tuple(_rules_address(value) for value in self.cc),
            subject=_decoded(self.subject),
            thread_id=self.thread_id,
            headers=kept,
            excerpt=reply_text(self.body) or None,
            report=report,
        )

    @property
    def boundary(self) -> str:
        return f"=_relight_{self.local_id}"

    def as_raw(self) -> bytes:
        """The message as RFC 5322 bytes (CRLF), encoded words for non-ASCII headers."""
        lines = [f"From: {_header_address(self.sender)}"]
        if self.to:
            lines.append("To: " + ", ".join(_header_address(value) for value in self.to))
        if self.cc:
            lines.append("Cc: " + ", ".join(_header_address(value) for value in self.cc))
        if self.date is not None:
            lines.append(f"Date: {email.utils.format_datetime(self.date)}")
        lines.append(f"Subject: {_header_text(self.subject)}")
        lines.append(f"Message-ID: <{self.message_id}>")
        if self.in_reply_to:
            lines.append(f"In-Reply-To: <{self.in_reply_to}>")
        if self.references:
            lines.append("References: " + " ".join(f"<{ref}>" for ref in self.references))
        lines.extend(f"{name}: {_header_text(value)}" for name, value in self.headers)
        lines.append("MIME-Version: 1.0")
        boundary = self.boundary
        lines.append(f"Content-Type: {self.content_type(boundary)}")
        if self.report is None and self.calendar is None:
            lines.append("Content-Transfer-Encoding: 8bit")
            return _join(lines, self.body)
        parts = [_text_part(self.body)]
        if self.report is not None:
            parts.append(_report_part(self.report, self.sender))
        if self.calendar is not None:
            parts.append(_calendar_part(self.calendar, self.sender, self.subject))
        body = _CRLF.join(f"--{boundary}{_CRLF}{part}" for part in parts)
        return _join(lines, f"{body}{_CRLF}--{boundary}--")


@dataclass(frozen=True)
class Scenario:
    """One scenario file, ready to evaluate or to load into a mail server."""

    path: Path
    description: str
    now: datetime
    team: Team
    policy: Policy
    messages: tuple[ScenarioMessage, ...]
    expected: tuple[Expectation, ...]

    @property
    def name(self) -> str:
        return self.path.stem

    @property
    def accounts(self) -> tuple[str, ...]:
        return tuple(account.name for account in self.team.accounts)

    def messages_as_rules(self, account: str | None = None) -> list[Message]:
        """One account's messages (default the first), one `Message` per folder copy."""
        wanted = account or self.accounts[0]
        return [
            message.as_rules(folder)
            for message in self.messages
            if message.account == wanted
            for folder in message.folders
        ]

    def as_raw_messages(self, account: str | None = None) -> list[tuple[str, bytes]]:
        """One account's messages (default the first) as (folder, RFC 5322 bytes)."""
        return [(folder, data) for folder, data, _arrival in self.as_appends(account)]

    def as_appends(self, account: str | None = None) -> list[tuple[str, bytes, datetime]]:
        """(folder, bytes, arrival): what an IMAP APPEND needs, INTERNALDATE included."""
        wanted = account or self.accounts[0]
        return [
            (folder, message.as_raw(), message.arrival)
            for message in self.messages
            if message.account == wanted
            for folder in message.folders
        ]


def load_scenario(path: Path) -> Scenario:
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    accounts = [
        AccountView(
            name=entry["name"],
            addresses=frozenset(entry["addresses"]),
            rep_name=entry.get("rep_name", ""),
        )
        for entry in data.get("accounts", [DEFAULT_ACCOUNT])
    ]
    team = Team(tuple(accounts))
    first = accounts[0].name
    messages = _messages(path.stem, data.get("messages", []), first)
    expected = tuple(_expectation(entry, first) for entry in data.get("expect", []))
    return Scenario(
        path=path,
        description=data["description"],
        now=data["now"],
        team=team,
        policy=_policy(data.get("rules", {})),
        messages=messages,
        expected=expected,
    )


def _policy(rules: dict[str, Any]) -> Policy:
    holidays = rules.get("holidays")
    calendar = BusinessCalendar(
        rules.get("timezone", "Europe/Berlin"),
        holidays["country"] if holidays else None,
        holidays.get("subdivision") if holidays else None,
    )
    plan = DEFAULT_STAGE_PLAN
    if "stages" in rules or "max_followups" in rules:
        stages = rules.get("stages") or [
            {"after_business_days": after, "playbook": playbook}
            for after, playbook in DEFAULT_STAGE_PLAN.stages
        ]
        plan = StagePlan(
            [(stage["after_business_days"], stage["playbook"]) for stage in stages],
            rules.get("max_followups"),
        )
    return Policy(
        calendar=calendar,
        plan=plan,
        group_by=rules.get("group_by", "company"),
        team_replies=rules.get("team_replies", True),
        internal_domains=frozenset(rules.get("internal_domains", ())),
        freemail_domains=frozenset(rules.get("freemail_domains", ())),
        do_not_contact=tuple(rules.get("do_not_contact", ())),
        draft_cold=rules.get("draft_cold", False),
        snoozes=tuple(
            Snooze(entry["address"], entry["until"]) for entry in rules.get("snooze", ())
        ),
        excerpt_chars=rules.get("excerpt_chars", 500),
    )


def _messages(stem: str, entries: list[dict[str, Any]], first: str) -> tuple[ScenarioMessage, ...]:
    ids: dict[str, str] = {}
    for entry in entries:
        local = entry["id"]
        if local in ids:
            raise ValueError(f"{stem}: message id {local!r} twice")
        domain = _email(entry["from"]).rpartition("@")[2]
        ids[local] = entry.get("message_id", f"{stem}.{local}@{domain}")

    def resolve(reference: str) -> str:
        return reference if "@" in reference else ids[reference]

    messages = []
    for entry in entries:
        moment = entry.get("date")
        arrival = entry.get("arrival", moment)
        if arrival is None:
            raise ValueError(f"{stem}: message {entry['id']} has neither date nor arrival")
        folders = tuple(entry.get("folders", [entry.get("folder", "inbox")]))
        in_reply_to = entry.get("in_reply_to")
        messages.append(
            ScenarioMessage(
                local_id=entry["id"],
                account=entry.get("account", first),
                folders=folders,
                sender=entry["from"],
                to=tuple(entry.get("to", ())),
                cc=tuple(entry.get("cc", ())),
                date=moment,
                arrival=arrival,
                subject=entry.get("subject", ""),
                message_id=ids[entry["id"]],
                in_reply_to=resolve(in_reply_to) if in_reply_to else None,
                references=tuple(resolve(ref) for ref in entry.get("references", ())),
                thread_id=entry.get("thread_id"),
                headers=tuple((str(k), str(v)) for k, v in entry.get("headers", {}).items()),
                body=entry.get("body", ""),
                report=entry.get("report"),
                calendar=entry.get("calendar"),
            )
        )
    return tuple(messages)


def _expectation(entry: dict[str, Any], first: str) -> Expectation:
    stage = entry["next_stage"]
    return Expectation(
        account=entry.get("account", first),
        prospect=entry["prospect"],
        status=entry["status"],
        followups_sent=entry["followups_sent"],
        next_stage=None if stage == "none" else int(stage),
        reason=entry["reason"],
        next_action_at=entry.get("next_action_at"),
        checks_next_action="next_action_at" in entry,
        name=entry.get("name"),
        company=entry.get("company"),
        subject=entry.get("subject"),
        commitment=entry.get("commitment"),
    )


# -- addresses and headers --------------------------------------------------------------------


def _decoded(text: str) -> str:
    if "=?" not in text:
        return text
    return str(make_header(decode_header(text)))


def _split(value: str) -> tuple[str, str]:
    name, address = email.utils.parseaddr(value)
    if not address:
        raise ValueError(f"not an address: {value!r}")
    return name, address


def _email(value: str) -> str:
    return _split(value)[1].lower()


def _rules_address(value: str) -> Address:
    name, address = _split(value)
    return Address(address.strip().lower(), _decoded(name))


def _header_address(value: str) -> str:
    """`Name <addr>` with the name quoted or RFC 2047-encoded as needed."""
    name, address = _split(value)
    if "=?" in name:  # already encoded in the scenario: keep the words as written
        return f"{name} <{address}>"
    if not name:
        return address
    return (
        str(HeaderAddress(display_name=name, addr_spec=address))
        if name.isascii()
        else (email.utils.formataddr((name, address), charset="utf-8"))
    )


def _header_text(value: str) -> str:
    if value.isascii():
        return value
    return make_header([(value.encode("utf-8"), "utf-8")]).encode()


def _join(lines: list[str], body: str) -> bytes:
    text = _CRLF.join(lines) + _CRLF + _CRLF + body.replace("\r\n", "\n").replace("\n", _CRLF)
    return (text if text.endswith(_CRLF) else text + _CRLF).encode("utf-8")


def _text_part(body: str) -> str:
    text = body.replace("\r\n", "\n").replace("\n", _CRLF)
    return (
        f"Content-Type: text/plain; charset=utf-8{_CRLF}"
        f"Content-Transfer-Encoding: 8bit{_CRLF}{_CRLF}{text}{_CRLF}"
    )


def _report_part(report: dict[str, Any], sender: str) -> str:
    kind = report.get("type", "delivery-status")
    if kind == "disposition-notification":
        fields = [
            "Reporting-UA: relight-scenarios",
            *(f"Final-Recipient: rfc822; {r}" for r in _report_recipients(report, sender)),
            "Disposition: manual-action/MDN-sent-manually; displayed",
        ]
    else:
        fields = [f"Reporting-MTA: dns; {_email(sender).rpartition('@')[2]}", ""]
        for recipient in report.get("recipients", ()):
            fields += [
                f"Final-Recipient: rfc822; {recipient}",
                f"Action: {report.get('action', 'failed')}",
                f"Status: {report.get('status', '5.1.1')}",
                "",
            ]
    return f"Content-Type: message/{kind}{_CRLF}{_CRLF}" + _CRLF.join(fields) + _CRLF


def _report_recipients(report: dict[str, Any], sender: str) -> list[str]:
    """The report's recipients; a read receipt's default is its sender (who read it)."""
    recipients = [str(recipient) for recipient in report.get("recipients", ())]
    if not recipients and report.get("type") == "disposition-notification":
        recipients = [_email(sender)]
    return recipients


def _calendar_part(method_status: str, sender: str, subject: str) -> str:
    lines = [
        "BEGIN:VCALENDAR",
        "METHOD:REPLY",
        "PRODID:-//relight scenarios//EN",
        "VERSION:2.0",
        "BEGIN:VEVENT",
        f"ATTENDEE;PARTSTAT={method_status}:mailto:{_email(sender)}",
        f"SUMMARY:{_decoded(subject)}",
        "END:VEVENT",
        "END:VCALENDAR",
    ]
    return (
        f"Content-Type: text/calendar; charset=utf-8; method=REPLY{_CRLF}{_CRLF}"
        + _CRLF.join(lines)
        + _CRLF
    )
