"""Requests to Microsoft Graph for one mailbox: tokens, throttling, errors, paging.

`GraphClient` is what `connectors.graph` and `connectors.graph_drafts` send requests
through. Theory of operation:

* **Every request** carries the bearer token of the `TokenSource` and `Prefer:
  IdType="ImmutableId"` (ids that survive a move between folders), plus the preferences
  of the call (`odata.maxpagesize`, `outlook.body-content-type="text"`).
* **One gate per mailbox** (module level, so every connector of the mailbox shares it,
  whichever thread or cycle made it): at most `MAX_CONCURRENT` requests in flight, and a
  "not before" time set by throttling.
* **Throttling.** 429, 503 and 504 answers are retried after their `Retry-After` (or an
  exponential backoff when absent), at most `MAX_ATTEMPTS` times; meanwhile the whole
  mailbox holds off, other mailboxes do not (each has its own gate). A wait longer than
  `max_wait` is not waited out: a `TransientError` goes up and the gate keeps the time,
  so the daemon's next try (or another cycle) starts no earlier. Waiting is
  interruptible through `should_stop`.
* **Links.** nextLink and deltaLink URLs are followed only on the configured Graph host:
  the token is never sent anywhere else.

Errors: network failures and 5xx are `TransientError`; 401 and 403 `AuthenticationError`
(token refused, or the app may not open this mailbox: Exchange RBAC for Applications, or
Mail.ReadWrite not granted); 410 and the error code `syncStateNotFound` (or
`resyncRequired`) `SyncStateLost`; other 4xx `ProtocolError`, with Graph's error code
and message, never a token.
"""

from __future__ import annotations

import contextlib
import email.utils
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import requests

from connectors.base import (
    AuthenticationError,
    ProtocolError,
    TransientError,
)
from connectors.msauth import TokenSource, https_session

__all__ = [
    "IMMUTABLE_IDS",
    "MAX_ATTEMPTS",
    "MAX_CONCURRENT",
    "TEXT_BODIES",
    "GraphClient",
    "SyncStateLost",
    "odata_string",
]

MAX_CONCURRENT = 4  # requests in flight per mailbox
MAX_ATTEMPTS = 6  # tries of one request through throttling and server busy answers
IMMUTABLE_IDS = 'IdType="ImmutableId"'
TEXT_BODIES = 'outlook.body-content-type="text"'
_BUSY = frozenset({429, 503, 504})
_RESYNC_CODES = frozenset({"syncstatenotfound", "resyncrequired", "syncstateinvalid"})
_MAX_ERROR_TEXT = 300


class SyncStateLost(TransientError):
    """Graph forgot the delta state (410 Gone, syncStateNotFound): sync again from scratch."""


@dataclass
class _Gate:
    """What every connector of one mailbox shares: request slots and the throttle."""

    slots: threading.BoundedSemaphore = field(
        default_factory=lambda: threading.BoundedSemaphore(MAX_CONCURRENT)
    )
    lock: threading.Lock = field(default_factory=threading.Lock)
    not_before: float = 0.0

    def hold_until(self, moment: float) -> None:
        with self.lock:
            self.not_before = max(self.not_before, moment)


_GATES: dict[tuple[str, str], _Gate] = {}
_GATES_LOCK = threading.Lock()


def _gate(graph_url: str, mailbox: str) -> _Gate:
    key = (graph_url.rstrip("/").lower(), mailbox.strip().lower())
    with _GATES_LOCK:
        return _GATES.setdefault(key, _Gate())


def odata_string(value: str) -> str:
    """A string literal for $filter: quoted, single quotes doubled."""
    return "'" + value.replace("'", "''") + "'"


