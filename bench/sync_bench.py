"""How fast Relight's initial IMAP sync is, against what the protocol allows.

    python -m bench.sync_bench --messages 10000 [--keep] [--profile]

One run, on loopback, against a private Dovecot (`tests.support.dovecot`):

1. fill: the synthetic mailbox of `bench.mailbox` written straight into the Maildirs,
   then one `UID FETCH 1:* (FLAGS)` per folder so Dovecot builds its index;
2. cache cold: Dovecot's cache file is removed (the index stays), so every message file
   is read and parsed again, then timed: the raw header FETCH (`bench.raw_imap`: one
   `UID FETCH 1:* (UID INTERNALDATE RFC822.SIZE BODY.PEEK[HEADER.FIELDS (...)])` per
   folder with the connector's own field list, read off a plain socket), and again from
   cold, `sync_account` in-process: what a first sync against a real server costs;
3. cache warm: the raw header FETCH, best of three passes: the protocol limit. Then
   `relight sync --config FILE` as a child process into a fresh SQLite file (wall time
   and the child's peak RSS), and `sync_account` in-process into another fresh file, so
   start-up cost shows apart from the sync; both see the cache the cold sync filled;
4. no-change poll: `sync_account` again on the unchanged mailbox (connect, log in,
   STATUS per folder, log out), median of `--polls` runs, and a second `relight sync`.

It prints a table and appends one JSON line to `bench/results/sync_bench.jsonl`; with
`--profile` it also prints cProfile summaries of a sync and of a poll. Everything lives
in temporary directories, removed at the end unless `--keep`.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import platform
import pstats
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.mailbox import FOLDERS, REP_ADDRESS, REP_NAME, folder_messages
from bench.raw_imap import RawImap, header_fetch_command, raw_fetch, raw_poll
from connectors.imap import HEADER_FIELDS, ImapConnector
from daemon.store import Store
from daemon.sync import sync_account
from tests.support.dovecot import DovecotServer, dovecot_binary

USER, PASSWORD = "dana", "bench-secret"
PASSWORD_ENV = "RELIGHT_BENCH_PASSWORD"
RESULTS = Path(__file__).resolve().parent / "results"
REPO_ROOT = Path(__file__).resolve().parent.parent
RAW_PASSES = 3  # the raw FETCH is timed this many times; the best pass is the limit
CHILD_TIMEOUT = 1800.0  # seconds a `relight sync` child may take before it is killed


# -- Relight: the command line as a child, and sync_account in-process ---------------------


@dataclass
class ChildRun:
    seconds: float
    peak_rss_mib: float
    exit_code: int
    stderr_tail: str


def relight_command() -> list[str]:
    script = Path(sys.executable).with_name("relight")
    return [str(script)] if script.exists() else [sys.executable, "-m", "daemon"]


def write_config(directory: Path, port: int, database: Path) -> Path:
    path = directory / "relight.toml"
    path.write_text(
        f"""[daemon]
state_dir = "{directory / "state"}"
database = "sqlite:///{database}"
log_format = "json"

[[accounts]]
name = "{USER}"
kind = "imap"
rep_name = "{REP_NAME}"
addresses = ["{REP_ADDRESS}"]
host = "127.0.0.1"
port = {port}
security = "none"
username = "{USER}"
password_env = "{PASSWORD_ENV}"
"""
    )
    return path


def run_relight_sync(config: Path, log: Path) -> ChildRun:
    """`relight sync --config FILE` as a child process."""
    return run_child([*relight_command(), "sync", "--config", str(config)], log)


# A child's ru_maxrss starts from its parent's peak RSS (Linux keeps the high-water mark
# across fork and exec), so `relight` is started by this small launcher, whose own RSS
# is ~10 MiB, and the launcher reports the wait4 figures of its child. The wall time is
# taken in the launcher, around fork and wait, so its own start-up is not counted.
LAUNCHER = """
import json, os, sys, time
report, argv = sys.argv[1], sys.argv[2:]
started = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.execvp(argv[0], argv)
    finally:
        os._exit(127)
