"""Delivery state: subscribers in the database, the outbox, digest items and the notify cursor.

What the pipeline calls, in order:

- ``sync_subscribers`` mirrors the YAML subscribers into their tables (the bot's own
  subscribers are left alone);
- ``notify_changes`` takes every change event recorded since the last call (a cursor over
  ``call_changes``), matches the changed calls against every profile, records the matches
  and writes the alerts and digest items they cause, **in one transaction** with moving the
  cursor: a crash before the commit redoes the whole step, after it nothing is redone;
- ``enqueue_digests`` and ``enqueue_reminders`` write what is due now;
- ``tracker.dispatch`` sends what the outbox holds.

Every outbox row and digest item has a unique idempotency key (see ``tracker.planning``),
and inserts ignore a key that exists, so no message is ever enqueued twice.
"""

from __future__ import annotations

import logging
import secrets
from collections import OrderedDict, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Connection, Engine

from tracker.db import (
    CallChangeRow,
    CursorRow,
    DeliveryBodyRow,
    DeliveryRow,
    DigestItemRow,
    SubscriberChannelRow,
    SubscriberRow,
    SubscriptionRow,
)
from tracker.models import CallRecord, Change, ChangeKind
from tracker.planning import (
    Audience,
    MatchEvent,
    PlannedAlert,
    PlannedReminder,
    closing_soon,
    digest_period,
    plan_events,
    plan_reminders,
)
from tracker.ports import Message
from tracker.render import AlertItem, render_alert, render_digest, render_reminder
from tracker.rules.matcher import match_calls
from tracker.rules.profiles import Profile
from tracker.rules.store import RulesStore
from tracker.store import _insert, calls_table
from tracker.subscribers import Subscriber, quiet_until

log = logging.getLogger(__name__)

subscribers_table: sa.Table = SubscriberRow.__table__  # type: ignore[attr-defined]
channels_table: sa.Table = SubscriberChannelRow.__table__  # type: ignore[attr-defined]
subscriptions_table: sa.Table = SubscriptionRow.__table__  # type: ignore[attr-defined]
deliveries_table: sa.Table = DeliveryRow.__table__  # type: ignore[attr-defined]
bodies_table: sa.Table = DeliveryBodyRow.__table__  # type: ignore[attr-defined]
digest_items_table: sa.Table = DigestItemRow.__table__  # type: ignore[attr-defined]
cursors_table: sa.Table = CursorRow.__table__  # type: ignore[attr-defined]
changes_table: sa.Table = CallChangeRow.__table__  # type: ignore[attr-defined]

NOTIFY_CURSOR = "notify"
PENDING, SENDING, SENT, DEAD = "pending", "sending", "sent", "dead"
_CHUNK = 500
#: subscribers planned, rendered and enqueued at a time: memory is bounded by this, not by
#: the number of subscribers
SUBSCRIBER_BATCH = 1_000
#: a digest round that enqueues at least this many rows refreshes the outbox's statistics
ANALYZE_AFTER = 10_000


@dataclass(frozen=True)
class NotifyReport:
    """What one notify step did."""

    changes: int
    matches: int
    new_matches: int
    alerts: int
    digest_items: int


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


# -- subscribers -------------------------------------------------------------------------

def sync_subscribers(engine: Engine, subscribers: Sequence[Subscriber], now: datetime) -> None:
    """Mirror the YAML subscribers into the database; bot-created subscribers are untouched.

    A file subscriber that disappeared keeps its rows (its outbox history refers to it) but
    loses its subscriptions, so it receives nothing more. A Telegram chat that migrated
    keeps its new id while the file still names the old one.
    """
    with engine.begin() as connection:
        existing = {row.name: row for row in connection.execute(sa.select(subscribers_table))}
        for subscriber in subscribers:
            values = {"tenant": subscriber.tenant, "timezone": subscriber.timezone,
                      "language": subscriber.language, "quiet_hours": subscriber.quiet_hours,
                      "reminders": list(subscriber.reminders), "updated_at": now}
            row = existing.get(subscriber.name)
            if row is None:
                subscriber_id = connection.execute(subscribers_table.insert().values(
                    name=subscriber.name, origin="file", created_at=now, **values)
                ).inserted_primary_key[0]  # type: ignore[index]  # set by INSERT
            elif row.origin != "file":
                log.warning("subscriber=%s exists from the bot; the file is ignored", subscriber.name)
                continue
            else:
                subscriber_id = row.id
                connection.execute(subscribers_table.update()
                                   .where(subscribers_table.c.id == subscriber_id).values(**values))
            _sync_channels(connection, subscriber_id, subscriber)
            _sync_subscriptions(connection, subscriber_id, subscriber)
        listed = {s.name for s in subscribers}
        for name, row in existing.items():
            if row.origin == "file" and name not in listed:
                connection.execute(subscriptions_table.delete()
                                   .where(subscriptions_table.c.subscriber_id == row.id))


