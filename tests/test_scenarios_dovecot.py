"""Every scenario end to end: APPEND into a real Dovecot, `relight sync`, `relight report`.

The pure scenario test (`test_scenarios.py`) feeds the rules directly; this one goes the
way a user's mail does: RFC 5322 bytes in the server's folders, the IMAP connector, the
store, the evaluation, and the JSON report of the command line, with `--now`.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from daemon.cli import main
from tests.conftest import start_dovecot
from tests.support.dovecot import DovecotServer
from tests.support.scenarios import Scenario, load_scenario, scenario_paths

pytestmark = pytest.mark.dovecot

SCENARIOS = [load_scenario(path) for path in scenario_paths()]
IMAP_FOLDERS = {"inbox": "INBOX", "sent": "Sent", "drafts": "Drafts"}
PASSWORD_ENV = "RELIGHT_TEST_SCENARIO_PASSWORD"


def _user(scenario: Scenario, account: str) -> str:
    return f"{scenario.name}-{account}"


@pytest.fixture(scope="module")
def server() -> Iterator[DovecotServer]:
    """One Dovecot with a user per (scenario, account), each filled with its mail."""
    users = {
        _user(scenario, account): "scenario-secret"
        for scenario in SCENARIOS
        for account in scenario.accounts
    }
    dovecot = start_dovecot(users=users)
    try:
        for scenario in SCENARIOS:
            for account in scenario.accounts:
                with dovecot.client(_user(scenario, account)) as client:
                    for folder, raw, arrival in scenario.as_appends(account):
                        client.append(IMAP_FOLDERS[folder], raw, flags=(), msg_time=arrival)
        yield dovecot
    finally:
        dovecot.stop()


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda scenario: scenario.name)
def test_scenario_through_dovecot_and_the_command_line(
    scenario: Scenario,
    server: DovecotServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """sync then report --format json --now gives each prospect its expected status."""
    monkeypatch.setenv(PASSWORD_ENV, "scenario-secret")
    monkeypatch.delenv("RELIGHT_CONFIG", raising=False)
    config = tmp_path / "relight.toml"
    config.write_text(_config_toml(scenario, server, tmp_path))

    assert main(["--config", str(config), "sync"]) == 0, capsys.readouterr().err
    capsys.readouterr()
    now = scenario.now.isoformat()
    assert main(["report", "--config", str(config), "--format", "json", "--now", now]) == 0
    rows = {(row["account"], row["prospect"]): row for row in json.loads(capsys.readouterr().out)}

    expected = {(e.account, e.prospect): e for e in scenario.expected}
    assert set(rows) == set(expected)
    for key, expectation in expected.items():
        row = rows[key]
        assert row["status"] == expectation.status, row["reason"]
        assert row["followups_sent"] == expectation.followups_sent, row["reason"]
        assert row["next_stage"] == expectation.next_stage, row["reason"]
        assert expectation.reason in row["reason"]
        if expectation.checks_next_action:
            due = row["next_action_at"]
            want = expectation.next_action_at
            assert (None if due is None else datetime.fromisoformat(due)) == want


def _config_toml(scenario: Scenario, server: DovecotServer, tmp_path: Path) -> str:
    """The scenario's [rules] and accounts as a Relight config for this server."""
    data = tomllib.loads(scenario.path.read_text(encoding="utf-8"))
    rules = dict(data.get("rules", {}))
    timezone = rules.pop("timezone", "Europe/Berlin")
    stages = rules.pop("stages", None)
    lines = [
        "[daemon]",
        f'state_dir = "{tmp_path}/state"',
        f"timezone = {_value(timezone)}",
        "",
        "[rules]",
    ]
    lines += [f"{key} = {_value(value)}" for key, value in rules.items()]
    for stage in stages or ():
        lines += ["", "[[rules.stages]]"]
        lines += [f"{key} = {_value(value)}" for key, value in stage.items()]
    for view in scenario.team.accounts:
        lines += [
            "",
            "[[accounts]]",
            f"name = {_value(view.name)}",
            'kind = "imap"',
            f"rep_name = {_value(view.rep_name or view.name)}",
            f"addresses = {_value(sorted(view.addresses))}",
            'host = "127.0.0.1"',
            f"port = {server.port}",
            'security = "none"',
            f"username = {_value(_user(scenario, view.name))}",
            f'password_env = "{PASSWORD_ENV}"',
        ]
    return "\n".join(lines) + "\n"


def _value(value: object) -> str:  # noqa: PLR0911 - one return per TOML type
    """A TOML literal for the plain values scenario files hold."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_value(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"no TOML for {value!r}")
