"""connectors.headers: raw header bytes to message facts, on clean and on hostile input."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest

from connectors.base import Address, DeliveryReport
from connectors.headers import (
    MAX_REFERENCES,
    MAX_SUBJECT_CHARS,
    decode_part,
    decode_words,
    facts_from_headers,
    parse_delivery_report,
    parse_header_block,
)

CORPORA = Path(__file__).resolve().parents[2] / "shared" / "corpora"

PLAIN = (
    b"From: Pat Prospect <Pat@Prospect.Example>\r\n"
    b'To: dana@acmesoft.example, "Reyes, Dana" <DANA.R@acmesoft.example>\r\n'
    b"Cc: =?utf-8?q?J=C3=B6rg_M=C3=BCller?= <joerg@kunde.example>\r\n"
    b"Subject: Re: Pricing\r\n"
    b"Date: Tue, 05 Mar 2024 14:30:00 +0100\r\n"
    b"Message-ID: <abc.123@prospect.example>\r\n"
    b"In-Reply-To: <q1@acmesoft.example>\r\n"
    b"References: <root@acmesoft.example>\r\n <q1@acmesoft.example>\r\n"
    b"Received: from mx.example by mx2.example; Tue, 5 Mar 2024 14:30:01 +0100\r\n"
    b"List-Id: <sales.acmesoft.example>\r\n"
    b"Auto-Submitted: no\r\n"
    b"\r\n"
    b"Body: not a header\r\n"
)


def corpus_file(relative: str) -> bytes:
    path = CORPORA / relative
    if not path.is_file():
        pytest.skip(f"shared corpora not found ({path})")
    return path.read_bytes()


# -- the ordinary case ------------------------------------------------------------------


def test_plain_block_gives_every_fact() -> None:
    """A clean header block yields ids, addresses, date, subject and classification headers."""
    fields = parse_header_block(PLAIN)
    assert fields.message_id == "abc.123@prospect.example"
    assert fields.in_reply_to == "q1@acmesoft.example"
    assert fields.references == ("root@acmesoft.example", "q1@acmesoft.example")
    assert fields.sender == Address("pat@prospect.example", "Pat Prospect")
    assert fields.to == (
        Address("dana@acmesoft.example"),
        Address("dana.r@acmesoft.example", "Reyes, Dana"),
    )
    assert fields.cc == (Address("joerg@kunde.example", "Jörg Müller"),)
    assert fields.date == datetime(2024, 3, 5, 14, 30, tzinfo=timezone(timedelta(hours=1)))
    assert fields.subject == "Re: Pricing"
    assert fields.headers == (("list-id", "<sales.acmesoft.example>"), ("auto-submitted", "no"))
    assert fields.defects == ()


@pytest.mark.parametrize("ending", [b"\r\n", b"\n", b"\r"], ids=["crlf", "lf", "cr-only"])
def test_line_endings_do_not_matter(ending: bytes) -> None:
    """CRLF, LF and CR-only blocks give the same facts (and the body is never read)."""
    raw = PLAIN.replace(b"\r\n", ending)
    assert parse_header_block(raw) == parse_header_block(PLAIN)


def test_facts_from_headers_adds_what_the_server_said() -> None:
    """facts_from_headers builds MessageFacts with the server's id, arrival, size, thread."""
    arrived = datetime(2024, 3, 5, 13, 31, tzinfo=UTC)
    facts = facts_from_headers("42", PLAIN, received_at=arrived, size=1234, thread_id="777")
    assert (facts.remote_id, facts.received_at, facts.size, facts.thread_id) == (
        "42", arrived, 1234, "777",
    )  # fmt: skip
    assert facts.header("List-Id") == "<sales.acmesoft.example>"
    assert facts.message_id == "abc.123@prospect.example"


# -- broken input ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("date", "expected"),
    [
        ("Tue, 5 Mar 2024 14:30:00 -0000", datetime(2024, 3, 5, 14, 30, tzinfo=UTC)),
        ("5 Mar 2024 14:30:00", datetime(2024, 3, 5, 14, 30, tzinfo=UTC)),
        ("Tue, 05 Mar 2024 14:30:00 GMT", datetime(2024, 3, 5, 14, 30, tzinfo=UTC)),
    ],
)
def test_dates_without_a_zone_are_utc(date: str, expected: datetime) -> None:
    """A date with an unknown or missing zone is read as UTC, never naive."""
    fields = parse_header_block(f"Date: {date}\r\n\r\n".encode())
    assert fields.date == expected
    assert fields.date is not None
    assert fields.date.tzinfo is not None


