"""Delivery state: subscribers in the database, the outbox, digest items and the notify cursor.

What the pipeline calls, in order:

- ``sync_subscribers`` mirrors the YAML subscribers into their tables (the bot's and the
  web's own subscribers are left alone);
- ``notify_changes`` takes every change event recorded since the last call (a cursor over
  ``call_changes``), matches the changed calls against every profile, records the matches
  and writes the alerts and digest items they cause, **in one transaction** with moving the
  cursor: a crash before the commit redoes the whole step, after it nothing is redone. It
  reads (``read_changes``: one connection), matches and plans (``tracker.delivery.planning``: pure)
  and writes (``write_notify``), in that order;
- ``enqueue_digests`` and ``enqueue_reminders`` write what is due now;
- ``tracker.delivery.dispatch`` sends what the outbox holds.

Every outbox row and digest entry has a unique idempotency key (see ``tracker.delivery.planning``),
and inserts ignore a key that exists, so no message is ever enqueued twice. Digest entries
are kept per profile, and each subscription remembers the last entry its digests covered
(``subscriptions.digested_through``): a round for 112,000 subscribers reads a few thousand
entries instead of writing and marking a million per-subscriber rows.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
from collections import OrderedDict, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Connection, Engine

from tracker.delivery import SUMMARY_AFTER
from tracker.delivery.planning import (
    DEFAULT_SCHEDULE,
    Audience,
    ChangedCalls,
    DigestSchedule,
    NotifyPlan,
    PlannedAlert,
    PlannedReminder,
    PlannedSummary,
    closing_soon,
    digest_period,
    match_changes,
    opening_soon,
    plan_notify,
    plan_reminders,
)
from tracker.delivery.render import (
    AlertItem,
    render_alert,
    render_digest,
    render_reminder,
    render_summary,
)
from tracker.delivery.subscribers import (
    StoredSubscription,
    Subscriber,
    SubscriptionSync,
    plan_subscription_sync,
    quiet_until,
    without_opt_outs,
)
from tracker.delivery.unsubscribe import opted_out
from tracker.models import CallRecord, Change, ChangeKind
from tracker.plugins import channel_plugins
from tracker.ports import Message
from tracker.rules.matcher import Match
from tracker.rules.profiles import Profile
from tracker.rules.store import RulesStore
from tracker.store.db import (
    JSONText,
    bodies_table,
    calls_table,
    change_from_row,
    changes_table,
    channels_table,
    cursors_table,
    deliveries_table,
    digest_claims_table,
    digest_entries_table,
    dismissals_table,
    insert_for,
    matches_table,
    newest_digest_entry,
    profile_runs_table,
    subscribers_table,
    subscriptions_table,
)

log = logging.getLogger(__name__)

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
    digest_entries: int


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


class SharedJson:
    """A JSON column value that many outbox rows share (an alert rendered once per event and
    time zone, a digest rendered once for every subscriber who gets the same), carried with
    each row in place of the value. Its JSON text, for the PostgreSQL COPY path, and its
    digest, for ``delivery_bodies``, are made once, on the value itself, so no cache has to
    recognise the value again (an ``id()``-keyed one could, once the value is gone, take
    another object for it)."""

    def __init__(self, value: Any) -> None:
        self.value = value

    @cached_property
    def text(self) -> str:
        """The value as the COPY path writes it."""
        return json.dumps(self.value)

    @cached_property
    def canonical(self) -> str:
        """The value's canonical JSON (keys sorted, no spaces)."""
        return json.dumps(self.value, sort_keys=True, separators=(",", ":"))

    @cached_property
    def digest(self) -> str:
        """SHA-256 of the value's canonical JSON: a stored body's key."""
        return hashlib.sha256(self.canonical.encode()).hexdigest()


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    """``row`` with each ``SharedJson`` replaced by its value, for SQLAlchemy to bind."""
    return {k: v.value if isinstance(v, SharedJson) else v for k, v in row.items()}


# -- subscribers -------------------------------------------------------------------------

def sync_subscribers(engine: Engine, subscribers: Sequence[Subscriber], now: datetime) -> None:
    """Mirror the YAML subscribers into the database; only subscribers of origin "file" are
    managed here: those the bot created ("bot") and members who signed up on the web ("web")
    are never changed or emptied.

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
            elif row.origin != "file":  # the bot's or the web's: not the files' to manage
                log.warning("subscriber=%s exists from the %s; the file is ignored",
                            subscriber.name, row.origin)
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


def mirror_subscriber(connection: Connection, subscriber_id: int, subscriber: Subscriber) -> None:
    """Make one stored subscriber's channels and subscriptions what ``subscriber`` says, as
    the file sync does (tokens kept, ended subscriptions left ended): also the web's
    member import (``tracker.web.manage_members.save_members``)."""
    _sync_channels(connection, subscriber_id, subscriber)
    _sync_subscriptions(connection, subscriber_id, subscriber)


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
    """The file's subscriptions, less those ended from an unsubscribe link, into the table
    (``plan_subscription_sync``: a profile may be followed once per channel set)."""
    wanted = without_opt_outs(subscriber, opted_out(connection, subscriber_id))
    apply_subscription_plan(connection, subscriber_id, plan_subscription_sync(
        stored_subscriptions(connection, subscriber_id), wanted))


def stored_subscriptions(connection: Connection, subscriber_id: int) -> list[StoredSubscription]:
    """A subscriber's subscription rows, oldest first, as ``plan_subscription_sync`` takes them."""
    return [StoredSubscription(row.id, row.profile, row.mode,
                               tuple(row.channels) if row.channels is not None else None)
            for row in connection.execute(
                sa.select(subscriptions_table.c.id, subscriptions_table.c.profile,
                          subscriptions_table.c.mode, subscriptions_table.c.channels)
                .where(subscriptions_table.c.subscriber_id == subscriber_id)
                .order_by(subscriptions_table.c.id))]


