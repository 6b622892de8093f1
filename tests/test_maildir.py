"""The Maildir connector against real Maildir++ trees in tmp_path: sync, read-only-ness,
folder names, drafts, and `relight sync` + `relight report` on a maildir account."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest

from connectors.base import (
    Change,
    Checkpoint,
    DraftFolder,
    DraftRefused,
    Fetched,
    FolderRole,
    MessageFacts,
    Present,
    ProtocolError,
    RemoteFolder,
    Reset,
    SyncConnector,
    digest_of,
)
from connectors.maildir import MAX_HEADER_BYTES, MaildirConnector, remote_id_of
from daemon.cli import main

DANA = "dana@acmesoft.example"
INBOX = RemoteFolder("INBOX", FolderRole.INBOX)
SENT = RemoteFolder(".Sent", FolderRole.SENT)
DRAFTS = RemoteFolder(".Drafts", FolderRole.DRAFTS)


def _mail(headers: dict[str, str], body: str = "Hello.\n") -> bytes:
    head = "".join(f"{name}: {value}\n" for name, value in headers.items())
    return (head + "\n" + body).encode()


def _headers(number: int, sender: str = "alice@prospect.example", **extra: str) -> dict[str, str]:
    return {
        "From": sender,
        "To": DANA,
        "Subject": f"Message {number}",
        "Date": f"Mon, 02 Nov 2026 {number % 24:02d}:00:00 +0000",
        "Message-ID": f"<m{number}@example>",
        **extra,
    }


REPLY = _mail(
    {**_headers(1), "In-Reply-To": "<pilot@acmesoft.example>"},
    "Thanks, we'll discuss it with the team on Friday.\n\n> earlier text\n> quoted\n",
)


def _maildir(directory: Path) -> Path:
    for part in ("cur", "new", "tmp"):
        (directory / part).mkdir(parents=True, exist_ok=True)
    return directory


def _put(
    folder: Path, name: str, raw: bytes, part: str = "cur", mtime: float | None = None
) -> Path:
    path = folder / part / name
    path.write_bytes(raw)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """INBOX with a reply in new/ and list mail in cur/, .Sent with the rep's message,
    .Drafts with a draft of the rep's own, and an unrelated folder."""
    root = _maildir(tmp_path / "Mail")
    _put(root, "1700000001.M1P1.host", REPLY, part="new", mtime=1_800_000_000)
    newsletter = _mail(_headers(2, "news@vendor.example", **{"List-Id": "<news.vendor>"}))
    _put(root, "1700000002.M2P1.host,S=100:2,S", newsletter)
    sent = _maildir(root / ".Sent")
    _put(sent, "1700000003.M3P1.host:2,S", _mail(_headers(3, DANA, To="alice@prospect.example")))
    drafts = _maildir(root / ".Drafts")
    _put(drafts, "1700000004.M4P1.host:2,D", _mail(_headers(4, DANA)))
    _maildir(root / ".Archive")
    return root


def _connector(root: Path, **options: object) -> MaildirConnector:
    """A connector whose clock is an hour ahead, so every directory stamp is settled."""
    settings: dict[str, object] = {
        "sent_folder": ".Sent",
        "drafts_folder": ".Drafts",
        "own_addresses": frozenset({DANA}),
        "clock": lambda: time.time() + 3600,
        **options,
    }
    return MaildirConnector(root, **settings)  # type: ignore[arg-type]


def _sync(
    connector: MaildirConnector, folder: RemoteFolder, cursor: str | None = None
) -> tuple[list[Change], str]:
    changes = list(connector.changes(folder, cursor))
    last = changes[-1]
    assert isinstance(last, Checkpoint)
    return changes, last.cursor


def _fetched(changes: Sequence[Change]) -> dict[str, MessageFacts]:
    return {
        facts.remote_id: facts
        for change in changes
        if isinstance(change, Fetched)
        for facts in change.messages
    }


