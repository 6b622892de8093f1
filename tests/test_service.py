"""`relight run` against a real Dovecot: schedules, failures, signals, systemd, IDLE."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bench.mailbox import folder_messages
from tests.conftest import DovecotUser
from tests.support.proxy import FlakyProxy
from tests.test_drafting_dovecot import relight_drafts, team  # noqa: F401  the fixture
from tests.test_scenarios_dovecot import PASSWORD_ENV

pytestmark = pytest.mark.timeout(180)

WRONG_PASSWORD = "wrong-Pa55word-7b1e"
BAD_ENV = "RELIGHT_TEST_BAD_PASSWORD"


class Running:
    """A `relight run` child process; its JSON log lines in a file."""

    def __init__(self, config: Path, env: dict[str, str] | None = None) -> None:
        self.log_path = config.parent / f"run-{time.monotonic_ns()}.log"
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "daemon", "--config", str(config), "run"],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )

    def lines(self) -> list[dict[str, Any]]:
        out = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                out.append({"event": "(not JSON)", "text": line})
        return out

    def text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for(self, what: Callable[[list[dict[str, Any]]], bool], seconds: float = 60) -> None:
        """Until `what(lines)` holds (a hang guard, not a timing assertion)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if what(self.lines()):
                return
            if self.process.poll() is not None:
                raise AssertionError(
                    f"relight run exited {self.process.returncode}:\n{self.text()}"
                )
            time.sleep(0.2)
        raise AssertionError(f"not seen within {seconds} s:\n{self.text()}")

    def events(self, event: str, **fields: Any) -> list[dict[str, Any]]:
        return [
            line
            for line in self.lines()
            if line.get("event") == event and all(line.get(k) == v for k, v in fields.items())
        ]

    def stop(self, sig: int = signal.SIGTERM, within: float = 10) -> int:
        self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=within)
        finally:
            self._log.close()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._log.close()


@pytest.fixture
def running() -> Iterator[list[Running]]:
    """Every daemon a test starts is killed at the end, whatever happened."""
    started: list[Running] = []
    yield started
    for daemon in started:
        daemon.kill()


def configure(config: Path, *, poll: str = "10s", extra: str = "") -> Path:
    """The drafting tests' config with a short poll and JSON logs; `extra` appended."""
    text = config.read_text().replace(
        "[daemon]\n", f'[daemon]\npoll_interval = "{poll}"\nlog_format = "json"\n', 1
    )
    config.write_text(text + extra)
    return config


def bad_account(box: DovecotUser) -> str:
    """A second account on the same server whose password is wrong."""
    return (
        "\n[[accounts]]\n"
        'name = "lee"\nkind = "imap"\nrep_name = "Lee Park"\n'
        'addresses = ["lee@acmesoft.example"]\nhost = "127.0.0.1"\n'
        f'port = {box.server.port}\nsecurity = "none"\nusername = "{box.name}"\n'
        f'password_env = "{BAD_ENV}"\n'
    )


def through(proxy: FlakyProxy, config: Path, box: DovecotUser) -> None:
    """Point the config's IMAP account at the proxy instead of the server."""
    text = config.read_text().replace(f"port = {box.server.port}\n", f"port = {proxy.port}\n")
    config.write_text(text)


def message_count(config: Path) -> int:
    database = config.parent / "state" / "relight.db"
    if not database.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5) as connection:
            return int(connection.execute("SELECT count(*) FROM messages").fetchone()[0])
    except sqlite3.OperationalError:
        return 0  # not created yet


def test_a_refused_login_never_holds_up_the_good_account(
    team: Path,  # noqa: F811
    dovecot_user: DovecotUser,
    running: list[Running],
) -> None:
    """dana syncs and gets her draft cycle after cycle while lee's login is refused:
    lee is reported once, loudly; SIGTERM ends it all with exit 0; no password is logged."""
    config = configure(team, extra=bad_account(dovecot_user))
    daemon = Running(config, {BAD_ENV: WRONG_PASSWORD})
    running.append(daemon)
    daemon.wait_for(lambda _: len(daemon.events("cycle done", account="dana")) >= 2)
    refused = [line for line in daemon.lines() if line.get("event", "").startswith("login refused")]
    assert [line["account"] for line in refused] == ["lee"]
    assert refused[0]["level"] == "error"
    assert "b'" not in refused[0]["error"]  # the server's words, not a bytes repr
    assert len(relight_drafts(dovecot_user)) == 1
    first = daemon.events("cycle done", account="dana")[0]
    assert first["drafts"] == {"written": 1}
    assert first["statuses"]["ghosted"] == 1
    assert daemon.stop() == 0
    assert daemon.events("relight stopped")
    log = daemon.text()
    assert WRONG_PASSWORD not in log
    assert dovecot_user.password not in log