def _sync_channels(connection: Connection, subscriber_id: int, subscriber: Subscriber) -> None:
    current = {row.channel: row for row in connection.execute(
        sa.select(channels_table).where(channels_table.c.subscriber_id == subscriber_id))}
    wanted = subscriber.channels.configured()
    for channel in wanted:
        address = subscriber.channels.address(channel)
        fmt = subscriber.channels.webhook_format if channel == "webhook" else "generic"
        row = current.get(channel)
        if row is None:
            connection.execute(channels_table.insert().values(
                subscriber_id=subscriber_id, channel=channel, address=address,
                configured_address=address, webhook_format=fmt, active=True))
        elif row.configured_address != address:  # the file changed: start afresh
            connection.execute(channels_table.update().where(channels_table.c.id == row.id).values(
                address=address, configured_address=address, webhook_format=fmt, active=True,
                note=None))
        elif row.webhook_format != fmt:
            connection.execute(channels_table.update().where(channels_table.c.id == row.id)
                               .values(webhook_format=fmt))
    for channel, row in current.items():
        if channel not in wanted:
            connection.execute(channels_table.delete().where(channels_table.c.id == row.id))


def _sync_subscriptions(connection: Connection, subscriber_id: int, subscriber: Subscriber) -> None:
    current = {row.profile: row for row in connection.execute(
        sa.select(subscriptions_table).where(subscriptions_table.c.subscriber_id == subscriber_id))}
    for subscription in subscriber.subscriptions:
        channels = list(subscription.channels) if subscription.channels else None
        row = current.get(subscription.profile)
        if row is None:
            connection.execute(subscriptions_table.insert().values(
                subscriber_id=subscriber_id, profile=subscription.profile, mode=subscription.mode,
                channels=channels, token=secrets.token_urlsafe(24)))
        elif row.mode != subscription.mode or row.channels != channels:
            connection.execute(subscriptions_table.update().where(subscriptions_table.c.id == row.id)
                               .values(mode=subscription.mode, channels=channels))
    wanted = {s.profile for s in subscriber.subscriptions}
    for profile, row in current.items():
        if profile not in wanted:
            connection.execute(subscriptions_table.delete().where(subscriptions_table.c.id == row.id))


def audiences(connection: Connection, now: datetime, available: Iterable[str],
              profiles: Iterable[str] | None = None,
              id_range: tuple[int, int] | None = None) -> list[Audience]:
    """Every subscription with the subscriber's active, available channels (none: skipped).

    ``id_range`` (first and last subscriber id, inclusive) reads one batch of subscribers,
    so callers can walk 100,000 of them with memory bounded by the batch.
    """
    usable = set(available)
    channel_query = sa.select(channels_table).where(channels_table.c.active.is_(True))
    subscriber_query = sa.select(subscribers_table)
    query = sa.select(subscriptions_table)
    if id_range is not None:
        channel_query = channel_query.where(channels_table.c.subscriber_id.between(*id_range))
        subscriber_query = subscriber_query.where(subscribers_table.c.id.between(*id_range))
        query = query.where(subscriptions_table.c.subscriber_id.between(*id_range))
    channel_rows = defaultdict(list)
    for row in connection.execute(channel_query).all():  # fetchall: psycopg's fetchone is slow
        if row.channel in usable:
            channel_rows[row.subscriber_id].append(row.channel)
    subscribers = {row.id: row for row in connection.execute(subscriber_query).all()}
    if profiles is not None:
        query = query.where(subscriptions_table.c.profile.in_(list(profiles)))
    result: list[Audience] = []
    for row in connection.execute(query.order_by(subscriptions_table.c.id)).all():
        subscriber = subscribers[row.subscriber_id]
        if subscriber.muted_until is not None and subscriber.muted_until > now:
            continue
        channels = [c for c in channel_rows[row.subscriber_id] if row.channels is None or c in row.channels]
        if not channels:
            continue
        result.append(Audience(
            subscriber_id=subscriber.id, subscriber=subscriber.name, profile=row.profile,
            mode=row.mode, channels=tuple(sorted(channels)), timezone=subscriber.timezone,
            quiet_hours_end=quiet_until(subscriber.quiet_hours, subscriber.timezone, now),
            reminders=tuple(subscriber.reminders),
            token=row.token))
    return result


def subscriber_batches(connection: Connection, size: int = SUBSCRIBER_BATCH,
                       name: str | None = None) -> Iterator[tuple[int, int]]:
    """Consecutive (first id, last id) ranges of at most ``size`` subscribers, by id."""
    after = 0
    while True:
        query = (sa.select(subscribers_table.c.id).where(subscribers_table.c.id > after)
                 .order_by(subscribers_table.c.id).limit(size))
        if name is not None:
            query = query.where(subscribers_table.c.name == name)
        ids = list(connection.execute(query).scalars())
        if not ids:
            return
        yield ids[0], ids[-1]
        after = ids[-1]


