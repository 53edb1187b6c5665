"""The command line in an 80-column terminal and in a pipe (issue 16, points 8 to 10).

At 80 columns `calls list`, `match --all` and `deliveries` wrapped titles 8-12 characters
wide and broke ids mid-word, and `sources` cut every cell ("ft_p…"); piped, every table was
200 columns of box drawing. These tests run the commands as a user does: in a pseudo-terminal
80 columns wide (`COLUMNS=80` and the terminal's own size), and with standard output a pipe.
The choice of columns itself (`fit_columns`) is pure: tests/test_cli_columns.py.
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.factories import make_call
from tests.test_daemon_process import free_port
from tracker.cli import cli
from tracker.models import ScrapeResult
from tracker.store import db
from tracker.store.calls import Store

REPO = Path(__file__).resolve().parent.parent
NOW = datetime.now(UTC)  # the commands read the real clock; calls are placed relative to it
#: ids as long as the portal's, titles as long as its titles
H2 = "HORIZON-CL5-2027-D3-01-05"
H2_TITLE = ("Next-generation PEM and solid-oxide electrolysers for renewable hydrogen "
            "production at industrial scale")
STORAGE = "HORIZON-CL5-2027-D3-02-11"
STORAGE_TITLE = "Hydrogen storage in salt caverns and depleted gas fields for seasonal balancing"
IDS = (f"ft_portal:{H2}", f"ft_portal:{STORAGE}")
#: a title fragment wider than 12 characters, on one line only when the title has the room
WIDE_FRAGMENTS = ("Next-generation PEM", "Hydrogen storage in")
BOX = re.compile("[\u2500-\u257f]")  # box drawing
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)")


def source_names() -> list[str]:
    with (REPO / "tracker" / "defaults.toml").open("rb") as handle:
        return list(tomllib.load(handle)["sources"])


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """Two stored calls, a profile that matches both, every source off (nothing goes online),
    and one cycle run, so the outbox holds the console's alerts."""
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "h2.yaml").write_text("name: h2\nquery: hydrogen\n", encoding="utf-8")
    url = f"sqlite:///{tmp_path / 'callwatch.db'}"
    off = "".join(f"[sources.{name}]\nenabled = false\n" for name in source_names())
    (tmp_path / "callwatch.toml").write_text(
        f'[database]\nurl = "{url}"\n[profiles]\ndirectory = "profiles"\n'
        f'[alerts]\nsummary_after = 0\n{off}', encoding="utf-8")  # one alert per call, no summary
    engine = db.make_engine(url)
    db.upgrade(engine)
    soon = NOW + timedelta(days=40)
    store = Store(engine)
    store.record_run("ft_portal", ScrapeResult(records=[
        # two cut-offs: the next one is soon, the final one late
        make_call(H2, title=H2_TITLE, deadlines=(soon, soon + timedelta(days=200))),
        make_call(STORAGE, title=STORAGE_TITLE, keywords=("storage",),
                  deadlines=(soon + timedelta(days=30),)),
    ]), started_at=NOW - timedelta(minutes=10), now=NOW - timedelta(minutes=10))
    engine.dispose()
    done = CliRunner().invoke(cli, ["--config", str(tmp_path / "callwatch.toml"), "run", "--once"])
    assert done.exit_code == 0, done.output
    return tmp_path


def with_failures(workdir: Path) -> None:
    """interreg switched on (only `sources` runs: nothing goes online) and failing twice,
    with a reason as long as real ones."""
    config = workdir / "callwatch.toml"
    config.write_text(config.read_text(encoding="utf-8").replace(
        "[sources.interreg]\nenabled = false", "[sources.interreg]\nenabled = true"),
        encoding="utf-8")
    engine = db.make_engine(f"sqlite:///{workdir / 'callwatch.db'}")
    for minutes in (60, 4):
        at = datetime(2026, 11, 25, 12, 0, tzinfo=UTC) - timedelta(minutes=minutes)
        Store(engine).record_run("interreg", ScrapeResult(complete=False, error=(
            "ConnectError from https://www.interreg.eu/1/indexes/*/queries: All connection "
            "attempts failed")), started_at=at, now=at)
    engine.dispose()


