"""Database tables, engine set-up and schema migrations (SQLite embedded, PostgreSQL in production).

The tables hold callwatch's whole durable state. ``calls`` keeps one row per call with the
queryable columns broken out and the full normalized record as JSON; ``call_changes`` is
the append-only history; ``source_runs`` logs every scrape. The schema is owned by Alembic
migrations in ``tracker/migrations``; ``callwatch db upgrade`` applies them.

Policy: the embedded SQLite database upgrades itself when a command opens it (one user, one
file, nothing to coordinate). A PostgreSQL database is never migrated implicitly: commands
refuse with a message that names ``callwatch db upgrade``.

A database that cannot be used (a server that is down, a file locked by another process,
read-only, not a database at all, a path that cannot be created) is reported as one
:class:`~tracker.errors.DatabaseUnavailable` naming the URL with its password masked
(``database_problem``); ``check_writable`` finds a locked or read-only database before a
command fetches or sends anything, not after.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import unquote

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Column, Field, SQLModel

from tracker.errors import ConfigError, DatabaseUnavailable, SchemaError
from tracker.models import Change, ChangeKind

if TYPE_CHECKING:  # Alembic is imported only to migrate (0.5 s a command would pay at start)
    from alembic.config import Config as AlembicConfig

MIGRATIONS = Path(__file__).parent / "migrations"


#: how many instants a datetime column remembers the written form of (``UTCDateTime``)
REMEMBERED_INSTANTS = 4096


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """A timezone-aware datetime stored as UTC on every backend.

    PostgreSQL keeps ``timestamptz`` natively; SQLite has no timezone type, so values are
    written in UTC and read back with UTC attached. Naive values are refused on write.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"refusing to store naive datetime {value.isoformat()}")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def bind_processor(self, dialect: sa.Dialect) -> Callable[[datetime | None], Any] | None:
        """``process_bind_param`` and the dialect's own writing (SQLite's text format),
        remembered per value: a scrape writes the same few instants over and over (its
        ``now`` three times in every call's row, the same cut-offs in many calls), and
        converting and formatting each was 9 of every 100 ms the store spent writing a
        first portal scrape (issue 15). What is written for a value is what it was."""
        process = super().bind_processor(dialect)
        if process is None:
            return None
        written: dict[datetime, Any] = {}

        def remembered(value: datetime | None) -> Any:
            if value is None:
                return None
            try:
                # equal aware datetimes are one instant, written alike; a naive one equals
                # none of the remembered (all aware), so it still reaches the refusal
                return written[value]
            except KeyError:
                stored = process(value)
                if len(written) >= REMEMBERED_INSTANTS:
                    written.clear()
                written[value] = stored
                return stored

        return remembered

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


JSONType = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


class JSONText(dict[str, Any]):
    """A JSON object given with the text ``json.dumps`` writes for it, so that a JSON column
    stores that text instead of serializing the object again (``write_json``).

    The store writes each record's text once, for its fingerprint, and hands it to the
    ``record`` column in this form: the column's own ``json.dumps`` was the second of two
    serializations of every record (issue 15). A dict, so that an engine made without
    ``write_json`` (``sa.create_engine`` in a test) still writes the same JSON."""

    __slots__ = ("text",)

    def __init__(self, value: dict[str, Any], text: str) -> None:
        super().__init__(value)
        self.text = text


def write_json(value: Any) -> str:
    """The engines' JSON serializer: ``json.dumps`` (SQLAlchemy's default), except for a
    ``JSONText``, whose text is already that."""
    return value.text if isinstance(value, JSONText) else json.dumps(value)

# Each table's Core ``Table`` stands under its class as ``<name>_table``, the one name every
# module imports: SQLModel makes the table at class creation but declares no ``__table__``
# for type checkers, and ``SQLModel.metadata.tables[Row.__tablename__]`` is typed ``Table``.


def _utc_column(*, nullable: bool = False, index: bool = False) -> Any:
    return Field(sa_column=Column(UTCDateTime(), nullable=nullable, index=index))


class CallRow(SQLModel, table=True):
    """One call at one source: indexed columns plus the full record as JSON."""

    __tablename__ = "calls"
    __table_args__ = (sa.Index("ix_calls_status_final_deadline", "status", "final_deadline"),)

    id: str = Field(primary_key=True, max_length=400)
    source: str = Field(index=True, max_length=100)
    native_id: str = Field(max_length=300)
    programme: str | None = Field(default=None, index=True, max_length=100)
    status: str = Field(max_length=20)
    title: str
    call_identifier: str | None = Field(default=None, index=True, max_length=200)
    topic_identifier: str | None = Field(default=None, index=True, max_length=200)
    url: str | None = None
    final_deadline: datetime | None = _utc_column(nullable=True)
    record: dict[str, Any] = Field(sa_column=Column(JSONType, nullable=False))
    fingerprint: str = Field(max_length=64)
    first_seen: datetime = _utc_column()
    last_seen: datetime = _utc_column()
    last_changed: datetime = _utc_column()
    still_listed: bool = True
    missing_runs: int = 0
    #: the digest of the source row this record was read from (``ScrapeResult.digests``),
    #: None when the record is not exactly that row's reading (kept values filled in); last,
    #: where its migration added it, so that a new database is laid out as a migrated one
    raw_digest: str | None = Field(default=None, max_length=64)

