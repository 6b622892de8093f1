"""Unit tests for `rules.companies`, `rules.prospects` and `rules.status` edge cases.

The scenario files (tests/scenarios, test_scenarios.py) cover whole conversations; these
pin the small rules and the corners scenarios do not reach, and one large synthetic team
mailbox checks the fold on 100,000 messages.
"""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from rules.business_days import BusinessCalendar
from rules.classify import Classification, Kind
from rules.companies import (
    DoNotContact,
    company_of,
    is_automated_address,
    is_freemail,
    is_internal,
)
from rules.elapsed import ElapsedBusinessDays
from rules.message import Address, DeliveryReport, Folder, Message
from rules.prospects import AccountView, ClassifiedMessage, Ledger, Policy, Snooze, Team
from rules.stages import StagePlan
from rules.status import PRECEDENCE, ProspectStatus, Status, decide, evaluate, rule_trace

REP = "dana@acmesoft.example"
ALICE = "alice@bigcorp.example"
DANA = AccountView("dana", frozenset({REP}), rep_name="Dana Reyes")
TEAM = Team((DANA,))
CALENDAR = BusinessCalendar("Europe/Berlin")
POLICY = Policy(calendar=CALENDAR)
BERLIN = timezone(timedelta(hours=1))
MONDAY = datetime(2020, 11, 2, 10, 0, tzinfo=BERLIN)
NOW = datetime(2020, 12, 15, 12, 0, tzinfo=UTC)
GENUINE = Classification(Kind.GENUINE, "genuine: test")


def day(offset: float, hours: float = 0) -> datetime:
    return MONDAY + timedelta(days=offset, hours=hours)


def sent(
    at: datetime, *to: str, mid: str, folder: Folder = Folder.SENT, **extra: object
) -> Message:
    return Message(
        at=at,
        folder=folder,
        message_id=mid,
        sender=Address(REP, "Dana Reyes"),
        to=tuple(Address(address) for address in to),
        subject="Pricing",
        **extra,  # type: ignore[arg-type]
    )


def received(at: datetime, sender: str, *, mid: str, name: str = "", **extra: object) -> Message:
    return Message(
        at=at,
        folder=Folder.INBOX,
        message_id=mid,
        sender=Address(sender, name),
        to=(Address(REP),),
        subject="Re: Pricing",
        **extra,  # type: ignore[arg-type]
    )


def one(messages: list[Message], policy: Policy = POLICY, now: datetime = NOW) -> ProspectStatus:
    results = evaluate(messages, TEAM, policy, now)
    assert len(results) == 1, results
    return results[0]


# -- companies ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "company"),
    [
        ("alice@bigcorp.example", "bigcorp.example"),
        ("Alice@BigCorp.Example", "bigcorp.example"),
        ("jane@gmail.com", "jane@gmail.com"),
        ("jane@googlemail.com", "jane@googlemail.com"),
        ("bob@hotmail.co.uk", "bob@hotmail.co.uk"),
        ("bob@yahoo.de", "bob@yahoo.de"),
        ("bob@gmx.net", "bob@gmx.net"),
        ("bob@web.de", "bob@web.de"),
        ("bob@t-online.de", "bob@t-online.de"),
        ("bob@yandex.ru", "bob@yandex.ru"),
        ("bob@proton.me", "bob@proton.me"),
        ("bob@live.events.example", "live.events.example"),
        ("bob@sub.bigcorp.example", "sub.bigcorp.example"),
        ("no-domain", "no-domain"),
    ],
)
def test_company_is_the_domain_except_on_freemail(address: str, company: str) -> None:
    """A company is the lower-case domain; on freemail (with country variants) the address."""
    assert company_of(address) == company


def test_extra_freemail_domains_count() -> None:
    """`rules.freemail_domains` adds domains where every address is its own company."""
    assert company_of("ann@mailbox.example") == "mailbox.example"
    assert company_of("ann@mailbox.example", ["Mailbox.Example"]) == "ann@mailbox.example"
    assert is_freemail("mailbox.example", ["mailbox.example"])
    assert not is_freemail("bigcorp.example")


