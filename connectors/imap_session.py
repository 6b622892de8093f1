"""What the mixins of `ImapConnector` (drafts, IDLE) use of the session it holds.

Declared for the type checker only: `ImapConnector` provides each of these itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    import imapclient

    from connectors.base import RemoteFolder

__all__ = ["ImapSession"]


class ImapSession:
    """The connected client, its capabilities, the error boundary and the folder list."""

    if TYPE_CHECKING:
        _capabilities: frozenset[str]

        @property
        def client(self) -> imapclient.IMAPClient: ...

        def _boundary(self, action: str) -> AbstractContextManager[None]: ...

        def folders(self) -> list[RemoteFolder]: ...