# -- the notify step ---------------------------------------------------------------------

def _cursor(connection: Connection, name: str) -> int:
    value = connection.execute(sa.select(cursors_table.c.position)
                               .where(cursors_table.c.name == name)).scalar()
    return int(value or 0)


def _set_cursor(connection: Connection, name: str, position: int) -> None:
    statement = _insert(connection, cursors_table)
    connection.execute(statement.on_conflict_do_update(
        index_elements=[cursors_table.c.name], set_={"position": statement.excluded.position}),
        [{"name": name, "position": position}])


def _insert_ignoring_duplicates(connection: Connection, table: sa.Table,
                                rows: Sequence[dict[str, Any]]) -> int:
    """Insert rows, skipping any whose unique key exists; return how many were new.

    Counted with RETURNING, not ``rowcount``: psycopg reports no per-row count for an
    executemany, so the count would read 0 on PostgreSQL.
    """
    if connection.dialect.name == "postgresql" and rows:
        return _insert_ignoring_duplicates_pg(connection, table, rows)
    inserted = 0
    for chunk in _chunks(list(rows)):
        statement = (_insert(connection, table).on_conflict_do_nothing(index_elements=["key"])
                     .returning(table.c.key))
        inserted += len(connection.execute(statement, list(chunk)).all())
    return inserted


def _insert_ignoring_duplicates_pg(connection: Connection, table: sa.Table,
                                   rows: Sequence[dict[str, Any]]) -> int:
    """The same on PostgreSQL: COPY into a temporary table, then one INSERT … SELECT.

    SQLAlchemy's multi-row VALUES statements are long, new query strings that psycopg
    parses in Python page after page, and row-by-row alternatives (psycopg's pipelined
    executemany, arrays through ``unnest``) still cost tens of microseconds a row in Python:
    for the million digest items of a round for 100,000 subscribers that was most of
    ``notify_changes``. COPY formats rows in psycopg's C code.
    """
    import json
    import zlib

    import psycopg

    columns = list(rows[0])
    json_columns = {n for n, c in enumerate(columns) if isinstance(table.c[c].type, sa.JSON)}
    names = ", ".join(f'"{c}"' for c in columns)
    stage = f"_stage_{table.name}_{zlib.crc32(names.encode()):08x}"  # one per column set
    driver = connection.connection.driver_connection  # psycopg's, inside this transaction
    assert isinstance(driver, psycopg.Connection)  # noqa: S101 - the only PostgreSQL driver
    inserted = 0
    dumped: dict[int, str] = {}  # id of a value (alive in ``rows`` throughout) → its JSON
    with driver.cursor() as cursor:
        # the statements are built from the table's own names; every value goes through COPY
        cursor.execute(f'CREATE TEMP TABLE IF NOT EXISTS "{stage}" ON COMMIT DROP AS '  # noqa: S608
                       f'SELECT {names} FROM "{table.name}" WITH NO DATA')
        for chunk in _chunks(list(rows), 10_000):
            cursor.execute(f'TRUNCATE "{stage}"')
            with cursor.copy(f'COPY "{stage}" ({names}) FROM STDIN') as copy:
                for row in chunk:
                    values = [row[c] for c in columns]
                    for n in json_columns:
                        if values[n] is not None:  # rows often share one message: dump it once
                            key = id(values[n])
                            if key not in dumped:
                                dumped[key] = json.dumps(values[n])
                            values[n] = dumped[key]
                    copy.write_row(values)
            cursor.execute(f'WITH new AS (INSERT INTO "{table.name}" ({names}) '  # noqa: S608
                           f'SELECT {names} FROM "{stage}" ON CONFLICT ("key") DO NOTHING '
                           'RETURNING 1) SELECT count(*) FROM new')
            counted = cursor.fetchone()
            inserted += int(counted[0]) if counted else 0
    return inserted


def _delivery_row(key: str, audience: Audience, channel: str, kind: str, call_id: str | None,
                  message: Message | None, not_before: datetime, now: datetime) -> dict[str, Any]:
    return {"key": key, "subscriber_id": audience.subscriber_id, "channel": channel, "kind": kind,
            "call_id": call_id, "message": message and message.model_dump(mode="json"),
            "status": PENDING,
            "attempts": 0, "parts_sent": 0, "next_attempt_at": not_before, "created_at": now}