def test_status_shows_the_failing_account(
    team: Path,  # noqa: F811
    dovecot_user: DovecotUser,
    running: list[Running],
) -> None:
    """`relight status` shows each account's last success, last error and its prospects;
    it reads the store only, so it needs none of the secrets."""
    config = configure(team, extra=bad_account(dovecot_user))
    daemon = Running(config, {BAD_ENV: WRONG_PASSWORD})
    running.append(daemon)
    daemon.wait_for(lambda _: bool(daemon.events("cycle done", account="dana")))
    daemon.wait_for(lambda lines: any("login refused" in line["event"] for line in lines))
    assert daemon.stop() == 0
    shown = subprocess.run(
        [sys.executable, "-m", "daemon", "--config", str(config), "status", "--format", "json"],
        capture_output=True, text=True, check=True,
        env={k: v for k, v in os.environ.items() if k not in (BAD_ENV, PASSWORD_ENV)},
    )  # fmt: skip
    by_name = {row["account"]: row for row in json.loads(shown.stdout)}
    assert by_name["dana"]["last_error"] is None
    assert by_name["dana"]["last_success_at"] is not None
    assert by_name["dana"]["statuses"]["ghosted"] == 1
    assert "AuthenticationError" in by_name["lee"]["last_error"]
    assert by_name["lee"]["last_success_at"] is None


def test_idle_sees_a_new_message_long_before_the_poll(
    team: Path,  # noqa: F811
    dovecot_user: DovecotUser,
    running: list[Running],
) -> None:
    """With a 5-minute poll, a message delivered to INBOX is synced within seconds: the
    worker waits with IMAP IDLE."""
    config = configure(team, poll="5m")
    daemon = Running(config)
    running.append(daemon)
    daemon.wait_for(lambda _: bool(daemon.events("cycle done", account="dana")))
    raw = b"From: x@else.example\r\nTo: dana@acmesoft.example\r\nSubject: hi\r\n\r\nhello\r\n"
    dovecot_user.server.append(dovecot_user.name, "INBOX", raw)
    daemon.wait_for(lambda _: len(daemon.events("cycle done", account="dana")) >= 2, 60)
    # the new message, and the draft the first cycle wrote (new in Drafts since its sync)
    assert daemon.events("cycle done", account="dana")[1]["fetched"] == 2
    assert daemon.stop() == 0


def test_sigterm_during_a_sync_stops_cleanly_and_the_next_start_resumes(
    team: Path,  # noqa: F811
    dovecot_user: DovecotUser,
    running: list[Running],
) -> None:
    """SIGTERM in the middle of a large first sync: exit 0 within 10 s, a consistent
    store; the next start syncs the rest, every message once."""
    count = dovecot_user.server.write_maildir(
        dovecot_user.name, "INBOX", folder_messages(60_000, "INBOX", seed=7)
    )
    config = configure(team)
    first = Running(config)
    running.append(first)
    first.wait_for(lambda _: message_count(config) > 0, 120)
    assert first.stop() == 0
    assert not first.events("cycle done"), "the stop came after the sync, not during it"
    stored = message_count(config)
    assert stored > 0
    second = Running(config)
    running.append(second)
    second.wait_for(lambda _: bool(second.events("cycle done", account="dana")), 150)
    assert second.stop() == 0
    with sqlite3.connect(config.parent / "state" / "relight.db") as connection:
        rows, keys = connection.execute(
            "SELECT count(*), count(DISTINCT dedup_key) FROM messages"
        ).fetchone()
    scenario_messages = 7 + 4  # the drafting scenario's mailbox and the Relight draft
    assert rows == keys
    assert rows >= count
    assert rows <= count + scenario_messages


def test_sighup_reloads_a_good_config_and_keeps_the_old_one_on_a_broken_one(
    team: Path,  # noqa: F811
    dovecot_user: DovecotUser,
    running: list[Running],
) -> None:
    """SIGHUP: a broken file is reported and the daemon goes on with what it had; a
    good one (a second account) is taken up."""
    config = configure(team)
    good_text = config.read_text()
    daemon = Running(config, {BAD_ENV: WRONG_PASSWORD})
    running.append(daemon)
    daemon.wait_for(lambda _: bool(daemon.events("cycle done", account="dana")))
    config.write_text(good_text + "\n[rules\nbroken = \n")
    daemon.process.send_signal(signal.SIGHUP)
    failed = "reload failed: keeping the running configuration"
    daemon.wait_for(lambda _: bool(daemon.events(failed)))
    config.write_text(good_text + bad_account(dovecot_user))
    daemon.process.send_signal(signal.SIGHUP)
    daemon.wait_for(lambda _: bool(daemon.events("configuration reloaded")))
    daemon.wait_for(lambda lines: any("login refused" in line["event"] for line in lines))
    assert daemon.process.poll() is None
    assert daemon.stop() == 0


