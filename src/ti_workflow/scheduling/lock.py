"""On SQLite, one scheduler at a time: a lock row renewed while the scheduler lives.

SQLite has no ``SKIP LOCKED``; two schedulers would queue behind each other's write
lock and gain nothing, so a second one is refused with a message naming the holder.
The lock uses the real clock (it is about live processes, not business time). A holder
that was a process of this host and no longer exists (killed, crashed) is replaced at
once instead of after its expiry.
PostgreSQL needs no lock: claims use ``FOR UPDATE SKIP LOCKED``.
"""

from __future__ import annotations

import os
import socket
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, Table, delete, insert, select, update

from ti_workflow.errors import TiWorkflowError
from ti_workflow.scheduling.tables import SchedulerLockRow
from ti_workflow.storage.database import is_sqlite
from ti_workflow.storage.repository import utc

locks = SchedulerLockRow.__table__  # type: ignore[attr-defined]
NAME = "scheduler"


class SchedulerBusy(TiWorkflowError):
    kind = "scheduler_busy"

    def __init__(self, holder: str, since: datetime, until: datetime) -> None:
        self.holder = holder
        self.since = since
        self.until = until
        super().__init__(
            f"another scheduler ({holder}) has been running on this SQLite database since "
            f"{since.isoformat(timespec='seconds')}; SQLite allows one scheduler at a time. "
            f"Stop it, wait until its lock expires ({until.isoformat(timespec='seconds')}) "
            "if it died, or use PostgreSQL to run several schedulers."
        )


def this_process() -> str:
    """``host:pid``: how a scheduler or a sender names itself on what it claims."""
    return f"{socket.gethostname()}:{os.getpid()}"


def is_dead(holder: str) -> bool:
    """True if ``holder`` (``host:pid``) names a process of this host that no longer
    exists: its lock and claims need not wait for their expiry (a ``kill -9``, a crash).
    A holder on another host, or an unclear one, is taken to be alive."""
    host, _, pid = holder.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:  # it exists, owned by someone else
        pass
    return False


def acquire(db: Engine, holder: str, ttl: timedelta) -> bool:
    """Take or renew the lock (SQLite only; True on PostgreSQL without doing anything)."""
    if not is_sqlite(db):
        return True
    now = datetime.now(UTC)
    with db.begin() as conn:
        row = conn.execute(select(locks).where(locks.c.name == NAME)).first()
        if (
            row is not None
            and row.holder != holder
            and utc(row.expires_at) > now
            and not is_dead(row.holder)
        ):
            raise SchedulerBusy(row.holder, utc(row.acquired_at), utc(row.expires_at))
        if row is None:
            conn.execute(
                insert(locks).values(
                    name=NAME, holder=holder, acquired_at=now, expires_at=now + ttl
                )
            )
        else:
            since = utc(row.acquired_at) if row.holder == holder else now
            conn.execute(
                update(locks)
                .where(locks.c.name == NAME)
                .values(holder=holder, acquired_at=since, expires_at=now + ttl)
            )
    return True


def release(db: Engine, holder: str) -> None:
    if not is_sqlite(db):
        return
    with db.begin() as conn:
        conn.execute(delete(locks).where(locks.c.name == NAME, locks.c.holder == holder))


def release_dead_claims(db: Engine, table: Table, claimed: str, now: datetime) -> list[str]:
    """Rows (timers, messages) in status ``claimed`` held by a process of this host that no
    longer exists (``kill -9``, a crash) are due again now, not when their lease runs out."""
    c = table.c
    with db.connect() as conn:
        holders = conn.execute(
            select(c.claimed_by).where(c.status == claimed, c.lease_until >= now).distinct()
        ).scalars()
        dead = [h for h in holders if h and is_dead(h)]
    if dead:
        with db.begin() as conn:
            conn.execute(
                update(table)
                .where(c.status == claimed, c.claimed_by.in_(dead))
                .values(lease_until=now - timedelta(microseconds=1))
            )
    return dead
