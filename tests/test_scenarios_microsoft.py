"""Every scenario end to end through Microsoft's APIs: the Graph connector against the Graph
fake, the EWS connector against the EWS fake, then `relight sync` and `relight report`.

What `test_scenarios_dovecot.py` does for IMAP, with each scenario message filed as
Exchange holds it: in Inbox, Sent Items or Drafts (a copy in each of its folders), with
its display names and subject decoded, its Internet headers (the classification headers,
Content-Type included) as the item's internet message headers, its raw RFC 5322 bytes as
its MIME. Exchange turns a delivery or read report into a report item: EWS gives it with
the ItemClass that MS-OXCMAIL 2.2.3.7.1.1 names (REPORT.IPM.Note.NDR for a failed
delivery, .Delayed.DR, .DR, and .IPNRN for a read notification) and the multipart/report
as its MimeContent; Graph lists it as a message whose MIME (`/$value`) is that report. A
calendar response is a meeting response item (IPM.Schedule.Meeting.Resp.Pos, ...).
Conversations: the Graph fake derives them from In-Reply-To; the EWS items of a thread get
the conversation id of the thread's first Message-ID.

Each account of a scenario gets a fake of its own (a fake holds one mailbox).
"""

from __future__ import annotations

import contextlib
import email.parser
import email.policy
import email.utils
import hashlib
import json
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime
from email.header import decode_header, make_header
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, cast

import pytest

from daemon.cli import main, open_store
from daemon.config import load_config
from daemon.evaluation import evaluate_team
from rules.prospects import AccountView
from tests.support.ews_fake import EwsFake
from tests.support.graph_fake import GraphFake
from tests.support.scenarios import Scenario, ScenarioMessage
from tests.test_scenarios_dovecot import SCENARIOS, _config_toml, _value

if TYPE_CHECKING:
    from tests.support.dovecot import DovecotServer

pytestmark = pytest.mark.timeout(120)

CLIENT_ID = "22222222-2222-2222-2222-222222222222"
SECRET = "scenario-Secret-7c1e"
SECRET_ENV = "RELIGHT_TEST_SCENARIO_SECRET"
GRAPH_FOLDERS = {"inbox": "inbox", "sent": "sentitems", "drafts": "drafts"}
EWS_FOLDERS = GRAPH_FOLDERS  # the distinguished folder ids have the same names
GRAPH_BUILT_HEADERS = frozenset(  # the fake writes these itself, from the message's fields
    ("message-id", "subject", "from", "to", "date", "in-reply-to", "references")
)
MEETING_RESPONSES = {  # iCalendar PARTSTAT -> the class Exchange gives the response item
    "ACCEPTED": "IPM.Schedule.Meeting.Resp.Pos",
    "DECLINED": "IPM.Schedule.Meeting.Resp.Neg",
    "TENTATIVE": "IPM.Schedule.Meeting.Resp.Tent",
}
REPORT_SUFFIXES = {  # RFC 3464 Action -> the report class suffix (MS-OXCMAIL 2.2.3.7.1.1)
    "delivered": "DR",
    "expanded": "Expanded.DR",
    "relayed": "Relayed.DR",
    "delayed": "Delayed.DR",
    "failed": "NDR",
}


@dataclass(frozen=True)
class Mail:
    """One scenario message as Exchange presents it, whatever the API."""

    sender: tuple[str, str]
    to: tuple[tuple[str, str], ...]
    cc: tuple[tuple[str, str], ...]
    subject: str
    message_id: str  # with angle brackets, as both APIs give ids
    in_reply_to: str | None
    references: tuple[str, ...]
    sent: datetime
    received: datetime
    headers: tuple[tuple[str, str], ...]  # the Internet headers, in order
    body: str
    mime: bytes
    item_class: str
    conversation_root: str

    @classmethod
    def of(cls, message: ScenarioMessage) -> Mail:
        raw = message.as_raw()
        parsed = email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(raw)
        return cls(
            sender=_person(message.sender),
            to=tuple(map(_person, message.to)),
            cc=tuple(map(_person, message.cc)),
            subject=_decoded(message.subject),
            message_id=f"<{message.message_id}>",
            in_reply_to=f"<{message.in_reply_to}>" if message.in_reply_to else None,
            references=tuple(f"<{ref}>" for ref in message.references),
            sent=message.date or message.arrival,  # no Date: the time it reached the server
            received=message.arrival,
            headers=tuple((name, str(value)) for name, value in parsed.items()),
            body=message.body,
            mime=raw,
            item_class=_item_class(message),
            conversation_root=(
                message.references[0]
                if message.references
                else message.in_reply_to or message.message_id
            ),
        )


