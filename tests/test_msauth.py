"""Token sources (connectors.msauth) through real msal against the local Entra ID fake."""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors import msauth
from connectors.base import AuthenticationError, ProtocolError
from connectors.graph import FOLDERS, GraphConnector
from connectors.msauth import (
    app_token_source,
    delegated_graph_scopes,
    delegated_token_source,
    device_code_sign_in,
    graph_app_scopes,
    token_cache_path,
)
from tests.support.graph_fake import GraphFake

pytestmark = pytest.mark.timeout(60)

MAILBOX = "dana@acmesoft.example"
PUBLIC_CLIENT = "22222222-2222-2222-2222-222222222222"


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[GraphFake]:
    """A started fake with one public client (no secret) for delegated sign-in."""
    directory = tmp_path / "fake"
    directory.mkdir()
    with GraphFake(directory, mailbox=MAILBOX) as server:
        server.add_client(PUBLIC_CLIENT)
        yield server
    assert server.errors == []


def sign_in(fake: GraphFake, cache: Path, prompts: list[str]) -> str:
    return device_code_sign_in(
        authority_url=fake.authority_url,
        tenant_id=fake.tenant_id,
        client_id=PUBLIC_CLIENT,
        scopes=delegated_graph_scopes(fake.graph_url),
        cache_path=cache,
        prompt=prompts.append,
        ca_file=fake.ca_file,
        timeout=10,
    )


def delegated(fake: GraphFake, cache: Path) -> msauth.TokenSource:
    return delegated_token_source(
        authority_url=fake.authority_url,
        tenant_id=fake.tenant_id,
        client_id=PUBLIC_CLIENT,
        scopes=delegated_graph_scopes(fake.graph_url),
        cache_path=cache,
        account="dana",
        username=MAILBOX,
        ca_file=fake.ca_file,
        timeout=10,
    )


def test_device_code_sign_in_then_silent_tokens(fake: GraphFake, tmp_path: Path) -> None:
    """`relight auth` shows the code and polls; the daemon then reads tokens from the cache."""
    cache = token_cache_path(tmp_path / "state", fake.tenant_id, PUBLIC_CLIENT, "dana")
    prompts: list[str] = []
    assert sign_in(fake, cache, prompts) == MAILBOX
    assert len(prompts) == 1
    assert "enter the code" in prompts[0]
    assert fake.token_requests("urn:ietf:params:oauth:grant-type:device_code") == 2
    assert stat.S_IMODE(cache.stat().st_mode) == 0o600

    msauth._PUBLIC_APPS.clear()  # the daemon is another process
    connector = GraphConnector(
        fake.graph_url, MAILBOX, delegated(fake, cache), ca_file=fake.ca_file
    )
    with connector:
        stream = list(connector.changes(FOLDERS[0], None))
    assert stream  # a round from scratch of an empty Inbox: Present and Checkpoint
    assert fake.token_requests("refresh_token") == 0


def test_delegated_token_is_refreshed_with_the_cached_refresh_token(
    fake: GraphFake, tmp_path: Path
) -> None:
    """An access token about to expire is renewed with the refresh token, silently."""
    fake.token_lifetime = 60  # msal renews tokens with less than five minutes left
    cache = tmp_path / "delegated.json"
    sign_in(fake, cache, [])
    assert delegated(fake, cache).access_token()
    assert fake.token_requests("refresh_token") == 1


def test_delegated_without_sign_in_says_to_run_relight_auth(
    fake: GraphFake, tmp_path: Path
) -> None:
    """No account in the cache: AuthenticationError naming the command to run."""
    with pytest.raises(AuthenticationError, match="relight auth dana"):
        delegated(fake, tmp_path / "empty.json").access_token()


def test_cache_file_is_replaced_private_whatever_was_there(fake: GraphFake, tmp_path: Path) -> None:
    """A damaged, world-readable cache file is replaced by a valid one with mode 0600."""
    fake.add_client("app", secret="app-secret-value")
    cache = tmp_path / "app.json"
    cache.write_text("not json")
    cache.chmod(0o644)
    tokens = app_token_source(
        authority_url=fake.authority_url,
        tenant_id=fake.tenant_id,
        client_id="app",
        client_secret="app-secret-value",
        scopes=graph_app_scopes(fake.graph_url),
        cache_path=cache,
        ca_file=fake.ca_file,
        timeout=10,
    )
    assert tokens.access_token()
    assert stat.S_IMODE(cache.stat().st_mode) == 0o600
    assert "AccessToken" in json.loads(cache.read_text())
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_unknown_tenant_is_an_authentication_error(fake: GraphFake, tmp_path: Path) -> None:
    """A tenant the authority does not know (AADSTS90002) is the admin's to fix."""
    tokens = app_token_source(
        authority_url=fake.authority_url,
        tenant_id="contoso.invalid",
        client_id="app",
        client_secret="whatever-secret",
        scopes=graph_app_scopes(fake.graph_url),
        cache_path=tmp_path / "unknown.json",
        ca_file=fake.ca_file,
        timeout=10,
    )
    with pytest.raises(AuthenticationError, match="AADSTS90002"):
        tokens.access_token()


def test_authority_must_be_https(tmp_path: Path) -> None:
    """msal refuses a plain-http authority; that is a configuration problem."""
    tokens = app_token_source(
        authority_url="http://127.0.0.1:9",
        tenant_id="tenant",
        client_id="app",
        client_secret="whatever-secret",
        scopes=["https://graph.microsoft.com/.default"],
        cache_path=tmp_path / "http.json",
        timeout=5,
    )
    with pytest.raises(ProtocolError, match="https"):
        tokens.access_token()


def test_cache_paths_are_per_app_and_per_delegated_account(tmp_path: Path) -> None:
    """One cache file per app registration, and one per rep for delegated sign-ins."""
    app = token_cache_path(tmp_path, "t", "c")
    dana = token_cache_path(tmp_path, "t", "c", "dana")
    kim = token_cache_path(tmp_path, "t", "c", "kim")
    assert len({app, dana, kim}) == 3
    assert app.parent == tmp_path
