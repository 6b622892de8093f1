"""ImapConnector against a private Dovecot on loopback: discovery, sync, safety, errors."""

from __future__ import annotations

import socket
from collections.abc import Iterable
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path

import pytest

from connectors.base import (
    AuthenticationError,
    Change,
    Checkpoint,
    Fetched,
    FolderRole,
    MessageFacts,
    Present,
    ProtocolError,
    RemoteFolder,
    Reset,
    TransientError,
)
from connectors.imap import HEADER_FIELDS, ImapConnector, ImapCursor, choose_folders
from connectors.imap_fetch import (
    fetch_headers,
    header_fetch_items,
    parse_sequence_set,
    sequence_set,
)
from tests.conftest import DovecotUser, start_dovecot
from tests.support.dovecot import DovecotServer

pytestmark = pytest.mark.dovecot

DATA = Path(__file__).parent / "data"
REP = "dana@acmesoft.example"
INBOX = RemoteFolder("INBOX", FolderRole.INBOX)
SENT = RemoteFolder("Sent", FolderRole.SENT)
SEEN, FLAGGED = b"\\Seen", b"\\Flagged"


def message(
    subject: str,
    *,
    sender: str = "Pat Prospect <pat@prospect.example>",
    to: str = f"Dana Reyes <{REP}>",
    message_id: str | None = None,
    in_reply_to: str | None = None,
    headers: Iterable[str] = (),
    body: str = "Hello Dana,\r\n\r\nSounds good.\r\n",
) -> bytes:
    """A small RFC 5322 message with CRLF line endings."""
    lines = [
        f"From: {sender}",
        f"To: {to}",
        f"Subject: {subject}",
        f"Date: {format_datetime(datetime(2024, 3, 5, 14, 30, tzinfo=UTC))}",
        f"Message-ID: <{message_id or subject.replace(' ', '.')}@prospect.example>",
    ]
    if in_reply_to:
        lines += [f"In-Reply-To: <{in_reply_to}>", f"References: <{in_reply_to}>"]
    lines += [*headers, "Content-Type: text/plain; charset=utf-8", ""]
    return ("\r\n".join(lines) + "\r\n" + body).encode()


@pytest.fixture
def box(dovecot_user: DovecotUser) -> DovecotUser:
    """An empty mailbox of this test's own on the session Dovecot."""
    return dovecot_user


@pytest.fixture
def dana(dovecot: DovecotServer) -> DovecotUser:
    """The session Dovecot's shared user, for tests that only read."""
    return DovecotUser(dovecot, "dana")


def connect(box: DovecotUser, **options: object) -> ImapConnector:
    """A TLS connector for the box's user that trusts the server's certificate."""
    settings: dict[str, object] = {
        "username": box.name,
        "password": box.password,
        "ca_file": box.server.cert_file,
        "own_addresses": frozenset({REP}),
    }
    settings.update(options)
    return ImapConnector("localhost", box.server.tls_port, **settings)  # type: ignore[arg-type]


def sync(box: DovecotUser, folder: RemoteFolder = INBOX, cursor: str | None = None,
         **options: object) -> list[Change]:  # fmt: skip
    with connect(box, **options) as connector:
        return list(connector.changes(folder, cursor))


def append(box: DovecotUser, raw: bytes, folder: str = "INBOX", **options: object) -> int:
    uid = box.server.append(box.name, folder, raw, **options)  # type: ignore[arg-type]
    assert uid is not None
    return uid


def fetched(changes: Iterable[Change]) -> list[MessageFacts]:
    return [facts for change in changes if isinstance(change, Fetched) for facts in change.messages]


def cursor_of(changes: list[Change]) -> str:
    assert isinstance(changes[-1], Checkpoint), "a sync always ends with a checkpoint"
    return changes[-1].cursor


# -- folders --------------------------------------------------------------------------------


