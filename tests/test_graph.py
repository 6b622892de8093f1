"""The Graph connector against a local Graph and Entra ID (tests/support/graph_fake.py).

Every test runs the real connector code and the real msal token request over TLS on
loopback; the fake answers in the shapes of Microsoft's published examples.
"""

from __future__ import annotations

import stat
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from connectors import msauth
from connectors.base import (
    AuthenticationError,
    Change,
    Checkpoint,
    DraftRefused,
    Fetched,
    MessageFacts,
    Present,
    ProtocolError,
    RemoteFolder,
    Reset,
    TransientError,
)
from connectors.graph import FOLDERS, GraphConnector, GraphCursor
from connectors.graph_drafts import RELIGHT_KEY_PROPERTY
from connectors.msauth import TokenSource, app_token_source, graph_app_scopes
from daemon import models
from daemon.store import Store
from daemon.sync import sync_account
from rules.drafts import Draft, draft_key
from rules.message import Address
from tests.support.graph_fake import GraphFake, make_certificate

pytestmark = pytest.mark.timeout(60)

REP = "lee@acmesoft.example"
PROSPECT = "ana@prospect.example"
CLIENT_ID = "11111111-1111-1111-1111-111111111111"
SECRET = "Xq8~s3cr3t.value-not-the-id"
INBOX, SENT, DRAFTS = FOLDERS
DATA = Path(__file__).parent / "data"


# -- fixtures ----------------------------------------------------------------------------------


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[GraphFake]:
    """A started fake with one app registration (client secret)."""
    directory = tmp_path / "fake"
    directory.mkdir()
    with GraphFake(directory, mailbox=REP) as server:
        server.add_client(CLIENT_ID, secret=SECRET)
        yield server
    assert server.errors == []


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    path = tmp_path / "state"
    path.mkdir()
    return path


def token_source(fake: GraphFake, state_dir: Path, secret: str = SECRET) -> TokenSource:
    return app_token_source(
        authority_url=fake.authority_url,
        tenant_id=fake.tenant_id,
        client_id=CLIENT_ID,
        client_secret=secret,
        scopes=graph_app_scopes(fake.graph_url),
        cache_path=msauth.token_cache_path(state_dir, fake.tenant_id, CLIENT_ID),
        ca_file=fake.ca_file,
        timeout=10,
    )


@pytest.fixture
def connect(fake: GraphFake, state_dir: Path) -> Callable[..., GraphConnector]:
    """Build a connector on the fake (page size 2, so that rounds have several pages)."""

    def build(**kwargs: object) -> GraphConnector:
        options: dict[str, object] = {
            "own_addresses": frozenset({REP}),
            "excerpt_chars": 500,
            "timeout": 10,
            "ca_file": fake.ca_file,
            "page_size": 2,
        }
        options.update(kwargs)
        tokens = options.pop("tokens", None) or token_source(fake, state_dir)
        return GraphConnector(fake.graph_url, REP, tokens, **options)  # type: ignore[arg-type]

    return build


def changes(connector: GraphConnector, folder: RemoteFolder, cursor: str | None) -> list[Change]:
    with connector:
        return list(connector.changes(folder, cursor))


def fetched(stream: list[Change]) -> list[MessageFacts]:
    return [facts for change in stream if isinstance(change, Fetched) for facts in change.messages]


def cursor_of(stream: list[Change]) -> str:
    assert isinstance(stream[-1], Checkpoint)
    return stream[-1].cursor


def conversation(fake: GraphFake) -> dict[str, str]:
    """A rep's message in Sent Items and the prospect's reply in the Inbox."""
    sent = fake.add_message(
        "sentitems",
        sender=REP,
        to=(PROSPECT,),
        subject="Pricing for Q3",
        body="Hi Ana, here are the prices.",
        internet_message_id="<first@acmesoft.example>",
    )
    reply = fake.add_message(
        "inbox",
        sender=PROSPECT,
        sender_name="Ana Lima",
        to=(REP,),
        subject="RE: Pricing for Q3",
        body="Thanks, we will discuss it with the team next week.\n\n"
        "On Mon, 2 Mar 2026 at 09:01, Lee Park <lee@acmesoft.example> wrote:\n"
        "> Hi Ana, here are the prices.",
        unique_body="Thanks, we will discuss it with the team next week.",
        internet_message_id="<reply@prospect.example>",
        in_reply_to="<first@acmesoft.example>",
    )
    return {"sent": sent, "reply": reply}