@pytest.mark.parametrize("date", ["", "Wed, 15 Dec 2010    59:10 -0500", "yesterday", "99999"])
def test_broken_dates_are_none_with_a_defect(date: str) -> None:
    """An unreadable Date gives None and a defect, never an exception."""
    fields = parse_header_block(f"Message-ID: <a@b>\r\nDate: {date}\r\n\r\n".encode())
    assert fields.date is None
    assert any(defect.startswith("date:") for defect in fields.defects)


def _stdlib_date(text: str) -> datetime | None:
    """How the email package reads a Date (no zone -> UTC), the reference of the fast path."""
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _date_samples() -> list[str]:
    """Dates of the common form, valid and not, with the variations it must get right."""
    rng = random.Random(7)  # noqa: S311 - a test's fixed sample
    samples = [
        "Tue, 5 Mar 2024 14:30:00 +0100",
        "5 Mar 2024 14:30 -0000",
        "Tue,5 Mar 2024 14:30:00 +0000 (UTC)",
        "Xyz, 05 mar 2024 23:59:59 -0130 extra words",
        "Tue, 31 Feb 2024 10:00:00 +0100",
        "Tue, 5 Mar 2024 24:00:00 +0100",
        "Tue, 5 Mar 2024 14:30:60 +0100",
        "Tue, 5 Mar 2024 14:30:00 +2400",
        "Tue, 5 Mar 2024 14:30:00 -2359",
        "Tue, 5 Mar 2024 14:30:00 +0199",
        "Tue, 5 Foo 2024 14:30:00 +0100",
        "Tue, 5 Mar 0099 14:30:00 +0100",
        "Tue, 5 Mar 1000 00:00:00 -0000",
        "Tue, 5 Mar 9999 23:59:59 +0000",
        "Tue, 0 Mar 2024 14:30:00 +0100",
        "Tue, 5 Mar 2024 14:30:00 +0100(CET)",
    ]
    months = ["Jan", "feb", "MAR", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
    for _ in range(2000):
        weekday = rng.choice(["", "Mon, ", "Sun,", "Foo, "])
        day = rng.choice([str(rng.randint(0, 32)), f"{rng.randint(0, 32):02d}"])
        seconds = rng.choice(["", f":{rng.randint(0, 61):02d}"])
        zone = f"{rng.choice('+-')}{rng.randint(0, 25):02d}{rng.randint(0, 99):02d}"
        tail = rng.choice(["", " (CET)", " x y"])
        samples.append(
            f"{weekday}{day} {rng.choice(months)} {rng.randint(1000, 2100)} "
            f"{rng.randint(0, 25):02d}:{rng.randint(0, 61):02d}{seconds} {zone}{tail}"
        )
    return samples


def test_common_dates_read_exactly_as_the_email_package_reads_them() -> None:
    """The fast path for the usual Date form gives the same instant and offset as
    `parsedate_to_datetime`, and the same defect when the date is impossible."""
    for text in _date_samples():
        fields = parse_header_block(f"Message-ID: <a@b>\r\nDate: {text}\r\n\r\n".encode())
        expected = _stdlib_date(text)
        assert fields.date == expected, text
        if expected is None:
            assert fields.defects == ("date: unparseable",), text
        else:
            assert fields.date is not None
            assert fields.date.utcoffset() == expected.utcoffset(), text
            assert fields.defects == (), text


def test_missing_message_id_and_ids_without_brackets() -> None:
    """No Message-ID: None and a defect; an id without <> is still read, with a defect."""
    missing = parse_header_block(b"Subject: x\r\n\r\n")
    assert missing.message_id is None
    assert "message-id: missing" in missing.defects
    bare = parse_header_block(b"Message-ID: abc@host.example\r\nIn-Reply-To: q@x.example\r\n\r\n")
    assert bare.message_id == "abc@host.example"
    assert bare.in_reply_to == "q@x.example"
    assert "message-id: id without angle brackets" in bare.defects


def test_references_with_junk_and_folded_ids() -> None:
    """References keeps the bracketed ids, joins split fields and unfolds ids with spaces."""
    raw = (
        b"References: <foo@bar.net>\r\n"
        b"References: junk text <baz@bar.net>, <invalid.\r\n something@bar.net> <>\r\n\r\n"
    )
    fields = parse_header_block(raw)
    assert fields.references == ("foo@bar.net", "baz@bar.net", "invalid.something@bar.net")
    assert parse_header_block(b"In-Reply-To: \r\n\r\n").in_reply_to is None


def test_huge_references_keep_root_and_latest() -> None:
    """Over 200 references: the root and the 199 latest are kept, with a defect."""
    ids = b" ".join(b"<id%d@x.example>" % n for n in range(1000))
    fields = parse_header_block(b"References: " + ids + b"\r\n\r\n")
    assert len(fields.references) == MAX_REFERENCES
    assert fields.references[0] == "id0@x.example"
    assert fields.references[-1] == "id999@x.example"
    assert "references: truncated" in fields.defects


@pytest.mark.parametrize(
    ("encoded", "text"),
    [
        ("=?utf-8?q?Gr=C3=BC=C3=9Fe?= aus =?iso-8859-1?b?S/Zsbg==?=", "Grüße aus Köln"),
        ("=?utf-8?q?a?= =?utf-8?q?b?=", "ab"),  # whitespace between words disappears
        ("=?utf-8?b?w6k=?==?utf-8?b?w6k=?=", "éé"),
        ("=?utf-8?q?=C3?= =?utf-8?q?=A9t=C3=A9?=", "été"),  # a character split over words
        ("=?NONE?B?VEVTVA=?=", "TEST"),  # unknown charset, bad padding
        ("=?x-unheard-of?q?caf=E9?=", "caf\ufffd"),
        ("=?utf-8*de?q?Hallo?=", "Hallo"),  # RFC 2231 language suffix
        ("=?base64?q?abc?=", "abc"),  # a codec that is not a text encoding
        ("=?utf-8?x?nope?=", "=?utf-8?x?nope?="),  # not an encoded word at all
    ],
)
def test_encoded_words_never_raise(encoded: str, text: str) -> None:
    """RFC 2047 words decode, joined as the RFC says; unknown charsets fall back quietly."""
    assert decode_words(encoded, []) == text


def test_raw_8bit_headers_try_utf8_then_latin1() -> None:
    """8-bit header bytes are UTF-8 when they decode as such, else latin-1 with a defect."""
    utf8 = parse_header_block("Subject: Grüße\r\n\r\n".encode())
    assert utf8.subject == "Grüße"
    assert not any("8-bit" in defect for defect in utf8.defects)
    latin1 = parse_header_block(
        "Subject: Verão\r\nFrom: Zoë <z@x.example>\r\n\r\n".encode("latin-1")
    )
    assert latin1.subject == "Verão"
    assert latin1.sender == Address("z@x.example", "Zoë")
    assert "subject: raw 8-bit bytes read as latin-1" in latin1.defects


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("bob@x.example", [("bob@x.example", "")]),
        ("<bob@x.example>", [("bob@x.example", "")]),
        ('"O\'Neil, Bob (Sales)" <Bob@X.example>', [("bob@x.example", "O'Neil, Bob (Sales)")]),
        ("bob@x.example (Bob Smith)", [("bob@x.example", "Bob Smith")]),
        ("Team: a@x.example, b@x.example;", [("a@x.example", ""), ("b@x.example", "")]),
        (", a@x.example,, B@x.example ,", [("a@x.example", ""), ("b@x.example", "")]),
        ("a@x.example, A@X.EXAMPLE", [("a@x.example", "")]),  # duplicates dropped
        ("undisclosed-recipients:;", []),
        ("<Undisclosed-Recipient:@mailman.enron.com;>", []),
        ("=?UTF-8?B?TXlTdXJ2ZXk=?=", []),
    ],
)
def test_address_lists(value: str, expected: list[tuple[str, str]]) -> None:
    """Address fields: lower-cased, names decoded, groups and junk handled, never raising."""
    fields = parse_header_block(f"To: {value}\r\n\r\n".encode())
    assert [(a.email, a.name) for a in fields.to] == expected


