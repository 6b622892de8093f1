"""Every message of the shared third-party corpora, synced through a real Dovecot.

All files of `../shared/corpora` (mbox files split into messages; licence, readme and
manifest files skipped) go into one INBOX. One sync through `ImapConnector` must finish
without an exception, and for each message the facts must agree with what the stdlib
parser (`BytesHeaderParser`, compat32) reads from the same bytes wherever that parser
finds something usable. Defects are counted per kind and recorded as a test property.
"""

from __future__ import annotations

import collections
import mailbox
import re
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import Message
from email.parser import BytesHeaderParser, BytesParser
from email.policy import compat32
from email.utils import getaddresses, parsedate_to_datetime
from pathlib import Path

import pytest

from connectors.base import Fetched, FolderRole, MessageFacts, RemoteFolder
from connectors.imap import ImapConnector
from tests.conftest import start_dovecot
from tests.support.dovecot import DovecotServer

pytestmark = pytest.mark.dovecot

CORPORA = Path(__file__).resolve().parents[2] / "shared" / "corpora"
NOT_MAIL = ("license", "copying", "notice", "readme", "manifest")
INBOX = RemoteFolder("INBOX", FolderRole.INBOX)
_MAILDIR_NUMBER = re.compile(r"\.M(\d+)\.relight$")
_ANGLE_ID = re.compile(r"<([^<>]+)>")


@dataclass(frozen=True)
class Sample:
    label: str  # path inside the corpora, plus #n for a message of an mbox
    raw: bytes


def corpus_samples() -> Iterator[Sample]:
    """Every message of the corpora, in a stable order."""
    for path in sorted(CORPORA.rglob("*")):
        name = path.name.lower()
        if not path.is_file() or name.startswith(".") or name.startswith(NOT_MAIL):
            continue
        label = str(path.relative_to(CORPORA))
        data = path.read_bytes()
        if not data.startswith(b"From "):
            yield Sample(label, data)
            continue
        box = mailbox.mbox(path, create=False)
        try:
            for number, key in enumerate(box.keys()):
                yield Sample(f"{label}#{number}", box.get_bytes(key))
        finally:
            box.close()


def is_cr_only(raw: bytes) -> bool:
    return b"\r" in raw and b"\n" not in raw


def stdlib_view(raw: bytes) -> Message:
    return BytesHeaderParser(policy=compat32).parsebytes(raw)


def expected_message_id(message: Message) -> str | None:
    value = message.get("Message-ID")
    match = _ANGLE_ID.search(str(value)) if value is not None else None
    if match is None or "@" not in match.group(1):
        return None
    return re.sub(r"\s+", "", match.group(1))


def stdlib_has_sender(message: Message) -> bool:
    value = message.get("From")
    if value is None:
        return False
    addresses = getaddresses([str(value)])
    return any(re.fullmatch(r"[^@\s<>]+@[^@\s<>]+", address) for _, address in addresses)


def stdlib_date_parses(message: Message) -> bool:
    value = message.get("Date")
    if value is None:
        return False
    try:
        parsedate_to_datetime(str(value))
    except (TypeError, ValueError, IndexError, OverflowError):
        return False
    return True


def stdlib_report(raw: bytes, headers: Message) -> tuple[str | None, str | None]:
    """(report type, first Action) of a multipart/report as compat32 reads it."""
    if headers.get_content_type() != "multipart/report":
        return None, None
    for part in _leaf_parts(BytesParser(policy=compat32).parsebytes(raw)):
        kind = part.get_content_type()
        if kind not in ("message/delivery-status", "message/disposition-notification"):
            continue
        action = None
        blocks = part.get_payload()
        for block in blocks if isinstance(blocks, list) else []:
            if action is None and block.get("Action"):
                action = str(block.get("Action")).strip().split()[0].lower()
        return kind.split("/", 1)[1], action
    return None, None


def _leaf_parts(message: Message) -> Iterator[Message]:
    """Leaves and report parts in MIME order, not descending into attached messages."""
    if message.get_content_type() in (
        "message/delivery-status",
        "message/disposition-notification",
    ):
        yield message
    elif message.is_multipart() and message.get_content_maintype() == "multipart":
        for part in message.get_payload():
            yield from _leaf_parts(part)


