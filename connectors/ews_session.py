"""The EWS session under `EwsConnector`: one exchangelib Account per mailbox, our errors,
and our own back-off when Exchange says it is busy.

Theory of operation:

* **One Account per mailbox, for the life of the process.** exchangelib's `Account` holds
  what is worth keeping between cycles: the server version it guessed (one ConvertId
  round trip), the distinguished folders it looked up (GetFolder root, inbox, sentitems,
  drafts) and the session pool. The connector is built afresh each cycle, so the Account
  lives in a module-level registry keyed by (EWS URL, mailbox); a changed password, CA
  file or timeout (a reloaded config) replaces it. Autodiscover is never used: the admin
  gives `ews_url`. Leaving a connector closes the HTTP connections (an idle Exchange front
  end drops them anyway) but keeps the Account.
* **Transport.** The Account's protocol is our `_Protocol`: exchangelib's, with
  `FailFast` as retry policy (exchangelib itself never sleeps, not for minutes, not at
  all), the configured timeout, and an HTTP adapter verifying TLS against the system
  store, certifi's bundle and `tls_ca_file` (trusted too). NTLM and Basic are exchangelib's
  (requests_ntlm, requests); OAuth is a bearer token from a `TokenSource` (`connectors.
  msauth`), asked for before every request so msal refreshes it in time. App-only tokens
  act on the mailbox through EWS impersonation (the `ExchangeImpersonation` header);
  password logins act as the mailbox's own user (delegate access).
* **Busy.** Exchange throttles with the `ErrorServerBusy` SOAP fault and a
  `BackOffMilliseconds` hint. Every request goes through `EwsSession._call`: on
  ErrorServerBusy the mailbox is marked busy until the hint has passed (the mark is shared
  by every connector of that mailbox in the process), and the request is retried after
  waiting that long, when the wait is at most `max_busy_wait` seconds and the
  `busy_retries` are not spent; otherwise it is a `TransientError` and the daemon's own
  backoff takes over. A request for a mailbox still marked busy waits (or fails) the same
  way before it is sent. Waits go through `wait(seconds) -> stop requested?`, so the
  daemon can cut them short.
* **Errors.** `_translate` turns what exchangelib, requests and the token source raise
  into ours: 401 and access refusals are `AuthenticationError`, busy servers, timeouts
  and dropped connections `TransientError`, an untrusted certificate, a redirect (wrong
  `ews_url`) and answers we cannot use `ProtocolError`. No message holds the password or
  a token.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import logging
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

import requests
import requests.adapters
import requests.auth
from exchangelib import DELEGATE, IMPERSONATION, Account, Configuration, Credentials, FailFast
from exchangelib import errors as ews_errors
from exchangelib.ewsdatetime import UTC as EWS_UTC
from exchangelib.extended_properties import ExtendedProperty
from exchangelib.fields import InvalidField
from exchangelib.folders import Drafts, Inbox, SentItems
from exchangelib.items import Message
from exchangelib.protocol import CachingProtocol
from exchangelib.protocol import Protocol as ExchangeProtocol
from exchangelib.transport import BASIC, NOAUTH, NTLM

from connectors.base import (
    RELIGHT_KEY_HEADER,
    AuthenticationError,
    ConnectorError,
    ProtocolError,
    TransientError,
)

__all__ = [
    "AUTH_KINDS",
    "DISTINGUISHED_FOLDERS",
    "EwsSession",
    "MailboxState",
    "RelightKey",
    "ServerBusy",
    "TokenSource",
    "register_relight_key",
]

AUTH_KINDS = ("ntlm", "basic", "oauth")
# Our folder names are EWS's distinguished folder ids, and the exchangelib classes for them.
DISTINGUISHED_FOLDERS: dict[str, Any] = {"inbox": Inbox, "sentitems": SentItems, "drafts": Drafts}
DEFAULT_BUSY_SECONDS = 2.0  # ErrorServerBusy without a hint (exchangelib's "closed connection")
_T = TypeVar("_T")

_TRANSIENT = (
    ews_errors.ErrorServerBusy,
    ews_errors.ErrorTimeoutExpired,
    ews_errors.ErrorInternalServerTransientError,
    ews_errors.ErrorInternalServerError,
    ews_errors.ErrorExceededConnectionCount,
    ews_errors.ErrorTooManyObjectsOpened,
    ews_errors.ErrorMailboxStoreUnavailable,
    ews_errors.ErrorMailboxMoveInProgress,
    ews_errors.ErrorConnectionFailed,
    ews_errors.ErrorADUnavailable,
    ews_errors.ErrorExceededFindCountLimit,
    ews_errors.RateLimitError,
    ews_errors.CASError,
    ews_errors.SessionPoolMinSizeReached,
    ews_errors.SessionPoolMaxSizeReached,
)
_TRANSIENT_TYPES = (*_TRANSIENT, requests.exceptions.RequestException, OSError)
_REFUSED = (
    ews_errors.UnauthorizedError,
    ews_errors.ErrorAccessDenied,
    ews_errors.ErrorAccountDisabled,
    ews_errors.ErrorNonExistentMailbox,
    ews_errors.ErrorImpersonateUserDenied,
    ews_errors.ErrorImpersonationDenied,
    ews_errors.ErrorInvalidLicense,
    ews_errors.ErrorPasswordExpired,
)


class TokenSource(Protocol):
    """Where OAuth bearer tokens come from (`connectors.msauth.TokenSource`)."""

    def access_token(self) -> str: ...


class ServerBusy(TransientError):
    """ErrorServerBusy, with the back-off Exchange asked for (seconds), if it said."""

    def __init__(self, message: str, back_off: float | None) -> None:
        super().__init__(message)
        self.back_off = back_off


# -- X-Relight-Key as an extended property ------------------------------------------------


class RelightKey(ExtendedProperty):  # type: ignore[misc]
    """X-Relight-Key in the PS_INTERNET_HEADERS property set: where Exchange keeps every
    X-header of a message, and the header it writes when the draft is sent."""

    distinguished_property_set_id = "InternetHeaders"
    property_name = RELIGHT_KEY_HEADER
    property_type = "String"


_REGISTER_LOCK = threading.Lock()


def register_relight_key() -> None:
    """Make `relight_key` a field of exchangelib's Message, once per process.

    Also quiets exchangelib's logger: on an unexpected failure it logs the whole request
    XML (a draft's text) at ERROR level, and Relight never logs message text. The
    connector's exceptions carry what went wrong instead."""
    with _REGISTER_LOCK:
        logging.getLogger("exchangelib").setLevel(logging.CRITICAL)
        try:
            Message.get_field_by_fieldname("relight_key")
        except InvalidField:
            Message.register("relight_key", RelightKey)


# -- transport ----------------------------------------------------------------------------


class _TrustingAdapter(requests.adapters.HTTPAdapter):
    """Verifies TLS against a context trusting the system store and `tls_ca_file` too."""

    def __init__(self, context: ssl.SSLContext) -> None:
        self._context = context
        # As exchangelib's own adapter: one connection, no retries of its own.
        super().__init__(pool_connections=1, pool_maxsize=1, pool_block=True, max_retries=0)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["ssl_context"] = self._context
        super().init_poolmanager(*args, **kwargs)


class _BearerAuth(requests.auth.AuthBase):
    """`Authorization: Bearer` with a token asked for at each request, from the token
    source the mailbox was last opened with (`holder[0]`)."""

    def __init__(self, holder: list[TokenSource]) -> None:
        self.holder = holder

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self.holder[0].access_token()}"
        return request


