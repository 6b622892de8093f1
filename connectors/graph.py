"""Microsoft 365 mailboxes through Microsoft Graph: `GraphConnector` syncs Inbox, Sent Items
and Drafts with delta queries and writes Relight's drafts (`connectors.graph_drafts`).

Theory of operation. The folders are Graph's well-known names (`inbox`, `sentitems`,
`drafts`), so nothing depends on the mailbox's language. `changes()` syncs one folder with
one *round* of `GET /users/{mailbox}/mailFolders/{folder}/messages/delta`:

    cursor {"v": 1, "mailbox", "delta": deltaLink}, or none
      none (or another mailbox's)     -> a round from scratch: every message in the folder
      a deltaLink                     -> a round of what changed since it
    each page (odata.maxpagesize)     -> Fetched(its messages, `@removed` entries apart)
    the last page has the deltaLink:
      round from scratch              -> Present(every id the round listed)
      else, some `@removed` entries   -> Present(the folder's ids, listed with $select=id)
                                      -> Checkpoint(the new deltaLink)
    410 Gone / syncStateNotFound      -> one round from scratch (once per call), whose
                                         Present drops whatever went meanwhile

A Checkpoint comes only after the last page of a round, so a crash between pages resumes
from the previous deltaLink: the pages are fetched again and stored again, and the store's
upserts make that harmless. Removals use the existing `Present` change, never a `Reset`: the
ids are immutable (`Prefer: IdType="ImmutableId"`), so a resync need not forget the folder
(and never leaves it half empty between two cycles). An updated message (read, flagged)
comes back in a later round and is stored again, unchanged.

Messages. The delta `$select` holds only what `MessageFacts` needs (internetMessageId,
conversationId as the thread id, from, to, cc, replyTo, subject, sent and received
times). Graph has no In-Reply-To, References or classification headers in that list, and
`internetMessageHeaders` cannot be selected on a delta query, so for inbound mail in the
Inbox (the mail that needs classifying) each message is read once more,
`$select=internetMessageHeaders,uniqueBody` (the new text of a reply, as plain text): at
most `MAX_CONCURRENT` requests at once per mailbox. The excerpt is taken from `uniqueBody`
for inbound mail that is not list mail (`rules.excerpt.reply_text`, `excerpt_chars`).
A delivery or read report (Content-Type multipart/report, or a message from postmaster,
mailer-daemon or Exchange's own sender) is read as MIME (`/$value`, at most
`MAX_MIME_BYTES`) for its machine-readable part (`connectors.headers`).

Nothing in the rep's mail is changed by a sync: only GETs. Errors are translated by
`connectors.graph_http`.
"""

from __future__ import annotations

import dataclasses
import html
import json
import re
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

