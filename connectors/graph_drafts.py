"""Relight's drafts in a Microsoft 365 Drafts folder, through Graph: find, write, retract.

`GraphDrafts` is the `connectors.base.DraftFolder` half of `GraphConnector` (which mixes
it in), and the only code that writes to a rep's mailbox. Theory of operation:

* **The key.** Graph lets a client set Internet headers only when it creates a message,
  and only `x-` ones; a draft made by `createReply` is updated afterwards. The key
  therefore goes into the MAPI named property that Exchange writes out as the
  `X-Relight-Key` header of the sent message (property set PS_INTERNET_HEADERS,
  {00020386-0000-0000-C000-000000000046}, MS-OXCMAIL 2.2.3.2.10), set and read as the
  single-value extended property `RELIGHT_KEY_PROPERTY`.
* **Find.** List the Drafts folder with that property expanded and the body as text;
  the drafts that carry it are Relight's, keyed by its value. Each one's digest is
  `digest_of` its *canonical rendering*: the body text as Graph returns it with
  `Prefer: outlook.body-content-type="text"` (line ends and trailing blanks do not
  count). Written and found drafts go through the same rendering, so an untouched draft
  compares equal and one the rep edited (Outlook rewrites the body) does not.
* **Write.** Look for the key first (`$filter` on the property's value): a draft with it
  is returned, nothing is written.
  Else find the message the draft answers (its In-Reply-To, by `$filter=internetMessageId
  eq '<id>'`) and `createReply` on it, which threads the draft in Outlook (same
  conversationId, In-Reply-To and References); then one PATCH sets the body (text/plain),
  the recipient (the prospect, whoever the reply would have gone to), the draft's
  deterministic Message-ID (so a sent draft is recognised in Sent Items) and the key.
  When the PATCH fails, the half-made draft is deleted again. Without the original
  (deleted, never synced) a new draft is created in Drafts with the same fields, In-Reply-To
  and References as MAPI properties. The draft is read back: a key Graph did not keep
  would let the next run write a second draft, so such a draft is deleted and refused.
* **Retract.** GET the message by its immutable id with the key property: gone already
  is nothing to do; without the property, or no longer a draft (it was sent), it is the
  rep's and `DraftRefused`; else DELETE it (Outlook moves it to Deleted Items).
"""

from __future__ import annotations

import contextlib
import email.policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

from connectors.base import (
    RELIGHT_KEY_HEADER,
    DraftRefused,
    ProtocolError,
    StoredDraft,
    digest_of,
)
from connectors.graph_http import TEXT_BODIES, GraphClient, odata_string

__all__ = ["RELIGHT_KEY_PROPERTY", "GraphDrafts", "canonical_digest"]

# PS_INTERNET_HEADERS: a named string property here is an Internet header of the message.
RELIGHT_KEY_PROPERTY = f"String {{00020386-0000-0000-C000-000000000046}} Name {RELIGHT_KEY_HEADER}"
IN_REPLY_TO_PROPERTY = "String 0x1042"  # PidTagInReplyToId
REFERENCES_PROPERTY = "String 0x1039"  # PidTagInternetReferences
_DRAFT_SELECT = "id,internetMessageId,isDraft,body"
_EXPAND_KEY = f"singleValueExtendedProperties($filter=id eq {odata_string(RELIGHT_KEY_PROPERTY)})"
_PAGE = 50


def canonical_digest(body_text: str) -> str:
    """The digest of a draft as Graph stores it: `digest_of` its text body."""
    return digest_of(b"\n\n" + body_text.encode("utf-8"))