class _Protocol(ExchangeProtocol):  # type: ignore[misc]
    """exchangelib's Protocol with our TLS adapter, timeout and (for OAuth) bearer auth."""

    tls_context: ssl.SSLContext
    token_holder: list[TokenSource]  # the current token source (replaced on each open)

    def create_session(self) -> Any:
        session = super().create_session()
        session.mount(self.service_endpoint, _TrustingAdapter(self.tls_context))
        if self.token_holder:
            session.auth = _BearerAuth(self.token_holder)
        return session


def _tls_context(ca_file: Path | None) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if ca_file is not None:
        try:
            context.load_verify_locations(cafile=str(ca_file))
        except (OSError, ssl.SSLError) as exc:
            raise ProtocolError(f"cannot load tls_ca_file {ca_file}: {exc}") from exc
    return context


# -- the registry of mailboxes --------------------------------------------------------------


@dataclass
class MailboxState:
    """What the process keeps of one mailbox between cycles (see the module docstring)."""

    account: Any
    protocol: Any
    fingerprint: tuple[str, ...]
    tokens: list[TokenSource]
    folders: dict[str, Any] = field(default_factory=dict)  # distinguished id -> Folder
    busy_until: float = 0.0  # on the connector's clock
    lock: threading.Lock = field(default_factory=threading.Lock)


_MAILBOXES: dict[tuple[str, str], MailboxState] = {}
_MAILBOXES_LOCK = threading.Lock()


def _never_stopped(seconds: float) -> bool:
    time.sleep(seconds)
    return False


