"""Crash safety and a flaky network, end to end: `relight sync` and `relight once` run as
processes against the private Dovecot, through `tests.support.proxy.FlakyProxy` where the
network misbehaves, and killed with SIGKILL where they crash.

What every test checks afterwards is the same promise (SPEC sections 6 and 9, the module
docstring of `daemon.sync`): the store holds a consistent prefix of each folder (every
stored message has its place and its addresses, the cursor covers only stored messages),
the next run completes it without a duplicate, a draft is never written twice, and the
logs name the failure without a traceback, a secret or a word of message text.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest

from connectors.imap import ImapCursor
from tests.conftest import DovecotUser, start_dovecot
from tests.support.dovecot import DovecotServer
from tests.support.proxy import FlakyProxy
from tests.support.scenarios import load_scenario
from tests.test_drafting_dovecot import draft_rows, relight_drafts
from tests.test_scenarios_dovecot import IMAP_FOLDERS, _config_toml

pytestmark = pytest.mark.dovecot

REPO = Path(__file__).resolve().parent.parent
REP = "dana@acmesoft.example"
PASSWORD_ENV = "RELIGHT_TEST_RESILIENCE_PASSWORD"
SCENARIO = load_scenario(Path(__file__).parent / "scenarios" / "engaged_then_silent.toml")
NOW = SCENARIO.now.isoformat()  # alice: ghosted, stage 1 due
RUN_GUARD = 90  # seconds before a hung relight process is killed (a hang guard, no timing)


# -- mailboxes, configs, runs -------------------------------------------------------------


def inbound(number: int) -> bytes:
    """Mail from a prospect to the rep: To and Cc (two address rows), a short body."""
    at = datetime(2024, 1, 1, tzinfo=UTC) + timedelta(minutes=number)
    company = f"prospect{number % 40}.example"
    body = f"Hello Dana, line {number} of a note about the offer.\r\n" * 8
    return (
        f"From: Pat {number} <pat{number % 300}@{company}>\r\nTo: Dana Reyes <{REP}>\r\n"
        f"Cc: Ops <ops{number % 7}@{company}>\r\nSubject: Question {number} about the offer\r\n"
        f"Message-ID: <in{number}@{company}>\r\nDate: {format_datetime(at)}\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\n\r\n{body}"
    ).encode()


def outbound(number: int) -> bytes:
    """Mail from the rep to a prospect, with a colleague in Cc."""
    at = datetime(2024, 1, 1, tzinfo=UTC) + timedelta(minutes=number, seconds=30)
    return (
        f"From: Dana Reyes <{REP}>\r\nTo: Pat <pat{number % 300}@prospect{number % 40}.example>\r\n"
        f"Cc: Sam <sam@acmesoft.example>\r\nSubject: Offer {number}\r\n"
        f"Message-ID: <out{number}@acmesoft.example>\r\nDate: {format_datetime(at)}\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\n\r\nHi Pat, the offer {number}.\r\n"
    ).encode()


def fill(box: DovecotUser, inbox: int, sent: int = 0) -> dict[str, set[str]]:
    """`inbox` and `sent` messages straight into the Maildir; their Message-IDs by folder."""
    box.server.write_maildir(box.name, "INBOX", (inbound(n) for n in range(inbox)))
    if sent:
        box.server.write_maildir(box.name, "Sent", (outbound(n) for n in range(sent)))
    return {
        "INBOX": {f"in{n}@prospect{n % 40}.example" for n in range(inbox)},
        "Sent": {f"out{n}@acmesoft.example" for n in range(sent)},
    }


@dataclass(frozen=True)
class Account:
    name: str
    username: str
    port: int
    password_env: str = PASSWORD_ENV
    timeout: float = 30.0


def write_config(directory: Path, accounts: Sequence[Account]) -> Path:
    lines = ["[daemon]", f'state_dir = "{directory}/state"']
    for account in accounts:
        lines += [
            "",
            "[[accounts]]",
            f'name = "{account.name}"',
            'kind = "imap"',
            'rep_name = "Dana Reyes"',
            f'addresses = ["{account.name}@acmesoft.example"]',
            'host = "127.0.0.1"',
            f"port = {account.port}",
            'security = "none"',
            f'username = "{account.username}"',
            f'password_env = "{account.password_env}"',
            f"timeout = {account.timeout}",
        ]
    path = directory / "relight.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def database(config: Path) -> Path:
    return config.parent / "state" / "relight.db"


def relight_command(config: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "daemon", "--config", str(config), *args]


def environment(**passwords: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "RELIGHT_CONFIG"}
    return env | passwords


def relight(config: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run `relight --config CONFIG ARGS...` as its own process, output captured."""
    return subprocess.run(
        relight_command(config, *args),
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_GUARD,
        check=False,
    )


