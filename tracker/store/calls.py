"""The call store: saves one run's records in one transaction and returns what changed.

``record_run`` is the only writer of calls. It diffs every scraped record against the
stored version (``tracker.store.diff``), upserts the rows with the dialect's ``ON CONFLICT``
(the same code path on SQLite and PostgreSQL), appends the change events and logs the run.
Absence rule: a call missing from a *complete* run gets one strike; at two consecutive
strikes it is marked not listed (``removed_from_source``). It is never deleted, and a
partial, failed or suspicious run never strikes anything.
Drift rule (``tracker.store.drift``): each run is judged against the source's last good run and,
when complete, against the median call count of its last ok runs (a sharp fall, 40 calls to
1, is suspicious); a suspicious run is logged as such, marks nothing removed and keeps every
stored value its records leave empty, so a changed layout neither removes calls nor blanks
their fields.
Status rule (``tracker.status.status_for``): a call's status follows its dates wherever
they are known, and time moves it without a scrape: a forthcoming call opens on its opening
date, an open one closes after its last cut-off. Two halves keep that true between scrapes:

- ``refresh_statuses(now)`` is a step of the cycle (``run --once`` before matching, the
  daemon every few minutes): it stores the status each call has at ``now`` and records the
  move as the change event a scrape would have (``opened``, ``closed``), so the existing
  notify path tells each subscriber once. Exactly once, even beside a scrape or a second
  process: the update is conditional on the fingerprint it read, and the event is written
  only by the transaction whose update landed; ``record_run`` locks the rows it diffs
  (``FOR UPDATE`` on PostgreSQL; SQLite has one writer at a time).
- Reads that take ``now`` (``get_call``, ``list_calls``, ``StoredCall.as_of``) show the
  status at ``now`` by the same rule, so ``calls list``, ``match`` and the exports are right
  even when the refresh step has not run yet, and looking writes nothing.

Chosen over deriving at read time only, because subscribers are told through change
events: a status that is never stored never becomes an event.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from tracker.dates import isoformat_utc
from tracker.errors import NotFoundError
from tracker.models import (
    CallRecord,
    CallStatus,
    Change,
    ChangeKind,
    RunOutcome,
    ScrapeResult,
    fingerprint_of_text,
)
from tracker.status import as_of
from tracker.store.db import (
    JSONText,
    call_listing_table,
    calls_table,
    change_from_row,
    changes_table,
    chunks,
    insert_for,
)
from tracker.store.db import source_runs_table as runs_table
from tracker.store.diff import (
    DEGRADED_FILLABLE,
    SUSPICIOUS_FILLABLE,
    diff_calls,
    fill_missing,
    removed_change,
)
from tracker.store.drift import (
    DEFAULT_EXPECTED,
    FALL_WINDOW,
    KeptCall,
    assess_run,
    last_good_count,
)
from tracker.store.drift import outcome as judged_outcome
from tracker.store.listing import write_listing

log = logging.getLogger(__name__)

#: in a run's notes: an operator took this run's count as the source's level (``accept_level``)
LEVEL_ACCEPTED = "level accepted by an operator"

#: complete runs in a row without a call before it is marked not listed
MISSING_RUNS_BEFORE_REMOVAL = 2



@dataclass(frozen=True)
class StoredCall:
    """A call as stored: its latest record plus what the store knows about its life."""

    record: CallRecord
    first_seen: datetime
    last_seen: datetime
    last_changed: datetime
    still_listed: bool

    @property
    def id(self) -> str:
        return self.record.id

    def as_of(self, now: datetime) -> StoredCall:
        """This call with the status it has at ``now`` (``tracker.status.status_for``)."""
        record = as_of(self.record, now)
        return self if record is self.record else replace(self, record=record)


@dataclass(frozen=True)
class RunReport:
    """What saving one run did."""

    run_id: int
    source: str
    outcome: RunOutcome
    items_seen: int
    new: int
    changed: int
    invalid: int
    #: left out of the repr: asyncio.run writes the repr of the task's result when it
    #: restores the SIGINT handler, which for a first scrape of the portal is 10,000
    #: events (a few percent of ``callwatch scrape``, issue 15)
    changes: list[Change] = field(default_factory=list, repr=False)
    error: str | None = None


@dataclass(frozen=True)
class SourceRun:
    """One line of the source-run log."""

    id: int
    source: str
    started_at: datetime
    finished_at: datetime | None
    outcome: RunOutcome
    items_seen: int
    new: int
    changed: int
    invalid: int
    error: str | None
    notes: str | None


def _insert_changes(connection: Connection, changes: Sequence[Change], run_id: int | None) -> None:
    """Append ``changes`` to the history; ``run_id`` None for a move the clock made."""
    rows = [{"call_id": c.call_id, "run_id": run_id, "at": c.at, "kind": c.kind.value,
             "field": c.field, "old": c.old, "new": c.new} for c in changes]
    for chunk in chunks(rows):
        connection.execute(changes_table.insert(), list(chunk))


def _record_of(row: Any) -> CallRecord:
    return CallRecord.model_validate(row.record)


def _stored(row: Any) -> StoredCall:
    return StoredCall(
        record=_record_of(row),
        first_seen=row.first_seen,
        last_seen=row.last_seen,
        last_changed=row.last_changed,
        still_listed=row.still_listed,
    )


def _run(row: Any) -> SourceRun:
    return SourceRun(
        id=row.id, source=row.source, started_at=row.started_at, finished_at=row.finished_at,
        outcome=RunOutcome(row.outcome), items_seen=row.items_seen, new=row.new,
        changed=row.changed, invalid=row.invalid, error=row.error, notes=row.notes,
    )


class Store:
    """All reads and writes of calls, their history and the run log."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # -- writing -------------------------------------------------------------------------

    def record_run(
        self,
        source: str,
        result: ScrapeResult,
        *,
        started_at: datetime,
        now: datetime,
        expected_fields: Sequence[str] = DEFAULT_EXPECTED,
    ) -> RunReport:
        """Save one run of ``source`` in one transaction and return its change events.

        ``expected_fields`` are what every item of this source should have (a feed gives no
        deadlines); drift detection judges the run by them and by the last good run.
        """
        records: dict[str, CallRecord] = {}
        for record in result.records:
            if record.source != source:
                raise ValueError(f"record {record.id} does not belong to source {source!r}")
            records[record.id] = record  # a later duplicate in the same run wins
        digests = {f"{source}:{native_id}": digest for native_id, digest in result.digests.items()}
        with self.engine.begin() as connection:
            kept, moved, touched = self._read_unchanged(connection, source, result.unchanged, now)
            for record in moved:  # time moved its status: stored again, as a scrape would
                records[record.id] = record
                digests[record.id] = result.unchanged[record.native_id][0]
            verdict = assess_run(result, self._last_good_items(connection, source),
                                 expected_fields=expected_fields,
                                 recent_ok_calls=self._recent_ok_calls(connection, source),
                                 kept=kept)
            outcome = judged_outcome(result, verdict)
            error = result.error
            if verdict.suspicious:
                error = "; ".join(filter(None, (error, f"suspicious: {verdict.describe()}")))
                log.warning("suspicious run source=%s reasons=%s", source, verdict.describe())
            run_id: int = connection.execute(
                runs_table.insert().values(
                    source=source, started_at=started_at, finished_at=None,
                    outcome=outcome.value, items_seen=len(records) + len(touched), new=0,
                    changed=0,
                    invalid=result.invalid, error=error,
                    notes="; ".join(result.notes) or None,
                )
            ).inserted_primary_key[0]  # type: ignore[index]  # always set by INSERT
            keep = (SUSPICIOUS_FILLABLE if verdict.suspicious
                    else DEGRADED_FILLABLE if result.degraded else ())
            changes = self._upsert_calls(connection, list(records.values()), now, keep=keep,
                                         digests=digests)
            self._touch(connection, touched, now)
            seen = set(records) | set(touched)
            if outcome is RunOutcome.OK:
                changes += self._strike_missing(connection, source, seen, now)
            new = sum(1 for c in changes if c.kind is ChangeKind.NEW)
            changed = len({c.call_id for c in changes if c.kind is not ChangeKind.NEW})
            connection.execute(
                runs_table.update().where(runs_table.c.id == run_id)
                .values(finished_at=now, new=new, changed=changed)
            )
            _insert_changes(connection, changes, run_id)
        log.info("stored run source=%s outcome=%s items=%d new=%d changed=%d invalid=%d",
                 source, outcome.value, len(seen), new, changed, result.invalid)
        return RunReport(run_id=run_id, source=source, outcome=outcome, items_seen=len(seen),
                         new=new, changed=changed, invalid=result.invalid, changes=changes,
                         error=error)

    @staticmethod
    def _last_good_items(connection: Connection, source: str) -> int | None:
        """Items seen by the source's newest ok or partial run (None: none yet)."""
        good = [RunOutcome.OK.value, RunOutcome.PARTIAL.value]
        rows = connection.execute(
            sa.select(runs_table.c.outcome, runs_table.c.items_seen)
            .where(runs_table.c.source == source, runs_table.c.outcome.in_(good))
            .order_by(runs_table.c.id.desc()).limit(1)
        ).all()
        return last_good_count((RunOutcome(row.outcome), row.items_seen) for row in rows)

    @staticmethod
    def _recent_ok_calls(connection: Connection, source: str) -> list[int]:
        """Calls seen by the source's latest ok runs, newest first (drift's sharp-fall rule);
        only runs after the last level an operator accepted (``accept_level``)."""
        accepted = connection.execute(
            sa.select(sa.func.max(runs_table.c.id))
            .where(runs_table.c.source == source, runs_table.c.notes.contains(LEVEL_ACCEPTED))
        ).scalar()
        query = (sa.select(runs_table.c.items_seen)
                 .where(runs_table.c.source == source, runs_table.c.outcome == RunOutcome.OK.value)
                 .order_by(runs_table.c.id.desc()).limit(FALL_WINDOW))
        if accepted is not None:
            query = query.where(runs_table.c.id > accepted)
        return list(connection.execute(query).scalars())

    def accept_level(self, source: str, now: datetime) -> SourceRun | None:
        """Take the source's latest run as its normal level after a fall that is real.

        Drift cannot tell a real fall (39 of 40 calls withdrawn at once) from a broken page,
        so a source that really shrank would stay suspicious, and its missing calls listed,
        for good. An operator who has checked the site says so (`callwatch sources --accept`):
        the latest run's notes record it, the sharp-fall rule then compares only with ok runs
        after it, and the next run at the new level is an ordinary ok run that marks the
        missing calls removed (two strikes, as always). The accepted run itself keeps its
        outcome: the history stays what happened. None when the source never ran.
        """
        with self.engine.begin() as connection:
            latest = connection.execute(
                sa.select(runs_table.c.id, runs_table.c.notes)
                .where(runs_table.c.source == source)
                .order_by(runs_table.c.id.desc()).limit(1)
            ).first()
            if latest is None:
                return None
            note = f"{LEVEL_ACCEPTED} at {isoformat_utc(now)}"
            connection.execute(runs_table.update().where(runs_table.c.id == latest.id).values(
                notes="; ".join(filter(None, (latest.notes, note)))))
            row = connection.execute(sa.select(runs_table).where(runs_table.c.id == latest.id)).one()
        return _run(row)

    @staticmethod
    def _read_unchanged(
        connection: Connection, source: str, unchanged: Mapping[str, tuple[str, CallStatus]],
        now: datetime,
    ) -> tuple[list[KeptCall], list[CallRecord], list[str]]:
        """The calls a run listed with their stored rows (``ScrapeResult.unchanged``): each
        as drift sees it, the records whose status time moved (stored again through the
        diff, as a scrape would store them), and the ids of the rest, whose stored record
        is the run's reading and which are only marked seen (``_touch``).

        A stored row whose digest is no longer the one the source was told (another process
        stored the call meanwhile) is only marked seen: its record is newer than the run's.
        """
        kept: list[KeptCall] = []
        moved: list[CallRecord] = []
        touched: list[str] = []
        ids = sorted(f"{source}:{native_id}" for native_id in unchanged)
        for chunk in chunks(ids):
            rows = connection.execute(
                sa.select(calls_table.c.id, calls_table.c.native_id, calls_table.c.raw_digest,
                          calls_table.c.status, calls_table.c.title, calls_table.c.url,
                          calls_table.c.final_deadline)
                .where(calls_table.c.id.in_(chunk)).order_by(calls_table.c.id)
                .with_for_update()
            ).all()
            stale = []
            for row in rows:
                kept.append(KeptCall(row.native_id, row.title, row.url,
                                     row.final_deadline is not None))
                digest, status = unchanged[row.native_id]
                if row.raw_digest == digest and row.status != status.value:
                    stale.append(row.id)
                else:
                    touched.append(row.id)
            if stale:
                for stored in connection.execute(
                        sa.select(calls_table.c.native_id, calls_table.c.record)
                        .where(calls_table.c.id.in_(stale)).order_by(calls_table.c.id)):
                    moved.append(_record_of(stored).model_copy(
                        update={"status": unchanged[stored.native_id][1]}))
        return kept, moved, touched

    @staticmethod
    def _touch(connection: Connection, ids: Sequence[str], now: datetime) -> None:
        """Mark seen by this run the calls whose stored record is its reading: what the
        upsert writes for a record equal to the stored one, without reading or writing it."""
        for chunk in chunks(ids):
            connection.execute(calls_table.update().where(calls_table.c.id.in_(chunk))
                               .values(last_seen=now, still_listed=True, missing_runs=0))

    def _upsert_calls(
        self, connection: Connection, records: list[CallRecord], now: datetime,
        *, keep: tuple[str, ...] = (), digests: Mapping[str, str] | None = None,
    ) -> list[Change]:
        """Upsert ``records``; fields named in ``keep`` that a record leaves empty keep their
        stored values (degraded and suspicious runs). ``digests`` (call id → digest of the
        source row) are stored with the records that are exactly their rows' reading."""
        digests = digests or {}
        changes: list[Change] = []
        for chunk in chunks(records):
            ids = [r.id for r in chunk]
            # locked (PostgreSQL) so the refresh step cannot record a status move this diff
            # is about to record too; in id order, so two runs never wait on each other
            existing = {
                row.id: row
                for row in connection.execute(
                    sa.select(calls_table.c.id, calls_table.c.record, calls_table.c.fingerprint,
                              calls_table.c.first_seen, calls_table.c.last_changed)
                    .where(calls_table.c.id.in_(ids)).order_by(calls_table.c.id)
                    .with_for_update()
                )
            }
            rows = []
            rewritten: list[CallRecord] = []
            for read in chunk:
                previous = existing.get(read.id)
                record = read
                if keep and previous is not None:
                    record = fill_missing(_record_of(previous), read, keep)
                dumped = record.model_dump(mode="json")
                text = json.dumps(dumped)  # once: the fingerprint's and the column's
                fingerprint = fingerprint_of_text(text)
                if previous is not None and previous.fingerprint == fingerprint:
                    events: list[Change] = []
                else:
                    old = _record_of(previous) if previous is not None else None
                    events = diff_calls(old, record, now)
                    rewritten.append(record)
                changes.extend(events)
                rows.append({
                    "id": record.id,
                    "source": record.source,
                    "native_id": record.native_id,
                    "programme": record.programme,
                    "status": record.status.value,
                    "title": record.title,
                    "call_identifier": record.call_identifier,
                    "topic_identifier": record.topic_identifier,
                    "url": record.url,
                    "final_deadline": record.deadlines[-1] if record.deadlines else None,
                    "record": JSONText(dumped, text),
                    "fingerprint": fingerprint,
                    "raw_digest": digests.get(record.id) if record is read else None,
                    "first_seen": previous.first_seen if previous is not None else now,
                    "last_seen": now,
                    "last_changed": now if events or previous is None else previous.last_changed,
                    "still_listed": True,
                    "missing_runs": 0,
                })
            statement = insert_for(connection, calls_table)
            statement = statement.on_conflict_do_update(
                index_elements=[calls_table.c.id],
                set_={name: statement.excluded[name] for name in rows[0] if name != "id"},
            )
            connection.execute(statement, rows)
            write_listing(connection, rewritten)  # an unchanged record keeps its keys
        return changes

    def _strike_missing(
        self, connection: Connection, source: str, seen: set[str], now: datetime
    ) -> list[Change]:
        listed = connection.execute(
            sa.select(calls_table.c.id, calls_table.c.missing_runs).where(
                calls_table.c.source == source, calls_table.c.still_listed.is_(True)
            )
        ).all()
        changes: list[Change] = []
        for call_id, missing_runs in listed:
            if call_id in seen:
                continue
            strikes = missing_runs + 1
            gone = strikes >= MISSING_RUNS_BEFORE_REMOVAL
            connection.execute(
                calls_table.update().where(calls_table.c.id == call_id)
                .values(missing_runs=strikes, still_listed=not gone)
            )
            if gone:
                changes.append(removed_change(call_id, now))
        return changes

    def refresh_statuses(self, now: datetime) -> list[Change]:
        """Store the status every call has at ``now`` and return the moves as change events.

        A step of the cycle, run with no scrape: a forthcoming call whose opening date has
        passed becomes open (``opened``), one whose last cut-off has passed closed
        (``closed``), by ``tracker.status.status_for``. Only calls time can move are
        read: forthcoming ones, and open ones whose final deadline has passed. Each move is
        its own short transaction whose update is conditional on the fingerprint read, so
        a scrape or another process that stored the call meanwhile wins and no move is
        recorded twice.
        """
        due = sa.or_(
            calls_table.c.status == CallStatus.FORTHCOMING.value,
            sa.and_(calls_table.c.status == CallStatus.OPEN.value,
                    calls_table.c.final_deadline < now),
        )
        with self.engine.connect() as connection:
            rows = connection.execute(
                sa.select(calls_table.c.id, calls_table.c.record, calls_table.c.fingerprint)
                .where(due).order_by(calls_table.c.id)
            ).all()
        changes: list[Change] = []
        for row in rows:
            old = _record_of(row)
            new = as_of(old, now)
            if new is old:
                continue
            events = diff_calls(old, new, now)
            with self.engine.begin() as connection:
                moved = connection.execute(
                    calls_table.update()
                    .where(calls_table.c.id == row.id, calls_table.c.fingerprint == row.fingerprint)
                    .values(status=new.status.value, record=new.model_dump(mode="json"),
                            fingerprint=new.fingerprint(), last_changed=now)
                ).rowcount
                if moved != 1:  # stored again since it was read: that writer told the change
                    continue
                connection.execute(call_listing_table.update()
                                   .where(call_listing_table.c.call_id == row.id)
                                   .values(status=new.status.value))
                _insert_changes(connection, events, run_id=None)
            log.info("status moved by the clock call=%s from=%s to=%s", row.id,
                     old.status.value, new.status.value)
            changes.extend(events)
        return changes

    # -- reading -------------------------------------------------------------------------

    def raw_digests(self, source: str) -> dict[str, str]:
        """The digest of each stored call's source row (native id → digest), for a source
        that leaves unchanged rows unread (``tracker.ports.SkipsUnchanged``)."""
        with self.engine.connect() as connection:
            return {row.native_id: row.raw_digest for row in connection.execute(
                sa.select(calls_table.c.native_id, calls_table.c.raw_digest)
                .where(calls_table.c.source == source, calls_table.c.raw_digest.is_not(None)))}

    def get_call(self, call_id: str, now: datetime | None = None) -> StoredCall:
        """The stored call ``call_id`` (with its status at ``now`` when given); raise
        NotFoundError if there is none."""
        with self.engine.connect() as connection:
            row = connection.execute(
                sa.select(calls_table).where(calls_table.c.id == call_id)
            ).first()
        if row is None:
            raise NotFoundError(f"no call with id {call_id!r} (ids look like ft_portal:HORIZON-…)")
        stored = _stored(row)
        return stored if now is None else stored.as_of(now)

    def list_calls(
        self,
        *,
        statuses: Iterable[CallStatus] | None = None,
        programme: str | None = None,
        source: str | None = None,
        search: str | None = None,
        listed_only: bool = False,
        now: datetime | None = None,
    ) -> list[StoredCall]:
        """Calls matching the filters, soonest final deadline first (no deadline last).

        With ``now``, each call carries its status at ``now`` and ``statuses`` filters on
        that: a call stored forthcoming whose opening date has passed is listed as open.
        """
        wanted = None if statuses is None else {CallStatus(s) for s in statuses}
        query = sa.select(calls_table)
        if wanted is not None:
            # time moves forthcoming and open calls (refresh_statuses): read them to judge
            stored = wanted if now is None else wanted | {CallStatus.FORTHCOMING, CallStatus.OPEN}
            query = query.where(calls_table.c.status.in_(sorted(s.value for s in stored)))
        if programme:
            query = query.where(sa.func.lower(calls_table.c.programme) == programme.lower())
        if source:
            query = query.where(calls_table.c.source == source)
        if listed_only:
            query = query.where(calls_table.c.still_listed.is_(True))
        query = query.order_by(
            calls_table.c.final_deadline.is_(None), calls_table.c.final_deadline, calls_table.c.id
        )
        with self.engine.connect() as connection:
            calls = [_stored(row) for row in connection.execute(query)]
        if now is not None:
            calls = [c.as_of(now) for c in calls]
            if wanted is not None:
                calls = [c for c in calls if c.record.status in wanted]
        if search:
            needle = search.casefold()
            calls = [
                c for c in calls
                if needle in " ".join((c.record.title, c.record.summary, c.id,
                                       *c.record.keywords)).casefold()
            ]
        return calls

    def history(self, call_id: str) -> list[Change]:
        """Every change event of ``call_id``, oldest first; NotFoundError if unknown."""
        self.get_call(call_id)
        with self.engine.connect() as connection:
            rows = connection.execute(
                sa.select(changes_table).where(changes_table.c.call_id == call_id)
                .order_by(changes_table.c.id)
            ).all()
        return [change_from_row(row) for row in rows]

    def runs(self, source: str | None = None, limit: int = 20) -> list[SourceRun]:
        """The latest runs, newest first."""
        query = sa.select(runs_table).order_by(runs_table.c.id.desc()).limit(limit)
        if source:
            query = query.where(runs_table.c.source == source)
        with self.engine.connect() as connection:
            return [_run(row) for row in connection.execute(query)]
