"""Deciding who is told what, and when (pure: data and ``now`` in, plans out).

Rules, in the order the pipeline applies them:

- **Instant alerts.** A call that matches a profile for the first time gives every
  ``instant`` subscriber of that profile a "new matching call" alert. A call that matched
  before gives them an alert for its typed changes of the kinds in ``ALERT_KINDS``
  (deadline moved, opened, reopened, closed, budget changed, title changed, a new update
  from the portal). Opening dates, identifiers and the like (``details_changed``) and
  ``removed_from_source`` never alert on their own.
- **Digests.** For ``daily`` and ``weekly`` subscribers the same events become digest
  items; one digest per subscriber and period gathers them across all profiles, plus the
  matched calls closing soon. Daily digests are due at ``DIGEST_HOUR`` local time, weekly
  ones on Monday at that hour. An empty period sends nothing.
- **Reminders.** For every matched, not dismissed, open or forthcoming call of every
  subscription, a reminder is due on the local day that is N days before each cut-off,
  for each N in the subscriber's ``reminders``.
- **Quiet hours** delay instant alerts and reminders (never drop them) to the end of the
  subscriber's quiet hours.

Every plan carries an idempotency key (subscriber, channel, call or period, kind); the
outbox's unique index on it makes enqueueing twice impossible.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from tracker.models import CallRecord, CallStatus, Change, ChangeKind

ALERT_KINDS = frozenset({
    ChangeKind.DEADLINE_CHANGED, ChangeKind.OPENED, ChangeKind.REOPENED, ChangeKind.CLOSED,
    ChangeKind.BUDGET_CHANGED, ChangeKind.TITLE_CHANGED, ChangeKind.DOCUMENTS_CHANGED,
    ChangeKind.STATUS_CHANGED,
})
DIGEST_HOUR = 8
DIGEST_WEEKDAY = 0  # Monday
CLOSING_SOON = {"daily": timedelta(days=7), "weekly": timedelta(days=14)}


@dataclass(frozen=True)
class Audience:
    """One subscription as planning needs it: who, which profile, how, on which channels."""

    subscriber_id: int
    subscriber: str
    profile: str
    mode: str
    channels: tuple[str, ...]
    timezone: str
    quiet_hours_end: datetime | None = None  # set when ``now`` is inside quiet hours
    reminders: tuple[int, ...] = (30, 7, 1)
    token: str | None = None


@dataclass(frozen=True)
class MatchEvent:
    """A match of one call for one profile, with what happened to the call this time."""

    profile: str
    call: CallRecord
    reasons: tuple[str, ...]
    first_match: bool
    changes: tuple[Change, ...] = ()
    change_ids: tuple[int, ...] = ()


@dataclass(frozen=True)
class PlannedAlert:
    """An instant alert to enqueue."""

    key: str
    audience: Audience
    channel: str
    event: MatchEvent
    changes: tuple[Change, ...]
    not_before: datetime


@dataclass(frozen=True)
class PlannedDigestItem:
    """Something to mention in a subscriber's next digest."""

    key: str
    audience: Audience
    event: MatchEvent
    change_id: int | None


@dataclass(frozen=True)
class PlannedReminder:
    """A deadline reminder to enqueue."""

    key: str
    audience: Audience
    channel: str
    call: CallRecord
    reasons: tuple[str, ...]
    cutoff: datetime
    days: int
    not_before: datetime


@dataclass
class Plan:
    alerts: list[PlannedAlert] = field(default_factory=list)
    digest_items: list[PlannedDigestItem] = field(default_factory=list)


def alert_changes(event: MatchEvent) -> tuple[Change, ...] | None:
    """What an alert about ``event`` reports; None when it is not worth an alert."""
    if event.first_match:
        return tuple(c for c in event.changes if c.kind in ALERT_KINDS)
    material = tuple(c for c in event.changes if c.kind in ALERT_KINDS)
    return material or None


def _event_tag(event: MatchEvent) -> str:
    if event.first_match:
        return "match"
    return f"change-{max(event.change_ids)}" if event.change_ids else "change"


def plan_events(events: Iterable[MatchEvent], audiences: Sequence[Audience],
                now: datetime) -> Plan:
    """Alerts and digest items for ``events``, for every subscription to their profiles."""
    by_profile: dict[str, list[Audience]] = {}
    for audience in audiences:
        by_profile.setdefault(audience.profile, []).append(audience)
    plan = Plan()
    for event in events:
        changes = alert_changes(event)
        if changes is None:
            continue
        tag = _event_tag(event)
        for audience in by_profile.get(event.profile, ()):
            if audience.mode == "instant":
                for channel in audience.channels:
                    plan.alerts.append(PlannedAlert(
                        key=f"alert|{audience.subscriber_id}|{channel}|{event.call.id}|{tag}",
                        audience=audience, channel=channel, event=event, changes=changes,
                        not_before=audience.quiet_hours_end or now))
            else:
                plan.digest_items.append(PlannedDigestItem(
                    key=(f"digest-item|{audience.subscriber_id}|{audience.mode}|{event.profile}|"
                         f"{event.call.id}|{tag}"),
                    audience=audience, event=event,
                    change_id=max(event.change_ids) if event.change_ids else None))
    return plan


def digest_period(mode: str, now: datetime, timezone: str) -> str | None:
    """The period a digest due at ``now`` covers ("2026-11-26", "2026-W48"), or None if not due.

    A digest is due from ``DIGEST_HOUR`` local time on its day (Monday for weekly) until
    the end of that day, so a scheduler that ran late still sends it, once.
    """
    local = now.astimezone(ZoneInfo(timezone))
    if local.hour < DIGEST_HOUR:
        return None
    if mode == "daily":
        return local.date().isoformat()
    if mode == "weekly" and local.weekday() == DIGEST_WEEKDAY:
        year, week, _ = local.isocalendar()
        return f"{year}-W{week:02d}"
    return None


def closing_soon(call: CallRecord, mode: str, now: datetime) -> bool:
    """Whether ``call`` belongs in a ``mode`` digest's "closing soon" group."""
    if call.status is CallStatus.CLOSED:
        return False
    deadline = call.next_deadline(now)
    return deadline is not None and now <= deadline <= now + CLOSING_SOON.get(mode, timedelta(7))


def plan_reminders(
    audiences: Sequence[Audience],
    matched: Mapping[str, Sequence[tuple[CallRecord, tuple[str, ...]]]],
    now: datetime,
) -> list[PlannedReminder]:
    """Reminders due today (in each subscriber's zone) for every matched call of each profile."""
    plans: list[PlannedReminder] = []
    for audience in audiences:
        zone = ZoneInfo(audience.timezone)
        today: date = now.astimezone(zone).date()
        for call, reasons in matched.get(audience.profile, ()):
            if call.status is CallStatus.CLOSED:
                continue
            for cutoff in call.deadlines:
                if cutoff < now:
                    continue
                days = (cutoff.astimezone(zone).date() - today).days
                if days not in audience.reminders:
                    continue
                for channel in audience.channels:
                    plans.append(PlannedReminder(
                        key=(f"reminder|{audience.subscriber_id}|{channel}|{call.id}|"
                             f"{cutoff:%Y-%m-%dT%H:%M}|{days}"),
                        audience=audience, channel=channel, call=call, reasons=reasons,
                        cutoff=cutoff, days=days, not_before=audience.quiet_hours_end or now))
    return plans