@pytest.fixture(scope="module")
def corpus_server() -> Iterator[DovecotServer]:
    """A Dovecot of its own, so Maildir file numbers start at 1 and map to samples."""
    if not CORPORA.is_dir():
        pytest.skip(f"shared corpora not found at {CORPORA}")
    server = start_dovecot()
    try:
        yield server
    finally:
        server.stop()


def test_every_corpus_message_syncs_and_matches_the_stdlib(
    corpus_server: DovecotServer, record_property: pytest.RecordProperty
) -> None:
    """Each corpus message syncs without error; ids, subjects, senders, dates match compat32."""
    samples = list(corpus_samples())
    assert len(samples) > 5000, "the corpora README promises about 6,400 messages"
    corpus_server.write_maildir("dana", "INBOX", (sample.raw for sample in samples), seen=False)
    connector = ImapConnector(
        "127.0.0.1",
        corpus_server.port,
        username="dana",
        password=corpus_server.users["dana"],
        security="none",
        batch_size=700,
    )
    with connector:
        facts: list[MessageFacts] = [
            item
            for change in connector.changes(INBOX, None)
            if isinstance(change, Fetched)
            for item in change.messages
        ]
    assert len(facts) == len(samples)

    files = corpus_server.maildir_uids("dana", "INBOX")
    mismatches: list[str] = []
    defects: collections.Counter[str] = collections.Counter()
    cr_only = 0
    for item in facts:
        number = _MAILDIR_NUMBER.search(files[int(item.remote_id)])
        assert number is not None
        sample = samples[int(number.group(1)) - 1]
        if is_cr_only(sample.raw):
            # IMAP lines end in CRLF; Dovecot reads a CR-only file as one long line, so
            # the server itself has no headers to give (parse_header_block does, see
            # tests/test_headers.py). SMTP never delivers such mail.
            cr_only += 1
            continue
        defects.update(defect.split(":", 1)[0] + ":" + defect.split(":", 1)[-1][:40]
                       for defect in item.defects)  # fmt: skip
        mismatches.extend(f"{sample.label}: {problem}" for problem in compare(sample, item))

    record_property("corpus_messages", len(samples))
    record_property("corpus_cr_only_not_compared", cr_only)
    record_property("corpus_defects", dict(defects.most_common()))
    assert defects, "broken corpus mail must show up as defects"
    assert sum(1 for item in facts if item.report is not None) > 100
    assert sum(1 for item in facts if item.excerpt) > 20
    assert not mismatches, "\n".join(mismatches[:40])


def compare(sample: Sample, facts: MessageFacts) -> list[str]:
    """Where our facts miss something the stdlib parser could read."""
    problems = []
    message = stdlib_view(sample.raw)
    wanted_id = expected_message_id(message)
    if wanted_id is None:
        pass
    elif not wanted_id.isascii():  # compat32 leaves 8-bit ids as replacement characters
        if facts.message_id is None:
            problems.append(f"message_id missing, stdlib read {wanted_id!r}")
    elif facts.message_id != wanted_id:
        problems.append(f"message_id {facts.message_id!r} != {wanted_id!r}")
    subject = message.get("Subject")
    if subject is not None and str(subject).strip() and not facts.subject:
        problems.append("subject empty")
    if stdlib_has_sender(message) and facts.sender is None:
        problems.append(f"no sender for From {str(message.get('From'))[:60]!r}")
    if stdlib_date_parses(message) and facts.date is None:
        problems.append(f"no date for {str(message.get('Date'))[:60]!r}")
    report_type, action = stdlib_report(sample.raw, message)
    if report_type is not None:
        if facts.report is None:
            problems.append(f"no report, stdlib found {report_type}")
        elif facts.report.report_type != report_type or action not in (None, facts.report.action):
            found = (facts.report.report_type, facts.report.action)
            problems.append(f"report {found} != {(report_type, action)}")
    if facts.received_at is None or facts.size is None:
        problems.append("no INTERNALDATE or RFC822.SIZE")
    return problems
