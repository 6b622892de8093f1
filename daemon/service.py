"""`relight run`: the daemon (SPEC section 9). Every account on its own thread and schedule.

Theory of operation::

    main thread   signals: SIGTERM/SIGINT stop (a second one: exit at once), SIGHUP reload
                  systemd: READY once the config is loaded and the store open, WATCHDOG
                  while every worker shows signs of life, STOPPING on the way out
    one worker    loop until stopped:
    per account       lease the account (several daemons may share one PostgreSQL store)
                      cycle: sync -> evaluate (the team's verdicts, one worker at a time)
                             -> draft; one summary line
                      wait:  IMAP IDLE on INBOX where offered (a reply ends the wait at
                             once), else sleep; `daemon.poll_interval` at most

A worker's failure is its own: the others keep their schedule. Errors arrive translated by
the connectors (`connectors.base`): a `TransientError` (server down, connection cut,
timeout) is retried within the cycle with exponential backoff and jitter (tenacity), then
left to the next cycle; an `AuthenticationError` is logged as an error once and retried
only every `AUTH_RETRY` (until a reload brings a new password); anything else is logged
and the next cycle comes at the usual time.

Stopping: the stop request is a `daemon.shutdown.StopFlag`; a worker checks it between
the steps of a cycle and between two changes of a sync (`Shutdown` unwinds to the last
commit: each batch is stored with its cursor in one transaction, so nothing is half-done
and the next start resumes). A reload stops this generation of workers the same way and
starts one for the new configuration; a configuration that does not load is reported and
the old one kept.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any

import tenacity

from connectors.base import (
    AuthenticationError,
    ConnectorError,
    MailWaiter,
    TransientError,
)
from daemon import leases
from daemon.accounts import UnsupportedKind, open_connector
from daemon.config import AccountConfig, Config, ConfigError, load_config
from daemon.drafting import AccountDrafts
from daemon.evaluation import evaluate_team
from daemon.logs import get_logger
from daemon.notify import Notifier
from daemon.playbooks import load_playbooks
from daemon.shutdown import Shutdown, StopFlag
from daemon.store import Store
from daemon.sync import sync_account
from rules.drafts import Playbooks

__all__ = ["AUTH_RETRY", "Daemon"]

AUTH_RETRY = timedelta(minutes=30)  # refused credentials: retried this often, reported once
STALL = 15 * 60.0  # a worker silent this long (seconds) is hung: stop the watchdog pings
_ATTEMPTS = 5  # tries of one cycle on transient errors before waiting for the next
_TICK = 1.0  # the main loop's pace, and how often a waiting worker looks up
_LEASE = timedelta(minutes=10)  # a dead worker's accounts are taken over after this
_RENEW = 120.0  # seconds between lease renewals while a worker waits


@dataclass
class _Generation:
    """The workers of one configuration, with the stop flag they share."""

    config: Config
    playbooks: Playbooks
    stop: StopFlag = field(default_factory=StopFlag)
    workers: list[_Worker] = field(default_factory=list)


class Daemon:
    """The main thread's side: signals, workers, reloads and systemd notifications."""

    def __init__(
        self, config_path: Path, config: Config, store: Store, *, notifier: Notifier
    ) -> None:
        self.config_path = config_path
        self.store = store
        self.notifier = notifier
        self.worker_id = config.daemon.worker_id or leases.default_worker_id()
        self.stop = StopFlag()
        self._reload = threading.Event()
        self.evaluating = threading.Lock()  # one team evaluation at a time
        self._generation = self._start(config, load_playbooks(config))
        self._log = get_logger(worker=self.worker_id)

    def run(self) -> int:
        """Until SIGTERM or SIGINT: returns 0 after a clean stop."""
        self._install_signals()
        generation = self._generation
        self._log.info(
            "relight started",
            config=str(self.config_path),
            accounts=[worker.account.name for worker in generation.workers],
        )
        self.notifier.ready(f"{len(generation.workers)} accounts")
        interval = self.notifier.watchdog_interval or _TICK
        last_ping = 0.0
        stalled_reported = False
        while not self.stop.wait(_TICK):
            if self._reload.is_set():
                self._reload.clear()
                self._reload_config()
            stalled = [w.account.name for w in self._generation.workers if w.stalled()]
            if stalled and not stalled_reported:
                self._log.error("worker hung: no more watchdog pings", accounts=stalled)
            stalled_reported = bool(stalled)
            if not stalled and time.monotonic() - last_ping >= interval:
                self.notifier.watchdog()
                last_ping = time.monotonic()
        self.notifier.stopping()
        self._log.info("stopping: finishing the accounts in hand")
        self._stop_generation(self._generation)
        self._log.info("relight stopped")
        return 0

    # -- workers ---------------------------------------------------------------------

    def _start(self, config: Config, playbooks: Playbooks) -> _Generation:
        generation = _Generation(config, playbooks)
        for account in config.accounts:
            worker = _Worker(self, generation, account)
            generation.workers.append(worker)
            worker.thread.start()
        return generation

    def _stop_generation(self, generation: _Generation) -> None:
        """Stop the workers and wait for them, still pinging the watchdog: a worker may
        need a while to reach its next commit."""
        generation.stop.set()
        for worker in generation.workers:
            while worker.thread.is_alive():
                worker.thread.join(_TICK)
                self.notifier.watchdog()

    # -- signals and reloads ---------------------------------------------------------

    def _install_signals(self) -> None:
        signal.signal(signal.SIGTERM, self._on_stop)
        signal.signal(signal.SIGINT, self._on_stop)
        signal.signal(signal.SIGHUP, self._on_reload)

    def _on_stop(self, signum: int, _frame: FrameType | None) -> None:
        if self.stop.is_set():
            # Told twice: go now. Every transaction either committed or never will.
            os._exit(1)
        self.stop.set()
        self._generation.stop.set()

    def _on_reload(self, _signum: int, _frame: FrameType | None) -> None:
        self._reload.set()

    def _reload_config(self) -> None:
        self.notifier.reloading()
        try:
            config = load_config(self.config_path)
            playbooks = load_playbooks(config)
        except ConfigError as exc:
            self._log.error("reload failed: keeping the running configuration", error=str(exc))
            self.notifier.ready("reload failed; old configuration kept")
            return
        self._stop_generation(self._generation)
        self._generation = self._start(config, playbooks)
        self._log.info("configuration reloaded", accounts=[a.name for a in config.accounts])
        self.notifier.ready(f"{len(config.accounts)} accounts")