def log_lines(stderr: str) -> list[dict[str, Any]]:
    """The JSON log lines; anything else on stderr (a traceback) fails the test."""
    lines = []
    for line in stderr.splitlines():
        try:
            lines.append(json.loads(line))
        except ValueError:
            pytest.fail(f"stderr holds a line that is not a JSON log line: {line!r}\n{stderr}")
    return lines


def failure_logged(stderr: str, account: str, error_type: str) -> dict[str, Any]:
    """The one 'sync failed' log line of `account`, which must carry `error_type`."""
    assert "Traceback" not in stderr
    [line] = [
        line
        for line in log_lines(stderr)
        if line.get("event") == "sync failed" and line.get("account") == account
    ]
    assert line["error_type"] == error_type, line
    assert line["level"] == "error"
    return line


# -- what the store holds -------------------------------------------------------------------


@contextlib.contextmanager
def read_only(path: Path) -> Iterator[sqlite3.Connection]:
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        yield connection
    finally:
        connection.close()


@dataclass(frozen=True)
class FolderState:
    uids: list[int]  # the stored remote ids, ascending
    cursor: ImapCursor | None


def consistent_state(path: Path) -> dict[str, FolderState]:
    """The store's folders, after checking it is a consistent prefix of the mailbox.

    Every message has its place and both its address rows; each folder holds UIDs 1..k
    (the mailboxes have no gaps), and its cursor, if any, covers only stored messages.
    """
    with read_only(path) as db:
        [(homeless,)] = db.execute(
            "SELECT count(*) FROM messages m WHERE NOT EXISTS"
            " (SELECT 1 FROM message_locations l WHERE l.message_id = m.id)"
        )
        assert homeless == 0, "messages stored without a location"
        [(unaddressed,)] = db.execute(
            "SELECT count(*) FROM messages m WHERE"
            " (SELECT count(*) FROM message_addresses a WHERE a.message_id = m.id) != 2"
        )
        assert unaddressed == 0, "messages stored without their To and Cc rows"
        [(dangling,)] = db.execute(
            "SELECT count(*) FROM message_locations l WHERE NOT EXISTS"
            " (SELECT 1 FROM messages m WHERE m.id = l.message_id)"
        )
        assert dangling == 0
        folders = {}
        for folder_id, name, cursor_text in db.execute("SELECT id, name, cursor FROM folders"):
            uids = sorted(
                int(remote_id)
                for (remote_id,) in db.execute(
                    "SELECT remote_id FROM message_locations WHERE folder_id = ?", (folder_id,)
                )
            )
            assert uids == list(range(1, len(uids) + 1)), f"{name}: not a prefix"
            cursor = ImapCursor.loads(cursor_text) if cursor_text is not None else None
            if cursor_text is not None:
                assert cursor is not None, cursor_text
                assert cursor.uidnext - 1 <= len(uids), f"{name}: cursor past the stored"
                assert cursor.messages == cursor.uidnext - 1, f"{name}: {cursor}"
            folders[name] = FolderState(uids, cursor)
    return folders


def stored_message_ids(path: Path) -> list[str]:
    """Every stored message's Message-ID, one per message row (duplicates kept)."""
    with read_only(path) as db:
        [(locations,)] = db.execute("SELECT count(*) FROM message_locations")
        ids = [row[0] for row in db.execute("SELECT message_id FROM messages")]
    assert locations == len(ids), "a message in two places, or a place without a message"
    return ids


def assert_complete(path: Path, expected: dict[str, set[str]]) -> None:
    """Everything synced exactly once: each folder whole, each message one row."""
    folders = consistent_state(path)
    for name, message_ids in expected.items():
        state = folders[name]
        assert len(state.uids) == len(message_ids), name
        assert state.cursor is not None
        assert state.cursor.uidnext == len(message_ids) + 1, name
    ids = stored_message_ids(path)
    assert len(ids) == len(set(ids)), "a message stored twice"
    assert set(ids) == set().union(*expected.values())