calls_table = SQLModel.metadata.tables[CallRow.__tablename__]


class CallListingRow(SQLModel, table=True):
    """What listings filter and order a call by, from its record (migration 0014,
    ``tracker.store.listing``).

    A narrow table of its own: ``calls`` rows carry the whole record (kilobytes each), so a
    page that filters 50,000 calls by their columns there reads hundreds of megabytes.
    """

    __tablename__ = "call_listing"

    call_id: str = Field(foreign_key="calls.id", primary_key=True, max_length=400)
    source: str = Field(max_length=100)
    programme: str | None = Field(default=None, max_length=100)
    #: the status the source stated (as ``calls.status``)
    status: str = Field(max_length=20)
    opening_date: datetime | None = _utc_column(nullable=True)
    first_deadline: datetime | None = _utc_column(nullable=True)
    final_deadline: datetime | None = _utc_column(nullable=True)
    budget_eur: int | None = Field(default=None, sa_column=Column(sa.BigInteger, nullable=True))
    #: the eligible places' countries as ``,DE,GR,`` (empty: the source names none)
    places: str = Field(default="", max_length=2000)
    #: one of its identity keys is another source's too (``tracker.dedupe``): it may be
    #: listed under another source's copy
    shared: bool = False

call_listing_table = SQLModel.metadata.tables[CallListingRow.__tablename__]


class CallSearchRow(SQLModel, table=True):
    """Title, summary, id and keywords casefolded: what `calls list --search` looks in."""

    __tablename__ = "call_search"

    call_id: str = Field(foreign_key="calls.id", primary_key=True, max_length=400)
    text: str = Field(sa_column=Column(sa.Text, nullable=False))

call_search_table = SQLModel.metadata.tables[CallSearchRow.__tablename__]


class CallDeadlineRow(SQLModel, table=True):
    """Every cut-off of a call, so "the next deadline at now" is a query (migration 0014)."""

    __tablename__ = "call_deadlines"

    call_id: str = Field(foreign_key="calls.id", primary_key=True, max_length=400)
    at: datetime = Field(sa_column=Column(UTCDateTime(), primary_key=True))

call_deadlines_table = SQLModel.metadata.tables[CallDeadlineRow.__tablename__]


class CallKeyRow(SQLModel, table=True):
    """The keys by which a call is recognised at another source (``tracker.dedupe``)."""

    __tablename__ = "call_keys"
    __table_args__ = (sa.Index("ix_call_keys_key", "key", "source"),)

    call_id: str = Field(foreign_key="calls.id", primary_key=True, max_length=400)
    key: str = Field(primary_key=True, max_length=1000)
    source: str = Field(max_length=100)

call_keys_table = SQLModel.metadata.tables[CallKeyRow.__tablename__]


class SourceRunRow(SQLModel, table=True):
    """One scrape of one source: when, how it ended, and what it found."""

    __tablename__ = "source_runs"

    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(index=True, max_length=100)
    started_at: datetime = _utc_column()
    finished_at: datetime | None = _utc_column(nullable=True)
    outcome: str = Field(max_length=20)
    items_seen: int = 0
    new: int = 0
    changed: int = 0
    invalid: int = 0
    error: str | None = None
    notes: str | None = None

source_runs_table = SQLModel.metadata.tables[SourceRunRow.__tablename__]


class CallChangeRow(SQLModel, table=True):
    """One typed change event in a call's history (append-only)."""

    __tablename__ = "call_changes"

    id: int | None = Field(default=None, primary_key=True)
    call_id: str = Field(foreign_key="calls.id", index=True, max_length=400)
    run_id: int | None = Field(default=None, foreign_key="source_runs.id", index=True)
    at: datetime = _utc_column(index=True)
    kind: str = Field(max_length=40)
    field: str | None = Field(default=None, max_length=60)
    old: Any = Field(default=None, sa_column=Column(JSONType, nullable=True))
    new: Any = Field(default=None, sa_column=Column(JSONType, nullable=True))

changes_table = SQLModel.metadata.tables[CallChangeRow.__tablename__]


def change_from_row(row: Any) -> Change:
    """The ``Change`` a stored ``call_changes`` row records (a row of ``select(changes_table)``):
    the one way back from the table to the typed event, for every reader of the history."""
    return Change(call_id=row.call_id, kind=ChangeKind(row.kind), field=row.field, old=row.old,
                  new=row.new, at=row.at)


# -- statements every store writes the same way on SQLite and PostgreSQL -------------------

#: rows (or ids) per statement: well under SQLite's limit of bound parameters
CHUNK = 500

_T = TypeVar("_T")


def chunks(items: Sequence[_T], size: int = CHUNK) -> Iterator[Sequence[_T]]:
    """``items`` in slices of ``size``, one statement each (an ``IN`` list, an executemany)."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def insert_for(connection: Connection, table: sa.Table) -> postgresql.Insert | sqlite.Insert:
    """The dialect's INSERT, which knows ``ON CONFLICT``: one upsert code path on both backends."""
    if connection.dialect.name == "postgresql":
        return postgresql.insert(table)
    if connection.dialect.name == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"callwatch supports SQLite and PostgreSQL, not {connection.dialect.name}")


