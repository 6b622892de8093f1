"""One team, three kinds of mailbox: IMAP (Dovecot), Microsoft 365 (the Graph fake) and
Exchange (the EWS fake) hold the same conversation; `relight once` gives each the same
status and the same draft, threaded the way each server threads."""

from __future__ import annotations

import email
import email.policy
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest

from daemon.cli import main
from tests.conftest import DovecotUser
from tests.support.ews_fake import EwsFake
from tests.support.graph_fake import GraphFake
from tests.support.scenarios import _split, load_scenario

pytestmark = pytest.mark.timeout(120)

SCENARIO = load_scenario(Path(__file__).parent / "scenarios" / "engaged_then_silent.toml")
NOW = SCENARIO.now.isoformat()  # alice ghosted: stage 1 due
SCENARIO_REP = "dana@acmesoft.example"
SCENARIO_PROSPECT = "alice@bigcorp.example"
CLIENT_ID = "11111111-1111-1111-1111-111111111111"
GRAPH_SECRET = "graph-Secret-8f2c"
EWS_PASSWORD = "ews-Password-51d0"
KINDS = {  # kind: (account, rep address, the prospect's company)
    "imap": ("dana", "dana@acmesoft.example", "imapcorp.example"),
    "graph": ("lee", "lee@acmesoft.example", "graphcorp.example"),
    "ews": ("kim", "kim@acmesoft.example", "ewscorp.example"),
}


@dataclass(frozen=True)
class Mail:
    """One message of the scenario, moved into one kind's mailbox."""

    folder: str  # "inbox" or "sent"
    sender: tuple[str, str]
    to: tuple[tuple[str, str], ...]
    subject: str
    at: datetime
    message_id: str
    in_reply_to: str | None
    references: tuple[str, ...]
    body: str


def conversation(kind: str) -> list[Mail]:
    """The scenario's messages with this kind's rep and prospect (their own company)."""
    _, rep, company = KINDS[kind]

    def moved(address: str) -> str:
        address = address.lower()
        if address == SCENARIO_REP:
            return rep
        return address.replace("bigcorp.example", company)

    mails = []
    for message in SCENARIO.messages:
        name, address = _split(message.sender)
        recipients = tuple((n, moved(a)) for n, a in map(_split, message.to))
        mails.append(
            Mail(
                folder=message.folders[0],
                sender=(name, moved(address)),
                to=recipients,
                subject=message.subject,
                at=message.at,
                message_id=f"{kind}.{message.message_id}",
                in_reply_to=f"{kind}.{message.in_reply_to}" if message.in_reply_to else None,
                references=tuple(f"{kind}.{ref}" for ref in message.references),
                body=message.body,
            )
        )
    return mails


def raw(mail: Mail) -> bytes:
    message = email.message.EmailMessage(policy=email.policy.SMTP)
    message["From"] = email.headerregistry.Address(mail.sender[0], addr_spec=mail.sender[1])
    message["To"] = [email.headerregistry.Address(n, addr_spec=a) for n, a in mail.to]
    message["Subject"] = mail.subject
    message["Date"] = mail.at
    message["Message-ID"] = f"<{mail.message_id}>"
    if mail.in_reply_to:
        message["In-Reply-To"] = f"<{mail.in_reply_to}>"
        message["References"] = " ".join(f"<{ref}>" for ref in mail.references)
    message.set_content(mail.body)
    return message.as_bytes()


def to_graph(server: GraphFake, mail: Mail) -> None:
    """File the message in the Graph fake as Microsoft 365 holds it."""
    server.add_message(
        "sentitems" if mail.folder == "sent" else "inbox",
        sender=mail.sender[1],
        sender_name=mail.sender[0],
        to=tuple(address for _, address in mail.to),
        subject=mail.subject,
        body=mail.body,
        unique_body=mail.body,
        internet_message_id=f"<{mail.message_id}>",
        in_reply_to=f"<{mail.in_reply_to}>" if mail.in_reply_to else None,
        sent=mail.at,
    )


