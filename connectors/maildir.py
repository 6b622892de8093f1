"""Local Maildir++ trees: `MaildirConnector` syncs INBOX, Sent and Drafts from files.

Layout. `path` is a Maildir++ tree as mbsync, offlineimap or Dovecot keep it: INBOX at
the root (cur/ new/ tmp/), other folders beside it as `.Name` (`.Sent`, `.INBOX.Drafts`).
The verbatim layout (`Sent/`, and `INBOX/` when the root is no Maildir) is read too. Sent
and Drafts are the configured `sent_folder` and `drafts_folder` (with or without the
dot), else the best-known localized name (`connectors.imap_folders`). A folder's name is
its directory relative to the root, "INBOX" for INBOX.

Identity. A message's remote id is its Maildir unique name: the file name before the
`:2,` info, without the `,U=<uid>` mbsync adds. A mail client that marks a message read
renames `new/x` to `cur/x:2,S`: the same unique name, so the same message.

Theory of operation. `changes()` syncs one folder since a cursor:

    stat new/ and cur/ (before listing anything)
      both as in the cursor           -> Checkpoint                       (two stat calls)
      else list new/, then cur/ (names only, no file opened)
        a known id is missing         -> Present(every id listed)
        per batch of `batch_size` unknown ids, in order of name:
          read each file's headers    -> Fetched(batch), a Checkpoint every tenth or so

A directory's ctime changes whenever an entry is added to it, removed or renamed in it
(every change a Maildir sees: messages are never rewritten in place) and, unlike its
mtime, no restore can set it back. The stamps are read before the listing, so a change
during the sync shows at the next poll. A stamp younger than `SETTLE_SECONDS` is not
trusted (a change in the same clock tick would leave it equal): the cursor then keeps
none and the next poll lists again, as git treats a "racily clean" index.

The cursor is JSON: {"v": 1, "new": ns|null, "cur": ns|null, "ids": base64}, `ids` the
sorted 8-byte BLAKE2b digests of the remote ids yielded and still listed (about 11
characters a message). A Checkpoint in the middle of a folder keeps no stamps, so a
resumed sync lists again and reads only what is still unknown.

Reading. The header block (at most `MAX_HEADER_BYTES`) becomes facts through
`connectors.headers`, as an IMAP header FETCH does. Inbound INBOX mail that needs more
(not list mail, excerpts enabled; a multipart/report) is read on, at most
`MAX_MESSAGE_BYTES`, for `connectors.rawmail` to find the excerpt (`rules.excerpt`) and
the delivery report. `received_at` is the file's mtime, where Dovecot and mbsync keep the
arrival time. A file that cannot be read becomes facts with a defect, never a failure.

Read-only. A sync stats, lists and opens files O_RDONLY (O_NOATIME where allowed: not
even access times move). Nothing is renamed (a mail client moves new/ to cur/; Relight
does not), no flag changes, nothing is written in tmp/. Only the `DraftFolder` methods
write, in the Drafts folder only: a draft is written and fsynced in tmp/, then
hard-linked into cur/ as `relight-<sha256 of its key>:2,DS` (draft, seen) with LF line
endings. The name is the same for the same key, so two writers racing for one key
collide on the link and the second returns the first one's draft.

Errors: a missing or unreadable `path` or folder is a `ProtocolError` naming it (the
admin must fix it); other OS errors are `TransientError`.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import email.parser
import email.policy
import errno
import hashlib
import io
import itertools
import json
import os
import re
import socket
import stat
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import NamedTuple

from connectors.base import (
    RELIGHT_KEY_HEADER,
    Change,
    Checkpoint,
    ConnectorError,
    DraftRefused,
    Fetched,
    FolderRole,
    MessageFacts,
    Present,
    ProtocolError,
    RemoteFolder,
    Reset,
    StoredDraft,
    TransientError,
    digest_of,
)
from connectors.headers import facts_from_headers, parse_header_block
from connectors.imap_folders import choose_folders
from connectors.rawmail import facts_from_bytes
from rules.excerpt import reply_text

__all__ = [
    "MAX_HEADER_BYTES",
    "MAX_MESSAGE_BYTES",
    "SETTLE_SECONDS",
    "MaildirConnector",
    "MaildirCursor",
    "remote_id_of",
]

INBOX = "INBOX"
MAX_HEADER_BYTES = 256 * 1024  # a longer header block is junk; what is read is kept
MAX_MESSAGE_BYTES = 1024 * 1024  # read for an excerpt: the text part comes first
MAX_DRAFT_BYTES = 16 * 1024 * 1024  # a longer Relight draft was edited (attachments)
SETTLE_SECONDS = 2.0
ID_DIGEST_BYTES = 8
_CHUNK = 64 * 1024
_HEADER_END = re.compile(rb"\r?\n\r?\n|\r\r")
_MBSYNC_UID = re.compile(r",U=\d+(?=,|$)")
_DELIVERIES = itertools.count()


class MaildirCursor(NamedTuple):
    """Where a folder's sync stands (see the module docstring)."""

    new_stamp: int | None  # ctime of new/ in ns, None when not to be trusted
    cur_stamp: int | None
    ids: bytes  # sorted concatenation of the digests of the known remote ids

    @classmethod
    def of(cls, stamps: tuple[int | None, int | None], known: set[bytes]) -> MaildirCursor:
        return cls(stamps[0], stamps[1], b"".join(sorted(known)))

    def known(self) -> frozenset[bytes]:
        size = ID_DIGEST_BYTES
        return frozenset(self.ids[i : i + size] for i in range(0, len(self.ids), size))

    def dumps(self) -> str:
        ids = base64.b64encode(self.ids).decode("ascii")
        data = {"v": 1, "new": self.new_stamp, "cur": self.cur_stamp, "ids": ids}
        return json.dumps(data, sort_keys=True, separators=(",", ":"))

    @classmethod
    def loads(cls, text: str) -> MaildirCursor | None:
        """The cursor, or None when `text` is not one of ours."""
        try:
            data = json.loads(text)
            ids = base64.b64decode(data["ids"], validate=True)
            stamps = (data["new"], data["cur"])
        except (ValueError, TypeError, KeyError, AttributeError):
            return None
        valid = all(s is None or (type(s) is int and s >= 0) for s in stamps)
        if data.get("v") != 1 or len(ids) % ID_DIGEST_BYTES or not valid:
            return None
        return cls(stamps[0], stamps[1], ids)