def test_folders_found_by_special_use(dana: DovecotUser) -> None:
    """INBOX, Sent and Drafts are found by their RFC 6154 attributes."""
    with connect(dana) as connector:
        assert connector.folders() == [
            INBOX,
            RemoteFolder("Sent", FolderRole.SENT),
            RemoteFolder("Drafts", FolderRole.DRAFTS),
        ]


def test_special_use_attribute_beats_a_folder_name() -> None:
    """A folder named Sent without the attribute loses to the folder that carries \\Sent."""
    server = start_dovecot(special_use={"Sent": "", "Gesendet": "\\Sent", "Drafts": "\\Drafts"})
    try:
        with connect(DovecotUser(server, "dana")) as connector:
            roles = {folder.role: folder.name for folder in connector.folders()}
        assert roles[FolderRole.SENT] == "Gesendet"
    finally:
        server.stop()


def test_folders_found_by_name_without_attributes() -> None:
    """Without special-use attributes, localized names (Sent Items, Entwürfe) are used."""
    server = start_dovecot(special_use={"Sent Items": "", "Entwürfe": "", "Archive": ""})
    try:
        with connect(DovecotUser(server, "dana")) as connector:
            assert connector.folders() == [
                INBOX,
                RemoteFolder("Sent Items", FolderRole.SENT),
                RemoteFolder("Entwürfe", FolderRole.DRAFTS),
            ]
    finally:
        server.stop()


def test_missing_folders_are_not_returned() -> None:
    """A server with neither Sent nor Drafts yields INBOX only."""
    server = start_dovecot(special_use={"Archive": ""})
    try:
        with connect(DovecotUser(server, "dana")) as connector:
            assert connector.folders() == [INBOX]
    finally:
        server.stop()


def test_name_fallback_handles_prefixes_and_gmail() -> None:
    """Names match case-insensitively under INBOX./INBOX/ and [Gmail]/ prefixes."""
    listing = [
        (frozenset({"\\hasnochildren"}), ".", "INBOX"),
        (frozenset({"\\hasnochildren"}), ".", "INBOX.Gesendete Objekte"),
        (frozenset({"\\hasnochildren"}), ".", "INBOX.BROUILLONS"),
        (frozenset({"\\noselect"}), "/", "[Gmail]"),
    ]
    assert choose_folders(listing)[1:] == [
        RemoteFolder("INBOX.Gesendete Objekte", FolderRole.SENT),
        RemoteFolder("INBOX.BROUILLONS", FolderRole.DRAFTS),
    ]
    gmail = [
        (frozenset(), "/", "INBOX"),
        (frozenset({"\\noselect"}), "/", "[Google Mail]"),
        (frozenset(), "/", "[Google Mail]/Sent Mail"),
        (frozenset({"\\noselect"}), "/", "[Google Mail]/Drafts"),
    ]
    assert choose_folders(gmail)[1:] == [RemoteFolder("[Google Mail]/Sent Mail", FolderRole.SENT)]


def test_header_field_constant_covers_the_spec() -> None:
    """The header FETCH asks for the SPEC section 2 fields and every classification header."""
    for name in ("MESSAGE-ID", "IN-REPLY-TO", "REFERENCES", "FROM", "TO", "CC", "DATE"):
        assert name in HEADER_FIELDS
    assert {"LIST-ID", "AUTO-SUBMITTED", "CONTENT-TYPE", "RETURN-PATH"} <= set(HEADER_FIELDS)


# -- syncing --------------------------------------------------------------------------------


def test_first_sync_yields_header_facts(box: DovecotUser) -> None:
    """A first sync yields each message's header facts with its UID, size and arrival."""
    arrived = datetime(2024, 3, 5, 15, 0, tzinfo=UTC)
    uid = append(
        box, message("Pricing question", headers=["Cc: Lee <LEE@Acme.example>"]), when=arrived
    )  # fmt: skip
    changes = sync(box)
    assert isinstance(changes[0], Fetched)
    [facts] = fetched(changes)
    assert facts.remote_id == str(uid)
    assert facts.message_id == "Pricing.question@prospect.example"
    assert facts.subject == "Pricing question"
    assert facts.sender is not None
    assert facts.sender.email == "pat@prospect.example"
    assert facts.sender.name == "Pat Prospect"
    assert [a.email for a in facts.to] == [REP]
    assert [a.email for a in facts.cc] == ["lee@acme.example"]
    assert facts.date == datetime(2024, 3, 5, 14, 30, tzinfo=UTC)
    assert facts.received_at == arrived
    assert facts.size is not None
    assert facts.size > 100
    assert facts.header("content-type") == "text/plain; charset=utf-8"
    assert facts.excerpt == "Hello Dana,\n\nSounds good."


