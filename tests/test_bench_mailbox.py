"""The benchmark's synthetic mailbox: parseable, deterministic, shaped like a rep's mail."""

from __future__ import annotations

import email
import email.policy
import hashlib
from collections import Counter
from email.message import EmailMessage
from itertools import islice

import pytest

from bench.mailbox import FOLDERS, INBOX, REP_ADDRESS, SENT, folder_messages, messages

N = 1500


def _parse(raw: bytes) -> EmailMessage:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


@pytest.fixture(scope="module")
def mailbox() -> list[tuple[str, bytes]]:
    return list(messages(N, seed=7))


def test_yields_exactly_n_messages_in_inbox_and_sent(mailbox: list[tuple[str, bytes]]) -> None:
    """Exactly N messages come out, split near 45/55 between INBOX and Sent."""
    counts = Counter(folder for folder, _raw in mailbox)
    assert sum(counts.values()) == N
    assert set(counts) == set(FOLDERS)
    assert 0.48 <= counts[SENT] / N <= 0.62


def test_same_seed_same_bytes_other_seed_other_bytes() -> None:
    """The same (n, seed) yields identical bytes; another seed yields another mailbox."""

    def digest(seed: int) -> str:
        sha = hashlib.sha256()
        for folder, raw in messages(300, seed=seed):
            sha.update(folder.encode() + raw)
        return sha.hexdigest()

    assert digest(3) == digest(3)
    assert digest(3) != digest(4)


def test_folder_messages_is_the_folder_share_of_the_stream() -> None:
    """folder_messages yields the same bytes, in the same order, as filtering messages."""
    stream = list(messages(400, seed=5))
    for folder in FOLDERS:
        expected = [raw for where, raw in stream if where == folder]
        assert list(folder_messages(400, folder, seed=5)) == expected


def test_every_message_parses_with_the_headers_a_sync_reads(
    mailbox: list[tuple[str, bytes]],
) -> None:
    """Each message is CRLF RFC 5322 with a unique Message-ID, a zoned Date, From, To, Subject."""
    seen: set[str] = set()
    for folder, raw in mailbox:
        assert b"\r\n\r\n" in raw
        assert b"\n" not in raw.replace(b"\r\n", b"")
        message = _parse(raw)
        assert not message.defects, message.defects
        message_id = str(message["Message-ID"])
        assert message_id.startswith("<")
        assert message_id not in seen
        seen.add(message_id)
        assert message["Date"].datetime.tzinfo is not None
        assert message["From"].addresses
        assert message["To"].addresses
        assert message["Subject"] is not None
        from_rep = message["From"].addresses[0].addr_spec == REP_ADDRESS
        assert from_rep == (folder == SENT)
        assert 200 <= len(raw) <= 12_000


def test_replies_chain_to_earlier_messages(mailbox: list[tuple[str, bytes]]) -> None:
    """In-Reply-To names an earlier message, References ends with it, and replies quote it."""
    earlier: set[str] = set()
    replies = 0
    for _folder, raw in mailbox:
        message = _parse(raw)
        parent = message["In-Reply-To"]
        if parent is not None:
            replies += 1
            assert str(parent) in earlier
            if message["References"] is not None:
                assert str(message["References"]).split()[-1] == str(parent)
        earlier.add(str(message["Message-ID"]))
    assert replies > N // 3


def test_mailbox_holds_the_kinds_a_classifier_must_tell_apart(
    mailbox: list[tuple[str, bytes]],
) -> None:
    """Newsletters, auto-replies, DSN bounces, Cc, encoded names and internal mail all occur."""
    kinds: Counter[str] = Counter()
    for folder, raw in mailbox:
        message = _parse(raw)
        head = raw.split(b"\r\n\r\n", 1)[0]
        kinds["list"] += message["List-Id"] is not None and message["List-Unsubscribe"] is not None
        kinds["auto"] += str(message["Auto-Submitted"]) == "auto-replied"
        kinds["report"] += message.get_content_type() == "multipart/report"
        kinds["cc"] += message["Cc"] is not None
        kinds["encoded"] += b"=?utf-8?" in head
        kinds["freemail"] += b"@gmail.com" in head or b"@gmx.de" in head
        sender = message["From"].addresses[0].domain
        kinds["internal"] += folder == INBOX and sender == "acmesoft.example"
        kinds["automatic reply"] += str(message["Subject"]).startswith("Automatic reply:")
    for kind in kinds:
        assert kinds[kind] > 0, kind
    assert kinds["list"] > N * 0.05


def test_dates_span_most_of_a_year(mailbox: list[tuple[str, bytes]]) -> None:
    """Date headers spread over roughly a year, in more than one time zone."""
    dates = [_parse(raw)["Date"].datetime for _folder, raw in mailbox]
    assert (max(dates) - min(dates)).days >= 250
    assert len({moment.utcoffset() for moment in dates}) >= 4


def test_generator_is_lazy() -> None:
    """A huge mailbox costs nothing until consumed: messages() is a generator, not a list."""
    head = list(islice(messages(10_000_000, seed=1), 5))
    assert len(head) == 5
