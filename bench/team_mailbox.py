"""A deterministic synthetic team mailbox, for the evaluation benchmark.

`team_mailbox(n, prospects, seed=...)` returns a `TeamMailbox`: four reps at
acmesoft.example and exactly `n` messages in their INBOX, Sent and Drafts folders, as
`MessageFacts` ready for `Store.apply_fetched`, in date order with remote ids numbered
per folder like IMAP UIDs. The same `(n, prospects, seed)` always yields the same
mailbox. No IMAP is involved: the evaluation benchmark measures what happens after sync.

Theory of operation. Every prospect gets a *scenario*, the status it is written to end
in (replied, awaiting, ghosted, cold, snoozed, bounced, exhausted, excluded), and a
length, 1 to 20 messages; the lengths are drawn per scenario and then nudged one by one
until the prospects' messages and the rest (newsletters, internal mail, the reps' own
Bcc copies) add up to exactly `n`. A prospect's messages are a *tail* that decides the
scenario (for `awaiting`: the prospect's reply, then the rep's answer one day ago) after
a *head* of ordinary back-and-forth: the rep's openers and follow-ups, the prospect's
replies with an excerpt (some promising a next step, "We'll discuss it with the team next
week"), out-of-office replies whose return date has passed, delay notices, an unsent
draft, now and then a new thread, a colleague of the prospect in Cc, or a second rep
writing to the same person. The moments are gaps walked backwards from the tail's end,
squeezed into the ~6 months before `NOW`. Companies (about 0.15 per prospect, sizes
skewed) each have an owner rep, and half of them never answer: their contacts are written
only cold or bounced scenarios. 12% of the prospects are on freemail.

The scenario is intent, not the outcome: `rules.group_by = "company"` lets a colleague's
reply count for every prospect of a company, a Cc makes that colleague a prospect of the
rep too, and a few addresses are on the do-not-contact list (`TeamMailbox.do_not_contact`).
The benchmark prints the statuses the evaluation actually found.
"""

from __future__ import annotations

import itertools
import random
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from bench.mailbox_text import (
    ASCII_FOLD,
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
    LAST_NAMES,
    NEWSLETTERS,
    OPENER_SUBJECTS,
    REP_ZONE,
    TOPICS,
    ZONES,
)
from connectors.base import Address, DeliveryReport, FolderRole, MessageFacts, RemoteFolder

__all__ = [
    "DOMAIN",
    "FOLDERS",
    "NOW",
    "REPS",
    "SCENARIOS",
    "Placed",
    "Prospect",
    "Rep",
    "TeamMailbox",
    "team_mailbox",
]

DOMAIN = "acmesoft.example"
NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)  # a Wednesday
SPAN = timedelta(days=182)
FOLDERS = (
    RemoteFolder("INBOX", FolderRole.INBOX),
    RemoteFolder("Sent", FolderRole.SENT),
    RemoteFolder("Drafts", FolderRole.DRAFTS),
)
INBOX, SENT, DRAFTS = (folder.name for folder in FOLDERS)

# Shares of the mailbox that are not prospect mail.
NEWSLETTER_SHARE, INTERNAL_SHARE, SELF_COPY_SHARE = 0.06, 0.05, 0.01
COMPANY_RATIO = 0.15  # companies per prospect: 10,000 prospects at ~1,500 companies
FREEMAIL_SHARE = 0.12
ENGAGED_COMPANY_SHARE = 0.5  # the other companies never answer
UNANSWERED = frozenset({"cold", "bounced"})  # the scenarios of a company that never answers
DO_NOT_CONTACT_SHARE = 0.01
MAX_LENGTH = 20


@dataclass(frozen=True)
class Scenario:
    """How a prospect's mail is meant to end, and how long it may be."""

    share: float
    min_length: int
    max_length: int
    tail: tuple[str, ...]


# Events: out (the rep writes), follow (a follow-up in the same thread), in (a genuine
# reply), no (a reply that declines), ooo / ooo_ahead (an out-of-office reply, back
# before / after NOW), bounce, delay, draft (unsent, in Drafts), other_rep.
SCENARIOS: dict[str, Scenario] = {
    "replied": Scenario(0.17, 2, MAX_LENGTH, ("in",)),
    "awaiting": Scenario(0.08, 3, MAX_LENGTH, ("in", "out")),
    "ghosted": Scenario(0.20, 3, MAX_LENGTH, ("in", "out")),  # + 0 to 3 follow-ups
    "cold": Scenario(0.30, 1, 6, ()),
    "snoozed": Scenario(0.04, 4, MAX_LENGTH, ("in", "out", "ooo_ahead")),
    "bounced": Scenario(0.04, 2, 12, ("out", "bounce")),
    "exhausted": Scenario(0.13, 7, MAX_LENGTH, ("in", "out", *["follow"] * 4)),
    "excluded": Scenario(0.04, 2, 14, ("out", "no")),
}
STAGE_WAITS = (3, 5, 7, 10)  # business days, the default stages (SPEC section 5)

