"""Every scenario in tests/scenarios/: a small team mailbox and the status of each prospect."""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage
from pathlib import Path

import pytest

from connectors.headers import parse_delivery_report, parse_header_block
from rules.excerpt import reply_text
from rules.message import Message
from rules.prospects import ClassifiedMessage, classify_account
from rules.status import ProspectStatus, evaluate
from tests.support.scenarios import Scenario, load_scenario, scenario_paths

PATHS = scenario_paths()


def _evaluate(scenario: Scenario) -> list[ProspectStatus]:
    classified: list[ClassifiedMessage] = []
    for account in scenario.team.accounts:
        classified += classify_account(account, scenario.messages_as_rules(account.name))
    return evaluate(classified, scenario.team, scenario.policy, scenario.now)


def _show(results: list[ProspectStatus]) -> str:
    return "\n".join(
        f"  {r.account}/{r.prospect}: {r.status} followups={r.followups_sent} "
        f"stage={r.next_stage} at={r.next_action_at} reason={r.reason!r}"
        for r in results
    )


def test_there_are_enough_scenarios() -> None:
    """The scenario directory holds at least 40 scenarios."""
    assert len(PATHS) >= 40


@pytest.mark.parametrize("path", PATHS, ids=[path.stem for path in PATHS])
def test_scenario(path: Path) -> None:
    """Each (account, prospect) evaluates to the scenario's expectation, and no other exists."""
    scenario = load_scenario(path)
    results = _evaluate(scenario)
    shown = _show(results)
    by_key = {(r.account, r.prospect): r for r in results}
    expected_keys = {(e.account, e.prospect) for e in scenario.expected}
    assert set(by_key) == expected_keys, f"{scenario.description}\n{shown}"
    for expected in scenario.expected:
        result = by_key[(expected.account, expected.prospect)]
        where = f"{path.stem} {expected.prospect}: {scenario.description}\n{shown}"
        assert result.status == expected.status, where
        assert result.followups_sent == expected.followups_sent, where
        assert result.next_stage == expected.next_stage, where
        assert expected.reason in result.reason, where
        if expected.checks_next_action:
            assert result.next_action_at == expected.next_action_at, where
        if expected.name is not None:
            assert result.name == expected.name, where
        if expected.company is not None:
            assert result.company == expected.company, where
        if expected.subject is not None:
            assert result.subject == expected.subject, where
        if expected.commitment is not None:
            quoted = result.commitment.quoted if result.commitment is not None else ""
            assert expected.commitment in quoted if expected.commitment else not quoted, where


def _raw_cases() -> list[tuple[Path, str]]:
    return [(path, account) for path in PATHS for account in load_scenario(path).accounts]


@pytest.mark.parametrize(
    ("path", "account"), _raw_cases(), ids=[f"{p.stem}-{a}" for p, a in _raw_cases()]
)
def test_raw_messages_say_what_the_rules_see(path: Path, account: str) -> None:
    """`as_raw_messages` bytes parse (as a connector parses them) into the `Message` facts."""
    scenario = load_scenario(path)
    raws = scenario.as_raw_messages(account)
    facts = scenario.messages_as_rules(account)
    assert len(raws) == len(facts)
    for (folder, raw), message in zip(raws, facts, strict=True):
        assert folder == message.folder.value
        assert b"\r\n\r\n" in raw
        assert b"\n" not in raw.replace(b"\r\n", b"")
        parsed = parse_header_block(raw)
        undated = ("date: missing",)
        assert parsed.defects == (undated if parsed.date is None else ()), parsed.defects
        assert parsed.message_id == message.message_id
        assert parsed.in_reply_to == message.in_reply_to
        assert parsed.references == message.references
        assert parsed.subject == message.subject
        assert parsed.date == (message.at if parsed.date is not None else None)
        assert parsed.sender is not None
        assert message.sender is not None
        assert (parsed.sender.email, parsed.sender.name) == (
            message.sender.email,
            message.sender.name,
        )
        assert [(a.email, a.name) for a in parsed.to] == [(a.email, a.name) for a in message.to]
        assert [(a.email, a.name) for a in parsed.cc] == [(a.email, a.name) for a in message.cc]
        assert sorted(parsed.headers) == sorted(message.headers)
        _check_body(raw, message)


def _check_body(raw: bytes, message: Message) -> None:
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    text = parsed.get_body(preferencelist=("plain",))
    assert text is not None
    assert reply_text(text.get_content()) == (message.excerpt or "")
    if message.report is None:
        return
    assert parsed.get_content_type() == "multipart/report"
    kind = message.report.report_type
    part = next(p for p in parsed.walk() if p.get_content_type() == f"message/{kind}")
    blocks = part.get_payload()
    assert isinstance(blocks, list)
    body = b"\r\n\r\n".join(block.as_bytes() for block in blocks)
    report = parse_delivery_report(kind, body)
    assert report.recipients == message.report.recipients
    if kind == "delivery-status":
        assert report.action == message.report.action
