"""A deterministic synthetic mailbox of one sales rep, for the sync benchmark.

`messages(n, seed=...)` yields `(folder, raw)` pairs, `folder` being "INBOX" or "Sent"
(roughly 45/55) and `raw` the RFC 5322 bytes (CRLF) of one message, in date order.
The same `(n, seed)` always yields the same bytes. `folder_messages` yields one folder's
share, so each Maildir can be filled from a stream.

Theory of operation: a clock walks through one year. Three sources put events on a
heap: the rep opening a thread with a prospect, colleagues writing internal mail, and
newsletters. A thread then schedules its own next event (the prospect's reply, the
rep's answer or follow-up, an auto-reply, a bounce) until it ends. Only the open
threads are held (their last message, for In-Reply-To, References and the quote),
so memory depends on how many conversations run at once, not on `n`.

What it holds, to look like a real rep's mailbox to a header parser and a classifier:
Message-ID / In-Reply-To / References chains; Date headers in the writer's time zone;
display names with RFC 2047 encoded words and "Last, First" quoting; Cc on some;
freemail prospects; List-Id / List-Unsubscribe newsletters; auto-replies
(Auto-Submitted, "Automatic reply:", Abwesenheitsnotiz, Réponse automatique);
multipart/report bounces and delays; internal colleague mail; plain-text bodies of a
few hundred bytes to a few KB, replies quoting the previous message. The names,
sentences and subjects it writes with live in `bench.mailbox_text`.
"""

from __future__ import annotations

import heapq
import itertools
import random
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from email.header import Header
from email.utils import format_datetime, formataddr

from bench.mailbox_text import (
    ASCII_FOLD,
    AUTO_REPLIES,
    COLLEAGUES,
    COMPANY_KINDS,
    COMPANY_STEMS,
    COMPANY_TAILS,
    FIRST_NAMES,
    FOLLOWUP_SENTENCES,
    FREEMAIL,
    INTERNAL_SENTENCES,
    INTERNAL_SUBJECTS,
    INTERNATIONAL_FIRST_NAMES,
    INTERNATIONAL_LAST_NAMES,
    LAST_NAMES,
    NEWSLETTER_PARAGRAPHS,
    NEWSLETTERS,
    OPENER_SUBJECTS,
    PROSPECT_SENTENCES,
    REP_REPLY_SENTENCES,
    REP_ZONE,
    SENTENCES,
    TITLES,
    TOPICS,
    ZONES,
)

__all__ = [
    "FOLDERS",
    "INBOX",
    "OWN_DOMAIN",
    "REP_ADDRESS",
    "REP_NAME",
    "SENT",
    "folder_messages",
    "messages",
]

REP_NAME = "Dana Reyes"
REP_ADDRESS = "dana@acmesoft.example"
OWN_DOMAIN = "acmesoft.example"
INBOX, SENT = "INBOX", "Sent"
FOLDERS = (INBOX, SENT)

START = datetime(2024, 1, 8, 7, 30, tzinfo=UTC)
YEAR_DAYS = 365.0
# Thread starts per message of daily volume, by source. A prospect thread holds about
# 3.5 messages and an internal one about 1.5, so the mailbox is roughly 72% prospect
# threads, 14% internal, 14% newsletters, and INBOX/Sent come out near 45/55.
OPEN_RATE, INTERNAL_RATE, NEWSLETTER_RATE = 0.2, 0.09, 0.14
QUOTE_LIMIT = 2400  # characters of the previous message a reply quotes, at most


@dataclass(frozen=True)
class Person:
    name: str
    email: str
    zone: timezone
    company: str = ""
    title: str = ""


@dataclass
class Thread:
    """One open conversation: what the next message needs to thread and quote."""

    prospect: Person
    cc: tuple[Person, ...]
    subject: str
    last_id: str = ""
    references: list[str] = field(default_factory=list)
    last_body: str = ""
    last_author: Person | None = None
    last_date: datetime = START
    followups: int = 0
    length: int = 0
    engaged: bool = False


REP = Person(REP_NAME, REP_ADDRESS, REP_ZONE, "AcmeSoft", "Account Executive")


