"""A replay server that behaves like the F&T Portal's Search API and serves its bulk file.

It answers the way shared/sources/ft_portal.md says the real API does, so the real scraper
code is tested against real rules: POST only (GET answers 405); each multipart part must be
``application/json`` (anything else answers 500 like the portal); a ``query`` in the URL is
ignored; ``pageSize`` is capped at 100; ``terms`` filters in the ``query`` part are applied
to the records' metadata; the ``sort`` part is honoured; ``totalResults`` and the echoed
``pageNumber`` are in every answer. Records come from recorded result files.

Faults for tests: ``fail_next(n, status)`` answers the next n searches with an error (a 429
carries ``Retry-After: <retry_after>``, "0" unless a test sets it),
``fail_pages`` answers chosen page numbers with 500, ``slow`` delays every search,
``truncate_pages`` cuts chosen pages' JSON in half, ``bulk_status`` breaks the bulk file.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Mapping
from email.parser import BytesParser
from email.policy import HTTP
from pathlib import Path
from typing import Any

from tracker.demo.fakes import RECORDINGS as _ALL_RECORDINGS
from tracker.demo.fakes._server import FakeServer, Reply, Request

RECORDINGS = _ALL_RECORDINGS / "ft_portal"
#: The results replayed by default, in this order: results written in the real shape, then
#: two real samples (the only copies; the parser tests read them here too).
RECORDED_SEARCHES = (
    RECORDINGS / "search_recorded_2026-11.json",
    RECORDINGS / "search_response_excerpt_2026__AarhusAI_portal_search_page.json",
    RECORDINGS / "sedia_search_type8_cascade_response.json",
)
SEARCH_PATH = "/search-api/prod/rest/search"
BULK_PATH = "/data/referenceData/grantsTenders.json"
MAX_PAGE_SIZE = 100


def load_results(paths: Iterable[Path]) -> list[dict[str, Any]]:
    """Every result in the given search-response files (or plain lists of results)."""
    results: list[dict[str, Any]] = []
    for path in paths:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        results.extend(data["results"] if isinstance(data, dict) else data)
    return results


def _fields(result: Mapping[str, Any]) -> Mapping[str, Any]:
    metadata = result.get("metadata")
    return metadata if isinstance(metadata, dict) and metadata else result


def _matches(result: Mapping[str, Any], clause: Any) -> bool:
    """Apply the subset of the portal's query grammar callwatch sends (bool/must/terms)."""
    if not isinstance(clause, dict):
        return True
    if "bool" in clause:
        block = clause["bool"]
        must = all(_matches(result, c) for c in block.get("must", []))
        must_not = any(_matches(result, c) for c in block.get("must_not", []))
        should = block.get("should")
        return must and not must_not and (not should or any(_matches(result, c) for c in should))
    if "terms" in clause:
        (field, wanted), = clause["terms"].items()
        value = _fields(result).get(field)
        values = value if isinstance(value, list) else [value]
        return any(str(v) in {str(w) for w in wanted} for v in values)
    return True


def _sort_key(field: str) -> Any:
    def key(result: Mapping[str, Any]) -> str:
        value = _fields(result).get(field)
        if isinstance(value, list):
            value = value[0] if value else ""
        return str(value or "")
    return key