def normalize_url(url: str) -> str:
    """Accept ``postgresql://`` and ``postgres://`` and use the psycopg 3 driver for them."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


#: how long a SQLite connection waits for another writer before "database is locked"
BUSY_TIMEOUT = 10.0
#: how long ``check_writable`` waits for the write lock: long enough for another callwatch
#: process's short write to finish, short enough to tell a held lock at once
PROBE_WAIT = 2.0


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")  # readers never block the scheduler's writes
    cursor.execute("PRAGMA foreign_keys=ON")
    # wait, do not fail, when another writer is busy
    cursor.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT * 1000)}")
    cursor.execute("PRAGMA synchronous=NORMAL")  # safe with WAL, much faster commits
    cursor.close()


def display_url(url: str | sa.URL) -> str:
    """``url`` as a person wrote it, password masked: for messages and logs."""
    parsed = sa.engine.make_url(url) if isinstance(url, str) else url
    shown = parsed.set(drivername=parsed.get_backend_name()).render_as_string(hide_password=True)
    return unquote(shown)  # sqlite:///file:x.db, not sqlite:///file%3Ax.db


def database_exists(url: str) -> bool:
    """Whether the database at ``url`` may already hold something, without creating it:
    a SQLite file that exists (never one in memory), or any server database (connecting
    to one creates nothing)."""
    parsed = sa.engine.make_url(normalize_url(url))
    if parsed.get_backend_name() != "sqlite":
        return True
    database = parsed.database or ""
    if not database or database == ":memory:":
        return False
    if parsed.query.get("uri") in ("true", "1"):
        database = database.removeprefix("file:").split("?")[0]
    return Path(database).expanduser().is_file()


#: seconds a PostgreSQL connection may take to open before it is "unreachable"
CONNECT_TIMEOUT = 10


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets WAL, foreign keys and a busy timeout.

    The directory of a SQLite file is created if missing (not for a ``file:`` URI with
    ``uri=true``, which SQLite reads as it is: e.g. ``?mode=ro`` for read-only).
    """
    url = normalize_url(url)
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError as exc:
        raise ConfigError(f"not a database URL: {url!r}", key="database.url") from exc
    if parsed.get_backend_name() == "sqlite":
        is_uri = parsed.query.get("uri") in ("true", "1")
        if parsed.database and parsed.database != ":memory:" and not is_uri:
            directory = Path(parsed.database).expanduser().parent
            try:
                directory.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise DatabaseUnavailable(
                    f"cannot create the directory {directory} of the database "
                    f"{display_url(parsed)}: {exc.strerror}; set database.url (or --db) to a "
                    "file in a directory callwatch may write") from exc
        engine = sa.create_engine(parsed, connect_args={"timeout": BUSY_TIMEOUT},
                                  json_serializer=write_json)
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    # psycopg waits for the operating system's TCP timeout (minutes) on a host that drops
    # packets; a URL that sets connect_timeout itself keeps its own value
    connect_args = {} if "connect_timeout" in parsed.query else {"connect_timeout": CONNECT_TIMEOUT}
    try:
        return sa.create_engine(parsed, pool_pre_ping=True, connect_args=connect_args,
                                json_serializer=write_json)
    except (ImportError, sa.exc.NoSuchModuleError) as exc:
        raise ConfigError(f"no driver for {parsed.get_backend_name()!r}: {exc}",
                          key="database.url") from exc


# -- a database that cannot be used, in one line a person can act on ----------------------

#: what a SQLite primary result code (the low byte of an extended one) says about the file;
#: SQLITE_ERROR (1), a bad statement, is not here: that is a bug, not an unusable database
_SQLITE_KINDS = {
    sqlite3.SQLITE_BUSY: "locked", sqlite3.SQLITE_LOCKED: "locked",
    sqlite3.SQLITE_PERM: "read-only", sqlite3.SQLITE_READONLY: "read-only",
    sqlite3.SQLITE_CANTOPEN: "cannot open",
    sqlite3.SQLITE_CORRUPT: "not a database", sqlite3.SQLITE_NOTADB: "not a database",
    sqlite3.SQLITE_IOERR: "other", sqlite3.SQLITE_FULL: "other",
}
#: what a PostgreSQL SQLSTATE says; the classes of _PG_UNREACHABLE mean no usable connection
_PG_KINDS = {"55P03": "locked", "25006": "read-only server", "42501": "no privilege"}
_PG_UNREACHABLE = ("08", "28", "3D", "57P", "53300")
_MESSAGES = {
    "locked": "the database {url} is locked by another process ({reason}): try again when it "
              "has finished (another callwatch command, or a program holding a write "
              "transaction open)",
    "read-only": "the database {url} is read-only ({reason}): callwatch must write to it; make "
                 "the file and its directory writable for this user, or set database.url (or "
                 "--db) to a writable database",
    "cannot open": "cannot open the database {url} ({reason}): the path must name a file in an "
                   "existing directory this user may write; fix database.url (or --db)",
    "not a database": "{url} is not a usable SQLite database ({reason}): set database.url (or "
                      "--db) to a callwatch database, or move this file away to start a new one",
    "read-only server": "the database {url} is read-only ({reason}): callwatch must write to it; "
                        "point database.url (or --db) at the primary server, not a standby, "
                        "and check default_transaction_read_only",
    "no privilege": "the database user may not write to {url} ({reason}): grant it the "
                    "privileges on callwatch's tables, or use the user that owns them",
    "unreachable": "cannot connect to the database {url} ({reason}): check that PostgreSQL is "
                   "running and reachable and that database.url (or --db) is right",
    "other": "database error on {url}: {reason}",
}


