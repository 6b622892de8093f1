"""How fast Relight evaluates a team's synced mailboxes: `relight report` after a sync.

    python -m bench.eval_bench [--messages 100000] [--prospects 10000] [--keep] [--profile]

One run, no network:

1. load (not measured): the synthetic team mailbox of `bench.team_mailbox` (four reps,
   N messages, P prospects) put into a fresh SQLite store through the public `Store` API,
   as a sync would: `ensure_account`, `sync_folders` (INBOX, Sent, Drafts) and
   `apply_fetched` in batches of 1,000;
2. the command line: `relight report --format json --now ...` and `--format table` as
   child processes (wall time, the child's peak RSS; best of `--runs`), beside
   `relight check-config`, which pays the same start-up (interpreter, imports, config)
   and evaluates nothing. The configuration is generated: the four accounts as
   kind = "imap" on 127.0.0.1 with `password_env`; `report` never connects;
3. in-process, each phase timed (best of `--runs`): opening the store, reading the rows
   (`daemon.evaluation.stored_messages` for each account, into lists), classification
   (`rules.prospects.classify_account`), the fold and the decisions
   (`rules.status.evaluate` on the classified list), and formatting (JSON, table); then
   the whole in-process evaluation as `relight report` runs it (`evaluate_team` and the
   JSON formatting). With `--profile`, cProfile of that whole evaluation.

It prints the status counts and a table, and appends one JSON line to
`bench/results/eval_bench.jsonl`. Everything lives in a temporary directory, removed at
the end unless `--keep`.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import shutil
import sqlite3
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import sqlalchemy

from bench.sync_bench import (
    PASSWORD_ENV,
    ChildRun,
    busy_note,
    log,
    relight_command,
    run_child,
    save_result,
)
from bench.sync_bench import machine as sync_machine
from bench.team_mailbox import FOLDERS, TeamMailbox, team_mailbox
from daemon.config import Config, load_config
from daemon.evaluation import (
    evaluate_team,
    policy_from_config,
    stored_messages,
    team_from_config,
    team_verdicts,
)
from daemon.report import format_statuses
from daemon.store import Store
from rules.elapsed import ElapsedBusinessDays
from rules.message import Message
from rules.prospects import ClassifiedMessage, classify_account
from rules.status import ProspectStatus, Verdict, evaluate

RESULTS = Path(__file__).resolve().parent / "results"
BATCH = 1000  # messages per apply_fetched, as the IMAP connector's batches
TARGET_SECONDS = 1.0  # `relight report` after sync (the target)
TARGET_RSS_MIB = 500.0  # "well under" this
PROFILE_LINES = 15

_T = TypeVar("_T")


# -- load: the mailbox into a store ----------------------------------------------------------


def load(mailbox: TeamMailbox, database: Path) -> dict[str, int]:
    """Store every message through the public Store API; the stored rows per account."""
    with Store.open(f"sqlite:///{database}") as store:
        for rep in mailbox.reps:
            account_id = store.ensure_account(rep.account, "imap")
            for folder in store.sync_folders(account_id, FOLDERS):
                for batch in mailbox.batches(rep.account, folder.name, BATCH):
                    store.apply_fetched(folder, batch)
        return {rep.account: store.message_count(rep.account) for rep in mailbox.reps}


def write_config(directory: Path, database: Path, mailbox: TeamMailbox) -> Path:
    accounts = "".join(
        f"""
[[accounts]]
name = "{rep.account}"
kind = "imap"
rep_name = "{rep.name}"
addresses = ["{rep.address}"]
host = "127.0.0.1"
port = 1143
security = "none"
username = "{rep.account}"
password_env = "{PASSWORD_ENV}"
"""
        for rep in mailbox.reps
    )
    path = directory / "relight.toml"
    path.write_text(
        f"""[daemon]
state_dir = "{directory / "state"}"
database = "sqlite:///{database}"
log_format = "json"

