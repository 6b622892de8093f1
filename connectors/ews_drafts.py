"""Relight's drafts in an Exchange Drafts folder over EWS: find them, write one, retract one.

`EwsDrafts` is the `connectors.base.DraftFolder` half of `EwsConnector`, and the only code
that writes to the rep's mailbox. Theory of operation:

* **The key.** A draft is Relight's when it carries the `X-Relight-Key` extended property
  in the PS_INTERNET_HEADERS property set (`ews_session.RelightKey`): where Exchange keeps
  X-headers, and what it writes as the header when the rep sends the draft. It is set
  once, registered once per process, and read back after every write (set again once if
  Exchange dropped it). `find_drafts` is one FindItem in Drafts restricted to items that
  have the property, then one GetItem for their text.
* **Write, threaded.** The draft answers the message whose Message-ID is its In-Reply-To.
  That message is looked up (FindItem on InternetMessageId in the Inbox, then Sent Items)
  and answered with `create_reply(subject, body, to).save(drafts)`: CreateItem with a
  ReplyToItem, so Exchange itself links the reply into the conversation (ConversationId,
  In-Reply-To, References, Outlook's "replied" state) and quotes the original below our
  text, as Outlook does. An UpdateItem then sets the key (a ReplyToItem cannot carry
  extended properties). EWS does not let the InternetMessageId of an existing item be
  set, so such a draft has Exchange's Message-ID, which `StoredDraft.message_id` reports.
  When the original is not in those folders, a plain Message is saved to Drafts with our
  Message-ID, In-Reply-To, References and key in one CreateItem.
* **Once per key.** `write_draft` looks for the key first. A crash between the CreateItem
  and the UpdateItem of a reply would leave a draft without the key; the next write looks
  for exactly that draft (same subject and In-Reply-To, the prospect alone in To, our text
  at the top, no key) and adopts it instead of writing a second one.
* **Digest.** `digest_of` a canonical rendering of what Exchange holds: subject, the To
  addresses and the body as text (Exchange's own conversion, line ends and trailing blanks
  normalised). Found again untouched, a draft renders and digests the same; edited by the
  rep (text, subject or recipients), it does not.
* **Retract.** Only an item that is in Drafts and carries the key (the FindItem of
  `find_drafts` finds it), else `DraftRefused`. It is soft-deleted (DeleteItem SoftDelete:
  out of the rep's sight, recoverable by the admin, as Outlook's Shift+Delete). A draft
  already gone is nothing to do.
"""

from __future__ import annotations

import email
import email.policy
import functools
import re
from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import getaddresses
from typing import Any

from exchangelib import Body, HTMLBody
from exchangelib import Mailbox as EwsMailbox
from exchangelib import errors as ews_errors
from exchangelib.items import SOFT_DELETE, Message
from exchangelib.version import EXCHANGE_2013

from connectors.base import (
    RELIGHT_KEY_HEADER,
    DraftRefused,
    ProtocolError,
    StoredDraft,
    digest_of,
)
from connectors.ews_facts import html_text
from connectors.ews_session import EwsSession

__all__ = ["EwsDrafts", "draft_digest"]

_IDS = re.compile(r"<([^<>\s]+)>")
_SPACE = re.compile(r"\s+")


def draft_digest(subject: str, to: Sequence[str], body: str) -> str:
    """The digest of a draft as Exchange holds it (see the module docstring)."""
    lines = body.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    text = "\n".join(line.rstrip() for line in lines).strip()
    addresses = ", ".join(sorted(address.strip().lower() for address in to))
    canonical = f"Subject: {' '.join(subject.split())}\nTo: {addresses}\n\n{text}"
    return digest_of(b"\n\n" + canonical.encode("utf-8"))


