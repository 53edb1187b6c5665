"""Where profiles live: YAML files in git and the database, and which wins when both name one.

Profiles made on the web (``tracker.web.manage_profiles``) or by the bot are rows of the
``profiles`` table with no ``source``. The YAML directory (``profiles.directory``) stays
supported for the teams that keep profiles in git:

- **Import.** At start (``callwatch web``) and at every notify step (``tracker.pipeline``),
  :func:`import_files` mirrors each file's profile into the table, with ``source`` set to
  its file, and removes the mirrors of files that are gone. The web pages read the table,
  so they list both kinds; the matcher keeps reading the files themselves
  (``tracker.rules.service.load_profiles``), so an edited file counts from the next step.
- **The file wins.** When a file and a database profile have the same name, the file's
  definition is the one matched (:func:`shadowed_by_files`) and the import turns the row
  into the file's mirror (with a warning: the web definition is replaced). The web editor
  shows such a profile read-only, "managed in git: <file>", and refuses to create a profile
  whose name a file uses. Why the file: a git repository is reviewed and versioned, and a
  save on the web must never silently undo a reviewed change; a team that wants to edit a
  profile on the web removes its file.
- **Export.** :func:`export_profiles` (``callwatch profiles export DIR``) writes every
  profile made in the database as ``DIR/<name>.yaml``, which ``callwatch profiles check``
  accepts; committing them into the profiles directory hands them over to git.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import yaml
from sqlalchemy.engine import Engine

from tracker.rules.profiles import Profile
from tracker.rules.store import DATABASE_ORIGIN
from tracker.store.db import insert_for, profiles_table

log = logging.getLogger(__name__)


def shadowed_by_files(files: Sequence[Profile], stored: Sequence[Profile]) -> list[Profile]:
    """``stored`` less the profiles a file also defines (the file wins), each with a warning."""
    named = {p.name: p.origin for p in files}
    kept = []
    for profile in stored:
        if profile.name in named:
            log.warning("profile %s is defined in %s and in the database: the file wins",
                        profile.name, named[profile.name], extra={"profile": profile.name})
        else:
            kept.append(profile)
    return kept


@dataclass(frozen=True)
class StoredProfile:
    """One row of the profiles table, as the web editor lists it."""

    name: str
    definition: dict[str, Any]
    tenant: str | None
    #: None: made in the database (editable on the web); else the YAML file it mirrors
    source: str | None
    updated_by: str | None
    updated_at: datetime

    @property
    def editable(self) -> bool:
        return self.source is None


def stored_profiles(engine: Engine, names: Iterable[str] | None = None) -> list[StoredProfile]:
    """Every row of the profiles table (or those called ``names``), by name."""
    query = sa.select(profiles_table).order_by(profiles_table.c.name)
    if names is not None:
        query = query.where(profiles_table.c.name.in_(sorted(set(names))))
    with engine.connect() as connection:
        return [StoredProfile(name=r.name, definition=dict(r.definition), tenant=r.tenant,
                              source=r.source, updated_by=r.updated_by, updated_at=r.updated_at)
                for r in connection.execute(query)]


def save_web_profile(engine: Engine, profile: Profile, *, tenant: str | None, by: str,
                     now: datetime) -> None:
    """Create or replace the database profile ``profile.name``, owned by ``tenant``.

    The caller has checked that the name is not a file's (``StoredProfile.editable``).
    """
    with engine.begin() as connection:
        statement = insert_for(connection, profiles_table).values(
            name=profile.name, definition=profile.as_mapping(), created_at=now, updated_at=now,
            tenant=tenant, source=None, updated_by=by)
        connection.execute(statement.on_conflict_do_update(
            index_elements=[profiles_table.c.name],
            set_={"definition": statement.excluded.definition, "updated_at": now,
                  "updated_by": by},
            where=profiles_table.c.source.is_(None),  # never over a file's mirror
        ))


@dataclass(frozen=True)
class ImportReport:
    """What :func:`import_files` changed in the table."""

    written: tuple[str, ...]
    removed: tuple[str, ...]
    #: database profiles the files took over (their web definition was replaced)
    taken_over: tuple[str, ...]


def import_files(engine: Engine, profiles: Sequence[Profile], now: datetime) -> ImportReport:
    """Mirror the file profiles among ``profiles`` (``load_profiles``' answer: those from the
    database are skipped) into the table, writing only what changed, and remove the
    mirrors of files that are gone. A database profile of a file's name becomes that
    file's mirror: the file wins."""
    wanted = {p.name: p for p in profiles if p.origin != DATABASE_ORIGIN}
    with engine.begin() as connection:
        rows = {r.name: r for r in connection.execute(
            sa.select(profiles_table.c.name, profiles_table.c.definition, profiles_table.c.source))}
        written, taken_over = [], []
        for name, profile in sorted(wanted.items()):
            row = rows.get(name)
            definition = profile.as_mapping()
            if row is not None and row.source == profile.origin and row.definition == definition:
                continue
            if row is not None and row.source is None:
                taken_over.append(name)
                log.warning("profile %s: the file %s replaces the profile made in the database",
                            name, profile.origin, extra={"profile": name})
            statement = insert_for(connection, profiles_table).values(
                name=name, definition=definition, created_at=now, updated_at=now,
                source=profile.origin)
            connection.execute(statement.on_conflict_do_update(
                index_elements=[profiles_table.c.name],
                set_={"definition": definition, "updated_at": now, "source": profile.origin}))
            written.append(name)
        gone = sorted(n for n, r in rows.items() if r.source is not None and n not in wanted)
        if gone:
            connection.execute(profiles_table.delete().where(profiles_table.c.name.in_(gone)))
    return ImportReport(tuple(written), tuple(gone), tuple(taken_over))


def profile_yaml(profile: Profile, comment: str = "") -> str:
    """``profile`` as the YAML file that would produce it: the fields that differ from their
    defaults, in the model's order, after ``comment`` (``# `` lines)."""
    mapping = profile.model_dump(mode="json", exclude_defaults=True)
    mapping = {"name": profile.name, **mapping}
    text = yaml.safe_dump(mapping, sort_keys=False, allow_unicode=True, width=100)
    head = "".join(f"# {line}\n" for line in comment.splitlines())
    return head + text


def export_profiles(engine: Engine, directory: Path) -> list[Path]:
    """Write every profile made in the database as ``directory/<name>.yaml`` (replacing a
    file of that name); the files written. File mirrors are not exported: git has them."""
    from tracker.rules.profiles import validate_profile

    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for row in stored_profiles(engine):
        if not row.editable:
            continue
        profile, problems = validate_profile(row.definition, f"database profile {row.name!r}")
        if profile is None:
            log.warning("profile %s is not valid and is not exported: %s", row.name,
                        "; ".join(str(p) for p in problems), extra={"profile": row.name})
            continue
        owner = f" for tenant {row.tenant}" if row.tenant else ""
        path = directory / f"{profile.name}.yaml"
        path.write_text(profile_yaml(profile, f"exported from the callwatch database{owner}"),
                        encoding="utf-8")
        written.append(path)
    return written
