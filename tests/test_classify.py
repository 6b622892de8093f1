"""Unit tests for `rules.classify`, `rules.return_dates` and `rules.refusal`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from rules.classify import Classification, Kind, classify
from rules.message import Address, DeliveryReport, Folder, Message
from rules.refusal import says_no

REP = "dana@acmesoft.example"
OWN = frozenset({REP, "sales@acmesoft.example"})
WHEN = datetime(2020, 12, 1, 9, 30, tzinfo=UTC)  # a Tuesday
REP_MESSAGE = "rep-1@acmesoft.example"


@dataclass(frozen=True)
class Case:
    """One message and what `classify` must say about it."""

    name: str
    kind: Kind
    reason: str  # the start of the expected reason
    headers: dict[str, str] = field(default_factory=dict)
    subject: str = "Re: our proposal"
    sender: str = "pat@prospect.example"
    excerpt: str | None = None
    folder: Folder = Folder.INBOX
    report: DeliveryReport | None = None
    in_reply_to: str | None = None

    def message(self) -> Message:
        return Message(
            at=WHEN,
            folder=self.folder,
            message_id=f"{self.name.replace(' ', '-')}@test.example",
            in_reply_to=self.in_reply_to,
            sender=Address(self.sender),
            to=(Address(REP),),
            subject=self.subject,
            headers=tuple((name.lower(), value) for name, value in self.headers.items()),
            excerpt=self.excerpt,
            report=self.report,
        )


DSN = "multipart/report; report-type=delivery-status; boundary=x"
MDN = "multipart/report; report-type=disposition-notification; boundary=x"
DAEMON = "mailer-daemon@mx.prospect.example"

CASES = [
    # --- people ---------------------------------------------------------------------------
    Case("plain reply", Kind.GENUINE, "genuine: no automatic sign", excerpt="Sounds good."),
    Case(
        "suppress header alone",
        Kind.GENUINE,
        "genuine: no automatic sign",
        headers={"X-Auto-Response-Suppress": "All"},
    ),
    Case("auto-submitted no", Kind.GENUINE, "genuine", headers={"Auto-Submitted": "no"}),
    Case("human forward of a bounce", Kind.GENUINE, "genuine", subject="FW: Undeliverable: Q3"),
    Case("human reply to an OOO", Kind.GENUINE, "genuine", subject="Re: Automatic reply: Q3"),
    Case("human OOO note with a dash", Kind.GENUINE, "genuine", subject="Out of Office - Friday"),
    Case(
        "Notes reply to an OOO", Kind.GENUINE, "genuine", subject="Re: Jo Doe is out of the office."
    ),
    Case("delivered without receipt text", Kind.GENUINE, "genuine", subject="Delivered: the deck"),
    Case("read: without receipt text", Kind.GENUINE, "genuine", subject="Read: this article"),
    Case(
        "absence subject without absence text",
        Kind.GENUINE,
        "genuine",
        subject="Out of office",
        excerpt="Let's talk pricing on Thursday.",
    ),
    Case(
        "reply to the rep through a list",
        Kind.GENUINE,
        "genuine: replies to the rep, header List-Id",
        headers={"List-Id": "<sales.prospect.example>"},
        in_reply_to=REP_MESSAGE,
    ),
    Case(
        "reply to the rep through a sales tool",
        Kind.GENUINE,
        "genuine: replies to the rep, header List-Unsubscribe",
        headers={"List-Unsubscribe": "<https://tool.example/u/1>"},
        in_reply_to=REP_MESSAGE,
    ),
    Case(
        "rep's own mail sent through a sequence tool",
        Kind.GENUINE,
        "genuine: the rep's own mail, header Precedence: bulk ignored",
        headers={"List-Unsubscribe": "<https://tool.example/u/1>", "Precedence": "bulk"},
        sender=REP,
        folder=Folder.SENT,
    ),
    Case(
        "rep's forward keeps a bounce subject",
        Kind.GENUINE,
        "genuine: the rep's own mail, subject bounce",
        subject="Nondeliverable mail",
        sender=REP,
        folder=Folder.SENT,
    ),
    # --- RFC 3834 and vendor headers -------------------------------------------------------
    Case(
        "auto-submitted auto-replied",
        Kind.AUTO_REPLY,
        "header Auto-Submitted: auto-replied",
        headers={"Auto-Submitted": "auto-replied"},
    ),
    Case(
        "zimbra vacation",
        Kind.AUTO_REPLY,
        "header Auto-Submitted: auto-replied (zimbra; vacation)",
        headers={"Auto-Submitted": "auto-replied (zimbra; vacation)"},
    ),
    Case(
        "auto-generated notice",
        Kind.AUTO_REPLY,
        "header Auto-Submitted: auto-generated",
        headers={"Auto-Submitted": "auto-generated"},
    ),
    Case(
        "precedence auto_reply",
        Kind.AUTO_REPLY,
        "header Precedence: auto_reply",
        headers={"Precedence": "auto_reply"},
    ),
    Case("precedence bulk", Kind.BULK, "header Precedence: bulk", headers={"Precedence": "bulk"}),
    Case("precedence list", Kind.BULK, "header Precedence: list", headers={"Precedence": "list"}),
    Case("precedence junk", Kind.BULK, "header Precedence: junk", headers={"Precedence": "junk"}),
    Case("x-autoreply", Kind.AUTO_REPLY, "header X-Autoreply: yes", headers={"X-Autoreply": "yes"}),
    Case("x-autorespond", Kind.AUTO_REPLY, "header X-Autorespond", headers={"X-Autorespond": "1"}),
    Case(
        "x-autoresponder",
        Kind.AUTO_REPLY,
        "header X-Autoresponder",
        headers={"X-Autoresponder": "true"},
    ),
    Case(
        "x-mail-autoreply",
        Kind.AUTO_REPLY,
        "header X-Mail-Autoreply",
        headers={"X-Mail-Autoreply": "yes"},
    ),
    Case(
        "x-autogenerated",
        Kind.AUTO_REPLY,
        "header X-Autogenerated: Reply",
        headers={"X-Autogenerated": "Reply"},
    ),
    Case(
        "apple vacation",
        Kind.AUTO_REPLY,
        "header X-Apple-Action: vacation",
        headers={"X-Apple-Action": "vacation"},
    ),
    Case(
        "exchange generated",
        Kind.AUTO_REPLY,
        "header X-MS-Exchange-Generated-Message-Source",
        headers={"X-MS-Exchange-Generated-Message-Source": "Mailbox Rules Agent"},
    ),
    Case(
        "exchange inbox rule",
        Kind.AUTO_REPLY,
        "header X-MS-Exchange-Inbox-Rules-Loop",
        headers={"X-MS-Exchange-Inbox-Rules-Loop": "pat@prospect.example"},
    ),
    Case(
        "rep's own auto-reply in Sent",
        Kind.AUTO_REPLY,
        "header Auto-Submitted",
        headers={"Auto-Submitted": "auto-replied"},
        sender=REP,
        folder=Folder.SENT,
    ),
    # --- delivery reports ------------------------------------------------------------------
    Case(
        "dsn failed",
        Kind.BOUNCE,
        "report delivery-status: Action failed",
        headers={"Content-Type": DSN},
        report=DeliveryReport("delivery-status", "failed", ("pat@prospect.example",)),
        sender=DAEMON,
    ),
    Case(
        "dsn delayed",
        Kind.DELAY,
        "report delivery-status: Action delayed",
        headers={"Content-Type": DSN},
        report=DeliveryReport("delivery-status", "delayed"),
    ),
    Case(
        "dsn relayed",
        Kind.DELAY,
        "report delivery-status: Action relayed",
        headers={"Content-Type": DSN},
        report=DeliveryReport("delivery-status", "relayed"),
    ),
    Case(
        "postfix bounce with auto-submitted",
        Kind.BOUNCE,
        "header Auto-Submitted: auto-replied; kind from report delivery-status",
        headers={"Auto-Submitted": "auto-replied", "Content-Type": DSN},
        report=DeliveryReport("delivery-status", "failed"),
        sender=DAEMON,
    ),
    Case(
        "read receipt",
        Kind.READ_RECEIPT,
        "report disposition-notification",
        headers={"Content-Type": MDN},
        report=DeliveryReport("disposition-notification"),
    ),
    Case(
        "abuse feedback report",
        Kind.BULK,
        "report feedback-report",
        headers={"Content-Type": "multipart/report; report-type=feedback-report"},
        report=DeliveryReport("feedback-report"),
    ),
    Case(
        "calendar reply content type",
        Kind.CALENDAR,
        "content-type calendar",
        headers={"Content-Type": 'text/calendar; method="REPLY"; charset=utf-8'},
        subject="Meeting",
    ),
    # --- envelope and sender ---------------------------------------------------------------
    Case(
        "null return path, failure text",
        Kind.BOUNCE,
        "header Return-Path: <>; kind from text bounce",
        headers={"Return-Path": "<>"},
        subject="Nyaan",
        excerpt="The following address failed: 550 5.1.1 user unknown",
    ),
    Case(
        "null return path alone",
        Kind.AUTO_REPLY,
        "header Return-Path: <>",
        headers={"Return-Path": "<>"},
        subject="Hello",
    ),
    Case(
        "exim failed recipients",
        Kind.BOUNCE,
        "header X-Failed-Recipients: pat@prospect.example",
        headers={"X-Failed-Recipients": "pat@prospect.example"},
        subject="Hello",
    ),
    Case("mailer-daemon", Kind.BOUNCE, "sender local part: mailer-daemon", sender=DAEMON),
    Case("postmaster", Kind.BOUNCE, "sender local part: postmaster", sender="postmaster@x.example"),
    Case("noreply", Kind.BULK, "sender local part: noreply", sender="noreply@crm.example"),
    Case("do-not-reply", Kind.BULK, "sender local part: do-not-reply", sender="do-not-reply@x.io"),
    Case("bounces", Kind.BOUNCE, "sender local part: bounces", sender="bounces@lists.example"),
    # --- subjects --------------------------------------------------------------------------
    Case(
        "outlook",
        Kind.AUTO_REPLY,
        "subject auto-reply: Automatic reply:",
        subject="Automatic reply: Q3",
    ),
    Case(
        "auto-reply", Kind.AUTO_REPLY, "subject auto-reply: Auto-Reply:", subject="Auto-Reply: Q3"
    ),
    Case(
        "exchange 2000",
        Kind.AUTO_REPLY,
        "subject auto-reply: Out of Office AutoReply:",
        subject="Out of Office AutoReply: Q3",
    ),
    Case(
        "gateway tag",
        Kind.AUTO_REPLY,
        "subject auto-reply: [EXTERNAL] Automatic reply:",
        subject="[EXTERNAL] Automatic reply: Q3",
    ),
    Case(
        "lotus notes",
        Kind.AUTO_REPLY,
        "subject auto-reply",
        subject="Jo Doe/HOU/ECT is out of the office.",
    ),
    Case(
        "german",
        Kind.AUTO_REPLY,
        "subject auto-reply: Abwesenheitsnotiz:",
        subject="Abwesenheitsnotiz: Angebot",
    ),
    Case(
        "french",
        Kind.AUTO_REPLY,
        "subject auto-reply: Réponse automatique :",
        subject="Réponse automatique : Devis",
    ),
    Case(
        "spanish",
        Kind.AUTO_REPLY,
        "subject auto-reply: Respuesta automática:",
        subject="Respuesta automática: Oferta",
    ),
    Case("italian", Kind.AUTO_REPLY, "subject auto-reply", subject="Risposta automatica: Offerta"),
    Case("dutch", Kind.AUTO_REPLY, "subject auto-reply", subject="Automatisch antwoord: Offerte"),
    Case("swedish", Kind.AUTO_REPLY, "subject auto-reply", subject="Automatiskt svar: Offert"),
    Case(
        "bare out of office with absence text",
        Kind.AUTO_REPLY,
        "subject auto-reply: Out of office",
        subject="Out of office",
        excerpt="I am on vacation until 7 December.",
    ),
    Case(
        "undeliverable", Kind.BOUNCE, "subject bounce: Undeliverable:", subject="Undeliverable: Q3"
    ),
    Case(
        "postfix subject",
        Kind.BOUNCE,
        "subject bounce: Undelivered Mail Returned to Sender",
        subject="Undelivered Mail Returned to Sender",
    ),
    Case(
        "gmail failure",
        Kind.BOUNCE,
        "subject bounce",
        subject="Delivery Status Notification (Failure)",
    ),
    Case("exim subject", Kind.BOUNCE, "subject bounce", subject="Mail delivery failed: returning"),
    Case("qmail subject", Kind.BOUNCE, "subject bounce: failure notice", subject="failure notice"),
    Case("german bounce", Kind.BOUNCE, "subject bounce: Unzustellbar", subject="Unzustellbar: Q3"),
    Case("french bounce", Kind.BOUNCE, "subject bounce: Non remis :", subject="Non remis : Devis"),
    Case("dutch bounce", Kind.BOUNCE, "subject bounce", subject="Onbestelbaar: Offerte"),
    Case(
        "gmail delay", Kind.DELAY, "subject delay", subject="Delivery Status Notification (Delay)"
    ),
    Case(
        "exchange delivered receipt",
        Kind.DELAY,
        "subject delay: Delivered:",
        subject="Delivered: Q3",
        excerpt="Your message was delivered to the following recipient(s).",
    ),
    Case(
        "outlook read receipt",
        Kind.READ_RECEIPT,
        "subject receipt: Read:",
        subject="Read: Q3",
        excerpt="Your message was read on Tuesday.",
    ),
    Case("accepted", Kind.CALENDAR, "subject calendar: Accepted:", subject="Accepted: Demo @ Tue"),
    Case("declined", Kind.CALENDAR, "subject calendar", subject="Declined: Demo"),
    Case("tentative", Kind.CALENDAR, "subject calendar", subject="Tentative: Demo"),
    Case("german calendar", Kind.CALENDAR, "subject calendar", subject="Angenommen: Demo"),
    # --- bulk ------------------------------------------------------------------------------
    Case(
        "list-id",
        Kind.BULK,
        "header List-Id: <news.vendor.example>",
        headers={"List-Id": "<news.vendor.example>"},
    ),
    Case(
        "list-unsubscribe",
        Kind.BULK,
        "header List-Unsubscribe",
        headers={"List-Unsubscribe": "<mailto:u@vendor.example>"},
    ),
    Case(
        "feedback-id",
        Kind.BULK,
        "header Feedback-ID",
        headers={"Feedback-ID": "1:campaign:esp"},
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_classification_table(case: Case) -> None:
    """Each message of the table gets its kind, and the reason names the rule that fired."""
    verdict = classify(case.message(), OWN, frozenset({REP_MESSAGE}))
    assert verdict.kind is case.kind
    assert verdict.reason.startswith(case.reason), verdict.reason


def test_table_is_large_enough() -> None:
    """The table covers at least 40 cases and every kind."""
    assert len(CASES) >= 40
    assert {case.kind for case in CASES} == set(Kind)


def test_first_rule_is_the_reason() -> None:
    """With several signs present, the reason is the first rule in SPEC order."""
    message = Case(
        "many",
        Kind.AUTO_REPLY,
        "",
        headers={"Precedence": "bulk", "Auto-Submitted": "auto-replied", "List-Id": "<l>"},
        subject="Automatic reply: Q3",
    ).message()
    verdict = classify(message, OWN)
    assert verdict.reason.startswith("header Auto-Submitted: auto-replied")
    assert verdict.rule == "header Auto-Submitted"
    assert verdict.kind is Kind.AUTO_REPLY


def test_bounce_names_failed_recipients() -> None:
    """A bounce lists the report's recipients and X-Failed-Recipients, lower-case, once."""
    message = Case(
        "bounce",
        Kind.BOUNCE,
        "",
        headers={"Content-Type": DSN, "X-Failed-Recipients": "Pat@Prospect.example, b@x.example"},
        report=DeliveryReport("delivery-status", "failed", ("pat@prospect.example",)),
        sender=DAEMON,
    ).message()
    assert classify(message, OWN).failed_recipients == ("pat@prospect.example", "b@x.example")


