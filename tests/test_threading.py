"""Subjects and conversations: `rules.subjects` and `rules.threading`.

Scenarios live in `tests/data/threading/*.toml`, one file per case: the messages (times in
minutes after a fixed start) and the conversations expected, in output order, by label. The
notmuch test corpora (real LKML threads, ghost roots, reference loops, duplicates) are
threaded as well, parsed with the stdlib `email` package.
"""

from __future__ import annotations

import email
import email.header
import email.policy
import email.utils
import random
import re
import tomllib
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from rules.message import Address, Folder, Message
from rules.subjects import base_subject, reply_subject
from rules.threading import Conversation, thread

CASES = Path(__file__).resolve().parent / "data" / "threading"
CORPORA = Path(__file__).resolve().parents[2] / "shared" / "corpora"
NOTMUCH = CORPORA / "notmuch" / "test" / "corpora"
START = datetime(2024, 3, 4, 9, 0, tzinfo=UTC)

# -- subjects ------------------------------------------------------------------------------

BASE_SUBJECTS = [
    ("Pricing", "Pricing"),
    ("Re: Pricing", "Pricing"),
    ("RE: Pricing", "Pricing"),
    ("re: Pricing", "Pricing"),
    ("Re:Pricing", "Pricing"),
    ("Re: Re: Re: Pricing", "Pricing"),
    ("Re[2]: Pricing", "Pricing"),
    ("RE [3]: Pricing", "Pricing"),
    ("Re(2): Pricing", "Pricing"),
    ("Re^2: Pricing", "Pricing"),
    ("RE : Pricing", "Pricing"),
    ("Fwd: Pricing", "Pricing"),
    ("Fw: Pricing", "Pricing"),
    ("FW: Pricing", "Pricing"),
    ("Re: AW: Fwd: Pricing", "Pricing"),
    ("AW: WG: Angebot", "Angebot"),
    ("SV: VS: Tilbud", "Tilbud"),
    ("Antw: Doorst: Offerte", "Offerte"),
    ("RIF: R: I: Offerta", "Offerta"),
    ("R: Offerta", "Offerta"),
    ("I: Offerta", "Offerta"),
    ("TR: Réf.: Devis", "Devis"),
    ("RÉF. : Devis", "Devis"),
    ("RV: ENC: Propuesta", "Propuesta"),
    ("Odp: Oferta", "Oferta"),
    ("Vá: Ajánlat", "Ajánlat"),
    ("VÁ: Ajánlat", "Ajánlat"),
    ("Ynt: Teklif", "Teklif"),
    ("ΑΠ: Προσφορά", "Προσφορά"),
    ("回复: 报价", "报价"),
    ("回复\uff1a报价", "报价"),
    ("回覆\uff1a報價", "報價"),
    ("转发\uff1a回复: 报价", "报价"),
    ("[External] Pricing", "Pricing"),
    ("[EXTERNAL] RE: Pricing", "Pricing"),
    ("RE: [External] Re: x", "x"),
    ("Re: [EXT] Re: [External Email] Pricing", "Pricing"),
    ("[sales-team] Re: Pricing", "Pricing"),
    ("[sales-team] [External] Re: Pricing", "Pricing"),
    ("[sales-team] Pricing", "[sales-team] Pricing"),
    ("Re: [PATCH] Fix the parser", "[PATCH] Fix the parser"),
    ("[PATCH] Fix the parser", "[PATCH] Fix the parser"),
    ("[Fwd: Pricing]", "Pricing"),
    ("Pricing (fwd)", "Pricing"),
    ("Question re: pricing", "Question re: pricing"),
    ("Follow-up RE: the demo", "Follow-up RE: the demo"),
    ("Are: you coming?", "Are: you coming?"),
    ("Ire: x", "Ire: x"),
    ("R&D: budget", "R&D: budget"),
    ("R2: budget", "R2: budget"),
    ("Item: renewal", "Item: renewal"),
    ("Re", "Re"),
    ("Re 2025 budget", "Re 2025 budget"),
    ("  Re:   many    spaces\there  ", "many spaces here"),
    ("Re:\u3000全角スペース", "全角スペース"),
    ("Re: Re\u0301f.: composed", "composed"),
    ("Re:", ""),
    ("Re: Re: Re:", ""),
    ("RE: FW:   ", ""),
    ("[External]", ""),
    ("", ""),
]


