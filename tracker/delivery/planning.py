"""Deciding who is told what, and when (pure: data and ``now`` in, plans out).

Rules, in the order the pipeline applies them:

- **Instant alerts.** A call that matches a profile for the first time gives every
  ``instant`` subscriber of that profile a "new matching call" alert. A call that matched
  before gives them an alert for its typed changes of the kinds in ``ALERT_KINDS``
  (deadline moved, opened, reopened, closed, budget changed, title changed, a new update
  from the portal). Opening dates, identifiers and the like (``details_changed``) and
  ``removed_from_source`` never alert on their own.
- **A first cycle that does not flood.** When a profile is matched for the first time (its
  first run: every stored call is new to it) and an instant subscriber would get more
  than one alert on a channel, or when any cycle would send one subscriber more than
  ``summary_after`` alerts on one channel (``[alerts] summary_after``, default 5), those
  alerts go out as **one** summary: "12 calls match hydrogen-valley; here are the 5
  closing first", with the others listed by title. After that, alerts go one by one.
- **Digests.** The same events become digest entries, one per profile and event (not per
  subscriber); a first-time match is entered as new (no change id), whatever change
  brought it in. One digest per ``daily`` or ``weekly`` subscriber and period gathers the
  entries of all their profiles written since their last digest, plus the matched calls
  closing soon (a cut-off reaching one of the subscriber's reminder days within the
  period: 30, 7 and 1 days before it by default) and opening soon (an opening date within
  ``SOON`` of the period's start). A digest that falls due while the subscriber is muted (or has no usable
  channel) is skipped, and what it would have said is not carried over. Daily digests are
  due at the schedule's hour (08:00 by default) local time, weekly ones on its weekday
  (Monday by default) at that hour. An empty period sends nothing.
- **Reminders.** For every matched, not dismissed, open or forthcoming call of every
  subscription, a reminder is due on the local day that is N days before each cut-off,
  for each N in the subscriber's ``reminders``.
- **Quiet hours** delay instant alerts and reminders (never drop them) to the end of the
  subscriber's quiet hours.

The notify step reads what changed (``ChangedCalls``, ``tracker.delivery.outbox``), matches it
(``match_changes``), plans it (``plan_notify``) and writes the plan: the two middle steps
are here, pure.

Every plan carries an idempotency key (subscriber, channel, call or period, kind); the
outbox's unique index on it makes enqueueing twice impossible.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from tracker.dates import days_left
from tracker.dates import zone as zone_named
from tracker.delivery import REMINDER_DAYS, SUMMARY_AFTER
from tracker.models import CallRecord, CallStatus, Change, ChangeKind
from tracker.rules.matcher import Match, match_calls
from tracker.rules.profiles import Profile

ALERT_KINDS = frozenset({
    ChangeKind.DEADLINE_CHANGED, ChangeKind.OPENED, ChangeKind.REOPENED, ChangeKind.CLOSED,
    ChangeKind.BUDGET_CHANGED, ChangeKind.TITLE_CHANGED, ChangeKind.DOCUMENTS_CHANGED,
    ChangeKind.STATUS_CHANGED,
})
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


@dataclass(frozen=True)
class DigestSchedule:
    """When digests fall due, in each subscriber's own time zone (``[digests]`` settings)."""

    hour: int = 8  # daily and weekly digests are due from this local hour
    weekday: int = 0  # the weekly digest's day, Monday = 0


DEFAULT_SCHEDULE = DigestSchedule()
#: how far ahead a digest looks for calls opening soon, by its period
SOON = {"daily": timedelta(days=7), "weekly": timedelta(days=14)}
#: how many days a digest covers, by its period (closing soon: reminder days within them)
PERIOD_DAYS = {"daily": 1, "weekly": 7}


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
    reminders: tuple[int, ...] = REMINDER_DAYS
    token: str | None = None
    language: str = "en"  # the subscriber's: what its messages are written in


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
class PlannedSummary:
    """One message in place of the alerts a subscriber would get on one channel in one
    cycle: its first cycle, or a backlog of more than ``summary_after``."""

    key: str
    audience: Audience
    channel: str
    #: each summarized event with the changes its alert would have reported
    items: tuple[tuple[MatchEvent, tuple[Change, ...]], ...]
    not_before: datetime


@dataclass(frozen=True)
class PlannedDigestEntry:
    """Something to mention in the next digest of every daily or weekly follower of a profile."""

    key: str
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


