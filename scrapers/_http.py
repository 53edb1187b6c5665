"""The one polite HTTP client every source shares.

Politeness and fault tolerance live here so no scraper re-implements them: an identifying
User-Agent, one request at a time per host with ``http.delay`` seconds between two requests
to the same host, retries with exponential backoff and jitter on timeouts, connection
errors, 5xx and 429 (honouring Retry-After), and a cap on response size.

Pacing is a ``HostPacer`` of its own for a client alone (``run --once``, ``scrape``), and one
``HostPacer`` shared by every client of the process in the daemon, whose scrape jobs each
open their own client: two sources on one host are then paced together, not each on its own
(tracker/compose.py builds it once).

Each source run sees the client as a ``RunClient``: it notes the validators (``ETag``,
``Last-Modified``) of every GET the run makes, and asks a past run's pages again with
``If-None-Match`` / ``If-Modified-Since``. When that pays, and why a 304 on the first page
alone is not taken as "unchanged", is in tracker/conditional.py.

A timeout is a deadline. ``http.timeout`` bounds the whole of one attempt (connect,
redirects, headers and body), not each read: a server that trickles a byte a second cannot
hold a request longer than that, and a missed deadline is retried like any timeout. The
streaming form (``stream``, the portal's 130 MB bulk file) gets the deadline up to the
headers; its body is bounded by each read's timeout and by the source run's ceiling
(``http.source_timeout``, in tracker/pipeline.py).

Redirects are followed here, not by httpx, so that every hop is checked:

- only to http and https: a ``Location`` of ``file:``, ``gopher:`` or the like is refused;
- at most ``MAX_REDIRECTS`` hops (real sites need up to four: http to https, to ``www.``,
  to a language suffix); a longer chain is a loop or a login maze, reported, not retried;
- never from a public site to an internal address (loopback, private, link-local such as
  the cloud metadata address 169.254.169.254, ``localhost``, ``*.internal``). A site we
  scrape is someone else's server: if it is compromised, it must not be able to make
  callwatch read the operator's own network and put the answer into alerts. A source
  configured on an internal address (an intranet list) may redirect within it. Host names
  are judged as written, not resolved (resolving would race the connection), so this is a
  guard against the common form, not a firewall;
- to any other public host: sites move (agency pages go to commission.europa.eu, a list
  ends up behind EU Login), and refusing would silently fail a source that still works.
  Each move to another host is logged once per run, so an operator sees where a source
  went.

Errors come out as callwatch's own classes: ``SourceUnavailable`` (transient, retries
exhausted), ``SourceRejected`` (4xx other than 429, with ``status``; a refused redirect, a
redirect loop, a URL that is not http(s)), ``ResponseTooLarge``.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from typing import Any
from urllib.parse import urlsplit

import httpx
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt

from tracker.conditional import Validator, validator_of
from tracker.config import HttpSettings
from tracker.destinations import is_internal_host
from tracker.errors import CallwatchError, ResponseTooLarge, SourceRejected, SourceUnavailable
from tracker.retry_after import retry_after_seconds  # one parser for sources and channels

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
#: Redirects followed for one request at most (httpx and browsers allow 20; see the docstring).
MAX_REDIRECTS = 10
WEB_SCHEMES = frozenset({"http", "https"})


def redirect_refusal(start: httpx.URL, target: httpx.URL) -> str | None:
    """Why a request that began at ``start`` may not be redirected to ``target`` (None: it may)."""
    if target.scheme not in WEB_SCHEMES:
        return "not http or https"
    if is_internal_host(target.host) and not is_internal_host(start.host):
        return "a public site may not send callwatch to an internal address"
    return None


class HostPacer:
    """One request at a time per host, ``delay`` seconds from the end of one to the start of
    the next; shared by every client that is given it."""

    def __init__(self, delay: float,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.delay = delay
        self._sleep = sleep
        self._locks: dict[str, asyncio.Lock] = {}
        self._last_request: dict[str, float] = {}

    @asynccontextmanager
    async def slot(self, url: str) -> AsyncIterator[None]:
        """Hold the host's lock for one request, after waiting out the delay since the last."""
        host = urlsplit(url).netloc
        lock = self._locks.setdefault(host, asyncio.Lock())
        async with lock:
            last = self._last_request.get(host)
            if last is not None:
                remaining = self.delay - (time.monotonic() - last)
                if remaining > 0:
                    await self._sleep(remaining)
            try:
                yield
            finally:
                self._last_request[host] = time.monotonic()


