"""Playbook templates read for a config: shipped ones, overrides, and errors that name the key."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from daemon import playbooks as playbooks_module
from daemon.cli import main
from daemon.config import Config, ConfigError, load_config
from daemon.playbooks import load_playbooks
from rules.drafts import (
    COLD_PLAYBOOK,
    SHIPPED_PLAYBOOKS,
    SHIPPED_TEMPLATES_DIR,
    TEMPLATE_VARIABLES,
    template_file_name,
)

EXAMPLE = Path(__file__).resolve().parent.parent / "config.example.toml"
EXAMPLE_ENV = {
    "RELIGHT_DANA_PASSWORD": "dana-pw",
    "RELIGHT_GRAPH_SECRET": "graph-secret",
    "RELIGHT_KIM_PASSWORD": "kim-pw",
}
ACCOUNT = """
[[accounts]]
name = "me"
kind = "maildir"
rep_name = "Dana Reyes"
addresses = ["dana@acmesoft.example"]
path = "mail"
"""
SAMPLE = {
    "first_name": "Anna",
    "full_name": "Anna Schmidt",
    "prospect_address": "anna@example.com",
    "company": "example.com",
    "rep_name": "Dana Reyes",
    "signature": "Dana",
    "subject": "Pricing",
    "days_since_contact": 6,
    "last_reply_date": None,
    "commitment": None,
    "stage": 4,
    "followups_sent": 3,
}


def shipped(playbook: str) -> str:
    return (SHIPPED_TEMPLATES_DIR / template_file_name(playbook)).read_text(encoding="utf-8")


def config_file(
    tmp_path: Path,
    *,
    templates: dict[str, str | bytes] | None = None,
    stages: tuple[str, ...] = (),
    draft_cold: bool = False,
) -> Path:
    """A config file in tmp_path; `templates` (file name -> content) go to templates_dir."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    text = f"[rules]\ndraft_cold = {'true' if draft_cold else 'false'}\n"
    if templates is not None:
        directory = tmp_path / "templates"
        directory.mkdir()
        for name, content in templates.items():
            path = directory / name
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content, encoding="utf-8")
        text += '[drafts]\ntemplates_dir = "templates"\n'
    for i, playbook in enumerate(stages):
        text += f'[[rules.stages]]\nafter_business_days = {3 + i}\nplaybook = "{playbook}"\n'
    path = tmp_path / "config.toml"
    path.write_text(text + ACCOUNT, encoding="utf-8")
    return path


def config_in(
    tmp_path: Path,
    *,
    templates: dict[str, str | bytes] | None = None,
    stages: tuple[str, ...] = (),
    draft_cold: bool = False,
) -> Config:
    path = config_file(tmp_path, templates=templates, stages=stages, draft_cold=draft_cold)
    return load_config(path, {})


def test_shipped_templates_load() -> None:
    """Without templates_dir every shipped playbook loads, from its file in rules/templates."""
    playbooks = load_playbooks(Config(accounts=()))
    assert playbooks.names == frozenset(SHIPPED_PLAYBOOKS)
    for playbook in SHIPPED_PLAYBOOKS:
        assert playbooks.sources[playbook] == shipped(playbook)


def test_example_config_playbooks_load() -> None:
    """config.example.toml's stages all have a template."""
    playbooks = load_playbooks(load_config(EXAMPLE, EXAMPLE_ENV))
    assert playbooks.names == frozenset(SHIPPED_PLAYBOOKS)


def test_example_documents_every_template_variable() -> None:
    """config.example.toml names each variable a template gets, and the file name pattern."""
    text = EXAMPLE.read_text(encoding="utf-8")
    comments = "\n".join(line for line in text.splitlines() if line.startswith("#"))
    missing = [name for name in TEMPLATE_VARIABLES if not re.search(rf"\b{name}\b", comments)]
    assert not missing, f"not documented in config.example.toml: {missing}"
    assert "<playbook>.txt.j2" in comments