class GraphClient:
    """Requests for one mailbox (see the module docstring). Thread-safe: the connector's
    worker threads share it."""

    def __init__(
        self,
        graph_url: str,
        mailbox: str,
        token_source: TokenSource,
        *,
        timeout: float,
        ca_file: Path | None,
        max_wait: float,
        should_stop: Callable[[], bool] | None,
        clock: Callable[[], float],
        sleep: Callable[[float], None] | None,
    ) -> None:
        parts = urlsplit(graph_url)
        if parts.scheme != "https" or not parts.netloc:  # a bearer token never goes in clear
            raise ValueError(f"graph_url must be an absolute https URL: {graph_url!r}")
        self.base = graph_url.rstrip("/")
        self.origin = f"{parts.scheme}://{parts.netloc}".lower()
        self.mailbox = mailbox
        self.user_path = f"{self.base}/users/{quote(mailbox, safe='@.')}"
        self._tokens = token_source
        self._session = https_session(ca_file, timeout, pool_size=MAX_CONCURRENT + 1)
        self._gate = _gate(graph_url, mailbox)
        self._max_wait = max_wait
        self._should_stop = should_stop or (lambda: False)
        self._clock = clock
        self._sleep = sleep

    def close(self) -> None:
        self._session.close()

    def message_url(self, remote_id: str, action: str = "") -> str:
        """The URL of one message (`action`: "/createReply", "/$value", ...)."""
        return f"{self.user_path}/messages/{quote(remote_id, safe='-_=')}{action}"

    # -- requests ------------------------------------------------------------------------

    def get_json(
        self,
        url: str,
        params: Mapping[str, str] | None = None,
        prefer: Sequence[str] = (),
        missing_ok: bool = False,
    ) -> dict[str, Any] | None:
        """GET a JSON object; None for 404 when `missing_ok`."""
        response = self.send("GET", url, params=params, prefer=prefer, missing_ok=missing_ok)
        return None if response is None else _json(response, url)

    def send_json(
        self,
        method: str,
        url: str,
        body: Mapping[str, Any] | None,
        prefer: Sequence[str] = (),
        missing_ok: bool = False,
    ) -> dict[str, Any] | None:
        """POST or PATCH `body`; the answer's JSON object ({} for 204), None for 404 when
        `missing_ok`."""
        response = self.send(method, url, body=body, prefer=prefer, missing_ok=missing_ok)
        if response is None:
            return None
        return {} if response.status_code == 204 or not response.content else _json(response, url)

    def delete(self, url: str) -> bool:
        """DELETE; False when it was gone already (404)."""
        response = self.send("DELETE", url, missing_ok=True)
        if response is None:
            return False
        response.close()
        return True

    def get_bytes(self, url: str, limit: int) -> bytes | None:
        """The start (at most `limit` bytes) of a binary answer ($value); None for 404."""
        response = self.send("GET", url, stream=True, missing_ok=True)
        if response is None:
            return None
        data = bytearray()
        try:
            for chunk in response.iter_content(65536):
                data += chunk
                if len(data) >= limit:
                    break
        except requests.exceptions.RequestException as exc:
            raise TransientError(f"{self._where()}: reading {_path(url)}: {exc}") from exc
        finally:
            response.close()
        return bytes(data[:limit])

    def pages(
        self, url: str, params: Mapping[str, str] | None, prefer: Sequence[str] = ()
    ) -> Iterator[dict[str, Any]]:
        """Each page of a collection, following @odata.nextLink."""
        next_url: str | None = url
        while next_url is not None:
            page = self.get_json(next_url, params=params, prefer=prefer)
            assert page is not None
            yield page
            params = None  # the nextLink carries them
            link = page.get("@odata.nextLink")
            next_url = self.checked_link(link) if link is not None else None

    def checked_link(self, link: object) -> str:
        """A nextLink or deltaLink, if it points at the configured Graph host."""
        if not isinstance(link, str) or not link.lower().startswith(self.origin + "/"):
            raise ProtocolError(f"{self._where()}: Graph sent a link to another host; not followed")
        return link

    def send(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
        prefer: Sequence[str] = (),
        stream: bool = False,
        missing_ok: bool = False,
    ) -> requests.Response | None:
        """One request through the gate, retried while Graph is busy; the response
        (2xx), None for 404 when `missing_ok`, else our error."""
        if not url.lower().startswith(self.origin + "/"):
            raise ProtocolError(f"{self._where()}: refusing a request to another host")
        headers = {"Prefer": ", ".join((IMMUTABLE_IDS, *prefer)), "Accept": "application/json"}
        attempt = 0
        while True:
            attempt += 1
            self._wait_turn()
            with self._gate.slots:
                headers["Authorization"] = "Bearer " + self._tokens.access_token()
                response = self._request(
                    method, url, params=params, body=body, headers=headers, stream=stream
                )
            status = response.status_code
            if status in _BUSY:
                delay = _retry_after(response, attempt, self._now_utc())
                response.close()
                self._gate.hold_until(self._clock() + delay)
                if attempt >= MAX_ATTEMPTS or delay > self._max_wait:
                    raise TransientError(
                        f"{self._where()}: Graph is throttling or busy (HTTP {status}); "
                        f"retry after {delay:.0f} s"
                    )
                continue
            if 200 <= status < 300:
                return response
            if status == 404 and missing_ok:
                response.close()
                return None
            raise self._error(response, method, url)

    def _request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str] | None,
        body: Mapping[str, Any] | None,
        headers: dict[str, str],
        stream: bool,
    ) -> requests.Response:
        try:
            return self._session.request(
                method, url, params=params, json=body, headers=headers, stream=stream
            )
        except requests.exceptions.SSLError as exc:
            raise ProtocolError(
                f"{self._where()}: TLS certificate not trusted; set tls_ca_file to trust a "
                "private CA"
            ) from exc
        except requests.exceptions.RequestException as exc:
            raise TransientError(f"{self._where()}: {type(exc).__name__}") from exc

    def _wait_turn(self) -> None:
        """Hold off while the mailbox is throttled; interruptible, bounded by max_wait."""
        while (remaining := self._gate.not_before - self._clock()) > 0:
            if remaining > self._max_wait:
                raise TransientError(
                    f"{self._where()}: Graph asked to wait {remaining:.0f} s more; retry later"
                )
            if self._should_stop():
                raise TransientError(f"{self._where()}: stopped while Graph throttles")
            if self._sleep is not None:
                self._sleep(remaining)
            else:
                time.sleep(min(remaining, 0.5))  # a slice, then the stop flag again

    def _error(self, response: requests.Response, method: str, url: str) -> Exception:
        status = response.status_code
        code, message = _error_fields(response)
        response.close()
        where = f"{self._where()}: {method} {_path(url)}"
        detail = f"HTTP {status} {code}: {message}".strip().rstrip(":")
        if status == 410 or code.lower() in _RESYNC_CODES:
            return SyncStateLost(f"{where}: the sync state is gone ({detail})")
        if status == 401:
            return AuthenticationError(f"{where}: the token was refused ({detail})")
        if status == 403:
            return AuthenticationError(
                f"{where}: access denied to mailbox {self.mailbox} ({detail}); grant "
                "Mail.ReadWrite and include the mailbox in the app's Exchange RBAC scope"
            )
        if status >= 500:
            return TransientError(f"{where}: {detail}")
        return ProtocolError(f"{where}: {detail}")

    def _where(self) -> str:
        return f"graph {self.mailbox}"

    def _now_utc(self) -> datetime:
        return datetime.now(UTC)