class EwsDrafts(EwsSession):
    """The DraftFolder methods of `EwsConnector` (see the module docstring)."""

    def find_drafts(self) -> dict[str, StoredDraft]:
        """Every item in Drafts that carries the X-Relight-Key property, by key."""
        found: dict[str, StoredDraft] = {}
        for item in self._fetch_drafts(self._keyed_ids()):
            stored = self._stored(item)
            if stored is not None and stored.key not in found:
                found[stored.key] = stored
        return found

    def write_draft(self, key: str, raw: bytes) -> StoredDraft:
        """Save `raw` to Drafts as a reply to its In-Reply-To message (threaded), unless a
        draft with `key` is there already: then that one is returned."""
        draft = _Draft.parse(raw)
        if not key or draft.key != key:
            raise ValueError(f"the draft does not carry {RELIGHT_KEY_HEADER}: {key}")
        existing = self.find_drafts().get(key) or self._adopt(draft)
        if existing is not None:
            return existing
        drafts = self._drafts()
        original = self._original(draft.in_reply_to) if draft.in_reply_to else None
        recipients = [
            EwsMailbox(email_address=address, name=name or None) for name, address in draft.to
        ]
        if original is not None:
            reply = original.create_reply(draft.subject, Body(draft.body), to_recipients=recipients)
            created = self._call("CreateItem reply", lambda: reply.save(drafts))
            item_id = created.id
            self._set_key(item_id, created.changekey, key)
        else:
            message = Message(
                account=self.account,
                folder=drafts,
                subject=draft.subject,
                body=Body(draft.body),
                to_recipients=recipients,
                message_id=f"<{draft.message_id}>" if draft.message_id else None,
                in_reply_to=f"<{draft.in_reply_to}>" if draft.in_reply_to else None,
                references=" ".join(f"<{ref}>" for ref in draft.references) or None,
                relight_key=key,
            )
            self._call("CreateItem draft", message.save)
            item_id = message.id
        return self._read_back(item_id, key)

    def delete_draft(self, remote_id: str) -> None:
        """Soft-delete a draft Relight wrote; `DraftRefused` for anything else."""
        keyed = dict(self._keyed_ids())
        if remote_id not in keyed:
            found = self._call(
                "GetItem draft",
                lambda: list(self.account.fetch([(remote_id, None)], only_fields=["subject"])),
            )
            item = found[0] if found else None
            if item is None or isinstance(item, ews_errors.ErrorItemNotFound):
                return  # already gone
            raise DraftRefused(
                f"{remote_id[:24]}... is not a Relight draft in Drafts (no "
                f"{RELIGHT_KEY_HEADER}, or moved away): it is the rep's own and is left alone"
            )
        results = self._call(
            "DeleteItem draft",
            lambda: self.account.bulk_delete(
                [(remote_id, keyed[remote_id])], delete_type=SOFT_DELETE
            ),
        )
        result = results[0] if results else True
        if isinstance(result, Exception) and not isinstance(result, ews_errors.ErrorItemNotFound):
            raise ProtocolError(f"{self._where('DeleteItem draft')}: {type(result).__name__}")

    # -- helpers -------------------------------------------------------------------------

    def _drafts(self) -> Any:
        return self.remote_folder("drafts")

    def _keyed_ids(self) -> list[tuple[str, str | None]]:
        """(id, changekey) of every item in Drafts with the X-Relight-Key property."""
        drafts = self._drafts()
        return self._call(
            "FindItem Drafts",
            lambda: _ids(drafts.filter(relight_key__exists=True)),
        )

    def _body_field(self) -> str:
        version = self._call("version", lambda: self.account.version)
        return "text_body" if version.build >= EXCHANGE_2013 else "body"

    def _fetch_drafts(
        self, ids: list[tuple[str, str | None]], extra: Sequence[str] = ()
    ) -> list[Any]:
        if not ids:
            return []
        fields = [
            "relight_key",
            "message_id",
            "subject",
            "to_recipients",
            self._body_field(),
            *extra,
        ]
        drafts = self._drafts()
        items = self._call(
            "GetItem drafts",
            lambda: list(self.account.fetch(ids, folder=drafts, only_fields=fields)),
        )
        return [item for item in items if not isinstance(item, Exception)]

    def _stored(self, item: Any) -> StoredDraft | None:
        key = " ".join(str(getattr(item, "relight_key", None) or "").split())
        if not key:
            return None
        message_id = str(getattr(item, "message_id", None) or "").strip()
        return StoredDraft(
            key=key,
            remote_id=item.id,
            message_id=message_id.removeprefix("<").removesuffix(">") or None,
            digest=draft_digest(
                str(item.subject or ""),
                [str(person.email_address or "") for person in item.to_recipients or ()],
                _text_of(item),
            ),
        )

    def _original(self, message_id: str) -> Any | None:
        """The message a draft answers, by Message-ID: in the Inbox, else Sent Items."""
        for name in ("inbox", "sentitems"):
            query = self.remote_folder(name).filter(message_id=f"<{message_id}>")
            found = self._call(f"FindItem {name}", functools.partial(_first_id_of, query))
            if found is not None:
                return Message(account=self.account, id=found[0], changekey=found[1])
        return None

    def _set_key(self, item_id: str, changekey: str, key: str) -> None:
        update = Message(account=self.account, id=item_id, changekey=changekey, relight_key=key)
        self._call("UpdateItem key", lambda: update.save(update_fields=["relight_key"]))

    def _read_back(self, item_id: str, key: str) -> StoredDraft:
        """The draft as stored; the key set again once if Exchange dropped it."""
        for attempt in range(2):
            items = self._fetch_drafts([(item_id, None)])
            stored = self._stored(items[0]) if items else None
            if stored is not None and stored.key == key:
                return stored
            if not items or attempt:
                break
            self._set_key(item_id, items[0].changekey, key)
        raise ProtocolError(
            f"{self._where('write draft')}: the draft was saved but {RELIGHT_KEY_HEADER} "
            "did not stick to it"
        )

    def _adopt(self, draft: _Draft) -> StoredDraft | None:
        """A keyless draft a crashed write left behind (see the module docstring), keyed."""
        drafts = self._drafts()
        candidates = self._call(
            "FindItem Drafts by subject",
            lambda: _ids(drafts.filter(subject=draft.subject)),
        )
        wanted_to = sorted(address.lower() for _name, address in draft.to)
        ours = _SPACE.sub(" ", draft.body).strip()
        for item in self._fetch_drafts(candidates, extra=("in_reply_to",)):
            if item.relight_key or _bare(item.in_reply_to) != (draft.in_reply_to or ""):
                continue
            to = sorted(str(p.email_address or "").lower() for p in item.to_recipients or ())
            text = _SPACE.sub(" ", _text_of(item)).strip()
            if to == wanted_to and ours and text.startswith(ours):
                self._set_key(item.id, item.changekey, draft.key)
                return self._read_back(item.id, draft.key)
        return None