def _decoded(text: str) -> str:
    return str(make_header(decode_header(text))) if "=?" in text else text


def _person(value: str) -> tuple[str, str]:
    name, address = email.utils.parseaddr(value)
    return _decoded(name), address


def _item_class(message: ScenarioMessage) -> str:
    if message.report is not None:
        if message.report.get("type") == "disposition-notification":
            return "REPORT.IPM.Note.IPNRN"
        return f"REPORT.IPM.Note.{REPORT_SUFFIXES[message.report.get('action', 'failed')]}"
    if message.calendar is not None:
        return MEETING_RESPONSES[message.calendar.upper()]
    return "IPM.Note"


def _mails(scenario: Scenario, account: str) -> Iterator[tuple[str, Mail]]:
    """(folder, mail) for each copy in the account's mailbox, in the scenario's order."""
    for message in scenario.messages:
        if message.account == account:
            mail = Mail.of(message)
            for folder in message.folders:
                yield folder, mail


# -- the two kinds of mailbox ------------------------------------------------------------------


def _graph_account(stack: ExitStack, scenario: Scenario, view: AccountView, tmp: Path) -> str:
    """A Graph fake holding the account's mail; the account's config table."""
    mailbox = sorted(view.addresses)[0]
    directory = tmp / f"graph-{view.name}"
    directory.mkdir()
    fake = stack.enter_context(GraphFake(directory, mailbox=mailbox, owner_name=view.rep_name))
    stack.callback(lambda: _no_errors(fake))
    fake.add_client(CLIENT_ID, secret=SECRET)
    for folder, mail in _mails(scenario, view.name):
        fake.add_message(
            GRAPH_FOLDERS[folder],
            sender=mail.sender[1],
            sender_name=mail.sender[0],
            to=mail.to,
            cc=mail.cc,
            subject=mail.subject,
            body=mail.body,
            unique_body=mail.body,
            internet_message_id=mail.message_id,
            in_reply_to=mail.in_reply_to,
            references=mail.references,
            headers=tuple(
                (name, value)
                for name, value in mail.headers
                if name.lower() not in GRAPH_BUILT_HEADERS
            ),
            sent=mail.sent,
            received=mail.received,
            mime=mail.mime,
        )
    return _account_toml(
        view,
        kind="graph",
        mailbox=mailbox,
        tenant_id=fake.tenant_id,
        client_id=CLIENT_ID,
        client_secret_env=SECRET_ENV,
        graph_url=fake.graph_url,
        authority_url=fake.authority_url,
        tls_ca_file=str(fake.ca_file),
    )


def _no_errors(fake: GraphFake) -> None:
    assert fake.errors == []


def _ews_account(stack: ExitStack, scenario: Scenario, view: AccountView, tmp: Path) -> str:
    """An EWS fake holding the account's mail; the account's config table."""
    mailbox = sorted(view.addresses)[0]
    directory = tmp / f"ews-{view.name}"
    directory.mkdir()
    fake = stack.enter_context(EwsFake(directory, mailbox=mailbox, users={view.name: SECRET}))
    for folder, mail in _mails(scenario, view.name):
        fake.add(
            EWS_FOLDERS[folder],
            subject=mail.subject,
            sender=mail.sender,
            to=list(mail.to),
            cc=list(mail.cc),
            message_id=mail.message_id,
            in_reply_to=mail.in_reply_to,
            references=" ".join(mail.references) or None,
            conversation_id=_conversation_id(mail.conversation_root),
            sent=mail.sent,
            received=mail.received,
            # Transport headers come with delivered mail; the rep's own items have none.
            headers=list(mail.headers) if folder == "inbox" else [],
            body=mail.body,
            mime=mail.mime,
            item_class=mail.item_class,
            is_draft=folder == "drafts",
        )
    return _account_toml(
        view,
        kind="ews",
        mailbox=mailbox,
        ews_url=fake.url,
        auth="basic",
        username=view.name,
        password_env=SECRET_ENV,
        tls_ca_file=str(fake.ca_file),
    )


