"""End-to-end: `relight sync` then `relight report` against a real Dovecot, as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.support.dovecot import DovecotServer, dovecot_binary

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.dovecot


def _mail(headers: dict[str, str], body: str = "Hello.\r\n") -> bytes:
    head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    return (head + "\r\n" + body).encode()


SENT_TO_ALICE = _mail({
    "From": "Dana Reyes <dana@acmesoft.example>",
    "To": "Alice Martin <alice@prospect.example>",
    "Subject": "Pricing for the pilot",
    "Date": "Mon, 02 Nov 2026 10:00:00 +0100",
    "Message-ID": "<pilot-1@acmesoft.example>",
})  # fmt: skip
ALICE_REPLIES = _mail({
    "From": "Alice Martin <Alice@Prospect.example>",
    "To": "Dana Reyes <dana@acmesoft.example>",
    "Subject": "Re: Pricing for the pilot",
    "Date": "Tue, 03 Nov 2026 09:00:00 -0500",
    "Message-ID": "<reply-1@prospect.example>",
    "In-Reply-To": "<pilot-1@acmesoft.example>",
    "References": "<pilot-1@acmesoft.example>",
}, "Thanks, I'll run it past our IT team.\r\n")  # fmt: skip
SENT_TO_BOB = _mail({
    "From": "Dana Reyes <dana.reyes@acmesoft.example>",
    "To": "=?utf-8?q?Bj=C3=B6rn_Berg?= <bob@other.example>",
    "Cc": "carol@other.example, sam@acmesoft.example",
    "Subject": "Intro",
    "Date": "Thu, 05 Nov 2026 16:30:00 +0000",
    "Message-ID": "<intro-7@acmesoft.example>",
})  # fmt: skip
PARTNER = _mail({
    "From": "pat@acme-group.example",
    "To": "dana@acmesoft.example",
    "Subject": "Lunch?",
    "Date": "Wed, 04 Nov 2026 12:00:00 +0000",
    "Message-ID": "<lunch@acme-group.example>",
})  # fmt: skip
DRAFT_TO_DAVE = _mail({
    "From": "dana@acmesoft.example",
    "To": "dave@draft.example",
    "Subject": "Unsent",
    "Date": "Fri, 06 Nov 2026 08:00:00 +0000",
    "Message-ID": "<unsent@acmesoft.example>",
})  # fmt: skip


@pytest.fixture
def mailbox() -> Iterator[DovecotServer]:
    if dovecot_binary() is None:
        if os.environ.get("CI"):
            pytest.fail("dovecot is not installed; `make test` installs dovecot-imapd")
        pytest.skip("dovecot is not installed; `make test` installs dovecot-imapd")
    with DovecotServer.start({"dana": "dana-secret"}) as server:
        server.append("dana", "Sent", SENT_TO_ALICE, flags=[b"\\Seen"])
        server.append("dana", "Sent", SENT_TO_BOB, flags=[b"\\Seen"])
        server.append("dana", "INBOX", ALICE_REPLIES)
        server.append("dana", "INBOX", SENT_TO_BOB)  # the rep's own copy (Bcc to self)
        server.append("dana", "INBOX", PARTNER)
        server.append("dana", "Drafts", DRAFT_TO_DAVE, flags=[b"\\Draft"])
        yield server


def _write_config(tmp_path: Path, server: DovecotServer, *, port: int | None = None) -> Path:
    config = tmp_path / "relight.toml"
    config.write_text(
        f"""
[daemon]
state_dir = "{tmp_path}/state"
log_format = "json"

[rules]
internal_domains = ["acme-group.example"]