def test_internal_covers_subdomains_but_not_lookalikes() -> None:
    """Own and internal domains include their subdomains, not domains that merely end alike."""
    own = ["acmesoft.example"]
    assert is_internal("lee@acmesoft.example", own)
    assert is_internal("kim@eu.acmesoft.example", own)
    assert not is_internal("eve@notacmesoft.example", own)
    assert is_internal("pat@partner.example", own, ["@partner.example"])
    assert not is_internal("no-domain", own)


def test_do_not_contact_matches_addresses_and_domains() -> None:
    """Entries are exact addresses or @domains (subdomains included), case-insensitive."""
    blocked = DoNotContact(["Someone@Example.com", "@competitor.example"])
    assert blocked.match("someone@example.com") == "someone@example.com"
    assert blocked.match("other@example.com") is None
    assert blocked.match("kim@competitor.example") == "@competitor.example"
    assert blocked.match("kim@eu.competitor.example") == "@competitor.example"
    assert blocked.match("kim@notcompetitor.example") is None
    assert not DoNotContact()


def test_do_not_contact_refuses_junk_entries() -> None:
    """An entry that is neither an address nor @domain is a configuration error."""
    with pytest.raises(ValueError, match="neither an address"):
        DoNotContact(["competitor"])


@pytest.mark.parametrize(
    ("address", "automated"),
    [
        ("no-reply@vendor.example", True),
        ("noreply+tag@vendor.example", True),
        ("MAILER-DAEMON@mx.example", True),
        ("postmaster@vendor.example", True),
        ("bounces-123@lists.example", True),
        ("do-not-reply@vendor.example", True),
        ("noreen@vendor.example", False),
        ("alice@vendor.example", False),
    ],
)
def test_automated_addresses(address: str, automated: bool) -> None:
    """Machine local parts (SPEC section 4) are recognised, people's names are not."""
    assert is_automated_address(address) is automated


def test_account_domains_leave_freemail_out() -> None:
    """A rep writing from gmail.com does not make every gmail.com address a colleague."""
    account = AccountView("solo", frozenset({"Dana@Gmail.com", "dana@acmesoft.example"}))
    assert account.addresses == frozenset({"dana@gmail.com", "dana@acmesoft.example"})
    assert account.domains == frozenset({"acmesoft.example"})


# -- inputs -------------------------------------------------------------------------------


def test_team_refuses_duplicate_names() -> None:
    """Two accounts with one name are a configuration error."""
    with pytest.raises(ValueError, match="distinct names"):
        Team((DANA, DANA))


def test_policy_refuses_an_unknown_grouping() -> None:
    """group_by is "company" or "contact"."""
    with pytest.raises(ValueError, match="group_by"):
        Policy(calendar=CALENDAR, group_by="team")  # type: ignore[arg-type]


def test_plain_messages_need_a_one_account_team() -> None:
    """Unclassified messages carry no account, so only a one-account team may pass them."""
    team = Team((DANA, AccountView("lee", frozenset({"lee@acmesoft.example"}))))
    with pytest.raises(ValueError, match="one-account team"):
        evaluate([sent(day(0), ALICE, mid="m1@a")], team, POLICY, NOW)


def test_now_must_be_aware() -> None:
    """A naive `now` is refused rather than compared wrongly."""
    with pytest.raises(ValueError, match="timezone-aware"):
        evaluate([], TEAM, POLICY, datetime(2020, 11, 2))


def test_unknown_account_is_refused() -> None:
    """A message of an account outside the team is a bug in the caller."""
    item = ClassifiedMessage("ghost", sent(day(0), ALICE, mid="m1@a"), GENUINE)
    with pytest.raises(ValueError, match="no account named"):
        evaluate([item], TEAM, POLICY, NOW)


# -- status corners -----------------------------------------------------------------------


def test_precedence_table_order() -> None:
    """The precedence of SPEC section 3 as the brief fixes it, awaiting last."""
    assert [status for status, _holds in PRECEDENCE] == [
        Status.EXCLUDED,
        Status.BOUNCED,
        Status.REPLIED,
        Status.COLD,
        Status.EXHAUSTED,
        Status.SNOOZED,
        Status.GHOSTED,
        Status.AWAITING,
    ]


def test_reply_stamped_the_same_second_counts_as_a_reply() -> None:
    """A tie between the rep's message and the prospect's counts as replied (no draft)."""
    result = one([sent(day(0), ALICE, mid="m1@a"), received(day(0), ALICE, mid="m2@b")])
    assert result.status is Status.REPLIED