class PoliteClient:
    """An ``httpx.AsyncClient`` with per-host pacing, deadlines, checked redirects, retries
    and a size cap.

    ``pacer``: the process's shared ``HostPacer`` (the daemon's); without it the client
    paces its own requests only.
    """

    def __init__(
        self,
        settings: HttpSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        pacer: HostPacer | None = None,
    ) -> None:
        self.settings = settings
        self._sleep = sleep
        self.pacer = pacer if pacer is not None else HostPacer(settings.delay, sleep)
        self._client = httpx.AsyncClient(
            headers={"User-Agent": settings.user_agent, "Accept-Encoding": "gzip, deflate"},
            timeout=httpx.Timeout(settings.timeout),
            follow_redirects=False,  # followed by _open, hop by hop, under the policy
            transport=transport,
        )
        self._moves_logged: set[tuple[str, str]] = set()

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

    @contextmanager
    def _converted(self, url: str, *, reading: bool = False) -> Iterator[None]:
        """httpx's exceptions and a missed deadline as callwatch's own, split by what to do next."""
        try:
            yield
        except (TimeoutError, httpx.TimeoutException) as exc:
            if reading:
                raise SourceUnavailable(f"timeout while reading {url}") from exc
            raise SourceUnavailable(f"no complete response from {url} within "
                                    f"{self.settings.timeout} s (http.timeout)") from exc
        except httpx.UnsupportedProtocol as exc:  # can never succeed: do not retry
            raise SourceRejected(f"cannot fetch {url}: only http and https URLs are supported"
                                 ) from exc
        except (httpx.TransportError, httpx.DecodingError) as exc:
            where = "while reading" if reading else "from"
            raise SourceUnavailable(f"{type(exc).__name__} {where} {url}: {exc}") from exc

    def _check_status(self, response: httpx.Response, url: str) -> None:
        status = response.status_code
        if status in RETRY_STATUSES:
            raise SourceUnavailable(
                f"HTTP {status} from {url}",
                retry_after=retry_after_seconds(response.headers.get("Retry-After")),
            )
        if status >= 400:
            raise SourceRejected(f"HTTP {status} from {url}", status=status)

    def _log_move(self, origin: httpx.URL, target: httpx.URL) -> None:
        """Log a redirect to another host, once per pair of hosts while this client lives
        (one ``run --once``, one daemon scrape job)."""
        pair = (origin.netloc.decode("ascii"), target.netloc.decode("ascii"))
        if pair[0] == pair[1] or pair in self._moves_logged:
            return
        self._moves_logged.add(pair)
        log.info("redirected to another host from=%s to=%s url=%s", *pair, target)

    async def _open(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """Send a request and follow its redirects under the policy (module docstring);
        return the final response with its body not yet read."""
        request = self._client.build_request(method, url, **kwargs)
        start = request.url
        for hop in range(MAX_REDIRECTS + 1):
            response = await self._client.send(request, stream=True)
            following = response.next_request
            if following is None:
                return response
            await response.aclose()
            if hop == MAX_REDIRECTS:
                break
            reason = redirect_refusal(start, following.url)
            if reason is not None:
                raise SourceRejected(f"redirect from {request.url} to "
                                     f"{response.headers.get('Location', '')} refused: {reason}")
            self._log_move(request.url, following.url)
            request = following
        raise SourceRejected(f"more than {MAX_REDIRECTS} redirects from {url} "
                             f"(last to {request.url})")

    async def _once(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        async with self.pacer.slot(url):
            with self._converted(url):
                async with asyncio.timeout(self.settings.timeout):  # the whole attempt
                    response = await self._open(method, url, **kwargs)
                    try:
                        self._check_status(response, url)
                        body = bytearray()
                        async for chunk in response.aiter_bytes():
                            body.extend(chunk)
                            if len(body) > self.settings.max_response_bytes:
                                raise ResponseTooLarge(
                                    f"response from {url} is larger than "
                                    f"{self.settings.max_response_bytes} bytes (http.max_response_bytes)"
                                )
                    finally:
                        await response.aclose()
        return httpx.Response(
            status_code=response.status_code, headers=response.headers, content=bytes(body),
            request=response.request,
        )

    async def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """Send one request with pacing, a deadline and retries; return the fully read response."""
        async for attempt in self._retrying():
            with attempt:
                return await self._once(method, url, **kwargs)
        raise AssertionError("unreachable")  # pragma: no cover

    async def request_once(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """``request`` without retries: for a question whose failure has a fallback (a
        conditional request: on any failure the run fetches in full, with retries)."""
        return await self._once(method, url, **kwargs)

    def for_run(self) -> RunClient:
        """This client as one source run uses it (noting what it fetches)."""
        return RunClient(self)

    @asynccontextmanager
    async def stream(self, method: str, url: str, **kwargs: Any) -> AsyncIterator[httpx.Response]:
        """An open streaming response (bulk files): paced and retried until headers arrive,
        which must come within ``http.timeout``.

        The body is not size-capped nor under that deadline: callers stream it to disk or
        parse it incrementally, within the source run's ceiling.
        """
        async for attempt in self._retrying():
            with attempt:
                async with self.pacer.slot(url):
                    with self._converted(url):
                        async with asyncio.timeout(self.settings.timeout):
                            response = await self._open(method, url, **kwargs)
                    try:
                        self._check_status(response, url)
                    except BaseException:
                        await response.aclose()
                        raise
        try:
            with self._converted(url, reading=True):
                yield response
        finally:
            await response.aclose()


class RunClient:
    """The shared client as one source run sees it: it passes every request on, notes the
    validators of each GET (in order, once per URL), and can ask a past run's pages again
    conditionally (the rule: tracker/conditional.py)."""

    def __init__(self, client: PoliteClient) -> None:
        self._client = client
        #: the validators of each URL's first GET, in the order the run made them
        self._fetched: dict[str, Validator] = {}
        #: every request so far a plain GET whose answer carried a validator
        self._replayable = True
        #: a full answer that ``unchanged`` got, for the source's first GET of that URL
        self._ready: dict[str, httpx.Response] = {}

    async def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        plain_get = method.upper() == "GET" and not kwargs
        ready = self._ready.pop(url, None) if plain_get else None
        response = ready if ready is not None else await self._client.request(method, url, **kwargs)
        if not plain_get:
            self._replayable = False  # a POST, or a GET with parameters of its own
        elif url not in self._fetched:
            validator = validator_of(url, response.headers)
            if validator is None:
                self._replayable = False
            else:
                self._fetched[url] = validator
        return response

    def stream(self, method: str, url: str, **kwargs: Any
               ) -> AbstractAsyncContextManager[httpx.Response]:
        self._replayable = False  # a bulk file is not asked for again conditionally
        return self._client.stream(method, url, **kwargs)

    def fetched(self) -> list[Validator] | None:
        """What this run fetched, to ask again next time; None when it cannot be asked
        (no GET, a request that was not a plain GET, an answer without a validator)."""
        return list(self._fetched.values()) if self._replayable and self._fetched else None

    async def unchanged(self, previous: Sequence[Validator]) -> bool:
        """Whether every page in ``previous`` answers 304 now: one conditional GET each, in
        order, without retries, stopping at the first other answer (a 200 is kept for the
        source's own request of that page). Nothing stored: never unchanged."""
        if not previous:
            return False
        for validator in previous:
            try:
                response = await self._client.request_once(
                    "GET", validator.url, headers=validator.headers())
            except CallwatchError as exc:
                log.info("conditional request failed, fetching in full url=%s error=%s",
                         validator.url, exc)
                return False
            if response.status_code != 304:
                if response.status_code == 200:
                    self._ready[validator.url] = response
                return False
        return True