def test_bounce_recipients_from_text_skip_own_and_daemon() -> None:
    """Without a report, addresses in the text name the failure, never the rep or a daemon."""
    excerpt = (
        f"Your message to pat@prospect.example from {REP} could not be delivered.\n"
        "Reported by postmaster@mx.prospect.example"
    )
    message = Case("text bounce", Kind.BOUNCE, "", sender=DAEMON, excerpt=excerpt).message()
    assert classify(message, OWN).failed_recipients == ("pat@prospect.example",)


def test_replies_need_the_rep_message_id() -> None:
    """List mail that replies to someone else's message is still bulk."""
    message = Case(
        "list",
        Kind.BULK,
        "",
        headers={"List-Id": "<l.example>"},
        in_reply_to="someone-else@x.example",
    ).message()
    assert classify(message, OWN, frozenset({REP_MESSAGE})).kind is Kind.BULK


def test_own_address_makes_mail_outbound_in_any_folder() -> None:
    """Mail From one of the rep's addresses is the rep's own, even in the Inbox."""
    message = Case(
        "cc to self", Kind.GENUINE, "", headers={"List-Unsubscribe": "<u>"}, sender=REP
    ).message()
    assert classify(message, OWN).kind is Kind.GENUINE


def test_classification_refuses_inconsistent_values() -> None:
    """A genuine verdict with a return date or failed recipients cannot be built."""
    with pytest.raises(ValueError, match="return date"):
        Classification(Kind.GENUINE, "genuine: x", return_date=date(2020, 1, 1))
    with pytest.raises(ValueError, match="failed recipients"):
        Classification(Kind.AUTO_REPLY, "x", failed_recipients=("a@b.example",))
    with pytest.raises(ValueError, match="reason"):
        Classification(Kind.BULK, "")