def test_bounce_referring_to_the_latest_message_counts_despite_clock_skew() -> None:
    """A bounce whose In-Reply-To names the rep's latest message counts even if dated before."""
    bounce = Message(
        at=day(0, -0.1),
        message_id="b1@mx",
        in_reply_to="m1@a",
        sender=Address("mailer-daemon@mx.bigcorp.example"),
        to=(Address(REP),),
        subject="Undeliverable: Pricing",
        headers=(("content-type", "multipart/report; report-type=delivery-status"),),
        report=DeliveryReport("delivery-status", "failed", (ALICE,)),
    )
    result = one([sent(day(0), ALICE, mid="m1@a"), bounce])
    assert result.status is Status.BOUNCED
    assert result.next_stage is None
    assert result.next_action_at is None


def test_exhausted_wins_over_a_snooze() -> None:
    """No draft is coming for an exhausted prospect, so an admin snooze changes nothing."""
    plan = StagePlan([(3, "release_pressure")], 1)
    policy = replace(POLICY, plan=plan, snoozes=(Snooze(ALICE, date(2021, 1, 1)),))
    messages = [
        received(day(0), ALICE, mid="m0@b"),
        sent(day(1), ALICE, mid="m1@a"),
        sent(day(4), ALICE, mid="m2@a"),
    ]
    result = one(messages, policy)
    assert result.status is Status.EXHAUSTED
    assert result.followups_sent == 1


def test_admin_snooze_by_domain() -> None:
    """An admin snooze entry "@domain" covers every address of the domain."""
    policy = replace(POLICY, snoozes=(Snooze("@bigcorp.example", date(2020, 12, 24)),))
    messages = [received(day(0), ALICE, mid="m0@b"), sent(day(1), ALICE, mid="m1@a")]
    result = one(messages, policy)
    assert result.status is Status.SNOOZED
    assert result.next_action_at == datetime(2020, 12, 24, tzinfo=CALENDAR.zone)
    assert "@bigcorp.example" in result.reason


def test_draft_references_chain_the_last_message() -> None:
    """The draft answers the conversation's last message: its References plus its own id."""
    messages = [
        sent(day(0), ALICE, mid="m1@a"),
        received(day(1), ALICE, mid="m2@b", in_reply_to="m1@a", references=("m1@a",)),
        sent(day(2), ALICE, mid="m3@a", in_reply_to="m2@b", references=("m1@a", "m2@b")),
    ]
    result = one(messages, now=day(9))
    assert result.status is Status.GHOSTED
    assert result.reply_to is not None
    assert result.reply_to.message_id == "m3@a"
    assert result.reply_to.draft_references == ("m1@a", "m2@b", "m3@a")
    assert result.conversation_key == "<m1@a>"
    assert result.subject == "Pricing"
    assert result.last_reply_at == day(1)


def test_group_mail_draft_answers_a_message_the_prospect_saw() -> None:
    """In a group thread, a follow-up to John answers the last message John was part of."""
    john, ann = "john@gmail.com", "ann@gmail.com"
    messages = [
        sent(day(0), john, ann, mid="m1@a"),
        received(day(1), ann, mid="m2@b", in_reply_to="m1@a", references=("m1@a",)),
    ]
    results = {r.prospect: r for r in evaluate(messages, TEAM, POLICY, NOW)}
    assert results[ann].status is Status.REPLIED
    assert results[john].status is Status.COLD
    assert results[john].reply_to is not None
    assert results[john].reply_to.message_id == "m1@a"


def test_excerpt_chars_zero_keeps_no_words() -> None:
    """With excerpts disabled no reply text or commitment leaves the rules."""
    messages = [
        received(day(0), ALICE, mid="m0@b", excerpt="We'll discuss it with the team on Friday."),
        sent(day(1), ALICE, mid="m1@a"),
    ]
    assert one(messages).last_reply_excerpt == "We'll discuss it with the team on Friday."
    result = one(messages, replace(POLICY, excerpt_chars=0))
    assert result.last_reply_excerpt is None
    assert result.commitment is None