[[accounts]]
name = "dana"
kind = "imap"
rep_name = "Dana Reyes"
addresses = ["dana@acmesoft.example", "dana.reyes@acmesoft.example"]
host = "127.0.0.1"
port = {port or server.port}
security = "none"
username = "dana"
password_env = "RELIGHT_TEST_DANA_PASSWORD"
"""
    )
    return config


def relight(*args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "RELIGHT_TEST_DANA_PASSWORD": "dana-secret"}
    env.pop("RELIGHT_CONFIG", None)
    return subprocess.run(
        [sys.executable, "-m", "daemon", *map(str, args)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def _at(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value).astimezone(UTC)


def test_sync_then_report_lists_prospects_with_last_contact_times(
    tmp_path: Path, mailbox: DovecotServer
) -> None:
    """sync + report --format json: each prospect with status and the right contact times."""
    config = _write_config(tmp_path, mailbox)
    synced = relight("--config", config, "sync")
    assert synced.returncode == 0, synced.stderr
    shown = relight("report", "--format", "json", "--config", config, "--now", "2026-11-06T12:00Z")
    assert shown.returncode == 0, shown.stderr
    rows = {row["prospect"]: row for row in json.loads(shown.stdout)}

    # pat@acme-group.example is internal, dave@ only has an unsent draft, sam@ is a colleague
    assert set(rows) == {"alice@prospect.example", "bob@other.example", "carol@other.example"}
    alice = rows["alice@prospect.example"]
    assert alice["account"] == "dana"
    assert alice["name"] == "Alice Martin"
    assert alice["company"] == "prospect.example"
    assert alice["status"] == "replied"
    assert _at(alice["last_outbound_at"]) == datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    assert _at(alice["last_inbound_at"]) == datetime(2026, 11, 3, 14, 0, tzinfo=UTC)
    bob = rows["bob@other.example"]
    assert bob["name"] == "Björn Berg"
    assert bob["status"] == "cold"  # the copy in INBOX is the rep's own message, not a reply
    assert _at(bob["last_outbound_at"]) == datetime(2026, 11, 5, 16, 30, tzinfo=UTC)
    assert bob["last_inbound_at"] is None
    assert bob["followups_sent"] == 0


def test_second_sync_fetches_nothing_and_leaves_flags_alone(
    tmp_path: Path, mailbox: DovecotServer
) -> None:
    """A repeated sync fetches no message again and no flag in any folder changes."""
    before = {folder: mailbox.flags("dana", folder) for folder in ("INBOX", "Sent", "Drafts")}
    config = _write_config(tmp_path, mailbox)
    assert relight("sync", "--config", config).returncode == 0
    again = relight("sync", "--config", config)
    assert again.returncode == 0, again.stderr
    done = [json.loads(line) for line in again.stderr.splitlines() if '"sync done"' in line]
    assert done, again.stderr
    assert done[0]["fetched"] == 0
    after = {folder: mailbox.flags("dana", folder) for folder in ("INBOX", "Sent", "Drafts")}
    assert after == before


def test_unreachable_server_exits_1_and_names_the_account(
    tmp_path: Path, mailbox: DovecotServer
) -> None:
    """A dead server is a runtime failure: exit 1, a log line naming the account, no traceback."""
    config = _write_config(tmp_path, mailbox, port=1)
    result = relight("sync", "--config", config)
    assert result.returncode == 1
    assert '"account": "dana"' in result.stderr
    assert "Traceback" not in result.stderr
    assert "dana-secret" not in result.stderr


def test_config_error_exits_2_and_names_the_key(tmp_path: Path) -> None:
    """A wrong config is a usage error: exit 2 and a message naming the file and key."""
    config = tmp_path / "bad.toml"
    config.write_text('[daemon]\npoll_intervall = "5m"\n')
    result = relight("check-config", "--config", config)
    assert result.returncode == 2
    assert "poll_intervall" in result.stderr
    assert str(config) in result.stderr


def test_missing_config_file_exits_2(tmp_path: Path) -> None:
    """A config path that does not exist is reported, not a traceback."""
    result = relight("--config", tmp_path / "nope.toml", "check-config")
    assert result.returncode == 2
    assert "nope.toml" in result.stderr
    assert "Traceback" not in result.stderr