def _reason(exc: sa.exc.DBAPIError, url: sa.URL) -> str:
    """The driver's message on one line, with the password blanked should it appear."""
    text = " ".join(str(exc.orig).split())
    return text.replace(url.password, "***") if url.password else text


def _kind(exc: sa.exc.DBAPIError, backend: str) -> str | None:
    """Which of ``_MESSAGES`` fits ``exc``, from the driver's code (never its wording)."""
    if backend != "postgresql":
        code = getattr(exc.orig, "sqlite_errorcode", None)
        return _SQLITE_KINDS.get(code & 0xFF) if isinstance(code, int) else None
    sqlstate = getattr(exc.orig, "sqlstate", None)
    no_server = sqlstate is None and isinstance(exc, sa.exc.OperationalError | sa.exc.InterfaceError)
    if no_server or (sqlstate or "").startswith(_PG_UNREACHABLE):
        return "unreachable"
    kind = _PG_KINDS.get(sqlstate or "")
    if kind is None and isinstance(exc, sa.exc.OperationalError):
        kind = "other"  # shut down, out of resources, a deadlock: one line, not a traceback
    return kind


def database_problem(exc: sa.exc.DBAPIError, url: str | sa.URL) -> DatabaseUnavailable | None:
    """What ``exc`` says about the database at ``url``, as a message a person can act on.

    None when ``exc`` is not about the database being usable (a constraint, a bad
    statement: a bug the caller should let through with its traceback).
    """
    parsed = sa.engine.make_url(url) if isinstance(url, str) else url
    kind = _kind(exc, parsed.get_backend_name())
    if kind is None:
        return None
    return DatabaseUnavailable(_MESSAGES[kind].format(url=display_url(parsed),
                                                      reason=_reason(exc, parsed)))


def check_writable(engine: Engine, *, wait: float = PROBE_WAIT) -> None:
    """Fail now, with DatabaseUnavailable, if a write would fail: locked or read-only.

    Commands that fetch or send before they write call this first, so a locked or
    read-only database is found before the whole source is fetched, not after. The probe
    takes the write lock (``BEGIN IMMEDIATE`` on SQLite, waiting at most ``wait`` seconds
    for another writer; ``lock_timeout`` on PostgreSQL), makes an update that changes no
    row, and rolls back.
    """
    probe = sa.text("UPDATE cursors SET position = position WHERE 1 = 0")
    try:
        with engine.connect() as connection:
            if engine.dialect.name == "sqlite":
                connection.exec_driver_sql(f"PRAGMA busy_timeout={int(wait * 1000)}")
                try:
                    connection.exec_driver_sql("BEGIN IMMEDIATE")
                    connection.execute(probe)  # BEGIN IMMEDIATE alone passes a read-only file
                finally:
                    connection.rollback()
                    connection.exec_driver_sql(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT * 1000)}")
            else:
                connection.exec_driver_sql(f"SET LOCAL lock_timeout = '{int(wait * 1000)}ms'")
                connection.execute(probe)
                connection.rollback()
    except sa.exc.DBAPIError as exc:
        problem = database_problem(exc, engine.url)
        if problem is None:
            raise
        raise problem from exc


def _alembic_config(connection: Connection) -> AlembicConfig:
    from alembic.config import Config as AlembicConfig

    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


#: a migration's ``revision = ...`` or ``down_revision = ...`` line, annotated or not
_REVISION_LINE = re.compile(r"^(revision|down_revision)\b[^=\n]*=(.*)$", re.MULTILINE)
#: each quoted id on such a line: ``"0011"``, ``'0011'`` (script.py.mako writes ``repr``), or
#: the ids of a merge's tuple; ``None`` has none
_QUOTED_ID = re.compile(r"""["']([^"']+)["']""")


def head_revision() -> str:
    """The newest migration this version of callwatch ships: the one no other revises.

    Read from the ``revision`` and ``down_revision`` lines of the migration files (as Alembic
    reads every ``.py`` file in ``versions``, whatever its name), so that checking the schema
    at the start of a command does not load Alembic; tests/test_startup.py checks it against
    Alembic's head, also for a migration made from ``script.py.mako``.
    """
    revisions: set[str] = set()
    revised: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        if path.name == "__init__.py":
            continue
        ids = {key: _QUOTED_ID.findall(value)
               for key, value in _REVISION_LINE.findall(path.read_text(encoding="utf-8"))}
        if len(ids.get("revision", ())) != 1:  # read wrong, the head would be wrong: say so
            raise SchemaError(f"the migration {path} has no `revision = \"...\"` line")
        revisions.update(ids["revision"])
        revised.update(ids.get("down_revision", ()))
    heads = revisions - revised
    if len(heads) != 1:  # a packaging bug: no migrations, or two branches
        raise SchemaError(f"the migrations in {MIGRATIONS} have {len(heads)} heads: {sorted(heads)}")
    return heads.pop()


