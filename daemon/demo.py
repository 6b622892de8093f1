"""The sample team mailbox behind `relight demo`: a rep's Maildir and a config, dated from `now`.

`build_demo(directory, now)` writes `directory/dana/`, the mailbox of Dana Reyes, account
executive at AcmeSoft, as mbsync or Dovecot keep one (Maildir++: INBOX at the root, `.Sent`
and `.Drafts` beside it), and `directory/relight.toml`, a config with that one
`kind = "maildir"` account and its SQLite store in `directory`; it returns the config's
path. Relight syncs the tree as it would any rep's mailbox and writes its drafts into
`.Drafts`. Every person, company and domain is made up (`*.example`).

One story per prospect; at `now` each stands where its story ends:

    prospect                        the story                                 at `now`
    Priya Nair, BigCorp             asked for pricing, got it, silence        ghosted, stage 1
    Tom Becker, Northwind           "I'll run it past our IT team and get     ghosted, stage 2
                                    back to you next week"; one follow-up     (quotes him)
    Sofia Marquez, Lumen Retail     gave a deadline; two follow-ups since     ghosted, stage 3
    Ken Okafor, Harbor Foods        three follow-ups since his reply          ghosted, stage 4
    Jürgen Müller, Kesselbräu       asked two questions yesterday             replied
    Emma Lindqvist, Fjordtech       asked for a demo; slots sent yesterday    awaiting
    Marco Bianchi, Vela Energy      out of office, back in three days         snoozed
    Lena Vogt, Quarry Systems       the intro hard-bounced (user unknown)     bounced
    Aisha Rahman, Cobalt Bank       two cold emails, never an answer          cold
    Paul Dubois, Orchid Hotels      "we decided to go with another vendor"    excluded

Beside them, the BigCorp newsletter (List-Id, List-Unsubscribe) arrives after Dana's last
message to Priya: it must neither count as a reply from her company nor become a prospect.
A colleague's mail is internal and never a prospect either.

Theory of operation. Dates are counted back from `now` in business days of the config's
calendar (`TIMEZONE`, weekends only), so the stories hold whatever the day and hour the
demo is built. A message "k business days back" is on the k-th business day before the
local date of `now`: between it and `now` lie at least k - 1 whole business days and at
most k. With the default stages (3, 5, 7, 10 business days after the latest outbound
message) a stage that waits w days is due at any `now` when the rep's latest message is
w + 1 business days back, and "yesterday" (1 back) is never due. Every message is dated
before today, so none is later than `now`.

Messages are RFC 5322 with LF line endings, as Maildir keeps them. Message-ID, In-Reply-To
and References chain each thread; replies quote what they answer ("On ... wrote:" and "> "
lines, in the style of the writer's mail client); non-ASCII display names and subjects are
RFC 2047 encoded. A file's mtime is its arrival time (as Dovecot and mbsync keep it); unread
mail is in new/, the rest in cur/ with its flags (R answered, S seen).
"""

from __future__ import annotations

import email.utils
import hashlib
import json
import os
import textwrap
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from email.charset import QP, Charset
from email.header import Header
from pathlib import Path
from zoneinfo import ZoneInfo

from rules.business_days import BusinessCalendar

__all__ = ["ACCOUNT_NAME", "CONFIG_NAME", "SIGNATURE", "TIMEZONE", "build_demo"]

ACCOUNT_NAME = "dana"
CONFIG_NAME = "relight.toml"
TIMEZONE = "Europe/Berlin"
SIGNATURE = "Dana Reyes\nAccount Executive, AcmeSoft"
_HOST = "relight-demo"  # the host part of the Maildir file names
_MTA = "mail.acmesoft.example"  # the rep's outgoing mail server, which reports the bounce
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = (
    *("January", "February", "March", "April", "May", "June", "July", "August"),
    *("September", "October", "November", "December"),
)


@dataclass(frozen=True)
class _Person:
    """Someone writing in the demo: the zone of their Date headers, how they sign, and the
    mail client whose quoting style their replies follow (gmail, apple or thunderbird)."""

    name: str
    address: str
    zone: str = TIMEZONE
    closing: str = ""
    signature: str = ""
    client: str = "gmail"

    @property
    def header(self) -> str:
        if self.name.isascii():
            return email.utils.formataddr((self.name, self.address))
        return f"{_encoded_word(self.name)} <{self.address}>"

    @property
    def domain(self) -> str:
        return self.address.rpartition("@")[2]


