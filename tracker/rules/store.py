"""Durable state of the rules layer: database profiles, dismissals, recorded matches, match runs.

Dismissals are feedback: once a call is dismissed for a profile it is never matched for
that profile again. Recorded matches (one row per profile and call, with the latest score
and reasons and when the pair first and last matched) let notifiers tell a new match from
one already announced; only the notifier records them, so nothing else can make a match
look announced when no alert went out. The last match run of each profile lets ``callwatch match`` look
only at calls changed since. Writes are dialect upserts, the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from tracker.models import CallRecord
from tracker.rules.matcher import Match
from tracker.rules.profiles import Profile, ProfileError, ProfileProblem, validate_profile
from tracker.store.calls import StoredCall
from tracker.store.db import calls_table, chunks, dismissals_table, insert_for, matches_table, profiles_table
from tracker.store.db import profile_runs_table as runs_table

DATABASE_ORIGIN = "database"


class RulesStore:
    """Reads and writes of the rules tables."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # -- database profiles

    def save_profile(self, profile: Profile, now: datetime) -> None:
        """Create or replace the database profile called ``profile.name``."""
        with self.engine.begin() as connection:
            statement = insert_for(connection, profiles_table).values(
                name=profile.name, definition=profile.as_mapping(), created_at=now, updated_at=now)
            connection.execute(statement.on_conflict_do_update(
                index_elements=[profiles_table.c.name],
                set_={"definition": statement.excluded.definition, "updated_at": now},
            ))

    def delete_profile(self, name: str) -> bool:
        """Remove a database profile; False when there was none of that name."""
        with self.engine.begin() as connection:
            result = connection.execute(profiles_table.delete().where(profiles_table.c.name == name))
        return bool(result.rowcount)

    def read_profiles(self) -> tuple[list[Profile], list[ProfileProblem]]:
        """Every database profile that validates, and a problem for each one that does not.

        Made in the database only: the rows that mirror a YAML file (``source`` set, by
        ``tracker.rules.sources.import_files``) are read from their files instead.
        """
        with self.engine.connect() as connection:
            rows = connection.execute(
                sa.select(profiles_table.c.name, profiles_table.c.definition)
                .where(profiles_table.c.source.is_(None))
                .order_by(profiles_table.c.name)
            ).all()
        profiles: list[Profile] = []
        problems: list[ProfileProblem] = []
        for name, definition in rows:
            profile, found = validate_profile(definition, f"{DATABASE_ORIGIN} profile {name!r}")
            problems.extend(found)
            if profile is not None:
                profiles.append(profile.with_origin(DATABASE_ORIGIN))
        return profiles, problems

    def profiles(self) -> list[Profile]:
        """Every database profile; ProfileError if any stored one no longer validates."""
        profiles, problems = self.read_profiles()
        if problems:
            raise ProfileError(problems)
        return profiles

    # -- dismissals

    def dismiss(self, profile: str, call_id: str, now: datetime) -> bool:
        """Mark ``call_id`` not relevant for ``profile``; False when it already was."""
        with self.engine.begin() as connection:
            statement = insert_for(connection, dismissals_table).values(
                profile=profile, call_id=call_id, at=now)
            # RETURNING, not rowcount: psycopg reports -1 rows for ON CONFLICT DO NOTHING
            inserted = connection.execute(statement.on_conflict_do_nothing(
                index_elements=[dismissals_table.c.profile, dismissals_table.c.call_id],
            ).returning(dismissals_table.c.id)).first()
        return inserted is not None

    def dismissed(self, profiles: Collection[str] | None = None) -> set[tuple[str, str]]:
        """Every (profile, call id) dismissed, for ``profiles`` or for all."""
        query = sa.select(dismissals_table.c.profile, dismissals_table.c.call_id)
        if profiles is not None:
            query = query.where(dismissals_table.c.profile.in_(list(profiles)))
        with self.engine.connect() as connection:
            return {(p, c) for p, c in connection.execute(query)}

    # -- recorded matches and match runs

    def record_matches(self, matches: Sequence[Match], now: datetime,
                       connection: Connection | None = None) -> None:
        """Upsert ``matches`` (score, reasons, when first and last matched); writes only.

        Which of them are new is decided before, by whoever read the recorded pairs: the
        notify step reads them with the changed calls, in the transaction this joins
        (``planning.match_changes``); ``flag_new`` reads them for anyone else. Reading them
        again here, after that, would only repeat a query whose answer is known.

        With ``connection`` the upsert joins the caller's transaction (the notifier records
        matches and enqueues the alerts they cause in one transaction).
        """
        if connection is None:
            with self.engine.begin() as own:
                self.record_matches(matches, now, own)
            return
        for chunk in chunks(matches):
            rows = [
                {"profile": m.profile, "call_id": m.call_id, "score": m.score,
                 "reasons": list(m.reasons), "first_matched": now, "last_matched": now}
                for m in chunk
            ]
            statement = insert_for(connection, matches_table)
            connection.execute(statement.on_conflict_do_update(
                index_elements=[matches_table.c.profile, matches_table.c.call_id],
                set_={"score": statement.excluded.score, "reasons": statement.excluded.reasons,
                      "last_matched": statement.excluded.last_matched},
            ), rows)

    def flag_new(self, matches: Sequence[Match]) -> list[Match]:
        """``matches`` with ``new`` set for pairs never recorded, recording nothing.

        For ``callwatch match``, which only shows: the recorded matches are what the
        notifier reads to tell a first match (an alert) from a repeat, so a look at the
        matches must leave them as they are.
        """
        with self.engine.connect() as connection:
            return [m for chunk in chunks(matches) for m in _flagged(connection, chunk)]

    def matched_calls(self, profile: str) -> set[str]:
        """Ids of every call ever recorded as matching ``profile``."""
        with self.engine.connect() as connection:
            return set(connection.execute(
                sa.select(matches_table.c.call_id).where(matches_table.c.profile == profile)
            ).scalars())

    def last_runs(self) -> dict[str, datetime]:
        """When each profile was last matched."""
        with self.engine.connect() as connection:
            return {p: at for p, at in connection.execute(
                sa.select(runs_table.c.profile, runs_table.c.last_run))}

    def mark_run(self, profiles: Iterable[str], now: datetime) -> None:
        """Record that ``profiles`` were matched at ``now``."""
        rows = [{"profile": name, "last_run": now} for name in sorted(set(profiles))]
        if not rows:
            return
        with self.engine.begin() as connection:
            statement = insert_for(connection, runs_table)
            connection.execute(statement.on_conflict_do_update(
                index_elements=[runs_table.c.profile],
                set_={"last_run": statement.excluded.last_run}), rows)

    # -- calls, as the matcher needs them

    def calls(self, ids: Collection[str] | None = None) -> list[StoredCall]:
        """The stored calls with ``ids`` (unknown ids are skipped), or every call; in id order."""
        query = sa.select(calls_table).order_by(calls_table.c.id)
        with self.engine.connect() as connection:
            if ids is None:
                rows = list(connection.execute(query))
            else:
                rows = []
                for chunk in chunks(sorted(set(ids))):
                    rows.extend(connection.execute(query.where(calls_table.c.id.in_(chunk))))
        return [
            StoredCall(record=CallRecord.model_validate(row.record), first_seen=row.first_seen,
                       last_seen=row.last_seen, last_changed=row.last_changed,
                       still_listed=row.still_listed)
            for row in sorted(rows, key=lambda r: r.id)
        ]


def _flagged(connection: Connection, matches: Sequence[Match]) -> list[Match]:
    """``matches`` (one chunk) with ``new`` set for the (profile, call id) pairs not recorded."""
    call_ids = sorted({m.call_id for m in matches})
    names = sorted({m.profile for m in matches})
    known = {(p, c) for p, c in connection.execute(
        sa.select(matches_table.c.profile, matches_table.c.call_id).where(
            matches_table.c.call_id.in_(call_ids), matches_table.c.profile.in_(names)))}
    return [m._replace(new=(m.profile, m.call_id) not in known) for m in matches]
