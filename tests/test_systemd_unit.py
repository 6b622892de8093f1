"""systemd/relight.service: the settings the daemon and the deployment guide rely on.

systemd's own checks (`systemd-analyze verify`, `security --offline`) run where the
binary exists, on a copy whose ExecStart= names this checkout's `relight`: verify refuses
a unit whose binary is missing, and /opt/relight is not installed on a developer machine.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parent.parent / "systemd" / "relight.service"
INSTALLED_RELIGHT = "/opt/relight/bin/relight"

Unit = dict[str, dict[str, list[str]]]


def parse_unit(text: str) -> Unit:
    """Sections of key -> every value assigned, in order (systemd allows repeated keys).

    Comments are lines starting with '#' or ';'; a trailing backslash continues a line.
    """
    unit: Unit = {}
    section: dict[str, list[str]] | None = None
    pending = ""
    for raw in text.splitlines():
        line = pending + raw.strip()
        pending = ""
        if line.endswith("\\"):
            pending = line[:-1].rstrip() + " "
            continue
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            section = unit.setdefault(line[1:-1], {})
            continue
        key, equals, value = line.partition("=")
        if section is None or not equals or not re.fullmatch(r"[A-Za-z0-9]+", key.strip()):
            raise ValueError(f"not a unit file line: {raw!r}")
        section.setdefault(key.strip(), []).append(value.strip())
    return unit


@pytest.fixture(scope="module")
def service() -> dict[str, list[str]]:
    unit = parse_unit(UNIT.read_text(encoding="utf-8"))
    assert set(unit) == {"Unit", "Service", "Install"}
    return unit["Service"]


def _value(service: dict[str, list[str]], key: str) -> str:
    """The effective value of a key assigned once (the last assignment wins)."""
    assert key in service, f"{key}= missing"
    return service[key][-1]


def test_parser_reads_repeated_keys_and_continuations() -> None:
    """The test's own parser keeps every assignment and joins continued lines."""
    unit = parse_unit("[Service]\n# c\nA=1\nA=2\nB=x \\\n  y\n")
    assert unit == {"Service": {"A": ["1", "2"], "B": ["x y"]}}


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("Type", "notify"),
        ("Restart", "on-failure"),
        ("RestartPreventExitStatus", "2"),
        ("StateDirectory", "relight"),
        ("ConfigurationDirectory", "relight"),
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("CapabilityBoundingSet", ""),
        ("UMask", "0077"),
        ("ExecReload", "/bin/kill -HUP $MAINPID"),
        ("RestrictAddressFamilies", "AF_UNIX AF_INET AF_INET6"),
        ("MemoryDenyWriteExecute", "yes"),
        ("SystemCallArchitectures", "native"),
    ],
)
def test_required_setting(service: dict[str, list[str]], key: str, expected: str) -> None:
    """Each setting the daemon or the hardening relies on has its value."""
    assert _value(service, key) == expected


def test_runs_as_an_unprivileged_user(service: dict[str, list[str]]) -> None:
    """DynamicUser=yes, or a named User= other than root."""
    dynamic = service.get("DynamicUser", ["no"])[-1] == "yes"
    user = service.get("User", ["root"])[-1]
    assert dynamic or user not in ("root", "0")


def test_watchdog_leaves_room_for_the_ping_interval(service: dict[str, list[str]]) -> None:
    """WatchdogSec= is set in seconds and long enough for a ping every half of it."""
    match = re.fullmatch(r"(\d+)s", _value(service, "WatchdogSec"))
    assert match, "write WatchdogSec= in seconds, e.g. 120s"
    assert int(match.group(1)) >= 30


def test_exec_start_runs_the_daemon_from_the_documented_venv(
    service: dict[str, list[str]],
) -> None:
    """ExecStart= is `relight run` from /opt/relight, as systemd/README.md installs it."""
    assert _value(service, "ExecStart") == f"{INSTALLED_RELIGHT} run"
    assert "RELIGHT_CONFIG=/etc/relight/config.toml" in service["Environment"]


def test_system_call_filter_is_an_allow_list(service: dict[str, list[str]]) -> None:
    """The first SystemCallFilter= allows @system-service; later ones only take away."""
    filters = service["SystemCallFilter"]
    assert filters[0] == "@system-service"
    assert all(extra.startswith("~") for extra in filters[1:])


def test_credential_example_matches_the_config_example() -> None:
    """The unit's name and its LoadCredential= example give the path config.example.toml
    tells `password_file` to read."""
    text = UNIT.read_text(encoding="utf-8")
    credential_ids = re.findall(r"^#?LoadCredential=([^:\s]+):/", text, re.MULTILINE)
    assert "dana" in credential_ids
    config = (UNIT.parent.parent / "config.example.toml").read_text(encoding="utf-8")
    assert f'password_file = "/run/credentials/{UNIT.name}/dana"' in config


def _relight_binary() -> Path:
    """This environment's `relight` console script (the venv running the tests)."""
    binary = Path(sys.executable).parent / "relight"
    if not binary.exists():
        pytest.skip(f"no relight console script next to {sys.executable}")
    return binary


@pytest.fixture
def unit_copy(tmp_path: Path) -> Path:
    """The unit with ExecStart= pointing to a binary that exists here."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    text = UNIT.read_text(encoding="utf-8")
    assert f"ExecStart={INSTALLED_RELIGHT} " in text
    copy = tmp_path / "relight.service"
    copy.write_text(text.replace(INSTALLED_RELIGHT, str(_relight_binary())), encoding="utf-8")
    return copy


def test_systemd_analyze_verify(unit_copy: Path) -> None:
    """`systemd-analyze verify` accepts the unit without a warning about it."""
    result = subprocess.run(
        ["systemd-analyze", "verify", str(unit_copy)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # verify exits 0 on unknown keys and bad values; it only warns, naming the file.
    complaints = [
        line
        for line in result.stderr.splitlines()
        if str(unit_copy) in line or "relight.service" in line
    ]
    assert result.returncode == 0, result.stderr
    assert complaints == []


def test_systemd_analyze_security_exposure(unit_copy: Path) -> None:
    """`systemd-analyze security --offline` rates the sandbox at 2.0 or better (of 10)."""
    result = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", "--threshold=20", str(unit_copy)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if "--offline" in result.stderr and "unrecognized" in result.stderr:
        pytest.skip("this systemd-analyze has no --offline (systemd < 250)")
    overall = [line for line in result.stdout.splitlines() if "Overall exposure" in line]
    assert result.returncode == 0, "\n".join(overall) or result.stderr