def test_message_refuses_bad_values() -> None:
    """Naive times, bracketed ids, upper-case addresses and header names are refused."""
    with pytest.raises(ValueError, match="timezone-aware"):
        Message(at=datetime(2020, 1, 1))
    with pytest.raises(ValueError, match="angle brackets"):
        Message(at=WHEN, message_id="<a@b>")
    with pytest.raises(ValueError, match="lower-case"):
        Address("Pat@Prospect.example")
    with pytest.raises(ValueError, match="header names"):
        Message(at=WHEN, headers=(("List-Id", "x"),))
    with pytest.raises(ValueError, match=r"folder|not a valid"):
        Message(at=WHEN, folder="archive")  # type: ignore[arg-type]
    assert Message(at=WHEN, folder="sent").folder is Folder.SENT  # type: ignore[arg-type]


# --- return dates -----------------------------------------------------------------------------


def _ooo(excerpt: str, at: datetime = WHEN, subject: str = "Automatic reply: Q3") -> date | None:
    message = Message(at=at, subject=subject, excerpt=excerpt, sender=Address("pat@p.example"))
    verdict = classify(message, OWN)
    assert verdict.kind is Kind.AUTO_REPLY
    return verdict.return_date


@pytest.mark.parametrize(
    ("excerpt", "expected"),
    [
        ("I am out of the office. I will be back on Monday 7 December.", date(2020, 12, 7)),
        ("Out of office, returning 12/07.", date(2020, 12, 7)),
        ("Ich bin im Urlaub und ab 7.12. wieder im Büro.", date(2020, 12, 7)),
        ("Ich bin abwesend, zurück am 7.12.2020.", date(2020, 12, 7)),
        ("Je suis absent, de retour le 7 décembre.", date(2020, 12, 7)),
        ("Estoy fuera de la oficina, de vuelta el 7 de diciembre.", date(2020, 12, 7)),
        ("Sono in ferie fino al 7 dicembre.", date(2020, 12, 7)),
        ("Ik ben afwezig tot en met 7 december.", date(2020, 12, 7)),
        ("On vacation from Nov 30 until Dec 4th, 2020.", date(2020, 12, 4)),
        ("I'm on leave 2020-12-01 to 2020-12-09, back 2020-12-10.", date(2020, 12, 10)),
        ("Out of the office from 11/27/2020 until 12/3/2020.", date(2020, 12, 3)),
        ("I am away until Thursday.", date(2020, 12, 3)),
        ("Out of the office today, back tomorrow.", date(2020, 12, 2)),
        ("I am out of the office and will return Dec. 7-8.", date(2020, 12, 8)),
    ],
)
def test_return_date_languages(excerpt: str, expected: date) -> None:
    """Out-of-office texts in several languages and shapes name the day the sender is back."""
    assert _ooo(excerpt) == expected


