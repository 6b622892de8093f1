"""IMAP mailboxes: `ImapConnector` streams the header facts of INBOX, Sent and Drafts.

Theory of operation. One connector is one authenticated session (a context manager).
`folders()` finds Sent and Drafts by their RFC 6154 attributes, or by name when the
server offers none (`connectors.imap_folders`). `changes()` syncs one folder since a
cursor:

    STATUS (UIDVALIDITY UIDNEXT MESSAGES [HIGHESTMODSEQ])
      unchanged                       -> Checkpoint                  (one round trip)
      else EXAMINE (read-only)
        UIDVALIDITY differs           -> Reset, then as a first sync
        stored + new != MESSAGES      -> UID SEARCH ALL -> Present   (something expunged)
        UID SEARCH new UIDs, then per batch of `batch_size`:
          UID FETCH a:b headers       -> Fetched(batch), Checkpoint(up to the batch)

The header FETCH is read by the lean reader of `connectors.imap_fetch`, ahead of need:
the FETCH of the batch after next is sent before a batch is handed over, so the server
prepares it while Relight stores that batch and parses the next. For inbound mail in
INBOX that needs it, a second small FETCH per batch reads BODYSTRUCTURE and then one part
per message, grouped by section so a batch costs a handful of round trips: the start of
the first text/plain part of inbound mail that is not list mail (the excerpt: the new
text of a reply, quotes and signature removed by `rules.excerpt`, or the words of an
out-of-office reply that name its return date; part 1, where it nearly always is, comes
with the BODYSTRUCTURE) and the machine-readable part of multipart/report messages (the
delivery report).

The sync never modifies the rep's mailbox: folders are opened with EXAMINE, bodies read
with BODY.PEEK, and no STORE, EXPUNGE or CLOSE is ever sent. Relight's own drafts are the
one exception, written and retracted by the `connectors.imap_drafts.ImapDrafts` methods
this class mixes in. Between cycles the daemon waits with IMAP IDLE where the server
offers it (`connectors.imap_idle.ImapIdle`).

The cursor is JSON: {"v": 1, "uidvalidity", "uidnext", "messages", "highestmodseq"}, where
every message with a UID below `uidnext` has been yielded and `messages` of them were
still there. Checkpoints in the middle of a folder carry no HIGHESTMODSEQ, so a resumed
sync never mistakes a half-synced folder for an unchanged one.

Login: LOGIN (SASL PLAIN for a non-ASCII password), or, given a `token_source` (Microsoft
365 with `auth = "oauth"`), AUTHENTICATE XOAUTH2 with imapclient's `oauth2_login`, which
sends base64("user={username}^Aauth=Bearer {token}^A^A"), ^A being \\x01, as Microsoft's
"Authenticate an IMAP, POP or SMTP connection using OAuth" asks. The token is asked of the
source at each login, so msal refreshes it; its scope is `imap_oauth_scopes`.

Errors: every imapclient, imaplib, socket and ssl exception becomes a `TransientError`
(refused, reset, timeout, EOF, server busy), an `AuthenticationError` (LOGIN or
AUTHENTICATE refused, or no token to be had) or a `ProtocolError` (bad answers, and a TLS
certificate that does not verify: retrying will not fix it, the admin must set
`tls_ca_file` or fix the server). Messages never hold the password, the token or message
text.
"""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import functools
import imaplib
import ipaddress
import json
import re
import ssl
from collections.abc import Generator, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import imapclient
from imapclient.exceptions import LoginError

from connectors.base import (
    AuthenticationError,
    Change,
    Checkpoint,
    ConnectorError,
    DeliveryReport,
    Fetched,
    FolderRole,
    MessageFacts,
    Present,
    ProtocolError,
    RemoteFolder,
    Reset,
    TransientError,
)
from connectors.headers import (
    decode_part,
    facts_from_headers,
    parse_delivery_report,
)
from connectors.imap_drafts import ImapDrafts
from connectors.imap_fetch import (
    HEADER_FIELDS,
    BodyPart,
    HeaderFetch,
    fetch_items,
    find_report_part,
    find_text_part,
    header_fetch_items,
    list_mailboxes,
    search_uids,
)
from connectors.imap_folders import DRAFTS_NAMES, SENT_NAMES, choose_folders
from connectors.imap_idle import ImapIdle
from rules.excerpt import reply_text