REPLY_SENTENCES = (
    "Thanks for reaching out, the timing is actually quite good.",
    "We are reviewing our {topic} setup this quarter.",
    "Could you send me pricing for roughly 40 users?",
    "Our budget cycle closes in March, so anything before that would be ideal.",
    "Can we do Thursday at 10am my time?",
    "I need to check with procurement before we can go further.",
    "The demo was helpful; my team had a few questions about the security review.",
    "Thanks, got it.",
)
COMMITMENTS = (
    "I'll discuss it with the team next week.",
    "We'll review the proposal and get back to you by Friday.",
    "Let me check with our CFO and come back to you by the end of the month.",
    "We need to decide before the end of the quarter.",
    "I will share it with my manager next Monday.",
)
REFUSALS = (
    "Thanks, but we decided to go with another vendor.",
    "We are not interested at this time. Please remove me from your list.",
    "We went with a different provider, so please stop emailing me.",
)


@dataclass(frozen=True)
class Rep:
    account: str  # the [[accounts]] name
    name: str
    address: str


REPS = (
    Rep("dana", "Dana Reyes", f"dana@{DOMAIN}"),
    Rep("lee", "Lee Park", f"lee@{DOMAIN}"),
    Rep("kim", "Kim Ode", f"kim@{DOMAIN}"),
    Rep("noor", "Noor Haddad", f"noor@{DOMAIN}"),
)


@dataclass(frozen=True)
class Prospect:
    email: str
    name: str
    company: str  # "" on freemail
    zone: timezone
    rep: Rep
    scenario: str
    length: int


@dataclass(frozen=True)
class Placed:
    """One message in one folder of one account."""

    account: str
    folder: str  # INBOX, Sent or Drafts
    facts: MessageFacts


@dataclass(frozen=True)
class TeamMailbox:
    """The generated mailbox: its reps, prospects and messages (date order), and the
    do-not-contact entries a benchmark configuration should carry."""

    seed: int
    now: datetime
    reps: tuple[Rep, ...]
    prospects: tuple[Prospect, ...]
    messages: tuple[Placed, ...]
    do_not_contact: tuple[str, ...]

    def batches(self, account: str, folder: str, size: int = 1000) -> Iterator[list[MessageFacts]]:
        """The account's messages in `folder`, in batches of `size` (UID order)."""
        batch: list[MessageFacts] = []
        for placed in self.messages:
            if placed.account == account and placed.folder == folder:
                batch.append(placed.facts)
                if len(batch) == size:
                    yield batch
                    batch = []
        if batch:
            yield batch

    def scenarios(self) -> Counter[str]:
        return Counter(prospect.scenario for prospect in self.prospects)

    def folder_counts(self) -> dict[str, int]:
        counts = Counter(f"{placed.account}/{placed.folder}" for placed in self.messages)
        return dict(sorted(counts.items()))


def team_mailbox(n: int = 100_000, prospects: int = 10_000, *, seed: int = 1) -> TeamMailbox:
    """Exactly `n` messages of four reps with `prospects` prospects; see the docstring."""
    if prospects < 1 or n < 1:
        raise ValueError("n and prospects must be positive")
    return _Generator(n, prospects, seed).run()


@dataclass
class _Thread:
    """One conversation with a prospect: what the next message needs to thread."""

    subject: str
    last_id: str | None = None
    references: list[str] = field(default_factory=list)