class _Worker:
    """One account's loop on a thread of its own (see the module docstring)."""

    def __init__(self, daemon: Daemon, generation: _Generation, account: AccountConfig) -> None:
        self.daemon = daemon
        self.generation = generation
        self.account = account
        self.config = generation.config
        self.stop = generation.stop
        self.log = get_logger(account=account.name)
        self.heartbeat = time.monotonic()
        self.thread = threading.Thread(target=self._run, name=f"relight-{account.name}")
        self.thread.daemon = True  # a second stop request exits without waiting
        self._auth_reported = False
        self._lease_reported = False

    def stalled(self) -> bool:
        return self.thread.is_alive() and time.monotonic() - self.heartbeat > STALL

    def beat(self, *_args: object) -> None:
        self.heartbeat = time.monotonic()

    def _run(self) -> None:
        poll = self.config.daemon.poll_interval.total_seconds()
        try:
            while not self.stop.is_set():
                self.beat()
                if not self._leased():
                    self._sleep(poll)
                    continue
                self._sleep_or_idle(self._attempt(poll), poll)
        except Shutdown:
            pass
        finally:
            self._release()

    def _attempt(self, poll: float) -> float | None:
        """One cycle with its retries; returns the wait before the next one, or None
        after a success (wait for mail, at most `poll`)."""
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(TransientError),
            wait=tenacity.wait_random_exponential(multiplier=2, max=min(poll, 120.0)),
            stop=tenacity.stop_after_attempt(_ATTEMPTS),
            sleep=self._sleep,
            before_sleep=self._log_retry,
            reraise=True,
        )
        try:
            retrying(self._cycle)
        except TransientError as exc:
            self.log.error("account unreachable; next try at the next cycle", error=str(exc))
            return poll
        except AuthenticationError as exc:
            if not self._auth_reported:
                self.log.error(
                    "login refused: fix the credentials, then reload the service (restart "
                    "it when they come from LoadCredential= or EnvironmentFile=)",
                    error=str(exc),
                    retry_every_minutes=int(AUTH_RETRY.total_seconds() // 60),
                )
                self._auth_reported = True
            return AUTH_RETRY.total_seconds()
        except (ConnectorError, UnsupportedKind) as exc:
            self.log.error("cycle failed", error=str(exc), error_type=type(exc).__name__)
            return poll
        except Exception as exc:  # a bug here must not end the account's loop
            # Only where it happened: a database error's text may quote a row of mail.
            self.log.error("internal error", error_type=type(exc).__name__, where=_where(exc))
            return poll
        if self._auth_reported:
            self.log.info("login accepted again")
            self._auth_reported = False
        return None

    def _cycle(self) -> None:
        """Sync, evaluate, draft; one summary line."""
        daemon, account, stop = self.daemon, self.account, self.stop
        started = time.monotonic()
        synced = sync_account(
            daemon.store,
            account.name,
            account.kind,
            open_connector(self.config, account, stop),
            on_progress=self.beat,
            stop=stop,
        )
        stop.raise_if_set()
        now = datetime.now(UTC)
        with daemon.evaluating:
            statuses = evaluate_team(daemon.store, self.config, now, account=account.name)
        self.beat()
        stop.raise_if_set()
        playbooks = self.generation.playbooks
        outcomes = AccountDrafts(daemon.store, self.config, account, playbooks, now).run(statuses)
        for outcome in outcomes:
            self.log.info(
                "draft", prospect=outcome.prospect, stage=outcome.stage, action=outcome.action
            )
        self.log.info(
            "cycle done",
            fetched=synced.fetched,
            removed=synced.removed,
            statuses=dict(Counter(str(status.status) for status in statuses)),
            drafts=dict(Counter(outcome.action for outcome in outcomes)),
            seconds=round(time.monotonic() - started, 3),
        )

    # -- waiting ---------------------------------------------------------------------

    def _sleep(self, seconds: float) -> None:
        """Sleep, looking up every tick and renewing the lease now and then; `Shutdown`
        when asked to stop."""
        deadline = time.monotonic() + seconds
        renewed = time.monotonic()
        while (remaining := deadline - time.monotonic()) > 0:
            self.beat()
            if self.stop.wait(min(_TICK, remaining)):
                raise Shutdown
            if time.monotonic() - renewed > _RENEW:
                self._leased()
                renewed = time.monotonic()
        self.stop.raise_if_set()

    def _sleep_or_idle(self, delay: float | None, poll: float) -> None:
        """After a failure sleep `delay`; after a success wait for new mail (IDLE) for at
        most `poll`, or sleep where the mailbox cannot tell."""
        if delay is not None:
            self._sleep(delay)
            return
        started = time.monotonic()
        woken = False
        try:
            with open_connector(self.config, self.account) as connector:
                if isinstance(connector, MailWaiter):
                    woken = connector.wait_for_mail(poll, self._should_stop)
        except (ConnectorError, UnsupportedKind) as exc:
            self.log.info("waiting without IDLE", error=str(exc))
        self.stop.raise_if_set()
        if not woken:
            self._sleep(poll - (time.monotonic() - started))

    def _should_stop(self) -> bool:
        self.beat()
        return self.stop.is_set()

    # -- the lease -------------------------------------------------------------------

    def _leased(self) -> bool:
        ttl = max(_LEASE, 3 * self.config.daemon.poll_interval)
        try:
            held = leases.acquire(
                self.daemon.store,
                self.account.name,
                self.daemon.worker_id,
                now=datetime.now(UTC),
                ttl=ttl,
            )
        except Exception as exc:  # the database is down: try again next time
            self.log.error("lease failed", error_type=type(exc).__name__, error=str(exc)[:200])
            return False
        if not held and not self._lease_reported:
            self.log.info("account leased by another worker; waiting for it to expire")
        self._lease_reported = not held
        return held

    def _release(self) -> None:
        try:
            leases.release(self.daemon.store, self.account.name, self.daemon.worker_id)
        except Exception as exc:
            self.log.warning("lease not released", error_type=type(exc).__name__)

    def _log_retry(self, state: tenacity.RetryCallState) -> None:
        outcome: Any = state.outcome
        wait = state.next_action.sleep if state.next_action is not None else 0.0
        self.log.warning(
            "transient error; retrying",
            attempt=state.attempt_number,
            retry_in_seconds=round(wait, 1),
            error=str(outcome.exception()) if outcome is not None else "",
        )


def _where(exc: BaseException) -> str:
    """The innermost frame of Relight's own code that the exception passed: file:line."""
    found = "unknown"
    traceback = exc.__traceback__
    while traceback is not None:
        path = Path(traceback.tb_frame.f_code.co_filename)
        if path.parent.name in ("daemon", "rules", "connectors"):
            found = f"{path.parent.name}/{path.name}:{traceback.tb_lineno}"
        traceback = traceback.tb_next
    return found