def build_demo(directory: Path, now: datetime) -> Path:
    """Write the demo mailbox and its config under `directory` (created when missing) and
    return the config's path. Nothing is overwritten: a `dana/`, `relight.toml`,
    `relight.db` or `state/` already in `directory` is a `FileExistsError`."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"now must be timezone-aware, got {now!r}")
    directory = Path(directory).resolve()
    directory.mkdir(parents=True, exist_ok=True)
    mailbox, config = directory / ACCOUNT_NAME, directory / CONFIG_NAME
    for taken in (mailbox, config, directory / "relight.db", directory / "state"):
        if taken.exists() or taken.is_symlink():
            raise FileExistsError(f"{taken} exists: build the demo in another directory")

    demo = _Demo(now)
    for story in _STORIES:
        story(demo)
    for folder in (mailbox, mailbox / ".Sent", mailbox / ".Drafts"):
        _make_maildir(folder, subfolder=folder != mailbox)
    for sequence, mail in enumerate(sorted(demo.mails, key=lambda mail: mail.arrival)):
        _deliver(mailbox / mail.folder, mail, sequence)
    (directory / "state").mkdir(mode=0o700)
    config.write_text(_config_text(directory, now), encoding="utf-8")
    return config


# fmt: off
# The people and their stories are data: kept as written, one line per argument list.
_TEAM_SIG = "-- \nDana Reyes\nAccount Executive | AcmeSoft\nacmesoft.example"
DANA = _Person("Dana Reyes", "dana@acmesoft.example", TIMEZONE, "Best,\nDana", _TEAM_SIG)
SAM = _Person("Sam Ortiz", "sam.ortiz@acmesoft.example", TIMEZONE, "Thanks,\nSam")
PRIYA = _Person("Priya Nair", "priya.nair@bigcorp.example", "Europe/London", "Thanks,\nPriya",
                "Priya Nair\nService Operations Manager\nBigCorp Ltd.", "apple")
TOM = _Person("Tom Becker", "tom.becker@northwind.example", TIMEZONE, "Best regards,\nTom",
              "Tom Becker\nHead of Operations\nNorthwind Logistics GmbH")
SOFIA = _Person("Sofia Marquez", "sofia.marquez@lumenretail.example", "Europe/Madrid",
                "Best,\nSofia", "Sofia Marquez\nFacilities Director | Lumen Retail", "apple")
KEN = _Person("Ken Okafor", "ken.okafor@harborfoods.example", "America/New_York", "Ken",
              "Ken Okafor\nVP Maintenance, Harbor Foods Inc.")
JUERGEN = _Person("Jürgen Müller", "j.mueller@kesselbraeu.example", TIMEZONE,
                  "Mit freundlichen Grüßen", "Jürgen Müller\nLeiter Logistik\nKesselbräu GmbH",
                  "thunderbird")
EMMA = _Person("Emma Lindqvist", "emma.lindqvist@fjordtech.example", "Europe/Stockholm",
               "Thanks,\nEmma", "Emma Lindqvist\nOperations Lead, Fjordtech AB")
MARCO = _Person("Marco Bianchi", "marco.bianchi@velaenergy.example", "Europe/Rome",
                "Regards,\nMarco", "Marco Bianchi\nField Operations Manager\nVela Energy S.p.A.")
LENA = _Person("Lena Vogt", "lena.vogt@quarrysystems.example")
AISHA = _Person("Aisha Rahman", "aisha.rahman@cobaltbank.example", "Europe/London")
PAUL = _Person("Paul Dubois", "paul.dubois@orchidhotels.example", "Europe/Paris",
               "Best regards,\nPaul", "Paul Dubois\nDirector of Operations, Orchid Hotels")
NEWSLETTER = _Person("BigCorp Insider", "insider@bigcorp.example", "Europe/London")
POSTMASTER = _Person("Mail Delivery System", f"MAILER-DAEMON@{_MTA}")


# -- the stories: post(sender, recipient, business days back, local time, text) ------------------


def _priya_stage_1(demo: _Demo) -> None:
    t = demo.thread("Dispatch planning for BigCorp's service team")
    t.post(DANA, PRIYA, 9, "10:12", """
        Thanks for the chat at the Field Service Expo. You mentioned that your
        dispatchers still plan the routes for your 60 technicians by hand every
        morning. That is exactly what AcmeSoft takes off their plate. Would a
        30-minute call next week be useful?
    """)
    t.post(PRIYA, DANA, 8, "15:40", """
        Good to hear from you. Routing is a real pain point for us at the
        moment. Could you send me pricing for around 60 technicians, and
        something short I can share with our operations director?
    """)
    t.post(DANA, PRIYA, 4, "11:05", """
        As promised, here is our pricing for 60 technicians on the annual plan,
        with a two-page overview for your operations director:
        https://acmesoft.example/p/bigcorp-2f7c

        In short: 29 EUR per technician and month, onboarding included, and a
        30-day pilot with one depot before you commit to anything.
    """)


def _tom_stage_2(demo: _Demo) -> None:
    t = demo.thread("Pilot for the Hamburg depot")
    t.post(DANA, TOM, 13, "09:30", """
        Great speaking with you earlier. As discussed, here is the outline of a
        four-week pilot for the Hamburg depot: 12 drivers and 2 dispatchers,
        orders imported from your nightly SAP export, and we do the setup.
        Let me know what you think.
    """)
    t.post(TOM, DANA, 11, "10:15", """
        Thanks, the outline looks good and the dispatchers liked the demo.
        I'll run it past our IT team and get back to you next week.
    """)
    t.post(DANA, TOM, 10, "14:02", """
        Sounds like a plan. In case it helps your IT colleagues, our security
        overview is here: https://acmesoft.example/trust
    """, hello="Thanks Tom,")
    t.post(DANA, TOM, 6, "09:48", """
        No need to reply to this one. A logistics company about your size ran
        the same pilot last spring, and their IT lead wrote up what they checked
        before saying yes: https://acmesoft.example/stories/rhein-cargo
    """)


def _sofia_stage_3(demo: _Demo) -> None:
    t = demo.thread("Your demo recap and next steps")
    t.post(DANA, SOFIA, 20, "16:20", """
        Thank you for your time today. To put the proposal together, could you
        confirm how many technicians would use AcmeSoft?
    """)
    t.post(SOFIA, DANA, 19, "09:05", """
        Thanks for the recap. We have 35 technicians across the stores. Our
        current contract runs out in March, so we need to decide by the end of
        the quarter.
    """)
    t.post(DANA, SOFIA, 18, "11:30", """
        Here is the proposal for 35 technicians, with the rollout timed so that
        you are live well before your current contract ends:
        https://acmesoft.example/p/lumen-9a41
    """)
    t.post(DANA, SOFIA, 14, "10:10", """
        I know the end of a quarter is busy, so no need to answer this. Here is
        a one-page comparison with your current contract, in case it helps:
        https://acmesoft.example/p/lumen-compare
    """)
    t.post(DANA, SOFIA, 8, "15:45", """
        I'm a little confused. You mentioned you needed to decide by the end of
        the quarter, and I haven't heard from you since. Has something changed?
    """)


def _ken_stage_4(demo: _Demo) -> None:
    t = demo.thread("Scheduling for Harbor Foods' maintenance crews")
    t.post(DANA, KEN, 31, "15:30", """
        Maya Chen at Coastal Dairy suggested I get in touch. Her maintenance
        crews cut their overtime by a fifth with AcmeSoft. Would it be worth a
        short conversation?
    """)
    t.post(KEN, DANA, 30, "16:45", """
        Maya speaks highly of you. Overtime on our maintenance crews is a real
        problem this year. Send me something I can look at.
    """)
    t.post(DANA, KEN, 29, "15:10", """
        Here is a short overview with Coastal Dairy's numbers and a rollout plan
        for your three plants: https://acmesoft.example/p/harbor-51d0
        Would 20 minutes next week work to go through it?
    """)
    t.post(DANA, KEN, 25, "15:00", """
        No need to reply. This article on planning maintenance around
        production windows made me think of your crews:
        https://acmesoft.example/blog/maintenance-windows
    """)
    t.post(DANA, KEN, 19, "16:30", """
        I'm a little confused. You told me overtime on your maintenance crews
        was a real problem this year, and I haven't heard from you since. Has
        something changed?
    """)
    t.post(DANA, KEN, 11, "15:20", """
        I'm not writing to push the project. I may well have dropped the ball
        somewhere; would you share what I could have done better?
    """)


def _juergen_replied(demo: _Demo) -> None:
    t = demo.thread("Offer for Kesselbräu's delivery tours")
    t.post(DANA, JUERGEN, 6, "11:20", """
        Thank you for the call. As promised, here is our offer for planning the
        delivery tours of your 18 trucks: https://acmesoft.example/p/kb-07be
    """, hello="Dear Mr Müller,", closing="Kind regards,\nDana Reyes")
    t.post(JUERGEN, DANA, 1, "17:05", """
        thank you for the offer. Two questions before I present it to our
        managing director: does the price include the connection to our
        merchandise management system, and could the pilot start in January?
    """, hello="Dear Ms Reyes,", subject="AW: Offer for Kesselbräu's delivery tours")


def _emma_awaiting(demo: _Demo) -> None:
    t = demo.thread("Question about scheduling across Sweden and Norway")
    t.post(EMMA, DANA, 5, "13:10", """
        We are looking at scheduling tools for our installers in Sweden and
        Norway. Can AcmeSoft plan one team across both countries, with their
        different public holidays?
    """, hello="Hi,")
    t.post(DANA, EMMA, 4, "09:35", """
        Yes: each installer works to the calendar of the country they are based
        in. Would a short demo with your own regions be helpful?
    """)
    t.post(EMMA, DANA, 2, "16:00", """
        Yes please! Could you send me a few times that work for you?
    """, closing="Emma")
    t.post(DANA, EMMA, 1, "10:25", """
        Here are three options, all 45 minutes, Stockholm time: Tuesday at
        10:00, Wednesday at 14:00 or Thursday at 09:00.
    """)


def _marco_snoozed(demo: _Demo) -> None:
    t = demo.thread("Field engineer scheduling for Vela Energy")
    t.post(DANA, MARCO, 8, "10:00", """
        Thank you for filling in our contact form. You wrote that your field
        engineers lose a lot of time driving between wind farms; I'd be glad to
        show you how other energy companies plan those routes.
    """)
    t.post(MARCO, DANA, 7, "11:40", """
        Thanks for the quick answer. Please send me a proposal for our 25 field
        engineers so I can look at the numbers.
    """)
    proposal = t.post(DANA, MARCO, 4, "14:35", """
        Here is the proposal for 25 field engineers, with an estimate of the
        driving time you would save: https://acmesoft.example/p/vela-3c92
    """)
    back = _long_date(demo.business_day_after_today(3))
    t.post(MARCO, DANA, 4, "14:35:38", f"""
        Thank you for your message.

        I am out of the office on annual leave and will be back on {back},
        with limited access to email until then. For anything urgent, please
        contact my colleague Giulia Romano at giulia.romano@velaenergy.example.
    """, plain=True, subject=f"Automatic reply: {proposal.subject}",
        headers=(("Auto-Submitted", "auto-replied"), ("X-Auto-Response-Suppress", "All")))


def _lena_bounced(demo: _Demo) -> None:
    t = demo.thread("Maintenance planning at Quarry Systems")
    demo.bounce(t.post(DANA, LENA, 6, "09:12", """
        I enjoyed your talk on predictive maintenance at the Industry 4.0
        meetup. We help teams like yours turn those predictions into a schedule
        technicians can follow. Would you be open to a short call?
    """))


def _aisha_cold(demo: _Demo) -> None:
    t = demo.thread("Branch maintenance at Cobalt Bank")
    t.post(DANA, AISHA, 9, "10:40", """
        I read that Cobalt Bank is refurbishing 40 branches this year.
        Coordinating the contractors for that many sites is where AcmeSoft
        helps most. Would you be the right person to talk to about it?
    """)
    t.post(DANA, AISHA, 5, "09:15", """
        Just bringing this back to the top of your inbox. If someone else looks
        after the branch works, I'd be grateful for a pointer.
    """)


def _paul_excluded(demo: _Demo) -> None:
    t = demo.thread("Housekeeping and maintenance scheduling for Orchid Hotels")
    t.post(DANA, PAUL, 12, "10:30", """
        Following our call, here is the proposal for your twelve hotels:
        https://acmesoft.example/p/orchid-6e18
    """)
    t.post(PAUL, DANA, 11, "12:10", """
        Thank you. We will review it with our regional managers.
    """, hello="Hello Dana,")
    t.post(PAUL, DANA, 5, "17:20", """
        Thank you for your patience and for the thorough proposal. After
        comparing the options with our regional managers, we decided to go with
        another vendor. Their tool is already in use at our sister hotels.
    """, hello="Hello Dana,")
    t.post(DANA, PAUL, 4, "09:05", """
        Thanks for letting me know, I appreciate the honest answer. If anything
        changes, you know where to find me.
    """)


def _bigcorp_newsletter(demo: _Demo) -> None:
    t = demo.thread("BigCorp Insider: three new service centres")
    t.post(NEWSLETTER, DANA, 2, "07:30", """
        BIGCORP INSIDER

        Three new service centres: BigCorp now serves customers from Leeds,
        Bristol and Glasgow.

        You receive this because you subscribed at bigcorp.example.
        Unsubscribe: https://news.bigcorp.example/u/8f3a
    """, plain=True, headers=(
        ("List-Id", "BigCorp Insider <insider.news.bigcorp.example>"),
        ("List-Unsubscribe", "<https://news.bigcorp.example/u/8f3a>,\n"
                             " <mailto:unsubscribe@bigcorp.example?subject=unsubscribe>"),
        ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
        ("Precedence", "bulk"),
    ))


def _sam_internal(demo: _Demo) -> None:
    t = demo.thread("Pipeline review")
    t.post(SAM, DANA, 3, "09:00", """
        Could you add your open deals to the pipeline sheet before our review?
    """)
    t.post(DANA, SAM, 3, "09:40", """
        Done: BigCorp, Harbor Foods and Kesselbräu are all in.
    """, hello="", closing="Dana")


_STORIES = (
    _priya_stage_1, _tom_stage_2, _sofia_stage_3, _ken_stage_4, _juergen_replied,
    _emma_awaiting, _marco_snoozed, _lena_bounced, _aisha_cold, _paul_excluded,
    _bigcorp_newsletter, _sam_internal,
)
# fmt: on


# -- messages -----------------------------------------------------------------------------------


@dataclass
class _Mail:
    """A message file to deliver: its folder ("" for INBOX), bytes, arrival and flags."""

    folder: str
    raw: bytes
    arrival: datetime
    seen: bool
    answered: bool = False


@dataclass
class _Post:
    message_id: str
    sender: _Person
    to: _Person
    at: datetime
    subject: str
    body: str  # as sent: new text, signature, quote
    mail: _Mail = field(init=False)  # filed once the headers are written


class _Demo:
    """The mailbox being written: the calendar that dates it and the messages so far."""

    def __init__(self, now: datetime) -> None:
        self.calendar = BusinessCalendar(TIMEZONE)
        self.now = now
        self.today = self.calendar.local_date(now)
        self.mails: list[_Mail] = []

    def at(self, business_days_back: int, clock: str) -> datetime:
        """`clock` (HH:MM or HH:MM:SS, local) on the `business_days_back`-th business day
        before today."""
        day = self.today
        for _ in range(business_days_back):
            day -= timedelta(days=1)
            while not self.calendar.is_business_day(day):
                day -= timedelta(days=1)
        return datetime.combine(day, time.fromisoformat(clock), tzinfo=self.calendar.zone)

    def business_day_after_today(self, count: int) -> date:
        day = self.today
        for _ in range(count):
            day = self.calendar.next_business_day(day)
        return day

    def thread(self, subject: str) -> _Thread:
        return _Thread(self, subject)

    def message_id(self, sender: _Person, at: datetime) -> str:
        seed = f"{self.now.isoformat()}/{len(self.mails)}/{sender.address}/{at.isoformat()}"
        digest = hashlib.sha256(seed.encode()).hexdigest()[:16]
        return f"{at.astimezone(UTC):%Y%m%d%H%M%S}.{digest}@{sender.domain}"

    def add(self, sender: _Person, raw: bytes, at: datetime) -> _Mail:
        """File a message: the rep's own in Sent, the rest in INBOX (unread when recent)."""
        if sender == DANA:
            mail = _Mail(".Sent", raw, at, seen=True)
        else:
            arrival = at + timedelta(seconds=3 + len(self.mails) % 9)  # the MTA's delay
            mail = _Mail("", raw, arrival, seen=arrival < self.at(1, "00:00"))
        self.mails.append(mail)
        return mail

    def bounce(self, original: _Post) -> None:
        """The rep's mail server's delivery report: the recipient does not exist (5.1.1)."""
        at, rcpt = original.at + timedelta(seconds=41), original.to.address
        boundary = f"{original.message_id.partition('.')[0]}.B/{_MTA}"
        error = f"550 5.1.1 <{rcpt}>: Recipient address rejected: User unknown"
        remote = f"mx1.{original.to.domain}"
        returned = _raw(_header_fields(original, [])).decode().rstrip("\n")
        parts = (
            "Content-Description: Notification\nContent-Type: text/plain; charset=us-ascii\n\n"
            f"This is the mail system at host {_MTA}.\n\nI'm sorry to have to inform you that "
            "your message could not\nbe delivered to one or more recipients. It's attached "
            f"below.\n\n                   The mail system\n\n<{rcpt}>: host {remote}"
            f"[203.0.113.25] said: {error} (in reply to RCPT TO command)\n",
            "Content-Description: Delivery report\nContent-Type: message/delivery-status\n\n"
            f"Reporting-MTA: dns; {_MTA}\nX-Postfix-Sender: rfc822; {DANA.address}\n"
            f"Arrival-Date: {email.utils.format_datetime(original.at)}\n\n"
            f"Final-Recipient: rfc822; {rcpt}\nOriginal-Recipient: rfc822;{rcpt}\n"
            f"Action: failed\nStatus: 5.1.1\nRemote-MTA: dns; {remote}\n"
            f"Diagnostic-Code: smtp; {error}\n",
            "Content-Description: Undelivered Message Headers\n"
            f"Content-Type: text/rfc822-headers\n\n{returned}\n",
        )
        body = "This is a MIME-encapsulated message.\n\n"
        body += "".join(f"--{boundary}\n{part}\n" for part in parts) + f"--{boundary}--\n"
        fields = [
            ("Return-Path", "<>"),
            ("Delivered-To", DANA.address),
            ("Date", email.utils.format_datetime(at)),
            ("From", POSTMASTER.header),
            ("Subject", "Undelivered Mail Returned to Sender"),
            ("To", DANA.address),
            ("Auto-Submitted", "auto-replied"),
            ("MIME-Version", "1.0"),
            ("Content-Type", "multipart/report; report-type=delivery-status;\n"
                             f'\tboundary="{boundary}"'),
            ("Message-ID", f"<{self.message_id(POSTMASTER, at)}>"),
        ]  # fmt: skip
        self.add(POSTMASTER, _raw(fields, body), at)