# -- tokens ------------------------------------------------------------------------------------


def test_token_through_msal_is_cached_in_a_private_file(
    fake: GraphFake, state_dir: Path, connect: Callable[..., GraphConnector]
) -> None:
    """msal's token is cached in a 0600 file that serves later connectors and a restart."""
    changes(connect(), INBOX, None)
    changes(connect(), SENT, None)
    assert fake.token_requests() == 1
    request = next(r for r in fake.requests if r.path.endswith("/oauth2/v2.0/token"))
    assert request.form["scope"] == f"{fake.base_url}/.default"
    cache = msauth.token_cache_path(state_dir, fake.tenant_id, CLIENT_ID)
    assert stat.S_IMODE(cache.stat().st_mode) == 0o600
    assert SECRET not in cache.read_text()

    msauth._APPS.clear()  # as after a restart: the next app reads the cache file
    changes(connect(), DRAFTS, None)
    assert fake.token_requests() == 1


def test_bad_client_secret_is_an_authentication_error(
    fake: GraphFake, state_dir: Path, connect: Callable[..., GraphConnector]
) -> None:
    """A refused secret: AuthenticationError with the AADSTS code, never the secret."""
    wrong = "Wr0ng~secret.value"
    connector = connect(tokens=token_source(fake, state_dir, secret=wrong))
    with pytest.raises(AuthenticationError) as raised:
        changes(connector, INBOX, None)
    text = str(raised.value)
    assert "AADSTS7000215" in text
    assert "invalid_client" in text
    assert wrong not in text
    assert SECRET not in text
    assert "Trace ID" not in text


def test_certificate_credential(fake: GraphFake, state_dir: Path) -> None:
    """A PEM holding key and certificate signs the assertion the token endpoint checks."""
    certificate, key = make_certificate("relight-app")
    pem = state_dir / "app.pem"
    pem.write_bytes(key + certificate)
    fake.add_client("cert-client", certificate_pem=certificate)
    tokens = app_token_source(
        authority_url=fake.authority_url,
        tenant_id=fake.tenant_id,
        client_id="cert-client",
        certificate_file=pem,
        scopes=graph_app_scopes(fake.graph_url),
        cache_path=state_dir / "cert-cache.json",
        ca_file=fake.ca_file,
        timeout=10,
    )
    assert tokens.access_token()
    request = next(r for r in fake.requests if r.path.endswith("/token"))
    assert "client_secret" not in request.form
    assert request.form["client_assertion_type"].endswith(":jwt-bearer")


def test_untrusted_server_certificate_is_a_protocol_error(fake: GraphFake, state_dir: Path) -> None:
    """Without tls_ca_file a private CA is not trusted: the admin must fix it."""
    tokens = app_token_source(
        authority_url=fake.authority_url,
        tenant_id=fake.tenant_id,
        client_id=CLIENT_ID,
        client_secret=SECRET,
        scopes=graph_app_scopes(fake.graph_url),
        cache_path=state_dir / "untrusted.json",
        timeout=10,
    )
    with pytest.raises(ProtocolError, match="tls_ca_file"):
        tokens.access_token()


# -- sync --------------------------------------------------------------------------------------