def apply_subscription_plan(connection: Connection, subscriber_id: int,
                            plan: SubscriptionSync) -> None:
    """Write ``plan``: the file sync's, and the web preferences page's (which records its
    deletions as opt-outs first, so their links keep answering)."""
    for subscription in plan.insert:
        connection.execute(subscriptions_table.insert().values(
            subscriber_id=subscriber_id, profile=subscription.profile, mode=subscription.mode,
            channels=list(subscription.channels) if subscription.channels else None,
            token=secrets.token_urlsafe(24)))
    for row, subscription in plan.update:
        connection.execute(subscriptions_table.update().where(subscriptions_table.c.id == row.id)
                           .values(mode=subscription.mode,
                                   channels=list(subscription.channels) if subscription.channels
                                   else None, **mode_change(row.mode, subscription.mode)))
    if plan.delete:
        connection.execute(subscriptions_table.delete()
                           .where(subscriptions_table.c.id.in_(plan.delete)))


def mode_change(old: str, new: str) -> dict[str, Any]:
    """Extra values for a subscription switching from ``old`` to ``new`` mode: leaving
    instant mode starts the digests from now (its alerts already told the rest), while
    daily ↔ weekly keeps what is still waiting."""
    if old == "instant" and new != "instant":
        return {"digested_through": newest_digest_entry()}
    return {}


def _subscriptions(connection: Connection, available: Iterable[str], *,
                   id_range: tuple[int, int] | None = None,
                   profiles: Iterable[str] | None = None,
                   modes: Iterable[str] | None = None) -> list[tuple[Any, tuple[str, ...]]]:
    """Subscriptions (with their subscriber's fields) in subscription order, each with the
    channels it can be sent on: active, available, and among those it names, if it does.

    Two statements, only the columns used: the digest round runs this once per batch of
    subscribers, 112 times for 112,000 of them.
    """
    usable = set(available)
    subscriptions, subscribers = subscriptions_table, subscribers_table
    query = (sa.select(subscriptions.c.id, subscriptions.c.subscriber_id, subscriptions.c.profile,
                       subscriptions.c.mode, subscriptions.c.channels, subscriptions.c.token,
                       subscriptions.c.digested_through, subscribers.c.name,
                       subscribers.c.timezone, subscribers.c.muted_until,
                       subscribers.c.quiet_hours, subscribers.c.reminders,
                       subscribers.c.language)
             .join(subscribers, subscribers.c.id == subscriptions.c.subscriber_id)
             .order_by(subscriptions.c.id))
    channel_query = (sa.select(channels_table.c.subscriber_id, channels_table.c.channel)
                     .where(channels_table.c.active.is_(True)))
    if id_range is not None:
        query = query.where(subscriptions.c.subscriber_id.between(*id_range))
        channel_query = channel_query.where(channels_table.c.subscriber_id.between(*id_range))
    if profiles is not None:
        query = query.where(subscriptions.c.profile.in_(list(profiles)))
    if modes is not None:
        query = query.where(subscriptions.c.mode.in_(list(modes)))
    rows = connection.execute(query).all()  # fetchall: psycopg's fetchone is slow
    if not rows:
        return []
    channels: dict[int, list[str]] = defaultdict(list)
    for found in connection.execute(channel_query).all():
        if found.channel in usable:
            channels[found.subscriber_id].append(found.channel)
    return [(row, tuple(sorted(c for c in channels.get(row.subscriber_id, ())
                               if row.channels is None or c in row.channels)))
            for row in rows]


def audiences(connection: Connection, now: datetime, available: Iterable[str],
              profiles: Iterable[str] | None = None,
              id_range: tuple[int, int] | None = None,
              modes: Iterable[str] | None = None) -> list[Audience]:
    """Every subscription with the subscriber's active, available channels (none, or a
    muted subscriber: skipped).

    ``id_range`` (first and last subscriber id, inclusive) reads one batch of subscribers,
    so callers can walk 100,000 of them with memory bounded by the batch. ``modes`` keeps
    only subscriptions in those modes (the notify step wants the few instant ones).
    """
    return [Audience(
        subscriber_id=row.subscriber_id, subscriber=row.name, profile=row.profile,
        mode=row.mode, channels=channels, timezone=row.timezone,
        quiet_hours_end=quiet_until(row.quiet_hours, row.timezone, now),
        reminders=tuple(row.reminders), token=row.token, language=row.language)
        for row, channels in _subscriptions(connection, available, id_range=id_range,
                                            profiles=profiles, modes=modes)
        if channels and not _muted(row.muted_until, now)]


def _muted(until: datetime | None, now: datetime) -> bool:
    return until is not None and until > now


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
    statement = insert_for(connection, cursors_table)
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
        statement = (insert_for(connection, table).on_conflict_do_nothing(index_elements=["key"])
                     .returning(table.c.key))
        inserted += len(connection.execute(statement, [_plain(row) for row in chunk]).all())
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
    import zlib

    import psycopg

    columns = list(rows[0])
    json_columns = {n for n, c in enumerate(columns) if isinstance(table.c[c].type, sa.JSON)}
    names = ", ".join(f'"{c}"' for c in columns)
    stage = f"_stage_{table.name}_{zlib.crc32(names.encode()):08x}"  # one per column set
    driver = connection.connection.driver_connection  # psycopg's, inside this transaction
    assert isinstance(driver, psycopg.Connection)  # noqa: S101 - the only PostgreSQL driver
    inserted = 0
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
                        value = values[n]
                        if isinstance(value, SharedJson):  # dumped once for all its rows
                            values[n] = value.text
                        elif value is not None:
                            values[n] = json.dumps(value)
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