[rules]
do_not_contact = {json.dumps(list(mailbox.do_not_contact))}
{accounts}"""
    )
    return path


# -- the command line ------------------------------------------------------------------------


def best_child(
    argv: list[str], log: Path, runs: int, before: Callable[[], None] | None = None
) -> ChildRun:
    """The fastest of `runs` runs of `argv` (each after `before`, when given), with the
    highest peak RSS seen; a failed run is returned at once."""
    results = []
    for _ in range(runs):
        if before is not None:
            before()
        run = run_child(argv, log)
        if run.exit_code != 0:
            return run
        results.append(run)
    fastest = min(results, key=lambda run: run.seconds)
    peak = max(run.peak_rss_mib for run in results)
    return ChildRun(fastest.seconds, peak, 0, fastest.stderr_tail)


def report_rows(config: Path, now: str) -> int:
    """How many rows `relight report --format json` prints (a check, not timed)."""
    env = {key: value for key, value in os.environ.items() if key != "RELIGHT_CONFIG"}
    env[PASSWORD_ENV] = "unused"
    shown = subprocess.run(
        [*relight_command(), "report", "--config", str(config), "--format=json", f"--now={now}"],
        capture_output=True, text=True, env=env, check=False, timeout=600,
    )  # fmt: skip
    if shown.returncode != 0:
        raise RuntimeError(f"relight report exited {shown.returncode}: {shown.stderr[-500:]}")
    return len(json.loads(shown.stdout))


# -- in-process phases -----------------------------------------------------------------------


def best_of(runs: int, work: Callable[[], _T]) -> tuple[float, _T]:
    """The shortest wall time of `runs` calls of `work`, and the last call's result."""
    best, result = float("inf"), None
    for _ in range(runs):
        started = time.perf_counter()
        result = work()
        best = min(best, time.perf_counter() - started)
    assert result is not None
    return best, result


def forget_verdicts(database: Path) -> None:
    """Drop the kept evaluation, as a changed mailbox, config or release makes it stale."""
    with sqlite3.connect(database) as connection:
        connection.execute("DELETE FROM evaluations")


@dataclass
class Phases:
    store_open_s: float = 0.0
    evaluate_keep_s: float = 0.0  # team_verdicts with nothing kept: what a sync ends with
    load_kept_s: float = 0.0  # team_verdicts reading the kept verdicts
    clock_s: float = 0.0  # Verdict.at for every verdict
    read_s: float = 0.0
    classify_s: float = 0.0
    evaluate_s: float = 0.0
    format_json_s: float = 0.0
    format_table_s: float = 0.0
    whole_s: float = 0.0  # evaluate_team + JSON, as `relight report` runs them (kept)
    rows_read: int = 0
    statuses: dict[str, int] = field(default_factory=dict)


def in_process(config: Config, now: datetime, runs: int) -> tuple[Phases, list[ProspectStatus]]:
    team, policy = team_from_config(config), policy_from_config(config)
    zone = ZoneInfo(config.daemon.timezone)
    url = config.daemon.database
    phases = Phases()
    phases.store_open_s, store = best_of(runs, lambda: Store.open(url))
    database = Path(url.removeprefix("sqlite:///"))
    with store:

        def evaluate_and_keep() -> list[Verdict]:
            forget_verdicts(database)
            return team_verdicts(store, config)

        phases.evaluate_keep_s, kept = best_of(runs, evaluate_and_keep)
        phases.load_kept_s, kept = best_of(runs, partial(team_verdicts, store, config))
        clock = ElapsedBusinessDays(policy.calendar, now)
        phases.clock_s, _ = best_of(runs, partial(_statuses_at, kept, clock))
        del kept

        def read() -> dict[str, list[Message]]:
            return {view.name: list(stored_messages(store, view.name)) for view in team.accounts}

        def classify(rows: dict[str, list[Message]]) -> list[ClassifiedMessage]:
            classified: list[ClassifiedMessage] = []
            for view in team.accounts:
                classified += classify_account(view, rows[view.name])
            return classified

        phases.read_s, rows = best_of(runs, read)
        phases.rows_read = sum(len(messages) for messages in rows.values())
        phases.classify_s, classified = best_of(runs, partial(classify, rows))
        phases.evaluate_s, statuses = best_of(
            runs, partial(evaluate, classified, team, policy, now)
        )
        phases.format_json_s, _ = best_of(
            runs, partial(format_statuses, statuses, "json", timezone=zone)
        )
        phases.format_table_s, _ = best_of(
            runs, partial(format_statuses, statuses, "table", timezone=zone)
        )
        del rows, classified

        def whole() -> str:
            return format_statuses(evaluate_team(store, config, now), "json", timezone=zone)

        phases.whole_s, _ = best_of(runs, whole)
    phases.statuses = dict(Counter(str(status.status) for status in statuses).most_common())
    return phases, statuses


def _statuses_at(kept: list[Verdict], clock: ElapsedBusinessDays) -> list[ProspectStatus]:
    return [verdict.at(clock) for verdict in kept]


def profile(config: Config, now: datetime, path: Path) -> None:
    zone = ZoneInfo(config.daemon.timezone)
    with Store.open(config.daemon.database) as store:
        profiler = cProfile.Profile()
        profiler.enable()
        format_statuses(evaluate_team(store, config, now), "json", timezone=zone)
        profiler.disable()
    profiler.dump_stats(path)