def _json(response: requests.Response, url: str) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError as exc:
        raise ProtocolError(f"graph: {_path(url)} answered something that is not JSON") from exc
    finally:
        response.close()
    if not isinstance(data, dict):
        raise ProtocolError(f"graph: {_path(url)} answered JSON that is not an object")
    return data


def _error_fields(response: requests.Response) -> tuple[str, str]:
    """Graph's error code and message ({"error": {"code", "message"}})."""
    with contextlib.suppress(ValueError, AttributeError, TypeError):
        error = response.json().get("error") or {}
        code = str(error.get("code") or "")
        message = " ".join(str(error.get("message") or "").split())
        return code[:80], message[:_MAX_ERROR_TEXT]
    return "", ""


def _retry_after(response: requests.Response, attempt: int, now: datetime) -> float:
    """Seconds to wait: Retry-After (seconds or an HTTP date), else 2, 4, 8... s."""
    value = (response.headers.get("Retry-After") or "").strip()
    if value.isdigit():
        return float(value)
    if value:
        with contextlib.suppress(TypeError, ValueError, IndexError):
            moment = email.utils.parsedate_to_datetime(value)
            if moment.tzinfo is not None:
                return max(0.0, (moment - now).total_seconds())
    return float(min(2**attempt, 60))


def _path(url: str) -> str:
    """A URL without its query (tokens and filters stay out of error messages)."""
    return urlsplit(url).path