class GraphDrafts:
    """The DraftFolder methods of `GraphConnector` (see the module docstring)."""

    mailbox: str

    @property
    def graph(self) -> GraphClient:
        raise NotImplementedError

    def find_drafts(self) -> dict[str, StoredDraft]:
        """Every draft in Drafts that carries the X-Relight-Key property, by key (the
        first by id when a key is there twice)."""
        url = f"{self.graph.user_path}/mailFolders/drafts/messages"
        params = {"$select": _DRAFT_SELECT, "$expand": _EXPAND_KEY, "$top": str(_PAGE)}
        found: list[StoredDraft] = []
        for page in self.graph.pages(url, params, prefer=(TEXT_BODIES,)):
            for item in page.get("value") or ():
                draft = _stored_draft(item) if isinstance(item, dict) else None
                if draft is not None:
                    found.append(draft)
        drafts: dict[str, StoredDraft] = {}
        for draft in sorted(found, key=lambda draft: draft.remote_id):
            drafts.setdefault(draft.key, draft)
        return drafts

    def write_draft(self, key: str, raw: bytes) -> StoredDraft:
        """Write the draft `raw` (carrying `X-Relight-Key: key`) as a reply in Drafts,
        unless a draft with `key` is there already: then that one is returned."""
        draft = _parse_draft(key, raw)
        existing = self._draft_with_key(key)
        if existing is not None:
            return existing
        original = self._original(draft.in_reply_to) if draft.in_reply_to else None
        changes: dict[str, Any] = {
            "body": {"contentType": "text", "content": draft.body},
            "toRecipients": draft.to,
            "singleValueExtendedProperties": [{"id": RELIGHT_KEY_PROPERTY, "value": key}],
        }
        if draft.message_id:
            changes["internetMessageId"] = f"<{draft.message_id}>"
        users = self.graph.user_path
        if original is not None:
            reply_url = self.graph.message_url(original, "/createReply")
            created = self.graph.send_json("POST", reply_url, None)  # no body: as documented
            remote_id = _id_of(created)
            try:
                self.graph.send_json("PATCH", self.graph.message_url(remote_id), changes)
            except BaseException:
                self._discard(remote_id)
                raise
        else:
            changes["subject"] = draft.subject
            in_reply_to = f"<{draft.in_reply_to}>" if draft.in_reply_to else None
            thread_headers = [
                (IN_REPLY_TO_PROPERTY, in_reply_to),
                (REFERENCES_PROPERTY, draft.references),
            ]
            changes["singleValueExtendedProperties"] += [
                {"id": name, "value": value} for name, value in thread_headers if value
            ]
            created = self.graph.send_json("POST", f"{users}/mailFolders/drafts/messages", changes)
            remote_id = _id_of(created)
        stored = self._read_draft(remote_id)
        if stored is None or stored.key != key:
            self._discard(remote_id)
            raise ProtocolError(
                f"graph {self.mailbox}: the new draft did not keep its {RELIGHT_KEY_HEADER}; "
                "it was removed again"
            )
        return stored

    def delete_draft(self, remote_id: str) -> None:
        """Retract a draft Relight wrote; `DraftRefused` for anything else."""
        item = self._message_with_key(remote_id)
        if item is None:
            return  # already gone
        if _key_of(item) is None:
            raise DraftRefused(f"message {remote_id} has no {RELIGHT_KEY_HEADER}: not Relight's")
        if item.get("isDraft") is False:
            raise DraftRefused(f"message {remote_id} is no longer a draft (it was sent)")
        self.graph.delete(self.graph.message_url(remote_id))

    # -- helpers -------------------------------------------------------------------------

    def _draft_with_key(self, key: str) -> StoredDraft | None:
        """The draft in Drafts whose key property is `key` (the first by id), or None."""
        condition = (
            f"ep/id eq {odata_string(RELIGHT_KEY_PROPERTY)} and ep/value eq {odata_string(key)}"
        )
        params = {
            "$filter": f"singleValueExtendedProperties/Any(ep: {condition})",
            "$select": _DRAFT_SELECT,
            "$expand": _EXPAND_KEY,
        }
        url = f"{self.graph.user_path}/mailFolders/drafts/messages"
        found = [
            draft
            for page in self.graph.pages(url, params, prefer=(TEXT_BODIES,))
            for item in page.get("value") or ()
            if isinstance(item, dict) and (draft := _stored_draft(item)) is not None
        ]
        return min(found, key=lambda draft: draft.remote_id) if found else None

    def _original(self, message_id: str) -> str | None:
        """The id of the message with this Message-ID (not a draft), or None."""
        params = {
            "$filter": f"internetMessageId eq {odata_string(f'<{message_id}>')}",
            "$select": "id,isDraft",
        }
        page = self.graph.get_json(f"{self.graph.user_path}/messages", params)
        for item in (page or {}).get("value") or ():
            if (
                isinstance(item, dict)
                and not item.get("isDraft")
                and isinstance(item.get("id"), str)
            ):
                return str(item["id"])
        return None

    def _message_with_key(self, remote_id: str) -> dict[str, Any] | None:
        url = self.graph.message_url(remote_id)
        params = {"$select": _DRAFT_SELECT, "$expand": _EXPAND_KEY}
        return self.graph.get_json(url, params, prefer=(TEXT_BODIES,), missing_ok=True)

    def _read_draft(self, remote_id: str) -> StoredDraft | None:
        item = self._message_with_key(remote_id)
        return _stored_draft(item) if item is not None else None

    def _discard(self, remote_id: str) -> None:
        """Best effort: remove a half-made draft (the original error is what matters)."""
        with contextlib.suppress(Exception):
            self.graph.delete(self.graph.message_url(remote_id))