def test_first_sync_reads_facts_headers_and_excerpts(
    fake: GraphFake, connect: Callable[..., GraphConnector]
) -> None:
    """A first round pages, reads inbound headers and new text, checkpoints at the end."""
    ids = conversation(fake)
    fake.add_message(
        "inbox",
        sender=PROSPECT,
        to=(REP,),
        subject="Automatic reply: Pricing for Q3",
        body="I am out of the office until 16 March.",
        headers=(("Auto-Submitted", "auto-replied"), ("X-Auto-Response-Suppress", "All")),
    )
    fake.add_message(
        "inbox",
        sender="news@vendor.example",
        to=(REP,),
        subject="Our newsletter",
        body="Big news.",
        headers=(("List-Id", "<news.vendor.example>"), ("List-Unsubscribe", "<mailto:u@x>")),
    )
    stream = changes(connect(), INBOX, None)
    kinds = [type(change).__name__ for change in stream]
    assert kinds == ["Fetched", "Fetched", "Present", "Checkpoint"]  # 3 messages, 2 a page
    by_subject = {facts.subject: facts for facts in fetched(stream)}
    reply = by_subject["RE: Pricing for Q3"]
    assert reply.remote_id == ids["reply"]
    assert reply.message_id == "reply@prospect.example"
    assert reply.in_reply_to == "first@acmesoft.example"
    assert reply.references == ("first@acmesoft.example",)
    assert reply.sender is not None
    assert reply.sender.email == PROSPECT
    assert reply.sender.name == "Ana Lima"
    assert [a.email for a in reply.to] == [REP]
    assert reply.thread_id == fake.message(ids["sent"]).conversation_id
    assert reply.date == datetime(2026, 3, 2, 9, 2, tzinfo=UTC)
    assert reply.received_at is not None
    assert reply.received_at.tzinfo is not None
    assert reply.excerpt == "Thanks, we will discuss it with the team next week."
    auto = by_subject["Automatic reply: Pricing for Q3"]
    assert auto.header("auto-submitted") == "auto-replied"
    newsletter = by_subject["Our newsletter"]
    assert newsletter.header("list-id") == "<news.vendor.example>"
    assert newsletter.excerpt is None
    assert isinstance(stream[2], Present)
    assert stream[2].remote_ids == {facts.remote_id for facts in fetched(stream)}
    assert GraphCursor.loads(cursor_of(stream)) is not None

    delta = fake.graph_requests("/messages/delta")
    assert delta[0].query["$select"].split(",").count("internetMessageId") == 1
    assert "internetMessageHeaders" not in delta[0].query["$select"]
    for request in fake.graph_requests():
        assert 'IdType="ImmutableId"' in request.headers["prefer"]
    for request in delta:
        assert "odata.maxpagesize=2" in request.headers["prefer"]

    sent_stream = changes(connect(), SENT, None)
    (sent,) = fetched(sent_stream)
    assert sent.remote_id == ids["sent"]
    assert sent.headers == ()  # outbound: no second request
    assert sent.excerpt is None
    one_message = [r for r in fake.graph_requests() if "/messages/AA" in r.path]
    assert len(one_message) == 3  # the three inbound messages, once each


def test_incremental_delta_new_and_removed(
    fake: GraphFake, connect: Callable[..., GraphConnector]
) -> None:
    """The next round brings a new message, and a removal becomes a listed Present."""
    ids = conversation(fake)
    extra = fake.add_message("inbox", sender=PROSPECT, to=(REP,), subject="Second thought")
    first = changes(connect(), INBOX, None)

    new = fake.add_message("inbox", sender=PROSPECT, to=(REP,), subject="One more thing")
    fake.remove_message(extra)
    stream = changes(connect(), INBOX, cursor_of(first))
    assert [facts.remote_id for facts in fetched(stream)] == [new]
    present = [change for change in stream if isinstance(change, Present)]
    assert len(present) == 1
    assert present[0].remote_ids == {ids["reply"], new}
    assert isinstance(stream[-1], Checkpoint)

    quiet = changes(connect(), INBOX, cursor_of(stream))
    assert [type(change) for change in quiet] == [Checkpoint]


def test_updated_message_is_stored_again_without_a_present(
    fake: GraphFake, connect: Callable[..., GraphConnector]
) -> None:
    """A message marked read comes back as an update; nothing is removed."""
    ids = conversation(fake)
    first = changes(connect(), INBOX, None)
    fake.update_message(ids["reply"], isRead=True)
    stream = changes(connect(), INBOX, cursor_of(first))
    assert [facts.remote_id for facts in fetched(stream)] == [ids["reply"]]
    assert not any(isinstance(change, Present | Reset) for change in stream)


class _Crash(Exception):
    """The process died here."""