@dataclass
class _Thread:
    """One conversation: each post answers the one before it."""

    demo: _Demo
    subject: str
    posts: list[_Post] = field(default_factory=list)

    def post(
        self,
        sender: _Person,
        to: _Person,
        business_days_back: int,
        clock: str,
        text: str,
        *,
        hello: str | None = None,
        closing: str | None = None,
        subject: str | None = None,
        plain: bool = False,
        headers: tuple[tuple[str, str], ...] = (),
    ) -> _Post:
        """Write `text` from `sender` to `to`, greeted and signed as they do, quoting the
        thread's last post; `plain` writes `text` alone (automatic mail)."""
        at = self.demo.at(business_days_back, clock)
        text = textwrap.dedent(text).strip("\n")
        previous = self.posts[-1] if self.posts else None
        if subject is None:
            subject = self.subject if previous is None else f"Re: {self.subject}"
        body = text + "\n"
        if not plain:
            hello = f"Hi {to.name.split()[0]}," if hello is None else hello
            closing = sender.closing if closing is None else closing
            body = "\n\n".join(part for part in (hello, text, closing) if part) + "\n"
            body += f"\n{sender.signature}\n" if sender.signature else ""
            if previous is not None:
                quote = "".join(_quote_line(line) for line in previous.body.splitlines())
                body += f"\n{_attribution(previous, sender)}\n{quote}"
        post = _Post(self.demo.message_id(sender, at), sender, to, at, subject, body)
        fields = _header_fields(post, self.posts)
        if sender != DANA:  # added on delivery to the rep's mailbox
            fields[:0] = [("Return-Path", f"<{sender.address}>"), ("Delivered-To", to.address)]
        fields += [*headers, ("MIME-Version", "1.0"), ("Content-Type", "text/plain; charset=utf-8"),
                   ("Content-Transfer-Encoding", "8bit")]  # fmt: skip
        post.mail = self.demo.add(sender, _raw(fields, body), at)
        if previous is not None and sender == DANA and previous.sender != DANA:
            previous.mail.answered = True
        self.posts.append(post)
        return post


