"""Relight's drafts in a real Dovecot Drafts folder: written once, found, retracted safely."""

from __future__ import annotations

import pytest

from connectors.base import DraftFolder, DraftRefused, ProtocolError, digest_of
from connectors.imap import ImapConnector
from tests.conftest import DovecotUser

pytestmark = pytest.mark.timeout(60)

KEY = "0123456789abcdef0123456789abcdef"


def draft(key: str = KEY, body: str = "Hi Alice,\r\n\r\nA short note.\r\n") -> bytes:
    return (
        "From: Dana Reyes <dana@acmesoft.example>\r\n"
        "To: Alice Doe <alice@bigcorp.example>\r\n"
        "Subject: Re: Pricing\r\n"
        f"Message-ID: <relight.{key}@acmesoft.example>\r\n"
        "In-Reply-To: <r1@bigcorp.example>\r\n"
        f"X-Relight-Key: {key}\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "\r\n" + body
    ).encode()


def rep_draft() -> bytes:
    return (
        b"From: dana@acmesoft.example\r\nTo: bob@else.example\r\nSubject: my own draft\r\n"
        b"Message-ID: <own@acmesoft.example>\r\n\r\nhalf-written\r\n"
    )


def flags(box: DovecotUser) -> dict[int, set[bytes]]:
    """UID -> flags in Drafts, without \\Recent (which only says which session saw it first)."""
    found = box.server.flags(box.name, "Drafts")
    return {uid: set(values) - {b"\\Recent"} for uid, values in found.items()}


def connect(box: DovecotUser) -> ImapConnector:
    return ImapConnector(
        "localhost",
        box.server.tls_port,
        username=box.name,
        password=box.password,
        ca_file=box.server.cert_file,
    )


def test_a_draft_is_appended_once_flagged_draft_and_seen(dovecot_user: DovecotUser) -> None:
    """write_draft appends with \\Draft \\Seen and returns the UID; the same key again
    writes nothing and returns the draft already there."""
    with connect(dovecot_user) as connector:
        assert isinstance(connector, DraftFolder)
        first = connector.write_draft(KEY, draft())
        again = connector.write_draft(KEY, draft(body="a different text\r\n"))
        found = connector.find_drafts()
    assert again == first
    assert found == {KEY: first}
    assert first.message_id == f"relight.{KEY}@acmesoft.example"
    assert first.digest == digest_of(draft())
    assert flags(dovecot_user) == {int(first.remote_id): {b"\\Draft", b"\\Seen"}}


def test_find_drafts_skips_the_reps_own_drafts(dovecot_user: DovecotUser) -> None:
    """Only messages carrying X-Relight-Key are Relight's; an edited copy shows a new digest."""
    server, user = dovecot_user.server, dovecot_user.name
    server.append(user, "Drafts", rep_draft(), flags=(b"\\Draft",))
    edited = draft(body="Hi Alice,\r\n\r\nRewritten by Dana.\r\n")
    server.append(user, "Drafts", edited, flags=(b"\\Draft",))
    with connect(dovecot_user) as connector:
        found = connector.find_drafts()
    assert list(found) == [KEY]
    assert found[KEY].digest == digest_of(edited) != digest_of(draft())


def test_retracting_removes_only_that_draft(dovecot_user: DovecotUser) -> None:
    """delete_draft expunges the one UID: the rep's own drafts stay, even one the rep had
    marked \\Deleted without expunging, and their flags are unchanged."""
    server, user = dovecot_user.server, dovecot_user.name
    own = server.append(user, "Drafts", rep_draft(), flags=(b"\\Draft", b"\\Deleted"))
    with connect(dovecot_user) as connector:
        written = connector.write_draft(KEY, draft())
        before = flags(dovecot_user)
        connector.delete_draft(written.remote_id)
        connector.delete_draft(written.remote_id)  # already gone: nothing to do
        assert connector.find_drafts() == {}
    assert flags(dovecot_user) == {own: before[own]} == {own: {b"\\Draft", b"\\Deleted"}}


def test_retracting_refuses_a_message_relight_did_not_write(dovecot_user: DovecotUser) -> None:
    """A UID without an X-Relight-Key header is never deleted."""
    server, user = dovecot_user.server, dovecot_user.name
    own = server.append(user, "Drafts", rep_draft(), flags=(b"\\Draft",))
    assert own is not None
    with connect(dovecot_user) as connector, pytest.raises(DraftRefused):
        connector.delete_draft(str(own))
    assert list(flags(dovecot_user)) == [own]


def test_a_mailbox_without_drafts_folder_is_a_protocol_error(
    dovecot_user: DovecotUser,
) -> None:
    """No Drafts folder (neither special-use nor a known name): a clear error, no write."""
    with connect(dovecot_user) as connector:
        connector.folders = lambda: []  # type: ignore[method-assign]
        with pytest.raises(ProtocolError, match="no Drafts folder"):
            connector.write_draft(KEY, draft())
