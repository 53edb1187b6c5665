"""One error hierarchy for callwatch, split by what the caller should do next.

    CallwatchError
    ├── ConfigError            bad configuration: report with file and key, exit 2, start nothing
    ├── SchemaError            the database schema is behind: run `callwatch db upgrade`
    ├── DatabaseUnavailable    the database cannot be opened or written: exit 3, start nothing
    ├── NotFoundError          an id or name the user gave does not exist
    ├── TransientError         worth retrying later with backoff (timeouts, 5xx, 429)
    │   ├── SourceUnavailable  a source could not be reached right now
    │   └── ChannelUnavailable a channel could not take a message right now
    └── PermanentError         retrying will not help; report it and go on with the rest
        ├── SourceRejected     the source refused us (rejected key, bot challenge, 4xx)
        ├── ResponseTooLarge   a response went over http.max_response_bytes
        ├── LayoutChanged      the source answered but no longer looks as expected
        ├── InvalidRecord      one scraped record could not be parsed (counted, skipped)
        └── ChannelRejected    a channel refused a message or address (dead-letter it)
            ├── ChannelGone    the recipient is gone: deactivate that channel
            └── ChatMigrated   a Telegram group moved: store the new chat id, re-send

Library exceptions (httpx, SQLAlchemy, tomllib, pydantic) are converted at the boundary
with ``raise ... from exc`` so the scheduler only needs to know these classes.
"""

from __future__ import annotations


class CallwatchError(Exception):
    """Base class of every error callwatch raises on purpose.

    What the other side answered, when it matters to the caller, travels with the error:
    ``status``, the answer's code (an HTTP status, an SMTP reply code); ``retry_after``, the
    seconds it asked us to wait (HTTP 429, Telegram's RetryAfter); ``sent_parts``, for a
    message sent in several parts (a long Telegram digest), how many leading parts went
    out before the failure, so a retry sends only the rest. One constructor takes them
    for every class, rather than one per class that carries one of them.
    """

    def __init__(self, message: str, *, status: int | None = None,
                 retry_after: float | None = None, sent_parts: int = 0) -> None:
        self.status = status
        self.retry_after = retry_after
        self.sent_parts = sent_parts
        super().__init__(message)


class ConfigError(CallwatchError):
    """The configuration (file, environment or a profile) is invalid.

    The message names the file, the key and what was expected; the CLI exits with 2.
    """

    def __init__(self, message: str, *, path: str | None = None, key: str | None = None) -> None:
        self.path = path
        self.key = key
        where = ": ".join(part for part in (path, key) if part)
        super().__init__(f"{where}: {message}" if where else message)


class SchemaError(CallwatchError):
    """The database schema is missing or older than this version of callwatch."""


class DatabaseUnavailable(CallwatchError):
    """The database cannot be used: unreachable, locked, read-only, or not a database.

    Raised when a command opens the database (``tracker.store.db``), before it fetches or sends
    anything; the message names the database URL (password masked) and what to do. The
    CLI exits with 3: unlike a configuration error (2), a restart may succeed once the
    server is up or the other process is done.
    """


class NotFoundError(CallwatchError):
    """Something the user named (a call id, a source, a profile) does not exist."""


class TransientError(CallwatchError):
    """A failure that may go away on its own: retry with backoff and jitter (honouring
    ``retry_after`` when the other side set it)."""


class SourceUnavailable(TransientError):
    """A source did not answer usefully (timeout, connection error, 5xx, 429)."""


class PermanentError(CallwatchError):
    """A failure that retrying will not fix: report it and carry on with the others."""


class SourceRejected(PermanentError):
    """The source refused the request (a rejected key, a bot challenge, a 4xx answer:
    ``status``)."""


class ResponseTooLarge(PermanentError):
    """A response was larger than ``http.max_response_bytes``."""


class LayoutChanged(PermanentError):
    """The source answered, but its response no longer has the expected shape."""


class InvalidRecord(PermanentError):
    """One scraped record could not be turned into a call; it is skipped and counted."""

    def __init__(self, message: str, *, native_id: str | None = None) -> None:
        self.native_id = native_id
        self.reason = message
        super().__init__(f"{native_id}: {message}" if native_id else message)


# Delivery channels (notifiers/). Each tells the dispatcher what to do with the outbox row:
#
#     TransientError
#     └── ChannelUnavailable   retry later (network, 5xx, 429 / RetryAfter: honour retry_after)
#     PermanentError
#     └── ChannelRejected      this message will never go through as it is: dead-letter it
#         ├── ChannelGone      the recipient blocked us or no longer exists: deactivate the channel
#         └── ChatMigrated     the Telegram group became a supergroup: store new_address, re-send


class ChannelUnavailable(TransientError):
    """A channel could not take the message right now; retry with backoff (the parts of a
    long message already sent, ``sent_parts``, are not sent again)."""


class ChannelRejected(PermanentError):
    """The channel refused this message or address (a 4xx or 5xx answer, a rejected
    recipient)."""


class ChannelGone(ChannelRejected):
    """The recipient is gone for good (bot blocked, chat deleted): deactivate this channel."""


class ChatMigrated(ChannelRejected):
    """A Telegram group was upgraded to a supergroup with a new chat id.

    The caller stores ``new_address`` as the subscriber's chat id and sends again there.
    """

    def __init__(self, message: str, *, new_address: str, sent_parts: int = 0) -> None:
        self.new_address = new_address
        super().__init__(message, status=400, sent_parts=sent_parts)
