"""daemon.notify against real AF_UNIX datagram sockets, as systemd's notify socket is one."""

from __future__ import annotations

import os
import secrets
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from daemon import notify
from daemon.notify import Notifier

_ENV = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")


class Listener:
    """The service manager's end: a bound datagram socket that collects notifications."""

    def __init__(self, sock: socket.socket, name: str) -> None:
        self.sock = sock
        self.name = name  # as systemd writes it into $NOTIFY_SOCKET

    def receive(self) -> str:
        return self.sock.recv(4096).decode("utf-8")

    def fields(self) -> dict[str, str]:
        return dict(line.split("=", 1) for line in self.receive().split("\n"))

    def assert_empty(self) -> None:
        self.sock.setblocking(False)
        with pytest.raises(BlockingIOError):
            self.sock.recv(4096)


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def listener(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Listener]:
    """A socket file in tmp_path, named by $NOTIFY_SOCKET."""
    path = tmp_path / "notify"
    assert len(os.fsencode(path)) < 108  # sun_path's limit
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(os.fspath(path))
        sock.settimeout(5)
        monkeypatch.setenv("NOTIFY_SOCKET", os.fspath(path))
        yield Listener(sock, os.fspath(path))


def test_ready_sends_ready_and_status(listener: Listener) -> None:
    """ready() sends READY=1 with the status line in the same datagram."""
    Notifier.from_environment().ready("3 accounts")
    assert listener.fields() == {"READY": "1", "STATUS": "3 accounts"}


def test_ready_without_status_sends_ready_only(listener: Listener) -> None:
    """ready() with no status sends exactly READY=1."""
    Notifier.from_environment().ready()
    assert listener.receive() == "READY=1"


def test_status_is_one_line(listener: Listener) -> None:
    """status() sends STATUS=; a newline or an '=' in the text cannot add a field."""
    Notifier.from_environment().status("syncing dana\nREADY=1")
    assert listener.receive() == "STATUS=syncing dana READY=1"


def test_stopping(listener: Listener) -> None:
    """stopping() sends STOPPING=1."""
    Notifier.from_environment().stopping()
    assert listener.receive() == "STOPPING=1"


def test_reloading_carries_the_monotonic_time(listener: Listener) -> None:
    """reloading() sends RELOADING=1 and MONOTONIC_USEC on CLOCK_MONOTONIC, in microseconds."""
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    Notifier.from_environment().reloading()
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    fields = listener.fields()
    assert fields.keys() == {"RELOADING", "MONOTONIC_USEC"}
    assert fields["RELOADING"] == "1"
    assert before <= int(fields["MONOTONIC_USEC"]) <= after


def test_watchdog_ping(listener: Listener, monkeypatch: pytest.MonkeyPatch) -> None:
    """watchdog() sends WATCHDOG=1 when systemd asked this process for pings."""
    monkeypatch.setenv("WATCHDOG_USEC", "120000000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    Notifier.from_environment().watchdog()
    assert listener.receive() == "WATCHDOG=1"


def test_watchdog_not_sent_when_not_asked(listener: Listener) -> None:
    """Without WATCHDOG_USEC, watchdog() sends nothing (other notifications still go)."""
    notifier = Notifier.from_environment()
    notifier.watchdog()
    notifier.stopping()
    assert listener.receive() == "STOPPING=1"
    listener.assert_empty()


def test_abstract_namespace_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    """A NOTIFY_SOCKET starting with '@' names a socket in the abstract namespace."""
    name = f"relight-test-{secrets.token_hex(8)}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(b"\0" + name.encode())
        sock.settimeout(5)
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        Notifier.from_environment().ready("up")
        assert sock.recv(4096) == b"READY=1\nSTATUS=up"


def test_nothing_sent_without_notify_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without NOTIFY_SOCKET no socket is even created, whatever the other variables say."""
    monkeypatch.setenv("WATCHDOG_USEC", "120000000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))

    def no_socket(*_args: object, **_kwargs: object) -> socket.socket:
        raise AssertionError("a socket was created")

    monkeypatch.setattr(notify.socket, "socket", no_socket)
    notifier = Notifier.from_environment()
    notifier.ready("up")
    notifier.reloading()
    notifier.status("working")
    notifier.watchdog()
    notifier.stopping()
    assert not notifier.enabled
    assert notifier.watchdog_interval is None


def test_send_failure_is_swallowed_and_logged_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A socket that does not exist raises nothing and is logged once, not per send."""
    monkeypatch.setenv("NOTIFY_SOCKET", os.fspath(tmp_path / "gone"))
    notifier = Notifier.from_environment()
    with structlog.testing.capture_logs() as logs:
        notifier.ready()
        notifier.status("still here")
        notifier.stopping()
    assert [entry["log_level"] for entry in logs] == ["warning"]
    assert logs[0]["notify_socket"] == os.fspath(tmp_path / "gone")


def test_unsupported_address_is_swallowed(monkeypatch: pytest.MonkeyPatch) -> None:
    """A NOTIFY_SOCKET form this client does not speak (vsock:) is logged, never raised."""
    monkeypatch.setenv("NOTIFY_SOCKET", "vsock:2:1234")
    with structlog.testing.capture_logs() as logs:
        Notifier.from_environment().ready()
    assert len(logs) == 1


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"WATCHDOG_USEC": "120000000"}, 60.0),  # no WATCHDOG_PID: ours
        ({"WATCHDOG_USEC": "120000000", "WATCHDOG_PID": "<self>"}, 60.0),
        ({"WATCHDOG_USEC": "3000000", "WATCHDOG_PID": "<self>"}, 1.5),
        ({"WATCHDOG_USEC": "120000000", "WATCHDOG_PID": "<other>"}, None),
        ({"WATCHDOG_USEC": "120000000", "WATCHDOG_PID": "junk"}, None),
        ({"WATCHDOG_PID": "<self>"}, None),
        ({"WATCHDOG_USEC": "0", "WATCHDOG_PID": "<self>"}, None),
        ({"WATCHDOG_USEC": "-5", "WATCHDOG_PID": "<self>"}, None),
        ({"WATCHDOG_USEC": "2m", "WATCHDOG_PID": "<self>"}, None),
        ({}, None),
    ],
)
def test_watchdog_interval(
    listener: Listener,
    monkeypatch: pytest.MonkeyPatch,
    environ: dict[str, str],
    expected: float | None,
) -> None:
    """Half of WATCHDOG_USEC in seconds, and only when WATCHDOG_PID is unset or this process."""
    pids = {"<self>": str(os.getpid()), "<other>": str(os.getpid() + 1)}
    for name, value in environ.items():
        monkeypatch.setenv(name, pids.get(value, value))
    assert Notifier.from_environment().watchdog_interval == expected


def test_no_watchdog_without_notify_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    """WATCHDOG_USEC alone asks for nothing: there is no one to ping."""
    monkeypatch.setenv("WATCHDOG_USEC", "120000000")
    assert Notifier.from_environment().watchdog_interval is None
