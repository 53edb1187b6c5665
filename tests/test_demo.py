"""``callwatch demo``: it runs offline, writes what each channel got, and README shows its output.

The demo runs once per module (about five seconds) in a temporary working directory, with
the default output folder, exactly as README tells a new user to run it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from email import message_from_bytes, policy
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from tracker.cli import cli
from tracker.demo.fakes import RECORDINGS
from tracker.demo.run import DATABASE_NAME, PAGES_NOTE, bundled_config_dir
from tracker.store import db
from tracker.store.db import deliveries_table

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures"


@dataclass(frozen=True)
class DemoRun:
    """The demo's exit code and printed summary, and the folder it wrote."""

    exit_code: int
    output: str
    out: Path
    cwd: Path


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoRun]:
    cwd = tmp_path_factory.mktemp("demo-cwd")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(cwd)
        result = CliRunner().invoke(cli, ["demo"], catch_exceptions=False)
    yield DemoRun(result.exit_code, result.output, cwd / "callwatch-demo", cwd)


def sections(output: str) -> dict[str, dict[str, list[int]]]:
    """The summary's tables: heading → row name → its numbers."""
    tables: dict[str, dict[str, list[int]]] = {}
    current: dict[str, list[int]] | None = None
    for line in output.splitlines():
        heading = re.match(r"^(calls per source|matches per profile|messages per channel)\b", line)
        if heading:
            current = tables.setdefault(heading.group(1), {})
        elif current is not None and (row := re.match(r"^  (\S+)\s+(\d+)(?:\s+(\d+))?$", line)):
            current[row.group(1)] = [int(n) for n in row.groups()[1:] if n is not None]
        elif not line.strip():
            current = None
    return tables


def test_demo_runs_a_full_cycle_and_writes_every_delivered_message(demo: DemoRun) -> None:
    assert demo.exit_code == 0, demo.output
    summary = sections(demo.output)
    messages = {channel: row[0] for channel, row in summary["messages per channel"].items()}
    emails = sorted((demo.out / "email").glob("*.eml"))
    assert len(emails) == messages["email"] > 0
    assert all(e.with_suffix(".html").read_text(encoding="utf-8").lstrip().startswith("<")
               for e in emails)
    parsed = [message_from_bytes(e.read_bytes(), policy=policy.default) for e in emails]
    assert all(m["From"] and m["To"] and m["Subject"] for m in parsed)
    telegram = sorted((demo.out / "telegram").glob("*.txt"))
    assert len(telegram) == messages["telegram"] > 0
    assert all("<b>" not in t.read_text(encoding="utf-8") for t in telegram)  # what a chat shows
    webhooks = sorted((demo.out / "webhook").glob("*.json"))
    assert len(webhooks) == messages["webhook"] > 0

    # the summary says what the demo's own database says
    engine = db.make_engine(f"sqlite:///{demo.out / DATABASE_NAME}")
    try:
        with engine.connect() as connection:
            sent = {channel: count for channel, count in connection.execute(
                sa.select(deliveries_table.c.channel, sa.func.count())
                .where(deliveries_table.c.status == "sent")
                .group_by(deliveries_table.c.channel))}
            unsent = connection.execute(sa.select(sa.func.count()).select_from(deliveries_table)
                                        .where(deliveries_table.c.status != "sent")).scalar_one()
            stored = {source: count for source, count in connection.execute(
                sa.text("SELECT source, count(*) FROM calls GROUP BY source"))}
    finally:
        engine.dispose()
    assert sent == messages and unsent == 0
    calls = {name: row[0] for name, row in summary["calls per source"].items()}
    assert calls == stored
    assert {"ft_portal", "interreg", "eccp", "eismea", "eit", "cascade_hub"} <= set(calls)

    # the example subscribers, in the profiles' first cycle: Ana gets one summary of the
    # hydrogen matches on Telegram and one by email (not a message per call), the Alentejo
    # team one on the webhook, Lars one daily digest email
    matches = {name: row[0] for name, row in summary["matches per profile"].items()}
    profiles = {p.stem for p in (bundled_config_dir() / "profiles").glob("*.yaml")}
    assert set(matches) == profiles
    assert matches["hydrogen-valley"] > 1 and matches["alentejo-agrifood"] > 1
    assert messages["telegram"] == 1 and messages["webhook"] == 1
    addressed = [(str(m["To"]), str(m["Subject"])) for m in parsed]
    assert [subject for to, subject in addressed if to == "ana@hydrogen-valley.example.org"] == [
        f"{matches['hydrogen-valley']} calls match hydrogen-valley"
        + ("; here are the 5 closing first" if matches["hydrogen-valley"] > 5 else "")]
    [lars] = [subject for to, subject in addressed if to == "lars@nordic-vision.example.com"]
    assert "daily digest" in lars

