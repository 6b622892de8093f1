"""Microsoft sign-in through msal: access tokens for Graph (later also EWS OAuth and XOAUTH2).

A connector that talks to Microsoft is handed a `TokenSource` and asks it for a bearer
token before each request; the token source keeps msal's caches, refreshes when msal says
so, and turns msal's answers into our errors. Theory of operation:

* **App-only** (`app_token_source`): the client credentials grant of one app
  registration, with a client secret or a certificate (a PEM file holding the private key
  and the certificate; msal computes the SHA-256 thumbprint from the certificate and
  signs a PS256 assertion, as Microsoft's "certificate credentials" page asks). One
  `msal.ConfidentialClientApplication` per (authority, tenant, client, credential, cache
  file) lives as long as the process: every mailbox of that tenant shares it, and msal's
  in-memory cache serves tokens until five minutes before they expire.
* **Delegated** (`delegated_token_source`, `device_code_sign_in`): for a single mailbox
  whose admin cannot grant application permissions. `relight auth ACCOUNT` runs the
  device-code sign-in once; afterwards `acquire_token_silent` redeems the cached refresh
  token. No account in the cache: an `AuthenticationError` saying to run `relight auth`.
* **Persistent cache.** msal's `SerializableTokenCache` is loaded from `cache_path` and
  written back whenever msal changed it: a temporary file created 0600 in the same
  directory, fsynced, renamed over the old one. The file is read again when another
  process (`relight auth`) replaced it. It holds tokens, never the client secret.
* **Authority.** `{authority_url}/{tenant_id}`, built without msal's instance discovery
  (it would ask login.microsoftonline.com to vouch for the host the admin configured:
  national clouds and a test server alike). msal then reads the tenant's OpenID
  configuration at `{authority}/v2.0/.well-known/openid-configuration`, over https only.
  The app is built on first use: building it is the first request to the authority.
* **HTTP.** msal speaks through a `requests.Session` from `https_session`: the timeout on
  every request, certificates checked against the system store, certifi's bundle and
  `ca_file` if given (trusted *too*, as `tls_ca_file` is for every kind).

Errors: an error answer from the token endpoint becomes `AuthenticationError` with
Microsoft's AADSTS code and message (bad secret, expired secret, consent missing, unknown
tenant or app), except `temporarily_unavailable` / `server_error`, which are
`TransientError`; network failures and 5xx answers are `TransientError`; an untrusted
certificate or an authority that is not https is `ProtocolError`. No message ever holds
the secret or a token.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import ssl
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import msal
import requests
from cryptography import x509  # msal's own dependency
from cryptography.hazmat.primitives import serialization
from requests.adapters import HTTPAdapter

from connectors.base import (
    AuthenticationError,
    ConnectorError,
    ProtocolError,
    TransientError,
)

__all__ = [
    "TokenSource",
    "app_token_source",
    "delegated_graph_scopes",
    "delegated_token_source",
    "device_code_sign_in",
    "graph_app_scopes",
    "https_session",
    "token_cache_path",
]

_TRANSIENT_ERRORS = frozenset({"temporarily_unavailable", "server_error", "slow_down"})
_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----\r?\n.*?-----END \1-----\r?\n?", re.DOTALL)
_MAX_DESCRIPTION = 400


class TokenSource(Protocol):
    """Where a connector gets its bearer token; each call may refresh it."""

    def access_token(self) -> str:
        """A valid access token; `AuthenticationError` or `TransientError` otherwise."""
        ...


# -- scopes and cache files -------------------------------------------------------------


def graph_app_scopes(graph_url: str) -> list[str]:
    """The app-only scope of the Graph endpoint (`https://graph.microsoft.com/.default`;
    national clouds have their own host)."""
    return [f"{_origin(graph_url)}/.default"]


def delegated_graph_scopes(graph_url: str) -> list[str]:
    """The delegated scope a rep grants at `relight auth` (msal adds offline_access,
    openid and profile itself)."""
    return [f"{_origin(graph_url)}/Mail.ReadWrite"]


def token_cache_path(state_dir: Path, tenant_id: str, client_id: str, account: str = "") -> Path:
    """Where a token cache lives in the state directory: one file per app registration,
    and one per account for delegated sign-ins (each rep's refresh token apart)."""
    parts = f"{tenant_id}\n{client_id}\n{account}".encode()
    kind = "delegated" if account else "app"
    return Path(state_dir) / f"msal-{kind}-{hashlib.sha256(parts).hexdigest()[:16]}.json"


def _origin(url: str) -> str:
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        raise ValueError(f"not an absolute URL: {url!r}")
    return f"{parts.scheme}://{parts.netloc}"


# -- HTTP -------------------------------------------------------------------------------------


class _TrustingAdapter(HTTPAdapter):
    """Verifies against an SSL context that trusts the system store and `ca_file` too
    (requests alone would trust one bundle only)."""

    def __init__(self, context: ssl.SSLContext, pool_size: int) -> None:
        self._context = context
        super().__init__(pool_connections=1, pool_maxsize=pool_size, max_retries=0)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["ssl_context"] = self._context
        super().init_poolmanager(*args, **kwargs)


class _Session(requests.Session):
    """A session whose every request has the timeout (msal passes none of its own)."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self._timeout = timeout

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self._timeout
        return super().request(method, url, *args, **kwargs)


def https_session(ca_file: Path | None, timeout: float, pool_size: int = 4) -> requests.Session:
    """A requests session for Microsoft endpoints: the timeout on every request, TLS
    verified against the system store and certifi, and `ca_file` as well when given."""
    if timeout <= 0:
        raise ValueError("timeout must be positive")
    session = _Session(timeout)
    if ca_file is not None:
        context = ssl.create_default_context()
        try:
            context.load_verify_locations(cafile=str(ca_file))
        except (OSError, ssl.SSLError) as exc:
            raise ProtocolError(f"cannot load tls_ca_file {ca_file}: {exc}") from exc
        adapter: HTTPAdapter = _TrustingAdapter(context, pool_size)
    else:
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=pool_size, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


# -- the persistent cache ---------------------------------------------------------------------


class _PersistentCache:
    """msal's serializable cache mirrored to a 0600 file (see the module docstring)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.cache = msal.SerializableTokenCache()
        self._stamp: tuple[int, int, int] | None = None
        self._lock = threading.RLock()

    @contextmanager
    def session(self) -> Iterator[Any]:
        """The cache, fresh from the file when another process replaced it, and written
        back afterwards when msal changed it."""
        with self._lock:
            self._reload()
            yield self.cache
            if self.cache.has_state_changed:  # after an error: with the next success
                self._save()

    def _reload(self) -> None:
        try:
            info = self.path.stat()
        except FileNotFoundError:
            return
        except OSError as exc:
            raise ProtocolError(f"token cache {self.path}: {exc.strerror}") from exc
        stamp = (info.st_ino, info.st_mtime_ns, info.st_size)
        if stamp == self._stamp:
            return
        try:
            text = self.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ProtocolError(f"cannot read token cache {self.path}: {exc}") from exc
        # The same cache object throughout: msal's apps keep references to its methods.
        try:
            valid = isinstance(json.loads(text), dict)
        except ValueError:
            valid = False
        self.cache.deserialize(text if valid else None)
        self.cache.has_state_changed = not valid  # a damaged file is rewritten
        self._stamp = stamp

    def _save(self) -> None:
        data = self.cache.serialize().encode("utf-8")  # which clears has_state_changed
        directory = self.path.parent
        tmp = directory / f".{self.path.name}.{os.getpid()}.{threading.get_ident()}.tmp"
        try:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC | os.O_NOFOLLOW
            fd = os.open(tmp, flags, 0o600)
            try:
                os.fchmod(fd, 0o600)  # whatever the umask, and a leftover's mode
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, self.path)
            with contextlib.suppress(OSError):
                dir_fd = os.open(directory, os.O_RDONLY | os.O_CLOEXEC)
                try:
                    os.fsync(dir_fd)
                finally:
                    os.close(dir_fd)
            info = self.path.stat()
        except OSError as exc:
            self.cache.has_state_changed = True  # written with the next token then
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise ProtocolError(f"cannot write token cache {self.path}: {exc.strerror}") from exc
        self._stamp = (info.st_ino, info.st_mtime_ns, info.st_size)