def plan_alerts(events: Iterable[MatchEvent], audiences: Sequence[Audience], now: datetime,
                first_run: Collection[str] = frozenset(),
                summary_after: int = SUMMARY_AFTER) -> list[PlannedAlert | PlannedSummary]:
    """Alerts for ``events``, for every instant subscription to their profiles; a
    subscriber's alerts on one channel become one summary when one of their profiles is on
    its ``first_run`` and there is more than one, or when there are more than
    ``summary_after`` (see the module docstring); a ``summary_after`` of 0 never summarizes."""
    by_profile: dict[str, list[Audience]] = {}
    for audience in audiences:
        if audience.mode == "instant":
            by_profile.setdefault(audience.profile, []).append(audience)
    # per subscriber and channel, in the order of the events
    grouped: dict[tuple[int, str], list[PlannedAlert]] = {}
    for event in events:
        followers = by_profile.get(event.profile)
        if not followers:
            continue
        changes = alert_changes(event)
        if changes is None:
            continue
        tag = _event_tag(event)
        for audience in followers:
            for channel in audience.channels:
                grouped.setdefault((audience.subscriber_id, channel), []).append(PlannedAlert(
                    key=f"alert|{audience.subscriber_id}|{channel}|{event.call.id}|{tag}",
                    audience=audience, channel=channel, event=event, changes=changes,
                    not_before=audience.quiet_hours_end or now))
    plans: list[PlannedAlert | PlannedSummary] = []
    for (subscriber_id, channel), alerts in grouped.items():
        first = any(a.event.profile in first_run for a in alerts)
        if summary_after and (len(alerts) > summary_after or (first and len(alerts) > 1)):
            plans.append(_summary(subscriber_id, channel, alerts))
        else:
            plans.extend(alerts)
    return plans


def _summary(subscriber_id: int, channel: str, alerts: Sequence[PlannedAlert]) -> PlannedSummary:
    """The summary of ``alerts``; its key is made of theirs, so planning the same events
    again gives the same key (and the outbox keeps one)."""
    digest = hashlib.sha256("\n".join(sorted(a.key for a in alerts)).encode()).hexdigest()[:24]
    return PlannedSummary(key=f"summary|{subscriber_id}|{channel}|{digest}",
                          audience=alerts[0].audience, channel=channel,
                          items=tuple((a.event, a.changes) for a in alerts),
                          not_before=max(a.not_before for a in alerts))


def plan_digest_entries(events: Iterable[MatchEvent]) -> list[PlannedDigestEntry]:
    """One digest entry for each event worth telling, whoever follows its profile: the
    digest round reads them per subscription, so they do not grow with the subscribers."""
    entries: list[PlannedDigestEntry] = []
    for event in events:
        if alert_changes(event) is None:
            continue
        # a first-time match is a new call for the digest, whatever change brought it in
        change_id = max(event.change_ids) if event.change_ids and not event.first_match else None
        entries.append(PlannedDigestEntry(
            key=f"{event.profile}|{event.call.id}|{_event_tag(event)}", event=event,
            change_id=change_id))
    return entries


# -- the notify step: what changed → matches and events → alerts and digest entries ---------

@dataclass(frozen=True)
class ChangedCalls:
    """What the notify step reads before it decides anything (one connection, one
    transaction with its writes): the change events after the cursor, and what matching
    them needs."""

    #: id of the newest change event read: where the cursor moves when the step commits
    through: int
    #: how many change events were read
    events: int
    #: each changed call's events, (event id, change) in id order
    changes: Mapping[str, Sequence[tuple[int, Change]]]
    #: the changed calls as stored (a change of a call no longer stored is skipped)
    calls: Mapping[str, CallRecord]
    #: every dismissed (profile, call id)
    dismissed: frozenset[tuple[str, str]]
    #: the matches recorded before this step for the changed calls: (profile, call id,
    #: reasons), in the order read
    recorded: Sequence[tuple[str, str, tuple[str, ...]]] = ()


def _match_event(changed: ChangedCalls, profile: str, call_id: str, reasons: tuple[str, ...],
                 first_match: bool) -> MatchEvent:
    pairs = changed.changes[call_id]
    return MatchEvent(profile=profile, call=changed.calls[call_id], reasons=reasons,
                      first_match=first_match, changes=tuple(c for _, c in pairs),
                      change_ids=tuple(i for i, _ in pairs))


def match_changes(changed: ChangedCalls, profiles: Sequence[Profile],
                  now: datetime) -> tuple[list[Match], list[MatchEvent]]:
    """The changed calls matched against every profile (``Match.new`` set for a pair never
    recorded before), and the events they make: one per match, then one per recorded match
    that no longer matches (closed, moved out of the window), whose followers are still
    told what happened, unless they dismissed the call."""
    matches = match_calls(list(changed.calls.values()), list(profiles), now, changed.dismissed)
    known = {(profile, call_id) for profile, call_id, _ in changed.recorded}
    flagged = [m._replace(new=(m.profile, m.call_id) not in known) for m in matches]
    events = [_match_event(changed, m.profile, m.call_id, m.reasons, m.new) for m in flagged]
    matched_now = {(m.profile, m.call_id) for m in flagged}
    events.extend(_match_event(changed, profile, call_id, reasons, False)
                  for profile, call_id, reasons in changed.recorded
                  if (profile, call_id) not in matched_now
                  and (profile, call_id) not in changed.dismissed)
    return flagged, events


