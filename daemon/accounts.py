"""From an account's configuration to the connector that reaches its mailbox.

Microsoft accounts get their tokens from `connectors.msauth`: app-only (a client secret or
certificate) by default, or the rep's own sign-in (`delegated = true`, `relight auth`),
each with its token cache in the state directory.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from connectors.base import SyncConnector
from connectors.ews import EwsConnector, ews_oauth_scopes
from connectors.graph import GraphConnector
from connectors.imap import ImapConnector, imap_oauth_scopes
from connectors.maildir import MaildirConnector
from connectors.msauth import (
    TokenSource,
    app_token_source,
    delegated_graph_scopes,
    delegated_token_source,
    device_code_sign_in,
    graph_app_scopes,
    token_cache_path,
)
from daemon.config import AccountConfig, Config
from daemon.shutdown import StopFlag

__all__ = ["UnsupportedKind", "open_connector", "sign_in"]


class UnsupportedKind(Exception):
    """The account's kind is valid configuration but this version cannot sync it yet."""


def open_connector(
    config: Config, account: AccountConfig, stop: StopFlag | None = None
) -> SyncConnector:
    """The account's connector; with `stop` (the daemon's), a wait for a throttled server
    ends as soon as a stop is requested."""
    own = frozenset(account.addresses)
    excerpt_chars = config.privacy.excerpt_chars
    if account.kind == "imap":
        assert account.host is not None
        assert account.port is not None
        # auth = "oauth": XOAUTH2 with a Microsoft 365 token (imap_oauth_scopes: Exchange
        # Online's, whatever `host` says), for the mailbox `username`.
        xoauth2 = (
            _token_source(config, account, imap_oauth_scopes(delegated=account.delegated))
            if account.auth == "oauth"
            else None
        )
        return ImapConnector(
            account.host,
            account.port,
            username=account.username or account.addresses[0],
            password=account.password or "",
            token_source=xoauth2,
            security=account.security or "tls",
            ca_file=account.tls_ca_file,
            timeout=account.timeout or 30.0,
            own_addresses=own,
            excerpt_chars=excerpt_chars,
        )
    if account.kind == "maildir":
        assert account.path is not None
        return MaildirConnector(
            account.path,
            sent_folder=account.sent_folder,
            drafts_folder=account.drafts_folder,
            own_addresses=own,
            excerpt_chars=excerpt_chars,
        )
    if account.kind == "graph":
        assert account.graph_url is not None
        assert account.mailbox is not None
        tokens = _token_source(config, account, _graph_scopes(account))
        return GraphConnector(
            account.graph_url,
            account.mailbox,
            tokens,
            own_addresses=own,
            excerpt_chars=excerpt_chars,
            timeout=account.timeout or 30.0,
            ca_file=account.tls_ca_file,
            should_stop=stop.is_set if stop is not None else None,
        )
    if account.kind == "ews":
        assert account.ews_url is not None
        assert account.mailbox is not None
        oauth = account.auth == "oauth"
        bearer = (
            _token_source(
                config, account, ews_oauth_scopes(account.ews_url, delegated=account.delegated)
            )
            if oauth
            else None
        )
        return EwsConnector(
            account.ews_url,
            account.mailbox,
            auth=account.auth or "ntlm",
            username=account.username,
            password=account.password,
            token_source=bearer,
            impersonation=oauth and not account.delegated,
            own_addresses=own,
            excerpt_chars=excerpt_chars,
            timeout=account.timeout or 30.0,
            ca_file=account.tls_ca_file,
            wait=stop.wait if stop is not None else None,
        )
    raise UnsupportedKind(
        f"accounts.{account.name}: kind = {account.kind!r} cannot be synced by this version yet"
    )


def sign_in(config: Config, account: AccountConfig, prompt: Callable[[str], None] = print) -> str:
    """`relight auth`: the rep's device-code sign-in for a delegated account; returns the
    username that signed in (its refresh token is in the state directory)."""
    oauth_imap = account.kind == "imap" and account.auth == "oauth"
    if not account.delegated or not (account.kind == "graph" or oauth_imap):
        raise UnsupportedKind(
            f"accounts.{account.name}: relight auth is for graph accounts, and imap accounts "
            'with auth = "oauth", that have delegated = true'
        )
    assert account.tenant_id is not None
    assert account.client_id is not None
    return device_code_sign_in(
        authority_url=_authority(account),
        tenant_id=account.tenant_id,
        client_id=account.client_id,
        scopes=imap_oauth_scopes(delegated=True) if oauth_imap else _graph_scopes(account),
        cache_path=_cache_path(config, account),
        prompt=prompt,
        ca_file=account.tls_ca_file,
        timeout=account.timeout or 30.0,
    )


def _authority(account: AccountConfig) -> str:
    assert account.authority_url is not None  # the config gives the default
    return account.authority_url


def _graph_scopes(account: AccountConfig) -> list[str]:
    assert account.graph_url is not None
    if account.delegated:
        return delegated_graph_scopes(account.graph_url)
    return graph_app_scopes(account.graph_url)


def _cache_path(config: Config, account: AccountConfig) -> Path:
    assert account.tenant_id is not None
    assert account.client_id is not None
    owner = account.name if account.delegated else ""
    return token_cache_path(config.daemon.state_dir, account.tenant_id, account.client_id, owner)


def _token_source(config: Config, account: AccountConfig, scopes: list[str]) -> TokenSource:
    """The account's tokens: the rep's sign-in (delegated) or the app's own credential."""
    assert account.tenant_id is not None
    assert account.client_id is not None
    authority = _authority(account)
    if account.delegated:
        return delegated_token_source(
            authority_url=authority,
            tenant_id=account.tenant_id,
            client_id=account.client_id,
            scopes=scopes,
            cache_path=_cache_path(config, account),
            account=account.name,
            username=account.mailbox,
            ca_file=account.tls_ca_file,
            timeout=account.timeout or 30.0,
        )
    return app_token_source(
        authority_url=authority,
        tenant_id=account.tenant_id,
        client_id=account.client_id,
        client_secret=account.client_secret,
        certificate_file=account.client_certificate_file,
        scopes=scopes,
        cache_path=_cache_path(config, account),
        ca_file=account.tls_ca_file,
        timeout=account.timeout or 30.0,
    )