def test_demo_is_fast_and_leaves_the_users_own_files_alone(demo: DemoRun) -> None:
    seconds = float(re.search(r"finished in ([\d.]+) s", demo.output).group(1))  # type: ignore[union-attr]
    assert seconds < 60
    assert (demo.out / DATABASE_NAME).is_file()
    # the only things written in the working directory are the demo folder
    assert [p.name for p in demo.cwd.iterdir()] == ["callwatch-demo"]


def readme_demo_output() -> str:
    """The sample output README shows under the install command."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```text\n(callwatch demo:.*?)```", readme, re.DOTALL)
    assert len(blocks) == 1, "README shows the demo's output in one ```text block"
    return str(blocks[0])


def normalized(output: str) -> str:
    return re.sub(r"finished in [\d.]+ s", "finished in N s", output).strip()


def test_readme_shows_the_demos_actual_output(demo: DemoRun) -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert "pip install -e . && .venv/bin/callwatch demo" in readme
    # Counts come from the recordings and the example profiles and subscribers, with the
    # demo's fixed clock, so they are the same everywhere. When one of those changes on
    # purpose, paste the new output into README.
    assert normalized(readme_demo_output()) == normalized(demo.output)


def test_each_recording_exists_once() -> None:
    """The scraper tests read the demo's recordings in place; tests/fixtures holds no copy."""
    recorded = {p.read_bytes() for p in RECORDINGS.rglob("*") if p.is_file() and p.suffix != ".md"}
    copies = [p for p in FIXTURES.rglob("*") if p.is_file() and p.read_bytes() in recorded]
    assert recorded and copies == []


def test_demo_refuses_a_database_and_a_used_folder(tmp_path: Path) -> None:
    runner = CliRunner()
    refused = runner.invoke(cli, ["--db", f"sqlite:///{tmp_path / 'mine.db'}", "demo"])
    assert refused.exit_code == 2 and "drop --db" in refused.output
    assert not (tmp_path / "mine.db").exists()
    used = tmp_path / "used"
    used.mkdir()
    (used / "notes.txt").write_text("mine", encoding="utf-8")
    busy = runner.invoke(cli, ["demo", "--out", str(used)])
    assert busy.exit_code == 2 and "not empty" in busy.output
    assert [p.name for p in used.iterdir()] == ["notes.txt"]


def test_systemd_unit_runs_the_daemon_hardened_with_secrets_from_a_file() -> None:
    """The unit in config/ is what README's Deployment section describes."""
    import configparser

    from tracker.config import SECRET_ENV

    text = (REPO / "config" / "callwatch.service").read_text(encoding="utf-8")
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    unit.read_string(text)
    service = unit["Service"]
    assert service["Type"] == "simple" and service["ExecStart"].endswith("/callwatch run")
    assert service["Restart"] == "on-failure" and service["TimeoutStopSec"] == "30"
    assert service["NoNewPrivileges"] == "yes" and service["ProtectSystem"] == "strict"
    assert service["StateDirectory"] == "callwatch"
    assert service["EnvironmentFile"] == "/etc/callwatch/secrets.env"
    for name in SECRET_ENV:  # every secret callwatch reads is shown going into that file
        assert f"#   {name}=" in text, name
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    for heading in ("## Deployment", "### PostgreSQL", "### Upgrading", "### Backups", "### Logs"):
        assert heading in readme


def test_the_demo_does_not_pass_written_pages_off_as_recorded(demo: DemoRun) -> None:
    """Most bundled pages are written in the real shape (tests/fixtures/README.md lists
    them); the summary says so instead of calling every page recorded."""
    first, second = demo.output.splitlines()[:2]
    assert first.startswith("callwatch demo: one cycle over bundled pages as of ")
    assert second == PAGES_NOTE
    assert "recorded pages" not in demo.output