#: rendered messages by what they depend on, each whole under "" and trimmed per channel
Rendered = dict[tuple[str, ...], dict[str, SharedJson]]


def _channel_form(forms: dict[str, SharedJson], channel: str) -> SharedJson:
    """``channel``'s form of a rendered message (``forms[""]``), trimmed once and kept."""
    form = forms.get(channel)
    if form is None:
        trimmed = for_channel(forms[""].value, channel)
        form = forms[channel] = forms[""] if trimmed is forms[""].value else SharedJson(trimmed)
    return form


def _summary_row(plan: PlannedSummary, now: datetime, shown: int) -> dict[str, Any]:
    """The outbox row of a summary (one subscriber's, rendered for them alone)."""
    items = [AlertItem(call=event.call, changes=changes, reasons=event.reasons,
                       profile=event.profile) for event, changes in plan.items]
    message = render_summary(items, shown=shown, now=now, timezone=plan.audience.timezone,
                             language=plan.audience.language)
    row = _delivery_row(plan.key, plan.audience, plan.channel, "summary", None, None,
                        plan.not_before, now)
    row["message"] = _channel_form({"": SharedJson(message.model_dump(mode="json"))}, plan.channel)
    return row


def _alert_row(plan: PlannedAlert, now: datetime, rendered: Rendered) -> dict[str, Any]:
    """The outbox row of an alert; ``rendered`` keeps each event's alert per time zone (and
    its per-channel forms), since every instant subscriber of a profile gets the same one.
    One notify step has one event per profile and call, so they, the zone and the language
    are its key."""
    event = plan.event
    key = (event.profile, event.call.id, plan.audience.timezone, plan.audience.language)
    forms = rendered.get(key)
    if forms is None:
        item = AlertItem(call=event.call, changes=plan.changes, reasons=event.reasons,
                         profile=event.profile)
        message = render_alert(item, now=now, timezone=plan.audience.timezone,
                               language=plan.audience.language)
        forms = rendered[key] = {"": SharedJson(message.model_dump(mode="json"))}
    row = _delivery_row(plan.key, plan.audience, plan.channel, "alert", event.call.id,
                        None, plan.not_before, now)
    row["message"] = _channel_form(forms, plan.channel)
    return row


def notify_changes(engine: Engine, profiles: Sequence[Profile], now: datetime,
                   available: Iterable[str], summary_after: int = SUMMARY_AFTER) -> NotifyReport:
    """Match the calls changed since the cursor and enqueue what that causes (one
    transaction): read, match and plan (pure), write. ``summary_after``: see
    ``tracker.delivery.planning`` (a first cycle that does not flood)."""
    rules = RulesStore(engine)
    with engine.begin() as connection:
        changed = read_changes(connection)
        if changed is None:
            return NotifyReport(0, 0, 0, 0, 0)
        matches, events = match_changes(changed, profiles, now)
        plan = plan_notify(events, first_run=_first_run(connection, profiles),
                           summary_after=summary_after)
        entries, alerts = write_notify(connection, rules, changed, matches, plan, now,
                                       list(available))
    rules.mark_run((p.name for p in profiles), now)
    report = NotifyReport(changes=changed.events, matches=len(matches),
                          new_matches=sum(m.new for m in matches), alerts=alerts,
                          digest_entries=entries)
    log.info("notify changes=%d matches=%d new_matches=%d alerts=%d digest_entries=%d",
             report.changes, report.matches, report.new_matches, report.alerts,
             report.digest_entries)
    return report


def _first_run(connection: Connection, profiles: Sequence[Profile]) -> frozenset[str]:
    """The profiles never matched before (no ``profile_runs`` row): their first cycle."""
    ran = set(connection.execute(sa.select(profile_runs_table.c.profile)).scalars())
    return frozenset(p.name for p in profiles if p.name not in ran)


def read_changes(connection: Connection) -> ChangedCalls | None:
    """What the notify step needs, read on its own connection: the change events after the
    cursor, the calls they are about, the dismissals, and the matches recorded for those
    calls (to tell a first match from a repeat, and to find former matches). None when
    nothing changed."""
    start = _cursor(connection, NOTIFY_CURSOR)
    rows = list(connection.execute(sa.select(changes_table).where(changes_table.c.id > start)
                                   .order_by(changes_table.c.id)))
    if not rows:
        return None
    changes: dict[str, list[tuple[int, Change]]] = defaultdict(list)
    for row in rows:
        changes[row.call_id].append((row.id, change_from_row(row)))
    calls: dict[str, CallRecord] = {}
    for chunk in _chunks(sorted(changes)):
        for row in connection.execute(sa.select(calls_table.c.id, calls_table.c.record)
                                      .where(calls_table.c.id.in_(chunk))):
            calls[row.id] = CallRecord.model_validate(row.record)
    dismissed = frozenset((p, c) for p, c in connection.execute(
        sa.select(dismissals_table.c.profile, dismissals_table.c.call_id)))
    recorded = [(row.profile, row.call_id, tuple(row.reasons))
                for chunk in _chunks(sorted(calls))
                for row in connection.execute(
                    sa.select(matches_table.c.profile, matches_table.c.call_id,
                              matches_table.c.reasons)
                    .where(matches_table.c.call_id.in_(chunk)))]
    return ChangedCalls(through=rows[-1].id, events=len(rows), changes=changes, calls=calls,
                        dismissed=dismissed, recorded=recorded)


