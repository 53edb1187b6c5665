"""One error hierarchy for callwatch, split by what the caller should do next.

    CallwatchError
    ├── ConfigError            bad configuration: report with file and key, exit 2, start nothing
    ├── SchemaError            the database schema is behind: run `callwatch db upgrade`
    ├── NotFoundError          an id or name the user gave does not exist
    ├── TransientError         worth retrying later with backoff (timeouts, 5xx, 429)
    │   └── SourceUnavailable  a source could not be reached right now
    └── PermanentError         retrying will not help; report it and go on with the rest
        ├── SourceRejected     the source refused us (rejected key, bot challenge, 4xx)
        ├── ResponseTooLarge   a response went over http.max_response_bytes
        ├── LayoutChanged      the source answered but no longer looks as expected
        └── InvalidRecord      one scraped record could not be parsed (counted, skipped)

Library exceptions (httpx, SQLAlchemy, tomllib, pydantic) are converted at the boundary
with ``raise ... from exc`` so the scheduler only needs to know these classes.
"""

from __future__ import annotations


class CallwatchError(Exception):
    """Base class of every error callwatch raises on purpose."""


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


class NotFoundError(CallwatchError):
    """Something the user named (a call id, a source, a profile) does not exist."""


class TransientError(CallwatchError):
    """A failure that may go away on its own: retry with backoff and jitter."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(message)


class SourceUnavailable(TransientError):
    """A source did not answer usefully (timeout, connection error, 5xx, 429)."""


class PermanentError(CallwatchError):
    """A failure that retrying will not fix: report it and carry on with the others."""


class SourceRejected(PermanentError):
    """The source refused the request (a rejected key, a bot challenge, a 4xx answer)."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        self.status = status
        super().__init__(message)


class ResponseTooLarge(PermanentError):
    """A response was larger than ``http.max_response_bytes``."""


class LayoutChanged(PermanentError):
    """The source answered, but its response no longer has the expected shape."""


class InvalidRecord(PermanentError):
    """One scraped record could not be turned into a call; it is skipped and counted."""

    def __init__(self, message: str, *, native_id: str | None = None) -> None:
        self.native_id = native_id
        super().__init__(f"{native_id}: {message}" if native_id else message)
