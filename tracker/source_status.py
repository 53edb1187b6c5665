"""One source's health as every reader shows it: `callwatch sources` and `status`, /healthz and
/metrics, and the bot's /sources reply.

They used to compute it four ways, and disagreed: after one failed run `status` said ``ok``
while `sources` said ``amber``. ``source_status`` is now the one place that turns a source's
stored runs into its status; the rules it applies stay in ``tracker.store.drift`` (``source_health``
names the level, ``consecutive_bad`` counts the streak that turns it red), and each reader only
chooses how to print the result. ``read_statuses`` is the I/O edge that feeds it from the store.

The status depends on the run log alone, not on the time: how long ago a run was is for the
reader to print (`status` says "3 h ago"), so there is no ``now`` here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa

from tracker.config import Settings
from tracker.models import RunOutcome
from tracker.store.calls import SourceRun, Store
from tracker.store.db import source_runs_table as runs_table
from tracker.store.drift import consecutive_bad, source_health

#: How many of a source's latest runs are read: streaks are counted up to this length.
WINDOW = 50


class Level(StrEnum):
    """A source's health in one word (``tracker.store.drift.source_health`` says which)."""

    GREEN = "green"  # the last run was ok
    AMBER = "amber"  # the last run was partial, or a bad streak not yet red
    RED = "red"  # drift.RED_AFTER failed or suspicious runs in a row
    UNKNOWN = "unknown"  # never run


@dataclass(frozen=True)
class SourceStatus:
    """A configured source, its level and the runs behind it."""

    name: str
    #: a disabled source is shown but not watched: /healthz and the metrics leave it out
    enabled: bool
    level: Level
    #: why, in words: "2 failed or suspicious run(s) in a row: HTTP 503"
    reason: str
    last_run: SourceRun | None
    #: when the newest ok run finished (also older than the window)
    last_success: datetime | None
    #: runs in a row that were not ok, partial ones included (`sources`' "failures", the bot)
    consecutive_failures: int
    #: failed or suspicious runs in a row, a partial run breaks it: red at drift.RED_AFTER
    bad_in_a_row: int

    @property
    def state(self) -> str:
        """The level as `status` and `sources` print it: ``off`` for a disabled source (not
        watched, so not judged), so the two tables cannot disagree about one."""
        return self.level.value if self.enabled else "off"

    @property
    def red(self) -> bool:
        return self.level is Level.RED

    @property
    def last_outcome(self) -> RunOutcome | None:
        return self.last_run.outcome if self.last_run is not None else None

    @property
    def last_error(self) -> str | None:
        return self.last_run.error if self.last_run is not None else None


def source_status(name: str, enabled: bool, runs_newest_first: Sequence[SourceRun],
                  older_success: datetime | None = None) -> SourceStatus:
    """The status of source ``name`` from its latest runs, newest first.

    ``older_success`` is when the last ok run before these finished, for a source whose
    latest runs hold no ok one (None when unknown or when they do).
    """
    outcomes = [run.outcome for run in runs_newest_first]
    failures = next((n for n, one in enumerate(outcomes) if one is RunOutcome.OK), len(outcomes))
    last_success = next((run.finished_at for run in runs_newest_first
                         if run.outcome is RunOutcome.OK), older_success)
    last_run = runs_newest_first[0] if runs_newest_first else None
    shown = source_health(outcomes, last_run.error if last_run is not None else None)
    return SourceStatus(name=name, enabled=enabled, level=Level(shown.state), reason=shown.reason,
                        last_run=last_run, last_success=last_success,
                        consecutive_failures=failures, bad_in_a_row=consecutive_bad(outcomes))


def configured(settings: Settings) -> dict[str, bool]:
    """Every configured source, name → enabled, in the configuration's order."""
    return {name: source.enabled for name, source in settings.sources.items()}


def read_statuses(store: Store, enabled_by_name: Mapping[str, bool]) -> list[SourceStatus]:
    """The status of each source named (name → enabled), in the mapping's order."""
    statuses = []
    for name, enabled in enabled_by_name.items():
        runs = store.runs(name, limit=WINDOW)
        older = None
        if len(runs) == WINDOW and all(run.outcome is not RunOutcome.OK for run in runs):
            older = _last_success(store, name)  # rare: a long streak without an ok run
        statuses.append(source_status(name, enabled, runs, older))
    return statuses


def status_of(store: Store, source: str, *, enabled: bool = True) -> SourceStatus:
    """The status of one source (the admins' red-source alert, the tests)."""
    [status] = read_statuses(store, {source: enabled})
    return status


def _last_success(store: Store, source: str) -> datetime | None:
    ok = sa.and_(runs_table.c.source == source, runs_table.c.outcome == RunOutcome.OK.value)
    with store.engine.connect() as connection:
        found: datetime | None = connection.execute(
            sa.select(sa.func.max(runs_table.c.finished_at)).where(ok)).scalar()
    return found