def write_notify(connection: Connection, rules: RulesStore, changed: ChangedCalls,
                 matches: Sequence[Match], plan: NotifyPlan, now: datetime,
                 usable: Sequence[str]) -> tuple[int, int]:
    """Write what the notify step decided, in the caller's transaction: the matches, the
    digest entries, the alerts (subscriber batch by batch: memory bounded by the batch),
    and the cursor. Returns (digest entries, alerts) newly enqueued."""
    rules.record_matches(matches, now, connection)
    entries = _insert_ignoring_duplicates(connection, digest_entries_table, [
        {"key": e.key, "profile": e.event.profile, "call_id": e.event.call.id,
         "change_id": e.change_id, "reasons": list(e.event.reasons), "created_at": now}
        for e in plan.digest_entries])
    alerts = 0
    rendered: Rendered = {}  # bounded by events × time zones
    for id_range in subscriber_batches(connection):
        batch = audiences(connection, now, usable, id_range=id_range, modes=("instant",))
        alerts += _insert_ignoring_duplicates(connection, deliveries_table, [
            _summary_row(p, now, plan.summary_after) if isinstance(p, PlannedSummary)
            else _alert_row(p, now, rendered) for p in plan.alerts(batch, now)])
    _set_cursor(connection, NOTIFY_CURSOR, changed.through)
    return entries, alerts


# -- digests and reminders ---------------------------------------------------------------

def _call_records(connection: Connection, ids: Iterable[str]) -> dict[str, CallRecord]:
    found: dict[str, CallRecord] = {}
    for chunk in _chunks(sorted(set(ids))):
        for row in connection.execute(sa.select(calls_table.c.id, calls_table.c.record)
                                      .where(calls_table.c.id.in_(chunk))):
            found[row.id] = CallRecord.model_validate(row.record)
    return found


def _changes_of(connection: Connection, ids: Iterable[int]) -> dict[int, tuple[Change, ...]]:
    """Each change id with the changes recorded with it: a digest entry names the newest
    change of its event, and a run records all the changes of one call at one moment (a
    moved deadline and a new budget), each of which the digest says."""
    found: dict[int, tuple[Change, ...]] = {}
    for chunk in _chunks(sorted(set(ids))):
        rows = list(connection.execute(sa.select(changes_table)
                                       .where(changes_table.c.id.in_(chunk))))
        if not rows:
            continue
        siblings: dict[tuple[str, datetime], list[Any]] = defaultdict(list)
        for row in connection.execute(sa.select(changes_table).where(
                changes_table.c.call_id.in_({r.call_id for r in rows}),
                changes_table.c.at.in_({r.at for r in rows}),
                changes_table.c.id <= max(r.id for r in rows)).order_by(changes_table.c.id)):
            siblings[(row.call_id, row.at)].append(row)
        for row in rows:
            found[row.id] = tuple(change_from_row(r) for r in siblings[(row.call_id, row.at)]
                                  if r.id <= row.id) or (change_from_row(row),)
    return found


def _matched_by_profile(connection: Connection, profiles: Iterable[str]
                        ) -> dict[str, list[tuple[CallRecord, tuple[str, ...]]]]:
    wanted = sorted(set(profiles))
    rows = list(connection.execute(sa.select(matches_table).where(matches_table.c.profile.in_(wanted))))
    gone = {(r.profile, r.call_id) for r in connection.execute(sa.select(dismissals_table))}
    records = _call_records(connection, (r.call_id for r in rows))
    result: dict[str, list[tuple[CallRecord, tuple[str, ...]]]] = defaultdict(list)
    for row in rows:
        if (row.profile, row.call_id) in gone or row.call_id not in records:
            continue
        result[row.profile].append((records[row.call_id], tuple(row.reasons)))
    return result


_EMPTY: dict[str, Any] = {"text": "", "html": "", "telegram": [], "document": {}, "buttons": []}


def for_channel(message: dict[str, Any], channel: str) -> dict[str, Any]:
    """``message`` (outbox JSON) with the parts ``channel`` never reads emptied.

    Each channel's plugin says which parts it reads (``ChannelPlugin.reads``), so a digest
    round for 100,000 subscribers does not write every Telegram row's HTML email too; a
    channel that does not say (or is not installed) keeps the whole message.
    """
    plugin = channel_plugins().get(channel)
    keep = plugin.reads if plugin is not None else None
    if plugin is None or keep is None:
        return message
    for part, fallback in plugin.fallbacks.items():
        if not message.get(part):
            keep = keep | {fallback}  # e.g. the Telegram channel falls back to the plain text
    return {k: v if k in keep or k not in _EMPTY else _EMPTY[k] for k, v in message.items()}


@dataclass(frozen=True)
class _Member:
    """One daily or weekly subscription as a digest round sees it."""

    subscription_id: int
    subscriber_id: int
    subscriber: str
    profile: str
    mode: str
    channels: tuple[str, ...]  # active and available; none: nothing can be sent to it
    timezone: str
    muted: bool
    position: int  # ``digested_through``
    reminders: tuple[int, ...]  # days before a cut-off: closing soon
    language: str = "en"  # the subscriber's: what its digests are written in


@dataclass(frozen=True)
class _Entry:
    id: int
    profile: str
    call_id: str
    change_id: int | None
    reasons: tuple[str, ...]


def _digest_members(connection: Connection, now: datetime, usable: Iterable[str],
                    id_range: tuple[int, int]) -> list[_Member]:
    """The daily and weekly subscriptions of a range of subscribers, in subscription order,
    muted or without a channel included (their due digests still move their positions)."""
    return [_Member(subscription_id=row.id, subscriber_id=row.subscriber_id,
                    subscriber=row.name, profile=row.profile, mode=row.mode, channels=channels,
                    timezone=row.timezone, muted=_muted(row.muted_until, now),
                    position=row.digested_through, reminders=tuple(row.reminders),
                    language=row.language)
            for row, channels in _subscriptions(connection, usable, id_range=id_range,
                                                modes=("daily", "weekly"))]


