"""The evaluation benchmark's team mailbox: deterministic, exact in size, valid facts,
and every status of SPEC section 3 once evaluated."""

from __future__ import annotations

import hashlib
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest

from bench.eval_bench import load, write_config
from bench.team_mailbox import DRAFTS, INBOX, NOW, REPS, SCENARIOS, SENT, TeamMailbox, team_mailbox
from connectors.base import MessageFacts
from daemon.config import load_config
from daemon.evaluation import evaluate_team
from daemon.store import Store
from rules.status import Status

N, PROSPECTS = 2500, 250


@pytest.fixture(scope="module")
def mailbox() -> TeamMailbox:
    return team_mailbox(N, PROSPECTS, seed=3)


def _digest(mailbox: TeamMailbox) -> str:
    sha = hashlib.sha256()
    for placed in mailbox.messages:
        sha.update(repr((placed.account, placed.folder, placed.facts)).encode())
    return sha.hexdigest()


def test_same_seed_same_mailbox_other_seed_other_mailbox(mailbox: TeamMailbox) -> None:
    """The same (n, prospects, seed) yields identical facts; another seed another mailbox."""
    assert _digest(team_mailbox(N, PROSPECTS, seed=3)) == _digest(mailbox)
    assert _digest(team_mailbox(N, PROSPECTS, seed=4)) != _digest(mailbox)


def test_exactly_n_messages_and_the_prospects_asked_for(mailbox: TeamMailbox) -> None:
    """N messages in the reps' INBOX, Sent and Drafts; P distinct prospects of 1-20 messages."""
    assert len(mailbox.messages) == N
    folders = {(placed.account, placed.folder) for placed in mailbox.messages}
    assert {(rep.account, folder) for rep in REPS for folder in (INBOX, SENT)} <= folders
    assert {folder for _account, folder in folders} == {INBOX, SENT, DRAFTS}
    assert len({prospect.email for prospect in mailbox.prospects}) == PROSPECTS
    assert all(1 <= prospect.length <= 20 for prospect in mailbox.prospects)
    assert set(mailbox.scenarios()) == set(SCENARIOS)


def test_facts_are_valid_dated_in_order_with_unique_remote_ids(mailbox: TeamMailbox) -> None:
    """Aware dates within ~6 months before NOW, in order; remote ids unique per folder."""
    moments = [placed.facts.date for placed in mailbox.messages if placed.facts.date]
    assert len(moments) == N
    assert moments == sorted(moments)
    assert NOW - timedelta(days=183) <= moments[0]
    assert moments[-1] <= NOW
    remote_ids = Counter(
        (placed.account, placed.folder, placed.facts.remote_id) for placed in mailbox.messages
    )
    assert max(remote_ids.values()) == 1
    for placed in mailbox.messages:
        assert isinstance(placed.facts, MessageFacts)
        assert placed.facts.message_id
        assert "<" not in placed.facts.message_id
        assert (placed.folder == SENT) <= (placed.facts.sender is not None)


def test_every_status_occurs_after_loading_through_the_store(
    mailbox: TeamMailbox, tmp_path: Path
) -> None:
    """Loaded with apply_fetched and evaluated, the mailbox shows all eight statuses."""
    database = tmp_path / "relight.db"
    stored = load(mailbox, database)
    assert sum(stored.values()) <= N
    config = load_config(
        write_config(tmp_path, database, mailbox), {"RELIGHT_BENCH_PASSWORD": "unused"}
    )
    with Store.open(config.daemon.database) as store:
        statuses = evaluate_team(store, config, NOW)
    assert {status.status for status in statuses} == set(Status)