#: Alembic's version table as Alembic creates it (``alembic.runtime.migration``)
_alembic_version = sa.Table(
    "alembic_version", sa.MetaData(),
    sa.Column("version_num", sa.String(32), nullable=False),
    sa.PrimaryKeyConstraint("version_num", name="alembic_version_pkc"),
)


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at (None for an empty database): Alembic's version table,
    read with a plain query so that a command's schema check does not load Alembic."""
    with engine.connect() as connection:
        if not sa.inspect(connection).has_table(_alembic_version.name):
            return None
        version = connection.execute(sa.select(_alembic_version.c.version_num)).scalar()
        return None if version is None else str(version)


def upgrade(engine: Engine) -> tuple[str | None, str]:
    """Apply every pending migration; return (revision before, revision after)."""
    from alembic import command

    before = current_revision(engine)
    with engine.begin() as connection:
        command.upgrade(_alembic_config(connection), "head")
    return before, head_revision()


def create_or_upgrade(engine: Engine) -> None:
    """Bring an embedded SQLite database to the current schema: a new, empty one is created
    from ``SQLModel.metadata`` (where the classes here register their tables) and stamped
    with the head revision, any other is migrated.

    Running the fifteen migrations on an empty file (most of them copying tables in batch
    mode) took 0.3 s of CPU and loaded Alembic, in every `callwatch demo` and on the first
    command of a new install (issue 15); tests/test_migrations.py checks that both ways give
    the same tables, column for column. ``callwatch db upgrade`` always migrates.
    """
    with engine.begin() as connection:
        if engine.dialect.name == "sqlite" and not sa.inspect(connection).get_table_names():
            SQLModel.metadata.create_all(connection)
            _alembic_version.create(connection)
            connection.execute(_alembic_version.insert().values(version_num=head_revision()))
            return
    upgrade(engine)


def ensure_schema(engine: Engine) -> None:
    """Make sure the schema is current: upgrade SQLite in place, refuse on PostgreSQL."""
    current = current_revision(engine)
    if current == head_revision():
        return
    if engine.dialect.name == "sqlite":
        create_or_upgrade(engine)
        return
    state = "has no callwatch tables" if current is None else f"is at revision {current}"
    raise SchemaError(
        f"the database {state}, this callwatch needs {head_revision()}: "
        "run `callwatch db upgrade` first"
    )


# -- the rules layer (tracker/rules, migration 0002) ----------------------------------------

class ProfileRow(SQLModel, table=True):
    """A profile in the database (made by the web editor or the bot, or mirrored from a YAML
    file: ``source``); same fields as the YAML."""

    __tablename__ = "profiles"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100, sa_column_kwargs={"unique": True})
    definition: dict[str, Any] = Field(sa_column=Column(JSONType, nullable=False))
    created_at: datetime = _utc_column()
    updated_at: datetime = _utc_column()
    #: migration 0013: whose managers may edit it (None: admins only)
    tenant: str | None = Field(default=None, max_length=100)
    #: None: made in the database; else the YAML file it mirrors (the file wins)
    source: str | None = Field(default=None, max_length=1000)
    #: the account that saved it last on the web
    updated_by: str | None = Field(default=None, max_length=320)

profiles_table = SQLModel.metadata.tables[ProfileRow.__tablename__]


class _ProfileCallRow(SQLModel):
    """What a dismissal and a recorded match share: one row per (profile, call) pair.

    Not a table: its columns come first in each table that inherits them, in this order.
    """

    id: int | None = Field(default=None, primary_key=True)
    profile: str = Field(max_length=100, index=True)
    call_id: str = Field(foreign_key="calls.id", max_length=400)


def _one_per_pair(table: str) -> tuple[sa.UniqueConstraint]:
    return (sa.UniqueConstraint("profile", "call_id", name=f"uq_{table}_profile_call"),)


class DismissalRow(_ProfileCallRow, table=True):
    """A call a profile's owner marked not relevant: it never comes back for that profile."""

    __tablename__ = "dismissals"
    __table_args__ = _one_per_pair(__tablename__)

    at: datetime = _utc_column()


dismissals_table = SQLModel.metadata.tables[DismissalRow.__tablename__]


class MatchRow(_ProfileCallRow, table=True):
    """The last known match of a call for a profile, so alerts go out once per pair."""

    __tablename__ = "matches"
    __table_args__ = _one_per_pair(__tablename__)

    #: indexed in matches only (migration 0002): delivery reads a call's matches by call id
    call_id: str = Field(foreign_key="calls.id", max_length=400, index=True)
    score: int
    reasons: list[str] = Field(sa_column=Column(JSONType, nullable=False))
    first_matched: datetime = _utc_column()
    last_matched: datetime = _utc_column()