class _DigestRound:
    """What one digest round keeps between batches: the entries written up to the round's
    start, calls, changes, each profile's open matched calls, and recently rendered digests.
    Bounded by the entries, calls and profiles involved, never by the number of
    subscribers; subscribers of one cluster usually get the same digest, which is then
    rendered once (its key is its subscriptions' profiles and positions, so a digest met
    again costs no per-item work at all)."""

    RENDERED = 2_000  # distinct digests kept (least recently used dropped)

    def __init__(self, now: datetime, upto: int) -> None:
        self.now = now
        self.upto = upto  # the newest entry when the round started: it covers no later one
        self.calls: dict[str, CallRecord] = {}
        self.changes: dict[int, tuple[Change, ...]] = {}
        #: profile → (entries after this position were read, those entries in id order)
        self.entries: dict[str, tuple[int, list[_Entry]]] = {}
        self.open_matches: dict[str, list[tuple[CallRecord, tuple[str, ...]]]] = {}
        self.bodies: dict[str, int] = {}  # SHA-256 of a stored body → its id
        self._reasons: dict[str, tuple[str, ...]] = {}  # bounded by the entries of the round
        #: digest → its outbox JSON, whole under "" and trimmed per channel. A cluster's
        #: digest recurs in every batch; each form carries its stored body's SHA-256, so its
        #: JSON is dumped and hashed once, not again for each batch.
        self.rendered: OrderedDict[tuple[Any, ...], dict[str, SharedJson] | None] = OrderedDict()

    @classmethod
    def starting(cls, connection: Connection, now: datetime) -> _DigestRound:
        upto = connection.execute(sa.select(sa.func.coalesce(
            sa.func.max(digest_entries_table.c.id), 0))).scalar_one()
        return cls(now, int(upto))

    def reasons(self, text: str) -> tuple[str, ...]:
        """An entry's reasons from their JSON text; the entries of one match share theirs,
        so each text is parsed once."""
        found = self._reasons.get(text)
        if found is None:
            import json

            found = self._reasons[text] = tuple(json.loads(text))
        return found

    def load_calls(self, connection: Connection, ids: Iterable[str]) -> None:
        missing = {i for i in ids if i not in self.calls}
        self.calls.update(_call_records(connection, missing))

    def load_entries(self, connection: Connection, after: dict[str, int]) -> None:
        """Read the entries each profile's subscriptions still need (``after``: profile →
        the lowest position among them), with their calls and changes."""
        table = digest_entries_table
        missing = {p: a for p, a in after.items()
                   if a < self.upto and (p not in self.entries or self.entries[p][0] > a)}
        for chunk in _chunks(sorted(missing)):
            lowest = min(missing[p] for p in chunk)
            found: dict[str, list[_Entry]] = {p: [] for p in chunk}
            for row in connection.execute(sa.select(
                    table.c.id, table.c.profile, table.c.call_id, table.c.change_id,
                    sa.cast(table.c.reasons, sa.Text).label("reasons"))
                    .where(table.c.profile.in_(chunk), table.c.id > lowest,
                           table.c.id <= self.upto).order_by(table.c.id)).all():
                if row.id > missing[row.profile]:
                    found[row.profile].append(_Entry(row.id, row.profile, row.call_id,
                                                     row.change_id, self.reasons(row.reasons)))
            self.entries.update((p, (missing[p], found[p])) for p in chunk)
            self.load_calls(connection, (e.call_id for entries in found.values() for e in entries))
            wanted = {e.change_id for entries in found.values() for e in entries
                      if e.change_id is not None and e.change_id not in self.changes}
            self.changes.update(_changes_of(connection, wanted))

    def pending(self, member: _Member) -> list[_Entry]:
        """The entries ``member``'s next digest covers."""
        _, entries = self.entries.get(member.profile, (0, []))
        return entries[_first_after(entries, member.position):]

    def load_profiles(self, connection: Connection, profiles: Iterable[str]) -> None:
        """Matched, not dismissed calls with a cut-off still ahead, per profile (closing soon
        is chosen from these)."""
        dismissals = dismissals_table
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

    def prepare(self, connection: Connection, members: Iterable[_Member]) -> None:
        """Load what the digests of ``members`` need."""
        after: dict[str, int] = {}
        for member in members:
            after[member.profile] = min(after.get(member.profile, member.position), member.position)
        self.load_entries(connection, after)
        self.load_profiles(connection, after)

    def render(self, mode: str, timezone: str, members: Sequence[_Member],
               channels: Sequence[str]) -> dict[str, SharedJson] | None:
        """The digest of ``members`` (one subscriber's subscriptions in ``mode``) as outbox
        JSON per channel, rendered once for every subscriber who gets the same; None when
        there is nothing to say."""
        key = (mode, timezone, members[0].reminders, members[0].language,
               tuple((m.profile, min(m.position, self.upto)) for m in members))
        if key in self.rendered:
            self.rendered.move_to_end(key)
            forms = self.rendered[key]
        else:
            forms = self._render(mode, timezone, members)
            self.rendered[key] = forms
            if len(self.rendered) > self.RENDERED:
                self.rendered.popitem(last=False)
        if forms is None:
            return None
        for channel in channels:  # each channel's trimmed form, made once per digest
            _channel_form(forms, channel)
        return forms

    def _render(self, mode: str, timezone: str,
                members: Sequence[_Member]) -> dict[str, SharedJson] | None:
        new: list[AlertItem] = []
        changed: list[AlertItem] = []
        pending = sorted((e for m in members for e in self.pending(m)), key=lambda e: e.id)
        for entry in pending:
            call = self.calls.get(entry.call_id)
            if call is None:
                continue
            changes = self.changes.get(entry.change_id, ()) if entry.change_id is not None else ()
            # entries written before first matches were entered as new carry a ``new`` change
            if not changes or all(c.kind is ChangeKind.NEW for c in changes):
                new.append(AlertItem(call=call, reasons=entry.reasons, profile=entry.profile))
            else:
                changed.append(AlertItem(call=call, changes=changes, reasons=entry.reasons,
                                         profile=entry.profile))
        reminders = members[0].reminders
        open_matches = [(m, call, reasons) for m in members
                        for call, reasons in self.open_matches.get(m.profile, ())]
        closing = [AlertItem(call=call, reasons=reasons, profile=m.profile)
                   for m, call, reasons in open_matches
                   if closing_soon(call, mode, self.now, timezone, reminders)]
        opening = [AlertItem(call=call, reasons=reasons, profile=m.profile)
                   for m, call, reasons in open_matches if opening_soon(call, mode, self.now)]
        period: Literal["daily", "weekly"] = "weekly" if mode == "weekly" else "daily"
        message = render_digest(new=new, changed=changed, closing=closing, opening=opening,
                                period=period, now=self.now, timezone=timezone,
                                language=members[0].language)
        return None if message is None else {"": SharedJson(message.model_dump(mode="json"))}

    def body_ids(self, connection: Connection, forms: Iterable[SharedJson]) -> dict[str, int]:
        """The ``delivery_bodies`` id of each form's digest, stored if new.

        On PostgreSQL new bodies are committed at once, in a transaction of their own: a body
        is named by its content, so one stored by a batch that then fails is still right, and
        another worker storing the same digest waits for that short transaction, not for the
        whole batch of a worker that may hang (or die) inside it."""
        new: dict[str, Any] = {form.digest: form for form in forms if form.digest not in self.bodies}
        if not new:
            return self.bodies
        if connection.dialect.name == "postgresql":
            # JSONB keeps the value, not the text: the canonical text the digest was made of
            # is stored as it is, not dumped once more
            new = {d: JSONText(f.value, f.canonical) if isinstance(f.value, dict) else f.value
                   for d, f in new.items()}
            with connection.engine.begin() as own:
                self._store_bodies(own, new)
        else:  # one writer at a time: the batch's own connection
            self._store_bodies(connection, {d: f.value for d, f in new.items()})
        return self.bodies

    def _store_bodies(self, connection: Connection, new: dict[str, Any]) -> None:
        statement = insert_for(connection, bodies_table).on_conflict_do_nothing(
            index_elements=["digest"])
        for chunk in _chunks(sorted(new)):
            connection.execute(statement, [{"digest": d, "message": new[d], "created_at": self.now}
                                           for d in chunk])
            self.bodies.update({row.digest: row.id for row in connection.execute(
                sa.select(bodies_table.c.digest, bodies_table.c.id)
                .where(bodies_table.c.digest.in_(chunk)))})