class _Generator:
    """The state of one run of `messages`; see the module docstring."""

    def __init__(self, n: int, seed: int) -> None:
        self.n = n
        self.rng = random.Random(seed)  # noqa: S311 (test data, not secrets)
        self.sequence = itertools.count()
        self.heap: list[tuple[datetime, int, str, object]] = []
        self.per_day = max(n / YEAR_DAYS, 1.0)
        self.prospects = self._prospects()
        self.colleagues = tuple(
            Person(name, f"{local}@{OWN_DOMAIN}", REP_ZONE, "AcmeSoft")
            for name, local in COLLEAGUES
        )

    # -- the population --

    def _prospects(self) -> tuple[Person, ...]:
        rng = self.rng
        count = max(40, min(4000, self.n // 4))
        companies = []
        seen_domains: set[str] = set()
        for _ in range(max(8, min(400, count // 10))):
            stem = rng.choice(COMPANY_STEMS) + rng.choice(COMPANY_TAILS)
            name = f"{stem} {rng.choice(COMPANY_KINDS)}"
            domain = f"{stem.lower()}-{name.split()[1].lower()}.example"
            if domain in seen_domains:
                continue
            seen_domains.add(domain)
            companies.append((name, domain, rng.choice(ZONES)))
        people = []
        seen: set[str] = set()
        for index in range(count):
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            if rng.random() < 0.1:
                first, last = rng.choice(INTERNATIONAL_FIRST_NAMES), rng.choice(LAST_NAMES)
            elif rng.random() < 0.05:
                last = rng.choice(INTERNATIONAL_LAST_NAMES)
            first_ascii = first.lower().translate(ASCII_FOLD)
            last_ascii = last.lower().translate(ASCII_FOLD)
            # Company sizes are skewed: a few accounts hold many contacts.
            company, domain, zone = companies[int(len(companies) * rng.random() ** 2)]
            if rng.random() < 0.12:
                company, domain = "", rng.choice(FREEMAIL)
                local = f"{first_ascii}.{last_ascii}{rng.randint(1, 99)}"
            else:
                local = rng.choice((f"{first_ascii}.{last_ascii}", f"{first_ascii[0]}{last_ascii}"))
            email = f"{local}@{domain}"
            if email in seen:
                email = f"{local}{index}@{domain}"
            seen.add(email)
            display = f"{last}, {first}" if rng.random() < 0.06 else f"{first} {last}"
            people.append(Person(display, email, zone, company, rng.choice(TITLES)))
        return tuple(people)

    # -- time --

    def _after(self, moment: datetime, mean_hours: float, person: Person) -> datetime:
        """A moment `mean_hours` later on average, moved into `person`'s working hours."""
        when = moment + timedelta(hours=self.rng.expovariate(1.0 / mean_hours))
        local = when.astimezone(person.zone)
        if local.weekday() >= 5 or not 8 <= local.hour < 19:
            days = (7 - local.weekday()) if local.weekday() >= 5 else (1 if local.hour >= 19 else 0)
            morning = (local + timedelta(days=days)).replace(hour=8, minute=0, second=0)
            when = morning + timedelta(minutes=self.rng.uniform(0, 9 * 60))
        return when.astimezone(UTC)

    def _schedule(self, when: datetime, kind: str, payload: object = None) -> None:
        heapq.heappush(self.heap, (when, next(self.sequence), kind, payload))

    def _source_gap(self, share: float) -> timedelta:
        return timedelta(days=self.rng.expovariate(self.per_day * share))

    # -- the run --

    def run(self) -> Iterator[tuple[str, bytes]]:
        self._schedule(START, "open")
        self._schedule(START + self._source_gap(INTERNAL_RATE), "internal")
        self._schedule(START + self._source_gap(NEWSLETTER_RATE), "newsletter")
        emitted = 0
        while emitted < self.n:
            when, _seq, kind, payload = heapq.heappop(self.heap)
            if kind == "open":
                self._schedule(when + self._source_gap(OPEN_RATE), "open")
                yield from self._open(when)
            elif kind == "internal":
                self._schedule(when + self._source_gap(INTERNAL_RATE), "internal")
                yield from self._internal(when)
            elif kind == "newsletter":
                self._schedule(when + self._source_gap(NEWSLETTER_RATE), "newsletter")
                yield INBOX, self._newsletter(when)
            else:
                assert isinstance(payload, Thread)
                yield from getattr(self, f"_{kind}")(when, payload)
            emitted += 1

    # -- thread events: each yields one message and schedules the thread's next event --

    def _open(self, when: datetime) -> Iterator[tuple[str, bytes]]:
        rng = self.rng
        prospect = rng.choice(self.prospects)
        cc: tuple[Person, ...] = ()
        if rng.random() < 0.12:
            cc = (rng.choice(self.colleagues[:4]),)
        subject = rng.choice(OPENER_SUBJECTS).format(**self._words(prospect))
        thread = Thread(prospect, cc, subject)
        when = self._after(when, 1.0, REP)
        body = self._text(SENTENCES, rng.randint(3, 7), prospect, greeting=True)
        yield SENT, self._reply(thread, REP, (prospect,), when, body, quote=False)
        self._after_rep(thread, when, opener=True)

    def _after_rep(self, thread: Thread, when: datetime, *, opener: bool = False) -> None:
        rng, prospect = self.rng, thread.prospect
        roll = rng.random()
        if opener and roll < 0.035:
            self._schedule(when + timedelta(minutes=rng.uniform(0.2, 30)), "bounce", thread)
        elif roll < 0.10:
            self._schedule(when + timedelta(minutes=rng.uniform(0.1, 5)), "auto", thread)
        elif thread.length < 10 and roll < (0.55 if thread.engaged else 0.35):
            self._schedule(self._after(when, 30.0, prospect), "prospect", thread)
        elif thread.followups < (1 if thread.engaged else 3) and roll < 0.7:
            self._schedule(self._after(when, 24.0 * rng.uniform(3, 9), REP), "followup", thread)

    def _auto(self, when: datetime, thread: Thread) -> Iterator[tuple[str, bytes]]:
        pattern, style = self.rng.choice(AUTO_REPLIES)
        back = (when + timedelta(days=self.rng.randint(2, 14))).astimezone(thread.prospect.zone)
        body = (
            f"Thank you for your message. I am out of the office until {back:%A, %d %B %Y} "
            "with limited access to email. For anything urgent please contact "
            f"office@{thread.prospect.email.split('@')[1]}.\n\nBest regards,\n"
            f"{thread.prospect.name}\n"
        )
        extra = [("Auto-Submitted", "auto-replied"), ("X-Auto-Response-Suppress", "All")]
        if style == "outlook":
            extra.append(("X-MS-Exchange-Inbox-Rules-Loop", thread.prospect.email))
        subject = pattern.format(subject=thread.subject)
        headers = self._inbound_headers(thread.prospect, when)
        headers += self._headers(
            thread.prospect, (REP,), when=when, subject=subject, in_reply_to=thread.last_id
        )
        headers += extra
        yield INBOX, _render(headers, body)
        # An auto-reply does not end the conversation: the person may still answer later.
        thread.length += 1
        if self.rng.random() < 0.35:
            self._schedule(self._after(when, 24.0 * 8, thread.prospect), "prospect", thread)
        elif thread.followups < 3:
            self._schedule(self._after(when, 24.0 * 5, REP), "followup", thread)

    def _bounce(self, when: datetime, thread: Thread) -> Iterator[tuple[str, bytes]]:
        yield INBOX, self._report(when, thread, failed=self.rng.random() < 0.8)

    def _prospect(self, when: datetime, thread: Thread) -> Iterator[tuple[str, bytes]]:
        rng, prospect = self.rng, thread.prospect
        if not thread.cc and rng.random() < 0.1:
            same = [p for p in rng.sample(self.prospects, 20) if p.company == prospect.company]
            thread.cc = tuple(same[:1]) if prospect.company else ()
        body = self._text(PROSPECT_SENTENCES, rng.randint(1, 4), REP, greeting=True)
        body += f"\n{prospect.name}\n{prospect.title}" + (
            f", {prospect.company}\n" if prospect.company else "\n"
        )
        yield INBOX, self._reply(thread, prospect, (REP,), when, body)
        thread.engaged = True
        thread.followups = 0
        if rng.random() < 0.85:
            self._schedule(self._after(when, 6.0, REP), "answer", thread)

    def _answer(self, when: datetime, thread: Thread) -> Iterator[tuple[str, bytes]]:
        body = self._text(REP_REPLY_SENTENCES, self.rng.randint(2, 4), thread.prospect, True)
        yield SENT, self._reply(thread, REP, (thread.prospect,), when, body)
        self._after_rep(thread, when)

    def _followup(self, when: datetime, thread: Thread) -> Iterator[tuple[str, bytes]]:
        body = self._text(FOLLOWUP_SENTENCES, self.rng.randint(2, 4), thread.prospect, True)
        thread.followups += 1
        yield SENT, self._reply(thread, REP, (thread.prospect,), when, body)
        self._after_rep(thread, when)

    def _internal(self, when: datetime) -> Iterator[tuple[str, bytes]]:
        rng = self.rng
        colleague = rng.choice(self.colleagues)
        words = self._words(rng.choice(self.prospects))
        subject = rng.choice(INTERNAL_SUBJECTS).format(quarter=rng.randint(1, 4), **words)
        thread = Thread(colleague, (), subject)
        body = self._text(INTERNAL_SENTENCES, rng.randint(1, 3), colleague, greeting=True)
        if rng.random() < 0.35:
            when = self._after(when, 1.0, REP)
            yield SENT, self._reply(thread, REP, (colleague,), when, body, quote=False)
        else:
            when = self._after(when, 1.0, colleague)
            yield INBOX, self._reply(thread, colleague, (REP,), when, body, quote=False)
        if rng.random() < 0.4:
            self._schedule(self._after(when, 3.0, REP), "internal_reply", thread)

    def _internal_reply(self, when: datetime, thread: Thread) -> Iterator[tuple[str, bytes]]:
        colleague = thread.prospect
        author, to = (colleague, REP) if thread.last_author is REP else (REP, colleague)
        body = self._text(INTERNAL_SENTENCES, self.rng.randint(1, 2), to, greeting=True)
        folder = SENT if author is REP else INBOX
        yield folder, self._reply(thread, author, (to,), when, body)
        if thread.length < 4 and self.rng.random() < 0.3:
            self._schedule(self._after(when, 3.0, to), "internal_reply", thread)

    # -- message bodies and headers --

    def _words(self, person: Person) -> dict[str, str]:
        first = person.name.split(", ")[-1].split()[0]
        return {
            "company": person.company or "your team",
            "topic": self.rng.choice(TOPICS),
            "first": first,
        }

    def _text(self, pool: tuple[str, ...], count: int, to: Person, greeting: bool) -> str:
        words = self._words(to)
        sentences = " ".join(
            s.format(**words) for s in self.rng.sample(pool, min(count, len(pool)))
        )
        text = textwrap.fill(sentences, 72) + "\n"
        return f"Hi {words['first']},\n\n{text}" if greeting else text

    def _message_id(self, person: Person) -> str:
        token = f"{self.rng.getrandbits(64):016x}.{self.rng.getrandbits(32):08x}"
        host = person.email.split("@")[1]
        if host in FREEMAIL:
            host = f"mail.{host}"
        return f"{token}@{host}"

    def _reply(
        self,
        thread: Thread,
        author: Person,
        to: tuple[Person, ...],
        when: datetime,
        body: str,
        *,
        quote: bool = True,
    ) -> bytes:
        """The next message of `thread`, written by `author`; updates the thread."""
        message_id = self._message_id(author)
        if author is REP:
            body += f"\nBest,\n{REP_NAME}\nAccount Executive, AcmeSoft\n+1 555 0100 213\n"
        if quote and thread.last_author is not None and thread.last_body:
            quoted = thread.last_body[:QUOTE_LIMIT]
            writer = formataddr((thread.last_author.name, thread.last_author.email))
            body += f"\nOn {format_datetime(thread.last_date)}, {writer} wrote:\n" + "".join(
                f">{'' if line.startswith('>') else ' '}{line}\n" for line in quoted.splitlines()
            )
        subject = thread.subject if thread.length == 0 else f"Re: {thread.subject}"
        cc = tuple(p for p in thread.cc if p is not author)
        headers = [] if author is REP else self._inbound_headers(author, when)
        headers += self._headers(
            author,
            to,
            cc=cc,
            when=when,
            subject=subject,
            in_reply_to=thread.last_id,
            message_id=message_id,
        )
        if thread.references:
            headers.append(("References", "\r\n ".join(f"<{r}>" for r in thread.references)))
        if author is REP:
            headers.append(("User-Agent", "Mozilla Thunderbird 115.6"))
        thread.references = [*thread.references[-9:], message_id]
        thread.last_id, thread.last_body, thread.last_author = message_id, body, author
        thread.last_date, thread.length = when.astimezone(author.zone), thread.length + 1
        return _render(headers, body)

    def _headers(
        self,
        author: Person,
        to: tuple[Person, ...],
        *,
        cc: tuple[Person, ...] = (),
        when: datetime,
        subject: str,
        in_reply_to: str = "",
        message_id: str | None = None,
    ) -> list[tuple[str, str]]:
        headers = [
            ("Message-ID", f"<{message_id or self._message_id(author)}>"),
            ("Date", format_datetime(when.astimezone(author.zone))),
            ("From", _address(author)),
            ("To", ", ".join(_address(p) for p in to)),
        ]
        if cc:
            headers.append(("Cc", ", ".join(_address(p) for p in cc)))
        headers.append(("Subject", _encode(subject)))
        if in_reply_to:
            headers.append(("In-Reply-To", f"<{in_reply_to}>"))
        headers += [
            ("MIME-Version", "1.0"),
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Content-Transfer-Encoding", "8bit"),
        ]
        return headers

    def _inbound_headers(self, sender: Person, when: datetime) -> list[tuple[str, str]]:
        """What delivery adds in front of a message that arrived from outside."""
        host = sender.email.split("@")[1]
        stamp = format_datetime(when.astimezone(UTC))
        queue = f"{self.rng.getrandbits(40):010X}"
        return [
            ("Return-Path", f"<{sender.email}>"),
            ("Delivered-To", REP_ADDRESS),
            ("Received", f"from mx1.{OWN_DOMAIN} ([10.0.0.25])\r\n\tby imap.{OWN_DOMAIN} "
                         f"with LMTP id {queue}\r\n\tfor <{REP_ADDRESS}>; {stamp}"),
            ("Received", f"from mail.{host} (mail.{host} [198.51.100.{self.rng.randint(1, 254)}])"
                         f"\r\n\tby mx1.{OWN_DOMAIN} (Postfix) with ESMTPS id {queue}\r\n\t"
                         f"for <{REP_ADDRESS}>; {stamp}"),
            ("DKIM-Signature", f"v=1; a=rsa-sha256; c=relaxed/relaxed; d={host}; s=s1;\r\n\t"
                               f"h=from:to:subject:date:message-id; bh={queue}base64hash=;\r\n\t"
                               f"b={self.rng.getrandbits(256):064x}"),
            ("Authentication-Results", f"mx1.{OWN_DOMAIN}; dkim=pass header.d={host}; spf=pass"),
        ]  # fmt: skip

    def _newsletter(self, when: datetime) -> bytes:
        rng = self.rng
        name, address, list_name = rng.choice(NEWSLETTERS)
        sender = Person(name, address, UTC)
        when = self._after(when, 2.0, sender)
        paragraphs = rng.choices(NEWSLETTER_PARAGRAPHS, k=rng.randint(4, 12))
        body = "\n\n".join(textwrap.fill(p, 72) for p in paragraphs)
        body += f"\n\nUnsubscribe: https://{address.split('@')[1]}/u/{rng.getrandbits(48):x}\n"
        domain = address.split("@")[1]
        headers = self._inbound_headers(sender, when)
        subject = f"{name}: issue {rng.randint(1, 300)}"
        headers += self._headers(sender, (REP,), when=when, subject=subject)
        headers += [
            ("List-Id", f"{name} <{list_name}.{domain}>"),
            ("List-Unsubscribe", f"<mailto:unsubscribe@{domain}>, <https://{domain}/unsubscribe>"),
            ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
            ("Precedence", "bulk"),
            ("Feedback-ID", f"{list_name}:newsletter:{domain}"),
        ]
        return _render(headers, body)

    def _report(self, when: datetime, thread: Thread, *, failed: bool) -> bytes:
        """A Postfix-style DSN (RFC 3464) about the rep's last message in `thread`."""
        recipient = thread.prospect.email
        daemon = Person("Mail Delivery System", f"MAILER-DAEMON@mx1.{OWN_DOMAIN}", UTC)
        boundary = f"{self.rng.getrandbits(48):012X}.{int(when.timestamp())}/mx1.{OWN_DOMAIN}"
        host = f"mail.{recipient.split('@')[1]}"
        if failed:
            subject, action, status = "Undelivered Mail Returned to Sender", "failed", "5.1.1"
            note = f"<{recipient}>: host {host} said: 550 5.1.1 User unknown"
        else:
            subject, action, status = "Delayed Mail (still being retried)", "delayed", "4.4.1"
            note = f"<{recipient}>: connect to {host}: Connection timed out"
        headers = [
            ("Return-Path", "<>"),
            ("Delivered-To", REP_ADDRESS),
            ("Message-ID", f"<{self._message_id(daemon)}>"),
            ("Date", format_datetime(when.astimezone(REP_ZONE))),
            ("From", _address(daemon)),
            ("To", _address(REP)),
            ("Subject", subject),
            ("Auto-Submitted", "auto-replied"),
            ("MIME-Version", "1.0"),
            ("Content-Type", "multipart/report; report-type=delivery-status;\r\n\t"
                             f'boundary="{boundary}"'),
        ]  # fmt: skip
        original = f"Message-ID: <{thread.last_id}>\nFrom: {_address(REP)}\nTo: {recipient}\n"
        original += f"Subject: {_encode(thread.subject)}\n"
        body = (
            "This is a MIME-encapsulated message.\n\n"
            f"--{boundary}\nContent-Description: Notification\n"
            "Content-Type: text/plain; charset=us-ascii\n\n"
            f"This is the mail system at host mx1.{OWN_DOMAIN}.\n\n"
            "I'm sorry to have to inform you that your message could not\n"
            "be delivered to one or more recipients.\n\n"
            f"{note}\n\n"
            f"--{boundary}\nContent-Description: Delivery report\n"
            "Content-Type: message/delivery-status\n\n"
            f"Reporting-MTA: dns; mx1.{OWN_DOMAIN}\n"
            f"Arrival-Date: {format_datetime(thread.last_date)}\n\n"
            f"Final-Recipient: rfc822; {recipient}\nOriginal-Recipient: rfc822;{recipient}\n"
            f"Action: {action}\nStatus: {status}\n"
            f"Diagnostic-Code: smtp; {note.split(': ', 1)[1]}\n\n"
            f"--{boundary}\nContent-Description: Undelivered Message Headers\n"
            f"Content-Type: text/rfc822-headers\n\n{original}\n--{boundary}--\n"
        )
        return _render(headers, body)


def _address(person: Person) -> str:
    return formataddr((person.name, person.email), charset="utf-8")


def _encode(text: str) -> str:
    if text.isascii():
        return text
    return Header(text, "utf-8", header_name="Subject").encode(linesep="\r\n")


def _render(headers: list[tuple[str, str]], body: str) -> bytes:
    head = "".join(f"{name}: {value}\r\n" for name, value in headers)
    return (head + "\r\n" + body.replace("\n", "\r\n")).encode("utf-8")


def messages(n: int, *, seed: int = 1) -> Iterator[tuple[str, bytes]]:
    """The rep's mailbox of `n` messages, as `(folder, raw RFC 5322 bytes)` in date order."""
    if n < 0:
        raise ValueError("n must not be negative")
    return _Generator(n, seed).run()


def folder_messages(n: int, folder: str, *, seed: int = 1) -> Iterator[bytes]:
    """The messages of `messages(n, seed=seed)` that belong in `folder`."""
    if folder not in FOLDERS:
        raise ValueError(f"folder must be one of {FOLDERS}")
    return (raw for where, raw in messages(n, seed=seed) if where == folder)