class EwsSession:
    """The session half of `EwsConnector`: configuration, the shared Account, `_call`."""

    def __init__(
        self,
        ews_url: str,
        mailbox: str,
        *,
        auth: str,
        username: str | None = None,
        password: str | None = None,
        token_source: TokenSource | None = None,
        impersonation: bool | None = None,
        ca_file: Path | None = None,
        timeout: float = 30.0,
        max_busy_wait: float = 60.0,
        busy_retries: int = 3,
        wait: Callable[[float], bool] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if auth not in AUTH_KINDS:
            raise ValueError(f"auth must be one of {', '.join(AUTH_KINDS)}, not {auth!r}")
        if auth == "oauth" and token_source is None:
            raise ValueError('auth = "oauth" needs a token_source')
        if auth != "oauth" and (not username or password is None):
            raise ValueError(f'auth = "{auth}" needs a username and a password')
        if not ews_url.lower().startswith("https://") and not _is_loopback_url(ews_url):
            raise ValueError("ews_url must be https:// (http only on loopback)")
        if "@" not in mailbox or timeout <= 0 or max_busy_wait < 0 or busy_retries < 0:
            raise ValueError("mailbox must be an address; timeout positive; waits not negative")
        self.ews_url = ews_url
        self.mailbox = mailbox.strip().lower()
        self.auth = auth
        self.username = username
        self._password = password
        self._token_source = token_source
        self.impersonation = auth == "oauth" if impersonation is None else impersonation
        self.ca_file = ca_file
        self.timeout = timeout
        self.max_busy_wait = max_busy_wait
        self.busy_retries = busy_retries
        self._wait = wait or _never_stopped
        self._clock = clock
        self._mailbox: MailboxState | None = None

    # -- opening and closing -------------------------------------------------------------

    def open(self) -> None:
        """Find (or build) the mailbox's Account; nothing is sent yet."""
        with self._boundary("open"):
            self._mailbox = self._registered()

    def close(self) -> None:
        """Close the HTTP connections; the Account stays for the next session."""
        mailbox, self._mailbox = self._mailbox, None
        if mailbox is not None:
            with contextlib.suppress(Exception):  # closing never fails the caller
                mailbox.protocol.close()

    def _registered(self) -> MailboxState:
        register_relight_key()
        fingerprint = (
            self.auth,
            self.username or "",
            hashlib.sha256((self._password or "").encode()).hexdigest(),
            str(self.ca_file),
            str(self.timeout),
            str(self.impersonation),
        )
        key = (self.ews_url, self.mailbox)
        with _MAILBOXES_LOCK:
            known = _MAILBOXES.get(key)
            if known is not None and known.fingerprint == fingerprint:
                if self._token_source is not None:
                    known.tokens[:] = [self._token_source]
                return known
            if known is not None:
                with contextlib.suppress(Exception):
                    known.protocol.close()
            built = self._build(fingerprint)
            if known is not None:
                built.busy_until = known.busy_until  # the server's wish outlives a reload
            _MAILBOXES[key] = built
            return built

    def _build(self, fingerprint: tuple[str, ...]) -> MailboxState:
        tokens: list[TokenSource] = [self._token_source] if self._token_source else []
        if self.auth == "oauth":
            credentials, auth_type = None, NOAUTH
        else:
            credentials = Credentials(username=self.username, password=self._password)
            auth_type = NTLM if self.auth == "ntlm" else BASIC
        config = Configuration(
            service_endpoint=self.ews_url,
            credentials=credentials,
            auth_type=auth_type,
            retry_policy=FailFast(),
            max_connections=1,
        )
        # Built past exchangelib's protocol cache (keyed by URL and credentials, not by
        # class or mailbox), so that this mailbox's protocol is ours and its own.
        protocol = type.__call__(_Protocol, config=config)
        protocol.TIMEOUT = self.timeout
        protocol.tls_context = _tls_context(self.ca_file)
        protocol.token_holder = tokens
        account = Account(
            primary_smtp_address=self.mailbox,
            config=config,
            autodiscover=False,
            access_type=IMPERSONATION if self.impersonation else DELEGATE,
            default_timezone=EWS_UTC,
        )
        account.protocol = protocol
        with CachingProtocol._protocol_cache_lock:  # drop the stock one Account cached
            CachingProtocol._protocol_cache.pop(CachingProtocol._cache_key(config), None)
        return MailboxState(account, protocol, fingerprint, tokens)

    @property
    def account(self) -> Any:
        if self._mailbox is None:
            raise ProtocolError("not open: use the connector as a context manager")
        return self._mailbox.account

    @property
    def session_mailbox(self) -> MailboxState:
        if self._mailbox is None:
            raise ProtocolError("not open: use the connector as a context manager")
        return self._mailbox

    def remote_folder(self, name: str) -> Any:
        """The exchangelib folder of a distinguished id (GetFolder once per process)."""
        mailbox = self.session_mailbox
        found = mailbox.folders.get(name)
        if found is None:
            folder_class = DISTINGUISHED_FOLDERS.get(name)
            if folder_class is None:
                raise ProtocolError(f"{name!r} is not a folder Relight syncs over EWS")
            root = self._call("GetFolder root", lambda: mailbox.account.root)
            found = self._call(
                f"GetFolder {name}", lambda: folder_class.get_distinguished(root=root)
            )
            mailbox.folders[name] = found
        return found

    # -- requests ----------------------------------------------------------------------

    def _call(self, action: str, request: Callable[[], _T]) -> _T:
        """Run `request` (which must do all its network work before returning), waiting
        out and retrying ErrorServerBusy as the module docstring says."""
        mailbox = self.session_mailbox
        for attempt in itertools.count():
            self._wait_until_free(mailbox, action)
            try:
                with self._boundary(action):
                    return request()
            except ServerBusy as busy:
                back_off = busy.back_off if busy.back_off is not None else DEFAULT_BUSY_SECONDS
                with mailbox.lock:
                    mailbox.busy_until = max(mailbox.busy_until, self._clock() + back_off)
                if back_off > self.max_busy_wait or attempt >= self.busy_retries:
                    raise TransientError(
                        f"{self._where(action)}: server busy (ErrorServerBusy), "
                        f"asked to back off {back_off:.1f}s; trying again later"
                    ) from busy
        raise AssertionError("unreachable")  # pragma: no cover

    def _wait_until_free(self, mailbox: MailboxState, action: str) -> None:
        with mailbox.lock:
            remaining = mailbox.busy_until - self._clock()
        if remaining <= 0:
            return
        if remaining > self.max_busy_wait:
            raise TransientError(
                f"{self._where(action)}: server busy, backing off {remaining:.1f}s more"
            )
        if self._wait(remaining):
            raise TransientError(f"{self._where(action)}: stopped while backing off")

    def _where(self, action: str) -> str:
        return f"{action} ({self.mailbox} at {self.ews_url})"

    @contextmanager
    def _boundary(self, action: str) -> Iterator[None]:
        """Translate third-party exceptions into ours (see the module docstring)."""
        try:
            yield
        except ConnectorError as exc:
            if isinstance(exc, ServerBusy) or self.ews_url in str(exc):
                raise
            raise type(exc)(f"{self._where(action)}: {self._scrub(str(exc))}") from exc
        except Exception as exc:
            raise self._translate(action, exc) from exc

    def _translate(self, action: str, exc: Exception) -> ConnectorError:  # noqa: PLR0911 (one per kind)
        where = self._where(action)
        text = self._scrub(" ".join(str(exc).split()))
        name = type(exc).__name__
        # exchangelib wraps what it met while guessing the version in a TransportError:
        # what happened first decides.
        chain = list(_chain(exc))
        busy = next((e for e in chain if isinstance(e, ews_errors.ErrorServerBusy)), None)
        if busy is not None:
            return ServerBusy(f"{where}: server busy: {text}", busy.back_off)
        refused = next((e for e in chain if isinstance(e, _REFUSED)), None)
        if refused is not None:
            who = f"user {self.username!r}" if self.username else "the OAuth app"
            kind = type(refused).__name__
            return AuthenticationError(f"{where}: {kind}: access refused for {who}: {text}")
        if any(_is_certificate_error(e) for e in chain):
            return ProtocolError(
                f"{where}: TLS certificate not trusted; set tls_ca_file to trust a private CA"
            )
        if any(isinstance(e, _TRANSIENT_TYPES) for e in chain):
            return TransientError(f"{where}: {name}: {text}")
        if isinstance(exc, ews_errors.RedirectError):
            return ProtocolError(f"{where}: redirected ({text}); check ews_url")
        if isinstance(exc, ews_errors.EWSError):
            return ProtocolError(f"{where}: {name}: {text}")
        return ProtocolError(f"{where}: unexpected answer ({name})")

    def _scrub(self, text: str) -> str:
        for secret in (self._password,):
            if secret and len(secret) >= 3:
                text = text.replace(secret, "***")
        return text[:400]


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception and those it was raised from or while handling, outermost first."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _is_certificate_error(exc: BaseException) -> bool:
    """An untrusted certificate (as ssl, requests or exchangelib's TransportError say)."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return True
    return isinstance(exc, requests.exceptions.SSLError | ews_errors.TransportError) and (
        "CERTIFICATE_VERIFY_FAILED" in str(exc) or "certificate verify failed" in str(exc)
    )


def _is_loopback_url(url: str) -> bool:
    host = url.split("://", 1)[-1].split("/", 1)[0].rsplit(":", 1)[0].strip("[]").lower()
    return host in ("localhost", "127.0.0.1", "::1")