def test_rep_auto_reply_is_not_outbound() -> None:
    """The rep's own out-of-office sent to a person makes no prospect and no follow-up."""
    auto = sent(day(0), ALICE, mid="m1@a", headers=(("auto-submitted", "auto-replied"),))
    assert evaluate([auto], TEAM, POLICY, NOW) == []


def test_status_values_refuse_inconsistent_schedules() -> None:
    """next_stage and next_action_at come together; a reason is required."""
    base = one([sent(day(0), ALICE, mid="m1@a")])
    with pytest.raises(ValueError, match="set together"):
        replace(base, next_stage=1)
    with pytest.raises(ValueError, match="reason"):
        replace(base, reason="")


def test_report_row_has_the_spec_fields_as_json_values() -> None:
    """`report_row` has exactly the SPEC section 7 keys; times are ISO 8601 with an offset."""
    row = one([received(day(0), ALICE, mid="m0@b"), sent(day(1), ALICE, mid="m1@a")]).report_row()
    assert list(row) == [
        *("account", "prospect", "name", "company", "status", "last_outbound_at"),
        *("last_inbound_at", "followups_sent", "next_stage", "next_action_at", "subject"),
        "reason",
    ]
    assert row["status"] == "ghosted"
    assert row["last_outbound_at"] == "2020-11-03T10:00:00+01:00"
    assert row["next_action_at"] == "2020-11-06T10:00:00+01:00"


def test_order_of_input_does_not_matter() -> None:
    """The fold gives the same statuses whatever order the messages come in."""
    messages = [
        received(day(0), ALICE, mid="m0@b"),
        sent(day(1), ALICE, mid="m1@a"),
        sent(day(5), ALICE, mid="m2@a"),
        received(day(6), "bob@bigcorp.example", mid="m3@b"),
        sent(day(8), ALICE, "carol@newco.example", mid="m4@a"),
    ]
    expected = evaluate(messages, TEAM, POLICY, NOW)
    shuffled = messages[:]
    random.Random(3).shuffle(shuffled)  # noqa: S311 - a test's fixed order
    assert evaluate(shuffled, TEAM, POLICY, NOW) == expected
    assert [r.status for r in expected] == [Status.GHOSTED, Status.COLD]


@pytest.mark.parametrize(
    "now",
    [
        datetime(2021, 4, 6, 9, 30, tzinfo=UTC),  # the Tuesday after Easter Monday
        datetime(2021, 3, 29, 0, 45, tzinfo=UTC),  # the Monday after the spring DST change
        datetime(2020, 11, 1, 12, 0, tzinfo=UTC),  # a Sunday (and a holiday in Bavaria)
    ],
)
def test_elapsed_business_days_agree_with_the_calendar(now: datetime) -> None:
    """The memoised count equals `business_days_between` for starts of every kind."""
    calendar = BusinessCalendar("Europe/Berlin", "DE", "BY")
    counter = ElapsedBusinessDays(calendar, now)
    rng = random.Random(11)  # noqa: S311 - a test's fixed sample
    starts = [now - timedelta(minutes=rng.randrange(-3000, 200 * 24 * 60)) for _ in range(500)]
    starts += [now, now - timedelta(days=7), now.replace(hour=23) - timedelta(days=3)]
    for start in starts:
        assert counter.since(start) == calendar.business_days_between(start, now), start


def test_rule_trace_explains_every_row() -> None:
    """`rule_trace` answers each precedence row; the first that holds is the status."""
    classified = [
        ClassifiedMessage("dana", received(day(0), ALICE, mid="m0@b", name="Alice"), GENUINE),
        ClassifiedMessage("dana", sent(day(1), ALICE, mid="m1@a"), GENUINE),
    ]
    facts = Ledger.fold(classified, TEAM, POLICY).facts("dana", ALICE)
    trace = rule_trace(facts, POLICY, NOW)
    assert [(status, holds) for status, holds, _why in trace] == [
        (Status.EXCLUDED, False),
        (Status.BOUNCED, False),
        (Status.REPLIED, False),
        (Status.COLD, False),
        (Status.EXHAUSTED, False),
        (Status.SNOOZED, False),
        (Status.GHOSTED, True),
        (Status.AWAITING, True),
    ]
    assert decide(facts, POLICY, NOW).status is Status.GHOSTED
    whys = {status: why for status, _holds, why in trace}
    assert whys[Status.REPLIED].startswith("latest reply Mon 2 Nov 2020 from Alice is before")
    assert whys[Status.GHOSTED] == "stage 1 (release_pressure) due Fri 6 Nov 2020: passed"


