"""Verdicts: the clock applied to what the mail decided, and the verdicts the store keeps."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from connectors.base import Address, FolderRole, MessageFacts, RemoteFolder
from daemon import verdicts
from daemon.config import AccountConfig, Config, RulesSettings
from daemon.evaluation import evaluate_team, team_verdicts
from daemon.store import Store
from rules.elapsed import ElapsedBusinessDays
from rules.prospects import ClassifiedMessage, Ledger, classify_account
from rules.status import ProspectStatus, Verdict, evaluate, rule_trace, settle_all
from tests.support.scenarios import Scenario, load_scenario, scenario_paths

PATHS = scenario_paths()
# Before the scenario's moment, at it, and well after: every clock-picked status shows up.
SHIFTS = (timedelta(days=-9), timedelta(0), timedelta(days=3), timedelta(days=40))


def _classified(scenario: Scenario) -> list[ClassifiedMessage]:
    classified: list[ClassifiedMessage] = []
    for account in scenario.team.accounts:
        classified += classify_account(account, scenario.messages_as_rules(account.name))
    return classified


def _json(statuses: list[ProspectStatus]) -> str:
    return json.dumps([status.report_row() for status in statuses])


@pytest.mark.parametrize("path", PATHS, ids=[path.stem for path in PATHS])
def test_kept_verdicts_give_the_same_report_at_any_time(path: Path) -> None:
    """Verdicts encoded for the store and decoded again give the same statuses, reasons
    and draft facts as fresh ones, at times before, at and after the scenario's."""
    scenario = load_scenario(path)
    fresh = settle_all(_classified(scenario), scenario.team, scenario.policy)
    kept = verdicts.decode(verdicts.encode(fresh))
    assert kept == fresh
    for shift in SHIFTS:
        clock = ElapsedBusinessDays(scenario.policy.calendar, scenario.now + shift)
        from_kept = [verdict.at(clock) for verdict in kept]
        assert from_kept == [verdict.at(clock) for verdict in fresh]
        assert _json(from_kept) == _json([verdict.at(clock) for verdict in fresh])


@pytest.mark.parametrize("path", PATHS, ids=[path.stem for path in PATHS])
def test_the_clock_picks_what_the_precedence_table_says(path: Path) -> None:
    """At any time, a verdict's status is the first precedence row that `explain` shows
    holding: the report and the explanation never disagree."""
    scenario = load_scenario(path)
    classified = _classified(scenario)
    ledger = Ledger.fold(classified, scenario.team, scenario.policy)
    for shift in SHIFTS:
        now = scenario.now + shift
        for status in evaluate(classified, scenario.team, scenario.policy, now):
            facts = ledger.facts(status.account, status.prospect)
            trace = rule_trace(facts, scenario.policy, now)
            first = next(row for row, holds, _why in trace if holds)
            assert status.status is first, f"{status.prospect} at {now}: {trace}"


def test_a_verdict_has_a_reason_or_a_schedule() -> None:
    """A verdict is settled (status and reason) or left to the clock (a schedule)."""
    at = datetime(2026, 11, 2, 9, tzinfo=UTC)
    with pytest.raises(ValueError, match="either a reason"):
        Verdict(
            account="dana",
            prospect="alice@bigcorp.example",
            name="",
            company="bigcorp.example",
            status=None,
            reason=None,
            schedule=None,
            last_outbound_at=at,
            last_inbound_at=None,
            followups_sent=0,
            next_stage=None,
            next_action_at=None,
            subject="Pricing",
        )


# -- the verdicts the store keeps --------------------------------------------------------

REP = "dana@acmesoft.example"
ALICE = "alice@bigcorp.example"
MONDAY = datetime(2026, 11, 2, 9, tzinfo=UTC)
NOW = datetime(2026, 11, 25, 9, tzinfo=UTC)
CONFIG = Config(
    accounts=(
        AccountConfig(
            name="dana",
            kind="imap",
            rep_name="Dana Reyes",
            addresses=(REP,),
            host="127.0.0.1",
            port=993,
        ),
    )
)


def _facts(remote_id: str, message_id: str, sender: str, to: str, at: datetime) -> MessageFacts:
    return MessageFacts(
        remote_id=remote_id,
        message_id=message_id,
        sender=Address(sender),
        to=(Address(to),),
        date=at,
        received_at=at,
        subject="Pricing",
    )


def _sync(store: Store, *messages: tuple[str, MessageFacts]) -> None:
    """Store messages as a sync would: (folder role, facts)."""
    account_id = store.ensure_account("dana", "imap")
    folders = store.sync_folders(
        account_id,
        [RemoteFolder("INBOX", FolderRole.INBOX), RemoteFolder("Sent", FolderRole.SENT)],
    )
    by_role = {folder.role: folder for folder in folders}
    for role, facts in messages:
        store.apply_fetched(by_role[role], [facts])