def test_incremental_sync_fetches_new_mail_once(box: DovecotUser) -> None:
    """After a sync, only messages that arrived since are fetched, each exactly once."""
    append(box, message("first"))
    cursor = cursor_of(sync(box))
    new_uid = append(box, message("second"))
    changes = sync(box, cursor=cursor)
    assert [f.remote_id for f in fetched(changes)] == [str(new_uid)]
    assert fetched(sync(box, cursor=cursor_of(changes))) == []


def test_unchanged_poll_fetches_nothing(box: DovecotUser) -> None:
    """Polling an unchanged folder yields a single checkpoint and no messages."""
    for number in range(3):
        append(box, message(f"hello {number}"))
    cursor = cursor_of(sync(box))
    changes = sync(box, cursor=cursor)
    assert changes == [Checkpoint(cursor)]


def test_flag_change_only_is_not_a_fetch(box: DovecotUser) -> None:
    """A flag change elsewhere (HIGHESTMODSEQ moves) fetches nothing and moves the cursor."""
    uid = append(box, message("flag me"))
    cursor = cursor_of(sync(box))
    with box.server.client(box.name) as client:  # another mail client marks it read
        client.select_folder("INBOX")
        client.add_flags([uid], [SEEN])
    changes = sync(box, cursor=cursor)
    assert len(changes) == 1
    assert isinstance(changes[0], Checkpoint)
    new, old = ImapCursor.loads(changes[0].cursor), ImapCursor.loads(cursor)
    assert new is not None
    assert old is not None
    assert new.highestmodseq != old.highestmodseq
    assert new.uidnext == old.uidnext


def test_uidvalidity_change_resets_and_refetches(box: DovecotUser) -> None:
    """A new UIDVALIDITY yields Reset first, then every message again."""
    for number in range(3):
        append(box, message(f"note {number}"))
    cursor = cursor_of(sync(box))
    box.server.reset_uidvalidity(box.name, "INBOX")
    changes = sync(box, cursor=cursor)
    assert isinstance(changes[0], Reset)
    assert sorted(f.subject for f in fetched(changes)) == ["note 0", "note 1", "note 2"]
    new = ImapCursor.loads(cursor_of(changes))
    old = ImapCursor.loads(cursor)
    assert new is not None
    assert old is not None
    assert new.uidvalidity != old.uidvalidity


def test_expunge_yields_present_without_the_uid(box: DovecotUser) -> None:
    """Expunged messages are reported through Present, which lists only what remains."""
    uids = [append(box, message(f"m{n}")) for n in range(4)]
    cursor = cursor_of(sync(box))
    box.server.expunge(box.name, "INBOX", [uids[1]])
    newest = append(box, message("m4"))
    changes = sync(box, cursor=cursor)
    [present] = [change for change in changes if isinstance(change, Present)]
    assert present.remote_ids == {str(uid) for uid in (*uids[:1], *uids[2:], newest)}
    assert [f.remote_id for f in fetched(changes)] == [str(newest)]
    assert sync(box, cursor=cursor_of(changes)) == [Checkpoint(cursor_of(changes))]