matches_table = SQLModel.metadata.tables[MatchRow.__tablename__]


class ProfileRunRow(SQLModel, table=True):
    """When each profile was last matched: `callwatch match` then looks only at later changes."""

    __tablename__ = "profile_runs"

    profile: str = Field(primary_key=True, max_length=100)
    last_run: datetime = _utc_column()

profile_runs_table = SQLModel.metadata.tables[ProfileRunRow.__tablename__]


# -- delivery: subscribers, their channels and subscriptions, the outbox, digests ----------

class SubscriberRow(SQLModel, table=True):
    """A subscriber from a YAML file (origin "file") or the Telegram bot (origin "bot")."""

    __tablename__ = "subscribers"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100, sa_column_kwargs={"unique": True})
    #: indexed (migration 0014): each public page finds its tenant's subscribers by it
    tenant: str | None = Field(default=None, max_length=100, index=True)
    timezone: str = Field(max_length=60)
    language: str = Field(max_length=8)
    quiet_hours: str | None = Field(default=None, max_length=20)
    reminders: list[int] = Field(sa_column=Column(JSONType, nullable=False))
    origin: str = Field(max_length=10)
    muted_until: datetime | None = _utc_column(nullable=True)
    created_at: datetime = _utc_column()
    updated_at: datetime = _utc_column()

subscribers_table = SQLModel.metadata.tables[SubscriberRow.__tablename__]


class SubscriberChannelRow(SQLModel, table=True):
    """One address of one subscriber; deactivated when the recipient is gone."""

    __tablename__ = "subscriber_channels"
    __table_args__ = (sa.UniqueConstraint("subscriber_id", "channel",
                                          name="uq_subscriber_channels_channel"),)

    id: int | None = Field(default=None, primary_key=True)
    subscriber_id: int = Field(foreign_key="subscribers.id", index=True)
    channel: str = Field(max_length=20)
    address: str = Field(max_length=500)
    #: the address as configured, so a Telegram chat migration survives a re-sync
    configured_address: str = Field(max_length=500)
    webhook_format: str = Field(default="generic", max_length=10)
    active: bool = True
    note: str | None = None

channels_table = SQLModel.metadata.tables[SubscriberChannelRow.__tablename__]


class DigestEntryRow(SQLModel, table=True):
    """Something new or changed for a profile, waiting for its digest subscribers.

    One row per profile and event, not per subscriber: a cluster's 3,000 member SMEs read
    the same rows, each from its subscription's ``digested_through`` on (a round for
    112,000 subscribers wrote and then marked 1.1 million per-subscriber rows before;
    BENCHMARKS.md). Rows are written only by the notify step, which the scheduler runs
    once at a time, so ids become visible in increasing order and a position never skips
    one.
    """

    __tablename__ = "digest_entries"
    __table_args__ = (sa.Index("ix_digest_entries_profile", "profile", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=400, sa_column_kwargs={"unique": True})
    profile: str = Field(max_length=100)
    call_id: str = Field(foreign_key="calls.id", max_length=400)
    change_id: int | None = None
    reasons: list[str] = Field(sa_column=Column(JSONType, nullable=False))
    created_at: datetime = _utc_column()

digest_entries_table = SQLModel.metadata.tables[DigestEntryRow.__tablename__]


def newest_digest_entry() -> Any:
    """The newest digest entry's id (0 when there is none), as SQL: where a subscription's
    digests start when it is created or leaves instant mode, read in that very statement."""
    return sa.select(sa.func.coalesce(sa.func.max(digest_entries_table.c.id), 0)).scalar_subquery()


class SubscriptionRow(SQLModel, table=True):
    """A subscriber follows a profile in a mode on some channels (``channels``; None: all the
    subscriber has); ``token`` identifies it in unsubscribe and manage links.

    One profile may be followed more than once by one subscriber, once per channel set
    (Telegram instantly, email daily; migration 0009): that the sets do not overlap is
    checked where subscriptions are written (the subscriber file, the bot), since a
    constraint cannot say it.
    """

    __tablename__ = "subscriptions"
    __table_args__ = (sa.Index("ix_subscriptions_subscriber_profile", "subscriber_id", "profile"),)

    id: int | None = Field(default=None, primary_key=True)
    subscriber_id: int = Field(foreign_key="subscribers.id", index=True)
    profile: str = Field(max_length=100, index=True)
    mode: str = Field(max_length=10)
    channels: list[str] | None = Field(default=None, sa_column=Column(JSONType, nullable=True))
    token: str = Field(max_length=64, sa_column_kwargs={"unique": True})
    #: the last ``digest_entries`` id this subscription's digests have covered. Every insert
    #: starts it at the newest entry (the column's default, whoever inserts), so a new
    #: follower gets what happens from then on, not the profile's history
    digested_through: int = Field(sa_column=Column(
        sa.Integer, nullable=False, server_default="0", default=newest_digest_entry()))

subscriptions_table = SQLModel.metadata.tables[SubscriptionRow.__tablename__]


class OptOutRow(SQLModel, table=True):
    """A subscription its recipient ended from a link (``tracker.delivery.unsubscribe``).

    Kept so the end sticks: the file sync does not bring the profile back on those channels
    while the subscriber file still lists it, and the ended link keeps answering "you are
    unsubscribed" (a mail program may POST it more than once). ``channels`` are the channels
    the subscription had when it ended, never None.
    """

    __tablename__ = "opt_outs"

    id: int | None = Field(default=None, primary_key=True)
    subscriber_id: int = Field(foreign_key="subscribers.id", index=True)
    profile: str = Field(max_length=100)
    channels: list[str] = Field(sa_column=Column(JSONType, nullable=False))
    mode: str = Field(max_length=10)
    #: the ended subscription's token
    token: str = Field(max_length=64, sa_column_kwargs={"unique": True})
    at: datetime = _utc_column()

opt_outs_table = SQLModel.metadata.tables[OptOutRow.__tablename__]


class DeliveryRow(SQLModel, table=True):
    """The outbox: one message for one subscriber on one channel, sent at most once.

    ``key`` (subscriber, channel, call or period, kind) is unique, so nothing is enqueued
    twice; ``status`` moves pending → sending (leased) → sent, or to dead after the retry
    limit or a permanent refusal.
    """

    __tablename__ = "deliveries"
    __table_args__ = (
        # the dispatcher's two claim queries (migration 0005): partial, so the millions of
        # sent rows never enter them and each claim reads its batch straight off the index;
        # they replace ix_deliveries_due (status, next_attempt_at), dropped by migration 0006
        sa.Index("ix_deliveries_pending", "next_attempt_at", "id",
                 postgresql_where=sa.text("status = 'pending'"),
                 sqlite_where=sa.text("status = 'pending'")),
        sa.Index("ix_deliveries_leases", "lease_until",
                 postgresql_where=sa.text("status = 'sending'"),
                 sqlite_where=sa.text("status = 'sending'")),
    )

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=400, sa_column_kwargs={"unique": True})
    subscriber_id: int = Field(foreign_key="subscribers.id", index=True)
    channel: str = Field(max_length=20)
    kind: str = Field(max_length=20)
    call_id: str | None = Field(default=None, max_length=400)
    message: dict[str, Any] = Field(sa_column=Column(JSONType, nullable=False))
    status: str = Field(max_length=10)
    attempts: int = 0
    parts_sent: int = 0
    next_attempt_at: datetime = _utc_column()
    lease_until: datetime | None = _utc_column(nullable=True)
    worker: str | None = Field(default=None, max_length=100)
    last_error: str | None = None
    created_at: datetime = _utc_column()
    sent_at: datetime | None = _utc_column(nullable=True)
    #: the message is in ``delivery_bodies`` (``message`` is then ``{}``): a digest that many
    #: subscribers get is stored once (migration 0006)
    body_id: int | None = None