class _CrashAfterFirstBatch:
    """A connector whose stream dies after the first Fetched of the Inbox."""

    def __init__(self, inner: GraphConnector) -> None:
        self.inner = inner

    def __enter__(self) -> _CrashAfterFirstBatch:
        self.inner.__enter__()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.inner.__exit__(*exc_info)

    def folders(self) -> list[RemoteFolder]:
        return self.inner.folders()

    def changes(self, folder: RemoteFolder, cursor: str | None) -> Iterator[Change]:
        for change in self.inner.changes(folder, cursor):
            yield change
            if isinstance(change, Fetched) and folder == INBOX:
                raise _Crash


def test_restart_mid_delta_resumes_from_the_previous_delta_link(
    fake: GraphFake, connect: Callable[..., GraphConnector], tmp_path: Path
) -> None:
    """A crash between pages keeps the old deltaLink; the rerun stores each message once."""
    conversation(fake)
    store = Store.open(f"sqlite:///{tmp_path / 'relight.db'}")
    try:
        sync_account(store, "lee", "graph", connect())
        before = {f.name: f.cursor for f in store.folders("lee")}
        for number in range(5):
            fake.add_message("inbox", sender=PROSPECT, to=(REP,), subject=f"News {number}")
        with pytest.raises(_Crash):
            sync_account(store, "lee", "graph", _CrashAfterFirstBatch(connect()))
        assert {f.name: f.cursor for f in store.folders("lee")} == before
        assert store.message_count("lee") == 2 + 2  # the first page was stored

        sync_account(store, "lee", "graph", connect())
        assert store.message_count("lee") == 2 + 5
        with store.engine.connect() as connection:
            locations = connection.execute(
                select(func.count()).select_from(models.message_locations)
            ).scalar_one()
        assert locations == 2 + 5
        after = {f.name: f.cursor for f in store.folders("lee")}
        assert after["inbox"] != before["inbox"]
    finally:
        store.close()


def test_lost_sync_state_resyncs_once_from_scratch(
    fake: GraphFake, connect: Callable[..., GraphConnector]
) -> None:
    """410 syncStateNotFound: one round from scratch, a Present, no Reset."""
    ids = conversation(fake)
    extra = fake.add_message("inbox", sender=PROSPECT, to=(REP,), subject="Gone soon")
    first = changes(connect(), INBOX, None)
    fake.remove_message(extra)
    fake.expire_sync_state()
    stream = changes(connect(), INBOX, cursor_of(first))
    assert not any(isinstance(change, Reset) for change in stream)
    assert {facts.remote_id for facts in fetched(stream)} == {ids["reply"]}
    assert [change.remote_ids for change in stream if isinstance(change, Present)] == [
        {ids["reply"]}
    ]
    assert isinstance(stream[-1], Checkpoint)


def test_lost_sync_state_twice_gives_up_for_this_cycle(
    fake: GraphFake, connect: Callable[..., GraphConnector]
) -> None:
    """The resync is bounded: a second 410 in the same call is a TransientError."""
    conversation(fake)
    first = changes(connect(), INBOX, None)
    fake.fail_next(410, match="/messages/delta", times=5)
    with pytest.raises(TransientError, match="sync state"):
        changes(connect(), INBOX, cursor_of(first))
    assert len(fake.graph_requests("/messages/delta")) == 1 + 2


def test_retry_after_is_honoured(fake: GraphFake, connect: Callable[..., GraphConnector]) -> None:
    """429 waits its Retry-After, 503 without one backs off, then the request is resent."""
    conversation(fake)
    now = [1000.0]
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        now[0] += seconds

    fake.fail_next(429, retry_after="7", match="/messages/delta")
    fake.fail_next(503, match="/messages/AA")
    stream = changes(connect(clock=lambda: now[0], sleep=sleep), INBOX, None)
    assert isinstance(stream[-1], Checkpoint)
    assert waits == [7.0, 2.0]
    assert len(fake.graph_requests("/messages/delta")) == 2


