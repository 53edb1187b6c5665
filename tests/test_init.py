"""`callwatch init DIR`: a starting config, an example profile and subscriber that callwatch
accepts as written, rendered from the settings models, never over an existing file."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa

from tracker.config import load_config
from tracker.pipeline import load_audience
from tracker.starter import CONFIG, PROFILE, PROFILE_NAME, SOURCES_NOTE, SUBSCRIBER, starter_files
from tracker.store import db

REPO = Path(__file__).resolve().parent.parent


def callwatch(*args: str, cwd: Path, **environ: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLWATCH_")}
    env.update(PYTHONPATH=str(REPO), **environ)
    return subprocess.run(  # noqa: S603 - our own command
        [sys.executable, "-m", "tracker", *args], cwd=cwd, env=env, capture_output=True,
        text=True, timeout=120, check=False)


def test_init_writes_files_that_the_checks_and_a_cycle_accept(tmp_path: Path) -> None:
    target = tmp_path / "site"
    result = callwatch("init", str(target), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert sorted(str(p.relative_to(target)) for p in target.rglob("*") if p.is_file()) == \
        sorted([CONFIG, PROFILE, SUBSCRIBER])
    for name, text in starter_files().items():
        assert (target / name).read_text(encoding="utf-8") == text
        assert text.startswith("# "), name  # each file explains itself
    config = str(target / CONFIG)

    profiles = callwatch("--config", config, "profiles", "check", cwd=tmp_path)
    assert profiles.returncode == 0, profiles.stderr
    assert f"1 profile OK: {PROFILE_NAME}" in profiles.stdout
    subscribers = callwatch("--config", config, "subscribers", "check", cwd=tmp_path)
    assert subscribers.returncode == 0, subscribers.stderr
    assert "1 subscriber(s) OK" in subscribers.stdout

    # one cycle, offline (every source off): it loads the files and stores the subscriber
    off = {f"CALLWATCH_SOURCES__{name.upper()}__ENABLED": "false"
           for name in load_config(environ={}).sources}
    cycle = callwatch("--config", config, "run", "--once", cwd=tmp_path, **off)
    assert cycle.returncode == 0, cycle.stderr
    engine = sa.create_engine(f"sqlite:///{target / 'callwatch.db'}")
    try:
        with engine.connect() as connection:
            rows = connection.execute(sa.select(db.subscribers_table.c.name,
                                                db.subscribers_table.c.tenant)).all()
    finally:
        engine.dispose()
    assert [tuple(row) for row in rows] == [("example-manager", "example-cluster")]


def test_the_config_is_what_the_loader_expects(tmp_path: Path) -> None:
    for name, text in starter_files().items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text, encoding="utf-8")
    settings = load_config(tmp_path / CONFIG, environ={})
    assert settings.profiles.directory == tmp_path / "profiles"
    assert settings.subscribers.directory == tmp_path / "subscribers"
    assert settings.database.url == f"sqlite:///{tmp_path / 'callwatch.db'}"
    assert settings.web_listen() == ("web.listen", "127.0.0.1:8080")  # loopback
    profiles, subscribers = load_audience(settings, None)  # type: ignore[arg-type]
    assert [p.name for p in profiles] == [PROFILE_NAME]
    assert [s.name for s in subscribers] == ["example-manager"]


def test_every_commented_key_is_a_real_key_at_its_default(tmp_path: Path) -> None:
    """Rendered from the models: uncommenting every `# key = value` line of the sections
    changes nothing, so the file cannot offer a key or a default callwatch does not have."""
    text = starter_files()[CONFIG]
    assert text.endswith(SOURCES_NOTE + "\n") and "# [sources.eccp]" in SOURCES_NOTE
    sections = text.removesuffix(SOURCES_NOTE + "\n")
    uncommented = re.sub(r"^# (\w+ = .*)$", r"\1", sections, flags=re.MULTILINE)
    assert uncommented.count("\n# ") < sections.count("\n# ")  # something was uncommented
    assert "hour = 8" in uncommented and "port = 25" in uncommented
    (tmp_path / "plain.toml").write_text(sections, encoding="utf-8")
    (tmp_path / "full.toml").write_text(uncommented, encoding="utf-8")
    plain = load_config(tmp_path / "plain.toml", environ={})
    full = load_config(tmp_path / "full.toml", environ={})
    assert full.model_dump(exclude={"origin"}) == plain.model_dump(exclude={"origin"})


def test_init_never_overwrites_and_names_the_file(tmp_path: Path) -> None:
    target = tmp_path / "site"
    (target / "subscribers").mkdir(parents=True)
    mine = target / SUBSCRIBER
    mine.write_text("name: mine\n", encoding="utf-8")
    result = callwatch("init", str(target), cwd=tmp_path)
    assert result.returncode == 1
    assert f"{mine} exists" in result.stderr and "nothing was written" in result.stderr
    assert mine.read_text(encoding="utf-8") == "name: mine\n"
    assert not (target / CONFIG).exists() and not (target / PROFILE).exists()