def test_return_date_without_year_rolls_into_next_year() -> None:
    """A day without a year is its next occurrence: "January 4" written on Dec 28 is next year."""
    assert _ooo("I am on vacation until January 4.", at=datetime(2020, 12, 28, tzinfo=UTC)) == date(
        2021, 1, 4
    )


def test_return_date_in_the_past_is_ignored() -> None:
    """A stale text ("back on 7 December 2019", or 7 December read on the 10th) names no date."""
    assert _ooo("I will be back on 7 December 2019.") is None
    assert _ooo("I am out of the office until 7 December.", at=WHEN + timedelta(days=9)) is None


def test_return_date_is_relative_to_the_reply_not_the_clock() -> None:
    """The same text read against two reply dates gives two different days."""
    text = "I am out of the office until Monday."
    assert _ooo(text, at=datetime(2020, 12, 1, tzinfo=UTC)) == date(2020, 12, 7)
    assert _ooo(text, at=datetime(2021, 3, 2, tzinfo=timezone(timedelta(hours=-5)))) == date(
        2021, 3, 8
    )


def test_return_date_ambiguous_numbers_pick_the_nearer_reading() -> None:
    """05/12 read on 1 December is 5 December (day first), not 12 May."""
    assert _ooo("Out of office until 05/12.") == date(2020, 12, 5)


