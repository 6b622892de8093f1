"""The sample mailbox of `relight demo` (`daemon.demo`): a valid Maildir++ tree of proper
threads whose prospects, synced and reported through the command line, end where their
stories say at whatever `now` the demo is built."""

from __future__ import annotations

import email.policy
import json
import mailbox
import re
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from daemon.cli import main
from daemon.config import load_config
from daemon.demo import build_demo

BERLIN = ZoneInfo("Europe/Berlin")
DANA = "dana@acmesoft.example"

# address -> (status, followups_sent, next_stage)
EXPECTED = {
    "priya.nair@bigcorp.example": ("ghosted", 0, 1),
    "tom.becker@northwind.example": ("ghosted", 1, 2),
    "sofia.marquez@lumenretail.example": ("ghosted", 2, 3),
    "ken.okafor@harborfoods.example": ("ghosted", 3, 4),
    "j.mueller@kesselbraeu.example": ("replied", 0, None),
    "emma.lindqvist@fjordtech.example": ("awaiting", 0, 1),
    "marco.bianchi@velaenergy.example": ("snoozed", 0, 1),
    "lena.vogt@quarrysystems.example": ("bounced", 0, None),
    "aisha.rahman@cobaltbank.example": ("cold", 1, None),
    "paul.dubois@orchidhotels.example": ("excluded", 0, None),
}
NEVER_PROSPECTS = (
    "insider@bigcorp.example",  # the newsletter
    "sam.ortiz@acmesoft.example",  # a colleague
    "mailer-daemon@mail.acmesoft.example",  # the bounce
)
NOWS = {
    "monday-morning": datetime(2026, 11, 23, 8, 30, tzinfo=BERLIN),
    "friday-afternoon": datetime(2026, 11, 20, 16, 45, tzinfo=BERLIN),
    "sunday": datetime(2026, 11, 22, 12, 0, tzinfo=BERLIN),
    "monday-0030-given-in-utc": datetime(2026, 11, 22, 23, 30, tzinfo=UTC),
    "history-across-dst": datetime(2026, 3, 31, 9, 0, tzinfo=BERLIN),
    "first-monday-of-the-year": datetime(2026, 1, 5, 7, 0, tzinfo=BERLIN),
}


def _messages(tree: Path) -> dict[str, list[tuple[Path, EmailMessage]]]:
    """Each folder's files ("" for INBOX), parsed."""
    parser = BytesParser(_class=EmailMessage, policy=email.policy.default)
    found: dict[str, list[tuple[Path, EmailMessage]]] = {}
    for folder in ("", ".Sent", ".Drafts"):
        files = [
            path for part in ("new", "cur") for path in sorted((tree / folder / part).iterdir())
        ]
        found[folder] = [(path, parser.parsebytes(path.read_bytes())) for path in files]
    return found


def _cycle(config: Path, now: datetime, capsys: pytest.CaptureFixture[str]) -> list[dict]:
    """`relight sync`, then `relight report --format json` at `now`: the report's rows."""
    assert main(["--config", str(config), "sync"]) == 0
    capsys.readouterr()
    assert (
        main(["--config", str(config), "report", "--format", "json", "--now", now.isoformat()]) == 0
    )
    rows: list[dict] = json.loads(capsys.readouterr().out)
    return rows


def _check_statuses(rows: list[dict], now: datetime) -> None:
    by_prospect = {row["prospect"]: row for row in rows}
    shown = "\n".join(
        f"{r['prospect']}: {r['status']} sent={r['followups_sent']} next={r['next_stage']} "
        f"at={r['next_action_at']} {r['reason']}"
        for r in rows
    )
    for address in NEVER_PROSPECTS:
        assert address not in by_prospect, shown
    assert set(by_prospect) == set(EXPECTED), shown
    for address, (status, followups_sent, next_stage) in EXPECTED.items():
        row = by_prospect[address]
        got = (row["status"], row["followups_sent"], row["next_stage"])
        assert got == (status, followups_sent, next_stage), f"{address} at {now}\n{shown}"
        due = row["next_action_at"] and datetime.fromisoformat(row["next_action_at"])
        if status == "ghosted":
            assert due <= now, f"{address}\n{shown}"
        if status in ("awaiting", "snoozed"):
            assert due > now, f"{address}\n{shown}"