class PortalReplayServer(FakeServer):
    """The Search API and the bulk file on 127.0.0.1, fed from recorded results."""

    def __init__(self, results: list[dict[str, Any]] | None = None,
                 bulk: bytes | None = None) -> None:
        super().__init__()
        if results is None:
            results = load_results(RECORDED_SEARCHES)
        if bulk is None and (RECORDINGS / "grantsTenders.json").is_file():
            bulk = (RECORDINGS / "grantsTenders.json").read_bytes()
        self.results = results
        self.bulk = bulk or b'{"fundingData":{"GrantTenderObj":[]}}'
        self.fault_lock = threading.Lock()
        self.failures_left = 0
        self.failure_status = 500
        self.retry_after = "0"  # the Retry-After header of a 429 from fail_next
        self.fail_pages: set[int] = set()
        self.truncate_pages: set[int] = set()
        self.slow = 0.0
        self.bulk_status = 200
        self.searches: list[dict[str, Any]] = []  # decoded requests, for assertions

    @property
    def search_url(self) -> str:
        return self.url + SEARCH_PATH

    @property
    def bulk_url(self) -> str:
        return self.url + BULK_PATH

    def fail_next(self, count: int, status: int = 500) -> None:
        with self.fault_lock:
            self.failures_left = count
            self.failure_status = status

    def handle(self, request: Request) -> Reply:
        if request.path == BULK_PATH:
            if request.method != "GET":
                return Reply.text("Method Not Allowed", 405)
            if self.bulk_status != 200:
                return Reply.text("bulk file unavailable", self.bulk_status)
            return Reply(200, self.bulk, {"Content-Type": "application/json"})
        if request.path != SEARCH_PATH:
            return Reply.text("Not Found", 404)
        if request.method != "POST":
            return Reply.json({"type": "throwable", "message": "Request method 'GET' not supported"},
                              405)
        with self.fault_lock:
            if self.failures_left > 0:
                self.failures_left -= 1
                return Reply.json({"type": "throwable"}, self.failure_status, **(
                    {"Retry-After": self.retry_after} if self.failure_status == 429 else {}))
        parts, error = self._parts(request)
        if error is not None:
            return error
        page = int(request.query.get("pageNumber", ["1"])[0])
        size = min(int(request.query.get("pageSize", ["50"])[0]), MAX_PAGE_SIZE)
        self.searches.append({"page": page, "size": size, "query_string": request.query, **parts})
        if page in self.fail_pages:
            return Reply.json({"type": "throwable"}, 500)
        selected = [r for r in self.results if _matches(r, parts.get("query", {}))]
        languages = parts.get("languages")
        if isinstance(languages, list) and languages:
            selected = [r for r in selected
                        if str(r.get("language") or _fields(r).get("language", ["en"])[0])
                        in languages]
        sort = parts.get("sort")
        for rule in reversed(sort if isinstance(sort, list) else [sort] if sort else []):
            selected.sort(key=_sort_key(rule.get("field", "")),
                          reverse=str(rule.get("order", "ASC")).upper() == "DESC")
        window = selected[(page - 1) * size: page * size]
        body = {
            "apiVersion": "2.151", "terms": request.query.get("text", ["***"])[0],
            "responseTime": 42, "totalResults": len(selected), "pageNumber": page,
            "pageSize": size, "sort": "relevance", "groupByField": "sortStatus",
            "queryLanguage": {"language": "en", "probability": 0.0}, "bestBets": [],
            "results": window, "warnings": [],
        }
        reply = Reply.json(body)
        reply.delay = self.slow
        if page in self.truncate_pages:
            reply.body = reply.body[: len(reply.body) // 2]
        return reply

    def _parts(self, request: Request) -> tuple[dict[str, Any], Reply | None]:
        """Decode the multipart body; a non-JSON part fails as the real API does."""
        content_type = request.headers.get("content-type", "")
        if not content_type.startswith("multipart/form-data"):
            # a JSON or urlencoded body is accepted but its filters are ignored
            return {}, None
        message = BytesParser(policy=HTTP).parsebytes(
            f"Content-Type: {content_type}\r\n\r\n".encode() + request.body)
        parts: dict[str, Any] = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            part_type = part.get_content_type()
            if part_type != "application/json":
                text = f"Content-Type '{part_type}' is not supported"
                return {}, Reply.json({"type": "throwable", "message": text}, 500)
            payload = part.get_payload(decode=True)
            try:
                parts[str(name)] = json.loads(payload if isinstance(payload, bytes) else b"")
            except ValueError:
                return {}, Reply.json({"type": "throwable", "message": "bad JSON part"}, 500)
        return parts, None