class _Draft:
    """The parts of a composed draft (`rules.drafts.Draft.as_bytes()`) EWS is given."""

    def __init__(self, message: EmailMessage) -> None:
        self.key = " ".join(str(message.get(RELIGHT_KEY_HEADER) or "").split())
        self.subject = " ".join(str(message.get("Subject") or "").split())
        self.to = [
            (name, address)
            for name, address in getaddresses(message.get_all("To") or [])
            if "@" in address
        ]
        self.message_id = _first_id(message.get("Message-ID"))
        self.in_reply_to = _first_id(message.get("In-Reply-To"))
        self.references = _IDS.findall(str(message.get("References") or ""))
        part = message.get_body(("plain",))
        content = part.get_content() if isinstance(part, EmailMessage) else ""
        text = content if isinstance(content, str) else ""
        self.body = text.replace("\r\n", "\n").replace("\r", "\n")
        if not self.to or not self.body.strip():
            raise ValueError("a draft needs a To address and a text/plain body")

    @classmethod
    def parse(cls, raw: bytes) -> _Draft:
        message = email.message_from_bytes(raw, policy=email.policy.default)
        if not isinstance(message, EmailMessage):  # pragma: no cover - policy.default
            raise ValueError("not a message")
        return cls(message)


def _ids(query: Any) -> list[tuple[str, str | None]]:
    """(id, changekey) of every item a FindItem query finds (ids only: one FindItem)."""
    return [(str(item.id), item.changekey) for item in query.only("id", "changekey")]


def _first_id_of(query: Any) -> tuple[str, str] | None:
    """(id, changekey) of the first item a FindItem query finds."""
    for item in query.only("id", "changekey")[:1]:
        return (str(item.id), str(item.changekey))
    return None


def _first_id(value: object) -> str | None:
    found = _IDS.findall(str(value or ""))
    return found[0] if found else None


def _bare(value: object) -> str:
    return str(value or "").strip().removeprefix("<").removesuffix(">")


def _text_of(item: Any) -> str:
    text = getattr(item, "text_body", None)
    if text is None:
        body = getattr(item, "body", None)
        text = html_text(str(body)) if isinstance(body, HTMLBody) else str(body or "")
    return str(text)