def _snapshot(root: Path) -> dict[str, tuple[int, int, int, bytes | None]]:
    """Every path under root with its mtime, ctime, atime and (for files) content, read
    with O_NOATIME (the tests own the files) so that taking it changes no access time."""
    seen: dict[str, tuple[int, int, int, bytes | None]] = {}
    for path in [root, *sorted(root.rglob("*"))]:
        info = path.lstat()
        content = None
        if path.is_file():
            fd = os.open(path, os.O_RDONLY | os.O_NOATIME)
            with os.fdopen(fd, "rb") as handle:
                content = handle.read()
        seen[str(path.relative_to(root))] = (
            info.st_mtime_ns,
            info.st_ctime_ns,
            info.st_atime_ns,
            content,
        )
    return seen


# -- reading --------------------------------------------------------------------------------


def test_connector_implements_both_protocols(tree: Path) -> None:
    """The Maildir connector is a SyncConnector and a DraftFolder."""
    connector = _connector(tree)
    assert isinstance(connector, DraftFolder)
    as_sync: SyncConnector = connector
    with as_sync as session:
        assert session.folders()[0] == INBOX


def test_first_sync_reads_every_folder_with_unique_names_as_ids(tree: Path) -> None:
    """A first sync yields each message once, by unique name, with file time and inbound excerpt."""
    with _connector(tree) as connector:
        assert connector.folders() == [INBOX, SENT, DRAFTS]
        inbox, cursor = _sync(connector, INBOX)
        sent, _ = _sync(connector, SENT)
        drafts, _ = _sync(connector, DRAFTS)
    assert not any(isinstance(change, (Reset, Present)) for change in inbox)
    messages = _fetched(inbox)
    assert set(messages) == {"1700000001.M1P1.host", "1700000002.M2P1.host,S=100"}
    reply = messages["1700000001.M1P1.host"]
    assert reply.message_id == "m1@example"
    assert reply.in_reply_to == "pilot@acmesoft.example"
    assert reply.received_at == datetime.fromtimestamp(1_800_000_000, UTC)
    assert reply.size == len(REPLY)
    assert reply.excerpt == "Thanks, we'll discuss it with the team on Friday."
    assert messages["1700000002.M2P1.host,S=100"].excerpt is None  # list mail
    assert [f.message_id for f in _fetched(sent).values()] == ["m3@example"]
    assert _fetched(sent)["1700000003.M3P1.host"].excerpt is None
    assert [f.message_id for f in _fetched(drafts).values()] == ["m4@example"]
    assert json.loads(cursor)["v"] == 1


def test_excerpts_follow_privacy_settings_and_skip_own_mail(tree: Path) -> None:
    """excerpt_chars trims the excerpt, 0 disables it, and the rep's own mail gets none."""
    _put(tree, "1700000009.M9P1.host:2,S", _mail(_headers(9, DANA), "Note to self.\n"))
    with _connector(tree, excerpt_chars=6) as connector:
        short = _fetched(_sync(connector, INBOX)[0])
    with _connector(tree, excerpt_chars=0) as connector:
        none = _fetched(_sync(connector, INBOX)[0])
    assert short["1700000001.M1P1.host"].excerpt == "Thanks"
    assert short["1700000009.M9P1.host"].excerpt is None
    assert none["1700000001.M1P1.host"].excerpt is None


