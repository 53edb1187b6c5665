"""The rules layer's imperative shell: load profiles and calls, run the pure matcher.

``match_stored`` is what ``callwatch match`` runs. The notify cycle does not come here: it
matches the calls a run changed (``tracker.delivery.planning.match_changes``, pure) and
``tracker.delivery.outbox.notify_changes`` records every match it alerts. The recorded matches
are how that step tells a first match, which is alerted, from a repeat, which is not, so
``match_stored`` records none (a look at the matches before the next run would swallow its
alerts). It leaves dismissed calls out, sets ``Match.new`` for a pair never recorded (not
yet announced) and remembers when each profile was matched.

"Changed since the last match run", the default of ``callwatch match``: for each profile,
the calls whose ``last_changed`` is after that profile's last match run; every call when
the profile was never matched; every call with ``--all``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from sqlalchemy.engine import Engine

from tracker.config import Settings
from tracker.errors import NotFoundError
from tracker.rules.matcher import Match, match_calls, rank
from tracker.rules.profiles import Profile, ProfileError, duplicate_names, read_profiles
from tracker.rules.sources import shadowed_by_files
from tracker.rules.store import RulesStore


def load_profiles(settings: Settings, engine: Engine | None) -> list[Profile]:
    """Every profile: YAML files in ``profiles.directory``, then database profiles (none
    without an ``engine``: a check that must not create the database).

    A file wins over a database profile of the same name (``tracker.rules.sources``: the
    teams that keep profiles in git decide), which is left out with a warning.
    Raises ProfileError listing every problem (files, database rows, duplicate names).
    """
    directory = Path(settings.profiles.directory)
    files, problems = read_profiles([directory]) if directory.exists() else ([], [])
    stored, stored_problems = RulesStore(engine).read_profiles() if engine is not None else ([], [])
    stored = shadowed_by_files(files, stored)
    profiles = [*files, *stored]
    problems = [*problems, *stored_problems, *duplicate_names(profiles)]
    if problems:
        raise ProfileError(problems)
    return sorted(profiles, key=lambda p: p.name)


def select_profiles(profiles: Sequence[Profile], name: str | None) -> list[Profile]:
    """All profiles, or the one called ``name`` (NotFoundError if there is none)."""
    if name is None:
        return list(profiles)
    chosen = [p for p in profiles if p.name == name]
    if not chosen:
        known = ", ".join(p.name for p in profiles) or "none"
        raise NotFoundError(f"no profile named {name!r} (profiles: {known})")
    return chosen


def match_stored(
    engine: Engine,
    settings: Settings,
    now: datetime,
    *,
    profile: str | None = None,
    everything: bool = False,
) -> list[Match]:
    """Match stored calls changed since each profile's last run (every call with ``everything``).

    Read-only as to what subscribers are told: the matches are not recorded, only flagged
    ``new`` when not yet announced; the profiles' last match runs are remembered. Calls are
    matched with the status they have at ``now`` (``StoredCall.as_of``), and a call whose
    status time has moved since it was stored counts as changed.
    """
    profiles = select_profiles(load_profiles(settings, engine), profile)
    rules = RulesStore(engine)
    stored = [(c.as_of(now), c.record.status) for c in rules.calls()]
    last_runs = {} if everything else rules.last_runs()
    by_since: defaultdict[datetime | None, list[Profile]] = defaultdict(list)
    for chosen in profiles:
        by_since[last_runs.get(chosen.name)].append(chosen)
    dismissed = rules.dismissed([p.name for p in profiles])
    matches: list[Match] = []
    for since, group in by_since.items():
        calls = [c.record for c, was in stored
                 if since is None or c.last_changed > since or c.record.status is not was]
        matches.extend(match_calls(calls, group, now, dismissed))
    flagged = rules.flag_new(rank(matches))
    rules.mark_run((p.name for p in profiles), now)
    return flagged