_pid, status, usage = os.wait4(pid, 0)
seconds = time.perf_counter() - started
with open(report, "w") as out:
    json.dump({"seconds": seconds, "maxrss_kib": usage.ru_maxrss,
               "exit_code": os.waitstatus_to_exitcode(status)}, out)
"""


def run_child(argv: list[str], log: Path) -> ChildRun:
    """Run `argv` from the repository root: wall time, exit code, peak RSS (VmHWM)."""
    env = {key: value for key, value in os.environ.items() if key != "RELIGHT_CONFIG"}
    env[PASSWORD_ENV] = PASSWORD
    report = log.with_suffix(".json")
    with log.open("wb") as output:
        launcher = subprocess.Popen(
            [sys.executable, "-c", LAUNCHER, str(report), *argv],
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=output,
            start_new_session=True,  # one process group: a timeout ends the child too
        )
        try:
            launcher.wait(timeout=CHILD_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(launcher.pid, signal.SIGKILL)
            launcher.wait()
    tail = log.read_text(errors="replace")[-2000:]
    if launcher.returncode != 0 or not report.exists():
        return ChildRun(0.0, 0.0, launcher.returncode or 1, tail)
    figures = json.loads(report.read_text())
    # ru_maxrss is in KiB on Linux.
    return ChildRun(figures["seconds"], figures["maxrss_kib"] / 1024, figures["exit_code"], tail)


@dataclass
class InProcess:
    seconds: float
    cpu_seconds: float
    fetched: int
    stored: int


def open_connector(port: int) -> ImapConnector:
    return ImapConnector(
        "127.0.0.1",
        port,
        username=USER,
        password=PASSWORD,
        security="none",
        own_addresses=frozenset({REP_ADDRESS}),
    )


def sync_in_process(port: int, database: Path, profile: Path | None = None) -> InProcess:
    store = Store.open(f"sqlite:///{database}")
    try:
        profiler = cProfile.Profile()
        cpu, started = time.process_time(), time.perf_counter()
        if profile is not None:
            profiler.enable()
        summary = sync_account(store, USER, "imap", open_connector(port))
        if profile is not None:
            profiler.disable()
            profiler.dump_stats(profile)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        return InProcess(seconds, cpu, summary.fetched, store.message_count(USER))
    finally:
        store.close()


def poll_in_process(port: int, database: Path, runs: int) -> list[float]:
    """Milliseconds of each no-change `sync_account` (connect, log in, STATUS, log out)."""
    store = Store.open(f"sqlite:///{database}")
    polls = []
    try:
        for _ in range(runs):
            started = time.perf_counter()
            summary = sync_account(store, USER, "imap", open_connector(port))
            polls.append((time.perf_counter() - started) * 1000)
            if summary.fetched or summary.removed:
                raise RuntimeError(f"a no-change poll changed something: {summary}")
    finally:
        store.close()
    return polls


def stored_messages(database: Path) -> int:
    with Store.open(f"sqlite:///{database}") as store:
        return store.message_count(USER)


# -- the run --------------------------------------------------------------------------------


@dataclass
class Result:
    date: str
    messages: int
    seed: int
    folders: dict[str, int]
    mailbox_mib: float
    machine: dict[str, str]
    header_fields: int
    fill_s: float
    index_s: float
    raw_uncached_s: float
    raw_s: float
    raw_msgs_per_s: float
    raw_mib: float
    relight: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def machine() -> dict[str, str]:
    model = "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    binary = dovecot_binary()
    dovecot = "not installed"
    if binary is not None:
        version = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False)
        dovecot = version.stdout.strip()
    return {
        "cpus": str(os.cpu_count()),
        "cpu": model,
        "dovecot": dovecot,
        "python": platform.python_version(),
        "kernel": platform.release(),
    }


def fill(server: DovecotServer, n: int, seed: int) -> dict[str, int]:
    return {
        folder: server.write_maildir(USER, folder, folder_messages(n, folder, seed=seed))
        for folder in FOLDERS
    }


def mailbox_size(server: DovecotServer) -> int:
    root = server.root / "home" / USER / "Maildir"
    return sum(path.stat().st_size for path in root.rglob("*") if "/cur/" in str(path))


def measure(args: argparse.Namespace, server: DovecotServer, work: Path) -> Result:
    n = args.messages
    busy = busy_note()
    log(f"filling {n} messages")
    started = time.perf_counter()
    counts = fill(server, n, args.seed)
    fill_s = time.perf_counter() - started
    log("warming Dovecot's index")
    started = time.perf_counter()
    with RawImap(server.port) as imap:
        imap.login(USER, PASSWORD)
        for folder in FOLDERS:
            imap.examine(folder)
            imap.command(b"UID FETCH 1:* (FLAGS)")
    index_s = time.perf_counter() - started
    command = header_fetch_command(HEADER_FIELDS)
    log("raw header FETCH, Dovecot's cache cold")
    drop_dovecot_cache(server)
    uncached, seen, _ = raw_fetch(server.port, USER, PASSWORD, FOLDERS, command)
    if seen != n:
        raise RuntimeError(f"the raw FETCH saw {seen} messages, expected {n}")
    cold = None
    if not args.raw_only:
        log("sync_account in-process, Dovecot's cache cold")
        drop_dovecot_cache(server)
        cold = sync_in_process(server.port, work / "cold.db")
    log(f"raw header FETCH, cache warm ({RAW_PASSES} passes)")
    passes = [raw_fetch(server.port, USER, PASSWORD, FOLDERS, command) for _ in range(RAW_PASSES)]
    raw_s, _, raw_bytes = min(passes)
    result = Result(
        date=datetime.now(UTC).isoformat(timespec="seconds"),
        messages=n,
        seed=args.seed,
        folders=counts,
        mailbox_mib=mailbox_size(server) / 2**20,
        machine=machine(),
        header_fields=len(HEADER_FIELDS),
        fill_s=fill_s,
        index_s=index_s,
        raw_uncached_s=uncached,
        raw_s=raw_s,
        raw_msgs_per_s=n / raw_s,
        raw_mib=raw_bytes / 2**20,
        notes=[busy] if busy else [],
    )
    if cold is None:
        result.notes.append("--raw-only: Relight not measured")
        return result
    result.relight["cold_inprocess_s"] = cold.seconds
    result.relight["cold_inprocess_cpu_s"] = cold.cpu_seconds
    result.relight["cold_inprocess_ratio"] = cold.seconds / uncached
    measure_relight(args, server, work, result)
    return result


def busy_note() -> str | None:
    """A note when other processes kept the CPUs busy during one second before the run."""
    stat = Path("/proc/stat")
    if not stat.exists():
        return None

    def sample() -> tuple[int, int]:
        fields = [int(value) for value in stat.read_text().split("\n", 1)[0].split()[1:]]
        idle = fields[3] + fields[4]  # idle + iowait
        return sum(fields) - idle, sum(fields)

    busy_before, total_before = sample()
    time.sleep(1.0)
    busy_after, total_after = sample()
    share = (busy_after - busy_before) / max(total_after - total_before, 1)
    if share > 0.1:
        return (
            f"other processes used {share:.0%} of the CPUs just before the run: figures may be low"
        )
    return None


def drop_dovecot_cache(server: DovecotServer) -> None:
    """Make Dovecot forget the header fields and body structures it cached (the index
    itself stays), so the next FETCH reads and parses every message file again."""
    time.sleep(0.3)  # the last session's imap process exits after LOGOUT
    for folder in FOLDERS:
        (server.maildir_path(USER, folder) / "dovecot.index.cache").unlink(missing_ok=True)


def measure_relight(
    args: argparse.Namespace, server: DovecotServer, work: Path, result: Result
) -> None:
    n, r = args.messages, result.relight
    config = write_config(work, server.port, work / "cli.db")
    log("relight sync (command line, first run)")
    first = run_relight_sync(config, work / "cli-first.log")
    if first.exit_code == 0:
        r["cli_s"], r["cli_peak_rss_mib"] = first.seconds, first.peak_rss_mib
        r["cli_msgs_per_s"], r["cli_ratio"] = n / first.seconds, first.seconds / result.raw_s
        r["cli_stored"] = stored_messages(work / "cli.db")
    else:
        result.notes.append(f"relight sync exited {first.exit_code}: {last_line(first)}")
    log("sync_account in-process")
    inproc = sync_in_process(server.port, work / "inprocess.db")
    r["inprocess_s"], r["inprocess_cpu_s"] = inproc.seconds, inproc.cpu_seconds
    r["inprocess_msgs_per_s"] = n / inproc.seconds
    r["inprocess_ratio"] = inproc.seconds / result.raw_s
    r["inprocess_fetched"], r["inprocess_stored"] = inproc.fetched, inproc.stored
    log(f"no-change polls ({args.polls} runs)")
    polls = poll_in_process(server.port, work / "inprocess.db", args.polls)
    raw_polls = [
        raw_poll(server.port, USER, PASSWORD, (*FOLDERS, "Drafts")) * 1000
        for _ in range(args.polls)
    ]
    r["raw_poll_ms_median"] = statistics.median(raw_polls)
    r["poll_ms_median"], r["poll_ms_all"] = statistics.median(polls), [round(ms, 2) for ms in polls]
    if first.exit_code == 0:
        second = run_relight_sync(config, work / "cli-second.log")
        if second.exit_code == 0:
            r["cli_second_run_s"] = second.seconds
            r["cli_second_run_peak_rss_mib"] = second.peak_rss_mib
        else:
            result.notes.append(
                f"relight sync (2nd) exited {second.exit_code}: {last_line(second)}"
            )
    for label, key in (("relight sync", "cli_stored"), ("sync_account", "inprocess_stored")):
        if key in r and r[key] != n:
            result.notes.append(f"{label} stored {r[key]} messages, expected {n}")
    if args.profile:
        profile = RESULTS / f"sync_profile_{n}.prof"
        RESULTS.mkdir(exist_ok=True)
        log("profiling sync_account in-process")
        sync_in_process(server.port, work / "profile.db", profile)
        r["profile"] = str(profile)
        print_profile(profile, "the in-process initial sync")
        poll_profile = RESULTS / f"poll_profile_{n}.prof"
        profile_poll(server.port, work / "inprocess.db", poll_profile)
        print_profile(poll_profile, "one no-change poll", limit=15)


def last_line(run: ChildRun) -> str:
    lines = run.stderr_tail.strip().splitlines()
    return lines[-1] if lines else "(no output)"


def profile_poll(port: int, database: Path, path: Path) -> None:
    store = Store.open(f"sqlite:///{database}")
    try:
        sync_account(store, USER, "imap", open_connector(port))
        profiler = cProfile.Profile()
        profiler.enable()
        sync_account(store, USER, "imap", open_connector(port))
        profiler.disable()
        profiler.dump_stats(path)
    finally:
        store.close()


def print_profile(path: Path, what: str, limit: int = 25) -> None:
    for order in ("tottime", "cumulative"):
        out = io.StringIO()
        pstats.Stats(str(path), stream=out).sort_stats(order).print_stats(limit)
        print(f"\n-- cProfile of {what}, by {order} --")
        print(out.getvalue().split("\n\n", 1)[-1].rstrip())


def report(result: Result) -> str:
    r, m, n = result.relight, result.machine, result.messages

    def row(label: str, seconds: float | None, peak: float | None = None, base: float = 0) -> str:
        if seconds is None:
            return f"{label:38}{'failed':>9}"
        ratio = seconds / (base or result.raw_s)
        text = f"{label:38}{seconds:9.2f}{n / seconds:10.0f}{ratio:7.2f}"
        return text + (f"{peak:10.1f}" if peak is not None else "")

    rows = [
        f"Relight sync benchmark, {n} messages ("
        + ", ".join(f"{k} {v}" for k, v in result.folders.items())
        + f"; {result.mailbox_mib:.0f} MiB), {result.date}",
        f"{m['cpus']} cores ({m['cpu']}), Dovecot {m['dovecot']}, Python {m['python']}",
        f"header FETCH: {result.header_fields} fields (connectors.imap.HEADER_FIELDS)",
        "",
        f"{'':38}{'seconds':>9}{'msgs/s':>10}{'x raw':>7}{'peak MiB':>10}",
        f"{'fill (write_maildir)':38}{result.fill_s:9.2f}",
        f"{'index warm-up (FETCH FLAGS)':38}{result.index_s:9.2f}",
        "Dovecot's cache cold (every message file read and parsed):",
        row("  raw header FETCH", result.raw_uncached_s, base=result.raw_uncached_s),
    ]
    if "cold_inprocess_s" in r:
        rows.append(
            row("  sync_account (in-process)", r["cold_inprocess_s"], base=result.raw_uncached_s)
        )
    rows += [
        "Dovecot's cache warm (the header fields cached by an earlier FETCH):",
        row("  raw header FETCH (the limit)", result.raw_s),
    ]
    if "inprocess_s" in r:
        rows += [
            row("  relight sync (command line)", r.get("cli_s"), r.get("cli_peak_rss_mib")),
            row("  sync_account (in-process)", r["inprocess_s"]),
            f"{'    of which CPU in this process':38}{r['inprocess_cpu_s']:9.2f}",
            "",
            f"{'no-change poll, sync_account (median)':38}{r['poll_ms_median']:9.1f} ms",
            f"{'  raw: connect, LOGIN, 3 STATUS, LOGOUT':38}{r['raw_poll_ms_median']:9.1f} ms",
        ]
        if "cli_second_run_s" in r:
            rows.append(
                f"{'relight sync (command line, 2nd run)':38}"
                f"{r['cli_second_run_s'] * 1000:9.0f} ms{'':14}"
                f"{r['cli_second_run_peak_rss_mib']:10.1f}"
            )
    rows += [f"note: {note}" for note in result.notes]
    return "\n".join(rows)


def log(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.sync_bench", description=__doc__)
    parser.add_argument("--messages", type=int, default=10_000, help="mailbox size")
    parser.add_argument("--seed", type=int, default=1, help="seed of the synthetic mailbox")
    parser.add_argument("--polls", type=int, default=10, help="no-change polls to time")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directories")
    parser.add_argument("--profile", action="store_true", help="cProfile the in-process sync")
    parser.add_argument("--raw-only", action="store_true", help="measure only the raw limit")
    args = parser.parse_args(argv)
    if not 1 <= args.messages <= 1_000_000:
        parser.error("--messages must be between 1 and 1000000")
    if not 1 <= args.polls <= 100:
        parser.error("--polls must be between 1 and 100")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    server = DovecotServer.start(users={USER: PASSWORD})
    work = Path(tempfile.mkdtemp(prefix="relight-bench-"))
    try:
        result = measure(args, server, work)
    finally:
        if args.keep:
            if server.process is not None:
                server.process.terminate()
                server.process.wait(timeout=10)
            log(f"kept: Dovecot in {server.root} (stopped), Relight files in {work}")
        else:
            server.stop()
            shutil.rmtree(work, ignore_errors=True)
    print(report(result))
    save_result(result, "sync_bench.jsonl")
    return 0


def save_result(result: Any, name: str) -> None:
    """Append the run (a dataclass) as one JSON line to bench/results/`name`."""
    RESULTS.mkdir(exist_ok=True)
    with (RESULTS / name).open("a") as out:
        out.write(json.dumps(asdict(result)) + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
