"""The `relight` command line (SPEC section 7).

Exit codes: 0 ok, 1 a runtime failure (one account unreachable; the others still done),
2 usage or configuration error. `--config` is accepted before or after the command.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from daemon.config import AccountConfig, Config, ConfigError, load_config, resolve_config_path
from daemon.evaluation import evaluate_team, team_verdicts
from daemon.logs import configure_logging, get_logger
from daemon.report import format_statuses
from daemon.store import Store, StoreError
from rules.status import Status

# The connectors (imapclient and the rest), the playbook templates (Jinja2), `explain` and
# `classify` are imported by the commands that use them: a report, which reads kept
# verdicts, starts faster without.

__all__ = ["main"]

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2

Handler = Callable[[Config, argparse.Namespace], int]


def _add_config_option(parser: argparse.ArgumentParser, *, top: bool) -> None:
    # On subcommands the default is SUPPRESS, so a --config given before the command
    # is not overwritten by the subcommand's absent one.
    parser.add_argument(
        "--config",
        metavar="PATH",
        default=None if top else argparse.SUPPRESS,
        help="config file (default: $RELIGHT_CONFIG, then /etc/relight/config.toml)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="relight",
        description="Follow-up drafts for prospects who went dark, in each rep's own mailbox.",
    )
    _add_config_option(parser, top=True)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    check = commands.add_parser("check-config", help="validate the config file and secrets")
    check.set_defaults(handler=cmd_check_config)

    sync = commands.add_parser("sync", help="incremental sync of the mailboxes")
    sync.add_argument("--account", metavar="NAME", help="only this account")
    sync.set_defaults(handler=cmd_sync)

    report = commands.add_parser("report", help="one row per (account, prospect)")
    report.add_argument("--format", choices=("table", "json", "csv"), default="table")
    report.add_argument("--status", choices=[str(s) for s in Status], help="only this status")
    report.add_argument("--account", metavar="NAME", help="only this account")
    _add_now_option(report)
    report.set_defaults(handler=cmd_report, offline=True)

    draft = commands.add_parser("draft", help="write the due follow-up drafts")
    draft.add_argument("--dry-run", action="store_true", help="print them; write nothing")
    draft.add_argument("--account", metavar="NAME", help="only this account")
    _add_now_option(draft)
    draft.set_defaults(handler=cmd_draft)

    once = commands.add_parser("once", help="sync, evaluate, draft: one daemon cycle")
    _add_now_option(once)
    once.set_defaults(handler=cmd_once)

    run = commands.add_parser("run", help="the daemon: every account on its schedule")
    run.set_defaults(handler=cmd_run)

    status = commands.add_parser("status", help="per account: last sync, last error, statuses")
    status.add_argument("--format", choices=("table", "json"), default="table")
    _add_now_option(status)
    status.set_defaults(handler=cmd_status, offline=True)

    auth = commands.add_parser(
        "auth", help="sign a rep in (device code) for an account with delegated = true"
    )
    auth.add_argument("account", metavar="ACCOUNT")
    auth.set_defaults(handler=cmd_auth)

    demo = commands.add_parser(
        "demo", help="a sample team mailbox in a temporary Maildir, one cycle (no config)"
    )
    demo.add_argument("--keep", metavar="DIR", type=Path, help="build it in DIR and keep it")
    demo.set_defaults(handler=cmd_demo, config_optional=True, no_config=True)

    explain = commands.add_parser("explain", help="a prospect's timeline and why")
    explain.add_argument("address", metavar="ADDRESS")
    _add_now_option(explain)
    explain.set_defaults(handler=cmd_explain, offline=True)

    classify = commands.add_parser(
        "classify", help="classify .eml files, mbox files or Maildirs (no config needed)"
    )
    classify.add_argument("paths", metavar="PATH", nargs="+", type=Path)
    classify.add_argument("--format", choices=("text", "json"), default="text")
    _add_now_option(classify)
    classify.set_defaults(handler=cmd_classify, config_optional=True)

    for sub in (check, sync, report, draft, once, run, status, auth, explain, classify):
        _add_config_option(sub, top=False)
    return parser


def _add_now_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--now",
        metavar="ISO-8601",
        help="evaluate as if it were then (default: now; without an offset: daemon.timezone)",
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = _config_for(args)
        # The daemon logs to standard output (journald takes it); the other commands keep
        # it for their own output and log to standard error.
        stream = sys.stdout if args.handler is cmd_run else sys.stderr
        configure_logging(None if stream.isatty() else config.daemon.log_format, stream=stream)
        # Modules, config and logging live as long as the process: keep the cyclic
        # collector from walking them again on every collection of a long sync.
        gc.freeze()
        handler: Handler = args.handler
        return handler(config, args)
    except ConfigError as exc:
        print(f"relight: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except StoreError as exc:
        print(f"relight: {exc}", file=sys.stderr)
        return EXIT_FAILURE


def _config_for(args: argparse.Namespace) -> Config:
    """The config file; `classify` also runs without one when none was asked for, and
    `demo` never reads one (it writes its own)."""
    if getattr(args, "no_config", False):
        return Config(accounts=())
    path = resolve_config_path(args.config)
    asked = args.config is not None or bool(os.environ.get("RELIGHT_CONFIG", "").strip())
    if getattr(args, "config_optional", False) and not asked and not path.exists():
        return Config(accounts=())
    # Commands that never reach a mailbox do not need its secrets (which, under systemd
    # with LoadCredential=, exist only while the service runs).
    return load_config(path, resolve_secrets=not getattr(args, "offline", False))


def _now(args: argparse.Namespace, config: Config) -> datetime:
    if not args.now:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(args.now)
    except ValueError:
        raise ConfigError(
            f"expected an ISO 8601 time such as 2026-11-25T09:00+01:00, got {args.now!r}",
            key="--now",
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(config.daemon.timezone))
    return moment


def open_store(config: Config) -> Store:
    url = config.daemon.database
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    return Store.open(url)


def cmd_check_config(config: Config, _args: argparse.Namespace) -> int:
    from daemon.playbooks import load_playbooks  # noqa: PLC0415  see the imports

    load_playbooks(config)  # a broken template is reported now, not at draft time
    kinds = ", ".join(f"{account.name} ({account.kind})" for account in config.accounts)
    print(f"{config.path}: ok; accounts: {kinds}")
    return EXIT_OK


class _Progress:
    """A counter line on a terminal; otherwise a log line every few seconds."""

    def __init__(self, account: str, *, interval: float = 10.0) -> None:
        self.account = account
        self.tty = sys.stderr.isatty()
        self.interval = interval
        self.last = time.monotonic()
        self.log = get_logger(account=account)

    def __call__(self, folder: str, count: int) -> None:
        if self.tty:
            print(f"\r{self.account} {folder}: {count} messages", end="", file=sys.stderr)
        elif time.monotonic() - self.last >= self.interval:
            self.last = time.monotonic()
            self.log.info("sync progress", folder=folder, messages=count)

    def done(self) -> None:
        if self.tty:
            print(file=sys.stderr)


def cmd_sync(config: Config, args: argparse.Namespace) -> int:
    accounts = [config.account(args.account)] if args.account else list(config.accounts)
    with open_store(config) as store:
        failed = _sync(config, store, accounts)
    return EXIT_FAILURE if failed else EXIT_OK


def _sync(config: Config, store: Store, accounts: Sequence[AccountConfig]) -> set[str]:
    """Sync each account (a failure is logged and the others go on), then evaluate the
    team when the mail changed. Returns the names of the accounts that failed."""
    from connectors.base import ConnectorError  # noqa: PLC0415  see the imports
    from daemon.accounts import UnsupportedKind, open_connector  # noqa: PLC0415
    from daemon.sync import sync_account  # noqa: PLC0415

    failed: set[str] = set()
    for account in accounts:
        log = get_logger(account=account.name)
        progress = _Progress(account.name)
        try:
            connector = open_connector(config, account)
            summary = sync_account(
                store, account.name, account.kind, connector, on_progress=progress
            )
        except (ConnectorError, UnsupportedKind) as exc:
            failed.add(account.name)
            log.error("sync failed", error=str(exc), error_type=type(exc).__name__)
            continue
        finally:
            progress.done()
        log.info(
            "sync done",
            fetched=summary.fetched,
            removed=summary.removed,
            resets=summary.resets,
            seconds=round(summary.duration, 3),
        )
    # Evaluate what changed now, so the next report (and the drafts) only read.
    started = time.monotonic()
    with _collector_paused():
        count = len(team_verdicts(store, config))
    get_logger().info(
        "evaluation ready", prospects=count, seconds=round(time.monotonic() - started, 3)
    )
    return failed


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """The evaluation builds ~10 objects per stored message and frees almost none until it
    is done: the cyclic garbage collector would walk them again and again for nothing."""
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def cmd_report(config: Config, args: argparse.Namespace) -> int:
    if args.account:
        config.account(args.account)  # an unknown name is a usage error

    with open_store(config) as store, _collector_paused():
        statuses = evaluate_team(store, config, _now(args, config), account=args.account)
    rows = [s for s in statuses if args.status is None or s.status == args.status]
    print(format_statuses(rows, args.format, timezone=ZoneInfo(config.daemon.timezone)))
    return EXIT_OK


def cmd_draft(config: Config, args: argparse.Namespace) -> int:
    accounts = [config.account(args.account)] if args.account else list(config.accounts)
    with open_store(config) as store:
        return _draft(config, store, accounts, _now(args, config), args.dry_run)


def cmd_once(config: Config, args: argparse.Namespace) -> int:
    """One daemon cycle. An account whose sync failed gets no drafts: its store may miss
    the reply that would make a follow-up pushy."""
    with open_store(config) as store:
        failed = _sync(config, store, config.accounts)
        synced = [account for account in config.accounts if account.name not in failed]
        code = _draft(config, store, synced, _now(args, config), dry_run=False)
    return EXIT_FAILURE if failed else code


def _draft(
    config: Config,
    store: Store,
    accounts: Sequence[AccountConfig],
    now: datetime,
    dry_run: bool,
) -> int:
    from connectors.base import ConnectorError  # noqa: PLC0415  see the imports
    from daemon.accounts import UnsupportedKind  # noqa: PLC0415
    from daemon.drafting import AccountDrafts, format_draft  # noqa: PLC0415
    from daemon.playbooks import load_playbooks  # noqa: PLC0415

    playbooks = load_playbooks(config)
    with _collector_paused():
        statuses = evaluate_team(store, config, now)
    failures = 0
    for account in accounts:
        own = [status for status in statuses if status.account == account.name]
        log = get_logger(account=account.name)
        step = AccountDrafts(store, config, account, playbooks, now)
        if dry_run:
            for outcome in step.preview(own):
                assert outcome.draft is not None
                print(f"# {account.name}: {outcome.prospect}, stage {outcome.stage}")
                print(format_draft(outcome.draft), end="\n\n")
            continue
        try:
            outcomes = step.run(own)
        except (ConnectorError, UnsupportedKind) as exc:
            failures += 1
            log.error("drafts failed", error=str(exc), error_type=type(exc).__name__)
            continue
        for outcome in outcomes:
            print(f"{account.name}\t{outcome.prospect}\tstage {outcome.stage}\t{outcome.action}")
            log.info("draft", prospect=outcome.prospect, stage=outcome.stage, action=outcome.action)
    return EXIT_FAILURE if failures else EXIT_OK


def cmd_demo(_config: Config, args: argparse.Namespace) -> int:
    """Build the sample mailbox, run one cycle on it, print the report and the drafts."""
    import tempfile  # noqa: PLC0415

    from daemon.demo import build_demo  # noqa: PLC0415

    configure_logging(None, level=logging.WARNING)  # the printed report tells the story
    with contextlib.ExitStack() as stack:
        directory = args.keep or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        now = datetime.now(UTC)
        config = load_config(build_demo(directory, now))
        when = f"{now:%a %d %b %Y %H:%M} UTC"
        kept = "kept" if args.keep else "removed at the end; --keep DIR keeps it"
        print(f"A sample team mailbox in {directory} (Maildir; {kept}), at {when}.\n")
        store = stack.enter_context(open_store(config))
        if _sync(config, store, config.accounts):
            return EXIT_FAILURE
        zone = ZoneInfo(config.daemon.timezone)
        with _collector_paused():
            statuses = evaluate_team(store, config, now)
        print(format_statuses(statuses, "table", timezone=zone), end="\n\n")
        code = _draft(config, store, config.accounts, now, dry_run=False)
        print()
        _print_demo_drafts(config)
        return code


def _print_demo_drafts(config: Config) -> None:
    """The drafts the cycle left in each sample Drafts folder, as a rep would open them."""
    from email import message_from_bytes, policy  # noqa: PLC0415

    for account in config.accounts:
        assert account.path is not None
        drafts = sorted((account.path / ".Drafts" / "cur").glob("relight-*"))
        for path in drafts:
            message = message_from_bytes(path.read_bytes(), policy=policy.default)
            body = message.get_body(preferencelist=("plain",))
            text = body.get_content() if body is not None else ""
            print(f"--- {account.name}'s Drafts: {path.name}")
            for name in ("From", "To", "Subject", "In-Reply-To"):
                print(f"{name}: {message[name]}")
            print(f"\n{text.rstrip()}\n")


def cmd_run(config: Config, _args: argparse.Namespace) -> int:
    from daemon.notify import Notifier  # noqa: PLC0415  see the imports
    from daemon.service import Daemon  # noqa: PLC0415

    assert config.path is not None
    with open_store(config) as store:
        return Daemon(config.path, config, store, notifier=Notifier.from_environment()).run()


def cmd_status(config: Config, args: argparse.Namespace) -> int:
    from daemon.report import format_account_status  # noqa: PLC0415

    with open_store(config) as store, _collector_paused():
        statuses = evaluate_team(store, config, _now(args, config))
        known = {account.name: account for account in store.account_status()}
    print(
        format_account_status(
            config.accounts,
            known,
            statuses,
            args.format,
            timezone=ZoneInfo(config.daemon.timezone),
        )
    )
    return EXIT_OK


def cmd_auth(config: Config, args: argparse.Namespace) -> int:
    """The rep opens the printed address on any device and enters the code."""
    from connectors.base import ConnectorError  # noqa: PLC0415  see the imports
    from daemon.accounts import UnsupportedKind, sign_in  # noqa: PLC0415

    account = config.account(args.account)
    config.daemon.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        username = sign_in(config, account, prompt=lambda text: print(text, flush=True))
    except UnsupportedKind as exc:
        print(f"relight: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ConnectorError as exc:
        print(f"relight: sign-in failed: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    print(
        f"{account.name}: signed in as {username}; the token is kept in {config.daemon.state_dir}"
    )
    return EXIT_OK


def cmd_explain(config: Config, args: argparse.Namespace) -> int:
    from daemon.explain import explain  # noqa: PLC0415  see the imports

    with open_store(config) as store, _collector_paused():
        text = explain(store, config, args.address, _now(args, config))
    print(text)
    return EXIT_OK


def cmd_classify(config: Config, args: argparse.Namespace) -> int:
    from daemon.samples import classify_paths, format_verdict  # noqa: PLC0415  see the imports

    own = frozenset(address for account in config.accounts for address in account.addresses)
    unreadable = 0
    for verdict in classify_paths(
        args.paths, own, config.privacy.excerpt_chars, _now(args, config)
    ):
        unreadable += verdict.kind == "unreadable"
        print(format_verdict(verdict, args.format))
    return EXIT_FAILURE if unreadable else EXIT_OK