def test_tree_is_a_valid_maildir_plus_plus(tmp_path: Path) -> None:
    """INBOX at the root, .Sent and .Drafts beside it, each with cur/ new/ tmp/; unique file
    names with a `:2,` info in cur/ only; the rep's mail in Sent, nothing in Drafts."""
    now = NOWS["monday-morning"]
    tree = build_demo(tmp_path / "demo", now).parent / "dana"
    assert sorted(mailbox.Maildir(tree, create=False).list_folders()) == ["Drafts", "Sent"]
    for folder in (tree, tree / ".Sent", tree / ".Drafts"):
        parts = {path.name for path in folder.iterdir() if path.is_dir()}
        assert parts - {".Sent", ".Drafts"} == {"cur", "new", "tmp"}
        assert not any((folder / "tmp").iterdir())
    assert (tree / ".Sent" / "maildirfolder").is_file()
    uniques = []
    for folder in (tree, tree / ".Sent", tree / ".Drafts"):
        for path in (folder / "new").iterdir():
            assert ":" not in path.name
            uniques.append(path.name)
        for path in (folder / "cur").iterdir():
            unique, info = path.name.split(":", 1)
            assert re.fullmatch(r"2,[A-Z]*", info), path
            assert list(info[2:]) == sorted(info[2:]), path
            uniques.append(unique)
    assert len(uniques) == len(set(uniques)) >= 35

    messages = _messages(tree)
    assert messages[".Drafts"] == []
    assert len(messages[".Sent"]) >= 20
    assert all(m["From"].addresses[0].addr_spec == DANA for _, m in messages[".Sent"])
    assert all(m["From"].addresses[0].addr_spec != DANA for _, m in messages[""])
    for path, message in messages[""] + messages[".Sent"]:
        sent = message["Date"].datetime
        assert sent < now, path
        assert 0 <= path.stat().st_mtime - sent.timestamp() < 60, path  # mtime is the arrival
        assert message["Message-ID"], path


def test_threads_chain_and_replies_quote_what_they_answer(tmp_path: Path) -> None:
    """Every In-Reply-To names an earlier message, References end with it, and a person's
    reply quotes the message it answers under an "On ... wrote:" line."""
    tree = build_demo(tmp_path, NOWS["friday-afternoon"]).parent / "dana"
    everything = [message for found in _messages(tree).values() for _, message in found]
    by_id = {message["Message-ID"]: message for message in everything}
    assert len(by_id) == len(everything)
    replies = [message for message in everything if message["In-Reply-To"]]
    assert len(replies) >= 20
    for message in replies:
        parent = by_id[message["In-Reply-To"]]
        references = message["References"].split()
        assert references[-1] == message["In-Reply-To"]
        assert all(reference in by_id for reference in references)
        assert parent["Date"].datetime < message["Date"].datetime
        assert message["Subject"].lower().startswith(("re: ", "aw: ", "automatic reply: "))
        if message["Auto-Submitted"]:
            continue
        lines = message.get_content().splitlines()
        at = next(i for i, line in enumerate(lines) if re.fullmatch(r"On .+ wrote:", line))
        first = parent.get_content().splitlines()[0]
        assert lines[at + 1] == f"> {first}", message["Subject"]


def test_automatic_mail_is_what_real_servers_send(tmp_path: Path) -> None:
    """The bounce is a multipart/report with a failed delivery-status, the out-of-office reply
    is Auto-Submitted and names a return date, the newsletter has List-Id and
    List-Unsubscribe, and Jürgen's name is RFC 2047 encoded in the file."""
    messages = _messages(build_demo(tmp_path, NOWS["sunday"]).parent / "dana")[""]
    by_sender = {m["From"].addresses[0].addr_spec.lower(): (p, m) for p, m in messages}

    _, bounce = by_sender["mailer-daemon@mail.acmesoft.example"]
    assert bounce.get_content_type() == "multipart/report"
    assert bounce.get_param("report-type") == "delivery-status"
    status = next(p for p in bounce.walk() if p.get_content_type() == "message/delivery-status")
    assert "Action: failed" in status.as_string()
    assert "lena.vogt@quarrysystems.example" in status.as_string()

    auto_replies = [m for _, m in messages if m["Auto-Submitted"] == "auto-replied"]
    assert {m["From"].addresses[0].addr_spec for m in auto_replies} == {
        "MAILER-DAEMON@mail.acmesoft.example",
        "marco.bianchi@velaenergy.example",
    }
    _, newsletter = by_sender["insider@bigcorp.example"]
    assert newsletter["List-Id"]
    assert newsletter["List-Unsubscribe"]

    path, juergen = by_sender["j.mueller@kesselbraeu.example"]
    raw_from = next(line for line in path.read_bytes().splitlines() if line.startswith(b"From:"))
    assert raw_from == b"From: =?utf-8?q?J=C3=BCrgen_M=C3=BCller?= <j.mueller@kesselbraeu.example>"
    assert juergen["From"].addresses[0].display_name == "Jürgen Müller"