def _kept(store: Store, config: Config) -> list[Verdict] | None:
    return verdicts.load(store, verdicts.team_key(config), store.revisions(["dana"]))


def test_the_store_keeps_verdicts_until_the_mail_changes(store: Store) -> None:
    """An evaluation is kept and read back while the mail is unchanged; a synced reply
    makes it stale, and the next evaluation sees the reply."""
    _sync(
        store,
        ("sent", _facts("1", "m1@acmesoft.example", REP, ALICE, MONDAY)),
        ("inbox", _facts("1", "r1@bigcorp.example", ALICE, REP, MONDAY + timedelta(days=1))),
        ("sent", _facts("2", "m2@acmesoft.example", REP, ALICE, MONDAY + timedelta(days=2))),
    )
    assert _kept(store, CONFIG) is None
    [first] = team_verdicts(store, CONFIG)
    assert _kept(store, CONFIG) == [first]
    assert [s.status for s in evaluate_team(store, CONFIG, NOW)] == ["ghosted"]

    reply = _facts("2", "r2@bigcorp.example", ALICE, REP, MONDAY + timedelta(days=10))
    _sync(store, ("inbox", reply))
    assert _kept(store, CONFIG) is None
    assert [s.status for s in evaluate_team(store, CONFIG, NOW)] == ["replied"]
    assert _kept(store, CONFIG) is not None


def test_a_changed_setting_is_evaluated_again(store: Store) -> None:
    """Verdicts kept under one config are not served under another (do-not-contact
    added): the report follows the file, not the store."""
    _sync(store, ("sent", _facts("1", "m1@acmesoft.example", REP, ALICE, MONDAY)))
    assert [s.status for s in evaluate_team(store, CONFIG, NOW)] == ["cold"]
    blocked = dataclasses.replace(CONFIG, rules=RulesSettings(do_not_contact=(ALICE,)))
    assert verdicts.team_key(blocked) != verdicts.team_key(CONFIG)
    assert _kept(store, blocked) is None
    assert [s.status for s in evaluate_team(store, blocked, NOW)] == ["excluded"]
    assert _kept(store, CONFIG) is None  # one evaluation is kept: the latest


def test_a_removed_message_makes_the_kept_verdicts_stale(store: Store) -> None:
    """An expunge (the folder no longer holds a message) bumps the revision too."""
    _sync(store, ("sent", _facts("1", "m1@acmesoft.example", REP, ALICE, MONDAY)))
    team_verdicts(store, CONFIG)
    before = store.revisions(["dana"])["dana"]
    [sent] = [folder for folder in store.folders("dana") if folder.role is FolderRole.SENT]
    assert store.apply_present(sent, set()) == 1
    assert store.revisions(["dana"])["dana"] > before
    assert _kept(store, CONFIG) is None
    assert evaluate_team(store, CONFIG, NOW) == []


def test_a_poll_that_changes_nothing_keeps_the_verdicts(store: Store) -> None:
    """Re-applying what is stored and an unchanged folder list leave the revision alone:
    the verdicts stay fresh between polls that bring no mail."""
    _sync(store, ("sent", _facts("1", "m1@acmesoft.example", REP, ALICE, MONDAY)))
    team_verdicts(store, CONFIG)
    [sent] = [folder for folder in store.folders("dana") if folder.role is FolderRole.SENT]
    store.apply_present(sent, {"1"})
    store.sync_folders(
        store.ensure_account("dana", "imap"),
        [RemoteFolder("INBOX", FolderRole.INBOX), RemoteFolder("Sent", FolderRole.SENT)],
    )
    assert _kept(store, CONFIG) is not None


def test_saving_twice_under_one_key_keeps_the_later(store: Store) -> None:
    """Two saves of the same team (a report beside the daemon) both succeed; the kept
    verdicts are the later ones, and another key's row is gone."""
    _sync(store, ("sent", _facts("1", "m1@acmesoft.example", REP, ALICE, MONDAY)))
    [verdict] = team_verdicts(store, CONFIG)
    revisions = store.revisions(["dana"])
    key = verdicts.team_key(CONFIG)
    verdicts.save(store, "other-key", revisions, [verdict], evaluated_at=NOW)
    verdicts.save(store, key, revisions, [], evaluated_at=NOW)
    verdicts.save(store, key, revisions, [verdict], evaluated_at=NOW)
    assert verdicts.load(store, key, revisions) == [verdict]
    assert verdicts.load(store, "other-key", revisions) is None
