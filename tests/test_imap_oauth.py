"""IMAP with OAuth (XOAUTH2, Microsoft 365's way) against a private Dovecot on loopback.

Dovecot 2.3 checks bearer tokens with its oauth2 passdb (tests/support/dovecot.py,
`oauth2_introspection_url`): it POSTs each token to the introspection endpoint below,
which plays Exchange Online's part: a token is good when the local Entra ID fake
(tests/support/graph_fake.py) issued it and it has not expired, and it opens the one
mailbox the app was given a permission for (as `Add-MailboxPermission` does for an app's
service principal). The tokens themselves come from real msal, through
`connectors.msauth.app_token_source`, with the fake as authority.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest

from connectors.base import AuthenticationError, Checkpoint, Fetched, FolderRole, RemoteFolder
from connectors.imap import ImapConnector, imap_oauth_scopes
from connectors.msauth import TokenSource, app_token_source
from daemon import accounts
from daemon.accounts import open_connector
from daemon.config import parse_config
from tests.conftest import start_dovecot
from tests.support.dovecot import DovecotServer
from tests.support.graph_fake import GraphFake

pytestmark = [pytest.mark.dovecot, pytest.mark.timeout(60)]

CLIENT_ID = "33333333-3333-3333-3333-333333333333"
CLIENT_SECRET = "imap-app-secret-value"
USERS = {"dana": "dana-secret", "lee": "lee-secret"}
GRANTED = "dana"  # the one mailbox the app's service principal may open
INBOX = RemoteFolder("INBOX", FolderRole.INBOX)


# -- the introspection endpoint ----------------------------------------------------------------


@dataclass
class Introspection:
    """RFC 7662 token introspection for Dovecot's oauth2 passdb (introspection_mode = post:
    a form with `token`), answering from the Entra fake's issued tokens."""

    fake: GraphFake
    mailbox: str
    tokens_seen: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/introspect"

    def answer(self, token: str) -> dict[str, Any]:
        self.tokens_seen.append(token)
        with self.fake.lock:
            issued = self.fake.tokens.get(token)
        if issued is None or issued[1] <= time.time():
            return {"active": False}
        return {"active": True, "username": self.mailbox, "scope": "IMAP.AccessAsApp"}

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


def _handler(introspection: Introspection) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            form = parse_qs(self.rfile.read(length).decode())
            body = json.dumps(introspection.answer(form.get("token", [""])[0])).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


# -- fixtures ---------------------------------------------------------------------------------


@dataclass
class World:
    fake: GraphFake
    introspection: Introspection
    server: DovecotServer
    directory: Path

    def tokens(self, secret: str = CLIENT_SECRET) -> TokenSource:
        """App-only tokens from real msal; the fake takes its own origin as the scope."""
        return app_token_source(
            authority_url=self.fake.authority_url,
            tenant_id=self.fake.tenant_id,
            client_id=CLIENT_ID,
            client_secret=secret,
            scopes=[f"{self.fake.base_url}/.default"],
            cache_path=self.directory / f"msal-{secret}.json",
            ca_file=self.fake.ca_file,
            timeout=10,
        )

    def connector(self, tokens: TokenSource, username: str = GRANTED) -> ImapConnector:
        return ImapConnector(
            "localhost",
            self.server.tls_port,
            username=username,
            token_source=tokens,
            ca_file=self.server.cert_file,
            own_addresses=frozenset({"dana@acmesoft.example"}),
            timeout=10,
        )


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    """The Entra fake, the introspection endpoint and a Dovecot that asks it; a server of
    the test's own, as Dovecot slows every later login from an IP that failed one."""
    directory = tmp_path / "fake"
    directory.mkdir()
    with GraphFake(directory) as fake:
        fake.add_client(CLIENT_ID, secret=CLIENT_SECRET)
        introspection = Introspection(fake, GRANTED)
        try:
            server = start_dovecot(
                users=USERS,
                oauth2_introspection_url=introspection.url,
                extra_config="auth_failure_delay = 0",
            )
            try:
                yield World(fake, introspection, server, tmp_path)
            finally:
                server.stop()
        finally:
            introspection.close()
    assert fake.errors == []


def message(subject: str) -> bytes:
    lines = [
        "From: Pat Prospect <pat@prospect.example>",
        "To: Dana Reyes <dana@acmesoft.example>",
        f"Subject: {subject}",
        f"Date: {format_datetime(datetime(2024, 3, 5, 14, 30, tzinfo=UTC))}",
        f"Message-ID: <{subject.replace(' ', '.')}@prospect.example>",
        "Content-Type: text/plain; charset=utf-8",
        "",
        "Hello Dana,",
        "",
        "Sounds good.",
    ]
    return ("\r\n".join(lines) + "\r\n").encode()


@dataclass
class StaticTokens:
    token: str
    calls: int = 0

    def access_token(self) -> str:
        self.calls += 1
        return self.token


# -- logging in with a token ------------------------------------------------------------------


def test_xoauth2_login_syncs_inbox(world: World) -> None:
    """A token from msal logs in with AUTHENTICATE XOAUTH2 and INBOX syncs as with a password."""
    world.server.append(GRANTED, "INBOX", message("Pricing question"))
    tokens = world.tokens()
    with world.connector(tokens) as connector:
        assert connector.folders()[0] == INBOX
        changes = list(connector.changes(INBOX, None))
    facts = [f for change in changes if isinstance(change, Fetched) for f in change.messages]
    assert [f.subject for f in facts] == ["Pricing question"]
    assert "Sounds good." in (facts[0].excerpt or "")
    assert isinstance(changes[-1], Checkpoint)
    assert world.fake.token_requests() == 1
    assert world.introspection.tokens_seen == [tokens.access_token()]  # the very token
    assert "method=XOAUTH2" in world.server.log()
    with world.connector(tokens) as connector:  # msal's cache serves the next login
        assert connector.folders()[0] == INBOX
    assert world.fake.token_requests() == 1


