"""How long `callwatch` takes to start: the real commands as processes, beside a floor.

    python bench/bench_start.py [--repeat 10] [--demo-repeat 3] [--callwatch PATH]
    python bench/bench_start.py --imports [--repeat 5]

Runs, each ``--repeat`` times, in this order round-robin (so a change of load hits every
command alike): the floor ``python -c pass`` and ``python -c "import sqlite3"`` (the least a
Python program that reads a SQLite file pays), ``callwatch --version``, ``callwatch --help``
and ``callwatch calls list`` on an empty SQLite store (migrated once before the timed runs);
then ``callwatch demo`` ``--demo-repeat`` times into fresh folders. Prints min / median / max
wall time, each command's median CPU time (user + system, from ``wait4``, so it does not
count waiting for a core), and the ratio of each median to the ``import sqlite3`` floor.
The console script is the one beside this interpreter unless ``--callwatch`` names
another; targets (issue 15): --version and --help ≤ 0.3 s, calls list ≤ 0.6 s, demo ≤ 4 s.

``--imports`` runs ``--version`` and ``calls list`` (empty store) under ``python -X importtime
-m tracker`` instead, ``--repeat`` times each, and prints the median seconds spent importing
modules, in all, per top-level package and for the largest modules (each module's own
time, not its imports'); run it with ``PYTHONPATH`` set to measure another checkout (``code
measured`` says which).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench._machine import describe

TARGETS = {"--version": 0.3, "--help": 0.3, "calls list (empty store)": 0.6, "demo": 4.0}


def timed(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the child) for one run; fails loudly on a non-zero exit."""
    began = time.perf_counter()
    process = subprocess.Popen(argv, cwd=cwd, env=env,  # noqa: S603 - our own commands
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - began
    stderr = process.stderr.read().decode() if process.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{stderr}")
    return wall, usage.ru_utime + usage.ru_stime


def import_seconds(argv: list[str], cwd: Path, env: dict[str, str]) -> dict[str, float]:
    """Seconds each module's own code took to import (not its imports') in one run of
    ``argv`` (``python -X importtime``: "import time: self [us] | cumulative | name")."""
    done = subprocess.run([sys.executable, "-X", "importtime", *argv],  # noqa: S603 - our own
                          cwd=cwd, env=env, capture_output=True, text=True, check=True)
    seconds: dict[str, float] = {}
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        own, _, name = (part.strip() for part in line.removeprefix("import time:").split("|"))
        seconds[name] = seconds.get(name, 0.0) + int(own) / 1e6
    return seconds


def _largest(runs: list[dict[str, float]], count: int) -> str:
    """The ``count`` largest medians over ``runs``, as "name 0.123"."""
    names = {name for run in runs for name in run}
    median = {name: statistics.median(run.get(name, 0.0) for run in runs) for name in names}
    return ", ".join(f"{name} {value:.3f}"
                     for name, value in sorted(median.items(), key=lambda item: -item[1])[:count])


def bench_imports(repeat: int, work: Path, env: dict[str, str], store: str) -> None:
    import tracker

    print(f"code measured: {Path(tracker.__file__).resolve().parent.parent}")
    for name, args in (("--version", ["--version"]),
                       ("calls list (empty store)", ["--db", store, "calls", "list"])):
        runs = [import_seconds(["-m", "tracker", *args], work, env) for _ in range(repeat)]
        packages = [{} for _ in runs]
        for run, by_package in zip(runs, packages, strict=True):
            for module, value in run.items():
                top = module.split(".")[0]
                by_package[top] = by_package.get(top, 0.0) + value
        total = statistics.median(sum(run.values()) for run in runs)
        print(f"{name}: {total:.3f} s of imports (median of {repeat})\n"
              f"  packages: {_largest(packages, 8)}\n  modules:  {_largest(runs, 6)}")


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text(encoding="utf-8").split()[:3])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--demo-repeat", type=int, default=3)
    parser.add_argument("--callwatch", default=str(Path(sys.executable).with_name("callwatch")))
    parser.add_argument("--imports", action="store_true",
                        help="seconds of imports per package, instead of the timed commands")
    args = parser.parse_args()

    # PYTHONDONTWRITEBYTECODE (set in the helpers' shells) would make every run from a fresh
    # checkout compile callwatch's modules from source: about 0.1 s of `calls list`'s CPU
    # (2026-12-04) that an installed callwatch, whose modules pip compiled, never pays
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("CALLWATCH_") and k != "PYTHONDONTWRITEBYTECODE"}
    with tempfile.TemporaryDirectory(prefix="bench-start-") as scratch:
        work = Path(scratch)
        store = f"sqlite:///{work / 'empty.db'}"
        timed([args.callwatch, "--db", store, "db", "upgrade"], work, env)
        if args.imports:
            print(f"machine: {describe()}; load before: {loadavg()}")
            bench_imports(args.repeat, work, env, store)
            print(f"load after: {loadavg()}")
            return
        commands = {
            "python -c pass (floor)": [sys.executable, "-c", "pass"],
            "python -c 'import sqlite3' (floor)": [sys.executable, "-c", "import sqlite3"],
            "--version": [args.callwatch, "--version"],
            "--help": [args.callwatch, "--help"],
            "calls list (empty store)": [args.callwatch, "--db", store, "calls", "list"],
        }
        print(f"machine: {describe()}; load before: {loadavg()}")
        runs: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
        for _ in range(args.repeat):
            for name, argv in commands.items():
                runs[name].append(timed(argv, work, env))
        runs["demo"] = [timed([args.callwatch, "demo", "--out", str(work / f"demo-{n}")], work, env)
                        for n in range(args.demo_repeat)]
        print(f"load after: {loadavg()}")

    floor = statistics.median(wall for wall, _ in runs["python -c 'import sqlite3' (floor)"])
    print(f"\n{'command':<38}{'min':>8}{'median':>8}{'max':>8}{'CPU med':>9}{'×floor':>8}"
          f"{'target':>8}")
    for name, samples in runs.items():
        walls = [wall for wall, _ in samples]
        cpu = statistics.median(c for _, c in samples)
        target = f"{TARGETS[name]:.1f}" if name in TARGETS else ""
        print(f"{name:<38}{min(walls):>8.3f}{statistics.median(walls):>8.3f}{max(walls):>8.3f}"
              f"{cpu:>9.3f}{statistics.median(walls) / floor:>7.1f}×{target:>8}")
    print(f"\nruns: {args.repeat} each, demo {args.demo_repeat}; wall seconds")


if __name__ == "__main__":
    main()