def environment(**more: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLWATCH_")}
    env.update(more)
    return env


def piped(workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The command with standard output a pipe, as `callwatch ... | less` runs it."""
    return subprocess.run(  # noqa: S603 - our own command line
        [sys.executable, "-m", "tracker", "--config", str(workdir / "callwatch.toml"), *args],
        cwd=workdir, env=environment(COLUMNS="80"), capture_output=True, text=True, timeout=120,
        check=False)


def in_terminal(workdir: Path, *args: str, columns: int = 80) -> str:
    """What the command shows in a terminal ``columns`` wide (a pseudo-terminal of that size,
    ``COLUMNS`` set too), colours and styles taken out."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 60, columns, 0, 0))
    with subprocess.Popen(  # noqa: S603 - our own command line; with: its pipe closed, waited
            [sys.executable, "-m", "tracker", "--config", str(workdir / "callwatch.toml"), *args],
            cwd=workdir, env=environment(COLUMNS=str(columns), TERM="xterm-256color"),
            stdin=subprocess.DEVNULL, stdout=follower, stderr=subprocess.PIPE) as process:
        os.close(follower)
        chunks: list[bytes] = []
        deadline = time.monotonic() + 120
        try:
            while time.monotonic() < deadline:
                ready, _, _ = select.select([leader], [], [], 1.0)
                if not ready:
                    if process.poll() is not None:
                        break
                    continue
                try:
                    data = os.read(leader, 65536)
                except OSError:  # EIO: the command closed the terminal
                    break
                if not data:
                    break
                chunks.append(data)
            _, err = process.communicate(timeout=30)
        finally:
            os.close(leader)
            if process.poll() is None:
                process.kill()
    assert process.returncode == 0, err.decode()
    return ANSI.sub("", b"".join(chunks).decode("utf-8")).replace("\r\n", "\n")


# -- 80 columns in a terminal, and a pipe ----------------------------------------------------

COMMANDS = [("calls", "list"), ("match", "--all"), ("deliveries",), ("sources",)]


@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_at_80_columns_lines_fit_ids_stay_whole_and_titles_have_room(
        workdir: Path, args: tuple[str, ...]) -> None:
    if args[0] == "sources":
        with_failures(workdir)
    shown = in_terminal(workdir, *args)
    lines = shown.splitlines()
    assert lines, shown
    assert max(len(line) for line in lines) <= 80, shown
    if args[0] == "sources":
        # every cell whole, never "ft_p…": each source's name, its last run and its level
        assert "…" not in shown, shown
        assert re.search(r"^interreg +│ 2026-11-25 11:56 .*│ amber +│ 2 failed", shown,
                         re.MULTILINE), shown
        assert re.search(r"^hadea +│ never .*│ off ", shown, re.MULTILINE), shown
        return
    for call_id in IDS:
        if args[0] == "deliveries":
            continue  # the outbox table names the row, the subscriber and the subject
        assert call_id in shown, f"{call_id} split or cut:\n{shown}"
    for fragment in WIDE_FRAGMENTS:
        assert fragment in shown, f"titles wrap narrower than {len(fragment)}:\n{shown}"


@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_piped_output_is_plain_tab_separated_text(workdir: Path, args: tuple[str, ...]) -> None:
    done = piped(workdir, *args)
    assert done.returncode == 0, done.stderr
    assert not BOX.search(done.stdout), done.stdout
    header, *rows = done.stdout.splitlines()
    assert rows and all(row.count("\t") == header.count("\t") > 1 for row in rows), done.stdout
    if args[0] != "sources":
        assert any(H2_TITLE in row for row in rows), done.stdout  # whole, on one line
    # asked for, the table comes, fitted to COLUMNS
    table = piped(workdir, *args, "--format", "table")
    assert BOX.search(table.stdout) and max(map(len, table.stdout.splitlines())) <= 80, table.stdout


# -- order and agreement ---------------------------------------------------------------------

def test_calls_list_sorts_by_the_next_deadline_it_shows(workdir: Path) -> None:
    """H2's next cut-off is in 40 days and its final one in 240; the storage call closes in
    70. Sorted by the final deadline (as the store does), H2 came second while showing the
    sooner date."""
    listed = json.loads(piped(workdir, "calls", "list", "--format", "json").stdout)
    assert [c["id"] for c in listed] == list(IDS)
    done = piped(workdir, "calls", "list")
    assert done.returncode == 0, done.stderr
    header, *rows = [line.split("\t") for line in done.stdout.splitlines()]
    assert [row[header.index("id")] for row in rows] == list(IDS), done.stdout
    shown = [row[header.index("next deadline")] for row in rows]
    assert shown == sorted(shown), shown


def test_times_have_one_form_in_every_table(workdir: Path) -> None:
    """`sources` printed "2026-11-25T11:56" (ISO cut to 16 characters) where `status`,
    `calls list` and `match` print "2026-11-25 11:56"."""
    minute = re.compile(r"\b\d{4}-\d\d-\d\d \d\d:\d\d\b")
    iso = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d")
    engine = db.make_engine(f"sqlite:///{workdir / 'callwatch.db'}")
    at = datetime(2026, 11, 25, 11, 56, tzinfo=UTC)
    Store(engine).record_run("eit", ScrapeResult(complete=False, error="HTTP 503"),
                             started_at=at, now=at)
    engine.dispose()
    for args in (("sources",), ("status",), ("calls", "list"), ("match", "--all"),
                 ("deliveries",)):
        out = piped(workdir, *args).stdout  # every column: times in full
        assert minute.search(out) and not iso.search(out), (args, out)
        if args[0] in ("sources", "status"):
            assert "2026-11-25 11:56" in out, out


def test_status_and_sources_give_a_disabled_source_the_same_health(workdir: Path) -> None:
    """A disabled source that failed before it was switched off: `status` said "off",
    `sources` said "amber"."""
    engine = db.make_engine(f"sqlite:///{workdir / 'callwatch.db'}")
    Store(engine).record_run("eit", ScrapeResult(complete=False, error="HTTP 503"),
                             started_at=NOW, now=NOW)
    engine.dispose()
    [by_status] = [s["state"] for s in json.loads(
        piped(workdir, "status", "--format", "json").stdout)["sources"] if s["name"] == "eit"]
    [by_sources] = [s.get("state") for s in json.loads(
        piped(workdir, "sources", "--format", "json").stdout) if s["name"] == "eit"]
    assert (by_status, by_sources) == ("off", "off")

    def health(*args: str) -> str:
        lines = piped(workdir, *args).stdout.splitlines()
        at = next(n for n, line in enumerate(lines) if line.startswith("name\t"))
        header = lines[at].split("\t")
        row = next(line.split("\t") for line in lines[at:] if line.startswith("eit\t"))
        return row[header.index("health")]

    assert health("status") == health("sources") == "off"


# -- hints instead of empty answers ------------------------------------------------------------

def test_match_with_nothing_new_says_to_try_all(workdir: Path) -> None:
    piped(workdir, "match", "--profile", "h2")  # the run's matches are seen: nothing is new now
    done = piped(workdir, "match", "--profile", "h2")
    assert done.returncode == 0, done.stderr
    assert "callwatch match --all --profile h2" in done.stderr, done.stderr


def test_profiles_list_with_none_names_the_directory_it_searched(tmp_path: Path) -> None:
    (tmp_path / "callwatch.toml").write_text(
        f'[database]\nurl = "sqlite:///{tmp_path / "x.db"}"\n[profiles]\ndirectory = "mine"\n',
        encoding="utf-8")
    done = piped(tmp_path, "profiles", "list")
    assert done.returncode == 0, done.stderr
    assert str((tmp_path / "mine").resolve()) in done.stderr, done.stderr
    assert "does not exist" in done.stderr, done.stderr


def one_source(workdir: Path, search_url: str, bulk_url: str) -> None:
    """Only ft_portal on, at ``search_url`` and ``bulk_url`` (loopback), retrying little."""
    off = "".join(f"[sources.{name}]\nenabled = false\n" for name in source_names()
                  if name != "ft_portal")
    (workdir / "callwatch.toml").write_text(f"""
[database]
url = "sqlite:///{workdir / 'callwatch.db'}"
[profiles]
directory = "profiles"
[http]
delay = 0
retries = 2
backoff = 0.01
max_backoff = 0.05
[sources.ft_portal]
page_size = 5
search_url = "{search_url}"
bulk_url = "{bulk_url}"
{off}
[notifiers.email]
enabled = false
""", encoding="utf-8")


def test_run_once_gives_each_failing_sources_reason_in_its_table(tmp_path: Path) -> None:
    """The table said only "failed" while the console filled with each retry's WARNING."""
    (tmp_path / "profiles").mkdir()
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    one_source(tmp_path, f"{closed}/search", f"{closed}/bulk.json")
    done = piped(tmp_path, "run", "--once")
    assert done.returncode == 1, done.stderr
    [row] = [line for line in done.stderr.splitlines() if line.startswith("scrape ft_portal")]
    assert re.search(r"failed: .*ConnectError from http://127\.0\.0\.1:\d+/search", row), row
    assert " WARNING " not in done.stderr, done.stderr
    assert "-v logs every retry" in done.stderr


def test_ctrl_c_twice_stops_the_daemon_at_once_without_a_traceback(tmp_path: Path) -> None:
    """One Ctrl-C lets the running scrape finish (up to 25 s); the second one stops now, and
    the scrape it cuts off is one line in the log, not APScheduler's CancelledError traceback."""
    from tracker.demo.fakes.portal import PortalReplayServer

    (tmp_path / "profiles").mkdir()
    with PortalReplayServer() as portal:
        portal.slow = 60.0  # every search page: the scrape is in flight until it is cut off
        one_source(tmp_path, portal.search_url, portal.bulk_url)
        with (tmp_path / "daemon.log").open("w+", encoding="utf-8") as log, \
                subprocess.Popen(  # noqa: S603 - our own command line
                    [sys.executable, "-m", "tracker", "--config", str(tmp_path / "callwatch.toml"),
                     "run"], cwd=tmp_path, env=environment(), stdout=log,
                    stderr=subprocess.STDOUT) as process:
            try:
                deadline = time.monotonic() + 120
                while not portal.searches and process.poll() is None and time.monotonic() < deadline:
                    time.sleep(0.05)
                assert portal.searches, (tmp_path / "daemon.log").read_text(encoding="utf-8")
                process.send_signal(signal.SIGINT)
                time.sleep(0.5)
                process.send_signal(signal.SIGINT)
                try:  # the bound is the wait: still running after 15 s fails the test
                    code = process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    pytest.fail("still running 15 s after the second Ctrl-C\n"
                                + (tmp_path / "daemon.log").read_text(encoding="utf-8"))
            finally:
                if process.poll() is None:
                    process.kill()
                    process.wait(timeout=10)
    output = (tmp_path / "daemon.log").read_text(encoding="utf-8")
    assert code == 0, output
    assert "Traceback" not in output and "CancelledError" not in output, output
    assert "stopping at once" in output and "cut off by the stop" in output, output
