"""On-premises Exchange over EWS: `EwsConnector` streams the header facts of Inbox, Sent
Items and Drafts, and holds Relight's drafts (exchangelib; NTLM, Basic or OAuth).

Theory of operation. `folders()` names the three distinguished folders `inbox`,
`sentitems` and `drafts` (their display names vary with the mailbox's language; these ids
do not). `changes()` drains one folder with SyncFolderItems since the sync state in the
cursor (none: since the beginning):

    SyncFolderItems(IdOnly, SyncState, MaxChangesReturned = page_size)   page after page
      Create, Update        -> GetItem(FACT_FIELDS) -> Fetched(batch)     (one per page)
      Delete                -> remembered
      ReadFlagChange        -> nothing (flags are not facts)
    ... until IncludesLastItemInRange is true
    a Delete seen           -> FindItem(IdOnly) of the whole folder -> Present(ids)
    the new SyncState       -> Checkpoint

The sync state is saved (Checkpoint) only after the folder is drained: a crash in the
middle leaves the previous state as the cursor, and the next sync asks again from there;
the store's upserts make the repeated batches harmless. A sync state Exchange no longer
accepts (ErrorInvalidSyncStateData) is a Reset and a sync from the beginning.

Deletions. SyncFolderItems names each deleted item, but `connectors.base` has no change
that says "these ids are gone"; `Present` (all the ids the folder holds) is what a
connector can say. So a drain that saw a Delete ends with a FindItem listing of the
folder's ids (1000 a page, ids only) and a Present. A change type carrying the deleted
ids would spare that listing.

Item facts come from `connectors.ews_facts` (the item fields, the classification headers
from InternetMessageHeaders, excerpts of inbound Inbox mail from its text body, delivery
reports from report items). Drafts are `connectors.ews_drafts.EwsDrafts`, the session,
errors and ErrorServerBusy back-off `connectors.ews_session.EwsSession`.

The cursor is JSON: {"v": 1, "sync_state": "<Exchange's opaque SyncState>"}.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from exchangelib import HTMLBody
from exchangelib import errors as ews_errors
from exchangelib.items import ID_ONLY
from exchangelib.services import SyncFolderItems
from exchangelib.version import EXCHANGE_2013

from connectors.base import (
    Change,
    Checkpoint,
    Fetched,
    FolderRole,
    MessageFacts,
    Present,
    ProtocolError,
    RemoteFolder,
    Reset,
)
from connectors.ews_drafts import EwsDrafts
from connectors.ews_facts import (
    FACT_FIELDS,
    facts_from_item,
    html_text,
    is_report_item,
    with_report,
)
from connectors.ews_session import TokenSource
from connectors.rawmail import facts_from_bytes
from rules.excerpt import reply_text

__all__ = ["EwsConnector", "EwsCursor", "ews_oauth_scopes", "ews_token_source"]

_ROLES = {"inbox": FolderRole.INBOX, "sentitems": FolderRole.SENT, "drafts": FolderRole.DRAFTS}
MAX_PAGE_SIZE = 512  # SyncFolderItems returns at most this many changes
LIST_PAGE_SIZE = 1000  # FindItem without a restriction: Exchange's EWSFindCountLimit
MAX_REPORT_BYTES = 1024 * 1024  # a report item's MIME is read only up to this size


class EwsCursor(NamedTuple):
    """Where a folder's sync stands: Exchange's SyncState after a full drain."""

    sync_state: str

    def dumps(self) -> str:
        return json.dumps({"v": 1, "sync_state": self.sync_state}, separators=(",", ":"))

    @classmethod
    def loads(cls, text: str) -> EwsCursor | None:
        """The cursor, or None when `text` is not one of ours."""
        try:
            data = json.loads(text)
            state = data["sync_state"]
        except (ValueError, TypeError, KeyError):
            return None
        if data.get("v") != 1 or not isinstance(state, str) or not state:
            return None
        return cls(state)


class _Page(NamedTuple):
    fetch: list[Any]  # items (id, changekey) created or updated
    deleted: bool
    sync_state: str
    complete: bool


class EwsConnector(EwsDrafts):
    """One Exchange mailbox over EWS; see the module docstring. Implements
    `SyncConnector` and `DraftFolder`; a context manager (one session)."""

    def __init__(
        self,
        ews_url: str,
        mailbox: str,
        *,
        auth: str,
        username: str | None = None,
        password: str | None = None,
        token_source: TokenSource | None = None,
        own_addresses: frozenset[str] = frozenset(),
        excerpt_chars: int = 500,
        timeout: float = 30.0,
        ca_file: Path | None = None,
        page_size: int = MAX_PAGE_SIZE,
        impersonation: bool | None = None,
        max_busy_wait: float = 60.0,
        busy_retries: int = 3,
        wait: Callable[[float], bool] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`auth` is "ntlm", "basic" (username and password) or "oauth" (token_source;
        app-only tokens, so EWS impersonation unless `impersonation=False`). ErrorServerBusy
        back-offs up to `max_busy_wait` seconds are waited out, `busy_retries` times at most,
        through `wait(seconds) -> stop requested?` (default: sleep); `clock` is monotonic
        seconds."""
        if not 1 <= page_size <= MAX_PAGE_SIZE or excerpt_chars < 0:
            raise ValueError(f"page_size must be 1..{MAX_PAGE_SIZE}, excerpt_chars >= 0")
        super().__init__(
            ews_url,
            mailbox,
            auth=auth,
            username=username,
            password=password,
            token_source=token_source,
            impersonation=impersonation,
            ca_file=ca_file,
            timeout=timeout,
            max_busy_wait=max_busy_wait,
            busy_retries=busy_retries,
            wait=wait,
            clock=clock,
        )
        self.own_addresses = frozenset(address.strip().lower() for address in own_addresses)
        self.excerpt_chars = excerpt_chars
        self.page_size = page_size

    def __enter__(self) -> EwsConnector:
        self.open()
        try:
            self._call("connect", lambda: self.account.version)  # guesses once per process
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- folders -------------------------------------------------------------------------

    def folders(self) -> list[RemoteFolder]:
        """Inbox, Sent Items and Drafts (those the mailbox has), by distinguished id."""
        found = []
        for name, role in _ROLES.items():
            try:
                self.remote_folder(name)
            except ProtocolError as exc:
                if role is FolderRole.INBOX or "ErrorFolderNotFound" not in str(exc):
                    raise
                continue
            found.append(RemoteFolder(name, role))
        return found

    # -- sync ----------------------------------------------------------------------------

    def changes(self, folder: RemoteFolder, cursor: str | None) -> Iterator[Change]:
        """Stream what changed in `folder` since `cursor` (see the module docstring)."""
        remote = self.remote_folder(folder.name)
        state = EwsCursor.loads(cursor) if cursor is not None else None
        if cursor is not None and state is None:
            yield Reset()
        sync_state = state.sync_state if state is not None else None
        deleted = False
        while True:
            page = self._call(
                f"SyncFolderItems {folder.name}",
                functools.partial(self._sync_page, remote, sync_state),
            )
            if page is None:  # Exchange no longer knows the sync state
                if sync_state is None:
                    raise ProtocolError(f"{self._where('SyncFolderItems')}: invalid sync state")
                yield Reset()
                sync_state, deleted = None, False
                continue
            deleted = deleted or page.deleted
            if page.fetch:
                facts = self._facts(folder, remote, page.fetch)
                if facts:
                    yield Fetched(tuple(facts))
            done = page.complete or page.sync_state == sync_state
            sync_state = page.sync_state
            if done:
                break
        if deleted:
            ids = self._call(f"FindItem {folder.name}", functools.partial(_all_ids, remote))
            yield Present(frozenset(ids))
        yield Checkpoint(EwsCursor(sync_state).dumps())

    def _sync_page(self, remote: Any, sync_state: str | None) -> _Page | None:
        """One SyncFolderItems round trip; None when the sync state is refused."""
        service = SyncFolderItems(account=self.account)
        try:
            changes = list(
                service.call(
                    folder=remote,
                    shape=ID_ONLY,
                    additional_fields=set(),
                    sync_state=sync_state,
                    ignore=None,
                    max_changes_returned=self.page_size,
                    sync_scope="NormalItems",
                )
            )
        except ews_errors.ErrorInvalidSyncStateData:
            return None
        fetch, deleted = [], False
        for change in changes:
            if isinstance(change, Exception):
                raise change
            kind, item = change
            if kind in (SyncFolderItems.CREATE, SyncFolderItems.UPDATE):
                fetch.append((item.id, item.changekey))
            elif kind == SyncFolderItems.DELETE:
                deleted = True
        if not service.sync_state:
            raise ProtocolError(f"{self._where('SyncFolderItems')}: no SyncState in the answer")
        return _Page(fetch, deleted, service.sync_state, bool(service.includes_last_item_in_range))

    # -- facts ---------------------------------------------------------------------------

    def _facts(self, folder: RemoteFolder, remote: Any, ids: list[Any]) -> list[MessageFacts]:
        """The facts of the items, in order; items gone meanwhile are left out."""
        items = self._call(
            f"GetItem {folder.name}",
            lambda: list(self.account.fetch(ids, folder=remote, only_fields=FACT_FIELDS)),
        )
        facts: list[MessageFacts] = []
        reports: dict[str, str] = {}  # remote id -> item class
        for (item_id, _changekey), item in zip(ids, items, strict=False):
            if isinstance(item, ews_errors.ErrorItemNotFound):
                continue  # deleted since the sync: its Delete comes next time
            if isinstance(item, Exception):
                facts.append(MessageFacts(item_id, defects=(f"ews: {type(item).__name__}",)))
                continue
            facts.append(facts_from_item(item_id, item))
            if is_report_item(item):
                reports[item_id] = str(item.item_class)
        if folder.role is not FolderRole.INBOX:
            return facts
        return self._add_body_facts(remote, facts, reports)

    def _add_body_facts(
        self, remote: Any, facts: list[MessageFacts], reports: dict[str, str]
    ) -> list[MessageFacts]:
        """Excerpts for inbound replies, reports for report items (see ews_facts)."""
        wanted = [
            f.remote_id
            for f in facts
            if self.excerpt_chars > 0
            and f.remote_id not in reports
            and not f.is_report
            and f.wants_excerpt(self.own_addresses)
        ]
        texts = self._texts(remote, wanted) if wanted else {}
        mimes = self._mimes(remote, facts, reports) if reports else {}
        updated = []
        for read in facts:
            remote_id, done = read.remote_id, read
            if remote_id in texts:
                excerpt = reply_text(texts[remote_id], max_chars=self.excerpt_chars)
                done = dataclasses.replace(done, excerpt=excerpt or None)
            if remote_id in reports:
                mime = mimes.get(remote_id)
                report = facts_from_bytes(remote_id, mime).report if mime else None
                done = with_report(done, reports[remote_id], report)
            updated.append(done)
        return updated

    def _texts(self, remote: Any, ids: Sequence[str]) -> dict[str, str]:
        version = self._call("version", lambda: self.account.version)
        field = "text_body" if version.build >= EXCHANGE_2013 else "body"
        items = self._call(
            "GetItem text",
            lambda: list(
                self.account.fetch([(i, None) for i in ids], folder=remote, only_fields=[field])
            ),
        )
        texts = {}
        for item_id, item in zip(ids, items, strict=False):
            if isinstance(item, Exception):
                continue
            value = getattr(item, field, None)
            texts[item_id] = (
                html_text(str(value)) if isinstance(value, HTMLBody) else str(value or "")
            )
        return texts

    def _mimes(
        self, remote: Any, facts: list[MessageFacts], reports: dict[str, str]
    ) -> dict[str, bytes]:
        sizes = {f.remote_id: f.size for f in facts}
        ids = [i for i in reports if (sizes.get(i) or 0) <= MAX_REPORT_BYTES]
        if not ids:
            return {}
        items = self._call(
            "GetItem MIME",
            lambda: list(
                self.account.fetch(
                    [(i, None) for i in ids], folder=remote, only_fields=["mime_content"]
                )
            ),
        )
        return {
            item_id: bytes(item.mime_content)
            for item_id, item in zip(ids, items, strict=False)
            if not isinstance(item, Exception) and item.mime_content
        }


