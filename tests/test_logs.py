"""Logging: secrets from the environment never reach a log line, a traceback included."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from tracker import logs
from tracker.cli import App

TOKEN = "123456:SECRET-BOT-TOKEN"
WEBHOOK = "whsec_c2VjcmV0LXdlYmhvb2s="


@pytest.fixture
def restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.parametrize("fmt", ["plain", "json"])
def test_secrets_are_redacted_in_messages_and_tracebacks(
    fmt: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    restore_root_logger: None,
) -> None:
    monkeypatch.setenv("CALLWATCH_TELEGRAM_TOKEN", TOKEN)
    logs.configure("INFO", fmt, extra_secrets=[WEBHOOK])
    log = logging.getLogger("callwatch.test")
    log.info("POST https://api.telegram.org/bot%s/sendMessage signed with %s", TOKEN, WEBHOOK)
    try:
        raise RuntimeError(f"Client error for url 'https://api.telegram.org/bot{TOKEN}/getMe'")
    except RuntimeError:
        log.exception("sending failed")
    err = capsys.readouterr().err
    assert TOKEN not in err and WEBHOOK not in err
    assert err.count("***") >= 3
    assert "RuntimeError: Client error for url 'https://api.telegram.org/bot***/getMe'" in err
    if fmt == "json":
        lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
        assert "Traceback" in lines[1]["exception"]


def test_short_values_are_not_treated_as_secrets(
    capsys: pytest.CaptureFixture[str], restore_root_logger: None,
) -> None:
    logs.configure("INFO", "plain", extra_secrets=["", "abc"])  # unset, or too short to redact
    logging.getLogger("callwatch.test").info("abc stays")
    assert "abc stays" in capsys.readouterr().err


def test_the_cli_redacts_the_webhook_secret_its_config_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    restore_root_logger: None,
) -> None:
    config = tmp_path / "callwatch.toml"
    config.write_text('[notifiers.webhook]\nsecret_env = "MY_HOOK_SECRET"\n')
    monkeypatch.setenv("MY_HOOK_SECRET", WEBHOOK)
    App(str(config), None, verbose=False).settings  # noqa: B018 - configures logging
    logging.getLogger("callwatch.test").warning("signing with %s", WEBHOOK)
    err = capsys.readouterr().err
    assert WEBHOOK not in err and "signing with ***" in err