def test_each_login_asks_for_a_fresh_token(world: World) -> None:
    """The token source is asked at every login, so a token about to expire is replaced."""
    world.fake.token_lifetime = 120  # under msal's five minutes: refreshed at each ask
    tokens = world.tokens()
    for _ in range(2):
        with world.connector(tokens) as connector:
            assert connector.folders()[0] == INBOX
    assert world.fake.token_requests() == 2
    assert len(set(world.introspection.tokens_seen)) == 2


def test_open_connector_for_auth_oauth(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """An imap account with auth = "oauth" gets an msal token source in open_connector."""
    trust = world.directory / "trust.pem"  # the fake's CA and Dovecot's certificate
    trust.write_bytes(world.fake.ca_file.read_bytes() + world.server.cert_file.read_bytes())
    config = parse_config(
        {
            "daemon": {"state_dir": str(world.directory / "state")},
            "accounts": [
                {
                    "name": "dana",
                    "kind": "imap",
                    "rep_name": "Dana Reyes",
                    "addresses": ["dana@acmesoft.example"],
                    "host": "localhost",
                    "port": world.server.tls_port,
                    "auth": "oauth",
                    "username": GRANTED,
                    "tenant_id": world.fake.tenant_id,
                    "client_id": CLIENT_ID,
                    "client_secret_env": "IMAP_APP_SECRET",
                    "authority_url": world.fake.authority_url,
                    "tls_ca_file": str(trust),
                    "timeout": 10,
                }
            ],
        },
        environ={"IMAP_APP_SECRET": CLIENT_SECRET},
    )
    asked: list[bool] = []

    def fake_scopes(*, delegated: bool = False) -> list[str]:
        asked.append(delegated)  # Exchange Online's scope is not the fake's
        return [f"{world.fake.base_url}/.default"]

    monkeypatch.setattr(accounts, "imap_oauth_scopes", fake_scopes)
    world.server.append(GRANTED, "INBOX", message("Via the config"))
    connector = open_connector(config, config.account("dana"))
    assert isinstance(connector, ImapConnector)
    with connector:
        changes = list(connector.changes(INBOX, None))
    assert [f.subject for c in changes if isinstance(c, Fetched) for f in c.messages] == [
        "Via the config"
    ]
    assert asked == [False]
    assert list((world.directory / "state").glob("msal-app-*.json"))  # the token cache


# -- refusals ---------------------------------------------------------------------------------


def test_expired_token_is_authentication_error(world: World) -> None:
    """A token the server no longer takes (expired or revoked while msal still holds it)
    is an AuthenticationError naming the user, never the token."""
    tokens = world.tokens()
    with world.connector(tokens) as connector:
        assert connector.folders()[0] == INBOX
    token = tokens.access_token()
    with world.fake.lock:
        audience, _ = world.fake.tokens[token]
        world.fake.tokens[token] = (audience, time.time() - 1)
    with pytest.raises(AuthenticationError) as caught, world.connector(tokens):
        pass
    assert f"login refused for user {GRANTED!r}" in str(caught.value)
    assert token not in str(caught.value)
    assert world.introspection.tokens_seen == [token, token]


def test_wrong_token_is_authentication_error(world: World) -> None:
    """A token Entra never issued is refused; the message holds the user, not the token."""
    bogus = StaticTokens("eyJ0eXAiOiJKV1QiLCJub25jZSI6not-issued-by-entra")
    with pytest.raises(AuthenticationError) as caught, world.connector(bogus):
        pass
    assert "'dana'" in str(caught.value)
    assert bogus.token not in str(caught.value)
    assert bogus.calls == 1


def test_token_for_another_mailbox_is_refused(world: World) -> None:
    """A good token opens only the mailbox the app was given (Dovecot compares the
    introspected username with the XOAUTH2 user)."""
    with pytest.raises(AuthenticationError, match="'lee'"), world.connector(world.tokens(), "lee"):
        pass


def test_no_token_is_authentication_error_before_login(world: World) -> None:
    """A token source that cannot get a token (bad client secret) fails the login with
    msal's AADSTS error, where it happened; no AUTHENTICATE is sent."""
    wrong = "not-the-app-secret-42"
    with pytest.raises(AuthenticationError) as caught, world.connector(world.tokens(wrong)):
        pass
    text = str(caught.value)
    assert text.startswith(f"login (localhost:{world.server.tls_port}): ")
    assert "AADSTS7000215" in text
    assert wrong not in text
    assert world.introspection.tokens_seen == []


# -- without a server -------------------------------------------------------------------------


def test_password_and_token_source_exclude_each_other() -> None:
    with pytest.raises(ValueError, match="not both"):
        ImapConnector("localhost", 993, username="u", password="p", token_source=StaticTokens("t"))


def test_microsoft_365_scopes() -> None:
    """Microsoft's documented scopes: the app's .default, or the rep's IMAP.AccessAsUser.All."""
    assert imap_oauth_scopes() == ["https://outlook.office365.com/.default"]
    assert imap_oauth_scopes(delegated=True) == ["https://outlook.office.com/IMAP.AccessAsUser.All"]