def test_override_replaces_one_playbook(tmp_path: Path) -> None:
    """A file in templates_dir replaces the shipped template of that name and no other."""
    override = "Closing the file, {{ first_name }}?\n{{ signature }}\n"
    playbooks = load_playbooks(config_in(tmp_path, templates={"closure.txt.j2": override}))
    assert playbooks.render("closure", SAMPLE) == "Closing the file, Anna?\nDana\n"
    for playbook in SHIPPED_PLAYBOOKS:
        if playbook != "closure":
            assert playbooks.sources[playbook] == shipped(playbook)


def test_override_supplies_a_new_stage_playbook(tmp_path: Path) -> None:
    """A stage may name a playbook Relight does not ship when templates_dir holds its file."""
    config = config_in(
        tmp_path,
        templates={"breakup.txt.j2": "Last one, {{ first_name }}.\n"},
        stages=("release_pressure", "breakup"),
    )
    playbooks = load_playbooks(config)
    assert playbooks.render("breakup", SAMPLE) == "Last one, Anna.\n"
    assert playbooks.names == frozenset({*SHIPPED_PLAYBOOKS, "breakup"})


def test_files_no_stage_names_are_ignored(tmp_path: Path) -> None:
    """A template that no stage uses and Relight does not ship is neither read nor compiled."""
    config = config_in(tmp_path, templates={"draft_idea.txt.j2": "{% if %}", "notes.txt": "x"})
    assert load_playbooks(config).names == frozenset(SHIPPED_PLAYBOOKS)


def test_a_byte_order_mark_is_not_text(tmp_path: Path) -> None:
    """A UTF-8 byte order mark (Windows editors) does not end up in the draft."""
    config = config_in(tmp_path, templates={"apology.txt.j2": b"\xef\xbb\xbfSorry.\n"})
    assert load_playbooks(config).render("apology", SAMPLE) == "Sorry.\n"


@pytest.mark.parametrize(
    ("template", "line", "problem"),
    [
        ("Hi {{ first_name }},\n\nSee you{% if stage %}\n", 3, "Unexpected end of template"),
        ("Hi,\n\n{{ frist_name }}\n{{ signature }}\n", 3, "'frist_name' is undefined"),
        ("Hi,\n{{ signature }\n", 2, "unexpected '}'"),
    ],
)
def test_broken_override_names_templates_dir_file_and_line(
    tmp_path: Path, template: str, line: int, problem: str
) -> None:
    """A template that does not compile or render is a ConfigError on drafts.templates_dir
    naming the config file, the template file, the line and the problem."""
    path = config_file(tmp_path, templates={"accountability.txt.j2": template})
    with pytest.raises(ConfigError) as caught:
        load_playbooks(load_config(path, {}))
    assert caught.value.key == "drafts.templates_dir"
    assert caught.value.path == path
    template_path = tmp_path / "templates" / "accountability.txt.j2"
    assert f"{template_path}, line {line}: " in caught.value.message
    assert problem in caught.value.message


def test_non_utf8_template_is_a_config_error(tmp_path: Path) -> None:
    """A template that is not UTF-8 names drafts.templates_dir, the file and the line."""
    config = config_in(tmp_path, templates={"closure.txt.j2": b"Hi,\nGr\xfc\xdfe\n"})
    with pytest.raises(ConfigError, match=r"drafts\.templates_dir: .*closure\.txt\.j2, line 2: "):
        load_playbooks(config)


def test_template_that_is_a_directory(tmp_path: Path) -> None:
    """A directory named like a template is reported, not a traceback."""
    config = config_in(tmp_path, templates={})
    (tmp_path / "templates" / "apology.txt.j2").mkdir()
    with pytest.raises(ConfigError, match=r"drafts\.templates_dir: is a directory"):
        load_playbooks(config)


def test_missing_templates_dir(tmp_path: Path) -> None:
    """A templates_dir gone since the config was read (a reload) names drafts.templates_dir."""
    config = config_in(tmp_path, templates={})
    (tmp_path / "templates").rmdir()
    with pytest.raises(ConfigError, match=r"drafts\.templates_dir: no such directory: "):
        load_playbooks(config)


