"""Follow-up drafts composed from a prospect's status and a playbook template (SPEC 5, 6).

`compose(status, ...)` turns one `ProspectStatus` with a next stage into a `Draft`: the
reply's headers, its body rendered from the stage's playbook, and `Draft.as_bytes()`, the
RFC 5322 message a connector appends to the Drafts folder. Nothing here reads files or the
clock: the daemon reads the template files (the shipped ones in `SHIPPED_TEMPLATES_DIR`,
each overridden by a file of the same name in `drafts.templates_dir`) and hands their text
to `Playbooks`, and passes `now`. Theory of operation:

* **Templates.** One Jinja2 file per playbook, `<playbook>.txt.j2`, rendered in a sandbox
  (admins write them) with `StrictUndefined`, so a misspelt variable is an error, never a
  silent gap. `Playbooks` compiles every template and renders each once with sample values
  when built: `check-config` reports a broken one as a `TemplateError` naming the playbook
  and the line. A cold prospect (`rules.draft_cold`) gets `cold_bump` whatever its stage's
  playbook: the others presuppose a prospect who once answered.
* **Variables** (`TEMPLATE_VARIABLES`): `first_name` (None when unsure, see
  `rules.names`), `full_name`, `prospect_address`, `company` (the prospect's mail domain),
  `rep_name`, `signature` (the rep's name when none is configured), `subject` (the base
  subject, "" when none), `days_since_contact` (calendar days since the last message
  either way), `last_reply_date` ("Tue 3 Nov", None when the prospect never wrote),
  `commitment` (`rules.commitment.Commitment`: `.quoted`, `.sentence`, `.kind`; None when
  none was found), `stage` and `followups_sent`. Absent values are None, so templates test
  them with `{% if commitment %}`. The rendered text is tidied: trailing spaces and
  surplus blank lines go, and it ends with one newline.
* **One draft per (account, prospect, stage), ever.** `draft_key` hashes the three; the
  Message-ID `<relight.{key}@{rep's domain}>` and the `X-Relight-Key` header carry it, so
  a second composition of the same draft is recognisable in the Drafts folder.
* **A proper reply.** `Re: <base subject>` with one prefix, `In-Reply-To` the message the
  draft answers, `References` its references plus its id, trimmed to the first and the
  last ten when long (RFC 5322 3.6.4). Message-ids are folded between ids, never encoded.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from email.headerregistry import Address as HeaderAddress
from email.message import EmailMessage
from email.policy import EmailPolicy
from email.utils import format_datetime
from pathlib import Path
from types import MappingProxyType, TracebackType
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jinja2
from jinja2.sandbox import SandboxedEnvironment

from rules.commitment import Commitment
from rules.message import Address
from rules.names import first_name
from rules.status import ProspectStatus, Status
from rules.subjects import base_subject

__all__ = [
    "COLD_PLAYBOOK",
    "SHIPPED_PLAYBOOKS",
    "SHIPPED_TEMPLATES_DIR",
    "TEMPLATE_SUFFIX",
    "TEMPLATE_VARIABLES",
    "Draft",
    "Playbooks",
    "TemplateError",
    "compose",
    "draft_key",
    "shipped_playbooks",
    "template_file_name",
]

SHIPPED_TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
"""Where the shipped templates live; the daemon reads them (this module reads no file)."""

TEMPLATE_SUFFIX = ".txt.j2"
COLD_PLAYBOOK = "cold_bump"
SHIPPED_PLAYBOOKS = ("release_pressure", "accountability", "apology", "closure", COLD_PLAYBOOK)

TEMPLATE_VARIABLES = (
    *("first_name", "full_name", "prospect_address", "company", "rep_name", "signature"),
    *("subject", "days_since_contact", "last_reply_date", "commitment", "stage"),
    "followups_sent",
)

_NO_SUBJECT = "Our conversation"  # a reply to a subjectless thread the prospect wrote in
_NO_SUBJECT_COLD = "My last message"
_KEPT_REFERENCES = 10  # after the first: RFC 5322 3.6.4, as mail clients trim
_ID_HEADERS = frozenset({"message-id", "in-reply-to", "references"})
_MAX_LINE = 78
_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_KEY = re.compile(r"[0-9a-f]{32}")
_MESSAGE_ID = re.compile(r"[\x21-\x3b\x3d\x3f-\x7e]+")  # printable ASCII but < and >


def shipped_playbooks() -> tuple[str, ...]:
    """The playbooks Relight ships a template for, one file each in `SHIPPED_TEMPLATES_DIR`."""
    return SHIPPED_PLAYBOOKS


def template_file_name(playbook: str) -> str:
    """The file holding a playbook's template, shipped or in `drafts.templates_dir`."""
    return f"{playbook}{TEMPLATE_SUFFIX}"