def test_incremental_sync_sees_new_removed_and_renamed_files(tree: Path) -> None:
    """New files are fetched, removed ones make a Present, renamed ones are the same message."""
    with _connector(tree) as connector:
        _, cursor = _sync(connector, INBOX)
        os.rename(tree / "new" / "1700000001.M1P1.host", tree / "cur" / "1700000001.M1P1.host:2,RS")
        os.rename(
            tree / "cur" / "1700000002.M2P1.host,S=100:2,S",
            tree / "cur" / "1700000002.M2P1.host,S=100,U=17:2,ST",
        )
        changes, cursor = _sync(connector, INBOX, cursor)
        assert changes == [Checkpoint(cursor)]

        _put(tree, "1700000005.M5P1.host", _mail(_headers(5)), part="new")
        (tree / "cur" / "1700000002.M2P1.host,S=100,U=17:2,ST").unlink()
        changes, cursor = _sync(connector, INBOX, cursor)
        assert changes[0] == Present(frozenset({"1700000001.M1P1.host", "1700000005.M5P1.host"}))
        assert list(_fetched(changes)) == ["1700000005.M5P1.host"]

        changes, _ = _sync(connector, INBOX, cursor)
        assert changes == [Checkpoint(cursor)]


def test_no_change_poll_yields_only_the_same_checkpoint(tree: Path) -> None:
    """A poll of an unchanged folder yields one Checkpoint with the cursor it was given."""
    with _connector(tree) as connector:
        _, cursor = _sync(connector, INBOX)
        assert json.loads(cursor)["new"] is not None
        assert list(connector.changes(INBOX, cursor)) == [Checkpoint(cursor)]


def test_stamps_of_the_last_moments_are_not_trusted(tree: Path) -> None:
    """Directory stamps younger than the settle time stay out of the cursor: the next poll lists."""
    ctime = (tree / "cur").stat().st_ctime
    with _connector(tree, clock=lambda: ctime + 0.5) as connector:
        _, cursor = _sync(connector, INBOX)
        assert (json.loads(cursor)["new"], json.loads(cursor)["cur"]) == (None, None)
        _put(tree, "1700000006.M6P1.host:2,", _mail(_headers(6)))
        changes, _ = _sync(connector, INBOX, cursor)
    assert list(_fetched(changes)) == ["1700000006.M6P1.host"]


def test_a_cursor_that_is_not_ours_resets_the_folder(tree: Path) -> None:
    """A foreign or damaged cursor yields Reset, then the whole folder again."""
    with _connector(tree) as connector:
        changes, _ = _sync(connector, INBOX, '{"uidvalidity": 5}')
    assert changes[0] == Reset()
    assert len(_fetched(changes)) == 2


def test_a_long_first_sync_is_batched_with_resumable_checkpoints(tree: Path) -> None:
    """Batches of batch_size; a sync resumed from a mid-folder checkpoint reads only the rest."""
    for number in range(100, 125):
        _put(tree, f"17000001{number}.M{number}P1.host:2,S", _mail(_headers(number)))
    with _connector(tree, batch_size=5) as connector:
        changes, _ = _sync(connector, INBOX)
        batches = [change for change in changes if isinstance(change, Fetched)]
        assert [len(batch.messages) for batch in batches] == [5, 5, 5, 5, 5, 2]
        middle = [
            (index, change)
            for index, change in enumerate(changes[:-1])
            if isinstance(change, Checkpoint)
        ]
        assert middle
        index, checkpoint = middle[0]
        before = _fetched(changes[:index])
        resumed, _ = _sync(connector, INBOX, checkpoint.cursor)
    assert set(_fetched(resumed)) == set(_fetched(changes)) - set(before)


def test_syncing_and_finding_drafts_change_nothing_in_the_tree(tree: Path) -> None:
    """Syncing and finding drafts change no path, time or content in the tree."""
    _put(tree / ".Drafts", "relight-x:2,DS", _mail({**_headers(7, DANA), "X-Relight-Key": "k"}))
    old = time.time() - 3600
    for path in [*tree.rglob("*"), tree]:
        os.utime(path, (old, old), follow_symlinks=False)
    before = _snapshot(tree)
    with _connector(tree) as connector:
        cursors = {folder: _sync(connector, folder)[1] for folder in connector.folders()}
        for folder, cursor in cursors.items():
            _sync(connector, folder, cursor)
        assert set(connector.find_drafts()) == {"k"}
    assert _snapshot(tree) == before

    _put(tree, "1700000008.M8P1.host", _mail(_headers(8)), part="new")
    before = _snapshot(tree)
    with _connector(tree) as connector:
        changes, _ = _sync(connector, INBOX, cursors[INBOX])
    assert list(_fetched(changes)) == ["1700000008.M8P1.host"]
    assert _snapshot(tree) == before
    assert not [path for path in tree.rglob("*") if path.parent.name == "tmp"]