@pytest.mark.parametrize(("subject", "expected"), BASE_SUBJECTS)
def test_base_subject(subject: str, expected: str) -> None:
    """base_subject strips leading reply/forward prefixes, banners and prefixed list tags."""
    assert base_subject(subject) == expected


@pytest.mark.parametrize(("subject", "expected"), BASE_SUBJECTS)
def test_base_subject_is_idempotent(subject: str, expected: str) -> None:
    """Stripping an already stripped subject changes nothing."""
    assert base_subject(base_subject(subject)) == expected


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("Pricing", "Re: Pricing"),
        ("Re: Pricing", "Re: Pricing"),
        ("RE: AW: Re[3]: Pricing", "Re: Pricing"),
        ("[External] Re: Pricing", "Re: Pricing"),
        ("[PATCH] x", "Re: [PATCH] x"),
        ("Re:", "Re:"),
        ("", "Re:"),
    ],
)
def test_reply_subject(subject: str, expected: str) -> None:
    """reply_subject puts exactly one "Re: " before the base subject, "Re:" when empty."""
    assert reply_subject(subject) == expected


# -- threading: case files ------------------------------------------------------------------


def _case_paths() -> list[Path]:
    return sorted(CASES.glob("*.toml"))


def _load_case(path: Path) -> tuple[list[Message], dict[int, str], dict[str, Any]]:
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    messages: list[Message] = []
    labels: dict[int, str] = {}
    for row in data["messages"]:
        message = Message(
            at=START + timedelta(minutes=row["at"]),
            folder=Folder(row.get("folder", "inbox")),
            message_id=row.get("id"),
            in_reply_to=row.get("in_reply_to"),
            references=tuple(row.get("references", ())),
            subject=row.get("subject", ""),
            thread_id=row.get("thread"),
        )
        messages.append(message)
        labels[id(message)] = row.get("label", row.get("id"))
    return messages, labels, data["expect"]


@pytest.mark.parametrize("path", _case_paths(), ids=lambda path: path.stem)
def test_threading_case(path: Path) -> None:
    """Each case file's messages thread into exactly the conversations it expects."""
    messages, labels, expect = _load_case(path)
    conversations = thread(messages)
    assert [[labels[id(m)] for m in c.messages] for c in conversations] == expect["conversations"]
    if "keys" in expect:
        assert [c.key for c in conversations] == expect["keys"]
    if "subjects" in expect:
        assert [c.subject for c in conversations] == expect["subjects"]


@pytest.mark.parametrize("path", _case_paths(), ids=lambda path: path.stem)
def test_threading_case_ignores_input_order(path: Path) -> None:
    """Shuffling the input never changes the conversations, their order or their keys."""
    messages, labels, _expect = _load_case(path)
    expected = _summary(thread(messages), labels)
    shuffler = random.Random(path.stem)  # noqa: S311 - test data, not cryptography
    for _ in range(20):
        shuffled = list(messages)
        shuffler.shuffle(shuffled)
        assert _summary(thread(shuffled), labels) == expected


def test_case_files_are_present() -> None:
    """The case directory holds the scenarios (a glob that finds nothing would test nothing)."""
    assert len(_case_paths()) >= 15


def _summary(conversations: list[Conversation], labels: dict[int, str]) -> list[Any]:
    return [(c.key, c.subject, [labels[id(m)] for m in c.messages]) for c in conversations]


# -- threading: properties ------------------------------------------------------------------