def to_ews(server: EwsFake, mail: Mail) -> None:
    """File the message in the EWS fake, in the one conversation of the test."""
    server.add(
        "sentitems" if mail.folder == "sent" else "inbox",
        subject=mail.subject,
        sender=mail.sender,
        to=list(mail.to),
        message_id=f"<{mail.message_id}>",
        in_reply_to=f"<{mail.in_reply_to}>" if mail.in_reply_to else None,
        references=" ".join(f"<{ref}>" for ref in mail.references) or None,
        conversation_id="C-the-thread",
        sent=mail.at,
        received=mail.at,
        body=mail.body,
    )


@pytest.fixture
def graph(tmp_path: Path) -> Iterator[GraphFake]:
    directory = tmp_path / "graph"
    directory.mkdir()
    with GraphFake(directory, mailbox=KINDS["graph"][1]) as server:
        server.add_client(CLIENT_ID, secret=GRAPH_SECRET)
        for mail in conversation("graph"):
            to_graph(server, mail)
        yield server
    assert server.errors == []


@pytest.fixture
def ews(tmp_path: Path) -> Iterator[EwsFake]:
    directory = tmp_path / "ews"
    directory.mkdir()
    with EwsFake(directory, mailbox=KINDS["ews"][1], users={"kim": EWS_PASSWORD}) as server:
        for mail in conversation("ews"):
            to_ews(server, mail)
        yield server