def test_no_return_date_when_none_is_named() -> None:
    """An out-of-office text without a readable date yields None (the caller pauses)."""
    assert _ooo("I am out of the office with limited access to email.") is None
    assert _ooo("Please call +1 713-853-3465 or ext. 3-9048.") is None


def test_no_return_date_for_an_acknowledgement() -> None:
    """An auto-acknowledgement that is no absence notice carries no return date."""
    message = Message(
        at=WHEN,
        subject="Re: ticket",
        headers=(("auto-submitted", "auto-replied"),),
        excerpt="We received your request on 12/03 and will answer within 2 days.",
    )
    assert classify(message, OWN).return_date is None


# --- says_no ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("excerpt", "phrase"),
    [
        ("Thanks, but we're not interested.", "not interested"),
        ("We are no longer interested in this.", "no longer interested"),
        ("Please remove me from your mailing list.", "remove me from your mailing list"),
        ("Remove me.", "Remove me."),
        ("unsubscribe me please", "unsubscribe me"),
        ("UNSUBSCRIBE", "UNSUBSCRIBE"),
        ("Please stop emailing me.", "stop emailing"),
        ("Do not contact me again.", "Do not contact me again"),
        ("We went with another vendor last month.", "went with another vendor"),
        ("We've decided to go in another direction.", "decided to go in another direction"),
        ("We have chosen a different provider.", "chosen a different provider"),
        ("Wir haben kein Interesse.", "kein Interesse"),
        ("Merci, nous ne sommes pas intéressés.", "pas intéressés"),
        ("Gracias, no estamos interesados.", "no estamos interesados"),
        ("No, we're not interested.", "not interested"),
        ("We\u2019re not interested.", "not interested"),
    ],
)
def test_says_no_finds_the_phrase(excerpt: str, phrase: str) -> None:
    """A prospect declining in any of the known phrasings is found, and the phrase returned."""
    assert says_no(excerpt) == phrase


@pytest.mark.parametrize(
    "excerpt",
    [
        "We are not uninterested.",
        "I'm not saying we're not interested, just busy.",
        "It's not that we're not interested.",
        "If you're not interested, I understand.",
        "Not interested in the premium tier, but the basic plan looks right.",
        "We're not interested right now, but check back in Q3.",
        "Are you not interested anymore?",
        "Please don't remove me from your list.",
        "Please remove me from this thread and add Bob.",
        "We almost went with another vendor, but chose you.",
        "We didn't go with another vendor.",
        "Ce n'est pas que nous ne soyons pas intéressés.",
        "Nicht dass wir kein Interesse hätten.",
        "The interest rate is not interesting.",
        "Let's talk on Thursday.",
    ],
)
def test_says_no_ignores_negations_and_hedges(excerpt: str) -> None:
    """Negated, hypothetical, asked or softened phrases are not a no (precision over recall)."""
    assert says_no(excerpt) is None