def _message(
    message_id: str | None,
    minute: float,
    *,
    in_reply_to: str | None = None,
    references: Sequence[str] = (),
    thread_id: str | None = None,
    subject: str = "",
) -> Message:
    return Message(
        at=START + timedelta(minutes=minute),
        message_id=message_id,
        in_reply_to=in_reply_to,
        references=tuple(references),
        thread_id=thread_id,
        subject=subject,
    )


def test_empty_input_gives_no_conversations() -> None:
    """No messages, no conversations."""
    assert thread([]) == []


def test_accepts_any_iterable() -> None:
    """A generator is threaded like a list."""
    messages = [_message("a@x", 0), _message("b@x", 1, in_reply_to="a@x")]
    assert thread(iter(messages)) == thread(messages)


def test_last_is_the_latest_message() -> None:
    """`last` is the latest message even when the input arrives newest first."""
    messages = [_message(f"{n}@x", n, in_reply_to=f"{n - 1}@x" if n else None) for n in range(5)]
    (conversation,) = thread(reversed(messages))
    assert conversation.last is messages[-1]
    assert conversation.messages == tuple(messages)


def test_conversations_ordered_by_latest_time_then_key() -> None:
    """Output is ordered by each conversation's latest message, then by key on ties."""
    messages = [
        _message("old-root@x", 0),
        _message("old-reply@x", 50, in_reply_to="old-root@x"),
        _message("b@x", 30),
        _message("a@x", 30),
    ]
    keys = [c.key for c in thread(messages)]
    assert keys == ["<a@x>", "<b@x>", "<old-root@x>"]


def test_key_survives_the_root_arriving_later() -> None:
    """Two replies to a missing message are keyed by its id, which stays when it turns up."""
    replies = [
        _message("b@x", 10, in_reply_to="a@x", references=["a@x"]),
        _message("c@x", 20, in_reply_to="a@x", references=["a@x"]),
    ]
    before = thread(replies)
    after = thread([_message("a@x", 0), *replies])
    assert [c.key for c in before] == [c.key for c in after] == ["<a@x>"]
    assert len(after[0].messages) == 3


def test_key_survives_replies_and_junk() -> None:
    """New replies, even ones whose References start with junk ids, keep the root's key."""
    root = _message("a@x", 0, subject="Offer")
    reply = _message("b@x", 10, in_reply_to="a@x", references=["a@x"])
    junk = _message("c@x", 20, in_reply_to="b@x", references=["junk@y", "a@x", "b@x"])
    assert [c.key for c in thread([root])] == ["<a@x>"]
    assert [c.key for c in thread([root, reply])] == ["<a@x>"]
    assert [c.key for c in thread([root, reply, junk])] == ["<a@x>"]


def test_lone_messages_without_id_get_distinct_stable_keys() -> None:
    """Messages without Message-ID get `message:` keys, distinct and repeatable."""
    one = _message(None, 0, subject="Hello")
    two = _message(None, 0, subject="Hello again")
    keys = [c.key for c in thread([one, two])]
    assert len(set(keys)) == 2
    assert all(key.startswith("message:") for key in keys)
    assert keys == [c.key for c in thread([two, one])]


def test_exact_repeat_without_id_collapses() -> None:
    """The very same message without Message-ID, passed twice, is one entry."""
    lone = _message(None, 0, subject="Hello")
    (conversation,) = thread([lone, lone])
    assert conversation.messages == (lone,)


def test_duplicate_prefers_sent_then_earliest() -> None:
    """Of several copies of one Message-ID, the Sent copy stands for the message."""
    draft = Message(at=START, folder=Folder.DRAFTS, message_id="a@x", subject="draft copy")
    inbox = Message(at=START, folder=Folder.INBOX, message_id="a@x", subject="inbox copy")
    sent = Message(
        at=START + timedelta(seconds=1), folder=Folder.SENT, message_id="a@x", subject="sent"
    )
    for order in ([draft, inbox, sent], [sent, inbox, draft], [inbox, sent, draft]):
        (conversation,) = thread(order)
        assert conversation.messages == (sent,)
    (conversation,) = thread([draft, inbox])
    assert conversation.messages == (inbox,)