def print_profile(path: Path, what: str, limit: int = PROFILE_LINES) -> None:
    for order in ("tottime", "cumulative"):
        out = io.StringIO()
        pstats.Stats(str(path), stream=out).sort_stats(order).print_stats(limit)
        print(f"\n-- cProfile of {what}, by {order} --")
        print(out.getvalue().split("\n\n", 1)[-1].rstrip())


# -- the run ---------------------------------------------------------------------------------


@dataclass
class Result:
    date: str
    messages: int
    prospects: int
    seed: int
    now: str
    machine: dict[str, str]
    folders: dict[str, int]
    stored: dict[str, int]
    database_mib: float
    generate_s: float
    load_s: float
    scenarios: dict[str, int]
    rows: int = 0
    cli: dict[str, Any] = field(default_factory=dict)
    phases: dict[str, Any] = field(default_factory=dict)
    profile: str | None = None
    notes: list[str] = field(default_factory=list)


def machine() -> dict[str, str]:
    """The sync benchmark's machine facts plus the store's versions."""
    return {
        **sync_machine(),
        "sqlite": sqlite3.sqlite_version,
        "sqlalchemy": sqlalchemy.__version__,
    }


def measure(args: argparse.Namespace, work: Path) -> Result:
    busy = busy_note()
    log(f"generating {args.messages} messages, {args.prospects} prospects")
    started = time.perf_counter()
    mailbox = team_mailbox(args.messages, args.prospects, seed=args.seed)
    generate_s = time.perf_counter() - started
    database = work / "relight.db"
    log("loading them into the store (apply_fetched)")
    started = time.perf_counter()
    stored = load(mailbox, database)
    load_s = time.perf_counter() - started
    now = mailbox.now.isoformat()
    result = Result(
        date=datetime.now(UTC).isoformat(timespec="seconds"),
        messages=args.messages,
        prospects=args.prospects,
        seed=args.seed,
        now=now,
        machine=machine(),
        folders=mailbox.folder_counts(),
        stored=stored,
        database_mib=sum(p.stat().st_size for p in work.glob("relight.db*")) / 2**20,
        generate_s=generate_s,
        load_s=load_s,
        scenarios=dict(mailbox.scenarios().most_common()),
        notes=[busy] if busy else [],
    )
    config_path = write_config(work, database, mailbox)
    del mailbox  # the evaluation's figures should not share the process with it
    return measure_evaluation(args, work, config_path, result)


def measure_evaluation(
    args: argparse.Namespace, work: Path, config_path: Path, result: Result
) -> Result:
    now, runs, cli = result.now, args.runs, result.cli
    relight = relight_command()
    database = work / "relight.db"
    report_json = [*relight, "report", "--config", str(config_path), "--format", "json"]
    for label, argv, before in (
        ("check_config", [*relight, "check-config", "--config", str(config_path)], None),
        # Nothing kept: the report evaluates the mail (and keeps the verdicts), as a sync
        # does at its end, or the first report after a change of config or release.
        ("report_stale", list(report_json), partial(forget_verdicts, database)),
        ("report_json", list(report_json), None),
        (
            "report_table",
            [*relight, "report", "--config", str(config_path), "--format", "table"],
            None,
        ),
    ):
        if label != "check_config":
            argv += ["--now", now]
        log(f"{label}: relight {' '.join(argv[len(relight) :][:1] + argv[-4:])} ({runs} runs)")
        run = best_child(argv, work / f"{label}.log", runs, before)
        if run.exit_code != 0:
            result.notes.append(f"{label} exited {run.exit_code}: {last_line(run)}")
            continue
        cli[f"{label}_s"], cli[f"{label}_peak_rss_mib"] = run.seconds, run.peak_rss_mib
    result.rows = report_rows(config_path, now)
    log(f"in-process phases ({runs} runs each)")
    config = load_config(config_path, {PASSWORD_ENV: "unused"})
    moment = datetime.fromisoformat(now)
    phases, statuses = in_process(config, moment, runs)
    result.phases = asdict(phases)
    if len(statuses) != result.rows:
        result.notes.append(f"in-process: {len(statuses)} rows, relight report: {result.rows}")
    if args.profile:
        RESULTS.mkdir(exist_ok=True)
        path = RESULTS / f"eval_profile_{result.messages}.prof"
        log("profiling the in-process evaluation")
        profile(config, moment, path)
        result.profile = str(path)
        print_profile(path, "evaluate_team + JSON formatting")
    return result


def last_line(run: ChildRun) -> str:
    lines = run.stderr_tail.strip().splitlines()
    return lines[-1] if lines else "(no output)"


