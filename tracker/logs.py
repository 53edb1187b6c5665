"""Logging set-up: plain lines for people, JSON lines for log collectors; secrets redacted."""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime

from tracker.config import SECRET_ENV


class _RedactSecrets(logging.Filter):
    """Replace any secret value from the environment that slips into a log line."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if len(s) >= 6]

    def _redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            record.msg, record.args = self._redact(record.getMessage()), None
            # a traceback can carry a secret too (an httpx error names the Bot API URL,
            # token included): format it here, redacted, so every formatter prints that
            if record.exc_info and not record.exc_text:
                record.exc_text = logging.Formatter().formatException(record.exc_info)
            if record.exc_text:
                record.exc_text = self._redact(record.exc_text)
            if record.stack_info:
                record.stack_info = self._redact(record.stack_info)
        return True


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_text:  # set, and redacted, by _RedactSecrets
            entry["exception"] = record.exc_text
        elif record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure(level: str = "INFO", fmt: str = "plain", extra_secrets: list[str] | None = None) -> None:
    """Log to standard error at ``level`` in ``fmt`` (plain or json)."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    secrets = [os.environ.get(name, "") for name in SECRET_ENV] + (extra_secrets or [])
    handler.addFilter(_RedactSecrets(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("httpx", "httpcore", "alembic", "apscheduler", "telegram", "aiosmtpd"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