def test_huge_and_broken_files_become_defects_not_failures(tree: Path) -> None:
    """Huge headers and bodies, junk, empty files, FIFOs and directories never stop a sync."""
    endless = b"X-Junk: " + b"a" * (MAX_HEADER_BYTES + 10) + b"\n\nbody\n"
    big_body = REPLY.replace(b"\n\n", b"\n\n" + b"Short answer first.\n\n", 1)
    big_body = big_body + b"x" * (5 * 1024 * 1024)
    _put(tree, "1700000010.M10P1.host:2,", endless)
    _put(tree, "1700000011.M11P1.host:2,", big_body)
    _put(tree, "1700000012.M12P1.host:2,", bytes(range(256)) * 40)
    _put(tree, "1700000013.M13P1.host:2,", b"")
    os.mkfifo(tree / "new" / "1700000014.M14P1.host")
    (tree / "cur" / "1700000015.M15P1.host:2,").mkdir()
    (tree / "cur" / ".hidden-by-mua").write_bytes(_mail(_headers(16)))
    with _connector(tree) as connector:
        messages = _fetched(_sync(connector, INBOX)[0])
    assert set(messages) >= {f"17000000{n}.M{n}P1.host" for n in (10, 11, 12, 13)}
    assert "1700000014.M14P1.host" not in messages  # not a regular file
    assert "1700000015.M15P1.host" not in messages
    assert not any(".hidden" in remote_id for remote_id in messages)
    assert any("header block over" in d for d in messages["1700000010.M10P1.host"].defects)
    huge = messages["1700000011.M11P1.host"]
    assert huge.size == len(big_body)
    assert huge.excerpt is not None
    assert huge.excerpt.startswith("Short answer first.")
    assert messages["1700000013.M13P1.host"].defects


def test_missing_or_wrong_path_is_a_protocol_error_naming_it(tmp_path: Path) -> None:
    """A missing path, a file, or a directory without cur/ and new/ is a ProtocolError naming it."""
    missing = tmp_path / "no-such-mail"
    with pytest.raises(ProtocolError, match="no-such-mail"), _connector(missing):
        pass
    (tmp_path / "file").write_text("x")
    with pytest.raises(ProtocolError, match="not a directory"):
        _connector(tmp_path / "file").folders()
    (tmp_path / "empty").mkdir()
    with pytest.raises(ProtocolError, match="not a Maildir"):
        list(_connector(tmp_path / "empty").changes(INBOX, None))


def test_a_folder_gone_between_listing_and_sync_is_a_protocol_error(tree: Path) -> None:
    """Syncing a folder that vanished names it instead of failing with a traceback."""
    with _connector(tree) as connector:
        folders = connector.folders()
        for part in ("cur", "new", "tmp"):
            for path in (tree / ".Sent" / part).iterdir():
                path.unlink()
            (tree / ".Sent" / part).rmdir()
        with pytest.raises(ProtocolError, match=r"\.Sent"):
            list(connector.changes(folders[1], None))


# -- folder names -----------------------------------------------------------------------------