def test_long_retry_after_is_transient_and_holds_the_mailbox(
    fake: GraphFake, connect: Callable[..., GraphConnector], state_dir: Path
) -> None:
    """A long Retry-After is a TransientError and holds this mailbox only until then."""
    conversation(fake)
    now = [5000.0]
    fake.fail_next(429, retry_after="3600", match="/messages/delta")
    with pytest.raises(TransientError, match="3600"):
        changes(connect(clock=lambda: now[0], sleep=lambda s: None), INBOX, None)
    sent = len(fake.graph_requests())
    with pytest.raises(TransientError, match="wait"):
        changes(connect(clock=lambda: now[0], sleep=lambda s: None), SENT, None)
    assert len(fake.graph_requests()) == sent
    other = GraphConnector(
        fake.graph_url,
        "kim@acmesoft.example",
        token_source(fake, state_dir),
        ca_file=fake.ca_file,
        clock=lambda: now[0],
    )
    with pytest.raises(ProtocolError, match="ErrorInvalidUser"):  # not held: sent, refused
        changes(other, INBOX, None)
    now[0] += 3600
    assert isinstance(changes(connect(clock=lambda: now[0]), SENT, None)[-1], Checkpoint)


def test_a_stop_request_ends_the_wait(
    fake: GraphFake, connect: Callable[..., GraphConnector]
) -> None:
    """Waiting out a Retry-After ends at once when the daemon is asked to stop."""
    fake.fail_next(429, retry_after="30", match="/messages/delta")
    connector = connect(should_stop=lambda: True, sleep=lambda s: pytest.fail("slept"))
    with pytest.raises(TransientError, match="stopped"):
        changes(connector, INBOX, None)


def test_at_most_four_requests_at_once(
    fake: GraphFake, connect: Callable[..., GraphConnector]
) -> None:
    """The per-message reads of a page run concurrently, four at most."""
    for number in range(12):
        fake.add_message("inbox", sender=PROSPECT, to=(REP,), subject=f"Note {number}")
    fake.slow = 0.05
    stream = changes(connect(page_size=12), INBOX, None)
    assert len(fetched(stream)) == 12
    assert 1 < fake.max_in_flight <= 4


def test_delivery_report_is_read_from_mime(
    fake: GraphFake, connect: Callable[..., GraphConnector]
) -> None:
    """A bounce (multipart/report) is read as MIME for its delivery status."""
    raw = (DATA / "dsn-multi-recipient.eml").read_bytes()
    fake.add_message(
        "inbox",
        sender="mailer-daemon@cs.utk.edu",
        to=(REP,),
        subject="Returned mail: User unknown",
        headers=(("Content-Type", 'multipart/report; report-type=delivery-status; boundary="x"'),),
        mime=raw,
    )
    (facts,) = fetched(changes(connect(), INBOX, None))
    assert facts.is_report
    assert facts.report is not None
    assert facts.report.action == "failed"
    assert "arathib@vnet.ibm.com" in facts.report.recipients
    assert facts.excerpt is None


def test_a_cursor_of_another_kind_resets(
    fake: GraphFake, connect: Callable[..., GraphConnector]
) -> None:
    """A cursor that is not a Graph cursor: Reset, then a round from scratch."""
    conversation(fake)
    stream = changes(connect(), INBOX, '{"v": 1, "uidvalidity": 5}')
    assert isinstance(stream[0], Reset)
    assert isinstance(stream[-1], Checkpoint)


# -- drafts ------------------------------------------------------------------------------------


def compose(in_reply_to: str | None = "reply@prospect.example", stage: int = 1) -> Draft:
    return Draft(
        key=draft_key("lee", PROSPECT, stage),
        message_id=f"relight.{draft_key('lee', PROSPECT, stage)}@acmesoft.example",
        sender=Address(REP, "Lee Park"),
        to=Address(PROSPECT, "Ana Lima"),
        subject="Re: Pricing for Q3",
        in_reply_to=in_reply_to,
        references=("first@acmesoft.example", "reply@prospect.example") if in_reply_to else (),
        body="Hi Ana,\n\nno need to reply: here is the case study I mentioned.\n\nLee\n",
        date=datetime(2026, 3, 10, 9, 0, tzinfo=UTC),
        account="lee",
        prospect=PROSPECT,
        stage=stage,
        playbook="release_pressure",
    )


