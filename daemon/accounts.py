"""From an account's configuration to the connector that reaches its mailbox."""

from __future__ import annotations

from connectors.base import SyncConnector
from connectors.imap import ImapConnector
from connectors.maildir import MaildirConnector
from daemon.config import AccountConfig, Config

__all__ = ["UnsupportedKind", "open_connector"]


class UnsupportedKind(Exception):
    """The account's kind is valid configuration but this version cannot sync it yet."""


def open_connector(config: Config, account: AccountConfig) -> SyncConnector:
    if account.kind == "imap":
        assert account.host is not None
        assert account.port is not None
        return ImapConnector(
            account.host,
            account.port,
            username=account.username or account.addresses[0],
            password=account.password or "",
            security=account.security or "tls",
            ca_file=account.tls_ca_file,
            timeout=account.timeout or 30.0,
            own_addresses=frozenset(account.addresses),
            excerpt_chars=config.privacy.excerpt_chars,
        )
    if account.kind == "maildir":
        assert account.path is not None
        return MaildirConnector(
            account.path,
            sent_folder=account.sent_folder,
            drafts_folder=account.drafts_folder,
            own_addresses=frozenset(account.addresses),
            excerpt_chars=config.privacy.excerpt_chars,
        )
    raise UnsupportedKind(
        f"accounts.{account.name}: kind = {account.kind!r} cannot be synced by this version yet"
    )