def test_batches_checkpoint_and_resume_mid_folder(box: DovecotUser) -> None:
    """batch_size=3 over 10 messages: 4 Fetched/Checkpoint pairs; a middle cursor resumes."""
    box.server.append_many(box.name, "INBOX", [message(f"b{n}") for n in range(10)])
    changes = sync(box, batch_size=3)
    kinds = [type(change).__name__ for change in changes]
    assert kinds == ["Fetched", "Checkpoint"] * 4
    sizes = [len(c.messages) for c in changes if isinstance(c, Fetched)]
    assert sizes == [3, 3, 3, 1]
    middle = changes[3]
    assert isinstance(middle, Checkpoint)
    resumed = sync(box, cursor=middle.cursor, batch_size=3)
    assert [f.subject for f in fetched(resumed)] == [f"b{n}" for n in range(6, 10)]
    assert not any(isinstance(change, Reset | Present) for change in resumed)
    assert cursor_of(resumed) == cursor_of(changes)


def test_junk_cursor_resets_and_resyncs(box: DovecotUser) -> None:
    """A cursor that is not ours yields Reset and a full sync instead of an error."""
    append(box, message("only"))
    changes = sync(box, cursor="not json")
    assert isinstance(changes[0], Reset)
    assert [f.subject for f in fetched(changes)] == ["only"]


def test_minimal_server_without_extensions() -> None:
    """Without ESEARCH, CONDSTORE, SPECIAL-USE or UNSELECT: same sync, poll and expunge."""
    server = start_dovecot(extra_config="imap_capability = IMAP4rev1 LITERAL+ UIDPLUS")
    try:
        box = DovecotUser(server, "dana")
        uids = [append(box, message(f"x{n}")) for n in range(3)]
        with connect(box) as connector:
            assert [f.role for f in connector.folders()] == list(FolderRole)
            first = list(connector.changes(INBOX, None))
            assert len(fetched(first)) == 3
            assert list(connector.changes(INBOX, cursor_of(first))) == [
                Checkpoint(cursor_of(first))
            ]
        server.expunge("dana", "INBOX", [uids[0]])
        changes = sync(box, cursor=cursor_of(first))
        assert Present(frozenset({str(uids[1]), str(uids[2])})) in changes
    finally:
        server.stop()


def test_sync_never_changes_flags(box: DovecotUser) -> None:
    """A full sync, excerpts and reports included, leaves every flag (\\Seen too) as it was."""
    server = box.server
    append(box, message("unread reply", in_reply_to="q1@acmesoft.example"))
    append(box, message("read", in_reply_to="q2@acmesoft.example"), flags=[SEEN, FLAGGED])
    server.write_maildir(box.name, "INBOX", [(DATA / "dsn-multi-recipient.eml").read_bytes()],
                         seen=False)  # fmt: skip
    append(box, message("mine", sender=REP, to="pat@prospect.example"), folder="Sent")
    before = {folder: server.flags(box.name, folder) for folder in ("INBOX", "Sent")}
    with connect(box) as connector:
        inbox = fetched(connector.changes(INBOX, None))
        fetched(connector.changes(SENT, None))
    assert sum(1 for f in inbox if f.excerpt) == 2
    assert sum(1 for f in inbox if f.report) == 1
    assert {folder: server.flags(box.name, folder) for folder in ("INBOX", "Sent")} == before
    assert any(SEEN not in flags for flags in before["INBOX"].values())


# -- excerpts and reports -------------------------------------------------------------------


def test_excerpt_for_inbound_mail_but_lists_and_own_mail(box: DovecotUser) -> None:
    """Inbound mail gets an excerpt (a reply in a new thread, an out-of-office naming its
    return date); list mail and the rep's own mail do not."""
    reply_body = (
        "Thanks Dana, we will discuss it with the team next week.\r\n"
        "\r\n"
        "On Tue, 5 Mar 2024 at 10:00, Dana Reyes <dana@acmesoft.example> wrote:\r\n"
        "> Would Tuesday work?\r\n"
    )
    append(box, message("reply", in_reply_to="d1@acmesoft.example", body=reply_body))
    append(box, message(
        "news", in_reply_to="d2@acmesoft.example", sender="news@vendor.example",
        headers=["List-Unsubscribe: <mailto:unsub@vendor.example>"],
    ))  # fmt: skip
    append(box, message("own", in_reply_to="d3@acmesoft.example", sender=f"Dana <{REP.upper()}>"))
    append(box, message("new thread", body="Sorry for the silence, still interested."))
    append(box, message(
        "Automatic reply: pricing", headers=["Auto-Submitted: auto-replied"],
        body="I am out of the office until Monday 11 March.",
    ))  # fmt: skip
    excerpts = {f.subject: f.excerpt for f in fetched(sync(box))}
    assert excerpts == {
        "reply": "Thanks Dana, we will discuss it with the team next week.",
        "news": None,
        "own": None,
        "new thread": "Sorry for the silence, still interested.",
        "Automatic reply: pricing": "I am out of the office until Monday 11 March.",
    }