def _first_after(entries: Sequence[_Entry], position: int) -> int:
    """Index of the first entry with an id above ``position`` (entries are in id order)."""
    low, high = 0, len(entries)
    while low < high:
        middle = (low + high) // 2
        if entries[middle].id <= position:
            low = middle + 1
        else:
            high = middle
    return low


def _senders(members: Iterable[_Member]) -> list[_Member]:
    """The subscriptions a digest is made of: a muted subscriber's digest is skipped, and a
    subscription with no usable channel adds nothing."""
    return [m for m in members if m.channels and not m.muted]


def _groups(members: Iterable[_Member], subscriber: str | None
            ) -> dict[tuple[int, str], list[_Member]]:
    """Subscriptions by (subscriber, mode): one digest each."""
    groups: dict[tuple[int, str], list[_Member]] = defaultdict(list)
    for member in members:
        if subscriber is None or member.subscriber == subscriber:
            groups[(member.subscriber_id, member.mode)].append(member)
    return groups


def enqueue_digests(engine: Engine, now: datetime, available: Iterable[str], *,
                    subscriber: str | None = None, force: bool = False,
                    batch: int = SUBSCRIBER_BATCH,
                    schedule: DigestSchedule = DEFAULT_SCHEDULE) -> int:
    """Enqueue every digest due now by ``schedule`` (or, with ``force``, now regardless of
    the hour).

    Subscribers are taken ``batch`` at a time, each batch in its own transaction: its
    digests are enqueued and its subscriptions' positions moved in one commit. Memory is
    bounded by the batch; a crash between batches redoes only what was not committed (the
    digests already enqueued are skipped by their idempotency keys).

    On PostgreSQL a whole round is written as shares (``digest_claims``, one per batch)
    that other workers help with (``help_digest_rounds``); this returns when every share is
    done, by whichever worker, with the digests the round enqueued in all.
    """
    usable = list(available)
    if subscriber is None and engine.dialect.name == "postgresql":
        name = open_digest_round(engine, now, usable, force=force, batch=batch)
        work_digest_rounds(engine, name=name, schedule=schedule)
        return _finish_round(engine, name)
    enqueued = 0
    with engine.connect() as reader:
        ranges = list(subscriber_batches(reader, batch, subscriber))
        state = _DigestRound.starting(reader, now)
    for id_range in ranges:
        with engine.begin() as connection:
            enqueued += _enqueue_digest_batch(connection, state, usable, id_range, subscriber,
                                              force, schedule)
    if subscriber is None:
        with engine.begin() as connection:
            _prune_entries(connection)
    return enqueued


