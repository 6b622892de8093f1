"""The playbook templates a config asks for, read from disk and checked (SPEC 5, 6).

`load_playbooks(config)` reads one `<playbook>.txt.j2` per playbook: every shipped one
(`rules/templates/`) and every one a `[[rules.stages]]` table names. A file of the same
name in `drafts.templates_dir` replaces the shipped one, and may supply a playbook
Relight does not ship; other files there are ignored. The text goes to
`rules.drafts.Playbooks`, which compiles each template and renders it with sample values,
so a broken template is a `ConfigError` here, never a failure at draft time:

* a missing or unreadable `drafts.templates_dir`, or an unreadable or non-UTF-8 file in
  it, names `drafts.templates_dir` and the file;
* a template that does not compile or render names `drafts.templates_dir`, the file, the
  line and the problem (a broken shipped template says so: the installation is broken);
* a stage whose playbook has no template names `rules.stages[N].playbook`, the file it
  expected and where it looked; with `rules.draft_cold`, a missing `cold_bump` names
  `rules.draft_cold`.

`load_config` does not call this: importing Jinja2 and compiling the templates costs
about 25 ms, which commands that never draft (`report`, `explain`) should not pay.
`check-config` and the commands that draft call it once, after `load_config`.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from daemon.config import Config
from daemon.config_schema import ConfigError
from rules.drafts import (
    COLD_PLAYBOOK,
    SHIPPED_PLAYBOOKS,
    SHIPPED_TEMPLATES_DIR,
    TEMPLATE_SUFFIX,
    Playbooks,
    TemplateError,
    template_file_name,
)

__all__ = ["load_playbooks"]

_DIR_KEY = "drafts.templates_dir"
_REINSTALL = "the installation is broken: reinstall Relight"


@dataclass(frozen=True, slots=True)
class _Origin:
    """Where a playbook's template was read from; `shipped` when not from templates_dir."""

    path: Path
    shipped: bool


def load_playbooks(config: Config) -> Playbooks:
    """The compiled templates of every shipped playbook and every stage's playbook,
    `drafts.templates_dir` overriding; a `ConfigError` naming the key when one is
    unreadable, broken or missing."""
    directory = config.drafts.templates_dir
    overrides = _template_files(directory, config) if directory is not None else {}
    wanted = dict.fromkeys((*SHIPPED_PLAYBOOKS, *(stage.playbook for stage in config.rules.stages)))
    sources: dict[str, str] = {}
    origins: dict[str, _Origin] = {}
    for playbook in wanted:
        file_name = template_file_name(playbook)
        if file_name in overrides:
            origin = _Origin(overrides[file_name], shipped=False)
        elif playbook in SHIPPED_PLAYBOOKS:
            origin = _Origin(SHIPPED_TEMPLATES_DIR / file_name, shipped=True)
        else:
            continue
        text = _read(origin, config)
        if text is not None:
            sources[playbook] = text
            origins[playbook] = origin
    _check_present(config, sources, overrides)
    try:
        return Playbooks(sources)
    except TemplateError as exc:
        raise _broken(exc, origins, config) from exc


def _template_files(directory: Path, config: Config) -> dict[str, Path]:
    """The `*.txt.j2` entries of `drafts.templates_dir`, by file name."""
    try:
        with os.scandir(directory) as entries:
            return {
                entry.name: Path(entry.path)
                for entry in entries
                if entry.name.endswith(TEMPLATE_SUFFIX)
            }
    except FileNotFoundError:
        problem = f"no such directory: {directory}"
    except NotADirectoryError:
        problem = f"not a directory: {directory}"
    except PermissionError:
        problem = f"not readable (permission denied): {directory}"
    except OSError as exc:
        problem = f"cannot read {directory}: {exc.strerror}"
    raise ConfigError(problem, key=_DIR_KEY, path=config.path)


def _read(origin: _Origin, config: Config) -> str | None:
    """The template's text; None for a shipped one that is not there (a stage that needs
    it is reported by `_check_present`, naming the stage)."""
    path = origin.path
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        if origin.shipped:
            return None
        problem = f"no such file (a dangling link?): {path}"
    except IsADirectoryError:
        problem = f"is a directory, not a template: {path}"
    except PermissionError:
        problem = f"not readable (permission denied): {path}"
    except OSError as exc:
        problem = f"cannot read {path}: {exc.strerror}"
    else:
        try:
            # utf-8-sig: a byte order mark (Windows editors write one) is not the draft's text.
            return raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line = raw.count(b"\n", 0, exc.start) + 1
            problem = f"{path}, line {line}: not UTF-8 text (save the file as UTF-8)"
    raise _unusable(problem, origin, config)


def _check_present(config: Config, sources: dict[str, str], overrides: Iterable[str]) -> None:
    """Every stage's playbook, and `cold_bump` when cold prospects are drafted, has a template."""
    for i, stage in enumerate(config.rules.stages):
        if stage.playbook not in sources:
            problem = _not_found(stage.playbook, config, sources, overrides)
            raise ConfigError(problem, key=f"rules.stages[{i}].playbook", path=config.path)
    if config.rules.draft_cold and COLD_PLAYBOOK not in sources:
        problem = _not_found(COLD_PLAYBOOK, config, sources, overrides)
        problem = f"cold prospects are drafted with the {COLD_PLAYBOOK!r} playbook, but {problem}"
        raise ConfigError(problem, key="rules.draft_cold", path=config.path)


def _not_found(
    playbook: str, config: Config, sources: dict[str, str], overrides: Iterable[str]
) -> str:
    """Why `playbook` has no template: the file expected and the places looked in."""
    file_name = template_file_name(playbook)
    if playbook in SHIPPED_PLAYBOOKS:
        path = SHIPPED_TEMPLATES_DIR / file_name
        return f"the shipped template {path} is missing ({_REINSTALL}, or override it)"
    known = {*sources, *(name.removesuffix(TEMPLATE_SUFFIX) for name in overrides)}
    close = difflib.get_close_matches(playbook, sorted(known), n=1)
    missing = f"no template for playbook {playbook!r}"
    missing += f" (did you mean {close[0]!r}?)" if close else ""
    shipped = f"the shipped templates, {SHIPPED_TEMPLATES_DIR}"
    directory = config.drafts.templates_dir
    if directory is None:
        return (
            f"{missing}: looked for {file_name} in {shipped}; "
            "put it in a directory and set drafts.templates_dir"
        )
    return (
        f"{missing}: looked for {file_name} in {directory} (drafts.templates_dir) and in {shipped}"
    )


def _broken(exc: TemplateError, origins: dict[str, _Origin], config: Config) -> ConfigError:
    """A `TemplateError` as a `ConfigError` naming the template's file and line."""
    unknown = _Origin(Path(template_file_name(exc.playbook)), shipped=False)
    origin = origins.get(exc.playbook, unknown)
    where = str(origin.path) if exc.line is None else f"{origin.path}, line {exc.line}"
    shipped = "the shipped template " if origin.shipped else ""
    return _unusable(f"{shipped}{where}: {exc.problem}", origin, config)


def _unusable(problem: str, origin: _Origin, config: Config) -> ConfigError:
    """The error about a template file: in templates_dir, or a shipped one (no key)."""
    if origin.shipped:
        return ConfigError(f"{problem} ({_REINSTALL})")
    return ConfigError(problem, key=_DIR_KEY, path=config.path)