def _alert_row(plan: PlannedAlert, now: datetime,
               rendered: dict[tuple[int, str], dict[str, Any]] | None = None) -> dict[str, Any]:
    """The outbox row of an alert; ``rendered`` keeps each event's alert per time zone (and
    its per-channel forms), since every instant subscriber of a profile gets the same one."""
    cache = {} if rendered is None else rendered
    forms = cache.get((id(plan.event), plan.audience.timezone))
    if forms is None:
        item = AlertItem(call=plan.event.call, changes=plan.changes, reasons=plan.event.reasons,
                         profile=plan.event.profile)
        message = render_alert(item, now=now, timezone=plan.audience.timezone)
        forms = cache[(id(plan.event), plan.audience.timezone)] = {"": message.model_dump(mode="json")}
    if plan.channel not in forms:
        forms[plan.channel] = for_channel(forms[""], plan.channel)
    row = _delivery_row(plan.key, plan.audience, plan.channel, "alert", plan.event.call.id,
                        None, plan.not_before, now)
    row["message"] = forms[plan.channel]
    return row


def notify_changes(engine: Engine, profiles: Sequence[Profile], now: datetime,
                   available: Iterable[str]) -> NotifyReport:
    """Match the calls changed since the cursor and enqueue what that causes (one transaction)."""
    rules = RulesStore(engine)
    with engine.begin() as connection:
        start = _cursor(connection, NOTIFY_CURSOR)
        rows = list(connection.execute(sa.select(changes_table).where(changes_table.c.id > start)
                                       .order_by(changes_table.c.id)))
        if not rows:
            return NotifyReport(0, 0, 0, 0, 0)
        by_call: dict[str, list[tuple[int, Change]]] = defaultdict(list)
        for row in rows:
            by_call[row.call_id].append((row.id, Change(
                call_id=row.call_id, kind=ChangeKind(row.kind), field=row.field, old=row.old,
                new=row.new, at=row.at)))
        calls: dict[str, CallRecord] = {}
        for chunk in _chunks(sorted(by_call)):
            for row in connection.execute(sa.select(calls_table.c.id, calls_table.c.record)
                                          .where(calls_table.c.id.in_(chunk))):
                calls[row.id] = CallRecord.model_validate(row.record)
        dismissed = rules.dismissed()
        matches = match_calls(list(calls.values()), list(profiles), now, dismissed)
        recorded = rules.record_matches(matches, now, connection)
        events: list[MatchEvent] = []
        matched_now = set()
        for match in recorded:
            matched_now.add((match.profile, match.call_id))
            pairs = by_call[match.call_id]
            events.append(MatchEvent(
                profile=match.profile, call=calls[match.call_id], reasons=match.reasons,
                first_match=match.new, changes=tuple(c for _, c in pairs),
                change_ids=tuple(i for i, _ in pairs)))
        # calls that matched before but no longer do (closed, moved out of the window) still
        # tell their followers what happened
        events.extend(_former_matches(connection, calls, by_call, matched_now, dismissed))
        usable = list(available)
        alerts = items = 0
        rendered: dict[tuple[int, str], dict[str, Any]] = {}  # bounded by events × time zones
        # one list per event, so the COPY path dumps each event's reasons to JSON once
        # rather than once for each of its (up to a million) digest items
        reasons = {id(event): list(event.reasons) for event in events}
        # each batch is planned with the events of its own subscribers' profiles only, in
        # their original order (so the plan is what all events would give): 112 batches
        # of a round for 112,000 subscribers each walked all 116,000 events before
        positions: dict[str, list[int]] = defaultdict(list)
        for position, event in enumerate(events):
            positions[event.profile].append(position)
        for id_range in subscriber_batches(connection):  # memory bounded by the batch
            batch_audiences = audiences(connection, now, usable, id_range=id_range)
            wanted = sorted(p for profile in {a.profile for a in batch_audiences}
                            for p in positions.get(profile, ()))
            plan = plan_events([events[p] for p in wanted], batch_audiences, now)
            alerts += _insert_ignoring_duplicates(
                connection, deliveries_table, [_alert_row(p, now, rendered) for p in plan.alerts])
            items += _insert_ignoring_duplicates(connection, digest_items_table, [
                {"key": p.key, "subscriber_id": p.audience.subscriber_id, "mode": p.audience.mode,
                 "profile": p.event.profile, "call_id": p.event.call.id, "change_id": p.change_id,
                 "reasons": reasons[id(p.event)], "created_at": now}
                for p in plan.digest_items])
        _set_cursor(connection, NOTIFY_CURSOR, rows[-1].id)
    rules.mark_run((p.name for p in profiles), now)
    report = NotifyReport(changes=len(rows), matches=len(recorded),
                          new_matches=sum(m.new for m in recorded), alerts=alerts,
                          digest_items=items)
    log.info("notify changes=%d matches=%d new_matches=%d alerts=%d digest_items=%d",
             report.changes, report.matches, report.new_matches, report.alerts,
             report.digest_items)
    return report


