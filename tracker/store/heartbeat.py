"""The scheduler's heartbeat: how `callwatch status`, in another process, knows the daemon lives.

The running scheduler calls ``write_heartbeat`` regularly (every minute, with the
dispatcher) with the next run time of each job, and ``mark_stopped`` when it shuts down
cleanly. One row per database (there is one scheduler per database), in
``scheduler_heartbeats``. A beat older than ``STALE_AFTER`` means the process died or hangs:
``scheduler_state`` then says "stale" rather than "running".
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy.engine import Engine
from sqlmodel import Session

from tracker.dates import isoformat_utc
from tracker.store.db import HeartbeatRow, heartbeats_table, insert_for

SCHEDULER = "scheduler"
#: A heartbeat older than this means the scheduler is not running (it beats every minute;
#: this leaves room for a slow dispatcher pass and the scheduler's misfire grace).
STALE_AFTER = timedelta(minutes=5)

SchedulerState = Literal["running", "stale", "stopped", "never"]


@dataclass(frozen=True)
class ScheduledJob:
    """One job of the scheduler and when it runs next (None: paused)."""

    id: str
    next_run: datetime | None


@dataclass(frozen=True)
class Heartbeat:
    """The scheduler's last word about itself."""

    process: str
    beat_at: datetime
    stopped_at: datetime | None
    jobs: tuple[ScheduledJob, ...]


def this_process() -> str:
    """``host:pid``, so an operator can find the process that holds the scheduler."""
    return f"{socket.gethostname()}:{os.getpid()}"


def write_heartbeat(engine: Engine, now: datetime, jobs: Mapping[str, datetime | None], *,
                    process: str | None = None) -> None:
    """Record that the scheduler is alive at ``now`` and when each job (id → next run) runs next.

    The daemon calls it every minute, e.g. with
    ``{job.id: job.next_run_time for job in scheduler.get_jobs()}``.
    """
    listed = [{"id": job_id, "next_run": isoformat_utc(at)} for job_id, at in sorted(jobs.items())]
    values = {"name": SCHEDULER, "process": process or this_process(), "beat_at": now,
              "stopped_at": None, "jobs": listed}
    with engine.begin() as connection:
        statement = insert_for(connection, heartbeats_table).values(**values)
        connection.execute(statement.on_conflict_do_update(
            index_elements=[heartbeats_table.c.name],
            set_={k: v for k, v in values.items() if k != "name"}))


def mark_stopped(engine: Engine, now: datetime) -> None:
    """Record a clean shutdown, so `callwatch status` says "stopped" at once, not after minutes."""
    with engine.begin() as connection:
        connection.execute(heartbeats_table.update()
                           .where(heartbeats_table.c.name == SCHEDULER)
                           .values(stopped_at=now, jobs=[]))


def _parse(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value).astimezone(UTC) if value else None


def read_heartbeat(engine: Engine) -> Heartbeat | None:
    """The last heartbeat, or None when no scheduler ever ran on this database."""
    with Session(engine) as session:
        row = session.get(HeartbeatRow, SCHEDULER)
    if row is None:
        return None
    jobs = tuple(ScheduledJob(id=str(job["id"]), next_run=_parse(job.get("next_run")))
                 for job in row.jobs or ())
    return Heartbeat(process=row.process, beat_at=row.beat_at, stopped_at=row.stopped_at,
                     jobs=jobs)


def scheduler_state(heartbeat: Heartbeat | None, now: datetime,
                    stale_after: timedelta = STALE_AFTER) -> SchedulerState:
    """running, stale (no beat for ``stale_after``: crashed or hung), stopped, or never."""
    if heartbeat is None:
        return "never"
    if heartbeat.stopped_at is not None:
        return "stopped"
    return "running" if now - heartbeat.beat_at <= stale_after else "stale"


def heartbeat_summary(heartbeat: Heartbeat | None, now: datetime) -> dict[str, Any]:
    """The scheduler's state and next jobs, as `callwatch status --format json` shows them."""
    state = scheduler_state(heartbeat, now)
    jobs = sorted(heartbeat.jobs, key=lambda j: (j.next_run is None, j.next_run or now, j.id)) \
        if heartbeat is not None and state == "running" else []
    return {
        "state": state,
        "process": heartbeat.process if heartbeat else None,
        "last_heartbeat": isoformat_utc(heartbeat.beat_at) if heartbeat else None,
        "stopped_at": isoformat_utc(heartbeat.stopped_at) if heartbeat else None,
        "next_jobs": [{"id": job.id, "next_run": isoformat_utc(job.next_run)} for job in jobs],
    }
