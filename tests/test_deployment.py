"""The deployment files say what callwatch does: the Dockerfile's command and health check,
compose.yaml's services, variables and ports, and the systemd units' web.listen.

No image can be pulled or built here (no network), so the files are read and held against
callwatch itself: every command they run exists, every CALLWATCH_ variable is a setting or
a secret callwatch reads, the health check's URL is the web app's /healthz on the port
web.listen gives, and the check passes on a healthy app and fails on an unhealthy one.
``docker compose config`` validates compose.yaml too when the compose plugin is installed.
"""

from __future__ import annotations

import asyncio
import configparser
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import pytest
import yaml
from sqlalchemy.engine import Engine

from tracker.cli import cli
from tracker.config import SECRET_ENV, load_config, split_listen
from tracker.web.app import create_app
from tracker.web.serve import start_in_loop

REPO = Path(__file__).resolve().parent.parent
#: secrets read by a channel from a variable named in the settings (webhook's secret_env)
CHANNEL_SECRETS = {"CALLWATCH_WEBHOOK_SECRET"}


def dockerfile() -> dict[str, list[str]]:
    """Each instruction of the Dockerfile (continuation lines joined) → its arguments."""
    text = (REPO / "Dockerfile").read_text(encoding="utf-8")
    joined = re.sub(r"\\\n\s*", " ", "\n".join(
        line for line in text.splitlines() if not line.lstrip().startswith("#")))
    instructions: dict[str, list[str]] = {}
    for line in joined.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            instructions.setdefault(word.upper(), []).append(rest.strip())
    return instructions


def docker_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for value in dockerfile()["ENV"]:
        env.update(dict(re.findall(r"(\w+)=(\S+)", value)))
    return env