#: how long a worker may sit idle inside a share's transaction before PostgreSQL ends its
#: session, and so its claim: the lease of a worker that hangs (one that dies loses its
#: claim at once, with its connection)
CLAIM_LEASE_SECONDS = 300


def open_digest_round(engine: Engine, now: datetime, available: Iterable[str], *,
                      force: bool = False, batch: int = SUBSCRIBER_BATCH) -> str:
    """Write a new round's shares (one per ``batch`` subscribers, with the round's ``now``,
    newest digest entry and ``available`` channels) in one transaction; return the round's
    name."""
    name = secrets.token_hex(16)
    with engine.begin() as connection:
        upto = _DigestRound.starting(connection, now).upto
        rows = [{"round": name, "now": now, "upto": upto, "force": force,
                 "channels": sorted(set(available)), "first_id": first, "last_id": last,
                 "enqueued": 0}
                for first, last in subscriber_batches(connection, batch)]
        # what finished rounds left is not needed any more
        connection.execute(digest_claims_table.delete().where(
            digest_claims_table.c.round.in_(
                sa.select(digest_claims_table.c.round).group_by(digest_claims_table.c.round)
                .having(sa.func.count(digest_claims_table.c.done_at) == sa.func.count()))))
        if rows:
            connection.execute(digest_claims_table.insert(), rows)
    return name


def work_digest_rounds(engine: Engine, *, name: str | None = None,
                       schedule: DigestSchedule = DEFAULT_SCHEDULE) -> int:
    """Enqueue shares of open digest rounds (of round ``name`` only, if given) until none is
    left to claim; return how many digests this worker enqueued.

    Each share is claimed ``FOR UPDATE SKIP LOCKED`` in the transaction that enqueues it and
    marks it done, so two workers never take the same share and a worker that dies leaves
    its share to the others (its transaction rolls back). With ``name``, a share another
    worker holds is waited for (``FOR UPDATE``) once nothing else is left, so the caller
    returns only when the round is done, its dead workers' shares included.
    """
    rounds: dict[str, _DigestRound] = {}
    enqueued = 0
    claims = digest_claims_table
    query = sa.select(claims).where(claims.c.done_at.is_(None)).order_by(claims.c.id).limit(1)
    if name is not None:
        query = query.where(claims.c.round == name)
    while True:
        with engine.begin() as connection:
            connection.execute(sa.text(
                f"SET LOCAL idle_in_transaction_session_timeout = {CLAIM_LEASE_SECONDS * 1000}"))
            claim = connection.execute(query.with_for_update(skip_locked=True)).first()
            if claim is None and name is not None:
                claim = connection.execute(query.with_for_update()).first()  # wait for it
                if claim is None and connection.execute(query).first() is not None:
                    continue  # the one waited for is done; others are still held
            if claim is None:
                return enqueued
            state = rounds.get(claim.round)
            if state is None:
                state = rounds[claim.round] = _DigestRound(claim.now, claim.upto)
            count = _enqueue_digest_batch(connection, state, list(claim.channels),
                                          (claim.first_id, claim.last_id), None, claim.force,
                                          schedule)
            connection.execute(claims.update().where(claims.c.id == claim.id)
                               .values(enqueued=count, done_at=sa.func.now()))
            enqueued += count


def help_digest_rounds(engine: Engine, schedule: DigestSchedule = DEFAULT_SCHEDULE) -> int:
    """What a worker without the scheduler does between its dispatch passes on PostgreSQL:
    take shares of a digest round another worker started, if one is open (rendered for the
    channels that worker could send on, recorded with the round)."""
    if engine.dialect.name != "postgresql":
        return 0
    with engine.connect() as connection:
        claims = digest_claims_table
        if connection.execute(sa.select(claims.c.id).where(claims.c.done_at.is_(None))
                              .limit(1)).first() is None:
            return 0
    return work_digest_rounds(engine, schedule=schedule)


def _finish_round(engine: Engine, name: str) -> int:
    """After every share of round ``name`` is done: drop the digest entries every
    subscription has covered, refresh the outbox's statistics after a large round; return
    the digests the round enqueued."""
    claims = digest_claims_table
    with engine.begin() as connection:
        enqueued = int(connection.execute(sa.select(sa.func.coalesce(sa.func.sum(
            claims.c.enqueued), 0)).where(claims.c.round == name)).scalar_one())
        _prune_entries(connection)
    if enqueued >= ANALYZE_AFTER:
        # fresh statistics, or the dispatchers' next claims sort every new row until
        # autovacuum analyzes the table (BENCHMARKS.md, the scale round's plans)
        with engine.begin() as connection:
            connection.execute(sa.text("ANALYZE deliveries"))
    return enqueued


def _prune_entries(connection: Connection) -> int:
    """Delete the digest entries every daily and weekly subscription has covered: no digest
    reads them again (a new follower starts after the newest). The newest entry is always
    kept, so SQLite, which reuses the highest rowid + 1, never hands out an id at or below
    a position already stored."""
    subscriptions, entries = subscriptions_table, digest_entries_table
    covered = (sa.select(sa.func.min(subscriptions.c.digested_through))
               .where(subscriptions.c.mode.in_(("daily", "weekly"))).scalar_subquery())
    newest = sa.select(sa.func.max(entries.c.id)).scalar_subquery()
    deleted = connection.execute(entries.delete().where(
        entries.c.id < newest, entries.c.id <= sa.func.coalesce(covered, newest)))
    return int(deleted.rowcount or 0)


