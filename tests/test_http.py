"""The shared polite client: retries, Retry-After, per-host pacing, size cap, error mapping."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import httpx
import pytest

from scrapers._http import PoliteClient, retry_after_seconds
from tracker.config import HttpSettings
from tracker.errors import ResponseTooLarge, SourceRejected, SourceUnavailable


class Script:
    """A MockTransport handler answering from a list of (status, headers, body)."""

    def __init__(self, *answers: tuple[int, dict[str, str], bytes]) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        status, headers, body = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        return httpx.Response(status, headers=headers, content=body)


def client(handler: Script, sleeps: list[float], **settings: float) -> PoliteClient:
    async def fake_sleep(seconds: float) -> None:
        sleeps.append(seconds)

    values = {"delay": 0.0, "backoff": 1.0, "retries": 3, "max_backoff": 60.0, **settings}
    return PoliteClient(HttpSettings(**values), transport=httpx.MockTransport(handler),  # type: ignore[arg-type]
                        sleep=fake_sleep)


def run(coroutine):  # type: ignore[no-untyped-def]
    return asyncio.run(coroutine)


def test_retries_5xx_with_growing_backoff_then_succeeds() -> None:
    handler = Script((500, {}, b""), (502, {}, b""), (200, {}, b"ok"))
    sleeps: list[float] = []

    async def go() -> httpx.Response:
        async with client(handler, sleeps) as http:
            return await http.request("GET", "https://a.example/x")

    response = run(go())
    assert response.text == "ok" and len(handler.requests) == 3
    assert 1.0 <= sleeps[0] <= 2.0 and 2.0 <= sleeps[1] <= 3.0  # exponential plus jitter


def test_retry_after_is_honoured() -> None:
    handler = Script((429, {"Retry-After": "7"}, b""), (200, {}, b"ok"))
    sleeps: list[float] = []

    async def go() -> httpx.Response:
        async with client(handler, sleeps) as http:
            return await http.request("GET", "https://a.example/x")

    assert run(go()).text == "ok"
    assert sleeps == [pytest.approx(7.0, abs=1.0)] and sleeps[0] >= 7.0


def test_persistent_failure_becomes_source_unavailable() -> None:
    handler = Script((503, {}, b""))
    sleeps: list[float] = []

    async def go() -> None:
        async with client(handler, sleeps, retries=2) as http:
            await http.request("GET", "https://a.example/x")

    with pytest.raises(SourceUnavailable, match="HTTP 503"):
        run(go())
    assert len(handler.requests) == 3


def test_4xx_is_permanent_and_not_retried() -> None:
    handler = Script((403, {}, b"forbidden"))
    sleeps: list[float] = []

    async def go() -> None:
        async with client(handler, sleeps) as http:
            await http.request("GET", "https://a.example/x")

    with pytest.raises(SourceRejected) as caught:
        run(go())
    assert caught.value.status == 403 and len(handler.requests) == 1


def test_size_cap() -> None:
    handler = Script((200, {}, b"x" * 5000))
    sleeps: list[float] = []

    async def go() -> None:
        async with client(handler, sleeps, max_response_bytes=1000) as http:
            await http.request("GET", "https://a.example/x")

    with pytest.raises(ResponseTooLarge, match="max_response_bytes"):
        run(go())


def test_one_request_at_a_time_per_host_with_a_delay() -> None:
    handler = Script((200, {}, b"ok"))
    sleeps: list[float] = []

    async def go() -> None:
        async with client(handler, sleeps, delay=5.0) as http:
            await asyncio.gather(*(http.request("GET", f"https://a.example/{i}") for i in range(3)))
            await http.request("GET", "https://b.example/")

    run(go())
    # the second and third request to a.example waited; b.example did not
    assert len([s for s in sleeps if s > 4.0]) == 2


def test_identifying_user_agent() -> None:
    handler = Script((200, {}, b"ok"))

    async def go() -> None:
        async with client(handler, [], ) as http:
            await http.request("GET", "https://a.example/")

    run(go())
    assert handler.requests[0].headers["User-Agent"].startswith("callwatch/")


def test_retry_after_date_form() -> None:
    now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    assert retry_after_seconds("Wed, 25 Nov 2026 12:00:30 GMT", now) == 30.0
    assert retry_after_seconds("120") == 120.0
    assert retry_after_seconds("soon") is None