def report(result: Result) -> str:
    cli, p, m = result.cli, result.phases, result.machine

    def seconds(value: float | None) -> str:
        return f"{value:9.3f}" if value is not None else f"{'failed':>9}"

    def mib(value: float | None) -> str:
        return f"{value:10.1f}" if value is not None else ""

    statuses = ", ".join(f"{name} {count}" for name, count in p.get("statuses", {}).items())
    intended = ", ".join(f"{name} {count}" for name, count in result.scenarios.items())
    rows = [
        f"Relight evaluation benchmark, {result.messages} messages, {result.prospects} "
        f"prospects, now {result.now}, {result.date}",
        f"{m['cpus']} cores ({m['cpu']}), Python {m['python']}, SQLite {m['sqlite']}, "
        f"SQLAlchemy {m['sqlalchemy']}",
        f"stored: {sum(result.stored.values())} message rows "
        f"({', '.join(f'{k} {v}' for k, v in result.stored.items())}), "
        f"{result.database_mib:.0f} MiB of SQLite",
        f"report rows: {result.rows} (account, prospect); statuses: {statuses}",
        f"scenarios written: {intended}",
        "",
        f"{'':44}{'seconds':>9}{'peak MiB':>10}",
        f"{'generate (not measured)':44}{result.generate_s:9.3f}",
        f"{'load: apply_fetched (not measured)':44}{result.load_s:9.3f}",
        f"{'relight report, nothing kept (= end of sync)':44}"
        f"{seconds(cli.get('report_stale_s'))}{mib(cli.get('report_stale_peak_rss_mib'))}",
        f"{'relight report --format json':44}{seconds(cli.get('report_json_s'))}"
        f"{mib(cli.get('report_json_peak_rss_mib'))}",
        f"{'relight report --format table':44}{seconds(cli.get('report_table_s'))}"
        f"{mib(cli.get('report_table_peak_rss_mib'))}",
        f"{'relight check-config (start-up floor)':44}{seconds(cli.get('check_config_s'))}"
        f"{mib(cli.get('check_config_peak_rss_mib'))}",
        "in-process:",
        f"{'  Store.open':44}{seconds(p.get('store_open_s'))}",
        f"{'  evaluate and keep (team_verdicts, stale)':44}{seconds(p.get('evaluate_keep_s'))}",
        f"{'  read kept verdicts (team_verdicts, fresh)':44}{seconds(p.get('load_kept_s'))}",
        f"{'  the clock (Verdict.at for each)':44}{seconds(p.get('clock_s'))}",
        "  the evaluation of the mail, in parts:",
        f"{'  read rows (stored_messages)':44}{seconds(p.get('read_s'))}",
        f"{'  classify (classify_account)':44}{seconds(p.get('classify_s'))}",
        f"{'  fold + decide (rules.status.evaluate)':44}{seconds(p.get('evaluate_s'))}",
        f"{'  format json':44}{seconds(p.get('format_json_s'))}",
        f"{'  format table':44}{seconds(p.get('format_table_s'))}",
        f"{'  whole: evaluate_team + format json (kept)':44}{seconds(p.get('whole_s'))}",
        "",
        f"target: relight report under {TARGET_SECONDS:.0f} s: "
        + _verdict(cli.get("report_json_s"), TARGET_SECONDS, "s")
        + f"; peak memory well under {TARGET_RSS_MIB:.0f} MiB: "
        + _verdict(cli.get("report_json_peak_rss_mib"), TARGET_RSS_MIB, "MiB"),
    ]
    rows += [f"note: {note}" for note in result.notes]
    return "\n".join(rows)


def _verdict(value: float | None, limit: float, unit: str) -> str:
    if value is None:
        return "not measured"
    return f"{'met' if value < limit else 'MISSED'} ({value:.2f} {unit})"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.eval_bench", description=__doc__)
    parser.add_argument("--messages", type=int, default=100_000, help="team mailbox size")
    parser.add_argument("--prospects", type=int, default=10_000, help="prospects written to")
    parser.add_argument("--seed", type=int, default=1, help="seed of the synthetic mailbox")
    parser.add_argument("--runs", type=int, default=3, help="runs per timing (the best counts)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--profile", action="store_true", help="cProfile the evaluation")
    args = parser.parse_args(argv)
    if not 1 <= args.messages <= 1_000_000:
        parser.error("--messages must be between 1 and 1000000")
    if not 1 <= args.prospects <= args.messages:
        parser.error("--prospects must be between 1 and --messages")
    if not 1 <= args.runs <= 20:
        parser.error("--runs must be between 1 and 20")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="relight-eval-bench-"))
    try:
        result = measure(args, work)
    finally:
        if args.keep:
            log(f"kept: the store and config in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(report(result))
    save_result(result, "eval_bench.jsonl")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