def _former_matches(connection: Connection, calls: dict[str, CallRecord],
                    by_call: dict[str, list[tuple[int, Change]]], matched_now: set[tuple[str, str]],
                    dismissed: set[tuple[str, str]]) -> list[MatchEvent]:
    from tracker.db import MatchRow

    matches_table: sa.Table = MatchRow.__table__  # type: ignore[attr-defined]
    events: list[MatchEvent] = []
    ids = sorted(calls)
    for chunk in _chunks(ids):
        for row in connection.execute(sa.select(matches_table).where(matches_table.c.call_id.in_(chunk))):
            pair = (row.profile, row.call_id)
            if pair in matched_now or pair in dismissed:
                continue
            pairs = by_call[row.call_id]
            events.append(MatchEvent(
                profile=row.profile, call=calls[row.call_id], reasons=tuple(row.reasons),
                first_match=False, changes=tuple(c for _, c in pairs),
                change_ids=tuple(i for i, _ in pairs)))
    return events


# -- digests and reminders ---------------------------------------------------------------

def _call_records(connection: Connection, ids: Iterable[str]) -> dict[str, CallRecord]:
    found: dict[str, CallRecord] = {}
    for chunk in _chunks(sorted(set(ids))):
        for row in connection.execute(sa.select(calls_table.c.id, calls_table.c.record)
                                      .where(calls_table.c.id.in_(chunk))):
            found[row.id] = CallRecord.model_validate(row.record)
    return found


def _changes_of(connection: Connection, ids: Iterable[int]) -> dict[int, Change]:
    found: dict[int, Change] = {}
    for chunk in _chunks(sorted(set(ids))):
        for row in connection.execute(sa.select(changes_table).where(changes_table.c.id.in_(chunk))):
            found[row.id] = Change(call_id=row.call_id, kind=ChangeKind(row.kind), field=row.field,
                                   old=row.old, new=row.new, at=row.at)
    return found


def _matched_by_profile(connection: Connection, profiles: Iterable[str]
                        ) -> dict[str, list[tuple[CallRecord, tuple[str, ...]]]]:
    from tracker.db import DismissalRow, MatchRow

    matches_table: sa.Table = MatchRow.__table__  # type: ignore[attr-defined]
    dismissals: sa.Table = DismissalRow.__table__  # type: ignore[attr-defined]
    wanted = sorted(set(profiles))
    rows = list(connection.execute(sa.select(matches_table).where(matches_table.c.profile.in_(wanted))))
    gone = {(r.profile, r.call_id) for r in connection.execute(sa.select(dismissals))}
    records = _call_records(connection, (r.call_id for r in rows))
    result: dict[str, list[tuple[CallRecord, tuple[str, ...]]]] = defaultdict(list)
    for row in rows:
        if (row.profile, row.call_id) in gone or row.call_id not in records:
            continue
        result[row.profile].append((records[row.call_id], tuple(row.reasons)))
    return result


def build_digest(connection: Connection, subscriber_id: int, mode: str, timezone: str,
                 profiles: Sequence[str], now: datetime) -> tuple[Message | None, list[int]]:
    """The digest a subscriber would get now for ``mode``, and the digest items it covers."""
    items = list(connection.execute(sa.select(digest_items_table).where(
        digest_items_table.c.subscriber_id == subscriber_id, digest_items_table.c.mode == mode,
        digest_items_table.c.digested_at.is_(None)).order_by(digest_items_table.c.id)))
    records = _call_records(connection, (i.call_id for i in items))
    changes = _changes_of(connection, (i.change_id for i in items if i.change_id is not None))
    new: list[AlertItem] = []
    changed: list[AlertItem] = []
    for item in items:
        call = records.get(item.call_id)
        if call is None:
            continue
        change = changes.get(item.change_id) if item.change_id is not None else None
        if change is None:
            new.append(AlertItem(call=call, reasons=tuple(item.reasons), profile=item.profile))
        else:
            changed.append(AlertItem(call=call, changes=(change,), reasons=tuple(item.reasons),
                                     profile=item.profile))
    closing = [AlertItem(call=call, reasons=reasons, profile=profile)
               for profile, pairs in _matched_by_profile(connection, profiles).items()
               for call, reasons in pairs if closing_soon(call, mode, now)]
    period: Literal["daily", "weekly"] = "weekly" if mode == "weekly" else "daily"
    message = render_digest(new=new, changed=changed, closing=closing, period=period, now=now,
                            timezone=timezone)
    return message, [i.id for i in items]


#: the parts of a rendered message each channel reads (``notifiers/``); a row keeps only its
#: channel's, so a digest round for 100,000 subscribers does not write every Telegram row's
#: HTML email too. Channels not listed keep the whole message.
CHANNEL_FIELDS: dict[str, frozenset[str]] = {
    "email": frozenset({"subject", "text", "html"}),
    "telegram": frozenset({"subject", "telegram", "buttons"}),
    "webhook": frozenset({"subject", "document"}),
    "console": frozenset({"subject", "text"}),
}
_EMPTY: dict[str, Any] = {"text": "", "html": "", "telegram": [], "document": {}, "buttons": []}


