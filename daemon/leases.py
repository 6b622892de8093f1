"""One worker per account at a time: leases in the store, for daemons sharing a database.

Several `relight run` processes may share one PostgreSQL database (SPEC section 9). Before
each cycle a worker takes, or renews, the account's lease: a row naming the worker and
when the lease expires. It succeeds when no lease exists, when the lease is its own, or
when the other worker's lease has expired (that worker died or hangs); one statement
does the test and the write, so two workers never both win. A worker that stops releases
its leases; one that dies leaves them to expire, except to a worker on the same host,
which sees that the holder's process is gone (the default worker id is host:pid) and
takes over at once: a daemon restarted after a crash does not wait for its own leases.
Drafts stay single even in the moment two workers might overlap: their rows and the
Drafts folder are keyed (`daemon.drafting`).
"""

from __future__ import annotations

import os
import socket
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from daemon.database import write_transaction
from daemon.models import leases
from daemon.store import Store

__all__ = ["acquire", "default_worker_id", "gone_from_this_host", "release"]


def default_worker_id() -> str:
    """host:pid, unless `daemon.worker_id` names the worker."""
    return f"{socket.gethostname()}:{os.getpid()}"


def gone_from_this_host(worker: str) -> bool:
    """Is `worker` a default id (host:pid) of this host whose process no longer runs?"""
    host, _, pid = worker.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:  # alive, but not ours to signal
        return False
    return False


def acquire(store: Store, account: str, worker: str, *, now: datetime, ttl: timedelta) -> bool:
    """Take or renew the account's lease until `now + ttl`; False when another worker
    holds a lease that has not expired and whose process may still run."""
    dialect = postgresql if store.engine.dialect.name == "postgresql" else sqlite
    insert = dialect.insert(leases).values(
        account_name=account, worker_id=worker, expires_at=now + ttl
    )
    statement = insert.on_conflict_do_update(
        index_elements=[leases.c.account_name],
        set_={"worker_id": worker, "expires_at": now + ttl},
        where=or_(leases.c.worker_id == worker, leases.c.expires_at < now),
    )
    with write_transaction(store.engine) as connection:
        connection.execute(statement)
        holder = connection.execute(
            select(leases.c.worker_id).where(leases.c.account_name == account)
        ).scalar_one()
        if holder != worker and gone_from_this_host(holder):
            connection.execute(
                update(leases)
                .where(leases.c.account_name == account, leases.c.worker_id == holder)
                .values(worker_id=worker, expires_at=now + ttl)
            )
            holder = worker
    return bool(holder == worker)


def release(store: Store, account: str, worker: str) -> None:
    """Give the account's lease back (only if it is this worker's)."""
    with write_transaction(store.engine) as connection:
        connection.execute(
            delete(leases).where(leases.c.account_name == account, leases.c.worker_id == worker)
        )