def test_excerpt_decodes_transfer_encoding_and_charset(box: DovecotUser) -> None:
    """A quoted-printable latin-1 multipart reply is decoded; excerpt_chars caps it."""
    raw = (
        b"From: Jorg <jorg@kunde.example>\r\nTo: dana@acmesoft.example\r\nSubject: Re: Angebot\r\n"
        b"Message-ID: <r1@kunde.example>\r\nIn-Reply-To: <a1@acmesoft.example>\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=XX\r\n\r\n"
        b"--XX\r\nContent-Type: text/plain; charset=iso-8859-1\r\n"
        b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
        b"Gr=FC=DFe, wir melden uns n=E4chste Woche.\r\n\r\n--XX\r\n"
        b"Content-Type: text/html; charset=utf-8\r\n\r\n<p>html</p>\r\n--XX--\r\n"
    )
    append(box, raw)
    [facts] = fetched(sync(box, excerpt_chars=20))
    assert facts.excerpt == "Grüße, wir melden"  # cut at a word boundary
    [disabled] = fetched(sync(box, excerpt_chars=0))
    assert disabled.excerpt is None


def test_excerpt_skips_attachments_and_forwarded_messages(box: DovecotUser) -> None:
    """The excerpt skips HTML-only alternatives, text attachments and attached messages."""
    raw = (
        "From: Pat <pat@prospect.example>\r\nTo: dana@acmesoft.example\r\n"
        "Subject: Re: contract\r\nMessage-ID: <n1@prospect.example>\r\n"
        "In-Reply-To: <c1@acmesoft.example>\r\nMIME-Version: 1.0\r\n"
        "Content-Type: multipart/mixed; boundary=OUT\r\n\r\n"
        "--OUT\r\nContent-Type: multipart/alternative; boundary=ALT\r\n\r\n"
        "--ALT\r\nContent-Type: text/html\r\n\r\n<p>html</p>\r\n--ALT--\r\n"
        '--OUT\r\nContent-Type: text/plain; name="Grüße \\"v2\\".txt"\r\n'
        'Content-Disposition: attachment; filename="notes.txt"\r\n\r\nattached notes\r\n'
        "--OUT\r\nContent-Type: message/rfc822\r\n\r\n"
        "From: someone@else.example\r\nSubject: fwd\r\n\r\nforwarded text\r\n"
        "--OUT\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nSigned copy attached.\r\n"
        "--OUT--\r\n"
    ).encode()
    append(box, raw)
    [facts] = fetched(sync(box))
    assert facts.excerpt == "Signed copy attached."


def test_abandoned_fetch_leaves_the_session_in_step(box: DovecotUser) -> None:
    """A lean FETCH left half-read is drained, so the next command gets its own answer."""
    box.server.append_many(box.name, "INBOX", [message(f"s{n}") for n in range(20)])
    with connect(box) as connector:
        connector.client.select_folder("INBOX", readonly=True)
        imap = connector.client._imap
        reader = fetch_headers(imap, 1, 20, header_fetch_items())
        assert next(reader).uid == 1
        reader.close()
        assert [raw.uid for raw in fetch_headers(imap, 5, 7, header_fetch_items())] == [5, 6, 7]
        assert connector.client.search("ALL")[:2] == [1, 2]