def test_stage_without_template_names_the_stage(tmp_path: Path) -> None:
    """A stage whose playbook has no template names rules.stages[N].playbook, the file
    expected, both places looked in, and a close match."""
    path = config_file(
        tmp_path,
        templates={"break_up.txt.j2": "Bye.\n"},
        stages=("release_pressure", "accountability", "breakup"),
    )
    with pytest.raises(ConfigError) as caught:
        load_playbooks(load_config(path, {}))
    assert caught.value.key == "rules.stages[2].playbook"
    assert caught.value.path == path
    message = caught.value.message
    assert "breakup.txt.j2" in message
    assert str(tmp_path / "templates") in message
    assert str(SHIPPED_TEMPLATES_DIR) in message
    assert "did you mean 'break_up'?" in message


def test_stage_without_template_and_no_templates_dir(tmp_path: Path) -> None:
    """Without templates_dir, the error says where Relight looked and what to set."""
    config = config_in(tmp_path, stages=("breakup",))
    with pytest.raises(ConfigError) as caught:
        load_playbooks(config)
    assert caught.value.key == "rules.stages[0].playbook"
    assert str(SHIPPED_TEMPLATES_DIR) in caught.value.message
    assert "set drafts.templates_dir" in caught.value.message


@pytest.fixture
def shipped_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the shipped templates standing in for rules/templates (a damaged install)."""
    copy = tmp_path / "installed"
    shutil.copytree(SHIPPED_TEMPLATES_DIR, copy)
    monkeypatch.setattr(playbooks_module, "SHIPPED_TEMPLATES_DIR", copy)
    return copy


def test_cold_playbook_needed_only_with_draft_cold(tmp_path: Path, shipped_copy: Path) -> None:
    """Without cold_bump, draft_cold = true is an error on rules.draft_cold; false is fine."""
    (shipped_copy / template_file_name(COLD_PLAYBOOK)).unlink()
    assert COLD_PLAYBOOK not in load_playbooks(config_in(tmp_path / "warm", draft_cold=False))
    cold = config_in(tmp_path / "cold", draft_cold=True)
    with pytest.raises(ConfigError) as caught:
        load_playbooks(cold)
    assert caught.value.key == "rules.draft_cold"
    assert str(shipped_copy / "cold_bump.txt.j2") in caught.value.message


def test_cold_playbook_may_come_from_templates_dir(tmp_path: Path, shipped_copy: Path) -> None:
    """draft_cold is satisfied by a cold_bump.txt.j2 in templates_dir."""
    (shipped_copy / template_file_name(COLD_PLAYBOOK)).unlink()
    config = config_in(tmp_path, templates={"cold_bump.txt.j2": "Still there?\n"}, draft_cold=True)
    assert load_playbooks(config).render(COLD_PLAYBOOK, SAMPLE) == "Still there?\n"


def test_broken_shipped_template_says_so(tmp_path: Path, shipped_copy: Path) -> None:
    """A broken shipped template is reported as a broken installation, with file and line."""
    (shipped_copy / "apology.txt.j2").write_text("Hi\n{% endif %}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_playbooks(config_in(tmp_path))
    message = str(caught.value)
    assert message.startswith(f"the shipped template {shipped_copy / 'apology.txt.j2'}, line 2:")
    assert "reinstall" in message


def test_check_config_reports_a_broken_override(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """relight check-config exits 2 and prints the key, the template file and the line."""
    path = config_file(tmp_path, templates={"closure.txt.j2": "Hi,\n\n{{ sigature }}\n"})
    assert main(["check-config", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    template = tmp_path / "templates" / "closure.txt.j2"
    assert f"{path}: drafts.templates_dir: {template}, line 3: 'sigature' is undefined" in err


def test_check_config_accepts_a_good_override(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """relight check-config exits 0 when the overrides compile."""
    path = config_file(tmp_path, templates={"closure.txt.j2": "Hi,\n{{ signature }}\n"})
    assert main(["check-config", "--config", str(path)]) == 0
    assert "ok" in capsys.readouterr().out
