"""Account leases: one worker per account at a time, a dead worker's accounts taken over."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta

from daemon import leases
from daemon.store import Store

NOW = datetime(2026, 11, 25, 9, tzinfo=UTC)
TTL = timedelta(minutes=10)


def test_one_worker_holds_an_account_until_its_lease_expires(store: Store) -> None:
    """The first worker wins and renews; the second waits until the lease has expired,
    then takes it over."""
    assert leases.acquire(store, "dana", "a:1", now=NOW, ttl=TTL)
    assert not leases.acquire(store, "dana", "b:2", now=NOW + timedelta(minutes=1), ttl=TTL)
    assert leases.acquire(store, "dana", "a:1", now=NOW + timedelta(minutes=5), ttl=TTL)
    assert not leases.acquire(store, "dana", "b:2", now=NOW + timedelta(minutes=14), ttl=TTL)
    assert leases.acquire(store, "dana", "b:2", now=NOW + timedelta(minutes=16), ttl=TTL)
    assert not leases.acquire(store, "dana", "a:1", now=NOW + timedelta(minutes=17), ttl=TTL)


def test_a_released_lease_is_free_at_once_and_only_its_holder_releases(store: Store) -> None:
    """Releasing gives the account to the next worker at once; another worker's release
    changes nothing."""
    assert leases.acquire(store, "dana", "a:1", now=NOW, ttl=TTL)
    leases.release(store, "dana", "b:2")
    assert not leases.acquire(store, "dana", "b:2", now=NOW, ttl=TTL)
    leases.release(store, "dana", "a:1")
    assert leases.acquire(store, "dana", "b:2", now=NOW, ttl=TTL)


def test_leases_are_per_account(store: Store) -> None:
    """Two workers can each hold a different account."""
    assert leases.acquire(store, "dana", "a:1", now=NOW, ttl=TTL)
    assert leases.acquire(store, "lee", "b:2", now=NOW, ttl=TTL)


def test_a_dead_process_on_this_host_leaves_its_leases_at_once(store: Store) -> None:
    """A default worker id (host:pid) of this host whose process is gone is taken over
    without waiting for the expiry; a live one is not."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    dead = f"{socket.gethostname()}:{child.pid}"
    alive = f"{socket.gethostname()}:{os.getpid()}"
    assert leases.gone_from_this_host(dead)
    assert not leases.gone_from_this_host(alive)
    assert not leases.gone_from_this_host("elsewhere.example:1")
    assert leases.acquire(store, "dana", dead, now=NOW, ttl=TTL)
    assert leases.acquire(store, "dana", "new:2", now=NOW, ttl=TTL)
    assert leases.acquire(store, "lee", alive, now=NOW, ttl=TTL)
    assert not leases.acquire(store, "lee", "new:2", now=NOW, ttl=TTL)