def for_channel(message: dict[str, Any], channel: str) -> dict[str, Any]:
    """``message`` (outbox JSON) with the parts ``channel`` never reads emptied."""
    keep = CHANNEL_FIELDS.get(channel)
    if keep is None:
        return message
    if channel == "telegram" and not message.get("telegram"):
        keep = keep | {"text"}  # the Telegram channel falls back to the plain text
    return {k: v if k in keep or k not in _EMPTY else _EMPTY[k] for k, v in message.items()}


class _DigestRound:
    """What one digest round keeps between batches: calls, each profile's open matched calls,
    and recently rendered digests. Bounded by the calls and profiles involved, never by the
    number of subscribers; subscribers of one cluster usually get the same digest, which is
    then rendered once."""

    RENDERED = 2_000  # distinct digests kept (least recently used dropped)

    def __init__(self, now: datetime) -> None:
        self.now = now
        self.calls: dict[str, CallRecord] = {}
        self.open_matches: dict[str, list[tuple[CallRecord, tuple[str, ...]]]] = {}
        self.bodies: dict[str, int] = {}  # SHA-256 of a stored body → its id
        self._reasons: dict[str, tuple[str, ...]] = {}  # bounded by the matches of the round
        #: digest → its outbox JSON, whole under "" and trimmed per channel
        self.rendered: OrderedDict[tuple[Any, ...], dict[str, dict[str, Any]] | None] = OrderedDict()
        #: ``id()`` of each form held in ``rendered`` → the SHA-256 of its stored body once
        #: known. A cluster's digest recurs in every batch; without this its JSON was dumped
        #: and hashed again for each of them. Entries go when their digest leaves
        #: ``rendered``, so an id is never that of another, later object.
        self.form_digests: dict[int, str | None] = {}

    def reasons(self, text: str) -> tuple[str, ...]:
        """A digest item's reasons from their JSON text; the items of one match share theirs,
        so each text is parsed once (a million JSONB decodes were seconds of a round)."""
        found = self._reasons.get(text)
        if found is None:
            import json

            found = self._reasons[text] = tuple(json.loads(text))
        return found

    def load_calls(self, connection: Connection, ids: Iterable[str]) -> None:
        missing = {i for i in ids if i not in self.calls}
        self.calls.update(_call_records(connection, missing))

    def load_profiles(self, connection: Connection, profiles: Iterable[str]) -> None:
        """Matched, not dismissed calls with a cut-off still ahead, per profile (closing soon
        is chosen from these)."""
        from tracker.db import DismissalRow, MatchRow

        matches_table: sa.Table = MatchRow.__table__  # type: ignore[attr-defined]
        dismissals: sa.Table = DismissalRow.__table__  # type: ignore[attr-defined]
        wanted = sorted(set(profiles) - set(self.open_matches))
        for chunk in _chunks(wanted):
            rows = list(connection.execute(
                sa.select(matches_table.c.profile, matches_table.c.call_id, matches_table.c.reasons)
                .join(calls_table, calls_table.c.id == matches_table.c.call_id)
                .where(matches_table.c.profile.in_(chunk), calls_table.c.status != "closed",
                       calls_table.c.final_deadline >= self.now)))
            gone = {(r.profile, r.call_id) for r in connection.execute(
                sa.select(dismissals.c.profile, dismissals.c.call_id)
                .where(dismissals.c.profile.in_(chunk)))}
            self.load_calls(connection, (r.call_id for r in rows))
            for profile in chunk:
                self.open_matches[profile] = []
            for row in rows:
                if (row.profile, row.call_id) not in gone and row.call_id in self.calls:
                    self.open_matches[row.profile].append((self.calls[row.call_id], tuple(row.reasons)))

    def render(self, mode: str, timezone: str, new: list[AlertItem], changed: list[AlertItem],
               closing: list[AlertItem], channels: Sequence[str]) -> dict[str, dict[str, Any]] | None:
        """The digest as outbox JSON per channel, rendered once for every subscriber who gets
        the same."""
        key = (mode, timezone,
               tuple((i.call.id, i.reasons, i.profile) for i in new),
               tuple((i.call.id, i.changes, i.reasons, i.profile) for i in changed),
               tuple((i.call.id, i.reasons, i.profile) for i in closing))
        if key in self.rendered:
            self.rendered.move_to_end(key)
            forms = self.rendered[key]
        else:
            period: Literal["daily", "weekly"] = "weekly" if mode == "weekly" else "daily"
            message = render_digest(new=new, changed=changed, closing=closing, period=period,
                                    now=self.now, timezone=timezone)
            forms = None if message is None else {"": message.model_dump(mode="json")}
            self.rendered[key] = forms
            if len(self.rendered) > self.RENDERED:
                _, dropped = self.rendered.popitem(last=False)
                for form in (dropped or {}).values():
                    self.form_digests.pop(id(form), None)
        if forms is None:
            return None
        for channel in channels:  # each channel's trimmed form, made once per digest
            if channel not in forms:
                forms[channel] = for_channel(forms[""], channel)
                self.form_digests[id(forms[channel])] = None
        return forms

    def body_ids(self, connection: Connection, forms: Iterable[dict[str, Any]]) -> dict[int, int]:
        """The ``delivery_bodies`` id of each form (by ``id()`` of the dict), stored if new."""
        import hashlib
        import json

        by_object: dict[int, str] = {}
        new: dict[str, dict[str, Any]] = {}
        for form in forms:
            if id(form) in by_object:
                continue
            digest = self.form_digests.get(id(form))
            if digest is None:
                text = json.dumps(form, sort_keys=True, separators=(",", ":"))
                digest = hashlib.sha256(text.encode()).hexdigest()
                if id(form) in self.form_digests:  # still held by ``rendered``
                    self.form_digests[id(form)] = digest
            by_object[id(form)] = digest
            if digest not in self.bodies:
                new[digest] = form
        if new:
            statement = _insert(connection, bodies_table).on_conflict_do_nothing(
                index_elements=["digest"])
            for chunk in _chunks(sorted(new)):
                connection.execute(statement, [{"digest": d, "message": new[d], "created_at": self.now}
                                               for d in chunk])
                self.bodies.update({row.digest: row.id for row in connection.execute(
                    sa.select(bodies_table.c.digest, bodies_table.c.id)
                    .where(bodies_table.c.digest.in_(chunk)))})
        return {key: self.bodies[digest] for key, digest in by_object.items()}