def test_sync_left_between_batches_leaves_the_session_in_step(box: DovecotUser) -> None:
    """The next batch's header FETCH, already sent when a batch is handed over, is drained
    when the caller stops there, so the session answers the next command correctly."""
    box.server.append_many(box.name, "INBOX", [message(f"p{n}") for n in range(10)])
    with connect(box, batch_size=3) as connector:
        changes = connector.changes(INBOX, None)
        first = next(changes)
        assert isinstance(first, Fetched)
        assert [facts.subject for facts in first.messages] == ["p0", "p1", "p2"]
        changes.close()
        imap = connector.client._imap
        assert [raw.uid for raw in fetch_headers(imap, 5, 7, header_fetch_items())] == [5, 6, 7]
        assert connector.client.search("ALL")[:2] == [1, 2]


def test_batches_of_replies_get_their_excerpts_in_order(box: DovecotUser) -> None:
    """Over several batches, each reply keeps its own excerpt: part 1 read with the
    structure, and a text elsewhere (here part 2) in a second FETCH."""
    alternative = (
        "Content-Type: multipart/alternative; boundary=ALT",
        "MIME-Version: 1.0",
    )
    raws = []
    for n in range(7):
        if n % 3 == 2:
            body = (
                "--ALT\r\nContent-Type: text/html\r\n\r\n<p>html</p>\r\n"
                f"--ALT\r\nContent-Type: text/plain\r\n\r\nText {n} second.\r\n--ALT--\r\n"
            )
            raw = message(f"r{n}", in_reply_to=f"q{n}@acmesoft.example", body=body)
            raw = raw.replace(b"Content-Type: text/plain; charset=utf-8\r\n", b"")
            head, rest = raw.split(b"\r\n\r\n", 1)
            raw = head + ("\r\n" + "\r\n".join(alternative)).encode() + b"\r\n\r\n" + rest
        else:
            raw = message(f"r{n}", in_reply_to=f"q{n}@acmesoft.example", body=f"Text {n}.\r\n")
        raws.append(raw)
    box.server.append_many(box.name, "INBOX", raws)
    excerpts = {facts.subject: facts.excerpt for facts in fetched(sync(box, batch_size=3))}
    assert excerpts == {
        f"r{n}": f"Text {n} second." if n % 3 == 2 else f"Text {n}." for n in range(7)
    }


def test_sequence_sets_round_trip() -> None:
    """UID lists become compact sequence sets and ESEARCH answers expand back."""
    uids = [1, 2, 3, 7, 9, 10, 4000]
    assert sequence_set(uids) == b"1:3,7,9:10,4000"
    assert list(parse_sequence_set(b"1:3,7,10:9,4000")) == uids


@pytest.mark.parametrize(
    ("sample", "report_type", "action", "recipients"),
    [
        ("dsn-multi-recipient.eml", "delivery-status", "failed",
         ("arathib@vnet.ibm.com", "johnh@hpnjld.njd.hp.com", "wsnell@sdcc13.ucsd.edu")),
        ("mdn-displayed.eml", "disposition-notification", None,
         ("joe_recipient@example.com",)),
    ],
)  # fmt: skip
def test_multipart_report_is_parsed(
    box: DovecotUser,
    sample: str,
    report_type: str,
    action: str | None,
    recipients: tuple[str, ...],
) -> None:
    """A real DSN / MDN yields its report type, first Action and Final-Recipients."""
    box.server.write_maildir(box.name, "INBOX", [(DATA / sample).read_bytes()])
    [facts] = fetched(sync(box))
    assert facts.report is not None
    assert facts.report.report_type == report_type
    assert facts.report.action == action
    assert facts.report.recipients == recipients
    assert facts.excerpt is None


# -- security and errors --------------------------------------------------------------------


def test_tls_rejects_untrusted_certificate(dana: DovecotUser) -> None:
    """Without ca_file the self-signed certificate is refused: ProtocolError, not retried."""
    with pytest.raises(ProtocolError, match="certificate"), connect(dana, ca_file=None):
        pass