def _all_ids(remote: Any) -> list[str]:
    """The ids of every item in the folder (FindItem, IdOnly, paged)."""
    query = remote.all().values_list("id", flat=True)
    query.page_size = LIST_PAGE_SIZE
    return [str(item_id) for item_id in query]


# -- OAuth (hybrid modern authentication) ---------------------------------------------------


def ews_oauth_scopes(ews_url: str, *, delegated: bool = False) -> list[str]:
    """The OAuth scope of an on-premises EWS endpoint under hybrid modern auth, whose
    resource is the Exchange server's own URL: `https://mail.example.com/.default` for an
    app's own permission (full_access_as_app, with impersonation), `.../EWS.AccessAsUser.All`
    for a rep's delegated sign-in."""
    parts = urlsplit(ews_url)
    if not parts.scheme or not parts.netloc:
        raise ValueError(f"not an absolute URL: {ews_url!r}")
    permission = "EWS.AccessAsUser.All" if delegated else ".default"
    return [f"{parts.scheme}://{parts.netloc}/{permission}"]


def ews_token_source(
    ews_url: str,
    *,
    authority_url: str,
    tenant_id: str,
    client_id: str,
    client_secret: str | None = None,
    certificate_file: Path | None = None,
    cache_path: Path,
    ca_file: Path | None = None,
    timeout: float,
) -> TokenSource:
    """App-only tokens for EWS from `connectors.msauth` (imported here, on first use)."""
    from connectors.msauth import app_token_source  # noqa: PLC0415  (optional until used)

    source: TokenSource = app_token_source(
        authority_url=authority_url,
        tenant_id=tenant_id,
        client_id=client_id,
        client_secret=client_secret,
        certificate_file=certificate_file,
        scopes=ews_oauth_scopes(ews_url),
        cache_path=cache_path,
        ca_file=ca_file,
        timeout=timeout,
    )
    return source