# -- translating msal -------------------------------------------------------------------------


@contextmanager
def _boundary(action: str, secrets: Sequence[str] = ()) -> Iterator[None]:
    """msal's and requests' exceptions as ours (see the module docstring)."""
    try:
        yield
    except ConnectorError:
        raise
    except requests.exceptions.SSLError as exc:
        raise ProtocolError(
            f"{action}: TLS certificate not trusted ({_scrub(str(exc), secrets)}); "
            "set tls_ca_file to trust a private CA"
        ) from exc
    except requests.exceptions.HTTPError as exc:  # msal raises for 5xx answers
        status = exc.response.status_code if exc.response is not None else "?"
        raise TransientError(f"{action}: the authority answered HTTP {status}") from exc
    except requests.exceptions.RequestException as exc:
        raise TransientError(
            f"{action}: {type(exc).__name__}: {_scrub(str(exc), secrets)}"
        ) from exc
    except ValueError as exc:  # msal: a bad authority, OIDC discovery failed, not JSON
        raise _discovery_error(action, exc, secrets) from exc


def _discovery_error(action: str, exc: ValueError, secrets: Sequence[str]) -> ConnectorError:
    text = _scrub(str(exc), secrets)
    if "https" in text and "should consist of" in text:
        return ProtocolError(f"{action}: the authority must be an https URL with a tenant")
    # msal replaces the discovery failure by advice; the answer is in the first error.
    cause = _scrub(str(exc.__context__ or ""), secrets)
    if "HTTP status: 4" in cause:  # the tenant's OpenID configuration is not there
        codes = re.findall(r"AADSTS\d+: [^\\\r\n\"]*", cause)
        detail = codes[0] if codes else cause.split("Error:")[0]
        return AuthenticationError(f"{action}: unknown tenant or authority: {detail}"[:300])
    return ProtocolError(f"{action}: {text}"[:300])


