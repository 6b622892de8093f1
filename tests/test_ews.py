"""The EWS connector, real exchangelib and all, against the local EWS fake (tests/support)."""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from connectors.base import (
    AuthenticationError,
    Change,
    Checkpoint,
    DraftFolder,
    DraftRefused,
    Fetched,
    FolderRole,
    Present,
    ProtocolError,
    RemoteFolder,
    Reset,
    TransientError,
)
from connectors.ews import EwsConnector, EwsCursor, ews_oauth_scopes, ews_token_source
from connectors.ews_drafts import draft_digest
from daemon.store import Store
from daemon.sync import sync_account
from rules.drafts import Draft, draft_key
from rules.message import Address
from tests.support.ews_fake import EwsFake, FakeItem

pytestmark = pytest.mark.timeout(60)

KIM = "kim@acmesoft.example"
PASSWORD = "kim-s3cret-pw"
PAT = ("Pat Prospect", "pat@bigcorp.example")
INBOX = RemoteFolder("inbox", FolderRole.INBOX)
SENT = RemoteFolder("sentitems", FolderRole.SENT)
DRAFTS = RemoteFolder("drafts", FolderRole.DRAFTS)


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[EwsFake]:
    """An empty mailbox for kim on a fake Exchange of the test's own."""
    with EwsFake(tmp_path, mailbox=KIM, users={"kim": PASSWORD, "app-id": "app-secret"}) as server:
        yield server


@pytest.fixture
def ntlm_fake(tmp_path: Path) -> Iterator[EwsFake]:
    """A fake Exchange that speaks NTLM (pyspnego's acceptor), as on-premises servers do."""
    users = {"ACMESOFT\\kim": PASSWORD}
    with EwsFake(tmp_path, mailbox=KIM, users=users, auth="ntlm") as server:
        yield server


def connect(fake: EwsFake, **options: object) -> EwsConnector:
    settings: dict[str, object] = {
        "auth": "basic",
        "username": "kim",
        "password": PASSWORD,
        "own_addresses": frozenset({KIM}),
        "excerpt_chars": 500,
        "timeout": 10.0,
        "ca_file": fake.ca_file,
    }
    settings.update(options)
    return EwsConnector(fake.url, KIM, **settings)  # type: ignore[arg-type]


def drain(connector: EwsConnector, folder: RemoteFolder, cursor: str | None = None) -> list[Change]:
    return list(connector.changes(folder, cursor))


def fetched(changes: list[Change]) -> list:  # type: ignore[type-arg]
    return [facts for change in changes if isinstance(change, Fetched) for facts in change.messages]


def inbound(fake: EwsFake, subject: str = "Pricing", **fields: object) -> FakeItem:
    settings: dict[str, object] = {
        "subject": subject,
        "sender": PAT,
        "to": [("Kim Ode", KIM)],
        "body": "Thanks Kim, we'll discuss it with the team next week.\n\n-- \nPat",
    }
    settings.update(fields)
    return fake.add("inbox", **settings)


def composed(original: FakeItem | None, *, stage: int = 1, body: str | None = None) -> Draft:
    """A follow-up as rules.drafts composes it, answering `original`."""
    key = draft_key("kim", PAT[1], stage)
    in_reply_to = original.message_id.strip("<>") if original and original.message_id else None
    return Draft(
        key=key,
        message_id=f"relight.{key}@acmesoft.example",
        sender=Address(KIM, "Kim Ode"),
        to=Address(PAT[1], PAT[0]),
        subject="Re: Pricing",
        in_reply_to=in_reply_to,
        references=(in_reply_to,) if in_reply_to else (),
        body=body or "Hi Pat,\n\nno need to reply, but here is the case study.\n\nKim\n",
        date=datetime(2026, 3, 2, 9, 0, tzinfo=UTC),
        account="kim",
        prospect=PAT[1],
        stage=stage,
        playbook="release_pressure",
    )


# -- sync -----------------------------------------------------------------------------------