def stored_count(path: Path) -> int | None:
    """How many messages the store holds now; None while it is not there yet."""
    try:
        with read_only(path) as db:
            [(count,)] = db.execute("SELECT count(*) FROM messages")
    except sqlite3.Error:
        return None  # not created or not migrated yet
    return int(count)


def account_error(path: Path, account: str) -> str | None:
    with read_only(path) as db:
        [(error,)] = db.execute("SELECT last_error FROM accounts WHERE name = ?", (account,))
    return None if error is None else str(error)


# -- fixtures -------------------------------------------------------------------------------


@pytest.fixture
def proxy(dovecot: DovecotServer) -> Iterator[FlakyProxy]:
    """A healthy proxy to the session Dovecot's plain port."""
    with FlakyProxy(dovecot.port) as flaky:
        yield flaky


# -- a connection cut in the middle of a large FETCH ------------------------------------------


@pytest.mark.timeout(120)
def test_a_cut_in_the_middle_of_a_fetch_leaves_a_prefix_the_next_sync_completes(
    dovecot_user: DovecotUser, proxy: FlakyProxy, tmp_path: Path
) -> None:
    """A connection cut mid-FETCH (before and after the first batch was stored): exit 1,
    one clear log line, a consistent prefix and a cursor that covers only it; a healthy
    sync then holds the 3,000 messages exactly once."""
    expected = fill(dovecot_user, inbox=3000)
    config = write_config(tmp_path, [Account("dana", dovecot_user.name, proxy.port)])
    env = environment(**{PASSWORD_ENV: dovecot_user.password})

    # ~300 kB: in the header FETCH of the first batch (1,000 messages, ~0.6 MB): nothing
    # of INBOX is stored yet, and nothing may claim to be.
    proxy.cut_after(300_000, once=True)
    run = relight(config, "sync", env=env)
    assert run.returncode == 1, run.stderr
    assert proxy.cuts == 1
    line = failure_logged(run.stderr, "dana", "TransientError")
    assert "connection closed" in line["error"]
    assert f"127.0.0.1:{proxy.port}" in line["error"]  # where, as every error says
    assert (account_error(database(config), "dana") or "").startswith("TransientError")
    assert len(consistent_state(database(config))["INBOX"].uids) < 3000

    # ~2.4 MB: past the first batch (~1.9 MB with its excerpts, stored), before the second.
    proxy.cut_after(2_400_000, once=True)
    run = relight(config, "sync", env=env)
    assert run.returncode == 1, run.stderr
    assert proxy.cuts == 2
    failure_logged(run.stderr, "dana", "TransientError")
    inbox = consistent_state(database(config))["INBOX"]
    assert 0 < len(inbox.uids) < 3000, "the cut was meant to fall after the first batch"
    assert inbox.cursor is not None  # and it covers no more than what is stored (above)

    run = relight(config, "sync", env=env)  # the proxy is healthy again (`once`)
    assert run.returncode == 0, run.stderr
    assert proxy.cuts == 2
    assert_complete(database(config), expected)


# -- kill -9 during a sync --------------------------------------------------------------------


