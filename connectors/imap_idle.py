"""Waiting for new mail with IMAP IDLE (RFC 2177), so a reply is seen within seconds.

`ImapIdle` is mixed into `ImapConnector`. `wait_for_mail(timeout, should_stop)` EXAMINEs
INBOX (read-only, as the sync does) and idles until the server announces a new or
expunged message, the timeout passes, or `should_stop()` turns true (checked every
second, so a daemon asked to stop is never held up by a quiet mailbox). It returns True
when mail moved, False otherwise, also on a server without IDLE, where the caller simply
polls. The session must be open; IDLE is left with DONE whatever happens.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from connectors.base import FolderRole
from connectors.imap_session import ImapSession

__all__ = ["ImapIdle"]

# Untagged responses that mean the mailbox changed.
_CHANGED = frozenset({b"EXISTS", b"EXPUNGE", b"FETCH"})
# RFC 2177: a client should re-issue IDLE at least every 29 minutes.
_MAX_IDLE = 25 * 60.0
_TICK = 1.0


class ImapIdle(ImapSession):
    """The `wait_for_mail` method of `ImapConnector` (see the module docstring)."""

    def wait_for_mail(self, timeout: float, should_stop: Callable[[], bool]) -> bool:
        """Idle on INBOX until mail moves (True), or `timeout` or a stop request (False)."""
        if "IDLE" not in self._capabilities:
            return False
        inbox = next(f.name for f in self.folders() if f.role is FolderRole.INBOX)
        deadline = time.monotonic() + min(timeout, _MAX_IDLE)
        with self._boundary(f"IDLE on {inbox}"):
            self.client.select_folder(inbox, readonly=True)
            self.client.idle()
            try:
                while not should_stop():
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return False
                    responses = self.client.idle_check(timeout=min(_TICK, remaining))
                    if any(_changed(response) for response in responses):
                        return True
            finally:
                self.client.idle_done()
        return False


def _changed(response: object) -> bool:
    return isinstance(response, tuple) and len(response) >= 2 and response[1] in _CHANGED
