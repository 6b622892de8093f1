"""The raw protocol limit: a minimal IMAP reader on a plain socket.

It logs in, EXAMINEs each folder and sends the header FETCH that Relight's connector
sends, then reads the answer without parsing it: it only finds where each response ends
(CRLF, unless the line announces a `{literal}`, whose bytes it skips) and counts the
FETCH responses and the bytes. No IMAP client can read the same answer faster, so the
time it takes is the most a sync could hope for, as the server and loopback allow.
"""

from __future__ import annotations

import contextlib
import socket
import time

__all__ = ["RawImap", "RawImapError", "header_fetch_command", "raw_fetch", "raw_poll"]

CHUNK = 1 << 20
IO_TIMEOUT = 300.0  # seconds without a byte from the server before the reader gives up


class RawImapError(RuntimeError):
    """The server said NO/BAD, or the connection ended early."""


class RawImap:
    """Just enough IMAP4rev1 to LOGIN, EXAMINE and time a FETCH: no parsing beyond
    finding where each response ends (CRLF, unless the line announces a {literal})."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT)
        self.buffer = bytearray()
        self.received = 0
        self.tag_number = 0
        greeting = self._line()
        if not greeting.startswith(b"* OK"):
            raise RawImapError(f"unexpected greeting {greeting[:80]!r}")

    def close(self) -> None:
        with contextlib.suppress(OSError, RawImapError):
            self.command(b"LOGOUT")
        self.sock.close()

    def __enter__(self) -> RawImap:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def login(self, user: str, password: str) -> None:
        self.command(b'LOGIN "%s" "%s"' % (user.encode(), password.encode()))

    def examine(self, folder: str) -> None:
        self.command(b'EXAMINE "%s"' % folder.encode())

    def command(self, command: bytes) -> tuple[int, int]:
        """Send one command, read to its tagged OK; returns (FETCH responses, bytes read)."""
        self.tag_number += 1
        tag = b"r%d " % self.tag_number
        self.sock.sendall(tag + command + b"\r\n")
        fetches, start = 0, self.received - len(self.buffer)
        position, response_start = 0, True
        while True:
            end = self.buffer.find(b"\r\n", position)
            if end < 0:
                del self.buffer[:position]
                position = 0
                self._receive()
                continue
            if response_start:
                if self.buffer.startswith(tag, position):
                    status = bytes(self.buffer[position + len(tag) : end])
                    del self.buffer[: end + 2]
                    if not status.startswith(b"OK"):
                        raise RawImapError(f"{command.split()[0]!r} failed: {status[:200]!r}")
                    return fetches, self.received - len(self.buffer) - start
                fetches += self.buffer.startswith(b"* ", position) and (
                    b" FETCH " in self.buffer[position : min(end, position + 32)]
                )
            if end > position and self.buffer[end - 1] == ord("}"):
                opening = self.buffer.rfind(b"{", position, end)
                size = int(self.buffer[opening + 1 : end - 1])
                while len(self.buffer) < end + 2 + size:
                    self._receive()
                position, response_start = end + 2 + size, False
            else:
                position, response_start = end + 2, True

    def _line(self) -> bytes:
        while (end := self.buffer.find(b"\r\n")) < 0:
            self._receive()
        line = bytes(self.buffer[:end])
        del self.buffer[: end + 2]
        return line

    def _receive(self) -> None:
        chunk = self.sock.recv(CHUNK)
        if not chunk:
            raise RawImapError("the server closed the connection")
        self.received += len(chunk)
        self.buffer += chunk


def header_fetch_command(fields: tuple[str, ...]) -> bytes:
    names = " ".join(name.upper() for name in fields)
    items = f"UID INTERNALDATE RFC822.SIZE BODY.PEEK[HEADER.FIELDS ({names})]"
    return f"UID FETCH 1:* ({items})".encode()


def raw_fetch(
    port: int, user: str, password: str, folders: tuple[str, ...], command: bytes
) -> tuple[float, int, int]:
    """One pass of `command` over `folders`: (seconds, messages, bytes read)."""
    with RawImap(port) as imap:
        imap.login(user, password)
        started = time.perf_counter()
        messages = received = 0
        for folder in folders:
            imap.examine(folder)
            count, size = imap.command(command)
            messages, received = messages + count, received + size
        return time.perf_counter() - started, messages, received


def raw_poll(port: int, user: str, password: str, folders: tuple[str, ...]) -> float:
    """What a no-change poll cannot avoid: connect, log in, one STATUS per folder, log
    out. Returns seconds."""
    started = time.perf_counter()
    with RawImap(port) as imap:
        imap.login(user, password)
        for folder in folders:
            imap.command(b'STATUS "%s" (UIDVALIDITY UIDNEXT MESSAGES)' % folder.encode())
    return time.perf_counter() - started