@dataclass(frozen=True)
class NotifyPlan:
    """What the events of one notify step cause: a digest entry per event worth telling,
    and instant alerts, planned per batch of subscribers (the write step reads them a batch
    at a time, so memory is bounded by the batch, not by the subscribers)."""

    events: Sequence[MatchEvent]
    digest_entries: Sequence[PlannedDigestEntry]
    #: profile → positions of its events in ``events``
    by_profile: Mapping[str, Sequence[int]] = field(default_factory=dict)
    #: the profiles matched for the first time in this step
    first_run: frozenset[str] = frozenset()
    summary_after: int = SUMMARY_AFTER

    def alerts(self, audiences: Sequence[Audience],
               now: datetime) -> list[PlannedAlert | PlannedSummary]:
        """The alerts for one batch of subscriptions: planned with the events of their
        profiles only, in their original order, so the plan is what all events would give
        (a batch holds whole subscribers, so a summary sees all of a subscriber's alerts)."""
        wanted = sorted(position for profile in {a.profile for a in audiences}
                        for position in self.by_profile.get(profile, ()))
        return plan_alerts([self.events[p] for p in wanted], audiences, now,
                           self.first_run, self.summary_after)


def plan_notify(events: Sequence[MatchEvent], first_run: Collection[str] = frozenset(),
                summary_after: int = SUMMARY_AFTER) -> NotifyPlan:
    """The plan of one notify step's ``events`` (see ``NotifyPlan``); ``first_run`` names
    the profiles never matched before this step."""
    by_profile: dict[str, list[int]] = {}
    for position, event in enumerate(events):
        by_profile.setdefault(event.profile, []).append(position)
    return NotifyPlan(events=events, digest_entries=plan_digest_entries(events),
                      by_profile=by_profile, first_run=frozenset(first_run),
                      summary_after=summary_after)


def digest_period(mode: str, now: datetime, timezone: str,
                  schedule: DigestSchedule = DEFAULT_SCHEDULE) -> str | None:
    """The period a digest due at ``now`` covers ("2026-11-26", "2026-W48"), or None if not due.

    A digest is due from the schedule's hour, local time, on its day (the schedule's weekday
    for weekly ones) until the end of that day, so a scheduler that ran late still sends
    it, once.
    """
    local = now.astimezone(zone_named(timezone))
    if local.hour < schedule.hour:
        return None
    if mode == "daily":
        return local.date().isoformat()
    if mode == "weekly" and local.weekday() == schedule.weekday:
        year, week, _ = local.isocalendar()
        return f"{year}-W{week:02d}"
    return None


def closing_soon(call: CallRecord, mode: str, now: datetime, timezone: str,
                 reminders: Iterable[int]) -> bool:
    """Whether ``call`` belongs in a ``mode`` digest's "closing soon" section: one of its
    cut-offs reaches one of the subscriber's ``reminders`` (days before it, counted in
    their zone) within the digest's period, so a call is listed on those days, not in
    every digest until it closes."""
    if call.status is CallStatus.CLOSED:
        return False
    zone = zone_named(timezone)
    span = PERIOD_DAYS.get(mode, 1)
    for cutoff in call.deadlines:
        if cutoff < now:
            continue
        days = days_left(cutoff, now, zone)
        if any(0 <= days - r < span for r in reminders):
            return True
    return False


def opening_soon(call: CallRecord, mode: str, now: datetime) -> bool:
    """Whether ``call`` belongs in a ``mode`` digest's "opening soon" section: forthcoming,
    opening within ``SOON`` of ``now``."""
    opening = call.opening_date
    return (call.status is CallStatus.FORTHCOMING and opening is not None
            and now <= opening <= now + SOON.get(mode, timedelta(days=7)))


def plan_reminders(
    audiences: Sequence[Audience],
    matched: Mapping[str, Sequence[tuple[CallRecord, tuple[str, ...]]]],
    now: datetime,
) -> list[PlannedReminder]:
    """Reminders due today (in each subscriber's zone) for every matched call of each profile."""
    plans: list[PlannedReminder] = []
    for audience in audiences:
        zone = zone_named(audience.timezone)
        for call, reasons in matched.get(audience.profile, ()):
            if call.status is CallStatus.CLOSED:
                continue
            for cutoff in call.deadlines:
                if cutoff < now:
                    continue
                days = days_left(cutoff, now, zone)
                if days not in audience.reminders:
                    continue
                for channel in audience.channels:
                    plans.append(PlannedReminder(
                        key=(f"reminder|{audience.subscriber_id}|{channel}|{call.id}|"
                             f"{cutoff:%Y-%m-%dT%H:%M}|{days}"),
                        audience=audience, channel=channel, call=call, reasons=reasons,
                        cutoff=cutoff, days=days, not_before=audience.quiet_hours_end or now))
    return plans