def test_first_sync_reads_the_facts_of_every_folder(fake: EwsFake) -> None:
    """A first sync yields each folder's messages with ids, thread, addresses, dates,
    classification headers and an excerpt for inbound mail, then one Checkpoint."""
    reply = inbound(
        fake,
        in_reply_to="<first@acmesoft.example>",
        references="<zero@acmesoft.example> <first@acmesoft.example>",
        cc=[("Lee", "lee@bigcorp.example")],
        headers=[("Received", "from mx"), ("X-Auto-Response-Suppress", "All")],
    )
    inbound(fake, "Newsletter", headers=[("List-Id", "<news.bigcorp.example>")], body="Big news")
    fake.add("sentitems", subject="Pricing", sender=("Kim Ode", KIM), to=[PAT], body="Hi Pat")
    with connect(fake) as connector:
        assert connector.folders() == [INBOX, SENT, DRAFTS]
        inbox = drain(connector, INBOX)
        sent = drain(connector, SENT)
    assert [type(change) for change in inbox] == [Fetched, Checkpoint]
    first, newsletter = sorted(fetched(inbox), key=lambda facts: facts.subject)[::-1]
    assert first.remote_id == reply.item_id
    assert first.message_id == reply.message_id.strip("<>")
    assert first.thread_id == reply.conversation_id
    assert first.in_reply_to == "first@acmesoft.example"
    assert first.references == ("zero@acmesoft.example", "first@acmesoft.example")
    assert (first.sender.email, first.sender.name) == (PAT[1], PAT[0])
    assert [a.email for a in first.to] == [KIM]
    assert [a.email for a in first.cc] == ["lee@bigcorp.example"]
    assert first.date == reply.sent
    assert first.received_at == reply.received
    assert first.headers == (("x-auto-response-suppress", "All"),)
    assert first.excerpt == "Thanks Kim, we'll discuss it with the team next week."
    assert first.defects == ()
    assert newsletter.header("list-id") == "<news.bigcorp.example>"
    assert newsletter.excerpt is None
    [outbound] = fetched(sent)
    assert outbound.sender.email == KIM
    assert outbound.excerpt is None
    assert isinstance(sent[-1], Checkpoint)


def test_incremental_sync_fetches_new_items_and_drops_deleted_ones(fake: EwsFake) -> None:
    """From the saved cursor only new items are fetched; a deletion ends the drain with a
    Present of the ids still there; nothing new is one SyncFolderItems and a Checkpoint."""
    kept, gone = inbound(fake, "one"), inbound(fake, "two")
    with connect(fake) as connector:
        cursor = drain(connector, INBOX)[-1]
        assert isinstance(cursor, Checkpoint)
        new = inbound(fake, "three")
        fake.delete(gone.item_id)
        changes = drain(connector, INBOX, cursor.cursor)
        before = len(fake.operations)
        idle = drain(connector, INBOX, changes[-1].cursor)  # type: ignore[union-attr]
    assert [type(change) for change in changes] == [Fetched, Present, Checkpoint]
    assert [facts.remote_id for facts in fetched(changes)] == [new.item_id]
    assert changes[1] == Present(frozenset({kept.item_id, new.item_id}))
    assert [type(change) for change in idle] == [Checkpoint]
    assert fake.operations[before:] == ["SyncFolderItems"]


def test_read_flags_and_edits_are_told_apart(fake: EwsFake) -> None:
    """A ReadFlagChange fetches nothing; an Update (a draft edited) is fetched again."""
    read = inbound(fake)
    draft = fake.add("drafts", subject="my own draft", to=[PAT], is_draft=True, body="x")
    with connect(fake) as connector:
        inbox_cursor = drain(connector, INBOX)[-1]
        drafts_cursor = drain(connector, DRAFTS)[-1]
        assert isinstance(inbox_cursor, Checkpoint)
        assert isinstance(drafts_cursor, Checkpoint)
        fake.mark_read(read.item_id)
        fake.touch(draft.item_id, subject="my own draft, edited")
        sent = len(fake.operations)
        inbox = drain(connector, INBOX, inbox_cursor.cursor)
        assert fake.operations[sent:] == ["SyncFolderItems"]
        drafts = drain(connector, DRAFTS, drafts_cursor.cursor)
    assert [type(change) for change in inbox] == [Checkpoint]
    assert [facts.subject for facts in fetched(drafts)] == ["my own draft, edited"]


def test_a_restart_mid_drain_resumes_from_the_last_full_drain(
    fake: EwsFake, tmp_path: Path
) -> None:
    """A sync that fails between two pages leaves the previous sync state as the cursor;
    the next sync asks again from there and the store ends with each message once."""
    inbound(fake, "first")
    store = Store.open(f"sqlite:///{tmp_path / 'relight.db'}")
    try:
        sync_account(store, "kim", "ews", connect(fake, page_size=2))
        [before] = [f.cursor for f in store.folders("kim") if f.name == "inbox"]
        for number in range(5):
            inbound(fake, f"later {number}")
        fake.fail_next("SyncFolderItems", skip=1)  # the first page goes through
        with pytest.raises(TransientError):
            sync_account(store, "kim", "ews", connect(fake, page_size=2, busy_retries=0))
        [interrupted] = [f.cursor for f in store.folders("kim") if f.name == "inbox"]
        stored_before_restart = store.message_count("kim")
        sync_account(store, "kim", "ews", connect(fake, page_size=2))
        [after] = [f.cursor for f in store.folders("kim") if f.name == "inbox"]
        count = store.message_count("kim")
    finally:
        store.close()
    assert interrupted == before
    assert stored_before_restart == 3  # the first page of the failed drain was stored
    assert after != before
    assert EwsCursor.loads(after or "") is not None
    assert count == 6