def test_systemd_hears_ready_watchdog_and_stopping(
    team: Path,  # noqa: F811
    running: list[Running],
    tmp_path: Path,
) -> None:
    """With NOTIFY_SOCKET and WATCHDOG_USEC set, as systemd sets them for Type=notify:
    READY=1, then WATCHDOG=1 pings, then STOPPING=1 on SIGTERM."""
    path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        sock.settimeout(60)
        daemon = Running(configure(team), {"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "2000000"})
        running.append(daemon)
        received: list[str] = []

        def until(token: str) -> None:
            while not any(token in message for message in received):
                received.append(sock.recv(4096).decode())

        until("READY=1")
        until("WATCHDOG=1")
        daemon.process.send_signal(signal.SIGTERM)
        until("STOPPING=1")
        assert daemon.process.wait(timeout=10) == 0
    order = [m for m in received if any(t in m for t in ("READY=1", "STOPPING=1"))]
    assert "READY=1" in order[0]
    assert "STOPPING=1" in order[-1]


def test_the_daemon_rides_out_a_server_outage(
    team: Path,  # noqa: F811
    dovecot_user: DovecotUser,
    running: list[Running],
) -> None:
    """The server goes away (connections refused, the IDLE one cut) and comes back: the
    worker retries with backoff, then syncs again, without a restart of the daemon."""
    with FlakyProxy(dovecot_user.server.port) as proxy:
        through(proxy, team, dovecot_user)
        daemon = Running(configure(team))
        running.append(daemon)
        daemon.wait_for(lambda _: bool(daemon.events("cycle done", account="dana")))
        proxy.refuse()
        proxy.cut_after(0)
        daemon.wait_for(lambda _: bool(daemon.events("transient error; retrying")), 90)
        proxy.resume()
        daemon.wait_for(lambda _: len(daemon.events("cycle done", account="dana")) >= 2, 150)
        assert daemon.process.poll() is None
        assert daemon.stop() == 0


def test_a_second_sigterm_exits_at_once(
    team: Path,  # noqa: F811
    dovecot_user: DovecotUser,
    running: list[Running],
) -> None:
    """The worker hangs on a server that never answers (until the connector's timeout):
    a first SIGTERM waits for it, a second one exits at once (exit 1); the next start
    works normally."""
    with FlakyProxy(dovecot_user.server.port) as proxy:
        through(proxy, team, dovecot_user)
        config = configure(team)
        proxy.stall_after(0)  # connections accepted, never greeted
        first = Running(config)
        running.append(first)
        first.wait_for(lambda _: bool(first.events("relight started")))
        first.wait_for(lambda _: proxy.stalls > 0)
        first.process.send_signal(signal.SIGTERM)
        first.wait_for(lambda _: bool(first.events("stopping: finishing the accounts in hand")))
        assert first.process.poll() is None  # still waiting for the worker
        assert first.stop() == 1
        proxy.resume()
        second = Running(config)
        running.append(second)
        second.wait_for(lambda _: bool(second.events("cycle done", account="dana")))
        assert second.stop() == 0


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_two_daemons_on_one_postgresql_share_the_work_and_never_draft_twice(
    team: Path,  # noqa: F811
    dovecot_user: DovecotUser,
    running: list[Running],
    db_url: str,
) -> None:
    """Two `relight run` on one PostgreSQL store: one holds the account's lease and drafts,
    the other waits; when the first stops, the second takes the account over. One draft."""
    text = team.read_text().replace("[daemon]\n", f'[daemon]\ndatabase = "{db_url}"\n', 1)
    team.write_text(text)
    config = configure(team)
    first, second = Running(config), Running(config)
    running += [first, second]

    def holder() -> Running | None:
        done = [d for d in (first, second) if d.events("cycle done", account="dana")]
        return done[0] if done else None

    first.wait_for(lambda _: holder() is not None)
    holding = holder()
    assert holding is not None
    waiting = second if holding is first else first
    waiting.wait_for(
        lambda _: bool(waiting.events("account leased by another worker; waiting for it to expire"))
    )
    assert not waiting.events("cycle done")
    assert len(relight_drafts(dovecot_user)) == 1
    assert holding.stop() == 0  # releases the lease
    waiting.wait_for(lambda _: bool(waiting.events("cycle done", account="dana")), 90)
    assert waiting.events("cycle done", account="dana")[0]["drafts"] in ({}, {"found": 1})
    assert len(relight_drafts(dovecot_user)) == 1
    assert waiting.stop() == 0