class MaildirConnector:
    """One account's Maildir tree; see the module docstring. Implements `SyncConnector`
    and `DraftFolder`. `clock` gives the current time in seconds (default: the system's)."""

    def __init__(
        self,
        path: Path,
        *,
        sent_folder: str | None = None,
        drafts_folder: str | None = None,
        own_addresses: frozenset[str] = frozenset(),
        excerpt_chars: int = 500,
        batch_size: int = 500,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if batch_size < 1 or excerpt_chars < 0:
            raise ValueError("batch_size must be positive, excerpt_chars >= 0")
        self.path = Path(path)
        self.sent_folder = sent_folder
        self.drafts_folder = drafts_folder
        self.own_addresses = frozenset(address.strip().lower() for address in own_addresses)
        self.excerpt_chars = excerpt_chars
        self.batch_size = batch_size
        self._clock = clock
        self._noatime = hasattr(os, "O_NOATIME")

    # -- session -------------------------------------------------------------------------

    def __enter__(self) -> MaildirConnector:
        with self._boundary("open"):
            self._inbox_dir()
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Nothing to close: every file is closed as soon as it is read."""

    @contextmanager
    def _boundary(self, action: str) -> Iterator[None]:
        """Translate OS errors into ours (see the module docstring)."""
        try:
            yield
        except ConnectorError:
            raise
        except (FileNotFoundError, NotADirectoryError) as exc:
            raise ProtocolError(f"{action}: no such file or directory: {exc.filename}") from exc
        except PermissionError as exc:
            raise ProtocolError(f"{action}: permission denied: {exc.filename}") from exc
        except OSError as exc:
            detail = exc.strerror or type(exc).__name__
            raise TransientError(f"{action} ({self.path}): {detail}") from exc

    # -- folders -------------------------------------------------------------------------

    def folders(self) -> list[RemoteFolder]:
        """INBOX, then Sent and Drafts by their configured names, else by known names."""
        with self._boundary("list folders"):
            self._inbox_dir()
            subfolders = self._subfolders()
            by_name: dict[FolderRole, str] = {
                folder.role: subfolders[folder.name]
                for folder in choose_folders([(frozenset(), ".", name) for name in subfolders])
                if folder.role is not FolderRole.INBOX
            }
            found = [RemoteFolder(INBOX, FolderRole.INBOX)]
            for role, key, configured in (
                (FolderRole.SENT, "sent_folder", self.sent_folder),
                (FolderRole.DRAFTS, "drafts_folder", self.drafts_folder),
            ):
                name = self._configured(key, configured) if configured else None
                name = name or by_name.get(role)
                if name is not None and all(folder.name != name for folder in found):
                    found.append(RemoteFolder(name, role))
            return found

    def _inbox_dir(self) -> Path:
        try:
            info = self.path.stat()
        except FileNotFoundError:
            raise ProtocolError(f"maildir path {self.path} does not exist") from None
        except PermissionError:
            raise ProtocolError(f"maildir path {self.path}: permission denied") from None
        if not stat.S_ISDIR(info.st_mode):
            raise ProtocolError(f"maildir path {self.path} is not a directory")
        for candidate in (self.path, self.path / INBOX):
            if _is_maildir(candidate):
                return candidate
        raise ProtocolError(
            f"maildir path {self.path} is not a Maildir: it has no cur/ and new/ (nor INBOX/)"
        )

    def _subfolders(self) -> dict[str, str]:
        """Folder name as an IMAP server would say it (no leading dot) -> directory name."""
        found: dict[str, str] = {}
        with os.scandir(self.path) as entries:
            names = sorted(e.name for e in entries if e.is_dir() and e.name not in _PARTS)
        for name in names:  # ".Sent" sorts before "Sent" and wins
            if _is_maildir(self.path / name):
                found.setdefault(name.removeprefix("."), name)
        return found

    def _configured(self, key: str, name: str) -> str | None:
        parts = PurePosixPath(name).parts
        if not parts or parts[0] == "/" or ".." in parts or name in (".", INBOX):
            raise ProtocolError(f"{key} = {name!r} must name a folder inside {self.path}")
        bare = name.removeprefix(".")
        for candidate in (name, bare) if name.startswith(".") else ("." + name, name):
            if _is_maildir(self.path / candidate):
                return candidate
        return None

    def _folder_dir(self, folder: RemoteFolder) -> Path:
        if folder.name == INBOX:
            return self._inbox_dir()
        self._inbox_dir()  # a missing path is named as such, not as a missing folder
        parts = PurePosixPath(folder.name).parts
        directory = self.path / folder.name
        if not parts or parts[0] == "/" or ".." in parts or not _is_maildir(directory):
            raise ProtocolError(f"folder {folder.name!r} is not a Maildir in {self.path}")
        return directory

    # -- sync ----------------------------------------------------------------------------

    def changes(self, folder: RemoteFolder, cursor: str | None) -> Iterator[Change]:
        """Stream what changed in `folder` since `cursor` (see the module docstring)."""
        with self._boundary(f"sync {folder.name!r}"):
            yield from self._changes(folder, cursor)

    def _changes(self, folder: RemoteFolder, cursor: str | None) -> Iterator[Change]:
        directory = self._folder_dir(folder)
        state = MaildirCursor.loads(cursor) if cursor is not None else None
        if cursor is not None and state is None:
            yield Reset()
        stamps = self._stamps(directory)
        unchanged = state is not None and stamps == (state.new_stamp, state.cur_stamp)
        if cursor is not None and unchanged and None not in stamps:
            yield Checkpoint(cursor)
            return

        listing = _list(directory)
        digests = {remote_id: _digest(remote_id) for remote_id in listing}
        known = state.known() if state is not None else frozenset()
        if known - set(digests.values()):
            yield Present(frozenset(listing))
        done = set(known.intersection(digests.values()))
        fresh = sorted(remote_id for remote_id, digest in digests.items() if digest not in known)
        if not fresh:
            yield Checkpoint(MaildirCursor.of(stamps, done).dumps())
            return
        every = max(self.batch_size, len(fresh) // 10)
        since_checkpoint = 0
        for start in range(0, len(fresh), self.batch_size):
            batch = fresh[start : start + self.batch_size]
            facts = [self._facts(folder, directory, listing, remote_id) for remote_id in batch]
            found = tuple(item for item in facts if item is not None)
            done.update(digests[item.remote_id] for item in found)
            if found:
                yield Fetched(found)
            since_checkpoint += len(batch)
            if start + self.batch_size >= len(fresh):
                yield Checkpoint(MaildirCursor.of(stamps, done).dumps())
            elif since_checkpoint >= every:
                since_checkpoint = 0
                yield Checkpoint(MaildirCursor.of((None, None), done).dumps())

    def _stamps(self, directory: Path) -> tuple[int | None, int | None]:
        """The ctimes of new/ and cur/, each None when too recent to be trusted."""
        settled = int((self._clock() - SETTLE_SECONDS) * 1e9)
        new, cur = ((directory / part).stat().st_ctime_ns for part in ("new", "cur"))
        return (new if new <= settled else None, cur if cur <= settled else None)

    def _facts(
        self, folder: RemoteFolder, directory: Path, listing: dict[str, Path], remote_id: str
    ) -> MessageFacts | None:
        """The message's facts; None when it is gone (deleted since the listing)."""
        facts = self._read_facts(folder, remote_id, listing[remote_id])
        if facts is None:  # renamed since the listing (a flag change, new/ to cur/)?
            moved = _list(directory).get(remote_id)
            facts = self._read_facts(folder, remote_id, moved) if moved is not None else None
        return facts

    def _read_facts(self, folder: RemoteFolder, remote_id: str, path: Path) -> MessageFacts | None:
        try:
            with self._open(path) as handle:
                return self._facts_from_file(folder, remote_id, handle)
        except FileNotFoundError:
            return None
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            return MessageFacts(remote_id, defects=(f"unreadable: {reason}",))

    def _facts_from_file(
        self, folder: RemoteFolder, remote_id: str, handle: io.BufferedReader
    ) -> MessageFacts:
        info = os.fstat(handle.fileno())
        data, end = _read_head(handle)
        defects = [] if end is not None else [f"header block over {MAX_HEADER_BYTES} bytes"]
        try:
            received_at: datetime | None = datetime.fromtimestamp(info.st_mtime, UTC)
        except (OverflowError, OSError, ValueError):
            received_at = None
            defects.append("file time out of range")
        facts = facts_from_headers(
            remote_id,
            data[:end],
            received_at=received_at,
            size=info.st_size,
            thread_id=None,
            extra_defects=defects,
        )
        if folder.role is FolderRole.INBOX and (
            facts.is_report or (self.excerpt_chars > 0 and facts.wants_excerpt(self.own_addresses))
        ):
            data += handle.read(MAX_MESSAGE_BYTES - len(data))
            facts = self._with_body(facts, data)
        return facts

    def _open(self, path: Path) -> io.BufferedReader:
        """Open read-only; O_NOATIME keeps even the access time as it was."""
        flags = os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK  # NONBLOCK: never hang on a FIFO
        if self._noatime:
            try:
                return os.fdopen(os.open(path, flags | getattr(os, "O_NOATIME", 0)), "rb")
            except PermissionError as exc:
                if exc.errno != errno.EPERM:  # EPERM: not the owner, O_NOATIME refused
                    raise
                self._noatime = False
        return os.fdopen(os.open(path, flags), "rb")

    def _with_body(self, facts: MessageFacts, data: bytes) -> MessageFacts:
        """`facts` with the excerpt (not of reports) and the delivery report from `data`."""

        # As much text as the IMAP connector fetches: the same excerpt, and a bounded cost.
        enough = min(max(4096, self.excerpt_chars * 8), 65536)

        def excerpt(text: str) -> str | None:
            return reply_text(text[:enough], max_chars=self.excerpt_chars) or None

        try:
            whole = facts_from_bytes(
                facts.remote_id, data, excerpt=None if facts.is_report else excerpt
            )
        except Exception as exc:  # a body the stdlib parser chokes on must not stop a sync
            defect = f"body unreadable ({type(exc).__name__})"
            return dataclasses.replace(facts, defects=(*facts.defects, defect))
        return dataclasses.replace(facts, excerpt=whole.excerpt, report=whole.report)

    # -- drafts ----------------------------------------------------------------------------

    def find_drafts(self) -> dict[str, StoredDraft]:
        """Every message in Drafts with an X-Relight-Key header, by key (the first by
        remote id when a key is there twice). No Drafts folder: none."""
        with self._boundary("find drafts"):
            directory = self._drafts_dir()
            return {} if directory is None else self._scan_drafts(directory)

    def write_draft(self, key: str, raw: bytes) -> StoredDraft:
        """Deliver `raw` into Drafts/cur flagged draft and seen, unless a draft with `key`
        is there already: then that one is returned and nothing is written."""
        if not key or key != " ".join(key.split()):
            raise ValueError(f"a draft key is one line without surrounding spaces: {key!r}")
        if _relight_key(raw) != key:
            raise ValueError(f"the draft does not carry {RELIGHT_KEY_HEADER}: {key}")
        with self._boundary("write draft"):
            directory = self._drafts_dir()
            if directory is None:
                raise ProtocolError(
                    f"no Drafts folder in {self.path}: create one or set drafts_folder"
                )
            existing = self._scan_drafts(directory).get(key)
            if existing is not None:
                return existing
            stored = raw.replace(b"\r\n", b"\n")
            remote_id = "relight-" + hashlib.sha256(key.encode()).hexdigest()[:32]
            target = directory / "cur" / f"{remote_id}:2,DS"
            if not _deliver(directory, stored, target):
                raced = self._draft_at(remote_id, target)
                if raced is None or raced.key != key:
                    raise ProtocolError(f"{target} exists but is no Relight draft for {key}")
                return raced
            message_id = parse_header_block(stored).message_id
            return StoredDraft(key, remote_id, message_id, digest_of(stored))

    def delete_draft(self, remote_id: str) -> None:
        """Remove a draft Relight wrote; refuse (`DraftRefused`) anything without an
        X-Relight-Key header. A draft already gone is nothing to do."""
        with self._boundary("delete draft"):
            directory = self._drafts_dir()
            for _attempt in range(3):  # the file may be renamed by a flag change meanwhile
                path = _list(directory).get(remote_id) if directory is not None else None
                if path is None:
                    return
                try:
                    if self._draft_at(remote_id, path) is None:
                        raise DraftRefused(
                            f"{remote_id} in Drafts has no {RELIGHT_KEY_HEADER} header: "
                            "it is the rep's own mail and is left alone"
                        )
                    path.unlink()
                except FileNotFoundError:
                    continue
                return
            raise TransientError(f"draft {remote_id} kept moving; not deleted")

    def _drafts_dir(self) -> Path | None:
        drafts = [f for f in self.folders() if f.role is FolderRole.DRAFTS]
        return self._folder_dir(drafts[0]) if drafts else None

    def _scan_drafts(self, directory: Path) -> dict[str, StoredDraft]:
        for _attempt in range(3):  # a file renamed under us: look again, never miss one
            found: dict[str, StoredDraft] = {}
            try:
                for remote_id, path in sorted(_list(directory).items()):
                    draft = self._draft_at(remote_id, path)
                    if draft is not None and draft.key not in found:
                        found[draft.key] = draft
            except FileNotFoundError:
                continue
            return found
        raise TransientError(f"the Drafts folder in {self.path} kept changing while read")

    def _draft_at(self, remote_id: str, path: Path) -> StoredDraft | None:
        """The Relight draft in `path`, None when it has no X-Relight-Key. Only Relight's
        drafts are read whole (for the digest)."""
        with self._open(path) as handle:
            data, end = _read_head(handle)
            key = _relight_key(data[:end])
            if key is None:
                return None
            size = os.fstat(handle.fileno()).st_size
            if size > MAX_DRAFT_BYTES:  # certainly not what Relight wrote
                digest = hashlib.sha256(b"oversized draft %d" % size).hexdigest()
            else:
                data += handle.read()
                digest = digest_of(data)
        return StoredDraft(key, remote_id, parse_header_block(data[:end]).message_id, digest)


# -- helpers --------------------------------------------------------------------------------

_PARTS = frozenset(("cur", "new", "tmp"))


def remote_id_of(file_name: str) -> str:
    """A Maildir file's remote id: its unique name, without the info and mbsync's `,U=`.

    Names that are not printable ASCII (never seen in practice) are escaped, so that the
    id is always storable text.
    """
    unique = _MBSYNC_UID.sub("", file_name.split(":", 1)[0] or file_name)
    if unique.isascii() and unique.isprintable():
        return unique
    return unique.encode("unicode_escape").decode("ascii")


def _is_maildir(directory: Path) -> bool:
    return (directory / "cur").is_dir() and (directory / "new").is_dir()


def _list(directory: Path) -> dict[str, Path]:
    """Remote id -> file of every message in new/ and cur/. new/ is read first, so a
    message a mail client moves to cur/ meanwhile is found there rather than missed."""
    found: dict[str, Path] = {}
    for part in ("new", "cur"):
        with os.scandir(directory / part) as entries:
            for entry in entries:
                if not entry.name.startswith(".") and entry.is_file():
                    found[remote_id_of(entry.name)] = Path(entry.path)
    return found


def _digest(remote_id: str) -> bytes:
    return hashlib.blake2b(remote_id.encode(), digest_size=ID_DIGEST_BYTES).digest()


def _read_head(handle: io.BufferedReader) -> tuple[bytes, int | None]:
    """The bytes read and where the header block ends in them (None: longer than
    `MAX_HEADER_BYTES`); a file without a blank line is all header."""
    data = b""
    while len(data) < MAX_HEADER_BYTES:
        chunk = handle.read1(_CHUNK)
        if not chunk:
            return data, len(data)
        data += chunk
        match = _HEADER_END.search(data, max(0, len(data) - len(chunk) - 3))
        if match:
            return data, match.end()
    return data, None


def _relight_key(raw: bytes) -> str | None:
    """The X-Relight-Key of a message (or its header block), unfolded; None when absent."""
    match = _HEADER_END.search(raw)
    head = raw[: match.end()] if match else raw
    parser = email.parser.BytesHeaderParser(policy=email.policy.compat32)
    value = parser.parsebytes(head).get(RELIGHT_KEY_HEADER)
    key = " ".join(str(value).split()) if value is not None else ""
    return key or None


def _deliver(directory: Path, raw: bytes, target: Path) -> bool:
    """Write `raw` to `target` through tmp/ (Maildir delivery); False when `target`
    exists already (nothing written then)."""
    tmp_dir = directory / "tmp"
    tmp_dir.mkdir(mode=0o700, exist_ok=True)
    host = socket.gethostname().replace("/", r"\057").replace(":", r"\072") or "localhost"
    now = time.time()
    unique = f"{int(now)}.M{int(now % 1 * 1e6)}P{os.getpid()}Q{next(_DELIVERIES)}"
    tmp = tmp_dir / f"{unique}R{os.urandom(8).hex()}.{host}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        try:
            view = memoryview(raw)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, target)  # fails if the target exists, unlike rename
        except FileExistsError:
            return False
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
                raise
            if target.exists():  # a file system without hard links: check, then rename
                return False
            os.rename(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    _fsync_directory(target.parent)
    return True


def _fsync_directory(directory: Path) -> None:
    with contextlib.suppress(OSError):  # not every file system can sync a directory
        fd = os.open(directory, os.O_RDONLY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