def test_config_names_the_maildir_account_and_the_store(tmp_path: Path) -> None:
    """relight.toml loads: one maildir account on the tree, SQLite and state in the directory."""
    config = load_config(build_demo(tmp_path / "d", NOWS["sunday"]))
    (account,) = config.accounts
    assert (account.name, account.kind, account.path) == (
        "dana",
        "maildir",
        tmp_path / "d" / "dana",
    )
    assert account.addresses == (DANA,)
    assert config.daemon.database == f"sqlite:///{tmp_path / 'd' / 'relight.db'}"
    assert config.daemon.state_dir == tmp_path / "d" / "state"
    assert config.drafts.signature.startswith("Dana Reyes")


@pytest.mark.parametrize("now", NOWS.values(), ids=NOWS.keys())
def test_each_prospect_ends_where_its_story_says(
    tmp_path: Path, now: datetime, capsys: pytest.CaptureFixture[str]
) -> None:
    """After `relight sync`, `relight report --now` shows ghosted at stages 1 to 4, replied,
    awaiting, snoozed, bounced, cold and excluded, and no newsletter, colleague or bounce."""
    rows = _cycle(build_demo(tmp_path, now), now, capsys)
    _check_statuses(rows, now)
    names = {row["prospect"]: row["name"] for row in rows}
    assert names["j.mueller@kesselbraeu.example"] == "Jürgen Müller"


def test_stories_hold_at_any_hour_of_two_weeks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Built at each day of two weeks (a different hour each day) and at the real current
    time, every prospect still ends where its story says."""
    start = datetime(2026, 10, 5, 0, 20, tzinfo=BERLIN)  # a Monday
    nows = [start + timedelta(days=day, hours=5 * day % 24) for day in range(14)]
    for number, now in enumerate([*nows, datetime.now(UTC)]):
        rows = _cycle(build_demo(tmp_path / str(number), now), now, capsys)
        _check_statuses(rows, now)


def test_accountability_draft_quotes_what_tom_promised(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`relight draft --dry-run` drafts for the four ghosted prospects only, and the stage 2
    draft to Tom quotes his own promise back to him."""
    now = NOWS["monday-morning"]
    config = build_demo(tmp_path, now)
    _cycle(config, now, capsys)
    argv = ["--config", str(config), "draft", "--dry-run", "--now", now.isoformat()]
    assert main(argv) == 0
    out = capsys.readouterr().out
    recipients = set(re.findall(r"^To: .*<(.+)>$", out, flags=re.MULTILINE))
    assert recipients == {
        address for address, (status, _, _) in EXPECTED.items() if status == "ghosted"
    }
    tom = out[out.index("To: Tom Becker") :]
    assert "you'd run it past your IT team and get back to me next week" in tom.split("\n# ")[0]


def test_every_inbound_message_is_read_with_its_excerpt(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`relight classify` reads every message of the tree, Jürgen's 8-bit UTF-8 reply too."""
    config = build_demo(tmp_path, NOWS["sunday"])
    main(["--config", str(config), "classify", str(config.parent / "dana"), "--format", "json"])
    verdicts = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [v["path"] for v in verdicts if v["kind"] == "unreadable"] == []
    excerpts = " ".join(v.get("excerpt") or "" for v in verdicts)
    assert "merchandise management system, and could the pilot start in January?" in excerpts


def test_build_refuses_an_existing_demo_and_a_naive_now(tmp_path: Path) -> None:
    """A second build into the same directory overwrites nothing; `now` must carry an offset."""
    build_demo(tmp_path, NOWS["sunday"])
    with pytest.raises(FileExistsError, match="dana"):
        build_demo(tmp_path, NOWS["monday-morning"])
    with pytest.raises(ValueError, match="timezone-aware"):
        build_demo(tmp_path / "other", datetime(2026, 11, 23, 9, 0))


def test_relight_demo_prints_the_report_and_the_drafts_it_wrote(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`relight demo` needs no config: it prints the report, the four drafts written, and
    each draft as the rep will open it; the sample mailbox is removed afterwards."""
    monkeypatch.delenv("RELIGHT_CONFIG", raising=False)
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    directory = Path(out.split(" in ", 1)[1].split(" (Maildir", 1)[0])
    assert not directory.exists()
    assert "STATUS" in out
    assert "REASON" in out
    written = [line for line in out.splitlines() if line.endswith("\twritten")]
    assert sorted(line.split("\t")[2] for line in written) == [f"stage {n}" for n in (1, 2, 3, 4)]
    assert out.count("--- dana's Drafts: relight-") == 4
    assert "you'd run it past your IT team" in out
    assert "Subject: Re: " in out