def test_bare_from_local_part_is_kept() -> None:
    """From: MAILER-DAEMON (no domain) is kept: the rules read the local part."""
    assert parse_header_block(b"From: MAILER-DAEMON\r\n\r\n").sender == Address("mailer-daemon")


def test_first_line_folded_and_lines_without_colon() -> None:
    """A first line starting with a space is still a field; lines without a colon are skipped."""
    raw = b" From: A <a@x.example>\nSubject: s\nthis is not a header\nTo: b@x.example\n\nbody"
    fields = parse_header_block(raw)
    assert fields.sender == Address("a@x.example", "A")
    assert fields.to == (Address("b@x.example"),)
    assert "header: first line starts with whitespace" in fields.defects
    assert "header: line without a field name skipped" in fields.defects


def test_huge_subject_and_address_lists_are_capped() -> None:
    """A 1 MB subject and a 10,000-address To are cut to their caps, with defects."""
    subject = b"Subject: " + b"=?utf-8?q?abc?= " * 60_000 + b"\r\n"
    to = b"To: " + b", ".join(b"u%d@x.example" % n for n in range(10_000)) + b"\r\n"
    fields = parse_header_block(subject + to + b"\r\n")
    assert len(fields.subject) == MAX_SUBJECT_CHARS
    assert len(fields.to) == 500
    assert "subject: truncated" in fields.defects
    assert any(defect.startswith("to: ") for defect in fields.defects)


