"""The daemon at rest: memory and CPU of `callwatch run` between its jobs.

    python bench/bench_daemon_rest.py [--settle 50] [--window 20] [--callwatch PATH]

Starts the demo's local world (replays of the portal, interreg.eu, the ECCP, EISMEA, EIT and
the Cascade Funding Hub; the SMTP sink, the fake Bot API and the webhook receiver, all on
127.0.0.1) and `callwatch --config <temp> run` as its own process, with every replayed source
pointed at its replay, the example profiles and subscribers, and `scheduler.jitter = "0s"`
so the first scrapes start at once. The daemon's first jobs run in its first 45 s (scrapes at
once, statuses at 15 s, digests at 30 s, reminders at 45 s); once every source has a run
stored and ``--settle`` seconds have passed since the start, the script reads
``/proc/<pid>/status`` (VmRSS, VmHWM) and ``/proc/<pid>/stat`` (user + system CPU) once a
second for ``--window`` seconds, and stops the daemon with SIGTERM.
Target (issue 15): RSS ≤ 120 MB, CPU ≈ 0 between jobs.
"""

from __future__ import annotations

import argparse
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench._machine import describe
from tracker.demo.run import (
    DEMO_TOKEN,
    DEMO_WEBHOOK_SECRET,
    bundled_config_dir,
    demo_config,
    local_subscribers,
    local_world,
)

TICKS = os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of ``pid`` in KiB."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                  if ":" in line)
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


def cpu_seconds(pid: int) -> float:
    """User + system CPU time ``pid`` has used."""
    after_name = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(after_name[11]) + int(after_name[12])) / TICKS  # utime, stime (fields 14, 15)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--settle", type=float, default=50.0)
    parser.add_argument("--window", type=float, default=20.0)
    parser.add_argument("--timeout", type=float, default=300.0, help="longest wait for the first scrapes")
    parser.add_argument("--callwatch", default=str(Path(sys.executable).with_name("callwatch")))
    args = parser.parse_args()

    config_dir = bundled_config_dir()
    with tempfile.TemporaryDirectory(prefix="bench-rest-") as scratch, local_world() as world:
        work = Path(scratch)
        database = work / "daemon.db"
        local_subscribers(config_dir / "subscribers", work / "subscribers", world)
        replayed = world.source_settings()
        text = demo_config(world, f"sqlite:///{database}", config_dir / "profiles", work / "subscribers")
        (work / "callwatch.toml").write_text(text + '[scheduler]\njitter = "0s"\n', encoding="utf-8")
        env = {k: v for k, v in os.environ.items() if not k.startswith("CALLWATCH_")}
        env.update({"CALLWATCH_TELEGRAM_TOKEN": DEMO_TOKEN, "CALLWATCH_WEBHOOK_SECRET": DEMO_WEBHOOK_SECRET})
        print(f"machine: {describe()}; load: {_load()}")
        log = (work / "daemon.log").open("w")
        daemon = subprocess.Popen(  # noqa: S603 - our own console script
            [args.callwatch, "--config", str(work / "callwatch.toml"), "run"], cwd=work, env=env,
            stdout=log, stderr=subprocess.STDOUT)
        try:
            began = time.monotonic()
            runs: dict[str, str] = {}
            while len(runs) < len(replayed) and time.monotonic() - began < args.timeout:
                time.sleep(2.0)
                if daemon.poll() is not None:
                    raise SystemExit((work / "daemon.log").read_text())
                runs = _stored(database, "SELECT source, outcome FROM source_runs ORDER BY id")
            if len(runs) < len(replayed):
                raise SystemExit(f"not every source ran within {args.timeout:.0f} s: {runs}\n" +
                                 (work / "daemon.log").read_text()[-3000:])
            scraped = time.monotonic() - began
            time.sleep(max(0.0, args.settle - scraped))  # the first statuses, digests, reminders
            calls = _stored(database, "SELECT 'calls', count(*) FROM calls")["calls"]
            sent = _stored(database, "SELECT 'sent', count(*) FROM deliveries WHERE status = 'sent'")
            print(f"every source ran within {scraped:.0f} s: {runs}; {calls} calls; "
                  f"{sent['sent']} messages sent by {time.monotonic() - began:.0f} s")
            start_cpu, samples = cpu_seconds(daemon.pid), []
            window_start = time.monotonic()
            while time.monotonic() - window_start < args.window:
                time.sleep(1.0)
                samples.append(rss_kib(daemon.pid))
            window = time.monotonic() - window_start
            used = cpu_seconds(daemon.pid) - start_cpu
        finally:
            daemon.send_signal(signal.SIGTERM)
            try:
                code = daemon.wait(timeout=120)
            except subprocess.TimeoutExpired:
                daemon.kill()
                code = daemon.wait()
            log.close()
        rss = [current / 1024 for current, _ in samples]
        print(f"load: {_load()}; daemon exited {code} on SIGTERM")
        print(f"RSS between jobs: min {min(rss):.1f} / median {statistics.median(rss):.1f} / "
              f"max {max(rss):.1f} MiB (target ≤ 120 MB = 114.4 MiB); peak (VmHWM) "
              f"{samples[-1][1] / 1024:.1f} MiB")
        print(f"CPU over {window:.0f} s at rest: {used:.2f} s ({100 * used / window:.1f}% of a core)")


def _stored(database: Path, statement: str) -> dict[str, str]:
    """Two-column rows of ``statement`` as a dict (empty while the schema is not there yet)."""
    try:
        with sqlite3.connect(database) as connection:
            return {str(k): str(v) for k, v in connection.execute(statement).fetchall()}
    except sqlite3.OperationalError:
        return {}


def _load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


if __name__ == "__main__":
    main()