def test_a_refused_sync_state_is_a_reset_and_a_full_sync(fake: EwsFake) -> None:
    """A cursor Exchange no longer accepts (ErrorInvalidSyncStateData) gives Reset, then
    every item again; a cursor that is not ours gives Reset too."""
    item = inbound(fake)
    stale = base64.b64encode(json.dumps({"folder": "elsewhere", "position": 0}).encode())
    with connect(fake) as connector:
        refused = drain(connector, INBOX, EwsCursor(stale.decode()).dumps())
        garbage = drain(connector, INBOX, "not a cursor")
    for changes in (refused, garbage):
        assert [type(change) for change in changes] == [Reset, Fetched, Checkpoint]
        assert [facts.remote_id for facts in fetched(changes)] == [item.item_id]


def test_delivery_reports_and_report_items_are_read(fake: EwsFake) -> None:
    """A non-delivery report item yields the failed recipients of its delivery-status
    part and a multipart/report content type, even when Exchange kept no such header."""
    mime = (
        b"From: postmaster@acmesoft.example\r\nTo: kim@acmesoft.example\r\n"
        b"Subject: Undeliverable: Pricing\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain\r\n\r\nDelivery has failed.\r\n"
        b"--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx\r\n\r\n"
        b"Final-Recipient: rfc822; gone@bigcorp.example\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        b"--b--\r\n"
    )
    fake.add(
        "inbox",
        subject="Undeliverable: Pricing",
        item_class="REPORT.IPM.Note.NDR",
        sender=("Microsoft Outlook", "postmaster@acmesoft.example"),
        to=[("Kim", KIM)],
        body="Delivery has failed.",
        mime=mime,
    )
    with connect(fake) as connector:
        [report] = fetched(drain(connector, INBOX))
    assert report.is_report
    assert report.report is not None
    assert (report.report.report_type, report.report.action) == ("delivery-status", "failed")
    assert report.report.recipients == ("gone@bigcorp.example",)
    assert report.excerpt is None


# -- throttling and errors ------------------------------------------------------------------