def enqueue_digests(engine: Engine, now: datetime, available: Iterable[str], *,
                    subscriber: str | None = None, force: bool = False,
                    batch: int = SUBSCRIBER_BATCH) -> int:
    """Enqueue every digest due now (or, with ``force``, now regardless of the hour).

    Subscribers are taken ``batch`` at a time, each batch in its own transaction: its
    digests are enqueued and its digest items marked in one commit. Memory is bounded by
    the batch; a crash between batches redoes only what was not committed (the digests
    already enqueued are skipped by their idempotency keys).
    """
    usable = list(available)
    enqueued = 0
    state = _DigestRound(now)
    with engine.connect() as reader:
        ranges = list(subscriber_batches(reader, batch, subscriber))
    for id_range in ranges:
        with engine.begin() as connection:
            enqueued += _enqueue_digest_batch(connection, state, usable, id_range, subscriber, force)
    if enqueued >= ANALYZE_AFTER and engine.dialect.name == "postgresql":
        # fresh statistics, or the dispatchers' next claims sort every new row until
        # autovacuum analyzes the table (BENCHMARKS.md, the scale round's plans)
        with engine.begin() as connection:
            connection.execute(sa.text("ANALYZE deliveries"))
    return enqueued


def _enqueue_digest_batch(connection: Connection, state: _DigestRound, usable: list[str],
                          id_range: tuple[int, int], subscriber: str | None, force: bool) -> int:
    now = state.now
    groups: dict[tuple[int, str], list[Audience]] = defaultdict(list)
    for audience in audiences(connection, now, usable, id_range=id_range):
        if audience.mode in ("daily", "weekly") and (subscriber is None
                                                      or audience.subscriber == subscriber):
            groups[(audience.subscriber_id, audience.mode)].append(audience)
    due: dict[tuple[int, str], list[str]] = {}
    for (subscriber_id, mode), members in groups.items():
        period = digest_period(mode, now, members[0].timezone)
        if period is None and force:
            period = f"manual-{now:%Y-%m-%dT%H:%M}"
        if period is not None:
            channels = sorted({c for m in members for c in m.channels})
            due[(subscriber_id, mode)] = [f"digest|{subscriber_id}|{c}|{mode}|{period}"
                                          for c in channels]
    if not due:
        return 0
    all_keys = [k for keys in due.values() for k in keys]
    existing: set[str] = set()
    if connection.dialect.name == "postgresql":  # one statement, the keys as one array
        existing.update(connection.execute(sa.select(deliveries_table.c.key).where(
            deliveries_table.c.key == sa.any_(sa.bindparam("keys", all_keys, type_=ARRAY(sa.Text)))))
            .scalars())
    else:
        for chunk in _chunks(all_keys):
            existing.update(connection.execute(sa.select(deliveries_table.c.key)
                                               .where(deliveries_table.c.key.in_(chunk))).scalars())
    items_by_group: dict[tuple[int, str], list[Any]] = defaultdict(list)
    table = digest_items_table
    for item in connection.execute(sa.select(
            table.c.id, table.c.subscriber_id, table.c.mode, table.c.profile, table.c.call_id,
            table.c.change_id, sa.cast(table.c.reasons, sa.Text).label("reasons")).where(
            table.c.subscriber_id.between(*id_range),
            table.c.digested_at.is_(None)).order_by(table.c.id)).all():
        if (item.subscriber_id, item.mode) in due:
            items_by_group[(item.subscriber_id, item.mode)].append(item)
    state.load_calls(connection, (i.call_id for items in items_by_group.values() for i in items))
    changes = _changes_of(connection, (i.change_id for items in items_by_group.values()
                                       for i in items if i.change_id is not None))
    state.load_profiles(connection, {m.profile for key in due for m in groups[key]})
    rows: list[dict[str, Any]] = []
    digested: list[int] = []
    for group, keys in due.items():
        if all(k in existing for k in keys):
            continue
        subscriber_id, mode = group
        members = groups[group]
        first = members[0]
        new: list[AlertItem] = []
        changed: list[AlertItem] = []
        for item in items_by_group.get(group, ()):
            call = state.calls.get(item.call_id)
            if call is None:
                continue
            change = changes.get(item.change_id) if item.change_id is not None else None
            reasons = state.reasons(item.reasons)
            if change is None:
                new.append(AlertItem(call=call, reasons=reasons, profile=item.profile))
            else:
                changed.append(AlertItem(call=call, changes=(change,), reasons=reasons,
                                         profile=item.profile))
        closing = [AlertItem(call=call, reasons=reasons, profile=m.profile)
                   for m in members for call, reasons in state.open_matches.get(m.profile, ())
                   if closing_soon(call, mode, now)]
        channels = sorted({c for m in members for c in m.channels})
        messages = state.render(mode, first.timezone, new, changed, closing, channels)
        if messages is not None:
            rows.extend({"key": key, "subscriber_id": subscriber_id, "channel": channel,
                         "kind": "digest", "call_id": None, "message": messages[channel],
                         "status": PENDING, "attempts": 0, "parts_sent": 0,
                         "next_attempt_at": now, "created_at": now}
                        for key, channel in zip(keys, channels, strict=True) if key not in existing)
        digested.extend(i.id for i in items_by_group.get(group, ()))
    # subscribers who get the same digest share one stored body; the row keeps ``{}``
    bodies = state.body_ids(connection, (row["message"] for row in rows))
    for row in rows:
        row["body_id"] = bodies[id(row["message"])]
        row["message"] = {}
    enqueued = _insert_ignoring_duplicates(connection, deliveries_table, rows)
    if connection.dialect.name == "postgresql":  # one statement, the ids as one array
        connection.execute(digest_items_table.update().where(
            digest_items_table.c.id == sa.any_(sa.bindparam("ids", digested, type_=ARRAY(sa.Integer))))
            .values(digested_at=now))
        return enqueued
    for chunk in _chunks(digested):
        connection.execute(digest_items_table.update().where(digest_items_table.c.id.in_(chunk))
                           .values(digested_at=now))
    return enqueued