deliveries_table = SQLModel.metadata.tables[DeliveryRow.__tablename__]


class CursorRow(SQLModel, table=True):
    """Named positions in append-only tables, e.g. the last change id already notified."""

    __tablename__ = "cursors"

    name: str = Field(primary_key=True, max_length=60)
    position: int = 0

cursors_table = SQLModel.metadata.tables[CursorRow.__tablename__]


# -- exports and health: feed tokens, the scheduler heartbeat (migration 0004) -------------

class FeedTokenRow(SQLModel, table=True):
    """The secret in a profile's feed URLs (/feeds/<profile>.ics?token=…), made on first use."""

    __tablename__ = "feed_tokens"

    profile: str = Field(primary_key=True, max_length=100)
    token: str = Field(max_length=64, sa_column_kwargs={"unique": True})
    created_at: datetime = _utc_column()

feed_tokens_table = SQLModel.metadata.tables[FeedTokenRow.__tablename__]


class HeartbeatRow(SQLModel, table=True):
    """What the running scheduler last said about itself, so `callwatch status` in another
    process can tell whether it is alive and what it will run next."""

    __tablename__ = "scheduler_heartbeats"

    name: str = Field(primary_key=True, max_length=60)
    process: str = Field(max_length=200)
    beat_at: datetime = _utc_column()
    stopped_at: datetime | None = _utc_column(nullable=True)
    jobs: list[dict[str, Any]] = Field(sa_column=Column(JSONType, nullable=False))

heartbeats_table = SQLModel.metadata.tables[HeartbeatRow.__tablename__]


# -- several workers: the shared Telegram budget (migration 0005) ---------------------------

class TelegramPacingRow(SQLModel, table=True):
    """When the next Telegram message may go out, per chat and overall (key ``global``).

    Every worker reserves its slots here (``notifiers.telegram.pacing``), so Telegram's flood limits
    hold across processes and machines. Times are seconds on the database server's clock.
    """

    __tablename__ = "telegram_pacing"

    key: str = Field(primary_key=True, max_length=60)
    next_at: float = 0.0

pacing_table = SQLModel.metadata.tables[TelegramPacingRow.__tablename__]


