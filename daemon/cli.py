"""The `relight` command line (SPEC section 7).

Exit codes: 0 ok, 1 a runtime failure (one account unreachable; the others still done),
2 usage or configuration error. `--config` is accepted before or after the command.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from connectors.base import ConnectorError
from daemon.accounts import UnsupportedKind, open_connector
from daemon.config import Config, ConfigError, load_config, resolve_config_path
from daemon.logs import configure_logging, get_logger
from daemon.report import format_report
from daemon.store import Store
from daemon.sync import sync_account

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

    report = commands.add_parser("report", help="one row per (account, correspondent)")
    report.add_argument("--format", choices=("table", "json", "csv"), default="table")
    report.add_argument("--account", metavar="NAME", help="only this account")
    report.set_defaults(handler=cmd_report)

    for sub in (check, sync, report):
        _add_config_option(sub, top=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = load_config(resolve_config_path(args.config))
    except ConfigError as exc:
        print(f"relight: {exc}", file=sys.stderr)
        return EXIT_USAGE
    configure_logging(None if sys.stderr.isatty() else config.daemon.log_format)
    handler: Handler = args.handler
    try:
        return handler(config, args)
    except ConfigError as exc:
        print(f"relight: {exc}", file=sys.stderr)
        return EXIT_USAGE


def open_store(config: Config) -> Store:
    url = config.daemon.database
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    return Store.open(url)


def cmd_check_config(config: Config, _args: argparse.Namespace) -> int:
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
    store = open_store(config)
    failures = 0
    for account in accounts:
        log = get_logger(account=account.name)
        progress = _Progress(account.name)
        try:
            connector = open_connector(config, account)
            summary = sync_account(
                store, account.name, account.kind, connector, on_progress=progress
            )
        except (ConnectorError, UnsupportedKind) as exc:
            failures += 1
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
    return EXIT_FAILURE if failures else EXIT_OK


def cmd_report(config: Config, args: argparse.Namespace) -> int:
    accounts = [config.account(args.account)] if args.account else list(config.accounts)
    store = open_store(config)
    rows = store.correspondents(
        args.account,
        own_addresses={a.name: frozenset(a.addresses) for a in accounts},
        internal_domains={
            a.name: a.own_domains | frozenset(config.rules.internal_domains) for a in accounts
        },
    )
    print(format_report(rows, args.format))
    return EXIT_OK
