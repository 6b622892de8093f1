"""Relight's drafts in an IMAP Drafts folder: find them, write one, retract one.

`ImapDrafts` is the `connectors.base.DraftFolder` half of `ImapConnector` (which mixes it
in): the only code that writes to a rep's mailbox. Theory of operation:

* **Find.** EXAMINE the Drafts folder (found as `folders()` finds it), `UID SEARCH HEADER
  X-Relight-Key ""` (the messages that carry the header at all), and `BODY.PEEK[]` of
  those: the key, the Message-ID, and the digest of the body (`digest_of`). Drafts the rep
  wrote are never fetched.
* **Write.** `APPEND` with the flags `\\Draft \\Seen`, after a look for the key: the same
  key is never appended twice, whatever crashed before. The UID comes from the APPENDUID
  answer (RFC 4315, UIDPLUS), else from a search for the key.
* **Retract.** SELECT the Drafts folder (read-write, the one place it is), check that the
  UID still holds a message with an X-Relight-Key header, set `\\Deleted` on that UID only
  and `UID EXPUNGE` it, then UNSELECT. Never `CLOSE` and never a plain `EXPUNGE`: both
  would also remove any message the rep had marked deleted. Without UIDPLUS there is no
  safe way, so Relight refuses (`ProtocolError`) and leaves the draft.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from email.parser import BytesHeaderParser
from email.policy import compat32
from typing import Any

import imapclient

from connectors.base import (
    RELIGHT_KEY_HEADER,
    DraftRefused,
    FolderRole,
    ProtocolError,
    StoredDraft,
    digest_of,
)
from connectors.imap_session import ImapSession

__all__ = ["ImapDrafts"]

_APPENDUID = re.compile(rb"\[APPENDUID \d+ (\d+)\]", re.IGNORECASE)
_FLAGS = (imapclient.DRAFT, imapclient.SEEN)
_WHOLE = b"BODY[]"


class ImapDrafts(ImapSession):
    """The DraftFolder methods of `ImapConnector` (see the module docstring)."""

    def find_drafts(self) -> dict[str, StoredDraft]:
        """Every message in Drafts that carries an X-Relight-Key header, by key."""
        folder = self._drafts_folder()
        with self._boundary(f"find drafts in {folder}"):
            self.client.select_folder(folder, readonly=True)
            return {draft.key: draft for draft in self._relight_drafts(None)}

    def write_draft(self, key: str, raw: bytes) -> StoredDraft:
        """Append `raw` to Drafts flagged `\\Draft \\Seen`, unless the key is there already."""
        found = self.find_drafts().get(key)
        if found is not None:
            return found
        folder = self._drafts_folder()
        with self._boundary(f"APPEND to {folder}"):
            answer = self.client.append(folder, raw, flags=_FLAGS)
            uid = _appended_uid(answer)
            if uid is None:  # no UIDPLUS: look the key up
                self.client.select_folder(folder, readonly=True)
                stored = {draft.key: draft for draft in self._relight_drafts(None)}
                if key not in stored:
                    raise ProtocolError(f"the draft appended to {folder} cannot be found again")
                return stored[key]
        message_id = _header(raw, "Message-ID")
        return StoredDraft(key, str(uid), message_id, digest_of(raw))

    def delete_draft(self, remote_id: str) -> None:
        """Remove one draft Relight wrote; `DraftRefused` for anything else."""
        if "UIDPLUS" not in self._capabilities:
            raise ProtocolError(
                "the server lacks UIDPLUS: a draft cannot be removed without risking "
                "other messages marked deleted, so it is left in place"
            )
        folder = self._drafts_folder()
        uid = int(remote_id)
        with self._boundary(f"retract a draft in {folder}"), self._selected(folder):
            drafts = self._relight_drafts([uid])
            if not drafts:
                if self.client.search(["UID", str(uid)]):
                    raise DraftRefused(f"message {uid} in {folder} is not a Relight draft")
                return  # already gone
            self.client.add_flags([uid], [imapclient.DELETED], silent=True)
            self.client.uid_expunge([uid])

    # -- helpers -------------------------------------------------------------------------

    def _drafts_folder(self) -> str:
        drafts = [f.name for f in self.folders() if f.role is FolderRole.DRAFTS]
        if not drafts:
            raise ProtocolError("the mailbox has no Drafts folder (special-use or by name)")
        return drafts[0]

    @contextlib.contextmanager
    def _selected(self, folder: str) -> Iterator[None]:
        """The folder selected read-write, then deselected without expunging anything."""
        self.client.select_folder(folder, readonly=False)
        try:
            yield
        finally:
            if "UNSELECT" in self._capabilities:
                self.client.unselect_folder()
            else:  # selecting another folder read-only leaves this one untouched
                self.client.select_folder("INBOX", readonly=True)

    def _relight_drafts(self, uids: list[int] | None) -> list[StoredDraft]:
        """The Relight drafts of the selected folder, among `uids` (None: all)."""
        criteria: list[Any] = ["HEADER", RELIGHT_KEY_HEADER, ""]
        if uids is not None:
            criteria = ["UID", ",".join(str(uid) for uid in uids), *criteria]
        found = self.client.search(criteria)
        if not found:
            return []
        drafts = []
        for uid, data in sorted(self.client.fetch(found, ["BODY.PEEK[]"]).items()):
            raw = data.get(_WHOLE)
            key = _header(raw, RELIGHT_KEY_HEADER) if isinstance(raw, bytes) else None
            if raw is None or key is None:
                continue
            drafts.append(StoredDraft(key, str(uid), _header(raw, "Message-ID"), digest_of(raw)))
        return drafts


def _appended_uid(answer: bytes | str | None) -> int | None:
    if isinstance(answer, str):
        answer = answer.encode("ascii", "replace")
    match = _APPENDUID.search(answer or b"")
    return int(match.group(1)) if match else None


def _header(raw: bytes, name: str) -> str | None:
    """One header of a raw message, unfolded, without angle brackets for ids."""
    value = BytesHeaderParser(policy=compat32).parsebytes(raw).get(name)
    if value is None:
        return None
    text = " ".join(str(value).split())
    if name.lower() == "message-id":
        text = text.strip().removeprefix("<").removesuffix(">")
    return text or None