def test_special_folders_fall_back_to_known_names(tmp_path: Path) -> None:
    """Without the configured folders, known names are found, Maildir++ and verbatim alike."""
    root = _maildir(tmp_path / "a")
    _maildir(root / ".Sent Items")
    _maildir(root / ".INBOX.Entwürfe")
    _maildir(root / ".Junk")
    assert _connector(root).folders() == [
        INBOX,
        RemoteFolder(".Sent Items", FolderRole.SENT),
        RemoteFolder(".INBOX.Entwürfe", FolderRole.DRAFTS),
    ]
    verbatim = tmp_path / "b"
    _maildir(verbatim / "INBOX")
    _maildir(verbatim / "Sent")
    _maildir(verbatim / "Drafts")
    _put(verbatim / "INBOX", "1.M1P1.h:2,", REPLY)
    connector = _connector(verbatim)
    assert connector.folders() == [
        INBOX,
        RemoteFolder("Sent", FolderRole.SENT),
        RemoteFolder("Drafts", FolderRole.DRAFTS),
    ]
    assert list(_fetched(_sync(connector, INBOX)[0])) == ["1.M1P1.h"]
    nothing = _maildir(tmp_path / "c")
    assert _connector(nothing).folders() == [INBOX]


def test_configured_folder_names_win_with_or_without_the_dot(tmp_path: Path) -> None:
    """Configured names, with or without the dot, win over known ones; names outside are refused."""
    root = _maildir(tmp_path / "Mail")
    for name in (".Sent", ".Drafts", ".Outbox", ".Vorlagen"):
        _maildir(root / name)
    connector = _connector(root, sent_folder="Outbox", drafts_folder=".Vorlagen")
    assert connector.folders() == [
        INBOX,
        RemoteFolder(".Outbox", FolderRole.SENT),
        RemoteFolder(".Vorlagen", FolderRole.DRAFTS),
    ]
    with pytest.raises(ProtocolError, match="sent_folder"):
        _connector(root, sent_folder="../elsewhere").folders()


def test_remote_id_is_the_unique_name() -> None:
    """The info part and mbsync's ,U= are not part of the id; odd bytes are escaped."""
    assert remote_id_of("1700.M1P2.host,S=42:2,RS") == "1700.M1P2.host,S=42"
    assert remote_id_of("1700.M1P2.host,S=42,U=9:2,S") == "1700.M1P2.host,S=42"
    assert remote_id_of("1700.M1P2.host") == "1700.M1P2.host"
    assert remote_id_of("bad\nname\udcff:2,") == "bad\\nname\\udcff"


# -- drafts -----------------------------------------------------------------------------------