def test_tls_accepts_certificate_from_ca_file(dana: DovecotUser) -> None:
    """With ca_file naming the server's certificate, TLS verifies and login succeeds."""
    with connect(dana) as connector:
        assert connector.folders()[0] == INBOX


def test_starttls_on_plain_port(dana: DovecotUser) -> None:
    """security='starttls' upgrades the plain port and still verifies the certificate."""
    connector = connect(dana, security="starttls")
    connector.port = dana.server.port
    with connector:
        assert connector.folders()[0] == INBOX
    untrusted = connect(dana, security="starttls", ca_file=None)
    untrusted.port = dana.server.port
    with pytest.raises(ProtocolError, match="certificate"), untrusted:
        pass


def test_starttls_refused_when_not_offered() -> None:
    """A server without STARTTLS is refused before the password is sent."""
    server = start_dovecot(extra_config="ssl = no")
    try:
        connector = ImapConnector(
            "127.0.0.1", server.port, username="dana", password="dana-secret",
            security="starttls",
        )  # fmt: skip
        with pytest.raises(ProtocolError, match="STARTTLS"), connector:
            pass
    finally:
        server.stop()


def test_unreadable_ca_file_is_protocol_error(tmp_path: Path) -> None:
    """A tls_ca_file that is missing or not a certificate is a ProtocolError naming it."""
    for ca_file in (tmp_path / "missing.pem", tmp_path / "junk.pem"):
        if ca_file.name == "junk.pem":
            ca_file.write_text("not a certificate")
        connector = ImapConnector("localhost", 993, username="u", password="p", ca_file=ca_file)
        with pytest.raises(ProtocolError, match=ca_file.name), connector:
            pass


def test_plain_connection_is_loopback_only() -> None:
    """security='none' is refused for a host that is not loopback."""
    with pytest.raises(ValueError, match="loopback"):
        ImapConnector("imap.example.com", 143, username="u", password="p", security="none")
    ImapConnector("127.0.0.1", 143, username="u", password="p", security="none")


def test_wrong_password_is_authentication_error() -> None:
    """A refused LOGIN is an AuthenticationError whose message never holds the password."""
    # A server of its own: Dovecot slows every later login from an IP that failed one.
    server = start_dovecot(extra_config="auth_failure_delay = 0")
    try:
        wrong = connect(DovecotUser(server, "dana"), password="hunter2-wrong")
        with pytest.raises(AuthenticationError) as caught, wrong:
            pass
    finally:
        server.stop()
    assert "hunter2-wrong" not in str(caught.value)
    assert "'dana'" in str(caught.value)


def test_non_ascii_password_logs_in() -> None:
    """A password with umlauts logs in (SASL PLAIN in UTF-8; LOGIN is ASCII-only)."""
    server = start_dovecot(users={"jorg": "Grüße-2024"})
    try:
        with connect(DovecotUser(server, "jorg")) as connector:
            assert connector.folders()[0] == INBOX
    finally:
        server.stop()


def test_closed_port_is_transient() -> None:
    """Nothing listening: a TransientError (worth retrying later)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    connector = ImapConnector("127.0.0.1", port, username="u", password="p", security="none",
                              timeout=2)  # fmt: skip
    with pytest.raises(TransientError), connector:
        pass


def test_missing_folder_is_protocol_error(dana: DovecotUser) -> None:
    """Syncing a folder the server does not have is a ProtocolError naming the folder."""
    nowhere = RemoteFolder("Nowhere", FolderRole.SENT)
    with connect(dana) as connector, pytest.raises(ProtocolError, match="Nowhere"):
        list(connector.changes(nowhere, None))


def test_dropped_connection_is_transient() -> None:
    """A server that goes away mid-session gives a TransientError, not a crash."""
    server = start_dovecot()
    try:
        box = DovecotUser(server, "dana")
        append(box, message("x"))
        with connect(box) as connector:
            connector.folders()
            server.stop()
            with pytest.raises(TransientError):
                list(connector.changes(INBOX, None))
    finally:
        server.stop()
