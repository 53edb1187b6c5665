"""``callwatch demo``: it runs offline, writes what each channel got, and README shows its output.

The demo runs once per module (two cycles, a few seconds) in a temporary working directory,
with the default output folder, exactly as README tells a new user to run it.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from email import message_from_bytes, policy
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from tracker.cli import cli
from tracker.demo.fakes import RECORDINGS
from tracker.demo.run import DATABASE_NAME, PAGES_NOTE, bundled_config_dir, callwatch_command
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
        heading = re.match(r"^(calls per source|what the cycles stored|matches per profile|"
                           r"messages per channel)\b", line)
        if heading:
            current = tables.setdefault(heading.group(1), {})
        elif current is not None and (row := re.match(r"^  (\S+(?: \S+)?)\s+(\d+)(?:\s+(\d+))?$",
                                                          line)):
            current[row.group(1).rstrip(":")] = [int(n) for n in row.groups()[1:] if n is not None]
        elif not line.strip():
            current = None
    return tables


def test_demo_runs_a_full_cycle_and_writes_every_delivered_message(demo: DemoRun) -> None:
    assert demo.exit_code == 0, demo.output
    summary = sections(demo.output)
    first = {channel: row[0] for channel, row in summary["messages per channel"].items()}
    messages = {channel: sum(row) for channel, row in summary["messages per channel"].items()}
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

    # the first cycle: Ana's hydrogen matches come as one summary on Telegram and one by
    # email (a first cycle does not flood), Lars gets one daily digest email
    matches = {name: row[0] for name, row in summary["matches per profile"].items()}
    profiles = {p.stem for p in (bundled_config_dir() / "profiles").glob("*.yaml")}
    assert set(matches) == profiles
    assert matches["hydrogen-valley"] > 1 and first["telegram"] == 1
    assert matches["alentejo-agrifood"] > 1 and first["webhook"] == 1
    addressed = [(str(m["To"]), str(m["Subject"])) for m in parsed]
    assert [to for to, _ in addressed[:first["email"]]].count("ana@hydrogen-valley.example.org") == 1
    lars = [subject for to, subject in addressed if to == "lars@nordic-vision.example.com"]
    assert "daily digest" in lars[0] and "daily digest" in lars[-1] and len(lars) == 3

def test_demo_is_fast_and_leaves_the_users_own_files_alone(demo: DemoRun) -> None:
    seconds = float(re.search(r"finished in ([\d.]+) s", demo.output).group(1))  # type: ignore[union-attr]
    assert seconds < 300  # a sanity bound for a loaded CI machine; bench/bench_start.py times it
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
    """The output without what depends on the machine: the time taken, and how callwatch is
    run from here (README shows `.venv/bin/callwatch`, as its install line leaves it)."""
    output = re.sub(r"finished in [\d.]+ s", "finished in N s", output)
    return re.sub(r"browse the calls: .+? --db", "browse the calls: CALLWATCH --db", output).strip()


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
    assert first.startswith("callwatch demo: two cycles over bundled pages, 2026-11-25 09:00 and ")
    assert second == PAGES_NOTE
    assert "recorded pages" not in demo.output


def stored(demo: DemoRun, statement: str, **values: str) -> list[tuple[object, ...]]:
    """Rows of ``statement`` (with its bound ``values``) over the demo's own database."""
    engine = db.make_engine(f"sqlite:///{demo.out / DATABASE_NAME}")
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.execute(sa.text(statement), values)]
    finally:
        engine.dispose()


def test_every_demo_call_links_to_its_public_site(demo: DemoRun) -> None:
    """The sources read public addresses through the replays, so a call's link is the one a
    user would click; before, the ECCP, EISMEA and EIT calls linked to 127.0.0.1:PORT."""
    urls = [str(url) for (url,) in stored(demo, "SELECT json_extract(record, '$.url') FROM calls")]
    assert len(urls) >= 38
    assert [url for url in urls if "127.0.0.1" in url or "localhost" in url] == []
    assert all(url.startswith("https://") for url in urls)
    hosts = {url.split("/")[2] for url in urls}
    assert {"www.eit.europa.eu", "www.clustercollaboration.eu", "eismea.ec.europa.eu",
            "ec.europa.eu"} <= hosts
    written = "\n".join(path.read_text(encoding="utf-8") for path in demo.out.rglob("*")
                        if path.suffix in (".txt", ".json", ".html"))
    assert "127.0.0.1" not in written.replace(json.dumps(str(demo.out))[1:-1], "")


def test_the_second_cycle_delivers_a_moved_deadline_an_opening_and_a_digest_of_changes(
        demo: DemoRun) -> None:
    moved = "ft_portal:HORIZON-CL5-2027-D3-01-05"
    changes = stored(demo, "SELECT call_id, kind, old, new FROM call_changes WHERE kind != 'new'")
    kinds = {(call, kind) for call, kind, _, _ in changes}
    assert (moved, "deadline_changed") in kinds
    assert ("ft_portal:HORIZON-JU-CLEANH2-2027-02-01", "opened") in kinds
    assert ("ft_portal:DIGITAL-2026-AI-08-TESTEF", "budget_changed") in kinds
    # Ana is told at once, on both her channels, that the deadline moved
    alerts = stored(demo, "SELECT channel, status, message FROM deliveries "
                          "WHERE kind = 'alert' AND call_id = :call ORDER BY id", call=moved)
    later = [(channel, status) for channel, status, message in alerts
             if re.search(r"(?i)deadline [^\n]*(→|\\u2192)", str(message))]
    assert sorted(later) == [("email", "sent"), ("telegram", "sent")]
    # Lars's second digest email holds the budget change and the new topic
    digests = sorted((demo.out / "email").glob("*-lars-*digest*.eml"))
    assert len(digests) == 2
    last = message_from_bytes(digests[-1].read_bytes(), policy=policy.default)
    text = last.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    assert "DIGITAL-2027-AI-09-EDGEVISION" in text and "DIGITAL-2026-AI-08-TESTEF" in text
    assert "24.0 M" in text  # the raised budget
    reminders = stored(demo, "SELECT call_id FROM deliveries WHERE kind = 'reminder'")
    assert ("ft_portal:DIGITAL-2026-AI-08-TESTEF",) in reminders
    summary = sections(demo.output)
    assert summary["what the cycles stored"]["deadline_changed"] == [0, 1]
    assert all(second > 0 for _, second in summary["messages per channel"].values())


def test_the_printed_hint_runs_as_printed(demo: DemoRun) -> None:
    [hint] = [line for line in demo.output.splitlines() if line.startswith("browse the calls: ")]
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CALLWATCH_")}
    result = subprocess.run(  # noqa: S603 - the command the demo printed, our own script
        [*shlex.split(hint.removeprefix("browse the calls: ")), "--format", "json"], cwd=demo.cwd,
        env=environment, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert len(json.loads(result.stdout)) > 0


def test_the_hint_names_the_script_beside_python_when_callwatch_is_not_on_path(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # a venv that is not activated
    monkeypatch.chdir(tmp_path)
    command = callwatch_command()
    beside = Path(sys.executable).with_name("callwatch")
    assert command == (str(beside) if beside.is_file() else f"{sys.executable} -m tracker")
    assert command != "callwatch"