def draft_key(account: str, prospect: str, stage: int) -> str:
    """The deterministic key of the one draft for (account, prospect, stage): 32 hex digits."""
    if not account or not prospect:
        raise ValueError("a draft key needs the account and the prospect")
    if stage < 1:
        raise ValueError(f"stages count from 1, got {stage}")
    digest = hashlib.sha256(f"{account}\n{prospect}\n{stage}".encode()).hexdigest()
    return digest[:32]


# -- templates --------------------------------------------------------------------------------


class TemplateError(ValueError):
    """A playbook template that does not compile or render; names the playbook and line."""

    def __init__(self, playbook: str, line: int | None, problem: str) -> None:
        self.playbook = playbook
        self.line = line
        self.problem = problem
        where = f"template {playbook!r}" + (f", line {line}" if line is not None else "")
        super().__init__(f"{where}: {problem}")


@dataclass(frozen=True)
class Playbooks:
    """The compiled templates, by playbook name; built from the templates' text.

    Every template is compiled, then rendered with sample values (with and without a
    first name, a commitment and a reply date), so a misspelt variable surfaces here.
    """

    sources: Mapping[str, str]
    _templates: Mapping[str, jinja2.Template] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        sources = MappingProxyType(dict(self.sources))
        object.__setattr__(self, "sources", sources)
        for name, text in sources.items():
            if not isinstance(name, str) or not name.strip() or "/" in name:
                raise ValueError(f"bad playbook name {name!r}")
            if not isinstance(text, str):
                raise TypeError(f"template {name!r}: expected text, got {type(text).__name__}")
        environment = SandboxedEnvironment(
            loader=jinja2.FunctionLoader(lambda name: _source(sources, name)),
            undefined=jinja2.StrictUndefined,
            autoescape=False,
            keep_trailing_newline=True,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        templates: dict[str, jinja2.Template] = {}
        for name in sources:
            try:
                templates[name] = environment.get_template(name)
            except jinja2.TemplateSyntaxError as exc:
                problem = exc.message or "syntax error"
                raise TemplateError(_playbook_of(exc.name, name), exc.lineno, problem) from exc
        object.__setattr__(self, "_templates", MappingProxyType(templates))
        for name in templates:
            for sample in _SAMPLES:
                self.render(name, sample)

    def __contains__(self, playbook: object) -> bool:
        return playbook in self._templates

    @property
    def names(self) -> frozenset[str]:
        return frozenset(self._templates)

    def missing(self, playbooks: Iterable[str]) -> tuple[str, ...]:
        """Those of `playbooks` without a template (for `check-config`), in order."""
        return tuple(dict.fromkeys(name for name in playbooks if name not in self._templates))

    def render(self, playbook: str, variables: Mapping[str, object]) -> str:
        """The playbook's text for `variables` (`TEMPLATE_VARIABLES`), tidied."""
        template = self._templates.get(playbook)
        if template is None:
            raise TemplateError(playbook, None, "no such template")
        try:
            text = template.render(variables)
        except Exception as exc:  # an admin's template may raise anything: 1/0, "a" + 1
            name, line = _where(exc.__traceback__, playbook)
            problem = exc.message if isinstance(exc, jinja2.TemplateError) else str(exc)
            raise TemplateError(name, line, problem or type(exc).__name__) from exc
        return _tidy(text)


def _source(sources: Mapping[str, str], name: str) -> tuple[str, str, Any] | None:
    text = sources.get(name)
    return None if text is None else (text, template_file_name(name), lambda: True)


def _playbook_of(file_name: str | None, default: str) -> str:
    if file_name and file_name.endswith(TEMPLATE_SUFFIX):
        return file_name[: -len(TEMPLATE_SUFFIX)]
    return file_name or default


def _where(traceback: TracebackType | None, playbook: str) -> tuple[str, int | None]:
    """The template and line a render error was raised in (the innermost template frame)."""
    found: tuple[str, int | None] = (playbook, None)
    while traceback is not None:
        file_name = traceback.tb_frame.f_code.co_filename
        if file_name.endswith(TEMPLATE_SUFFIX):
            found = (_playbook_of(file_name, playbook), traceback.tb_lineno)
        traceback = traceback.tb_next
    return found


def _tidy(text: str) -> str:
    """Trailing spaces and doubled spaces gone, at most one blank line in a row, one final
    newline: optional pieces of a template leave no gaps."""
    lines = [re.sub(r"(?<=\S) {2,}(?=\S)", " ", line.rstrip()) for line in text.splitlines()]
    body = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n")
    return f"{body}\n"


_SAMPLE_COMMITMENT = Commitment(
    sentence="We'll discuss it with the team by Friday.",
    quoted="you'd discuss it with the team by Friday",
    kind="next_step",
)
_SAMPLES: tuple[Mapping[str, object], ...] = (
    {
        "first_name": "Anna",
        "full_name": "Anna Schmidt",
        "prospect_address": "anna.schmidt@example.com",
        "company": "example.com",
        "rep_name": "Dana Reyes",
        "signature": "Dana Reyes\nAcmeSoft",
        "subject": "Pricing",
        "days_since_contact": 6,
        "last_reply_date": "Tue 3 Nov",
        "commitment": _SAMPLE_COMMITMENT,
        "stage": 2,
        "followups_sent": 1,
    },
    {
        "first_name": None,
        "full_name": "",
        "prospect_address": "info@example.com",
        "company": "example.com",
        "rep_name": "Dana Reyes",
        "signature": "Dana Reyes",
        "subject": "",
        "days_since_contact": 1,
        "last_reply_date": None,
        "commitment": None,
        "stage": 1,
        "followups_sent": 0,
    },
)


# -- drafts -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Draft:
    """One follow-up draft: headers and body, ready for a connector to write.

    Message-ids are bare, without angle brackets, as in `rules.message.Message`;
    `as_bytes()` adds them.
    """

    key: str
    message_id: str
    sender: Address
    to: Address
    subject: str
    in_reply_to: str | None
    references: tuple[str, ...]
    body: str
    date: datetime
    account: str
    prospect: str
    stage: int
    playbook: str

    def __post_init__(self) -> None:
        if not _KEY.fullmatch(self.key):
            raise ValueError(f"a draft key is 32 lower-case hex digits, got {self.key!r}")
        for message_id in (self.message_id, self.in_reply_to, *self.references):
            if message_id is not None and not _MESSAGE_ID.fullmatch(message_id):
                raise ValueError(f"bad message-id {message_id!r} (bare, no brackets)")
        if not self.subject or "\n" in self.subject or "\r" in self.subject:
            raise ValueError(f"a draft subject is one non-empty line, got {self.subject!r}")
        if not self.body.strip():
            raise ValueError("a draft needs a body")
        if self.date.utcoffset() is None:
            raise ValueError("the draft's date must be timezone-aware")

    def as_message(self) -> EmailMessage:
        """The draft as an `EmailMessage` (UTF-8 text/plain, display names encoded)."""
        message = EmailMessage(policy=_POLICY)
        message["From"] = _header_address(self.sender)
        message["To"] = _header_address(self.to)
        message["Subject"] = self.subject
        message["Date"] = format_datetime(self.date)
        message["Message-ID"] = f"<{self.message_id}>"
        if self.in_reply_to is not None:
            message["In-Reply-To"] = f"<{self.in_reply_to}>"
        if self.references:
            message["References"] = " ".join(f"<{item}>" for item in self.references)
        message["X-Relight-Key"] = self.key
        plain = self.body.isascii() and all(
            len(line) <= _MAX_LINE for line in self.body.splitlines()
        )
        message.set_content(self.body, charset="utf-8", cte="7bit" if plain else "quoted-printable")
        return message

    def as_bytes(self) -> bytes:
        """The RFC 5322 message, CRLF line ends, as IMAP APPEND takes it."""
        return self.as_message().as_bytes(policy=_POLICY)


class _DraftPolicy(EmailPolicy):
    """The SMTP policy, but message-id lists fold between ids and are never encoded:
    the stdlib turns an id too long for one line into an encoded word, which breaks
    threading in every client."""

    def fold_binary(self, name: str, value: str) -> bytes:
        if name.lower() not in _ID_HEADERS:
            return super().fold_binary(name, value)
        lines = [f"{name}:"]
        for item in str(value).split():
            if len(lines[-1]) + 1 + len(item) > _MAX_LINE and lines[-1] != f"{name}:":
                lines.append("")
            lines[-1] = f"{lines[-1]} {item}"
        return (self.linesep.join(lines) + self.linesep).encode("ascii")


_POLICY = _DraftPolicy(linesep="\r\n")


def _header_address(address: Address) -> HeaderAddress:
    return HeaderAddress(display_name=address.name, addr_spec=address.email)


def compose(
    status: ProspectStatus,
    *,
    rep_name: str,
    rep_address: str,
    signature: str,
    playbooks: Playbooks,
    now: datetime,
    timezone: str | tzinfo,
) -> Draft:
    """The follow-up draft for `status`'s next stage, written `now` by the rep.

    `status` must have `next_stage` and `playbook` set; `signature` is
    `drafts.signature` ("" signs with `rep_name`); `timezone` (`daemon.timezone`) is
    where days are counted and dates written.
    """
    if status.next_stage is None or status.playbook is None:
        raise ValueError(f"{status.prospect}: no draft is due ({status.status})")
    if now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    zone = _zone(timezone)
    local_now = now.astimezone(zone)
    sender = Address(rep_address.strip().lower(), " ".join(rep_name.split()))
    key = draft_key(status.account, status.prospect, status.next_stage)
    cold = status.status is Status.COLD
    playbook = COLD_PLAYBOOK if cold else status.playbook
    variables = _variables(status, sender, signature, local_now)
    reply_to = status.reply_to
    return Draft(
        key=key,
        message_id=f"relight.{key}@{_message_id_domain(sender.email)}",
        sender=sender,
        to=Address(status.prospect, " ".join(status.name.split())),
        subject=_subject(status, cold=cold),
        in_reply_to=_usable(reply_to.message_id) if reply_to is not None else None,
        references=_references(reply_to.draft_references) if reply_to is not None else (),
        body=playbooks.render(playbook, variables),
        date=local_now,
        account=status.account,
        prospect=status.prospect,
        stage=status.next_stage,
        playbook=playbook,
    )


def _variables(
    status: ProspectStatus, sender: Address, signature: str, local_now: datetime
) -> dict[str, object]:
    contacts = [moment for moment in (status.last_outbound_at, status.last_inbound_at) if moment]
    days = 0
    if contacts:
        last = max(contacts).astimezone(local_now.tzinfo)
        days = max(0, (local_now.date() - last.date()).days)
    reply = status.last_reply_at
    return {
        "first_name": first_name(status.name, status.prospect),
        "full_name": status.name,
        "prospect_address": status.prospect,
        "company": status.company,
        "rep_name": sender.name,
        "signature": signature.strip("\n") or sender.name,
        "subject": status.subject,
        "days_since_contact": days,
        "last_reply_date": _short_date(reply.astimezone(local_now.tzinfo)) if reply else None,
        "commitment": status.commitment,
        "stage": status.next_stage,
        "followups_sent": status.followups_sent,
    }


def _short_date(moment: datetime) -> str:
    """ "Tue 3 Nov": English whatever the locale, as the templates are."""
    return f"{_WEEKDAYS[moment.weekday()]} {moment.day} {_MONTHS[moment.month - 1]}"


def _subject(status: ProspectStatus, *, cold: bool) -> str:
    reply_to = status.reply_to
    base = base_subject(reply_to.subject) if reply_to is not None else ""
    base = base or base_subject(status.subject)
    return f"Re: {base or (_NO_SUBJECT_COLD if cold else _NO_SUBJECT)}"


def _usable(message_id: str | None) -> str | None:
    """The id, unless a header could not carry it (a broken mailer's spaces or 8-bit)."""
    return message_id if message_id is not None and _MESSAGE_ID.fullmatch(message_id) else None


def _references(references: tuple[str, ...]) -> tuple[str, ...]:
    """The usable ids; the first and the last ten when there are more (RFC 5322 3.6.4)."""
    references = tuple(item for item in references if _usable(item))
    if len(references) <= _KEPT_REFERENCES + 1:
        return references
    return (references[0], *references[-_KEPT_REFERENCES:])


def _message_id_domain(address: str) -> str:
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain:
        raise ValueError(f"the rep's address {address!r} has no domain")
    try:
        return domain.encode("idna").decode("ascii")
    except UnicodeError:
        raise ValueError(f"the rep's address {address!r} has a bad domain") from None


def _zone(timezone: str | tzinfo) -> tzinfo:
    if not isinstance(timezone, str):
        return timezone
    try:
        return ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown timezone {timezone!r}") from None