def _draft(key: str, body: str = "Hi Alice,\r\n\r\njust checking in.\r\n") -> bytes:
    headers = {
        "From": f"Dana Reyes <{DANA}>",
        "To": "alice@prospect.example",
        "Subject": "Re: Pricing",
        "Message-ID": f"<relight-{key}@acmesoft.example>",
        "X-Relight-Key": key,
        "Content-Type": "text/plain; charset=utf-8",
    }
    return ("".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n" + body).encode()


def _draft_files(root: Path) -> list[Path]:
    return sorted(p for part in ("cur", "new", "tmp") for p in (root / ".Drafts" / part).iterdir())


def test_write_draft_delivers_into_drafts_cur_flagged_draft_and_seen(tree: Path) -> None:
    """A draft lands in Drafts/cur flagged D and S, with LF endings, and syncs back."""
    raw = _draft("dana/alice/1")
    connector = _connector(tree)
    stored = connector.write_draft("dana/alice/1", raw)
    written = tree / ".Drafts" / "cur" / f"{stored.remote_id}:2,DS"
    assert written.read_bytes() == raw.replace(b"\r\n", b"\n")
    assert oct(written.stat().st_mode & 0o777) == "0o600"
    assert not any((tree / ".Drafts" / "tmp").iterdir())
    assert stored.message_id == "relight-dana/alice/1@acmesoft.example"
    assert stored.digest == digest_of(raw)
    facts = _fetched(_sync(connector, DRAFTS)[0])[stored.remote_id]
    assert (facts.subject, facts.message_id) == ("Re: Pricing", stored.message_id)


def test_write_draft_is_idempotent_per_key(tree: Path) -> None:
    """A second write with a key returns the first draft, even renamed, and writes nothing."""
    connector = _connector(tree)
    first = connector.write_draft("k1", _draft("k1"))
    files = _draft_files(tree)
    assert connector.write_draft("k1", _draft("k1", "another text\n")) == first
    assert _draft_files(tree) == files
    path = tree / ".Drafts" / "cur" / f"{first.remote_id}:2,DS"
    path.rename(path.with_name(f"{first.remote_id},U=3:2,DS"))
    assert connector.write_draft("k1", _draft("k1")) == first
    second = connector.write_draft("k2", _draft("k2"))
    assert second.remote_id != first.remote_id
    assert len(_draft_files(tree)) == len(files) + 1


def test_write_draft_refuses_a_message_without_its_key(tree: Path) -> None:
    """The raw message must carry the X-Relight-Key it is written under."""
    connector = _connector(tree)
    with pytest.raises(ValueError, match="X-Relight-Key"):
        connector.write_draft("k1", _draft("other"))
    with pytest.raises(ValueError, match="one line"):
        connector.write_draft("k1\n", _draft("k1"))


def test_write_draft_without_a_drafts_folder_is_a_protocol_error(tmp_path: Path) -> None:
    """A tree with no Drafts folder is reported, and nothing is created in it."""
    root = _maildir(tmp_path / "Mail")
    connector = _connector(root)
    with pytest.raises(ProtocolError, match="no Drafts folder"):
        connector.write_draft("k", _draft("k"))
    assert connector.find_drafts() == {}
    assert sorted(p.name for p in root.iterdir()) == ["cur", "new", "tmp"]


def test_find_drafts_keys_digests_and_edits(tree: Path) -> None:
    """find_drafts lists keyed drafts; a CRLF re-save keeps the digest, an edit changes it."""
    connector = _connector(tree)
    stored = connector.write_draft("k1", _draft("k1"))
    found = connector.find_drafts()
    assert found == {"k1": stored}  # the rep's own draft carries no key

    path = tree / ".Drafts" / "cur" / f"{stored.remote_id}:2,DS"
    resaved = tree / ".Drafts" / "cur" / "1700000020.M20P1.mua:2,DS"
    resaved.write_bytes(path.read_bytes().replace(b"\n", b"\r\n") + b"\r\n")
    path.unlink()
    again = connector.find_drafts()["k1"]
    assert (again.remote_id, again.digest) == ("1700000020.M20P1.mua", stored.digest)

    resaved.write_bytes(resaved.read_bytes().replace(b"just checking", b"only checking"))
    assert connector.find_drafts()["k1"].digest != stored.digest


def test_digest_ignores_headers_line_endings_and_trailing_space() -> None:
    """digest_of reads the body only, LF or CRLF alike, trailing whitespace aside."""
    lf = b"Subject: a\nX-Relight-Key: k\n\nHello\nthere\n"
    assert digest_of(lf) == digest_of(b"Subject: b\r\n\r\nHello\r\nthere  \r\n\r\n")
    assert digest_of(lf) != digest_of(b"Subject: a\n\nHello\nthere!\n")
    assert digest_of(lf) != digest_of(b"Subject: a\n\nHello\n\nthere\n")


def test_delete_draft_removes_relight_drafts_only(tree: Path) -> None:
    """Relight drafts are deleted, the rep's own are refused, a gone one is nothing to do."""
    connector = _connector(tree)
    stored = connector.write_draft("k1", _draft("k1"))
    own = tree / ".Drafts" / "cur" / "1700000004.M4P1.host:2,D"
    with pytest.raises(DraftRefused, match=r"1700000004\.M4P1\.host"):
        connector.delete_draft("1700000004.M4P1.host")
    assert own.exists()
    connector.delete_draft(stored.remote_id)
    assert connector.find_drafts() == {}
    assert [p.name for p in (tree / ".Drafts" / "cur").iterdir()] == [own.name]
    connector.delete_draft(stored.remote_id)


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value).astimezone(UTC)