def test_same_subject_never_groups() -> None:
    """Many identical subjects without header links or thread ids stay separate."""
    messages = [_message(f"{n}@x", n, subject="Quick question") for n in range(50)]
    assert len(thread(messages)) == 50


def test_every_message_once_on_random_garbage() -> None:
    """Random links (loops, self-references, unknown ids) keep each message exactly once."""
    generator = random.Random(7)  # noqa: S311 - test data, not cryptography
    ids = [f"{n}@x" for n in range(400)]
    unknown = [f"ghost{n}@x" for n in range(40)]
    messages = []
    for n, message_id in enumerate(ids):
        pool = ids + unknown
        messages.append(
            _message(
                message_id if n % 13 else None,
                generator.randrange(1000),
                in_reply_to=generator.choice(pool) if generator.random() < 0.6 else None,
                references=generator.sample(pool, generator.randrange(4)),
                thread_id=f"t{generator.randrange(60)}" if generator.random() < 0.1 else None,
            )
        )
    conversations = thread(messages)
    seen = Counter(id(m) for c in conversations for m in c.messages)
    assert sorted(seen) == sorted(id(m) for m in messages)
    assert set(seen.values()) == {1}
    assert len({c.key for c in conversations}) == len(conversations)
    for conversation in conversations:
        times = [m.at for m in conversation.messages]
        assert times == sorted(times)


def test_replies_join_their_parent_in_random_garbage() -> None:
    """A reply whose In-Reply-To names a present message is in that message's conversation."""
    generator = random.Random(11)  # noqa: S311 - test data, not cryptography
    ids = [f"{n}@x" for n in range(300)]
    messages = [
        _message(
            message_id,
            generator.randrange(1000),
            in_reply_to=generator.choice(ids[:n]) if n and generator.random() < 0.7 else None,
            references=generator.sample(ids, generator.randrange(3)),
        )
        for n, message_id in enumerate(ids)
    ]
    where = {m.message_id: c.key for c in thread(messages) for m in c.messages}
    for message in messages:
        if message.in_reply_to is not None:
            # the message's own In-Reply-To is its parent link; only a loop cut can undo it,
            # and a cut keeps both ends in one tree
            assert where[message.message_id] == where[message.in_reply_to]


def test_ten_thousand_deep_chain() -> None:
    """A 10k-deep reply chain, in any input order, is one conversation and fast."""
    depth = 10_000
    chain = [
        _message(
            f"{n}@x",
            n,
            in_reply_to=f"{n - 1}@x" if n else None,
            references=[f"{k}@x" for k in range(max(0, n - 20), n)],
            subject="Re: deep" if n else "deep",
        )
        for n in range(depth)
    ]
    for order in (chain, chain[::-1], chain[1::2] + chain[0::2]):
        (conversation,) = thread(order)
        assert len(conversation.messages) == depth
        assert conversation.key == "<0@x>"
        assert conversation.subject == "deep"


def test_ten_thousand_deep_loop() -> None:
    """A 10k-long reference loop terminates as one conversation rooted at its earliest."""
    depth = 10_000
    loop = [_message(f"{n}@x", n, in_reply_to=f"{(n - 1) % depth}@x") for n in range(depth)]
    (conversation,) = thread(loop)
    assert len(conversation.messages) == depth
    assert conversation.key == "<0@x>"


