"""A fast start: which modules a command loads, checked in a fresh interpreter.

`callwatch --version` took 1.5 s because `tracker.cli` imported SQLAlchemy and Alembic at
once (issue 15). Times are measured by ``bench/bench_start.py``, not here: these tests look
at ``sys.modules`` after a command, which does not depend on the machine's load.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

#: Runs the command line in this interpreter with the given arguments, then prints the
#: top-level names of every module it loaded.
PROBE = """
import json, sys
sys.argv = ["callwatch", *json.loads(sys.argv[1])]
from tracker.cli import main
try:
    main()
except SystemExit as exit:
    code = exit.code
else:
    code = 0
print(json.dumps({"code": code, "modules": sorted({m.split(".")[0] for m in sys.modules})}))
"""

#: Never needed to print the version or the help.
HEAVY = {"sqlalchemy", "sqlmodel", "alembic", "telegram", "aiohttp", "httpx", "apscheduler",
         "dateparser", "jinja2", "pydantic", "rich", "bs4", "feedparser", "aiosmtplib", "yaml",
         "selectolax", "scrapers", "notifiers"}

#: Not needed to list calls: no channel, no source, no migration tool.
NOT_FOR_LISTING = {"alembic", "telegram", "aiohttp", "httpx", "apscheduler", "dateparser",
                   "jinja2", "bs4", "feedparser", "aiosmtplib", "mako"}


def loaded(*args: str, cwd: Path) -> set[str]:
    """The top-level modules ``callwatch ARGS`` loads, run in a fresh interpreter."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CALLWATCH_")}
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), environment.get("PYTHONPATH")]))
    result = subprocess.run(  # noqa: S603 - this interpreter, our own code
        [sys.executable, "-c", PROBE, json.dumps(list(args))], cwd=cwd, env=environment,
        capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.splitlines()[-1])
    assert report["code"] in (0, None), result.stdout + result.stderr
    return set(report["modules"])


@pytest.mark.parametrize("args", [["--version"], ["--help"], ["calls", "--help"]])
def test_version_and_help_load_no_database_channel_or_source(tmp_path: Path, args: list[str]) -> None:
    assert "tracker" in loaded(*args, cwd=tmp_path)  # the probe ran our code
    assert loaded(*args, cwd=tmp_path) & HEAVY == set()


def test_listing_calls_loads_no_channel_source_or_migration_tool(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'calls.db'}"
    upgraded = loaded("--db", database, "db", "upgrade", cwd=tmp_path)
    assert "alembic" in upgraded  # migrating needs it, so the check below means something
    modules = loaded("--db", database, "calls", "list", "--format", "json", cwd=tmp_path)
    assert "sqlalchemy" in modules
    assert modules & NOT_FOR_LISTING == set()


def test_checking_profiles_loads_no_database_library(tmp_path: Path) -> None:
    """`profiles check` reads the settings and the profile files, never the database: the
    settings load imported SQLAlchemy (0.4 s) to read the database URL, whatever it was."""
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "h2.yaml").write_text("name: h2\nquery: hydrogen\n", encoding="utf-8")
    (tmp_path / "callwatch.toml").write_text(
        '[database]\nurl = "postgresql://callwatch@127.0.0.1/callwatch"\n'
        '[profiles]\ndirectory = "profiles"\n', encoding="utf-8")
    modules = loaded("--config", str(tmp_path / "callwatch.toml"), "profiles", "check", cwd=tmp_path)
    assert "pydantic" in modules  # the settings were read, so the check below means something
    assert modules & {"sqlalchemy", "sqlmodel", "alembic"} == set()


def test_the_schema_check_finds_alembics_head_without_alembic() -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from tracker.store import db

    config = Config()
    config.set_main_option("script_location", str(db.MIGRATIONS))
    assert db.head_revision() == ScriptDirectory.from_config(config).get_current_head()


def test_the_schema_check_reads_the_revision_alembic_wrote(tmp_path: Path) -> None:
    from alembic.runtime.migration import MigrationContext

    from tracker.store import db

    engine = db.make_engine(f"sqlite:///{tmp_path / 'calls.db'}")
    try:
        assert db.current_revision(engine) is None
        db.ensure_schema(engine)
        with engine.connect() as connection:
            written = MigrationContext.configure(connection).get_current_revision()
        assert db.current_revision(engine) == written == db.head_revision()
    finally:
        engine.dispose()