# -- scale --------------------------------------------------------------------------------

_PATTERNS = ("ghosted", "replied", "cold", "exhausted")


def synthetic_mailbox(prospects: int) -> list[ClassifiedMessage]:
    """Ten messages per prospect in one thread, shuffled; the index picks the pattern.

    ghosted: four exchanges, then the rep's message (also copied to INBOX);
    replied: five exchanges ending with the prospect; cold: ten messages from the rep;
    exhausted: one message from the prospect, then nine from the rep.
    """
    items: list[ClassifiedMessage] = []
    base = datetime(2020, 10, 1, 9, 0, tzinfo=UTC)
    for index in range(prospects):
        prospect = f"p{index}@company{index}.example"
        start = base + timedelta(seconds=index)
        pattern = _PATTERNS[index % 4]
        for step in range(10):
            at = start + timedelta(days=step)
            mid = f"p{index}.{step}@relight.test"
            if pattern == "ghosted":
                outbound = step % 2 == 0 or step >= 8
                if step == 9:  # the rep's Bcc copy of step 8, in INBOX
                    at, mid = start + timedelta(days=8), f"p{index}.8@relight.test"
            elif pattern == "replied":
                outbound = step % 2 == 0
            elif pattern == "cold":
                outbound = True
            else:
                outbound = step > 0
            # One conversation per prospect: each message answers the one before.
            parent = f"p{index}.{min(step, 8) - 1}@relight.test" if step else None
            links = {"in_reply_to": parent, "references": (parent,) if parent else ()}
            if outbound:
                folder = Folder.INBOX if pattern == "ghosted" and step == 9 else Folder.SENT
                message = sent(at, prospect, mid=mid, folder=folder, **links)
            else:
                words = f"Thanks Dana, we'll review the offer with our team by Friday {step}."
                message = received(
                    at, prospect, mid=mid, name=f"Person {index}", excerpt=words, **links
                )
            items.append(ClassifiedMessage("dana", message, GENUINE))
    random.Random(7).shuffle(items)  # noqa: S311 - a test's fixed order
    return items


def test_hundred_thousand_messages_ten_thousand_prospects() -> None:
    """100k messages and 10k prospects fold into the right status for sampled prospects."""
    items = synthetic_mailbox(10_000)
    assert len(items) == 100_000
    results = {r.prospect: r for r in evaluate(items, TEAM, POLICY, NOW)}
    assert len(results) == 10_000
    counts: dict[str, int] = {}
    for result in results.values():
        counts[result.status] = counts.get(result.status, 0) + 1
    assert counts == dict.fromkeys(_PATTERNS, 2_500)

    ghosted = results["p4000@company4000.example"]
    assert (ghosted.status, ghosted.followups_sent, ghosted.next_stage) == ("ghosted", 0, 1)
    assert ghosted.last_outbound_at == datetime(2020, 10, 9, 10, 6, 40, tzinfo=UTC)
    assert ghosted.last_inbound_at == datetime(2020, 10, 8, 10, 6, 40, tzinfo=UTC)
    replied = results["p9997@company9997.example"]
    assert replied.status == "replied"
    assert replied.name == "Person 9997"
    assert replied.last_inbound_at == datetime(2020, 10, 10, 11, 46, 37, tzinfo=UTC)
    cold = results["p2@company2.example"]
    assert (cold.status, cold.followups_sent, cold.next_stage) == ("cold", 9, None)
    exhausted = results["p7@company7.example"]
    assert (exhausted.status, exhausted.followups_sent) == ("exhausted", 8)
    assert exhausted.reply_to is not None
    assert exhausted.reply_to.message_id == "p7.9@relight.test"
    assert ghosted.conversation_key == "<p4000.0@relight.test>"
    assert (
        ghosted.last_reply_excerpt
        == "Thanks Dana, we'll review the offer with our team by Friday 7."
    )
    assert ghosted.commitment is not None
    assert ghosted.commitment.quoted.startswith("you'd review the offer with your team")