def _enqueue_digest_batch(connection: Connection, state: _DigestRound, usable: list[str],
                          id_range: tuple[int, int], subscriber: str | None, force: bool,
                          schedule: DigestSchedule) -> int:
    now = state.now
    due: dict[tuple[int, str], tuple[list[_Member], list[str], list[str]]] = {}
    advance: list[int] = []  # subscriptions whose positions move to the round's newest entry
    for (subscriber_id, mode), members in _groups(
            _digest_members(connection, now, usable, id_range), subscriber).items():
        period = digest_period(mode, now, members[0].timezone, schedule)
        if period is None and force:
            period = f"manual-{now:%Y-%m-%dT%H:%M}"
        if period is None:
            continue
        # what a skipped subscription would have said is not carried over (as for alerts)
        senders = _senders(members)
        skipped = members if not senders else [m for m in members if not m.channels]
        advance.extend(m.subscription_id for m in skipped if m.position < state.upto)
        if senders:
            channels = sorted({c for m in senders for c in m.channels})
            due[(subscriber_id, mode)] = (senders, channels, [
                f"digest|{subscriber_id}|{c}|{mode}|{period}" for c in channels])
    rows: list[dict[str, Any]] = []
    all_keys = [k for _, _, keys in due.values() for k in keys]
    existing: set[str] = set()
    if all_keys and connection.dialect.name == "postgresql":  # one statement, one array
        existing.update(connection.execute(sa.select(deliveries_table.c.key).where(
            deliveries_table.c.key == sa.any_(sa.bindparam("keys", all_keys, type_=ARRAY(sa.Text)))))
            .scalars())
    elif all_keys:
        for chunk in _chunks(all_keys):
            existing.update(connection.execute(sa.select(deliveries_table.c.key)
                                               .where(deliveries_table.c.key.in_(chunk))).scalars())
    # a digest already enqueued for this period leaves its positions alone: what was
    # written since waits for the next period
    todo = {group: value for group, value in due.items()
            if not all(k in existing for k in value[2])}
    advance.extend(m.subscription_id for senders, _, _ in todo.values() for m in senders
                   if m.position < state.upto)
    state.prepare(connection, (m for senders, _, _ in todo.values() for m in senders))
    for (subscriber_id, mode), (senders, channels, keys) in todo.items():
        messages = state.render(mode, senders[0].timezone, senders, channels)
        if messages is not None:
            rows.extend({"key": key, "subscriber_id": subscriber_id, "channel": channel,
                         "kind": "digest", "call_id": None, "message": messages[channel],
                         "status": PENDING, "attempts": 0, "parts_sent": 0,
                         "next_attempt_at": now, "created_at": now}
                        for key, channel in zip(keys, channels, strict=True) if key not in existing)
    enqueued = 0
    if rows:
        # subscribers who get the same digest share one stored body; the row keeps ``{}``
        bodies = state.body_ids(connection, (row["message"] for row in rows))
        for row in rows:
            row["body_id"] = bodies[row["message"].digest]
            row["message"] = {}
        enqueued = _insert_ignoring_duplicates(connection, deliveries_table, rows)
    update = subscriptions_table.update().values(digested_through=state.upto)
    if advance and connection.dialect.name == "postgresql":  # one statement, one array
        connection.execute(update.where(subscriptions_table.c.id == sa.any_(
            sa.bindparam("ids", advance, type_=ARRAY(sa.Integer)))))
    else:
        for chunk in _chunks(advance):
            connection.execute(update.where(subscriptions_table.c.id.in_(chunk)))
    return enqueued


def preview_digests(engine: Engine, now: datetime, available: Iterable[str],
                    subscriber: str | None = None) -> list[tuple[str, str, Message]]:
    """What each subscriber's digest would say now, without enqueueing or moving anything."""
    previews: list[tuple[str, str, Message]] = []
    usable = list(available)
    with engine.connect() as connection:
        state = _DigestRound.starting(connection, now)
        for id_range in subscriber_batches(connection, SUBSCRIBER_BATCH, subscriber):
            groups = _groups(_digest_members(connection, now, usable, id_range), subscriber)
            wanted = {group: _senders(members)
                      for group, members in groups.items()}
            state.prepare(connection, (m for senders in wanted.values() for m in senders))
            for (_, mode), senders in wanted.items():
                if not senders:
                    continue
                forms = state.render(mode, senders[0].timezone, senders, [])
                if forms is not None:
                    previews.append((senders[0].subscriber, mode,
                                     Message.model_validate(forms[""].value)))
    return previews


def _reminder_row(plan: PlannedReminder, now: datetime) -> dict[str, Any]:
    item = AlertItem(call=plan.call, reasons=plan.reasons, profile=plan.audience.profile)
    message = render_reminder(item, plan.cutoff, now=now, timezone=plan.audience.timezone,
                              language=plan.audience.language)
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


# -- dead letters ------------------------------------------------------------------------

def resend_dead(engine: Engine, delivery_ids: Iterable[int], now: datetime) -> int:
    """Put dead letters back in the queue: the same rows, pending from ``now`` with their
    attempts counted afresh (the web app's "resend"); how many were dead and are now pending.

    The row is reused, never copied, so its idempotency key still stands for one message
    and the dispatcher's lease still lets one worker send it once; only a row that is
    still dead moves (two clicks, or a row another hand already re-queued, change nothing),
    and ``parts_sent`` is kept, so a message split in parts goes on from the first unsent.
    """
    ids = sorted(set(delivery_ids))
    if not ids:
        return 0
    with engine.begin() as connection:
        return sum(connection.execute(
            deliveries_table.update()
            .where(deliveries_table.c.id.in_(chunk), deliveries_table.c.status == DEAD)
            .values(status=PENDING, attempts=0, next_attempt_at=now, lease_until=None,
                    worker=None)).rowcount for chunk in _chunks(ids))