if TYPE_CHECKING:  # msauth imports msal: only accounts with auth = "oauth" need it
    from connectors.msauth import TokenSource

__all__ = [
    "DRAFTS_NAMES",
    "HEADER_FIELDS",
    "SENT_NAMES",
    "ImapConnector",
    "ImapCursor",
    "choose_folders",
    "imap_oauth_scopes",
]

SECURITY_MODES = ("tls", "starttls", "none")
REPORT_FETCH_BYTES = 8192
_TRANSIENT_CODES = ("[UNAVAILABLE]", "[INUSE]", "[LIMIT]", "[SERVERBUG]")


def imap_oauth_scopes(*, delegated: bool = False) -> list[str]:
    """The scope of a Microsoft 365 IMAP token (Exchange Online, outlook.office365.com):
    `https://outlook.office365.com/.default` for an app's own IMAP.AccessAsApp permission
    (client credentials; Exchange needs the app's service principal and a mailbox
    permission for it), `https://outlook.office.com/IMAP.AccessAsUser.All` for a rep's
    delegated sign-in. Worldwide Microsoft 365 only: national clouds have other hosts."""
    if delegated:
        return ["https://outlook.office.com/IMAP.AccessAsUser.All"]
    return ["https://outlook.office365.com/.default"]


class ImapCursor(NamedTuple):
    """Where a folder's sync stands (see the module docstring)."""

    uidvalidity: int
    uidnext: int
    messages: int
    highestmodseq: int | None = None

    def dumps(self) -> str:
        data = {"v": 1, **self._asdict()}
        return json.dumps(data, sort_keys=True, separators=(",", ":"))

    @classmethod
    def loads(cls, text: str) -> ImapCursor | None:
        """The cursor, or None when `text` is not one of ours."""
        try:
            data = json.loads(text)
            modseq = data.get("highestmodseq")
            cursor = cls(
                int(data["uidvalidity"]),
                int(data["uidnext"]),
                int(data["messages"]),
                None if modseq is None else int(modseq),
            )
        except (ValueError, TypeError, KeyError, AttributeError):
            return None
        return cursor if data.get("v") == 1 and cursor.uidnext >= 1 else None


