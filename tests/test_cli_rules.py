"""The evaluating commands as a user runs them: `classify`, `explain`, `report --status`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from daemon.cli import main
from tests.conftest import DovecotUser
from tests.support.scenarios import load_scenario
from tests.test_scenarios_dovecot import IMAP_FOLDERS, PASSWORD_ENV, _config_toml

DATA = Path(__file__).resolve().parent / "data"
SCENARIOS = Path(__file__).resolve().parent / "scenarios"

REPLY = (
    b"From: Alice Doe <alice@bigcorp.example>\r\n"
    b"To: Dana Reyes <dana@acmesoft.example>\r\n"
    b"Subject: Re: Pricing\r\n"
    b"Date: Tue, 03 Nov 2020 09:00:00 +0100\r\n"
    b"Message-ID: <r1@bigcorp.example>\r\n"
    b"In-Reply-To: <p1@acmesoft.example>\r\n"
    b"\r\n"
    b"Thanks Dana, I'll run it past our IT team and let you know next week.\r\n"
    b"\r\n"
    b"On Mon, 2 Nov 2020, Dana Reyes wrote:\r\n"
    b"> Here is the pricing.\r\n"
)


def test_classify_prints_kind_reason_excerpt_and_commitment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """classify --format json: one JSON line per message, genuine mail with its excerpt."""
    monkeypatch.delenv("RELIGHT_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "reply.eml").write_bytes(REPLY)
    paths = [str(tmp_path / "reply.eml"), str(DATA / "dsn-multi-recipient.eml")]
    assert main(["classify", "--format", "json", "--config", "/nonexistent/x.toml", *paths]) == 2
    capsys.readouterr()
    assert main(["classify", "--format", "json", *paths]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    reply, bounce = lines
    assert reply["kind"] == "genuine"
    assert reply["excerpt"].startswith("Thanks Dana, I'll run it past our IT team")
    assert "Here is the pricing" not in reply["excerpt"]
    assert reply["commitment"] == "you'd run it past your IT team and let me know next week"
    assert bounce["kind"] == "bounce"
    assert "excerpt" not in bounce
    assert set(reply) == {"path", "kind", "reason", "excerpt", "commitment"}


def test_classify_reads_mbox_and_reports_unreadable_paths(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An mbox gives a line per message; a missing path is a line and exit status 1."""
    monkeypatch.delenv("RELIGHT_CONFIG", raising=False)
    mbox = tmp_path / "box.mbox"
    mbox.write_bytes(b"From alice Tue Nov  3 09:00:00 2020\n" + REPLY.replace(b"\r\n", b"\n") * 1)
    assert main(["classify", str(mbox), str(tmp_path / "missing.eml")]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"{mbox}#0\tgenuine")
    assert out[1].startswith(f"{tmp_path / 'missing.eml'}\tunreadable")


@pytest.fixture
def synced(
    dovecot_user: DovecotUser, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[Path, str]:
    """The engaged-then-silent scenario synced from a Dovecot mailbox; (config, now)."""
    scenario = load_scenario(SCENARIOS / "engaged_then_silent.toml")
    with dovecot_user.server.client(dovecot_user.name) as client:
        for folder, raw, arrival in scenario.as_appends():
            client.append(IMAP_FOLDERS[folder], raw, flags=(), msg_time=arrival)
    monkeypatch.setenv(PASSWORD_ENV, dovecot_user.password)
    monkeypatch.delenv("RELIGHT_CONFIG", raising=False)
    text = _config_toml(scenario, dovecot_user.server, tmp_path).replace(
        f'"{scenario.name}-dana"', f'"{dovecot_user.name}"'
    )
    config = tmp_path / "relight.toml"
    config.write_text(text)
    assert main(["--config", str(config), "sync"]) == 0
    return config, scenario.now.isoformat()


def test_explain_shows_timeline_and_each_rule(
    synced: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """explain lists the messages with their classification and every status rule's verdict."""
    config, now = synced
    capsys.readouterr()
    assert main(["explain", "Alice@BigCorp.example", "--config", str(config), "--now", now]) == 0
    out = capsys.readouterr().out
    assert "account dana: ghosted" in out
    assert out.count(" genuine") == 3
    for rule in ("excluded", "bounced", "replied", "cold", "exhausted", "snoozed", "ghosted"):
        assert f" {rule} " in out
    deciding = [line for line in out.splitlines() if line.endswith("<- decides")]
    assert len(deciding) == 1
    assert " ghosted " in deciding[0]
    assert "discuss it with the team" not in out  # header facts only, never message text


def test_explain_says_why_an_address_is_not_a_prospect(
    synced: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """An address nobody wrote to gets a sentence saying so, not an empty answer."""
    config, now = synced
    capsys.readouterr()
    assert main(["explain", "nobody@else.example", "--config", str(config), "--now", now]) == 0
    assert "not a prospect" in capsys.readouterr().out


def test_report_filters_by_status_and_rejects_a_bad_now(
    synced: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """--status keeps only matching rows; a malformed --now is a usage error naming it."""
    config, now = synced
    capsys.readouterr()
    assert main(["report", "--config", str(config), "--format", "json", "--now", now,
                 "--status", "ghosted"]) == 0  # fmt: skip
    assert [row["status"] for row in json.loads(capsys.readouterr().out)] == ["ghosted"]
    assert main(["report", "--config", str(config), "--format", "json", "--now", now,
                 "--status", "replied"]) == 0  # fmt: skip
    assert json.loads(capsys.readouterr().out) == []
    assert main(["report", "--config", str(config), "--now", "next tuesday"]) == 2
    assert "--now" in capsys.readouterr().err
