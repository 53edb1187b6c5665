"""`callwatch scrape` with no names runs every enabled built-in source; `callwatch sources`
shows each one's health, including interreg.eu refusing a search key that rotated.

The sources read the recorded pages bundled for the demo, served by the same replay
servers (`tracker.demo.run.local_world`); the installed `callwatch` script runs as a user runs it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from scrapers.interreg import KEY_REJECTED
from tests.test_cli import run
from tracker.demo.run import demo_config, local_world

REPLAYED = ("ft_portal", "interreg", "eccp", "eismea", "eit", "cascade_hub")


def test_scrape_runs_every_enabled_source_and_sources_shows_each_ones_health(
        tmp_path: Path, engine: Engine, database_url: str) -> None:
    (tmp_path / "profiles").mkdir()
    (tmp_path / "subscribers").mkdir()
    config = tmp_path / "callwatch.toml"

    def callwatch(*args: str) -> tuple[int, str, str]:
        done = run("--config", str(config), *args, cwd=tmp_path)
        assert "Traceback" not in done.stderr, done.stderr
        return done.returncode, done.stdout, done.stderr

    def sources() -> dict[str, dict[str, Any]]:
        code, out, _ = callwatch("sources", "--format", "json")
        assert code == 0
        return {row["name"]: row for row in json.loads(out)}

    with local_world() as world:
        # every recorded source on, every source without a recording off (never online)
        config.write_text(demo_config(world, database_url, tmp_path / "profiles",
                                      tmp_path / "subscribers"), encoding="utf-8")
        assert {name for name, row in sources().items() if row["enabled"]} == set(REPLAYED)
        assert all(row["health"] == "unknown" for row in sources().values())

        code, out, err = callwatch("scrape")
        assert code == 0, out + err
        table = {line.split("\t")[0]: line.split("\t") for line in out.splitlines()[1:]}
        assert set(REPLAYED) <= set(table), out  # piped: tab-separated, the header first
        assert all(cells[-1] == "ok" for name, cells in table.items() if name in REPLAYED), out

        shown = sources()
        for name in REPLAYED:
            row = shown[name]
            assert (row["outcome"], row["health"], row["health_reason"]) == \
                ("ok", "green", "last run ok"), row
            assert row["items"] > 0 and row["last_run"] and row["last_success"], row
        for name in set(shown) - set(REPLAYED):  # hadea, eic: off, never run
            assert not shown[name]["enabled"] and shown[name]["last_run"] is None

        # interreg.eu rotates its public key: the run fails saying how to fix it, and the
        # health shows it; the other sources are untouched
        world.interreg.api_key = "rotated-key"
        code, out, err = callwatch("scrape")
        assert code == 1
        assert f"interreg: {KEY_REJECTED}" in err
        shown = sources()
        assert shown["interreg"]["outcome"] == "failed"
        assert shown["interreg"]["error"] == KEY_REJECTED
        assert shown["interreg"]["health"] == "amber"
        assert shown["interreg"]["health_reason"] == \
            f"1 failed or suspicious run(s) in a row: {KEY_REJECTED}"
        assert all(shown[name]["health"] == "green" for name in REPLAYED if name != "interreg")