def test_hundred_thousand_messages_thread_into_their_conversations() -> None:
    """100k shuffled messages (threads of 1-8, provider ids on some) give one conversation
    per thread; the time it takes is measured by bench/, not asserted here."""
    generator = random.Random(3)  # noqa: S311 - test data, not cryptography
    messages: list[Message] = []
    threads = 0
    while len(messages) < 100_000:
        size = generator.randrange(1, 9)
        provider = f"T{threads}" if threads % 3 == 0 else None
        chain: list[str] = []
        for n in range(size):
            message_id = f"{threads}.{n}@x"
            messages.append(
                _message(
                    message_id,
                    threads + n,
                    in_reply_to=chain[-1] if chain else None,
                    references=chain[-10:],
                    thread_id=provider,
                    subject="Re: offer" if n else "offer",
                )
            )
            chain.append(message_id)
        threads += 1
    generator.shuffle(messages)
    conversations = thread(messages)
    assert len(conversations) == threads
    assert all(
        len({m.subject for m in c.messages} - {"offer", "Re: offer"}) == 0 for c in conversations
    )


def test_conversation_refuses_bad_values() -> None:
    """A Conversation needs a key and at least one message, sorted by time."""
    early, late = _message("a@x", 0), _message("b@x", 1)
    with pytest.raises(ValueError, match="key"):
        Conversation(key="", messages=(early,))
    with pytest.raises(ValueError, match="at least one"):
        Conversation(key="k", messages=())
    with pytest.raises(ValueError, match="sorted"):
        Conversation(key="k", messages=(late, early))
    assert Conversation(key="k", messages=(early, late)).last is late


# -- the notmuch corpora --------------------------------------------------------------------

_ID = re.compile(r"<([^<>\s]+)>")
_FALLBACK_TIME = datetime(2001, 1, 1, tzinfo=UTC)


def _header_text(value: object) -> str:
    if value is None:
        return ""
    try:
        return str(email.header.make_header(email.header.decode_header(str(value))))
    except Exception:  # garbage encoded words: keep the raw text
        return str(value)


def _ids(values: Iterable[object]) -> list[str]:
    return [found for value in values for found in _ID.findall(str(value))]


def _date(value: object) -> datetime:
    try:
        moment = email.utils.parsedate_to_datetime(str(value))
    except (TypeError, ValueError, IndexError):
        return _FALLBACK_TIME
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def parse_headers(path: Path) -> Message:
    """One mail file's threading headers as a Message (compat32; never raises)."""
    parsed = email.message_from_bytes(path.read_bytes(), policy=email.policy.compat32)
    message_ids = _ids(parsed.get_all("message-id") or [])
    in_reply_to = _ids(parsed.get_all("in-reply-to") or [])
    sender = email.utils.parseaddr(str(parsed.get("from", "")))[1].strip().lower()
    return Message(
        at=_date(parsed.get("date")),
        message_id=message_ids[0] if message_ids else None,
        in_reply_to=in_reply_to[0] if in_reply_to else None,
        references=tuple(_ids(parsed.get_all("references") or [])),
        subject=_header_text(parsed.get("subject")),
        sender=Address(sender) if sender and not any(c.isspace() for c in sender) else None,
    )


def _corpus(*parts: str) -> list[Message]:
    folder = NOTMUCH.joinpath(*parts)
    if not folder.is_dir():
        pytest.skip(f"notmuch corpus not found at {folder} (see ../shared/corpora/README.md)")
    return [parse_headers(path) for path in sorted(folder.rglob("*")) if path.is_file()]


def _union_find_count(messages: Iterable[Message]) -> int:
    """Threads by plain union-find over every id a message names (the loosest grouping)."""
    link: dict[str, str] = {}

    def find(node: str) -> str:
        link.setdefault(node, node)
        while link[node] != node:
            link[node] = link[link[node]]
            node = link[node]
        return node

    own_ids = set()
    for message in messages:
        if message.message_id is None:
            continue
        own_ids.add(message.message_id)
        for other in (*message.references, *filter(None, [message.in_reply_to])):
            link[find(other)] = find(message.message_id)
    return len({find(message_id) for message_id in own_ids})


def _assert_each_message_once(messages: list[Message], conversations: list[Conversation]) -> None:
    threaded = Counter(m.message_id for c in conversations for m in c.messages)
    distinct = {m.message_id for m in messages if m.message_id is not None}
    assert {k for k in threaded if k is not None} == distinct
    assert all(count == 1 for key, count in threaded.items() if key is not None)