def _encoded_word(text: str) -> str:
    """`text` as RFC 2047 Q-encoded words ("=?utf-8?q?J=C3=BCrgen?="), as most clients write."""
    charset = Charset("utf-8")
    charset.header_encoding = QP
    return Header(text, charset).encode()


def _header_fields(post: _Post, earlier: list[_Post]) -> list[tuple[str, str]]:
    fields = [
        ("Date", email.utils.format_datetime(post.at.astimezone(ZoneInfo(post.sender.zone)))),
        ("From", post.sender.header),
        ("To", post.to.header),
        ("Subject", post.subject if post.subject.isascii() else _encoded_word(post.subject)),
        ("Message-ID", f"<{post.message_id}>"),
    ]
    if earlier:
        fields.append(("In-Reply-To", f"<{earlier[-1].message_id}>"))
        fields.append(("References", "\n ".join(f"<{p.message_id}>" for p in earlier)))
    return fields


def _raw(fields: list[tuple[str, str]], body: str = "") -> bytes:
    return "".join(f"{name}: {value}\n" for name, value in fields).encode() + f"\n{body}".encode()


def _attribution(quoted: _Post, writer: _Person) -> str:
    """The line a mail client puts above a quote, in the writer's client style and zone."""
    local = quoted.at.astimezone(ZoneInfo(writer.zone))
    who = f"{quoted.sender.name} <{quoted.sender.address}>"
    month = _MONTHS[local.month - 1][:3]
    if writer.client == "apple":
        return f"On {local.day} {month} {local.year}, at {local:%H:%M}, {who} wrote:"
    if writer.client == "thunderbird":
        return f"On {local:%d.%m.%y %H:%M}, {quoted.sender.name} wrote:"
    clock = f"{local.hour % 12 or 12}:{local:%M} {'AM' if local.hour < 12 else 'PM'}"
    day = _DAYS[local.weekday()][:3]
    return f"On {day}, {month} {local.day}, {local.year} at {clock} {who} wrote:"