def test_garbage_never_raises() -> None:
    """Random bytes, binary junk and truncated blocks all parse without an exception."""
    generator = random.Random(20240305)  # noqa: S311 - fuzzing, not cryptography
    alphabet = b':<>@"(),;=?\r\n \t\\abcQB-_\x00\xff\xc3\xa9'
    for _ in range(3000):
        size = generator.randint(0, 300)
        parse_header_block(bytes(generator.choice(alphabet) for _ in range(size)))
    for cut in range(len(PLAIN)):
        parse_header_block(PLAIN[:cut])


# -- the nastiest corpus samples ------------------------------------------------------------

ERRORS = "mikel-mail/spec/fixtures/emails/error_emails/"
LOW = "jhillyerd-enmime/testdata/low-quality/"


def test_corpus_bad_dates_and_in_reply_to() -> None:
    """mikel bad_date_header: empty Date -> None; In-Reply-To without <> still read."""
    fields = parse_header_block(corpus_file(ERRORS + "bad_date_header.eml"))
    assert fields.date is None
    assert fields.in_reply_to == "someone@yahoo.com"
    assert fields.sender == Address("infoz@reactive-outpost.com", "Grants-Notification")
    assert parse_header_block(corpus_file(ERRORS + "bad_date_header2.eml")).date is None


def test_corpus_encoded_and_8bit_subjects() -> None:
    """mikel samples: unknown-charset word, raw latin-1 and raw UTF-8 subjects decode."""
    assert parse_header_block(corpus_file(ERRORS + "bad_encoded_subject.eml")).subject == "TEST"
    invalid = parse_header_block(corpus_file(ERRORS + "invalid_subject_characters.eml"))
    assert invalid.subject.startswith("Formação FrenetikPolis")
    assert invalid.sender is not None
    assert invalid.sender.name == "Formação Frenetikpolis"
    trademark = parse_header_block(corpus_file(ERRORS + "trademark_character_in_subject.eml"))
    assert trademark.subject == "GA.comô has a lead for you"


def test_corpus_odd_address_fields() -> None:
    """mikel: a To with an empty first item, a To folded over a blank line, empty groups."""
    weird = parse_header_block(corpus_file(ERRORS + "weird_to_header.eml"))
    assert [a.email for a in weird.to] == ["user-example@aol.com", "e-s-a-s-2200@app.ar.com"]
    folded = parse_header_block(corpus_file(ERRORS + "new_line_in_to_header.eml"))
    assert len(folded.to) == 6
    assert folded.to[-1].email == "cc@c-l-example.com"
    empty = parse_header_block(corpus_file(ERRORS + "empty_group_lists.eml"))
    assert empty.to == ()
    assert empty.message_id == "203751.85280.qm@web82107.mail.mud.yahoo.com"
    assert parse_header_block(corpus_file(ERRORS + "empty_in_reply_to.eml")).in_reply_to is None


def test_corpus_broken_references() -> None:
    """mikel multiple_references_with_one_invalid: both valid ids kept, the broken fold dropped."""
    fields = parse_header_block(corpus_file(ERRORS + "multiple_references_with_one_invalid.eml"))
    assert fields.references[:2] == ("foo@bar.net", "baz@bar.net")
    assert fields.message_id == "105647271315.NCV17523@x263.net"