def migrations_copy(tmp_path: Path) -> Path:
    """A copy of callwatch's migrations (the template and every version) to add one to."""
    import shutil

    from tracker.store import db

    copy = tmp_path / "migrations"
    shutil.copytree(db.MIGRATIONS, copy, ignore=shutil.ignore_patterns("__pycache__"))
    return copy


def test_the_schema_check_finds_the_head_of_a_migration_made_from_the_template(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A new migration as `alembic revision` writes it from script.py.mako: ``revision =
    'fa12'`` (the template writes ``repr``) in ``fa12_next.py``. Reading only ``"…"`` in files
    named ``0…`` missed it and kept 0011 as the head, one behind Alembic."""
    from datetime import UTC, datetime

    from alembic.util import format_as_comma, template_to_file

    from tracker.store import db

    copy = migrations_copy(tmp_path)
    before = db.head_revision()
    made = copy / "versions" / "fa12_next.py"  # an id that does not sort after 0011
    template_to_file(copy / "script.py.mako", made, "utf-8", message="next", up_revision="fa12",
                     down_revision=before, branch_labels=None, depends_on=None,
                     create_date=datetime.now(UTC), comma=format_as_comma)  # as Alembic does
    assert f"down_revision = '{before}'" in made.read_text(encoding="utf-8")
    monkeypatch.setattr(db, "MIGRATIONS", copy)
    assert db.head_revision() == "fa12"


def test_the_schema_check_refuses_two_heads_and_a_migration_it_cannot_read(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tracker.errors import SchemaError
    from tracker.store import db

    copy = migrations_copy(tmp_path)
    monkeypatch.setattr(db, "MIGRATIONS", copy)
    head = db.head_revision()
    branch = copy / "versions" / "0012_branch.py"
    branch.write_text(f'revision: str = "b1"\ndown_revision: str | None = "{head}"\n',
                      encoding="utf-8")
    assert db.head_revision() == "b1"  # an annotated line reads as a plain one
    (copy / "versions" / "0012_other.py").write_text(f'revision = "b2"\ndown_revision = "{head}"\n',
                                                     encoding="utf-8")
    with pytest.raises(SchemaError, match=r"2 heads: \['b1', 'b2'\]"):
        db.head_revision()
    (copy / "versions" / "0013_merge.py").write_text(
        'revision = "m"\ndown_revision = ("b1", "b2")\n', encoding="utf-8")
    assert db.head_revision() == "m"  # a merge revises both
    (copy / "versions" / "0014_odd.py").write_text('REVISION = "x"\n', encoding="utf-8")
    with pytest.raises(SchemaError, match=r"0014_odd\.py has no `revision"):
        db.head_revision()


#: Builds the daemon and its channels as `callwatch run` does (without running it), then
#: prints the top-level names of every module loaded.
DAEMON_PROBE = """
import json, sys
from notifiers import create_notifiers
from tracker.config import load_config
from tracker.service.daemon import Daemon
from tracker.store import db

settings = load_config(database_url="sqlite:///" + sys.argv[1], environ={})
engine = db.make_engine(settings.database.url)
Daemon(settings, engine)
built = create_notifiers(settings.notifiers, {})
print(json.dumps({"channels": sorted(built),
                  "modules": sorted({m.split(".")[0] for m in sys.modules})}))
"""


def test_the_daemon_loads_apprise_and_the_web_server_only_when_used(tmp_path: Path) -> None:
    """Both were loaded by every daemon (apprise when its channel was built, uvicorn with the
    daemon's module) and held memory at rest that nothing used (issue 15)."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CALLWATCH_")}
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), environment.get("PYTHONPATH")]))
    result = subprocess.run(  # noqa: S603 - this interpreter, our own code
        [sys.executable, "-c", DAEMON_PROBE, str(tmp_path / "calls.db")], cwd=tmp_path,
        env=environment, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.splitlines()[-1])
    if "apprise" in report["channels"]:  # the extra is installed: the channel is built, unloaded
        assert "apprise" not in report["modules"]
    assert {"uvicorn", "starlette"} & set(report["modules"]) == set()