def _quote_line(line: str) -> str:
    return (">" + line if line.startswith(">") else "> " + line).rstrip() + "\n"


def _long_date(day: date) -> str:
    """The day as "Thursday 3 December 2026", in English whatever the locale."""
    return f"{_DAYS[day.weekday()]} {day.day} {_MONTHS[day.month - 1]} {day.year}"


# -- the tree and the config ----------------------------------------------------------------------


def _make_maildir(path: Path, *, subfolder: bool) -> None:
    path.mkdir(mode=0o700, parents=True)
    for part in ("cur", "new", "tmp"):
        (path / part).mkdir(mode=0o700)
    if subfolder:  # Maildir++ marks each folder but INBOX with this empty file
        (path / "maildirfolder").touch(mode=0o600)


def _deliver(folder: Path, mail: _Mail, sequence: int) -> None:
    """Deliver as an MDA does: write in tmp/, rename into new/ or cur/ (with the flags),
    and keep the arrival time as the file's mtime."""
    stamp = mail.arrival.timestamp()
    unique = f"{int(stamp)}.M{mail.arrival.microsecond}P{os.getpid()}Q{sequence}.{_HOST}"
    if mail.seen or mail.answered:
        target = folder / "cur" / f"{unique}:2,{'R' if mail.answered else ''}S"
    else:
        target = folder / "new" / unique
    tmp = folder / "tmp" / unique
    with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as handle:
        handle.write(mail.raw)
    tmp.rename(target)
    os.utime(target, (stamp, stamp))


def _config_text(directory: Path, now: datetime) -> str:
    def toml(value: object) -> str:
        return json.dumps(str(value), ensure_ascii=False)  # a JSON string is a TOML string

    database = "sqlite:///" + (directory / "relight.db").as_posix()
    return (
        f"# The sample team mailbox of `relight demo`, dated from {now.isoformat()}.\n"
        f"# {ACCOUNT_NAME}/ is Dana Reyes's mailbox (Maildir++); Relight writes its drafts "
        "into dana/.Drafts.\n\n"
        f"[daemon]\nstate_dir = {toml(directory / 'state')}\ndatabase = {toml(database)}\n"
        f'timezone = {toml(TIMEZONE)}\nlog_format = "console"\n\n'
        f"[drafts]\nsignature = {toml(SIGNATURE)}\n\n"
        f'[[accounts]]\nname = {toml(ACCOUNT_NAME)}\nkind = "maildir"\n'
        f"rep_name = {toml(DANA.name)}\naddresses = [{toml(DANA.address)}]\n"
        f"path = {toml(directory / ACCOUNT_NAME)}\n"
    )
