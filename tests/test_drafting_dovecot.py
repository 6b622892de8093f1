"""The draft lifecycle against a real Dovecot: `relight once` and `relight draft`."""

from __future__ import annotations

import email
import email.policy
import json
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from daemon import drafting, models
from daemon.cli import main
from daemon.config import load_config
from daemon.store import Store
from tests.conftest import DovecotUser
from tests.support.scenarios import load_scenario
from tests.test_scenarios_dovecot import IMAP_FOLDERS, PASSWORD_ENV, _config_toml

pytestmark = pytest.mark.timeout(120)

SCENARIO = load_scenario(Path(__file__).parent / "scenarios" / "engaged_then_silent.toml")
NOW = SCENARIO.now.isoformat()  # alice: ghosted, stage 1 due
REP = "dana@acmesoft.example"


def raw(sender: str, to: str, subject: str, message_id: str, *, at: datetime, body: str) -> bytes:
    return (
        f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\n"
        f"Message-ID: <{message_id}>\r\nDate: {format_datetime(at)}\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    ).encode()


def alice_replies(box: DovecotUser) -> None:
    """Alice answers an hour after the evaluation moment."""
    reply = raw(
        "Alice Doe <alice@bigcorp.example>", REP, "Re: Pricing for BigCorp",
        "r9@bigcorp.example", at=SCENARIO.now + timedelta(hours=1), body="Yes, let's talk.",
    )  # fmt: skip
    box.server.append(box.name, "INBOX", reply)


def own_drafts(box: DovecotUser) -> list[tuple[set[bytes], str]]:
    return [(f, str(m)) for f, m in drafts_of(box).values() if not m["X-Relight-Key"]]


@pytest.fixture
def team(dovecot_user: DovecotUser, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Dana's mailbox: alice ghosted (stage 1 due), bob replied, carol cold; the config."""
    server, user = dovecot_user.server, dovecot_user.name
    for folder, data, arrival in SCENARIO.as_appends():
        server.append(user, IMAP_FOLDERS[folder], data, when=arrival)
    monday = SCENARIO.now - timedelta(days=8)
    extra = [
        ("Sent", raw(REP, "bob@else.example", "Demo", "b1@acmesoft.example", at=monday,
                     body="Hi Bob")),
        ("INBOX", raw("bob@else.example", REP, "Re: Demo", "b2@else.example",
                      at=monday + timedelta(days=6), body="Sounds good, call me.")),
        ("Sent", raw(REP, "carol@third.example", "Intro", "c1@acmesoft.example", at=monday,
                     body="Hi")),
        ("Drafts", raw(REP, "x@y.example", "mine", "own@acmesoft.example", at=monday,
                       body="my half-written draft")),
    ]  # fmt: skip
    for folder, data in extra:
        server.append(
            user, folder, data, when=monday, flags=(b"\\Draft",) if folder == "Drafts" else ()
        )
    monkeypatch.setenv(PASSWORD_ENV, dovecot_user.password)
    monkeypatch.delenv("RELIGHT_CONFIG", raising=False)
    text = _config_toml(SCENARIO, server, tmp_path).replace(
        f'"{SCENARIO.name}-dana"', f'"{dovecot_user.name}"'
    )
    text = text.replace('kind = "imap"', 'kind = "imap"\nsignature = "Dana\\nAcmeSoft sales"')
    config = tmp_path / "relight.toml"
    config.write_text(text)
    return config


def drafts_of(box: DovecotUser) -> dict[int, tuple[set[bytes], EmailMessage]]:
    """UID -> (flags without \\Recent, parsed message) of every message in Drafts."""
    with box.server.client(box.name) as client:
        client.select_folder("Drafts", readonly=True)
        uids = client.search("ALL")
        data = client.fetch(uids, ["FLAGS", "BODY.PEEK[]"]) if uids else {}
    return {
        uid: (
            set(item[b"FLAGS"]) - {b"\\Recent"},
            email.message_from_bytes(item[b"BODY[]"], policy=email.policy.default),  # type: ignore[misc]
        )
        for uid, item in data.items()
    }


def relight_drafts(box: DovecotUser) -> dict[int, EmailMessage]:
    return {uid: msg for uid, (_, msg) in drafts_of(box).items() if msg["X-Relight-Key"]}


def mailbox_state(box: DovecotUser) -> dict[str, Any]:
    """Every message and its flags in INBOX and Sent (what Relight must never change)."""
    state = {}
    with box.server.client(box.name) as client:
        for folder in ("INBOX", "Sent"):
            client.select_folder(folder, readonly=True)
            uids = client.search("ALL")
            state[folder] = client.fetch(uids, ["FLAGS", "BODY.PEEK[]"]) if uids else {}
    return state


def once(config: Path, now: str = NOW) -> int:
    return main(["--config", str(config), "once", "--now", now])


def draft_rows(config: Path) -> list[tuple[str, int, str]]:
    url = load_config(config, resolve_secrets=False).daemon.database
    with Store.open(url) as store, store.engine.connect() as connection:
        d = models.drafts
        query = select(d.c.prospect, d.c.stage, d.c.state).order_by(d.c.id)
        return [tuple(row) for row in connection.execute(query)]


def test_once_writes_one_threaded_draft_for_the_due_prospect_only(
    team: Path, dovecot_user: DovecotUser, capsys: pytest.CaptureFixture[str]
) -> None:
    """Alice (ghosted) gets a stage 1 draft in Drafts, flagged \\Draft \\Seen, replying to
    her thread; bob (replied) and carol (cold) get none; the rep's own draft, INBOX and
    Sent are unchanged; a second run writes nothing."""
    before = mailbox_state(dovecot_user)
    own_before = [
        entry for entry in drafts_of(dovecot_user).values() if not entry[1]["X-Relight-Key"]
    ]
    assert once(team) == 0
    assert "alice@bigcorp.example\tstage 1\twritten" in capsys.readouterr().out
    [(flags, message)] = [
        entry for entry in drafts_of(dovecot_user).values() if entry[1]["X-Relight-Key"]
    ]
    assert flags == {b"\\Draft", b"\\Seen"}
    assert message["To"] == "Alice Doe <alice@bigcorp.example>"
    assert message["From"] == "Dana Reyes <dana@acmesoft.example>"
    assert message["Subject"] == "Re: Pricing for BigCorp"
    ids = {m.local_id: m.message_id for m in SCENARIO.messages}
    assert message["In-Reply-To"] == f"<{ids['m3']}>"
    assert message["References"].split() == [f"<{ids[i]}>" for i in ("m1", "m2", "m3")]
    assert message.get_content_charset() == "utf-8"
    assert message.get_content().startswith("Hi Alice,")
    assert message.get_content().rstrip().endswith("Dana\r\nAcmeSoft sales")  # its own
    assert mailbox_state(dovecot_user) == before
    own_after = [
        entry for entry in drafts_of(dovecot_user).values() if not entry[1]["X-Relight-Key"]
    ]
    assert [(f, str(m)) for f, m in own_after] == [(f, str(m)) for f, m in own_before]

    assert once(team) == 0
    assert "written" not in capsys.readouterr().out
    assert len(relight_drafts(dovecot_user)) == 1
    assert draft_rows(team) == [("alice@bigcorp.example", 1, "written")]


def test_a_crash_between_append_and_commit_leaves_one_draft(
    team: Path, dovecot_user: DovecotUser, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    """The process dies right after the APPEND, before the commit: the next run finds
    the draft by its key instead of writing a second one."""
    real_mark = drafting._mark

    def crash(*args: Any, **kwargs: Any) -> None:
        raise SystemExit("killed after the APPEND")

    monkeypatch.setattr(drafting, "_mark", crash)
    with pytest.raises(SystemExit, match="killed"):
        once(team)
    assert draft_rows(team) == [("alice@bigcorp.example", 1, "pending")]
    monkeypatch.setattr(drafting, "_mark", real_mark)
    assert once(team) == 0
    assert "stage 1\tfound" in capsys.readouterr().out
    assert len(relight_drafts(dovecot_user)) == 1
    assert draft_rows(team) == [("alice@bigcorp.example", 1, "written")]


def test_a_draft_the_rep_deleted_stays_deleted(team: Path, dovecot_user: DovecotUser) -> None:
    """Deleting the draft unsent dismisses the stage: no second draft, ever."""
    assert once(team) == 0
    [uid] = relight_drafts(dovecot_user)
    with dovecot_user.server.client(dovecot_user.name) as client:
        client.select_folder("Drafts")
        client.delete_messages([uid])
        client.expunge()
    assert once(team) == 0
    assert once(team) == 0
    assert relight_drafts(dovecot_user) == {}
    assert draft_rows(team) == [("alice@bigcorp.example", 1, "dismissed")]


def test_an_edited_draft_is_never_retracted(team: Path, dovecot_user: DovecotUser) -> None:
    """The rep edited the draft (same key, other text), then Alice answers: it stays."""
    assert once(team) == 0
    [(uid, message)] = relight_drafts(dovecot_user).items()
    alice_replies(dovecot_user)
    later = (SCENARIO.now + timedelta(hours=2)).isoformat()

    edited = message.as_bytes().replace(b"\n\n", b"\n\nDana's own words.\n", 1)
    assert edited != message.as_bytes()
    with dovecot_user.server.client(dovecot_user.name) as client:
        client.append("Drafts", edited, flags=(b"\\Draft",))
        client.select_folder("Drafts")
        client.delete_messages([uid])
        client.expunge()
    assert once(team, later) == 0
    [kept] = relight_drafts(dovecot_user).values()
    assert "Dana's own words." in kept.get_content()
    assert draft_rows(team) == [("alice@bigcorp.example", 1, "written")]


def test_a_reply_retracts_an_untouched_draft(team: Path, dovecot_user: DovecotUser) -> None:
    """Alice answers while Relight's draft is untouched: it is removed, and only it."""
    assert once(team) == 0
    own = [uid for uid, (_, m) in drafts_of(dovecot_user).items() if not m["X-Relight-Key"]]
    alice_replies(dovecot_user)
    assert once(team, (SCENARIO.now + timedelta(hours=2)).isoformat()) == 0
    assert relight_drafts(dovecot_user) == {}
    assert list(drafts_of(dovecot_user)) == own
    assert draft_rows(team) == [("alice@bigcorp.example", 1, "retracted")]


def test_the_sent_draft_starts_the_next_stage(
    team: Path, dovecot_user: DovecotUser, capsys: pytest.CaptureFixture[str]
) -> None:
    """The rep sends the draft (it leaves Drafts, a copy lands in Sent): the row is sent,
    and stage 2 is scheduled from the sent message."""
    assert once(team) == 0
    [(uid, message)] = relight_drafts(dovecot_user).items()
    sent_at = SCENARIO.now + timedelta(hours=1)
    del message["Date"]
    message["Date"] = format_datetime(sent_at)
    with dovecot_user.server.client(dovecot_user.name) as client:
        client.append("Sent", message.as_bytes(), flags=(b"\\Seen",), msg_time=sent_at)
        client.select_folder("Drafts")
        client.delete_messages([uid])
        client.expunge()
    later = (sent_at + timedelta(hours=1)).isoformat()
    assert once(team, later) == 0
    assert draft_rows(team) == [("alice@bigcorp.example", 1, "sent")]
    capsys.readouterr()
    assert main(["--config", str(team), "report", "--format", "json", "--now", later]) == 0
    [alice] = [r for r in json.loads(capsys.readouterr().out) if r["prospect"].startswith("alice")]
    assert alice["status"] == "awaiting"
    assert (alice["followups_sent"], alice["next_stage"]) == (1, 2)
    assert datetime.fromisoformat(alice["last_outbound_at"]) == sent_at


def test_retract_stale_false_leaves_the_draft(team: Path, dovecot_user: DovecotUser) -> None:
    """With drafts.retract_stale = false an untouched draft stays when the prospect replies."""
    team.write_text(team.read_text() + "\n[drafts]\nretract_stale = false\n")
    assert once(team) == 0
    alice_replies(dovecot_user)
    assert once(team, (SCENARIO.now + timedelta(hours=2)).isoformat()) == 0
    assert len(relight_drafts(dovecot_user)) == 1
    assert draft_rows(team) == [("alice@bigcorp.example", 1, "written")]


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_the_draft_lifecycle_on_postgresql(
    team: Path, dovecot_user: DovecotUser, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a PostgreSQL store as on SQLite: a crash between APPEND and commit leaves one
    draft, found by the next run; the prospect's reply retracts it."""
    team.write_text(team.read_text().replace("[daemon]\n", f'[daemon]\ndatabase = "{db_url}"\n', 1))

    def crash(*args: Any, **kwargs: Any) -> None:
        raise SystemExit("killed after the APPEND")

    with monkeypatch.context() as patch:
        patch.setattr(drafting, "_mark", crash)
        with pytest.raises(SystemExit, match="killed"):
            once(team)
    assert draft_rows(team) == [("alice@bigcorp.example", 1, "pending")]
    assert once(team) == 0
    assert len(relight_drafts(dovecot_user)) == 1
    assert draft_rows(team) == [("alice@bigcorp.example", 1, "written")]
    alice_replies(dovecot_user)
    assert once(team, (SCENARIO.now + timedelta(hours=2)).isoformat()) == 0
    assert relight_drafts(dovecot_user) == {}
    assert draft_rows(team) == [("alice@bigcorp.example", 1, "retracted")]