def compose() -> dict[str, Any]:
    loaded = yaml.safe_load((REPO / "compose.yaml").read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def resolve(args: Sequence[str]) -> click.Command:
    """The callwatch command ``args`` names (``callwatch db upgrade``); fails when none."""
    assert args[0] == "callwatch", args
    command: click.Command = cli
    for word in args[1:]:
        if word.startswith("-"):
            continue
        assert isinstance(command, click.Group), (args, word)
        sub = command.get_command(click.Context(command), word)
        assert sub is not None, f"no command {' '.join(args)}"
        command = sub
    return command


def substitute(value: str) -> str:
    """``${NAME:?…}`` and ``${NAME:-…}`` as compose fills them, with a sample value."""
    return re.sub(r"\$\{(\w+)[^}]*\}", lambda m: "s" * 40 if "SECRET" in m[1] else "pw", value)


def settings_env(environment: Mapping[str, str]) -> dict[str, str]:
    """The CALLWATCH_ variables of ``environment`` that are settings, checked to be secrets
    when they are not (``CALLWATCH_CONFIG`` names the file)."""
    settings = {}
    for name, value in environment.items():
        assert name.startswith(("CALLWATCH_", "POSTGRES_")), name
        if "__" in name:
            settings[name] = substitute(str(value))
        else:
            assert name in {*SECRET_ENV, *CHANNEL_SECRETS, "CALLWATCH_CONFIG"} or \
                name.startswith("POSTGRES_"), f"{name}: not a variable callwatch reads"
    return settings


# -- the Dockerfile -------------------------------------------------------------------------------

def test_the_image_is_slim_python_non_root_and_installs_the_package() -> None:
    steps = dockerfile()
    assert steps["FROM"] == ["python:3.11-slim"]
    assert steps["USER"] == ["callwatch"]
    assert any("useradd --system" in run for run in steps["RUN"])
    assert any(run.startswith("pip install /src") for run in steps["RUN"])
    copied = {part for copy in steps["COPY"] for part in copy.split()[:-1]}  # the sources
    pyproject = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    packages = re.search(r'packages = \[(.*?)\]', pyproject)
    assert packages is not None
    wanted = {name.strip(' "') for name in packages[1].split(",")} | {"config"}  # force-include
    assert wanted | {"pyproject.toml", "README.md"} <= copied, (wanted, copied)


def test_the_image_runs_the_daemon_with_the_web_app_on_its_port() -> None:
    steps = dockerfile()
    [cmd] = steps["CMD"]
    assert resolve(json.loads(cmd)).name == "run"
    env = docker_env()
    settings = load_config(environ={k: v for k, v in env.items() if "__" in k})
    key, listen = settings.web_listen()
    assert key == "web.listen"
    host, port = split_listen(listen)
    assert host == "0.0.0.0"  # noqa: S104 - inside the container, published on loopback
    assert [f"{port}"] == steps["EXPOSE"]
    [check] = steps["HEALTHCHECK"]
    assert f"http://127.0.0.1:{port}/healthz" in check
    assert env["CALLWATCH_CONFIG"] == "/etc/callwatch/callwatch.toml"


def _health_command() -> list[str]:
    check = dockerfile()["HEALTHCHECK"][0]
    return list(json.loads(check[check.index("CMD") + 3:].strip()))


def test_the_health_check_passes_when_healthy_and_fails_when_not(engine: Engine) -> None:
    """The HEALTHCHECK's own command, run against the web app (on a free port)."""
    command = _health_command()
    assert command[0] == "python"
    path = "/healthz"
    assert any(getattr(route, "path", None) == path for route in create_app(
        load_config(environ={}), engine, lambda: datetime.now(UTC), "s" * 32).routes)

    async def check(alive: bool) -> int:
        settings = load_config(environ={"CALLWATCH_WEB__LISTEN": "127.0.0.1:0"})
        server = await start_in_loop(settings, engine, lambda: alive, lambda: datetime.now(UTC))
        assert server is not None
        try:
            args = [sys.executable, *(arg.replace("http://127.0.0.1:8080", server.url)
                                      for arg in command[1:])]
            process = await asyncio.create_subprocess_exec(
                *args, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
            return await asyncio.wait_for(process.wait(), 60)
        finally:
            await server.close()

    assert asyncio.run(check(True)) == 0
    assert asyncio.run(check(False)) != 0  # /healthz answers 503


# -- compose.yaml ---------------------------------------------------------------------------------

def test_compose_runs_callwatch_on_postgresql_15_with_a_schema_upgrade_first() -> None:
    services = compose()["services"]
    assert set(services) == {"db", "migrate", "callwatch"}
    assert services["db"]["image"].startswith("postgres:15")
    assert resolve(services["migrate"]["command"]).name == "upgrade"
    assert resolve(services["callwatch"]["command"]).name == "run"
    assert services["migrate"]["depends_on"]["db"]["condition"] == "service_healthy"
    assert services["callwatch"]["depends_on"]["migrate"]["condition"] == \
        "service_completed_successfully"
    for name in ("migrate", "callwatch"):
        assert services[name]["volumes"] == ["./site:/etc/callwatch:ro"]
        assert services[name]["env_file"] == [{"path": "./callwatch.env", "required": False}]


def test_compose_variables_are_callwatch_settings_and_the_port_is_web_listen() -> None:
    services = compose()["services"]
    environment = services["callwatch"]["environment"]
    settings = load_config(environ=settings_env(environment))
    assert settings.database.url == "postgresql://callwatch:pw@db:5432/callwatch"
    assert environment["CALLWATCH_WEB_SECRET"].startswith("${CALLWATCH_WEB_SECRET:?")
    key, listen = settings.web_listen()
    assert key == "web.listen"
    _, port = split_listen(listen)
    assert services["callwatch"]["ports"] == [f"127.0.0.1:{port}:{port}"]  # host loopback only
    mount = services["callwatch"]["volumes"][0].split(":")[1]
    assert environment["CALLWATCH_CONFIG"] == f"{mount}/callwatch.toml"
    db = services["db"]["environment"]
    url = settings.database.url
    assert f"//{db['POSTGRES_USER']}:" in url and url.endswith(f"/{db['POSTGRES_DB']}")
    settings_env(services["migrate"]["environment"])
    # what `callwatch init` writes goes where the containers read it
    from tracker.starter import CONFIG, starter_files
    assert CONFIG == "callwatch.toml" and CONFIG in starter_files()


def test_docker_compose_accepts_the_file() -> None:
    docker = shutil.which("docker")
    if docker is None or subprocess.run([docker, "compose", "version"],  # noqa: S603
                                        capture_output=True, check=False).returncode != 0:
        pytest.skip("the docker compose plugin is not installed")
    env = {"POSTGRES_PASSWORD": "pw", "CALLWATCH_WEB_SECRET": "s" * 40, "PATH": "/usr/bin:/bin"}
    result = subprocess.run([docker, "compose", "-f", str(REPO / "compose.yaml"), "config",  # noqa: S603
                             "--quiet"], capture_output=True, text=True, env=env, check=False)
    assert result.returncode == 0, result.stderr


# -- the systemd units ----------------------------------------------------------------------------

@pytest.mark.parametrize(("unit", "command"), [("callwatch.service", "run"),
                                               ("callwatch-worker@.service", "worker")])
def test_the_systemd_units_serve_the_web_app_on_loopback(unit: str, command: str) -> None:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    parser.read_string((REPO / "config" / unit).read_text(encoding="utf-8"))
    service = parser["Service"]
    assert resolve(["callwatch", *service["ExecStart"].split()[1:]]).name == command
    # configparser keeps the last of repeated keys: find the web.listen line itself
    text = (REPO / "config" / unit).read_text(encoding="utf-8")
    [listen] = re.findall(r"^Environment=CALLWATCH_WEB__LISTEN=(\S+)$", text, re.MULTILINE)
    settings = load_config(environ={"CALLWATCH_WEB__LISTEN": listen})
    assert split_listen(settings.web.listen)[0] == "127.0.0.1"
    assert "health.listen" not in text.replace("(health.listen, its former name", "")