def _token_from(result: Any, action: str, secrets: Sequence[str]) -> str:
    """The access token of an msal result dict, or our error for its error fields."""
    if not isinstance(result, dict):
        raise ProtocolError(f"{action}: no answer from msal")
    token = result.get("access_token")
    if isinstance(token, str) and token:
        return token
    raise _token_error(result, action, secrets)


def _token_error(result: dict[str, Any], action: str, secrets: Sequence[str]) -> ConnectorError:
    error = str(result.get("error") or "unknown_error")
    description = str(result.get("error_description") or "")
    # Microsoft's description ends with Trace ID, Correlation ID and Timestamp lines.
    description = description.splitlines()[0] if description else ""
    codes = result.get("error_codes") or []
    if codes and "AADSTS" not in description:
        description = f"AADSTS{codes[0]}: {description}".rstrip(": ")
    text = _scrub(f"{error}: {description}" if description else error, secrets)
    if error in _TRANSIENT_ERRORS:
        return TransientError(f"{action}: {text}")
    return AuthenticationError(f"{action}: {text}")


def _scrub(text: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        if secret and len(secret) >= 3:
            text = text.replace(secret, "***")
    return text[:_MAX_DESCRIPTION]


# -- app-only ---------------------------------------------------------------------------------


@dataclass
class _App:
    """One confidential client app and its cache, shared by every token source for it."""

    authority: str
    client_id: str
    credential: str | dict[str, str]
    secrets: tuple[str, ...]
    cache: _PersistentCache
    ca_file: Path | None
    timeout: float
    lock: threading.Lock = field(default_factory=threading.Lock)
    app: Any = None

    def access_token(self, scopes: list[str]) -> str:
        action = f"token for client {self.client_id}"
        with self.lock, _boundary(action, self.secrets), self.cache.session() as cache:
            if self.app is None:
                self.app = msal.ConfidentialClientApplication(
                    self.client_id,
                    client_credential=self.credential,
                    authority=self.authority,
                    token_cache=cache,
                    http_client=https_session(self.ca_file, self.timeout),
                    instance_discovery=False,
                )
            result = self.app.acquire_token_for_client(scopes=scopes)
            return _token_from(result, action, self.secrets)


@dataclass(frozen=True)
class _AppTokenSource:
    app: _App
    scopes: tuple[str, ...]

    def access_token(self) -> str:
        return self.app.access_token(list(self.scopes))


_APPS: dict[tuple[str, ...], _App] = {}
_APPS_LOCK = threading.Lock()


def app_token_source(
    *,
    authority_url: str,
    tenant_id: str,
    client_id: str,
    client_secret: str | None = None,
    certificate_file: Path | None = None,
    scopes: Sequence[str],
    cache_path: Path,
    ca_file: Path | None = None,
    timeout: float,
) -> TokenSource:
    """Tokens of the client credentials grant (see the module docstring). Exactly one of
    `client_secret` and `certificate_file`. Nothing is sent before the first token."""
    if (client_secret is None) == (certificate_file is None):
        raise ValueError("give exactly one of client_secret and certificate_file")
    if not scopes:
        raise ValueError("scopes must not be empty")
    authority = _authority(authority_url, tenant_id)
    if client_secret is not None:
        credential: str | dict[str, str] = client_secret
        fingerprint = hashlib.sha256(client_secret.encode()).hexdigest()
        secrets: tuple[str, ...] = (client_secret,)
    else:
        assert certificate_file is not None
        credential = _certificate_credential(certificate_file)
        fingerprint = hashlib.sha256(credential["private_key"].encode()).hexdigest()
        secrets = ()
    key = (authority, client_id, fingerprint, str(Path(cache_path)), str(ca_file), str(timeout))
    with _APPS_LOCK:
        app = _APPS.get(key)
        if app is None:
            app = _App(
                authority,
                client_id,
                credential,
                secrets,
                _PersistentCache(cache_path),
                ca_file,
                timeout,
            )
            _APPS[key] = app
    return _AppTokenSource(app, tuple(scopes))


def _authority(authority_url: str, tenant_id: str) -> str:
    tenant = tenant_id.strip().strip("/")
    if not tenant or "/" in tenant:
        raise ValueError(f"not a tenant id or domain: {tenant_id!r}")
    return f"{authority_url.rstrip('/')}/{tenant}"


def _certificate_credential(path: Path) -> dict[str, str]:
    """msal's certificate credential from one PEM file: the private key and the
    certificate (msal derives the thumbprint from the certificate)."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise AuthenticationError(
            f"cannot read client_certificate_file {path}: {exc.strerror}"
        ) from exc
    keys = [m.group(0) for m in _PEM_BLOCK.finditer(data) if m.group(1).endswith(b"PRIVATE KEY")]
    certificates = [m.group(0) for m in _PEM_BLOCK.finditer(data) if m.group(1) == b"CERTIFICATE"]
    if not keys or not certificates:
        raise AuthenticationError(
            f"client_certificate_file {path} must hold the private key and the certificate "
            "in PEM (openssl pkcs12 -in cert.pfx -out cert.pem -nodes)"
        )
    try:
        serialization.load_pem_private_key(keys[0], password=None)
    except TypeError as exc:
        raise AuthenticationError(
            f"client_certificate_file {path}: the private key is encrypted; store it unencrypted "
            "(readable by the service only)"
        ) from exc
    except ValueError as exc:
        raise AuthenticationError(
            f"client_certificate_file {path}: unreadable private key"
        ) from exc
    try:
        x509.load_pem_x509_certificate(certificates[0])
    except ValueError as exc:
        raise AuthenticationError(
            f"client_certificate_file {path}: unreadable certificate"
        ) from exc
    return {
        "private_key": keys[0].decode("ascii"),
        "public_certificate": certificates[0].decode("ascii"),
    }


# -- delegated --------------------------------------------------------------------------------


@dataclass
class _PublicApp:
    authority: str
    client_id: str
    cache: _PersistentCache
    ca_file: Path | None
    timeout: float
    lock: threading.Lock = field(default_factory=threading.Lock)
    app: Any = None

    def build(self, cache: Any) -> Any:
        if self.app is None:
            self.app = msal.PublicClientApplication(
                self.client_id,
                authority=self.authority,
                token_cache=cache,
                http_client=https_session(self.ca_file, self.timeout),
                instance_discovery=False,
            )
        return self.app


@dataclass(frozen=True)
class _DelegatedTokenSource:
    app: _PublicApp
    scopes: tuple[str, ...]
    account: str
    username: str | None

    def access_token(self) -> str:
        action = f"delegated token for account {self.account}"
        run_auth = f"run `relight auth {self.account}` to sign in"
        with self.app.lock, _boundary(action), self.app.cache.session() as cache:
            app = self.app.build(cache)
            accounts = app.get_accounts()
            chosen = _choose_account(accounts, self.username)
            if chosen is None:
                raise AuthenticationError(f"{action}: nobody has signed in yet; {run_auth}")
            result = app.acquire_token_silent_with_error(list(self.scopes), account=chosen)
            if result is None:
                raise AuthenticationError(f"{action}: the sign-in has expired; {run_auth}")
            try:
                return _token_from(result, action, ())
            except AuthenticationError as exc:
                raise AuthenticationError(f"{exc}; {run_auth}") from exc


def _choose_account(accounts: list[dict[str, Any]], username: str | None) -> dict[str, Any] | None:
    if username is not None:
        wanted = username.strip().lower()
        for account in accounts:
            if str(account.get("username", "")).lower() == wanted:
                return account
    return accounts[0] if len(accounts) == 1 else None


_PUBLIC_APPS: dict[tuple[str, ...], _PublicApp] = {}


def _public_app(
    *,
    authority_url: str,
    tenant_id: str,
    client_id: str,
    cache_path: Path,
    ca_file: Path | None,
    timeout: float,
) -> _PublicApp:
    authority = _authority(authority_url, tenant_id)
    key = (authority, client_id, str(Path(cache_path)), str(ca_file), str(timeout))
    with _APPS_LOCK:
        app = _PUBLIC_APPS.get(key)
        if app is None:
            app = _PublicApp(authority, client_id, _PersistentCache(cache_path), ca_file, timeout)
            _PUBLIC_APPS[key] = app
    return app


def delegated_token_source(
    *,
    authority_url: str,
    tenant_id: str,
    client_id: str,
    scopes: Sequence[str],
    cache_path: Path,
    account: str,
    username: str | None = None,
    ca_file: Path | None = None,
    timeout: float,
) -> TokenSource:
    """Tokens of the rep who signed in with `relight auth ACCOUNT` (the cached account
    whose username is `username`, or the only one)."""
    if not scopes:
        raise ValueError("scopes must not be empty")
    app = _public_app(
        authority_url=authority_url,
        tenant_id=tenant_id,
        client_id=client_id,
        cache_path=cache_path,
        ca_file=ca_file,
        timeout=timeout,
    )
    return _DelegatedTokenSource(app, tuple(scopes), account, username)


def device_code_sign_in(
    *,
    authority_url: str,
    tenant_id: str,
    client_id: str,
    scopes: Sequence[str],
    cache_path: Path,
    prompt: Callable[[str], None],
    ca_file: Path | None = None,
    timeout: float,
) -> str:
    """The device-code sign-in of `relight auth`: `prompt` shows Microsoft's instruction
    ("To sign in, use a web browser to open the page ... and enter the code ..."), then
    this waits until the rep has signed in (or the code expires). Returns the username
    that signed in; the refresh token is in the cache file."""
    app_entry = _public_app(
        authority_url=authority_url,
        tenant_id=tenant_id,
        client_id=client_id,
        cache_path=cache_path,
        ca_file=ca_file,
        timeout=timeout,
    )
    action = f"device code sign-in for client {client_id}"
    with app_entry.lock, _boundary(action), app_entry.cache.session() as cache:
        app = app_entry.build(cache)
        flow = app.initiate_device_flow(scopes=list(scopes))
        if "user_code" not in flow:
            raise _token_error(flow, action, ())
        prompt(str(flow.get("message") or _default_prompt(flow)))
        result = app.acquire_token_by_device_flow(flow)
        _token_from(result, action, ())
        claims = result.get("id_token_claims") or {}
        return str(claims.get("preferred_username") or claims.get("email") or "")


def _default_prompt(flow: dict[str, Any]) -> str:
    return f"Open {flow.get('verification_uri')} and enter the code {flow.get('user_code')}"