@pytest.mark.parametrize(
    "name", ["bad-header-start.raw", "bad-header-wrap.raw", "empty-header.raw",
             "unk-charset-part.raw", "incorrect-charset.raw"],
)  # fmt: skip
def test_corpus_low_quality_headers(name: str) -> None:
    """enmime low-quality samples still give the sender, subject, id and date."""
    fields = parse_header_block(corpus_file(LOW + name))
    assert fields.sender == Address("james@makita.skynet", "James Hillyerd")
    assert fields.message_id == "07B7061D-2676-487E-942E-C341CE4D13DC@makita.skynet"
    assert fields.subject in ("plain text", "Attachment")
    assert fields.date is not None


def test_corpus_stack_overflow_to_header() -> None:
    """MimeKit stack-overflow.txt: a 135 KB To of encoded words is capped, the rest intact."""
    fields = parse_header_block(corpus_file("jstedfast-MimeKit/UnitTests/TestData/messages/"
                                            "stack-overflow.txt"))  # fmt: skip
    assert fields.sender == Address("test@test.com", "test")
    assert fields.subject == "Message Subject"
    assert fields.message_id == "aasfasdfasdfa@bb"
    assert "to: field truncated" in fields.defects


def test_corpus_long_header() -> None:
    """flanker long-header.eml: a 210 KB encoded Subject is decoded and capped."""
    fields = parse_header_block(corpus_file("mailgun-flanker/tests/fixtures/messages/"
                                            "long-header.eml"))  # fmt: skip
    assert fields.subject.startswith("Die heiße Zypernsonne quälte Max und Victoria ja böse")
    assert len(fields.subject) == MAX_SUBJECT_CHARS
    assert fields.sender == Address("bob@example.com")


# -- body parts: excerpt and delivery report ----------------------------------------------


@pytest.mark.parametrize(
    ("data", "encoding", "charset", "complete", "text"),
    [
        (b"w6l0w6k=", "base64", "utf-8", True, "été"),
        (b"w6l0\r\nw6kg", "BASE64", "utf-8", False, "été "),
        (b"w6l0w6kgw6", "base64", "utf-8", False, "été "),  # cut mid-quantum by the fetch
        (b"caf=E9 cr=\r\n=E8me=", "quoted-printable", "iso-8859-1", False, "café crème"),
        (b"\xc3\xa9t\xc3", "8bit", "utf-8", False, "ét"),  # a character cut in half: dropped
        (b"caf\xe9", "8bit", "x-no-such-charset", True, "caf\ufffd"),
        (b"caf\xe9", "7bit", None, True, "café"),  # undeclared, not UTF-8: latin-1
        (b"caf\xc3\xa9", "7bit", None, False, "café"),
        (b"abc", "x-uuencode", "base64", True, "abc"),  # a codec that is not for text
    ],
)
def test_decode_part(
    data: bytes, encoding: str, charset: str | None, complete: bool, text: str
) -> None:
    """Whole or partial body parts decode whatever their transfer encoding and charset."""
    assert decode_part(data, encoding, charset, complete=complete) == text


def test_delivery_report_fields() -> None:
    """Action (first seen) and every Final-Recipient, folded lines and all."""
    body = (
        b"Reporting-MTA: dns; mx.example\r\n\r\n"
        b"Final-Recipient: rfc822;\r\n  Pat@Prospect.Example\r\nAction: failed\r\n"
        b"Status: 5.1.1\r\n\r\n"
        b"Final-Recipient: rfc822; lee@prospect.example\r\nAction: delayed\r\n"
    )
    assert parse_delivery_report("delivery-status", body) == DeliveryReport(
        "delivery-status", "failed", ("pat@prospect.example", "lee@prospect.example")
    )
    assert parse_delivery_report("delivery-status", b"\xff\xfe junk") == DeliveryReport(
        "delivery-status"
    )


def test_date_far_outside_any_mail_is_a_defect() -> None:
    """A date that parses but cannot be stored (year 9999 west of UTC) is dropped, noted."""
    fields = parse_header_block(b"Date: 31 Dec 9999 23:59 -1200\r\nSubject: x\r\n\r\n")
    assert fields.date is None
    assert "date: out of range" in fields.defects