def preview_digests(engine: Engine, now: datetime, available: Iterable[str],
                    subscriber: str | None = None) -> list[tuple[str, str, Message]]:
    """What each subscriber's digest would say now, without enqueueing or marking anything."""
    previews: list[tuple[str, str, Message]] = []
    with engine.connect() as connection:
        groups: dict[tuple[int, str], list[Audience]] = defaultdict(list)
        for audience in audiences(connection, now, list(available)):
            if audience.mode in ("daily", "weekly") and (subscriber is None
                                                          or audience.subscriber == subscriber):
                groups[(audience.subscriber_id, audience.mode)].append(audience)
        for (subscriber_id, mode), members in groups.items():
            message, _ = build_digest(connection, subscriber_id, mode, members[0].timezone,
                                      [m.profile for m in members], now)
            if message is not None:
                previews.append((members[0].subscriber, mode, message))
    return previews


def _reminder_row(plan: PlannedReminder, now: datetime) -> dict[str, Any]:
    item = AlertItem(call=plan.call, reasons=plan.reasons, profile=plan.audience.profile)
    message = render_reminder(item, plan.cutoff, now=now, timezone=plan.audience.timezone)
    return _delivery_row(plan.key, plan.audience, plan.channel, "reminder", plan.call.id, message,
                         plan.not_before, now)


def enqueue_reminders(engine: Engine, now: datetime, available: Iterable[str]) -> int:
    """Enqueue the deadline reminders due today in each subscriber's zone."""
    with engine.begin() as connection:
        audience_list = audiences(connection, now, list(available))
        matched = _matched_by_profile(connection, {a.profile for a in audience_list})
        plans = plan_reminders(audience_list, matched, now)
        return _insert_ignoring_duplicates(connection, deliveries_table,
                                           [_reminder_row(p, now) for p in plans])