from connectors.base import (
    CLASSIFICATION_HEADERS,
    Address,
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
from connectors.graph_drafts import GraphDrafts
from connectors.graph_http import MAX_CONCURRENT, TEXT_BODIES, GraphClient, SyncStateLost
from connectors.headers import MAX_ADDRESSES, MAX_SUBJECT_CHARS, parse_header_block
from connectors.msauth import TokenSource
from connectors.rawmail import facts_from_bytes
from rules.excerpt import reply_text

__all__ = ["DELTA_SELECT", "FOLDERS", "MAX_MIME_BYTES", "GraphConnector", "GraphCursor"]

FOLDERS = (
    RemoteFolder("inbox", FolderRole.INBOX),
    RemoteFolder("sentitems", FolderRole.SENT),
    RemoteFolder("drafts", FolderRole.DRAFTS),
)
DELTA_SELECT = ",".join(
    (
        *("internetMessageId", "conversationId", "from", "sender", "toRecipients"),
        *("ccRecipients", "replyTo", "subject", "sentDateTime", "receivedDateTime", "isDraft"),
    )
)
MAX_MIME_BYTES = 256 * 1024  # of a report: its status part comes early
LIST_PAGE_SIZE = 1000  # ids per page when listing a folder for Present
_REPORT_SENDERS = re.compile(r"^(postmaster|mailer-daemon|microsoftexchange[0-9a-f]*)@")
_TAG = re.compile(r"<[^>]*>")
_BREAK = re.compile(r"<\s*(br|/p|/div|/tr|/li)\b[^>]*>", re.IGNORECASE)
_INVISIBLE = re.compile(r"<(style|script|head)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)


class GraphCursor(NamedTuple):
    """Where a folder's sync stands: the deltaLink that ended the last round."""

    mailbox: str
    delta_link: str

    def dumps(self) -> str:
        data = {"v": 1, "mailbox": self.mailbox, "delta": self.delta_link}
        return json.dumps(data, sort_keys=True, separators=(",", ":"))

    @classmethod
    def loads(cls, text: str) -> GraphCursor | None:
        """The cursor, or None when `text` is not one of ours."""
        try:
            data = json.loads(text)
            cursor = cls(str(data["mailbox"]), str(data["delta"]))
        except (ValueError, TypeError, KeyError, AttributeError):
            return None
        return cursor if data.get("v") == 1 and cursor.delta_link else None


class GraphConnector(GraphDrafts):
    """One Microsoft 365 mailbox through Graph; see the module docstring. Implements
    `SyncConnector` and `DraftFolder`. Building one sends nothing.

    `should_stop` ends a wait for throttling early; `max_retry_wait` is the longest
    Retry-After waited out in place. `clock` and `sleep` are for tests.
    """

    def __init__(
        self,
        graph_url: str,
        mailbox: str,
        token_source: TokenSource,
        *,
        own_addresses: frozenset[str] = frozenset(),
        excerpt_chars: int = 500,
        timeout: float = 30.0,
        ca_file: Path | None = None,
        page_size: int = 100,
        should_stop: Callable[[], bool] | None = None,
        max_retry_wait: float = 120.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        if not mailbox.strip():
            raise ValueError("mailbox must not be empty")
        if not graph_url.lower().startswith("https://"):
            raise ValueError(f"graph_url must be an https URL: {graph_url!r}")
        if page_size < 1 or excerpt_chars < 0 or timeout <= 0 or max_retry_wait < 0:
            raise ValueError("page_size and timeout must be positive, excerpt_chars >= 0")
        self.graph_url = graph_url.rstrip("/")
        self.mailbox = mailbox.strip()
        self.own_addresses = frozenset(address.strip().lower() for address in own_addresses)
        self.excerpt_chars = excerpt_chars
        self.page_size = page_size
        self._client_args: dict[str, Any] = {
            "timeout": timeout,
            "ca_file": ca_file,
            "max_wait": max_retry_wait,
            "should_stop": should_stop,
            "clock": clock,
            "sleep": sleep,
        }
        self._tokens = token_source
        self._graph: GraphClient | None = None
        self._pool: ThreadPoolExecutor | None = None

    # -- session -------------------------------------------------------------------------

    def __enter__(self) -> GraphConnector:
        self._graph = GraphClient(self.graph_url, self.mailbox, self._tokens, **self._client_args)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        graph, self._graph = self._graph, None
        if graph is not None:
            graph.close()

    @property
    def graph(self) -> GraphClient:
        if self._graph is None:
            raise ProtocolError("not connected: use the connector as a context manager")
        return self._graph

    def _map(self, function: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
        """`function` over `items` on up to MAX_CONCURRENT threads, results in order."""
        if len(items) <= 1:
            return [function(item) for item in items]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(MAX_CONCURRENT, thread_name_prefix="relight-graph")
        return list(self._pool.map(function, items))

    # -- folders -------------------------------------------------------------------------

    def folders(self) -> list[RemoteFolder]:
        """Inbox, Sent Items and Drafts by their well-known names (every mailbox has them)."""
        return list(FOLDERS)

    # -- sync ----------------------------------------------------------------------------

    def changes(self, folder: RemoteFolder, cursor: str | None) -> Iterator[Change]:
        """Stream what changed in `folder` since `cursor` (see the module docstring)."""
        state = GraphCursor.loads(cursor) if cursor is not None else None
        if cursor is not None and state is None:
            yield Reset()  # not ours: start over
        if state is not None and state.mailbox.lower() != self.mailbox.lower():
            state = None  # another mailbox's deltaLink: a round from scratch replaces it
        try:
            yield from self._round(folder, state.delta_link if state else None)
        except SyncStateLost:
            if state is None:
                raise  # lost during a round from scratch: the next cycle tries again
            yield from self._round(folder, None)  # once; a second loss goes up

    def _round(self, folder: RemoteFolder, delta_link: str | None) -> Iterator[Change]:
        graph = self.graph
        if delta_link is None:
            url = f"{graph.user_path}/mailFolders/{folder.name}/messages/delta"
            params: dict[str, str] | None = {"$select": DELTA_SELECT}
        else:
            url, params = graph.checked_link(delta_link), None
        prefer = (f"odata.maxpagesize={self.page_size}",)
        listed: set[str] = set()
        removed = False
        while True:
            page = graph.get_json(url, params=params, prefer=prefer)
            assert page is not None
            params = None
            batch: dict[str, dict[str, Any]] = {}  # a message twice in a page: the last
            for item in page.get("value") or ():
                remote_id = item.get("id") if isinstance(item, dict) else None
                if not isinstance(remote_id, str) or not remote_id:
                    continue
                if "@removed" in item:
                    removed = True
                    listed.discard(remote_id)
                    batch.pop(remote_id, None)
                else:
                    listed.add(remote_id)
                    batch[remote_id] = item
            facts = self._facts(folder, list(batch.values()))
            if facts:
                yield Fetched(tuple(facts))
            if page.get("@odata.nextLink") is not None:
                url = graph.checked_link(page["@odata.nextLink"])
                continue
            if page.get("@odata.deltaLink") is None:
                raise ProtocolError(f"graph {self.mailbox}: a delta page without any link")
            final = graph.checked_link(page["@odata.deltaLink"])
            break
        if delta_link is None:
            yield Present(frozenset(listed))
        elif removed:
            yield Present(frozenset(self._list_ids(folder)))
        yield Checkpoint(GraphCursor(self.mailbox, final).dumps())

    def _list_ids(self, folder: RemoteFolder) -> set[str]:
        url = f"{self.graph.user_path}/mailFolders/{folder.name}/messages"
        params = {"$select": "id", "$top": str(LIST_PAGE_SIZE)}
        ids: set[str] = set()
        for page in self.graph.pages(url, params):
            ids.update(
                item["id"]
                for item in page.get("value") or ()
                if isinstance(item, dict) and isinstance(item.get("id"), str)
            )
        return ids

    # -- messages into facts ---------------------------------------------------------------

    def _facts(self, folder: RemoteFolder, items: list[dict[str, Any]]) -> list[MessageFacts]:
        def one(item: dict[str, Any]) -> MessageFacts | None:
            if "internetMessageId" not in item:  # an update with only what changed
                item = self._message(item["id"], DELTA_SELECT)
                if item is None:
                    return None  # deleted meanwhile: the next round says so
            facts = _facts_from_json(item)
            if folder.role is FolderRole.INBOX and self._inbound(facts):
                facts = self._with_details(facts)
            return facts

        return [facts for facts in self._map(one, items) if facts is not None]

    def _inbound(self, facts: MessageFacts) -> bool:
        return facts.sender is None or facts.sender.email not in self.own_addresses

    def _message(self, remote_id: str, select: str, prefer: Sequence[str] = ()) -> Any:
        url = self.graph.message_url(remote_id)
        return self.graph.get_json(url, {"$select": select}, prefer=prefer, missing_ok=True)

    def _with_details(self, facts: MessageFacts) -> MessageFacts:
        """The classification headers, In-Reply-To and References, the excerpt and the
        delivery report of an inbound message (one or two more requests)."""
        select = "internetMessageHeaders" + (",uniqueBody" if self.excerpt_chars else "")
        item = self._message(facts.remote_id, select, prefer=(TEXT_BODIES,))
        if item is None:  # deleted meanwhile: the next round says so
            return facts
        fields = parse_header_block(_header_block(item.get("internetMessageHeaders")))
        defects = [d for d in fields.defects if not d.startswith("message-id")]
        facts = dataclasses.replace(
            facts,
            in_reply_to=fields.in_reply_to,
            references=fields.references,
            headers=fields.headers,
            defects=(*facts.defects, *defects),
        )
        if facts.is_report or _REPORT_SENDERS.match(facts.sender.email if facts.sender else ""):
            return self._with_report(facts)
        if self.excerpt_chars and facts.wants_excerpt(self.own_addresses):
            text = _plain_text(item.get("uniqueBody"))
            enough = min(max(4096, self.excerpt_chars * 8), 65536)
            excerpt = reply_text(text[:enough], max_chars=self.excerpt_chars) if text else ""
            facts = dataclasses.replace(facts, excerpt=excerpt or None)
        return facts

    def _with_report(self, facts: MessageFacts) -> MessageFacts:
        """The report part of a delivery or read report, read from its MIME."""
        url = self.graph.message_url(facts.remote_id, "/$value")
        raw = self.graph.get_bytes(url, MAX_MIME_BYTES)
        if raw is None:
            return facts
        try:
            whole = facts_from_bytes(facts.remote_id, raw)
        except Exception as exc:  # a body the stdlib parser chokes on must not stop a sync
            defect = f"report unreadable ({type(exc).__name__})"
            return dataclasses.replace(facts, defects=(*facts.defects, defect))
        if whole.report is None:
            return facts
        return dataclasses.replace(
            facts, headers=whole.headers or facts.headers, report=whole.report
        )


# -- pure helpers ----------------------------------------------------------------------------


def _facts_from_json(item: dict[str, Any]) -> MessageFacts:
    """A message resource (as the delta query selects it) as facts."""
    defects: list[str] = []
    message_id = _bare_id(item.get("internetMessageId"))
    if message_id is None and not item.get("isDraft"):
        defects.append("message-id: missing")
    subject = " ".join(str(item.get("subject") or "").split())
    if len(subject) > MAX_SUBJECT_CHARS:
        defects.append("subject: truncated")
        subject = subject[:MAX_SUBJECT_CHARS]
    senders = _addresses([item.get("from") or item.get("sender")], "from", defects)
    thread_id = item.get("conversationId")
    return MessageFacts(
        remote_id=item["id"],
        message_id=message_id,
        sender=senders[0] if senders else None,
        to=_addresses(item.get("toRecipients"), "to", defects),
        cc=_addresses(item.get("ccRecipients"), "cc", defects),
        reply_to=_addresses(item.get("replyTo"), "reply-to", defects),
        date=_moment(item.get("sentDateTime"), "sentDateTime", defects),
        received_at=_moment(item.get("receivedDateTime"), "receivedDateTime", defects),
        subject=subject,
        thread_id=thread_id if isinstance(thread_id, str) and thread_id else None,
        defects=tuple(defects),
    )


def _bare_id(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    bare = value.strip().removeprefix("<").removesuffix(">").strip()
    return bare or None


def _addresses(recipients: object, name: str, defects: list[str]) -> tuple[Address, ...]:
    """Graph recipients ({"emailAddress": {"name", "address"}}) as addresses; an Exchange
    address that is no SMTP address (an X.500 DN) is skipped with a defect."""
    found: list[Address] = []
    for recipient in recipients if isinstance(recipients, list) else ():
        mailbox = recipient.get("emailAddress") if isinstance(recipient, dict) else None
        if not isinstance(mailbox, dict):
            continue
        address = str(mailbox.get("address") or "").strip().lower()
        display = " ".join(str(mailbox.get("name") or "").split())
        if "@" not in address or any(c.isspace() for c in address):
            defects.append(f"{name}: not an internet address skipped")
            continue
        if len(found) >= MAX_ADDRESSES:
            defects.append(f"{name}: more than {MAX_ADDRESSES} addresses, the rest skipped")
            break
        found.append(Address(address, "" if display.lower() == address else display))
    return tuple(found)


def _moment(value: object, name: str, defects: list[str]) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        defects.append(f"{name}: unreadable")
        return None
    if moment.tzinfo is None:  # Graph's times are UTC ("Z"); a bare one is taken as such
        moment = moment.replace(tzinfo=UTC)
    return moment


_WANTED_HEADERS = frozenset((*CLASSIFICATION_HEADERS, "in-reply-to", "references"))


def _header_block(headers: object) -> bytes:
    """internetMessageHeaders ([{"name", "value"}]) as a raw header block of the fields
    Relight reads, one line each."""
    lines = []
    for header in headers if isinstance(headers, list) else ():
        if not isinstance(header, dict):
            continue
        name, value = str(header.get("name") or ""), str(header.get("value") or "")
        if name.lower() in _WANTED_HEADERS and name.isascii() and ":" not in name:
            lines.append(f"{name}: {' '.join(value.split())}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "replace")


def _plain_text(body: object) -> str:
    """An itemBody's text; HTML (when the text preference was not applied) stripped."""
    if not isinstance(body, dict):
        return ""
    content = str(body.get("content") or "")
    if str(body.get("contentType") or "").lower() != "html":
        return content
    content = _INVISIBLE.sub(" ", content)
    content = _BREAK.sub("\n", content)
    return html.unescape(_TAG.sub("", content))