def test_lkml_corpus() -> None:
    """Real LKML threads: each message once, replies with their parent, JWZ ~ union-find."""
    messages = _corpus("lkml")
    assert len(messages) == 210
    conversations = thread(messages)
    _assert_each_message_once(messages, conversations)
    where = {m.message_id: c.key for c in conversations for m in c.messages}
    replies = [m for m in messages if m.in_reply_to in where]
    assert len(replies) >= 140
    for reply in replies:
        assert where[reply.message_id] == where[reply.in_reply_to]
    loosest = _union_find_count(messages)
    # JWZ never joins more than union-find does, and on well-formed list mail the same.
    assert len(conversations) == loosest
    assert 5 <= loosest <= 20
    assert all(c.subject for c in conversations)


def test_lkml_corpus_keys_are_thread_roots() -> None:
    """Each LKML conversation's key is its root's Message-ID and its subject the root's."""
    conversations = thread(_corpus("lkml"))
    for conversation in conversations:
        assert conversation.key.startswith("<")
        root_id = conversation.key[1:-1]
        roots = [m for m in conversation.messages if m.message_id == root_id]
        if roots:
            assert conversation.subject == base_subject(roots[0].subject)


def test_notmuch_ghost_root_corpus() -> None:
    """notmuch ghost-root: a fake root replying to a missing id stays in the real root's thread."""
    conversations = thread(_corpus("threading", "ghost-root"))
    groups = sorted(sorted(m.message_id or "" for m in c.messages) for c in conversations)
    assert groups == [
        [
            "000-real-root@example.org",
            "001-child@example.org",
            "001-fake-message-root@example.org",
            "001-grand-child2@example.org",
            "001-grand-child@example.org",
            "001-great-grand-child@example.org",
        ],
        [
            "87bmc6lp3h.fsf@len.workgroup",
            "rt-4.2.8-22046-1529425595-591.33575-211-0@xxxxxxx-xxxxxxxxxxxxxxxxx-xxxxxxxxx-xxxxxxxxx.de",
            "rt-4.2.8-6644-1530017064-1465.33575-215-0@xxxxxxx-xxxxxxxxxxxxxxxxx-xxxxxxxxx-xxxxxxxxx.de",
        ],
    ]
    by_key = {c.key: c for c in conversations}
    assert by_key["<000-real-root@example.org>"].subject == "root message"


def test_notmuch_parent_priority_corpus() -> None:
    """notmuch parent-priority: a typo'd References and a reversed one still make one thread."""
    (conversation,) = thread(_corpus("threading", "parent-priority"))
    assert conversation.key == "<B00-root@example.org>"
    assert conversation.subject == "root message"
    assert len(conversation.messages) == 3


def test_notmuch_loop_corpus() -> None:
    """notmuch broken/loop: two messages replying to each other terminate as one thread."""
    messages = _corpus("broken", "loop")
    (conversation,) = thread(messages)
    assert len(conversation.messages) == 2
    assert conversation.key == "<mid-loop-12@example.org>"  # the earlier one is the root
    assert conversation.subject == "referencing in-reply-to-loop-21"


def test_notmuch_duplicate_corpus() -> None:
    """notmuch duplicate: nine files, three Message-IDs, three one-message conversations."""
    messages = _corpus("duplicate")
    assert len(messages) == 9
    conversations = thread(messages)
    _assert_each_message_once(messages, conversations)
    assert len(conversations) == 3
    assert all(len(c.messages) == 1 for c in conversations)


def test_whole_notmuch_corpus() -> None:
    """Every notmuch corpus file together: no crash, each message once, JWZ >= union-find."""
    messages = _corpus()
    conversations = thread(messages)
    _assert_each_message_once(messages, conversations)
    assert len(conversations) >= _union_find_count(messages)
    assert len({c.key for c in conversations}) == len(conversations)
