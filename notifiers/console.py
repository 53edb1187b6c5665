"""The console channel: prints each message's plain text, so a first run shows something.

It is the default when a subscriber has no other channel (``notifiers.console.enabled``).
It never fails on its own; a closed stream is reported as a transient error.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import TextIO

from pydantic import Field

from tracker.errors import ChannelUnavailable
from tracker.ports import ChannelPlugin, ChannelSettings, Message, Notifier, Recipient, SendResult

SEPARATOR = "-" * 72


class ConsoleNotifier:
    """Writes messages to a text stream (standard output unless told otherwise)."""

    channel = "console"

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream

    async def send(self, recipient: Recipient, message: Message) -> SendResult:
        stream = self._stream or sys.stdout
        who = f"To {recipient.subscriber or recipient.address or 'console'}: "
        try:
            stream.write(f"{who}{message.subject}\n{message.text.rstrip()}\n{SEPARATOR}\n")
            stream.flush()
        except (OSError, ValueError) as exc:  # ValueError: I/O operation on closed file
            raise ChannelUnavailable(f"console: cannot write: {exc}") from exc
        return SendResult(channel=self.channel, address=recipient.address)

    async def check(self) -> None:
        """Standard output is always there."""
        return None

    async def aclose(self) -> None:
        return None


class ConsoleSettings(ChannelSettings):
    enabled: bool = Field(True, description="print alerts when no other channel is set")


def create(settings: ConsoleSettings, environ: Mapping[str, str]) -> Notifier | None:
    return ConsoleNotifier() if settings.enabled else None


PLUGIN = ChannelPlugin(
    name="console", description="standard output", settings=ConsoleSettings, create=create,
    address=bool, address_help="print to standard output (tests, demos)",
    reads=frozenset({"subject", "text"}),
)