def kill_when(config: Path, env: dict[str, str], at_least: int) -> int:
    """Start `relight sync`, SIGKILL it once the store holds `at_least` messages; returns
    how many it held when the kill was decided."""
    path = database(config)
    count = 0
    process = subprocess.Popen(
        relight_command(config, "sync"),
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        while process.poll() is None:
            stored = stored_count(path)
            if stored is not None and stored >= at_least:
                count = stored
                process.send_signal(signal.SIGKILL)
                break
            time.sleep(0.005)
        _out, err = process.communicate(timeout=RUN_GUARD)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == -signal.SIGKILL, (
        f"the sync ended (exit {process.returncode}) before it held {at_least} messages: "
        f"make the mailbox larger\n{err}"
    )
    return count


@pytest.mark.timeout(120)
def test_kill_9_during_a_sync_loses_nothing_and_duplicates_nothing(
    dovecot_user: DovecotUser, tmp_path: Path
) -> None:
    """`relight sync` killed with SIGKILL as soon as its store exists, again as soon as
    messages are stored, and again once 2,000 are: each time the store is a consistent
    prefix; the run after holds all 4,000 messages (INBOX and Sent) exactly once."""
    expected = fill(dovecot_user, inbox=3000, sent=1000)
    config = write_config(tmp_path, [Account("dana", dovecot_user.name, dovecot_user.server.port)])
    env = environment(**{PASSWORD_ENV: dovecot_user.password})

    before = 0
    for at_least in (0, 1, 2000):
        seen = kill_when(config, env, at_least)
        assert seen >= before
        folders = consistent_state(database(config))
        stored = sum(len(state.uids) for state in folders.values())
        assert stored >= seen
        assert stored < 4000, "killed after the whole mailbox was stored"
        before = stored

    run = relight(config, "sync", env=env)
    assert run.returncode == 0, run.stderr
    assert_complete(database(config), expected)


# -- kill -9 between the APPEND of a draft and its commit ---------------------------------------

# `relight once`, killed by SIGKILL at the first `_mark`: the draft is in the Drafts folder,
# its row still `pending`. A real SIGKILL, so no `finally` and no rollback runs.
CRASH_AFTER_APPEND = """
import os, signal, sys
from daemon import cli, drafting

def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)

drafting._mark = die
sys.exit(cli.main(sys.argv[1:]))
"""


@pytest.fixture
def due_team(dovecot_user: DovecotUser, tmp_path: Path) -> Path:
    """The engaged_then_silent mailbox (alice: stage 1 due at NOW) and its config."""
    server = dovecot_user.server
    for folder, data, arrival in SCENARIO.as_appends():
        server.append(dovecot_user.name, IMAP_FOLDERS[folder], data, when=arrival)
    text = _config_toml(SCENARIO, server, tmp_path).replace(
        f'"{SCENARIO.name}-dana"', f'"{dovecot_user.name}"'
    )
    text = text.replace("RELIGHT_TEST_SCENARIO_PASSWORD", PASSWORD_ENV)
    config = tmp_path / "relight.toml"
    config.write_text(text)
    return config


@pytest.mark.timeout(120)
def test_kill_9_between_append_and_commit_leaves_exactly_one_draft(
    due_team: Path, dovecot_user: DovecotUser
) -> None:
    """The process dies by SIGKILL right after the APPEND, before the drafts row is
    marked written: the next `relight once` finds the draft by its key, writes none, and
    marks the row written."""
    env = environment(**{PASSWORD_ENV: dovecot_user.password})
    crashed = subprocess.run(
        [sys.executable, "-c", CRASH_AFTER_APPEND, "--config", str(due_team), "once", "--now", NOW],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_GUARD,
        check=False,
    )
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    assert len(relight_drafts(dovecot_user)) == 1  # the APPEND happened
    assert draft_rows(due_team) == [("alice@bigcorp.example", 1, "pending")]

    run = relight(due_team, "once", "--now", NOW, env=env)
    assert run.returncode == 0, run.stderr
    assert "alice@bigcorp.example\tstage 1\tfound" in run.stdout
    [draft] = relight_drafts(dovecot_user).values()
    assert draft["To"] == "Alice Doe <alice@bigcorp.example>"
    assert draft_rows(due_team) == [("alice@bigcorp.example", 1, "written")]

    run = relight(due_team, "once", "--now", NOW, env=env)
    assert run.returncode == 0, run.stderr
    assert len(relight_drafts(dovecot_user)) == 1


# -- the server down, hanging, then back ---------------------------------------------------------


@pytest.mark.timeout(120)
def test_a_server_down_or_hanging_fails_the_sync_fast_and_it_recovers(
    dovecot_user: DovecotUser, proxy: FlakyProxy, tmp_path: Path
) -> None:
    """Connections refused, a server that never greets, one that stalls mid-FETCH: each
    `relight sync` exits 1 with a TransientError naming the host (the connector's timeout
    ends the hangs); once the server is back the sync completes."""
    expected = fill(dovecot_user, inbox=300)
    account = Account("dana", dovecot_user.name, proxy.port, timeout=2)
    config = write_config(tmp_path, [account])
    env = environment(**{PASSWORD_ENV: dovecot_user.password})
    where = f"127.0.0.1:{proxy.port}"

    proxy.refuse()
    run = relight(config, "sync", env=env)
    assert run.returncode == 1, run.stderr
    line = failure_logged(run.stderr, "dana", "TransientError")
    assert where in line["error"]
    assert "refused" in line["error"].lower()
    assert (account_error(database(config), "dana") or "").startswith("TransientError")

    proxy.resume()
    proxy.stall_after(0)  # accepted, then silence: no greeting ever comes
    run = relight(config, "sync", env=env)
    assert run.returncode == 1, run.stderr
    line = failure_logged(run.stderr, "dana", "TransientError")
    assert where in line["error"]
    assert proxy.stalls == 1

    proxy.stall_after(20_000)  # in the middle of the first header FETCH
    run = relight(config, "sync", env=env)
    assert run.returncode == 1, run.stderr
    line = failure_logged(run.stderr, "dana", "TransientError")
    assert where in line["error"]
    assert proxy.stalls == 2
    assert consistent_state(database(config))["INBOX"].uids == []

    proxy.resume()
    run = relight(config, "sync", env=env)
    assert run.returncode == 0, run.stderr
    assert_complete(database(config), expected)


# -- logs: no secrets, no message text -----------------------------------------------------------

# A server of the test's own: the failed login must not slow the session server's other
# users, and without Dovecot's penalty the good account's next login is not delayed 4 s.
NO_PENALTY = """
auth_failure_delay = 0
service anvil {
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
"""
GOOD_PASSWORD = "Qz8-orchid-Password-41x"
WRONG_PASSWORD = "Vw3-heron-Wrong-77k"
BODY_TEXT = "saffron-lighthouse-9137"  # a word only the message body holds
NOTE = (
    "From: Pat Prospect <pat@prospect.example>\r\nTo: Dana Reyes <dana@acmesoft.example>\r\n"
    "Subject: A question\r\nMessage-ID: <note@prospect.example>\r\n"
    f"Date: {format_datetime(SCENARIO.now - timedelta(days=3))}\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n\r\n"
    f"Hello Dana,\r\n\r\nour code word is {BODY_TEXT}, keep it to yourself.\r\n\r\nPat\r\n"
).encode()


@pytest.mark.timeout(120)
def test_logs_hold_no_secret_and_no_message_text(tmp_path: Path) -> None:
    """`relight once` with one good account (its password and a message body are
    distinctive) and one whose password is wrong: neither password nor the body text
    reaches stdout or stderr; the wrong one is reported as an AuthenticationError, the
    good account is synced and drafted, and the exit code is 1."""
    server = start_dovecot(
        users={"erin": GOOD_PASSWORD, "frank": "frank-real-password"}, extra_config=NO_PENALTY
    )
    try:
        for folder, data, arrival in SCENARIO.as_appends():
            server.append("erin", IMAP_FOLDERS[folder], data, when=arrival)
        server.append("erin", "INBOX", NOTE)
        text = _config_toml(SCENARIO, server, tmp_path)
        text = text.replace(f'"{SCENARIO.name}-dana"', '"erin"')
        text = text.replace("RELIGHT_TEST_SCENARIO_PASSWORD", PASSWORD_ENV)
        text += (
            '\n[[accounts]]\nname = "frank"\nkind = "imap"\nrep_name = "Frank Doe"\n'
            'addresses = ["frank@acmesoft.example"]\nhost = "127.0.0.1"\n'
            f'port = {server.port}\nsecurity = "none"\nusername = "frank"\n'
            'password_env = "RELIGHT_TEST_WRONG_PASSWORD"\n'
        )
        config = tmp_path / "relight.toml"
        config.write_text(text)
        env = environment(
            **{PASSWORD_ENV: GOOD_PASSWORD, "RELIGHT_TEST_WRONG_PASSWORD": WRONG_PASSWORD}
        )

        run = relight(config, "once", "--now", NOW, env=env)

        assert run.returncode == 1, run.stderr
        output = run.stdout + run.stderr
        for secret in (GOOD_PASSWORD, WRONG_PASSWORD, BODY_TEXT):
            assert secret not in output
        line = failure_logged(run.stderr, "frank", "AuthenticationError")
        assert "frank" in line["error"]
        assert "alice@bigcorp.example\tstage 1\twritten" in run.stdout
        events = {(line.get("account"), line["event"]) for line in log_lines(run.stderr)}
        assert ("dana", "sync done") in events
        assert ("dana", "draft") in events
        assert ("frank", "draft") not in events
        [draft] = relight_drafts(DovecotUser(server, "erin")).values()
        assert draft["To"] == "Alice Doe <alice@bigcorp.example>"
        with server.client("erin") as client:
            client.select_folder("INBOX", readonly=True)
            assert client.search(["BODY", BODY_TEXT])  # the text was there to be leaked
        with read_only(tmp_path / "state" / "relight.db") as db:
            excerpts = [row[0] for row in db.execute("SELECT excerpt FROM messages")]
        assert any(BODY_TEXT in (excerpt or "") for excerpt in excerpts)  # and it was read
    finally:
        server.stop()