class ImapConnector(ImapDrafts, ImapIdle):
    """One IMAP session for one account; see the module docstring."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        username: str,
        password: str = "",
        token_source: TokenSource | None = None,
        security: str = "tls",
        ca_file: Path | None = None,
        timeout: float = 30.0,
        own_addresses: frozenset[str] = frozenset(),
        excerpt_chars: int = 500,
        batch_size: int = 1000,
    ) -> None:
        if security not in SECURITY_MODES:
            raise ValueError(f"security must be one of {', '.join(SECURITY_MODES)}")
        if security == "none" and not _is_loopback(host):
            raise ValueError("security 'none' sends the password in clear: loopback hosts only")
        if batch_size < 1 or excerpt_chars < 0 or timeout <= 0:
            raise ValueError("batch_size and timeout must be positive, excerpt_chars >= 0")
        if password and token_source is not None:
            raise ValueError("give a password or a token_source, not both")
        self.host, self.port = host, port
        self.username = username
        self._password = password
        self._token_source = token_source
        self._token = ""  # the access token of the latest login, kept out of messages
        self.security = security
        self.ca_file = ca_file
        self.timeout = timeout
        self.own_addresses = frozenset(address.strip().lower() for address in own_addresses)
        self.excerpt_chars = excerpt_chars
        self.batch_size = batch_size
        self._client: imapclient.IMAPClient | None = None
        self._capabilities: frozenset[str] = frozenset()

    # -- session -------------------------------------------------------------------------

    def __enter__(self) -> ImapConnector:
        try:
            self.connect()
        except BaseException:
            self.close()  # a half-open session (TLS refused, login failed) is closed too
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def connect(self) -> None:
        """Connect, secure the connection as configured, and log in."""
        with self._boundary("connect"):
            context = self._ssl_context() if self.security != "none" else None
            client = imapclient.IMAPClient(
                self.host,
                port=self.port,
                ssl=self.security == "tls",
                ssl_context=context,
                timeout=self.timeout,
            )
            self._client = client
            if self.security == "starttls":
                if b"STARTTLS" not in client.capabilities():
                    raise ProtocolError(
                        f"{self.host}:{self.port} does not offer STARTTLS; "
                        "refusing to send the password in clear"
                    )
                client.starttls(context)
        with self._boundary("login"):
            if self._token_source is not None:
                self._token = self._token_source.access_token()
                client.oauth2_login(self.username, self._token)  # AUTHENTICATE XOAUTH2
            elif (self.username + self._password).isascii():
                client.login(self.username, self._password)
            else:  # LOGIN is ASCII-only in imaplib; SASL PLAIN carries UTF-8
                client.plain_login(self.username, self._password)
            self._capabilities = frozenset(
                capability.decode("ascii", "replace").upper()
                for capability in client.capabilities()
            )
            if {"CONDSTORE", "ENABLE"} <= self._capabilities:
                # So that EXAMINE reports HIGHESTMODSEQ (RFC 7162 section 3.1); without it
                # the cursor simply carries none.
                with contextlib.suppress(imaplib.IMAP4.error):
                    client.enable("CONDSTORE")

    def close(self) -> None:
        """Log out; never raises (the connection may already be gone)."""
        client, self._client = self._client, None
        if client is None:
            return
        try:
            client.logout()
        except Exception:  # a dead connection has nothing left to close cleanly
            with contextlib.suppress(Exception):
                client.shutdown()

    def _ssl_context(self) -> ssl.SSLContext:
        if self.ca_file is None:
            return _verifying_context(None, 0)
        try:
            stamp = self.ca_file.stat().st_mtime_ns  # a replaced CA file is read again
            return _verifying_context(str(self.ca_file), stamp)
        except (OSError, ssl.SSLError) as exc:
            raise ProtocolError(f"cannot load tls_ca_file {self.ca_file}: {exc}") from exc

    @property
    def client(self) -> imapclient.IMAPClient:
        if self._client is None:
            raise ProtocolError("not connected: use the connector as a context manager")
        return self._client

    @contextmanager
    def _boundary(self, action: str) -> Iterator[None]:
        """Translate third-party exceptions into ours (see the module docstring)."""
        where = f"{action} ({self.host}:{self.port})"
        try:
            yield
        except ConnectorError as exc:
            if f"{self.host}:{self.port}" in str(exc):
                raise
            # Raised deeper down (the FETCH reader): say where, as every other error does.
            raise type(exc)(f"{where}: {exc}") from exc
        except LoginError as exc:
            text = self._scrub(_text(exc))
            if any(code in text for code in _TRANSIENT_CODES):
                raise TransientError(f"{where}: server unavailable: {text}") from exc
            raise AuthenticationError(
                f"{where}: login refused for user {self.username!r}: {text}"
            ) from exc
        except ssl.SSLCertVerificationError as exc:
            raise ProtocolError(
                f"{where}: TLS certificate not trusted ({exc.verify_message}); "
                "set tls_ca_file to trust a private CA"
            ) from exc
        except imaplib.IMAP4.abort as exc:
            raise TransientError(f"{where}: connection lost: {self._scrub(str(exc))}") from exc
        except (OSError, EOFError) as exc:  # refused, reset, timeout, TLS errors
            raise TransientError(f"{where}: {type(exc).__name__}: {self._scrub(str(exc))}") from exc
        except imaplib.IMAP4.error as exc:
            text = self._scrub(str(exc))
            if any(code in text for code in _TRANSIENT_CODES):
                raise TransientError(f"{where}: server busy: {text}") from exc
            raise ProtocolError(f"{where}: {text}") from exc
        except (ValueError, TypeError, KeyError, IndexError) as exc:
            raise ProtocolError(f"{where}: unexpected answer ({type(exc).__name__})") from exc

    def _scrub(self, text: str) -> str:
        for secret in (self._password, self._token):
            if len(secret) >= 3:
                text = text.replace(secret, "***")
        return text[:300]

    # -- folders -------------------------------------------------------------------------

    def folders(self) -> list[RemoteFolder]:
        """INBOX, then Sent and Drafts by special-use attribute, else by name."""
        with self._boundary("LIST"):
            imap = self.client._imap
            extended = {"SPECIAL-USE", "LIST-EXTENDED"} <= self._capabilities
            try:
                mailboxes = list_mailboxes(imap, special_use=extended)
            except ProtocolError:
                if not extended:
                    raise
                mailboxes = list_mailboxes(imap, special_use=False)
        return choose_folders(mailboxes)

    # -- sync ----------------------------------------------------------------------------

    def changes(self, folder: RemoteFolder, cursor: str | None) -> Iterator[Change]:
        """Stream what changed in `folder` since `cursor` (see the module docstring).

        Between two changes a header FETCH may be on its way: until the stream ends or is
        closed, the session is the stream's: use the connector for nothing else.
        """
        with self._boundary(f"sync {folder.name!r}"):
            yield from self._changes(folder, cursor)

    def _changes(self, folder: RemoteFolder, cursor: str | None) -> Iterator[Change]:
        client = self.client
        state = ImapCursor.loads(cursor) if cursor is not None else None
        condstore = "CONDSTORE" in self._capabilities
        if state is not None:
            items = ["UIDVALIDITY", "UIDNEXT", "MESSAGES"] + (
                ["HIGHESTMODSEQ"] if condstore else []
            )
            status = {
                key.upper(): value
                for key, value in client.folder_status(folder.name, items).items()
            }
            quick = _unchanged(state, status)
            if quick is not None:
                yield Checkpoint(quick.dumps())
                return

        selected = client.select_folder(folder.name, readonly=True)
        uidvalidity = int(selected[b"UIDVALIDITY"])
        server_uidnext = int(selected.get(b"UIDNEXT") or 0)
        exists = int(selected.get(b"EXISTS") or 0)
        modseq = selected.get(b"HIGHESTMODSEQ")
        if (cursor is not None and state is None) or (
            state is not None and state.uidvalidity != uidvalidity
        ):
            yield Reset()
            state = None
        start = state.uidnext if state else 1
        stored = state.messages if state else 0
        esearch = "ESEARCH" in self._capabilities
        last = server_uidnext - 1 if server_uidnext else None  # None: up to the newest
        new_uids = search_uids(client._imap, start, last, esearch=esearch)
        if state is not None and stored + len(new_uids) != exists:
            everything = search_uids(client._imap, 1, last, esearch=esearch)
            yield Present(frozenset(str(uid) for uid in everything))
            stored = sum(1 for uid in everything if uid < start)
            new_uids = [uid for uid in everything if uid >= start]

        batches = [
            new_uids[i : i + self.batch_size] for i in range(0, len(new_uids), self.batch_size)
        ]
        final_uidnext = max(server_uidnext, start, new_uids[-1] + 1 if new_uids else 0)
        final = ImapCursor(
            uidvalidity, final_uidnext, stored, None if modseq is None else int(modseq)
        )
        if not batches:
            yield Checkpoint(final.dumps())
        fetched = self._fetch_batches(folder, batches)
        try:
            for number, (batch, facts) in enumerate(zip(batches, fetched, strict=True), start=1):
                stored += len(facts)
                if facts:
                    yield Fetched(tuple(facts))
                if number == len(batches):
                    yield Checkpoint(final._replace(messages=stored).dumps())
                else:
                    yield Checkpoint(ImapCursor(uidvalidity, batch[-1] + 1, stored).dumps())
        finally:
            fetched.close()  # an answer still on its way is read and dropped
        if "UNSELECT" in self._capabilities:
            client.unselect_folder()

    def _fetch_batches(
        self, folder: RemoteFolder, batches: Sequence[Sequence[int]]
    ) -> Generator[list[MessageFacts], None, None]:
        """The facts of each batch of UIDs, in order.

        The header FETCH of a batch is sent before the caller gets the batch two before
        it, and read once the batch before it is parsed: the server prepares each answer
        while Relight parses and stores the previous ones, instead of the two waiting for
        each other. No answer is on its way when a body FETCH is sent, and none is left
        unread if the caller stops early.
        """
        imap = self.client._imap
        items = header_fetch_items(gmail_thread_ids="X-GM-EXT-1" in self._capabilities)
        if not batches:
            return
        first = HeaderFetch(imap, batches[0][0], batches[0][-1], items)
        in_flight: HeaderFetch | None = first
        try:
            raw = list(first.read())
            in_flight = None
            if len(batches) > 1:
                in_flight = HeaderFetch(imap, batches[1][0], batches[1][-1], items)
            for number, batch in enumerate(batches):
                wanted = set(batch)
                facts = [
                    facts_from_headers(
                        str(item.uid),
                        item.headers,
                        received_at=item.received_at,
                        size=item.size,
                        thread_id=item.thread_id,
                    )
                    for item in raw
                    if item.uid in wanted
                ]
                raw = list(in_flight.read()) if in_flight is not None else []
                in_flight = None
                if folder.role is FolderRole.INBOX:
                    facts = self._add_body_facts(facts)
                if number + 2 < len(batches):
                    after_next = batches[number + 2]
                    in_flight = HeaderFetch(imap, after_next[0], after_next[-1], items)
                yield facts
        finally:
            if in_flight is not None:
                in_flight.close()

    # -- excerpts and delivery reports ------------------------------------------------------

    def _add_body_facts(self, facts: list[MessageFacts]) -> list[MessageFacts]:
        """Fill `excerpt` for inbound replies and `report` for multipart/report messages."""
        reports = [int(f.remote_id) for f in facts if f.is_report]
        replies = [
            int(f.remote_id)
            for f in facts
            if self.excerpt_chars > 0 and not f.is_report and f.wants_excerpt(self.own_addresses)
        ]
        if not reports and not replies:
            return facts
        imap = self.client._imap
        # A reply's text is nearly always part 1 (the whole of a plain message, or the
        # first alternative), so its start comes with the structure, in the same FETCH:
        # only replies whose text is elsewhere need a second one.
        excerpt_bytes = self._excerpt_fetch_bytes()
        first_part = b"BODY.PEEK[1]<0.%d>" % excerpt_bytes
        structures: dict[int, Any] = {}
        part_one: dict[int, bytes] = {}
        for uid, values in fetch_items(imap, replies, b"BODYSTRUCTURE " + first_part):
            structures[uid] = values.get(b"BODYSTRUCTURE")
            data = _section_value(values, "1")
            if data is not None:
                part_one[uid] = data
        for uid, values in fetch_items(imap, reports, b"BODYSTRUCTURE"):
            structures[uid] = values.get(b"BODYSTRUCTURE")
        wanted: dict[int, tuple[str, BodyPart]] = {}
        for uid in reports:
            part = find_report_part(structures.get(uid))
            if part is not None:
                wanted[uid] = ("report", part)
        for uid in replies:
            part = find_text_part(structures.get(uid))
            if part is not None:
                wanted[uid] = ("excerpt", part)
        bodies = {
            uid: part_one[uid]
            for uid, (kind, part) in wanted.items()
            if kind == "excerpt" and part.section == "1" and uid in part_one
        }
        bodies |= self._fetch_parts(
            {uid: wanted_part for uid, wanted_part in wanted.items() if uid not in bodies}
        )
        updated = []
        for item in facts:
            uid = int(item.remote_id)
            if uid in wanted and uid in bodies:
                kind, part = wanted[uid]
                updated.append(self._with_body(item, kind, part, bodies[uid]))
            elif uid in reports and _expects_status_part(item):
                defects = (*item.defects, "report: no delivery-status part")
                updated.append(dataclasses.replace(item, defects=defects))
            else:
                updated.append(item)
        return updated

    def _with_body(
        self, facts: MessageFacts, kind: str, part: BodyPart, data: bytes
    ) -> MessageFacts:
        if kind == "report":
            report_type = part.media_type.split("/", 1)[1].removeprefix("global-")
            complete = len(data) < REPORT_FETCH_BYTES
            body = decode_part(data, part.transfer_encoding, "utf-8", complete=complete)
            report: DeliveryReport = parse_delivery_report(report_type, body.encode())
            return dataclasses.replace(facts, report=report)
        complete = len(data) < self._excerpt_fetch_bytes()
        text = decode_part(data, part.transfer_encoding, part.charset, complete=complete)
        excerpt = reply_text(text, max_chars=self.excerpt_chars) or None
        return dataclasses.replace(facts, excerpt=excerpt)

    def _fetch_parts(self, wanted: dict[int, tuple[str, BodyPart]]) -> dict[int, bytes]:
        """The start of each wanted part: one FETCH per distinct (section, size)."""
        groups: dict[tuple[str, int], list[int]] = {}
        for uid, (kind, part) in wanted.items():
            size = REPORT_FETCH_BYTES if kind == "report" else self._excerpt_fetch_bytes()
            groups.setdefault((part.section, size), []).append(uid)
        bodies: dict[int, bytes] = {}
        for (section, size), uids in groups.items():
            item = f"BODY.PEEK[{section}]<0.{size}>".encode()
            for uid, values in fetch_items(self.client._imap, uids, item):
                value = _section_value(values, section)
                if value is not None:
                    bodies[uid] = value
        return bodies

    def _excerpt_fetch_bytes(self) -> int:
        # Room for quoted-printable or base64 inflation and a few leading quoted lines.
        return min(max(4096, self.excerpt_chars * 8), 65536)


# -- pure helpers --------------------------------------------------------------------------


@functools.lru_cache(maxsize=16)
def _verifying_context(ca_file: str | None, stamp: int) -> ssl.SSLContext:
    """A context that verifies certificate and host name, trusting `ca_file` as well as
    the system store. Cached: loading the system store takes tens of milliseconds, more
    than the rest of a no-change poll."""
    del stamp  # part of the cache key only
    context = ssl.create_default_context()
    if ca_file is not None:
        context.load_verify_locations(cafile=ca_file)
    return context


def _section_value(values: dict[bytes, Any], section: str) -> bytes | None:
    """The data of BODY[section] (`BODY[1]<0>` for a partial fetch) in a FETCH answer."""
    key = f"BODY[{section}]".encode()
    value = next((v for k, v in values.items() if k.startswith(key)), None)
    return value if isinstance(value, bytes) else None


def _unchanged(state: ImapCursor, status: dict[bytes, Any]) -> ImapCursor | None:
    """The cursor to checkpoint when STATUS shows nothing to fetch, else None."""
    if int(status.get(b"UIDVALIDITY", -1)) != state.uidvalidity:
        return None
    modseq = status.get(b"HIGHESTMODSEQ")
    if (
        modseq is not None
        and state.highestmodseq is not None
        and int(modseq) == state.highestmodseq
    ):
        return state
    if (
        int(status.get(b"UIDNEXT", -1)) == state.uidnext
        and int(status.get(b"MESSAGES", -1)) == state.messages
    ):
        # Only flags changed: nothing to fetch, but remember the new HIGHESTMODSEQ.
        return state._replace(highestmodseq=None if modseq is None else int(modseq))
    return None


_REPORT_TYPE = re.compile(r"""report-type\s*=\s*"?([\w.-]+)""", re.IGNORECASE)
_WANTED_REPORTS = (
    "delivery-status",
    "disposition-notification",
    "global-delivery-status",
    "global-disposition-notification",
)


def _expects_status_part(facts: MessageFacts) -> bool:
    """A DSN or MDN by its report-type (an abuse feedback report has no status part)."""
    report_type = _REPORT_TYPE.search(facts.header("content-type") or "")
    return report_type is None or report_type.group(1).lower() in _WANTED_REPORTS


def _text(exc: Exception) -> str:
    """An imaplib error's text: the server's words, where imapclient hands over the repr
    of their bytes (`LoginError(str(error))`, "b'[AUTHENTICATIONFAILED] ...'")."""
    text = str(exc)
    if len(text) >= 3 and text[0] == "b" and text[1] in "'\"" and text[-1] == text[1]:
        with contextlib.suppress(ValueError, SyntaxError):
            value = ast.literal_eval(text)
            if isinstance(value, bytes):
                return value.decode("utf-8", "replace")
    return text


def _is_loopback(host: str) -> bool:
    if host.lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