class _Draft:
    """What Graph needs from a composed draft (`rules.drafts.Draft.as_bytes()`)."""

    def __init__(self, message: EmailMessage) -> None:
        self.subject = " ".join(str(message.get("Subject", "")).split())
        self.to = [
            {"emailAddress": {"address": address.addr_spec, "name": address.display_name}}
            for header in message.get_all("To", [])
            for address in header.addresses
        ]
        self.message_id = _bare(message.get("Message-ID"))
        self.in_reply_to = _bare(message.get("In-Reply-To"))
        self.references = " ".join(str(message.get("References", "")).split()) or None
        body = message.get_body(("plain",))
        text = body.get_content() if body is not None else ""
        self.body = text.replace("\r\n", "\n").replace("\r", "\n")


def _parse_draft(key: str, raw: bytes) -> _Draft:
    if not key or key != " ".join(key.split()):
        raise ValueError(f"a draft key is one line without surrounding spaces: {key!r}")
    message = BytesParser(policy=email.policy.default).parsebytes(raw)
    header = message.get(RELIGHT_KEY_HEADER)
    if header is None or " ".join(str(header).split()) != key:
        raise ValueError(f"the draft does not carry {RELIGHT_KEY_HEADER}: {key}")
    draft = _Draft(message)
    if not draft.to:
        raise ValueError("the draft has no To address")
    return draft


def _bare(value: object) -> str | None:
    if value is None:
        return None
    text = " ".join(str(value).split()).removeprefix("<").removesuffix(">")
    return text or None


def _id_of(created: dict[str, Any] | None) -> str:
    remote_id = (created or {}).get("id")
    if not isinstance(remote_id, str) or not remote_id:
        raise ProtocolError("graph: a created draft came back without an id")
    return remote_id


def _key_of(item: dict[str, Any]) -> str | None:
    for prop in item.get("singleValueExtendedProperties") or ():
        if (
            isinstance(prop, dict)
            and str(prop.get("id", "")).lower() == RELIGHT_KEY_PROPERTY.lower()
        ):
            key = " ".join(str(prop.get("value") or "").split())
            return key or None
    return None


def _stored_draft(item: dict[str, Any]) -> StoredDraft | None:
    """A listed or read message as a Relight draft; None when it is not one."""
    key, remote_id = _key_of(item), item.get("id")
    if key is None or not isinstance(remote_id, str) or not remote_id:
        return None
    body = item.get("body") if isinstance(item.get("body"), dict) else {}
    text = str((body or {}).get("content") or "")
    return StoredDraft(key, remote_id, _bare(item.get("internetMessageId")), canonical_digest(text))
