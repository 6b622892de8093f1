"""Telling systemd how the daemon is doing: the sd_notify protocol, without libsystemd.

systemd names a datagram socket in $NOTIFY_SOCKET (a path, or with a leading "@" a name in
the abstract namespace); each notification is one datagram of "KEY=value" lines:
READY=1 once start-up is done, RELOADING=1 and READY=1 around a reload, STOPPING=1, a
STATUS= line for `systemctl status`, and WATCHDOG=1 at least every WatchdogSec=, or systemd
kills and restarts the service. systemd checks the sender's pid: only the main process is
heard (NotifyAccess=main), so the daemon sends from its own process.

Without $NOTIFY_SOCKET (a terminal, a test, a container) every method does nothing. A
failed send is logged once and otherwise ignored: the service manager going away, or a
socket that vanished, must never take the daemon down with it.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Mapping

from daemon.logs import get_logger

__all__ = ["Notifier"]

# A notification is a few short lines; waiting longer than this for the service
# manager to take one means it is not listening, and the daemon has work to do.
_SEND_TIMEOUT = 2.0


class Notifier:
    """Notifications to the service manager named by $NOTIFY_SOCKET, if any."""

    def __init__(self, socket_name: str | None = None, watchdog_usec: int | None = None) -> None:
        """`socket_name` as in $NOTIFY_SOCKET (None: notify nobody); `watchdog_usec` the
        watchdog period for this process in microseconds (None: no watchdog)."""
        self._socket_name = socket_name or None
        self._address = _address(socket_name) if socket_name else None
        self._watchdog_usec = watchdog_usec if watchdog_usec and watchdog_usec > 0 else None
        self._failure_logged = False
        self._lock = threading.Lock()

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> Notifier:
        """Read $NOTIFY_SOCKET, $WATCHDOG_USEC and $WATCHDOG_PID as systemd sets them.

        The watchdog is this process's only when $WATCHDOG_PID is unset or names it: a
        child that inherited the environment must not ping for its parent.
        """
        socket_name = environ.get("NOTIFY_SOCKET", "").strip() or None
        watchdog_usec = _positive_int(environ.get("WATCHDOG_USEC"))
        watchdog_pid = environ.get("WATCHDOG_PID", "").strip()
        if watchdog_pid and _positive_int(watchdog_pid) != os.getpid():
            watchdog_usec = None
        return cls(socket_name, watchdog_usec if socket_name else None)

    @property
    def enabled(self) -> bool:
        """True when a service manager listens (started by systemd with Type=notify)."""
        return self._socket_name is not None

    @property
    def watchdog_interval(self) -> float | None:
        """Seconds between watchdog pings (half of WatchdogSec=, as systemd advises);
        None when no watchdog is asked of this process."""
        if self._socket_name is None or self._watchdog_usec is None:
            return None
        return self._watchdog_usec / 2_000_000

    def ready(self, status: str = "") -> None:
        """Start-up, or a reload, is complete."""
        self._send("READY=1", *([_status_line(status)] if status else []))

    def reloading(self) -> None:
        """A reload begins; send `ready()` when it is done, whether it worked or not.

        MONOTONIC_USEC is what Type=notify-reload (systemd 253 and later) needs to match
        the notification to the reload it asked for; older versions ignore it.
        """
        monotonic_usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        self._send("RELOADING=1", f"MONOTONIC_USEC={monotonic_usec}")

    def stopping(self) -> None:
        """A stop request was received; the daemon is winding down."""
        self._send("STOPPING=1")

    def status(self, text: str) -> None:
        """One line for `systemctl status` (a newline would end the field early)."""
        self._send(_status_line(text))

    def watchdog(self) -> None:
        """The daemon is alive and working. Nothing is sent when no watchdog is asked of
        this process (no WatchdogSec=, or $WATCHDOG_PID names another one)."""
        if self.watchdog_interval is not None:
            self._send("WATCHDOG=1")

    def _send(self, *fields: str) -> None:
        """One datagram of "KEY=value" lines."""
        if self._socket_name is None:
            return
        message = "\n".join(fields).encode("utf-8", "replace")
        try:
            if self._address is None:
                raise OSError(f"unsupported NOTIFY_SOCKET address {self._socket_name!r}")
            # A fresh socket per message, as libsystemd does: nothing to keep or reopen,
            # and like every Python socket it is not inherited by child processes.
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.settimeout(_SEND_TIMEOUT)
                sock.sendto(message, self._address)
        except OSError as exc:
            with self._lock:
                if self._failure_logged:
                    return
                self._failure_logged = True
            get_logger().warning(
                "systemd notification failed; further failures are not logged",
                notify_socket=self._socket_name,
                error=str(exc),
            )


def _address(socket_name: str) -> bytes | None:
    """The sockaddr_un path: "@name" is "\\0name" in the abstract namespace. Other forms
    (systemd 254's "vsock:" addresses) are not supported: None."""
    if socket_name.startswith("@"):
        return b"\0" + os.fsencode(socket_name[1:])
    if socket_name.startswith("/"):
        return os.fsencode(socket_name)
    return None


def _status_line(text: str) -> str:
    return "STATUS=" + " ".join(text.split())


def _positive_int(value: str | None) -> int | None:
    try:
        number = int(value or "")
    except ValueError:
        return None
    return number if number > 0 else None
