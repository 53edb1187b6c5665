"""The one polite HTTP client every source shares.

Politeness and fault tolerance live here so no scraper re-implements them: an identifying
User-Agent, timeouts, one request at a time per host with ``http.delay`` seconds between
two requests to the same host, retries with exponential backoff and jitter on timeouts,
connection errors, 5xx and 429 (honouring Retry-After), and a cap on response size.

Errors come out as callwatch's own classes: ``SourceUnavailable`` (transient, retries
exhausted), ``SourceRejected`` (4xx other than 429, with ``status``), ``ResponseTooLarge``.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import httpx
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt

from tracker.config import HttpSettings
from tracker.errors import ResponseTooLarge, SourceRejected, SourceUnavailable
from tracker.retry_after import retry_after_seconds  # one parser for sources and channels

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class PoliteClient:
    """An ``httpx.AsyncClient`` with per-host pacing, retries and a size cap."""

    def __init__(
        self,
        settings: HttpSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.settings = settings
        self._sleep = sleep
        self._client = httpx.AsyncClient(
            headers={"User-Agent": settings.user_agent, "Accept-Encoding": "gzip, deflate"},
            timeout=httpx.Timeout(settings.timeout),
            follow_redirects=True,
            transport=transport,
        )
        self._host_locks: dict[str, asyncio.Lock] = {}
        self._last_request: dict[str, float] = {}

    async def __aenter__(self) -> PoliteClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    def _wait(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        retry_after: float | None = getattr(error, "retry_after", None)
        exponential = self.settings.backoff * (2.0 ** (state.attempt_number - 1))
        wait = exponential + random.uniform(0, self.settings.backoff)  # noqa: S311 - jitter
        if retry_after is not None:
            wait = max(wait, retry_after)
        return min(wait, self.settings.max_backoff)

    def _retrying(self) -> AsyncRetrying:
        return AsyncRetrying(
            stop=stop_after_attempt(self.settings.retries + 1),
            wait=self._wait,
            retry=retry_if_exception_type(SourceUnavailable),
            sleep=self._sleep,
            reraise=True,
            before_sleep=lambda s: log.warning(
                "retrying attempt=%d error=%s", s.attempt_number,
                s.outcome.exception() if s.outcome else None),
        )

    @asynccontextmanager
    async def _paced(self, url: str) -> AsyncIterator[None]:
        """Hold the host's lock for the request and keep ``delay`` seconds between requests."""
        host = urlsplit(url).netloc
        lock = self._host_locks.setdefault(host, asyncio.Lock())
        async with lock:
            last = self._last_request.get(host)
            if last is not None:
                remaining = self.settings.delay - (time.monotonic() - last)
                if remaining > 0:
                    await self._sleep(remaining)
            try:
                yield
            finally:
                self._last_request[host] = time.monotonic()

    def _check_status(self, response: httpx.Response, url: str) -> None:
        status = response.status_code
        if status in RETRY_STATUSES:
            raise SourceUnavailable(
                f"HTTP {status} from {url}",
                retry_after=retry_after_seconds(response.headers.get("Retry-After")),
            )
        if status >= 400:
            raise SourceRejected(f"HTTP {status} from {url}", status=status)

    async def _once(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        async with self._paced(url):
            try:
                async with self._client.stream(method, url, **kwargs) as response:
                    self._check_status(response, url)
                    body = bytearray()
                    async for chunk in response.aiter_bytes():
                        body.extend(chunk)
                        if len(body) > self.settings.max_response_bytes:
                            raise ResponseTooLarge(
                                f"response from {url} is larger than "
                                f"{self.settings.max_response_bytes} bytes (http.max_response_bytes)"
                            )
            except httpx.TimeoutException as exc:
                raise SourceUnavailable(f"timeout after {self.settings.timeout}s from {url}") from exc
            except (httpx.TransportError, httpx.DecodingError) as exc:
                raise SourceUnavailable(f"{type(exc).__name__} from {url}: {exc}") from exc
        return httpx.Response(
            status_code=response.status_code, headers=response.headers, content=bytes(body),
            request=response.request,
        )

    async def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """Send one request with pacing and retries; return the fully read response."""
        async for attempt in self._retrying():
            with attempt:
                return await self._once(method, url, **kwargs)
        raise AssertionError("unreachable")  # pragma: no cover

    @asynccontextmanager
    async def stream(self, method: str, url: str, **kwargs: Any) -> AsyncIterator[httpx.Response]:
        """An open streaming response (bulk files): paced and retried until headers arrive.

        The body is not size-capped: callers stream it to disk or parse it incrementally.
        """
        async for attempt in self._retrying():
            with attempt:
                async with self._paced(url):
                    request = self._client.build_request(method, url, **kwargs)
                    try:
                        response = await self._client.send(request, stream=True)
                    except httpx.TimeoutException as exc:
                        raise SourceUnavailable(f"timeout from {url}") from exc
                    except httpx.TransportError as exc:
                        raise SourceUnavailable(f"{type(exc).__name__} from {url}: {exc}") from exc
                    try:
                        self._check_status(response, url)
                    except BaseException:
                        await response.aclose()
                        raise
        try:
            yield response
        except httpx.TimeoutException as exc:
            raise SourceUnavailable(f"timeout while reading {url}") from exc
        except httpx.TransportError as exc:
            raise SourceUnavailable(f"{type(exc).__name__} while reading {url}: {exc}") from exc
        finally:
            await response.aclose()
