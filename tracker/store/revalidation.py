"""What a source's last good run fetched, kept so the next run can ask "changed since?" first,
and the run that is logged when nothing had changed (the rule: ``tracker.conditional``).

The list is replaced only after a run's records are stored (``Store.record_run`` has
committed), so a run that breaks off mid-way leaves the list of the run before it, whose
records are the ones stored; and a run that was not ok clears it, so the next run fetches
in full.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from tracker.conditional import Validator
from tracker.models import RunOutcome
from tracker.store.calls import RunReport
from tracker.store.db import http_validators_table as validators_table
from tracker.store.db import source_runs_table as runs_table

#: in the notes of a run whose every page answered 304
NOT_MODIFIED = "not modified: every page answered 304, calls left as they were"


def stored_validators(engine: Engine, source: str, key: str) -> list[Validator]:
    """The GETs of ``source``'s last good run, in order; empty when none are stored or they
    were stored under another ``key`` (other settings, another version of callwatch)."""
    with engine.connect() as connection:
        rows = connection.execute(
            sa.select(validators_table).where(validators_table.c.source == source)
            .order_by(validators_table.c.position)).all()
    if not rows or any(row.fetch_key != key for row in rows):
        return []
    return [Validator(row.url, row.etag, row.last_modified) for row in rows]


def keep_validators(engine: Engine, source: str, key: str,
                    validators: Sequence[Validator] | None, now: datetime) -> None:
    """Make ``validators`` the source's list (None or empty: clear it), in one transaction.
    Call it after the run they come from is stored, and only for an ok run."""
    with engine.begin() as connection:
        connection.execute(validators_table.delete().where(validators_table.c.source == source))
        if validators:
            connection.execute(validators_table.insert(), [
                {"source": source, "position": n, "url": v.url, "etag": v.etag,
                 "last_modified": v.last_modified, "fetch_key": key, "stored_at": now}
                for n, v in enumerate(validators)])


def record_unchanged(engine: Engine, source: str, *, started_at: datetime,
                     now: datetime) -> RunReport:
    """Log an ok run of ``source`` that found every page unchanged: no call is touched (none
    is new, changed or missing), and the run repeats the counts of the run it confirms (the
    newest ok run: a failed one may have been stored after it without clearing the
    validators, if the process stopped in between), so drift's sharp-fall rule sees the
    source's usual level."""
    with engine.begin() as connection:
        previous = connection.execute(
            sa.select(runs_table.c.items_seen, runs_table.c.invalid)
            .where(runs_table.c.source == source, runs_table.c.outcome == RunOutcome.OK.value)
            .order_by(runs_table.c.id.desc()).limit(1)).first()
        items, invalid = (previous.items_seen, previous.invalid) if previous else (0, 0)
        run_id: int = connection.execute(runs_table.insert().values(
            source=source, started_at=started_at, finished_at=now, outcome=RunOutcome.OK.value,
            items_seen=items, new=0, changed=0, invalid=invalid, error=None,
            notes=NOT_MODIFIED)).inserted_primary_key[0]  # type: ignore[index]  # always set by INSERT
    return RunReport(run_id=run_id, source=source, outcome=RunOutcome.OK, items_seen=items,
                     new=0, changed=0, invalid=invalid)