# -- end to end -------------------------------------------------------------------------------


@pytest.fixture
def maildir_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A config whose one account is a Maildir: Dana wrote to Alice, Alice replied, Dana
    followed up and Alice went silent; Dana also wrote once to Bob."""
    monkeypatch.delenv("RELIGHT_CONFIG", raising=False)
    root = _maildir(tmp_path / "Mail")
    sent = _maildir(root / ".Sent")
    _maildir(root / ".Drafts")
    base = {"From": f"Dana Reyes <{DANA}>", "To": "Alice Martin <alice@prospect.example>"}
    _put(sent, "1.M1P1.h:2,S", _mail({
        **base, "Subject": "Pricing", "Message-ID": "<p1@acmesoft.example>",
        "Date": "Mon, 02 Nov 2026 10:00:00 +0000",
    }))  # fmt: skip
    _put(root, "2.M2P1.h:2,S", _mail({
        "From": "Alice Martin <alice@prospect.example>", "To": DANA,
        "Subject": "Re: Pricing", "Message-ID": "<r1@prospect.example>",
        "In-Reply-To": "<p1@acmesoft.example>", "Date": "Tue, 03 Nov 2026 09:00:00 +0000",
    }, "Looks good, we'll discuss it with the team.\n"))  # fmt: skip
    _put(sent, "3.M3P1.h:2,S", _mail({
        **base, "Subject": "Re: Pricing", "Message-ID": "<p2@acmesoft.example>",
        "In-Reply-To": "<r1@prospect.example>", "Date": "Wed, 04 Nov 2026 10:00:00 +0000",
    }))  # fmt: skip
    _put(sent, "4.M4P1.h:2,S", _mail({
        "From": DANA, "To": "bob@other.example", "Subject": "Intro",
        "Message-ID": "<i1@acmesoft.example>", "Date": "Thu, 05 Nov 2026 10:00:00 +0000",
    }))  # fmt: skip
    config = tmp_path / "relight.toml"
    config.write_text(f"""
[daemon]
state_dir = "{tmp_path}/state"
database = "sqlite:///{tmp_path}/state/relight.db"
log_format = "json"

[[accounts]]
name = "dana"
kind = "maildir"
rep_name = "Dana Reyes"
addresses = ["{DANA}"]
path = "{root}"
""")
    (tmp_path / "state").mkdir()
    return config


def test_relight_sync_and_report_on_a_maildir_account(
    maildir_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """relight sync stores a Maildir account; relight report shows Alice ghosted, Bob cold."""
    assert main(["--config", str(maildir_config), "sync"]) == 0
    assert main(["--config", str(maildir_config), "sync"]) == 0
    capsys.readouterr()
    now = "2026-11-12T12:00:00+00:00"
    assert main(["report", "--config", str(maildir_config), "--format", "json", "--now", now]) == 0
    rows = {row["prospect"]: row for row in json.loads(capsys.readouterr().out)}
    assert set(rows) == {"alice@prospect.example", "bob@other.example"}
    alice = rows["alice@prospect.example"]
    assert (alice["account"], alice["status"], alice["name"]) == ("dana", "ghosted", "Alice Martin")
    assert _at(alice["last_inbound_at"]) == datetime(2026, 11, 3, 9, tzinfo=UTC)
    assert _at(alice["last_outbound_at"]) == datetime(2026, 11, 4, 10, tzinfo=UTC)
    assert rows["bob@other.example"]["status"] == "cold"


def test_relight_sync_of_a_missing_maildir_exits_1_without_traceback(
    maildir_config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A maildir path that is gone fails the account (exit 1) with a message naming it."""
    (tmp_path / "Mail").rename(tmp_path / "Moved")
    assert main(["--config", str(maildir_config), "sync"]) == 1
    err = capsys.readouterr().err
    assert "does not exist" in err
    assert str(tmp_path / "Mail") in err
    assert "Traceback" not in err