def _conversation_id(root: str) -> str:
    return "AAQkADYz" + hashlib.sha256(root.encode()).hexdigest()[:40]


def _account_toml(view: AccountView, **settings: str) -> str:
    lines = [
        "[[accounts]]",
        f"name = {_value(view.name)}",
        f"rep_name = {_value(view.rep_name or view.name)}",
        f"addresses = {_value(sorted(view.addresses))}",
        *(f"{key} = {_value(value)}" for key, value in settings.items()),
    ]
    return "\n".join(lines) + "\n"


Kind = Callable[[ExitStack, Scenario, AccountView, Path], str]
KINDS: dict[str, Kind] = {"graph": _graph_account, "ews": _ews_account}


# -- the run -----------------------------------------------------------------------------------


def _rules_toml(scenario: Scenario, tmp_path: Path) -> str:
    """The [daemon] and [rules] tables of test_scenarios_dovecot's config (no accounts)."""
    no_server = cast("DovecotServer", SimpleNamespace(port=0))
    return _config_toml(scenario, no_server, tmp_path).split("\n[[accounts]]\n", 1)[0] + "\n"


def _run(
    kind: str,
    scenario: Scenario,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv(SECRET_ENV, SECRET)
    monkeypatch.delenv("RELIGHT_CONFIG", raising=False)
    config = tmp_path / "relight.toml"
    with ExitStack() as stack:
        tables = [KINDS[kind](stack, scenario, view, tmp_path) for view in scenario.team.accounts]
        config.write_text("\n".join([_rules_toml(scenario, tmp_path), *tables]))
        assert main(["--config", str(config), "sync"]) == 0, capsys.readouterr().err
    capsys.readouterr()
    now = scenario.now.isoformat()
    assert main(["report", "--config", str(config), "--format", "json", "--now", now]) == 0
    rows = {(row["account"], row["prospect"]): row for row in json.loads(capsys.readouterr().out)}
    loaded = load_config(config, resolve_secrets=False)
    with contextlib.closing(open_store(loaded)) as store:
        evaluated = {(s.account, s.prospect): s for s in evaluate_team(store, loaded, scenario.now)}

    expected = {(e.account, e.prospect): e for e in scenario.expected}
    assert set(rows) == set(expected)
    for key, expectation in expected.items():
        row = rows[key]
        where = f"{key}: {row['reason']}"
        assert row["status"] == expectation.status, where
        assert row["followups_sent"] == expectation.followups_sent, where
        assert row["next_stage"] == expectation.next_stage, where
        assert expectation.reason in row["reason"], where
        if expectation.checks_next_action:
            due = row["next_action_at"]
            want = expectation.next_action_at
            assert (None if due is None else datetime.fromisoformat(due)) == want, where
        for field in ("name", "company", "subject"):
            wanted = getattr(expectation, field)
            assert wanted is None or row[field] == wanted, f"{field}: {where}"
        if expectation.commitment is not None:
            found = evaluated[key].commitment
            quoted = found.quoted if found is not None else ""
            wanted = expectation.commitment
            assert (wanted in quoted) if wanted else not quoted, f"commitment {quoted!r}: {where}"


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda scenario: scenario.name)
def test_scenario_through_graph_and_the_command_line(
    scenario: Scenario,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Each account's mail in a Graph fake: sync, then report --format json --now gives
    each prospect its expected status."""
    _run("graph", scenario, tmp_path, monkeypatch, capsys)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda scenario: scenario.name)
def test_scenario_through_ews_and_the_command_line(
    scenario: Scenario,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Each account's mail in an EWS fake: sync, then report --format json --now gives
    each prospect its expected status."""
    _run("ews", scenario, tmp_path, monkeypatch, capsys)