class _Generator:
    """The state of one run of `team_mailbox`; see the module docstring."""

    def __init__(self, n: int, prospect_count: int, seed: int) -> None:
        self.n, self.prospect_count, self.seed = n, prospect_count, seed
        self.rng = random.Random(seed)  # noqa: S311 (test data, not secrets)
        self.serial = itertools.count(1)
        self.placed: list[Placed] = []
        self.by_company: dict[str, list[Prospect]] = {}

    # -- the run --

    def run(self) -> TeamMailbox:
        newsletters = round(self.n * NEWSLETTER_SHARE)
        internal = round(self.n * INTERNAL_SHARE)
        copies = round(self.n * SELF_COPY_SHARE)
        budget = self.n - newsletters - internal - copies
        prospects = self._prospects(budget)
        for prospect in prospects:
            self._conversation(prospect)
        for _ in range(newsletters):
            self._newsletter()
        self._internal(internal)
        self._self_copies(copies)
        self.placed.sort(key=lambda placed: _moment(placed.facts))
        if len(self.placed) != self.n:
            raise AssertionError(f"generated {len(self.placed)} messages, expected {self.n}")
        listed = self.rng.sample(prospects, round(len(prospects) * DO_NOT_CONTACT_SHARE))
        return TeamMailbox(
            seed=self.seed,
            now=NOW,
            reps=REPS,
            prospects=tuple(prospects),
            messages=tuple(_numbered(self.placed)),
            do_not_contact=tuple(sorted(prospect.email for prospect in listed)),
        )

    # -- the population --

    def _prospects(self, budget: int) -> list[Prospect]:
        rng = self.rng
        domains = [
            f"{stem.lower()}{tail}-{kind.lower()}.example"
            for stem in COMPANY_STEMS
            for tail in COMPANY_TAILS
            for kind in COMPANY_KINDS
        ]
        company_count = min(len(domains), max(1, round(self.prospect_count * COMPANY_RATIO)))
        # Each company has an owner rep, and either answers or does not: replies come
        # from a company's contacts together, as `group_by = "company"` counts them.
        companies = [
            (domain, rng.choice(ZONES), rng.choice(REPS), rng.random() < ENGAGED_COMPANY_SHARE)
            for domain in rng.sample(domains, company_count)
        ]
        names = list(SCENARIOS)
        weights = [SCENARIOS[name].share for name in names]
        unanswered_weights = [SCENARIOS[name].share * (name in UNANSWERED) for name in names]
        people: list[tuple[str, str, str, timezone, Rep]] = []
        scenarios: list[str] = []
        seen: set[str] = set()
        for index in range(self.prospect_count):
            first = rng.choice(FIRST_NAMES if rng.random() < 0.9 else INTERNATIONAL_FIRST_NAMES)
            last = rng.choice(LAST_NAMES)
            first_ascii, last_ascii = (
                part.lower().translate(ASCII_FOLD).replace(" ", "") for part in (first, last)
            )
            if rng.random() < FREEMAIL_SHARE:
                domain, company, zone, rep = rng.choice(FREEMAIL), "", rng.choice(ZONES), None
                engaged = True
                local = f"{first_ascii}.{last_ascii}{rng.randint(1, 99)}"
            else:
                # Skewed sizes: a few companies hold many contacts, most hold a few.
                domain, zone, rep, engaged = companies[int(company_count * rng.random() ** 1.5)]
                company = domain.removesuffix(".example")
                local = rng.choice((f"{first_ascii}.{last_ascii}", f"{first_ascii[0]}{last_ascii}"))
            email = f"{local}@{domain}"
            if email in seen:
                email = f"{local}{index}@{domain}"
            seen.add(email)
            people.append((email, f"{first} {last}", company, zone, rep or rng.choice(REPS)))
            scenarios += rng.choices(names, weights if engaged else unanswered_weights)
        lengths = self._lengths(scenarios, budget)
        prospects = []
        for person, scenario, length in zip(people, scenarios, lengths, strict=True):
            prospect = Prospect(*person, scenario, length)
            prospects.append(prospect)
            if prospect.company:
                self.by_company.setdefault(prospect.company, []).append(prospect)
        return prospects

    def _lengths(self, scenarios: Sequence[str], budget: int) -> list[int]:
        """Lengths in each scenario's range that add up to exactly `budget`."""
        rng = self.rng
        low = [SCENARIOS[name].min_length for name in scenarios]
        high = [SCENARIOS[name].max_length for name in scenarios]
        if not sum(low) <= budget <= sum(high):
            raise ValueError(
                f"{len(scenarios)} prospects need {sum(low)} to {sum(high)} messages, "
                f"but {budget} are left for them: change n or prospects"
            )
        lengths = [
            lo + int((hi - lo + 1) * rng.random() ** 1.6) for lo, hi in zip(low, high, strict=True)
        ]
        residual = budget - sum(lengths)
        step = 1 if residual > 0 else -1
        while residual:
            index = rng.randrange(len(lengths))
            if low[index] <= lengths[index] + step <= high[index]:
                lengths[index] += step
                residual -= step
        return lengths

    # -- one prospect's mail --

    def _events(self, prospect: Prospect) -> list[str]:
        rng, scenario = self.rng, SCENARIOS[prospect.scenario]
        tail = list(scenario.tail)
        if prospect.scenario == "ghosted":
            tail += ["follow"] * rng.randint(0, min(3, prospect.length - len(tail) - 1))
        head_length = prospect.length - len(tail)
        engaged = prospect.scenario != "cold"
        events: list[str] = []
        while len(events) < head_length:
            events.append(self._next_event(events[-1] if events else None, engaged=engaged))
        if head_length >= 2 and rng.random() < 0.04:
            events[rng.randrange(1, head_length)] = "other_rep"
        return events + tail

    def _next_event(self, previous: str | None, *, engaged: bool) -> str:
        """The head's next event after `previous`: (event, cumulative probability) rows."""
        if previous is None:
            return "out"
        choices: tuple[tuple[str, float], ...]
        if previous in ("in", "draft"):
            choices = (("out", 0.85), ("in", 0.95), ("draft", 1.0))
        elif not engaged:  # a cold prospect: follow-ups, now and then an out-of-office
            choices = (("follow", 1.0),) if previous == "ooo" else (("ooo", 0.2), ("follow", 1.0))
        elif previous in ("out", "follow"):
            choices = (("in", 0.55), ("follow", 0.8), ("ooo", 0.9), ("delay", 0.92), ("out", 1.0))
        else:  # after an out-of-office reply or a delay notice; "out" opens a new thread
            choices = (("in", 0.55), ("follow", 0.8), ("out", 1.0))
        roll = self.rng.random()
        return next(event for event, upto in choices if roll < upto)

    def _moments(self, prospect: Prospect, events: list[str]) -> list[datetime]:
        """One moment per event: gaps by what follows what, walked back from the end."""
        rng = self.rng
        gaps = [timedelta(0)]
        for event in events[1:]:
            if event in ("ooo", "ooo_ahead", "bounce", "delay"):
                gap = timedelta(minutes=rng.uniform(1, 20))
            elif event in ("in", "no"):
                gap = timedelta(hours=10 + rng.expovariate(1 / 36))
            elif event in ("follow", "other_rep"):
                gap = timedelta(days=rng.uniform(3, 10))
            else:  # out, draft: the rep answers
                gap = timedelta(hours=1 + rng.expovariate(1 / 10))
            gaps.append(gap)
        end = NOW - self._age(prospect, events)
        span = sum(gaps, timedelta(0))
        room = (SPAN - (NOW - end)) * rng.uniform(0.5, 1.0)
        if span > room:
            gaps = [gap * (room / span) for gap in gaps]
        moments, moment = [], end - sum(gaps, timedelta(0))
        for gap in gaps:
            moment += gap
            moments.append(moment.replace(microsecond=0))
        return moments

    def _age(self, prospect: Prospect, events: list[str]) -> timedelta:
        """How long before NOW the scenario's last message is."""
        rng, scenario = self.rng, prospect.scenario
        if scenario == "awaiting":
            return timedelta(days=rng.uniform(0.02, 1.0))  # the first stage waits 3 days
        if scenario == "snoozed":
            return timedelta(days=rng.uniform(0.02, 3.0))
        if scenario == "ghosted":
            followups = len(events) - 1 - max(i for i, e in enumerate(events) if e == "in") - 1
            wait = STAGE_WAITS[followups] * 1.4 + 3  # business days as calendar days, and some
            return timedelta(days=rng.uniform(wait, wait + 90))
        if scenario == "replied":
            return timedelta(days=rng.uniform(0.02, 75))
        return timedelta(days=rng.uniform(0.5, 140))

    def _conversation(self, prospect: Prospect) -> None:
        events = self._events(prospect)
        moments = self._moments(prospect, events)
        words = self._words(prospect)
        thread = _Thread(self.rng.choice(OPENER_SUBJECTS).format(**words))
        for position, (event, moment) in enumerate(zip(events, moments, strict=True)):
            if event == "out" and position > 0 and events[position - 1] not in ("in", "draft"):
                thread = _Thread(self.rng.choice(OPENER_SUBJECTS).format(**self._words(prospect)))
            if event == "other_rep":
                others = [rep for rep in REPS if rep is not prospect.rep]
                self._outbound(self.rng.choice(others), prospect, _Thread(thread.subject), moment)
            elif event in ("out", "follow"):
                self._outbound(prospect.rep, prospect, thread, moment)
            elif event == "draft":
                self._outbound(prospect.rep, prospect, thread, moment, folder=DRAFTS)
            elif event in ("in", "no"):
                self._reply(prospect, thread, moment, declines=event == "no")
            elif event in ("ooo", "ooo_ahead"):
                self._out_of_office(prospect, thread, moment, ahead=event == "ooo_ahead")
            else:
                self._delivery_report(prospect, thread, moment, failed=event == "bounce")

    # -- messages --

    def _message_id(self, domain: str) -> str:
        return f"{next(self.serial):07x}.{self.seed}@{domain}"

    def _place(self, account: str, folder: str, *, date: datetime, **fields: Any) -> None:
        """File one message; its remote id is given once the mailbox is in date order."""
        date = date.replace(microsecond=0)
        arrived = date + timedelta(seconds=self.rng.randint(1, 30))
        facts = MessageFacts(
            remote_id="-",
            date=date,
            received_at=arrived.astimezone(UTC),
            size=self.rng.randint(1_800, 9_000),
            **fields,
        )
        self.placed.append(Placed(account, folder, facts))

    def _outbound(
        self, rep: Rep, prospect: Prospect, thread: _Thread, moment: datetime, folder: str = SENT
    ) -> None:
        cc: tuple[Address, ...] = ()
        colleagues = self.by_company.get(prospect.company, ())
        if len(colleagues) > 1 and self.rng.random() < 0.05:
            other = self.rng.choice(colleagues)
            if other is not prospect:
                cc = (Address(other.email, other.name),)
        message_id = self._message_id(DOMAIN)
        self._place(
            rep.account,
            folder,
            message_id=message_id,
            in_reply_to=thread.last_id,
            references=tuple(thread.references),
            sender=Address(rep.address, rep.name),
            to=(Address(prospect.email, prospect.name),),
            cc=cc,
            date=moment.astimezone(REP_ZONE),
            subject=_reply_subject(thread),
            headers=(("content-type", 'text/plain; charset="utf-8"'),),
        )
        if folder == SENT:
            _advance(thread, message_id)

    def _reply(
        self, prospect: Prospect, thread: _Thread, moment: datetime, *, declines: bool
    ) -> None:
        rng, words = self.rng, self._words(prospect)
        first = prospect.name.split()[0]
        if declines:
            sentences = [rng.choice(REFUSALS)]
        else:
            sentences = [s.format(**words) for s in rng.sample(REPLY_SENTENCES, rng.randint(1, 2))]
            if rng.random() < 0.3:
                sentences.append(rng.choice(COMMITMENTS))
        quoted = rng.choice(FOLLOWUP_SENTENCES).format(**words)
        excerpt = (
            f"Hi {prospect.rep.name.split()[0]},\n\n{' '.join(sentences)}\n\nBest,\n{first}\n\n"
            f"On {moment - timedelta(days=2):%a, %d %b %Y}, {prospect.rep.name} wrote:\n> {quoted}"
        )[:500]
        message_id = self._message_id(prospect.email.partition("@")[2])
        self._place(
            prospect.rep.account,
            INBOX,
            message_id=message_id,
            in_reply_to=thread.last_id,
            references=tuple(thread.references),
            sender=Address(prospect.email, prospect.name),
            to=(Address(prospect.rep.address, prospect.rep.name),),
            date=moment.astimezone(prospect.zone),
            subject=_reply_subject(thread),
            headers=(("content-type", 'multipart/alternative; boundary="b1"'),),
            excerpt=excerpt,
        )
        _advance(thread, message_id)

    def _out_of_office(
        self, prospect: Prospect, thread: _Thread, moment: datetime, *, ahead: bool
    ) -> None:
        rng = self.rng
        if ahead:  # back after NOW: the prospect is snoozed
            back = NOW.date() + timedelta(days=rng.randint(3, 24))
        else:
            back = (moment + timedelta(days=rng.randint(2, 10))).date()
        excerpt = (
            f"Thank you for your message. I am out of the office and back on "
            f"{back:%A, %d %B %Y}, with limited access to email.\n\n{prospect.name}"
        )
        headers = [("auto-submitted", "auto-replied"), ("x-auto-response-suppress", "All")]
        if rng.random() < 0.5:
            headers.append(("x-ms-exchange-inbox-rules-loop", prospect.email))
        self._place(
            prospect.rep.account,
            INBOX,
            message_id=self._message_id(prospect.email.partition("@")[2]),
            in_reply_to=thread.last_id,
            sender=Address(prospect.email, prospect.name),
            to=(Address(prospect.rep.address, prospect.rep.name),),
            date=moment.astimezone(prospect.zone),
            subject=f"Automatic reply: {thread.subject}",
            headers=(*headers, ("content-type", 'text/plain; charset="utf-8"')),
            excerpt=excerpt,
        )

    def _delivery_report(
        self, prospect: Prospect, thread: _Thread, moment: datetime, *, failed: bool
    ) -> None:
        action = "failed" if failed else "delayed"
        subject = "Undeliverable: " if failed else "Delivery Status Notification (Delay): "
        self._place(
            prospect.rep.account,
            INBOX,
            message_id=self._message_id(f"mx1.{DOMAIN}"),
            sender=Address(f"mailer-daemon@mx1.{DOMAIN}", "Mail Delivery System"),
            to=(Address(prospect.rep.address, prospect.rep.name),),
            date=moment.astimezone(UTC),
            subject=subject + thread.subject,
            headers=(
                ("auto-submitted", "auto-replied"),
                ("content-type", 'multipart/report; report-type=delivery-status; boundary="r"'),
                ("return-path", "<>"),
            ),
            report=DeliveryReport("delivery-status", action, (prospect.email,)),
        )

    # -- the rest of the mailbox --

    def _newsletter(self) -> None:
        rng = self.rng
        title, sender, list_name = rng.choice(NEWSLETTERS)
        rep = rng.choice(REPS)
        domain = sender.partition("@")[2]
        self._place(
            rep.account,
            INBOX,
            message_id=self._message_id(domain),
            sender=Address(sender, title),
            to=(Address(rep.address, rep.name),),
            date=NOW - SPAN * rng.random(),
            subject=f"{title}: {rng.choice(TOPICS)} this week",
            headers=(
                ("content-type", 'multipart/alternative; boundary="n"'),
                ("list-id", f"{title} <{list_name}.{domain}>"),
                ("list-unsubscribe", f"<https://{domain}/unsubscribe>"),
            ),
        )

    def _internal(self, count: int) -> None:
        """Mail among the reps (one copy in each mailbox) and with other colleagues."""
        rng = self.rng
        colleagues = [Rep("", name, f"{local}@{DOMAIN}") for name, local in COLLEAGUES]
        while count > 0:
            author = rng.choice(REPS + tuple(colleagues))
            reader = rng.choice([rep for rep in REPS if rep is not author])
            subject = rng.choice(INTERNAL_SUBJECTS).format(
                quarter=rng.randint(1, 4), **self._words(None)
            )
            common: dict[str, Any] = {
                "message_id": self._message_id(DOMAIN),
                "sender": Address(author.address, author.name),
                "to": (Address(reader.address, reader.name),),
                "date": NOW - SPAN * rng.random(),
                "subject": subject,
                "headers": (("content-type", 'text/plain; charset="utf-8"'),),
            }
            if author.account and count >= 2:
                self._place(author.account, SENT, **common)
                count -= 1
            self._place(reader.account, INBOX, **common, excerpt=rng.choice(INTERNAL_SENTENCES))
            count -= 1

    def _self_copies(self, count: int) -> None:
        """The rep's own copy of a sent message in INBOX (Bcc to self): one message, two
        locations."""
        sent = [placed for placed in self.placed if placed.folder == SENT]
        for placed in self.rng.sample(sent, min(count, len(sent))):
            self.placed.append(Placed(placed.account, INBOX, placed.facts))

    def _words(self, prospect: Prospect | None) -> dict[str, str]:
        return {
            "company": prospect.company if prospect and prospect.company else "your team",
            "topic": self.rng.choice(TOPICS),
            "first": prospect.name.split()[0] if prospect else "team",
        }


def _reply_subject(thread: _Thread) -> str:
    return thread.subject if thread.last_id is None else f"Re: {thread.subject}"


def _advance(thread: _Thread, message_id: str) -> None:
    if thread.last_id is not None:
        thread.references.append(thread.last_id)
    thread.last_id = message_id


def _moment(facts: MessageFacts) -> datetime:
    moment = facts.date or facts.received_at
    assert moment is not None
    return moment


def _numbered(placed: Sequence[Placed]) -> Iterator[Placed]:
    """The messages with remote ids counted per (account, folder), as IMAP UIDs are."""
    counters: dict[tuple[str, str], itertools.count[int]] = {}
    for item in placed:
        counter = counters.setdefault((item.account, item.folder), itertools.count(1))
        yield Placed(item.account, item.folder, replace(item.facts, remote_id=str(next(counter))))