@pytest.fixture
def config(
    dovecot_user: DovecotUser,
    graph: GraphFake,
    ews: EwsFake,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Path:
    """The team's config: dana on Dovecot, lee on the Graph fake, kim on the EWS fake."""
    server = dovecot_user.server
    for mail in conversation("imap"):
        server.append(dovecot_user.name, "Sent" if mail.folder == "sent" else "INBOX", raw(mail))
    monkeypatch.setenv("RELIGHT_TEST_IMAP", dovecot_user.password)
    monkeypatch.setenv("RELIGHT_TEST_GRAPH", GRAPH_SECRET)
    monkeypatch.setenv("RELIGHT_TEST_EWS", EWS_PASSWORD)
    monkeypatch.delenv("RELIGHT_CONFIG", raising=False)
    path = tmp_path / "relight.toml"
    path.write_text(
        f"""
[daemon]
state_dir = "{tmp_path}/state"
timezone = "Europe/Berlin"

[[accounts]]
name = "dana"
kind = "imap"
rep_name = "Dana Reyes"
addresses = ["{KINDS["imap"][1]}"]
host = "127.0.0.1"
port = {server.port}
security = "none"
username = "{dovecot_user.name}"
password_env = "RELIGHT_TEST_IMAP"

[[accounts]]
name = "lee"
kind = "graph"
rep_name = "Lee Park"
addresses = ["{KINDS["graph"][1]}"]
tenant_id = "{graph.tenant_id}"
client_id = "{CLIENT_ID}"
client_secret_env = "RELIGHT_TEST_GRAPH"
graph_url = "{graph.graph_url}"
authority_url = "{graph.authority_url}"
tls_ca_file = "{graph.ca_file}"

[[accounts]]
name = "kim"
kind = "ews"
rep_name = "Kim Ode"
addresses = ["{KINDS["ews"][1]}"]
ews_url = "{ews.url}"
auth = "basic"
username = "kim"
password_env = "RELIGHT_TEST_EWS"
tls_ca_file = "{ews.ca_file}"
"""
    )
    return path


def report(config: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, dict[str, object]]:
    capsys.readouterr()
    assert main(["--config", str(config), "report", "--format", "json", "--now", NOW]) == 0
    return {row["account"]: row for row in json.loads(capsys.readouterr().out)}


def greeting_and_text(body: str, rep_name: str) -> str:
    """The draft's words without the signature, line endings as a reader sees them."""
    text = body.replace("\r\n", "\n").strip()
    return text.removesuffix(rep_name).strip()


def test_three_kinds_same_conversation_same_status_and_draft(
    config: Path,
    dovecot_user: DovecotUser,
    graph: GraphFake,
    ews: EwsFake,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The same conversation in an IMAP, a Graph and an EWS mailbox: one `relight once`
    leaves each rep the same status and the same stage 1 draft, threaded into that
    server's conversation; a second run writes nothing anywhere."""
    assert main(["--config", str(config), "once", "--now", NOW]) == 0
    rows = report(config, capsys)
    assert set(rows) == {"dana", "lee", "kim"}
    for row in rows.values():
        assert row["status"] == "ghosted"
        assert (row["followups_sent"], row["next_stage"]) == (0, 1)
        assert row["subject"] == "Pricing for BigCorp"
    reasons = {row["reason"] for row in rows.values()}
    assert len(reasons) == 1, reasons

    # IMAP: the draft in Dovecot's Drafts.
    with dovecot_user.server.client(dovecot_user.name) as client:
        client.select_folder("Drafts", readonly=True)
        [(_uid, item)] = client.fetch(client.search("ALL"), ["BODY.PEEK[]"]).items()
    imap_draft = email.message_from_bytes(item[b"BODY[]"], policy=email.policy.default)
    imap_thread = [m for m in conversation("imap") if m.folder == "sent"][-1]
    assert imap_draft["In-Reply-To"] == f"<{imap_thread.message_id}>"
    imap_text = greeting_and_text(imap_draft.get_content(), "Dana Reyes")

    # Graph: one draft, in the conversation of the original.
    [graph_draft] = graph.drafts()
    originals = [m for m in graph.messages.values() if not m.is_draft]
    assert graph_draft.conversation_id == originals[0].conversation_id
    graph_text = greeting_and_text(graph_draft.body_text, "Lee Park")

    # EWS: one draft, a reply in the same conversation; Exchange puts the conversation's
    # history under it, as Outlook does, below its separator line.
    [ews_draft] = ews.items("drafts")
    assert ews_draft.conversation_id == "C-the-thread"
    ours, separator, history = re.split(r"\r?\n(_{10,})\r?\n", ews_draft.text, maxsplit=1)
    assert separator
    assert "Great, I'll send the contract draft meanwhile." in history
    ews_text = greeting_and_text(ours, "Kim Ode")

    assert imap_text.startswith("Hi Alice,")
    # The prospect's own words, read from each server's copy of the reply.
    assert "you'd discuss it with the team next week" in imap_text
    assert imap_text == graph_text, f"{imap_text!r}\n---\n{graph_text!r}"
    assert imap_text == ews_text, f"{imap_text!r}\n---\n{ews_text!r}"

    capsys.readouterr()
    assert main(["--config", str(config), "once", "--now", NOW]) == 0
    assert "written" not in capsys.readouterr().out
    assert len(graph.drafts()) == 1
    assert len(ews.items("drafts")) == 1


def test_a_reply_retracts_the_untouched_draft_in_all_three(
    config: Path,
    dovecot_user: DovecotUser,
    graph: GraphFake,
    ews: EwsFake,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Alice answers in each mailbox while Relight's draft waits untouched: the next
    `relight once` retracts the three drafts, each through its own server's API."""
    assert main(["--config", str(config), "once", "--now", NOW]) == 0
    later = SCENARIO.now.replace(hour=14)
    for kind, (_, rep, company) in KINDS.items():
        last = conversation(kind)[-1]
        reply = Mail(
            folder="inbox",
            sender=("Alice Doe", f"alice@{company}"),
            to=(("", rep),),
            subject="Re: Pricing for BigCorp",
            at=later,
            message_id=f"{kind}.answer@{company}",
            in_reply_to=last.message_id,
            references=(*last.references, last.message_id),
            body="Thanks, let's talk on Thursday.",
        )
        if kind == "imap":
            dovecot_user.server.append(dovecot_user.name, "INBOX", raw(reply))
        elif kind == "graph":
            to_graph(graph, reply)
        else:
            to_ews(ews, reply)
    capsys.readouterr()
    assert main(["--config", str(config), "once", "--now", later.isoformat()]) == 0
    retracted = sorted(
        line.split("\t")[0] for line in capsys.readouterr().out.splitlines() if "retracted" in line
    )
    assert retracted == ["dana", "kim", "lee"]
    assert graph.drafts() == []
    assert ews.items("drafts") == []
    with dovecot_user.server.client(dovecot_user.name) as client:
        client.select_folder("Drafts", readonly=True)
        assert client.search("ALL") == []
    assert {row["status"] for row in report(config, capsys).values()} == {"replied"}