class DeliveryBodyRow(SQLModel, table=True):
    """A rendered message shared by many outbox rows, stored once (``digest``: its SHA-256).

    A digest round for 100,000 subscribers renders a few tens of thousands of distinct
    digests; storing each in every row that sends it wrote gigabytes (migration 0006).
    """

    __tablename__ = "delivery_bodies"

    id: int | None = Field(default=None, primary_key=True)
    digest: str = Field(max_length=64, sa_column_kwargs={"unique": True})
    message: dict[str, Any] = Field(sa_column=Column(JSONType, nullable=False))
    created_at: datetime = _utc_column()

bodies_table = SQLModel.metadata.tables[DeliveryBodyRow.__tablename__]


# -- several workers: a digest round in shares (migration 0017) ----------------------------

class DigestClaimRow(SQLModel, table=True):
    """One share of a digest round on PostgreSQL: a range of subscriber ids (the round's
    batch), claimed by one worker at a time with ``FOR UPDATE SKIP LOCKED``, as deliveries
    are (``tracker.delivery.outbox``). ``now`` and ``upto`` (the newest digest entry when the
    round started) are the round's, so every worker renders the same digests; ``done_at``
    is set in the transaction that enqueued the share, so a share is done exactly once.
    """

    __tablename__ = "digest_claims"
    __table_args__ = (sa.UniqueConstraint("round", "first_id", name="uq_digest_claims_share"),)

    id: int | None = Field(default=None, primary_key=True)
    round: str = Field(max_length=40, index=True)
    now: datetime = _utc_column()
    upto: int
    force: bool = False
    #: the channels the round's worker could send on: a helper renders for those, not for
    #: its own, so a worker configured without a channel does not skip its rows
    channels: list[str] = Field(sa_column=Column(JSONType, nullable=False))
    first_id: int
    last_id: int
    enqueued: int = 0
    done_at: datetime | None = _utc_column(nullable=True)

digest_claims_table = SQLModel.metadata.tables[DigestClaimRow.__tablename__]


# -- conditional requests: what a source's last good run fetched (migration 0009) ----------

class HttpValidatorRow(SQLModel, table=True):
    """One GET of a source's last good run and the validators its answer carried, in the
    order the run made them, so the next run can ask each page "changed since?" first
    (``tracker.conditional`` has the rule; ``tracker.store.revalidation`` reads and writes)."""

    __tablename__ = "http_validators"

    source: str = Field(primary_key=True, max_length=100)
    position: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    url: str
    etag: str | None = None
    last_modified: str | None = Field(default=None, max_length=100)
    #: ``tracker.conditional.fetch_key``: the settings and version the pages were parsed with
    fetch_key: str = Field(max_length=64)
    stored_at: datetime = _utc_column()

http_validators_table = SQLModel.metadata.tables[HttpValidatorRow.__tablename__]


# -- the web app: accounts of cluster managers and admins (migration 0011) ----------------------

class UserRow(SQLModel, table=True):
    """A person who signs in to the web app: a manager sees one tenant, an admin all.

    ``password_hash`` is argon2id (``tracker.web.accounts``); ``password_changed_at`` is in
    every session cookie, so setting a new password ends the sessions signed in before it.
    """

    __tablename__ = "users"

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=320, sa_column_kwargs={"unique": True})
    tenant: str | None = Field(default=None, max_length=100)
    role: str = Field(max_length=10)
    password_hash: str = Field(max_length=200)
    password_changed_at: datetime = _utc_column()
    created_at: datetime = _utc_column()
    last_sign_in: datetime | None = _utc_column(nullable=True)

users_table = SQLModel.metadata.tables[UserRow.__tablename__]


# -- the web app: members who signed up on a tenant's page (migration 0012) ---------------------

class ConsentRow(SQLModel, table=True):
    """A member's consent to be sent alerts, as GDPR asks it to be shown: who signed up
    (``person_name``, ``email``), for which tenant, the words shown when they agreed
    (``consent_text``, in ``language``), when and from which address they signed up, and
    when and from which address they confirmed from the email (double opt-in).

    ``nonce`` is the sign-up's own random id, carried in the confirmation link: confirming
    the same link twice finds this row and creates nothing more. The subscriber it created
    has ``origin`` "web" (``tracker.web.members``). An invitation from a cluster manager
    ends in the same record, naming the manager in ``invited_by``; ``signed_up_*`` is then
    when and from where the manager sent it.
    """

    __tablename__ = "consents"

    id: int | None = Field(default=None, primary_key=True)
    subscriber_id: int = Field(foreign_key="subscribers.id", index=True)
    tenant: str = Field(max_length=100)
    person_name: str = Field(max_length=100)
    email: str = Field(max_length=320)
    language: str = Field(max_length=8)
    consent_text: str = Field(sa_column=Column(sa.Text, nullable=False))
    signed_up_at: datetime = _utc_column()
    signed_up_from: str = Field(max_length=45)
    confirmed_at: datetime = _utc_column()
    confirmed_from: str = Field(max_length=45)
    nonce: str = Field(max_length=64, sa_column_kwargs={"unique": True})
    #: the email of the manager whose invitation this confirms (migration 0016); None: the
    #: member signed up on their own
    invited_by: str | None = Field(default=None, max_length=320)

consents_table = SQLModel.metadata.tables[ConsentRow.__tablename__]