class Waits:
    """A clock that only moves when the connector waits; records each wait."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.waited: list[float] = []

    def clock(self) -> float:
        return self.now

    def wait(self, seconds: float) -> bool:
        self.waited.append(round(seconds, 3))
        self.now += seconds
        return False


def test_server_busy_waits_the_back_off_exchange_asks_for(fake: EwsFake) -> None:
    """ErrorServerBusy with BackOffMilliseconds: the connector waits that long (not
    exchangelib), then sends the request again and the sync completes."""
    inbound(fake)
    waits = Waits()
    with connect(fake, wait=waits.wait, clock=waits.clock) as connector:
        connector.folders()
        fake.throttle(back_off_ms=1500)
        sent = len(fake.operations)
        changes = drain(connector, INBOX)
    assert waits.waited == [1.5]
    assert fake.operations[sent : sent + 3] == ["SyncFolderItems", "SyncFolderItems", "GetItem"]
    assert [type(change) for change in changes] == [Fetched, Checkpoint]


def test_a_stop_request_cuts_the_back_off_short(fake: EwsFake) -> None:
    """When `wait` reports a stop request, the connector gives up with TransientError."""
    waits: list[float] = []

    def stopped(seconds: float) -> bool:
        waits.append(seconds)
        return True

    with connect(fake, wait=stopped) as connector:
        connector.folders()
        fake.throttle(back_off_ms=2000)
        with pytest.raises(TransientError, match="stopped while backing off"):
            drain(connector, INBOX)
    assert len(waits) == 1


def test_a_back_off_past_the_bound_fails_now_and_holds_the_mailbox(fake: EwsFake) -> None:
    """A back-off longer than max_busy_wait is a TransientError at once; another connector
    of the same mailbox sends nothing until it has passed, then works."""
    waits = Waits()
    options = {"wait": waits.wait, "clock": waits.clock, "max_busy_wait": 30.0}
    with connect(fake, **options) as connector:
        fake.throttle(back_off_ms=300_000)
        with pytest.raises(TransientError, match="back off 300"):
            drain(connector, INBOX)
    sent = len(fake.operations)
    with pytest.raises(TransientError, match="server busy"), connect(fake, **options) as again:
        drain(again, INBOX)
    assert len(fake.operations) == sent
    assert waits.waited == []
    waits.now += 300
    with connect(fake, **options) as later:
        assert isinstance(drain(later, INBOX)[-1], Checkpoint)


def test_a_wrong_password_is_an_authentication_error_without_the_password(
    fake: EwsFake,
) -> None:
    """HTTP 401 becomes AuthenticationError naming the user, never the password."""
    with pytest.raises(AuthenticationError) as raised, connect(fake, password="wrong-pw-123"):
        pass
    assert "kim" in str(raised.value)
    assert "wrong-pw-123" not in str(raised.value)
    assert PASSWORD not in str(raised.value)


def test_ntlm_logs_in_as_domain_user_and_syncs(ntlm_fake: EwsFake) -> None:
    """auth = "ntlm" with DOMAIN\\user: the NTLM handshake passes and the sync runs."""
    item = inbound(ntlm_fake)
    with connect(ntlm_fake, auth="ntlm", username="ACMESOFT\\kim") as connector:
        changes = drain(connector, INBOX)
    assert [facts.remote_id for facts in fetched(changes)] == [item.item_id]


def test_a_wrong_ntlm_password_is_an_authentication_error(ntlm_fake: EwsFake) -> None:
    """A refused NTLM handshake is AuthenticationError, without the password."""
    options = {"auth": "ntlm", "username": "ACMESOFT\\kim", "password": "wrong-pw-123"}
    with pytest.raises(AuthenticationError) as raised, connect(ntlm_fake, **options):
        pass
    assert "wrong-pw-123" not in str(raised.value)


def test_an_untrusted_certificate_is_a_protocol_error_naming_tls_ca_file(fake: EwsFake) -> None:
    """Without tls_ca_file the private CA is not trusted: ProtocolError, no retry."""
    with pytest.raises(ProtocolError, match="tls_ca_file"), connect(fake, ca_file=None):
        pass


def test_a_refused_connection_is_transient(tmp_path: Path) -> None:
    """Nothing listening: TransientError."""
    connector = EwsConnector(
        "https://127.0.0.1:9/EWS/Exchange.asmx", KIM, auth="ntlm", username="ACME\\kim",
        password=PASSWORD, timeout=5.0,
    )  # fmt: skip
    with pytest.raises(TransientError), connector:
        pass


# -- drafts ---------------------------------------------------------------------------------


def test_a_draft_is_written_as_a_threaded_reply(fake: EwsFake) -> None:
    """write_draft answers the original with ReplyToItem: the draft is in Drafts, in the
    original's conversation, In-Reply-To the original, keyed, with our text on top."""
    original = inbound(fake, references="<zero@acmesoft.example>")
    draft = composed(original)
    with connect(fake) as connector:
        assert isinstance(connector, DraftFolder)
        stored = connector.write_draft(draft.key, draft.as_bytes())
        [synced] = fetched(drain(connector, DRAFTS))
    item = fake.item(stored.remote_id)
    assert item.folder == "drafts"
    assert item.is_draft
    assert item.conversation_id == original.conversation_id
    assert item.in_reply_to == original.message_id
    assert item.references == f"<zero@acmesoft.example> {original.message_id}"
    assert item.extended[("InternetHeaders", "x-relight-key")] == draft.key
    assert item.to == [PAT]
    assert item.subject == "Re: Pricing"
    assert item.text.startswith("Hi Pat,\n\nno need to reply")
    assert stored.key == draft.key
    assert stored.message_id == item.message_id.strip("<>")
    assert synced.thread_id == original.conversation_id
    assert synced.in_reply_to == original.message_id.strip("<>")
    assert "CreateItem" in fake.operations
    assert "UpdateItem" in fake.operations


def test_writing_a_draft_twice_writes_it_once(fake: EwsFake) -> None:
    """The same key again returns the draft already there and creates nothing."""
    original = inbound(fake)
    draft = composed(original)
    with connect(fake) as connector:
        first = connector.write_draft(draft.key, draft.as_bytes())
        again = connector.write_draft(draft.key, composed(original, body="Other text\n").as_bytes())
    assert again == first
    assert len(fake.items("drafts")) == 1
    assert fake.operations.count("CreateItem") == 1


