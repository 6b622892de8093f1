"""How the daemon's stop request travels: an event to wait on, an exception to unwind with.

`Shutdown` is a `BaseException`, not an `Exception`: the `except Exception` that isolates
one account's failure never swallows it (as rq's worker does with its own stop request).
Code that loops (the sync, the waits between cycles) checks `StopFlag.raise_if_set()` at
points where stopping leaves nothing half-done: between transactions, never inside one.
"""

from __future__ import annotations

import threading

__all__ = ["Shutdown", "StopFlag"]


class Shutdown(BaseException):
    """The daemon was asked to stop; unwinds the account in hand to its last commit."""


class StopFlag:
    """Set once by a signal handler; read by every worker."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def set(self) -> None:
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    def wait(self, seconds: float) -> bool:
        """Sleep up to `seconds`, less when the flag is set; True when it is."""
        return self._event.wait(max(0.0, seconds))

    def raise_if_set(self) -> None:
        if self._event.is_set():
            raise Shutdown