def test_write_draft_threads_it_as_a_reply(
    fake: GraphFake, connect: Callable[..., GraphConnector]
) -> None:
    """createReply and one PATCH: same conversation, In-Reply-To, body, To, Message-ID, key."""
    ids = conversation(fake)
    draft = compose()
    with connect() as connector:
        stored = connector.write_draft(draft.key, draft.as_bytes())
        found = connector.find_drafts()
    (made,) = fake.drafts()
    original = fake.message(ids["reply"])
    assert made.conversation_id == original.conversation_id
    assert made.in_reply_to == "<reply@prospect.example>"
    assert made.references == ["<first@acmesoft.example>", "<reply@prospect.example>"]
    assert made.subject == "RE: Pricing for Q3"
    assert [r["emailAddress"]["address"] for r in made.to] == [PROSPECT]
    assert made.body_text == draft.body
    assert made.internet_message_id == f"<{draft.message_id}>"
    assert made.extended[RELIGHT_KEY_PROPERTY] == draft.key
    assert stored.remote_id == made.immutable_id
    assert stored.message_id == draft.message_id
    assert found == {draft.key: stored}
    assert len(fake.graph_requests("/createReply")) == 1
    patches = [r for r in fake.graph_requests() if r.method == "PATCH"]
    assert len(patches) == 1


def test_write_draft_is_idempotent(fake: GraphFake, connect: Callable[..., GraphConnector]) -> None:
    """A second write of the same key finds the first draft and writes nothing."""
    conversation(fake)
    draft = compose()
    with connect() as connector:
        first = connector.write_draft(draft.key, draft.as_bytes())
    with connect() as connector:
        second = connector.write_draft(draft.key, draft.as_bytes())
    assert second == first
    assert len(fake.drafts()) == 1
    assert len(fake.graph_requests("/createReply")) == 1


def test_found_digest_tells_an_edited_draft(
    fake: GraphFake, connect: Callable[..., GraphConnector]
) -> None:
    """An untouched draft has the digest written; one the rep edited does not."""
    conversation(fake)
    one, two = compose(stage=1), compose(stage=2)
    with connect() as connector:
        written_one = connector.write_draft(one.key, one.as_bytes())
        written_two = connector.write_draft(two.key, two.as_bytes())
    fake.update_message(written_two.remote_id, body_text=two.body + "\nPS: call me", body_html=None)
    with connect() as connector:
        found = connector.find_drafts()
    assert found[one.key].digest == written_one.digest
    assert found[two.key].digest != written_two.digest


def test_delete_draft_refuses_the_reps_own(
    fake: GraphFake, connect: Callable[..., GraphConnector]
) -> None:
    """Retracting refuses the rep's own draft, removes Relight's, and ignores a gone one."""
    conversation(fake)
    rep_draft = fake.add_message("drafts", sender=REP, to=(PROSPECT,), subject="my own words")
    fake.message(rep_draft).is_draft = True
    draft = compose()
    with connect() as connector:
        stored = connector.write_draft(draft.key, draft.as_bytes())
        with pytest.raises(DraftRefused):
            connector.delete_draft(rep_draft)
        connector.delete_draft(stored.remote_id)
        connector.delete_draft(stored.remote_id)
        assert connector.find_drafts() == {}
    assert [m.subject for m in fake.drafts()] == ["my own words"]


def test_failed_update_leaves_no_half_made_draft(
    fake: GraphFake, connect: Callable[..., GraphConnector]
) -> None:
    """A failed PATCH after createReply deletes the new draft again."""
    conversation(fake)
    draft = compose()
    fake.fail_next(500, method="PATCH")
    with connect() as connector, pytest.raises(TransientError):
        connector.write_draft(draft.key, draft.as_bytes())
    assert fake.drafts() == []
    assert len(fake.graph_requests("/createReply")) == 1


def test_draft_without_the_original_is_created_in_drafts(
    fake: GraphFake, connect: Callable[..., GraphConnector]
) -> None:
    """Without the original, a new draft carries key, subject and threading properties."""
    draft = compose(in_reply_to="gone@prospect.example")
    with connect() as connector:
        stored = connector.write_draft(draft.key, draft.as_bytes())
    (made,) = fake.drafts()
    assert made.subject == "Re: Pricing for Q3"
    assert made.in_reply_to == "<gone@prospect.example>"
    assert made.extended[RELIGHT_KEY_PROPERTY] == draft.key
    assert stored.remote_id == made.immutable_id
    assert not fake.graph_requests("/createReply")