def test_a_reply_left_without_its_key_by_a_crash_is_adopted(fake: EwsFake) -> None:
    """A write that died between CreateItem and UpdateItem leaves a keyless reply; the
    next write gives it the key instead of writing a second draft."""
    original = inbound(fake)
    draft = composed(original)
    with connect(fake, busy_retries=0) as connector:
        fake.fail_next("UpdateItem")
        with pytest.raises(TransientError):
            connector.write_draft(draft.key, draft.as_bytes())
        [orphan] = fake.items("drafts")
        assert orphan.extended == {}
        stored = connector.write_draft(draft.key, draft.as_bytes())
    assert stored.remote_id == orphan.item_id
    assert len(fake.items("drafts")) == 1
    assert fake.operations.count("CreateItem") == 1


def test_a_draft_without_its_original_is_a_plain_message_with_our_ids(fake: EwsFake) -> None:
    """When the message it answers is not in Inbox or Sent Items, the draft is saved as a
    new message carrying our Message-ID, In-Reply-To, References and key at once."""
    lost = "lost@bigcorp.example"
    draft = dataclasses.replace(composed(None), in_reply_to=lost, references=(lost,))
    with connect(fake) as connector:
        stored = connector.write_draft(draft.key, draft.as_bytes())
    item = fake.item(stored.remote_id)
    assert item.message_id == f"<{draft.message_id}>"
    assert stored.message_id == draft.message_id
    assert item.in_reply_to == "<lost@bigcorp.example>"
    assert item.references == "<lost@bigcorp.example>"
    assert item.extended[("InternetHeaders", "x-relight-key")] == draft.key
    assert fake.operations.count("UpdateItem") == 0


def test_found_drafts_digest_as_written_until_the_rep_edits_them(fake: EwsFake) -> None:
    """find_drafts returns Relight's drafts only, with the digest write_draft returned;
    an edit by the rep changes the digest."""
    original = inbound(fake)
    fake.add("drafts", subject="my own draft", to=[("Bob", "bob@else.example")], is_draft=True)
    draft = composed(original)
    with connect(fake) as connector:
        written = connector.write_draft(draft.key, draft.as_bytes())
        found = connector.find_drafts()
        item = fake.item(written.remote_id)
        expected = draft_digest(item.subject, [PAT[1]], item.text)
        fake.touch(written.remote_id, body="Hi Pat, I changed this.\n" + item.body)
        edited = connector.find_drafts()
    assert found == {draft.key: written}
    assert written.digest == expected
    assert edited[draft.key].digest != written.digest


def test_only_relight_drafts_are_deleted(fake: EwsFake) -> None:
    """delete_draft refuses the rep's own draft (DraftRefused, nothing changed), soft-
    deletes Relight's, and does nothing for a draft already gone."""
    own = fake.add(
        "drafts", subject="my own draft", to=[("Bob", "bob@else.example")], is_draft=True
    )
    draft = composed(inbound(fake))
    with connect(fake) as connector:
        written = connector.write_draft(draft.key, draft.as_bytes())
        with pytest.raises(DraftRefused):
            connector.delete_draft(own.item_id)
        connector.delete_draft(written.remote_id)
        connector.delete_draft(written.remote_id)
        remaining = connector.find_drafts()
    assert [item.item_id for item in fake.items("drafts")] == [own.item_id]
    assert fake.deletes == [("SoftDelete", written.remote_id)]
    assert remaining == {}


# -- OAuth ----------------------------------------------------------------------------------


def test_oauth_app_tokens_from_msauth_impersonate_the_mailbox(
    fake: EwsFake, tmp_path: Path
) -> None:
    """auth = "oauth": a client-credentials token from connectors.msauth (the fake is the
    authority too) as Bearer, acting on the mailbox through EWS impersonation."""
    pytest.importorskip("connectors.msauth", reason="connectors.msauth is not there yet")
    url = "https://mail.acmesoft.example/EWS/Exchange.asmx"
    assert ews_oauth_scopes(url) == ["https://mail.acmesoft.example/.default"]
    assert ews_oauth_scopes(url, delegated=True) == [
        "https://mail.acmesoft.example/EWS.AccessAsUser.All"
    ]
    tokens = ews_token_source(
        fake.url,
        authority_url=fake.authority_url,
        tenant_id="acmesoft.example",
        client_id="app-id",
        client_secret="app-secret",
        cache_path=tmp_path / "msal.json",
        ca_file=fake.ca_file,
        timeout=10.0,
    )
    inbound(fake)
    with connect(
        fake, auth="oauth", username=None, password=None, token_source=tokens
    ) as connector:
        changes = drain(connector, INBOX)
    assert [type(change) for change in changes] == [Fetched, Checkpoint]
    assert fake.tokens
    assert set(fake.impersonated) == {KIM}
