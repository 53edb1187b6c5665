"""The normalized call record: the contract between every scraper and the core.

Scrapers take loose raw data and return strict ``CallRecord`` values; the store, the
matcher and the notifiers only ever see these. Validation here is the last line of
defence: datetimes must be timezone-aware (they are converted to UTC), text is stripped,
lists are deduplicated and sorted where order carries no meaning, so that two scrapes of
an unchanged call produce equal records and therefore no change events.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tracker.dates import isoformat_utc, to_utc


class CallStatus(StrEnum):
    """Where a call stands in its life: announced, accepting proposals, or past."""

    FORTHCOMING = "forthcoming"
    OPEN = "open"
    CLOSED = "closed"


class ChangeKind(StrEnum):
    """Typed change events recorded in a call's history."""

    NEW = "new"
    OPENED = "opened"
    CLOSED = "closed"
    REOPENED = "reopened"
    DEADLINE_CHANGED = "deadline_changed"
    BUDGET_CHANGED = "budget_changed"
    STATUS_CHANGED = "status_changed"
    TITLE_CHANGED = "title_changed"
    DOCUMENTS_CHANGED = "documents_changed"
    REMOVED_FROM_SOURCE = "removed_from_source"
    #: opening date, deadline model, identifiers, url or type of action changed
    DETAILS_CHANGED = "details_changed"


class RunOutcome(StrEnum):
    """How one scrape of one source ended."""

    OK = "ok"  # every page walked
    PARTIAL = "partial"  # some pages or items missing: never marks calls removed
    FAILED = "failed"  # nothing usable
    SUSPICIOUS = "suspicious"  # ran, but drift detection (tracker/store/drift.py) says it looks wrong


def _strings(values: Iterable[Any]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for value in values:
        text = " ".join(str(value).split())
        if text and text.casefold() not in {s.casefold() for s in seen}:
            seen[text] = None
    return tuple(seen)


#: a url a subscriber can open: http(s), no spaces (``javascript:`` and the like are dropped)
HTTP_URL = r"^https?://\S+$"


class CallDocument(BaseModel):
    """A document or link a source attaches to a call: a call document, a submission link."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    title: str = Field(min_length=1)
    url: str = Field(pattern=HTTP_URL, description="http(s) only")

    def describe(self) -> str:
        """One line for a change event: 'Guidelines: https://…'."""
        return f"{self.title}: {self.url}"


class CallRecord(BaseModel):
    """One fundable call or topic at one source, as normalized by its scraper."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    source: str = Field(min_length=1, description="configured source name, e.g. ft_portal")
    native_id: str = Field(min_length=1, description="the source's own id for this call")
    title: str = Field(min_length=1)
    status: CallStatus
    programme: str | None = Field(None, description="canonical programme name")
    sub_programme: str | None = Field(None, description="e.g. SMP-COSME, EIC, Interreg SUDOE")
    call_identifier: str | None = None
    topic_identifier: str | None = None
    summary: str = ""
    url: str | None = None
    opening_date: datetime | None = None
    deadlines: tuple[datetime, ...] = Field((), description="every cut-off, UTC, ascending")
    deadline_model: str | None = Field(None, description="single-stage, two-stage, multiple cut-off")
    budget_eur: int | None = Field(None, ge=0, description="the topic's total budget")
    budget_min_eur: int | None = Field(None, ge=0, description="minimum EU contribution per grant")
    budget_max_eur: int | None = Field(None, ge=0, description="maximum EU contribution per grant")
    expected_grants: int | None = Field(None, ge=0)
    #: A budget the source gives only for several topics together: one line of the call's
    #: budget table shared by them (for a Joint Undertaking, every topic carries the whole
    #: call's total). Kept apart so that it is shown as the call total and is never taken
    #: for the topic's own budget (``budget_eur``), which budget filters read.
    call_budget_eur: int | None = Field(
        None, ge=0, description="call total shared by several topics, not this topic's budget")
    call_budget_topics: int | None = Field(
        None, ge=1, description="how many topics share call_budget_eur")
    action_type: str | None = Field(None, description="type of action, e.g. RIA, IA, CSA")
    keywords: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    countries: tuple[str, ...] = Field((), description="eligible countries, ISO 3166 alpha-2")
    regions: tuple[str, ...] = Field((), description="eligible regions, NUTS codes")
    audience: tuple[str, ...] = Field((), description="target audience where the source says")
    language: str | None = None
    updates: tuple[str, ...] = Field((), description="news items and document notices, as text")
    documents: tuple[CallDocument, ...] | None = Field(
        None, description="documents and links the source attaches, one per url, in the "
        "source's order; None when the source does not say (not the same as none)")

    @property
    def id(self) -> str:
        """The stable id ``<source>:<native id>``."""
        return f"{self.source}:{self.native_id}"

    @field_validator("opening_date")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return None if value is None else to_utc(value)

    @field_validator("deadlines")
    @classmethod
    def _sorted_utc(cls, value: tuple[datetime, ...]) -> tuple[datetime, ...]:
        return tuple(sorted({to_utc(v) for v in value}))

    @field_validator("keywords", "tags", "audience", "updates")
    @classmethod
    def _unique_strings(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _strings(value)

    @field_validator("documents")
    @classmethod
    def _one_per_url(
        cls, value: tuple[CallDocument, ...] | None
    ) -> tuple[CallDocument, ...] | None:
        if value is None:
            return None
        first: dict[str, CallDocument] = {}
        for document in value:
            first.setdefault(document.url, document)
        return tuple(first.values())

    @field_validator("countries", "regions")
    @classmethod
    def _codes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(sorted({v.strip().upper() for v in value if v.strip()}))

    @field_validator(
        "programme", "sub_programme", "call_identifier", "topic_identifier", "url",
        "deadline_model", "action_type", "language",
    )
    @classmethod
    def _empty_is_none(cls, value: str | None) -> str | None:
        return value or None

    @model_validator(mode="after")
    def _budget_range(self) -> CallRecord:
        low, high = self.budget_min_eur, self.budget_max_eur
        if low is not None and high is not None and low > high:
            raise ValueError(f"budget_min_eur {low} is above budget_max_eur {high}")
        return self

    def next_deadline(self, now: datetime) -> datetime | None:
        """The first cut-off at or after ``now``, else the last one (None if there is none)."""
        for deadline in self.deadlines:
            if deadline >= now:
                return deadline
        return self.deadlines[-1] if self.deadlines else None

    def fingerprint(self) -> str:
        """A hash of the whole record: equal fingerprints mean nothing to compare."""
        return fingerprint_of(self.model_dump(mode="json"))

    def budget(self) -> dict[str, int | None]:
        """The budget figures as one value, for diffing and display: the topic's own
        (``total``, per grant, grants expected) and the call total it shares."""
        return {
            "total": self.budget_eur,
            "min_grant": self.budget_min_eur,
            "max_grant": self.budget_max_eur,
            "expected_grants": self.expected_grants,
            "call_total": self.call_budget_eur,
        }


def fingerprint_of(dumped: dict[str, Any]) -> str:
    """The fingerprint of a record from its ``model_dump(mode="json")``: the store has that
    dump at hand (it is the stored JSON), so the record is serialized once.

    Written by ``json.dumps``, not by pydantic's ``model_dump_json``: writing a str through
    the C API leaves a UTF-8 copy of it cached on the string for its life (CPython's
    ``PyUnicode_AsUTF8``), so a first scrape of the portal held 4 KB more per summary, 40 MB
    for 10,000 calls (issue 15). A fingerprint stored before differs: the call is diffed
    once (nothing has changed) and stored with its new fingerprint.
    """
    return fingerprint_of_text(json.dumps(dumped))


def fingerprint_of_text(text: str) -> str:
    """The fingerprint of a record from ``json.dumps`` of its dump (``fingerprint_of``):
    for the store, which writes that very text to the ``record`` column, so each record is
    serialized once (``tracker.store.db.JSONText``)."""
    return hashlib.sha256(text.encode()).hexdigest()


class Change(BaseModel):
    """One typed, material difference between two scrapes of the same call."""

    model_config = ConfigDict(frozen=True)

    call_id: str
    kind: ChangeKind
    field: str | None = None
    old: Any = None
    new: Any = None
    at: datetime

    @field_validator("at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return to_utc(value)

    def as_json(self) -> dict[str, Any]:
        """The shape `callwatch calls history --format json` prints."""
        return {
            "at": isoformat_utc(self.at),
            "kind": self.kind.value,
            "field": self.field,
            "old": self.old,
            "new": self.new,
        }


class ScrapeResult(BaseModel):
    """What one run of one source produced, before it is stored."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    records: list[CallRecord] = Field(default_factory=list)
    invalid: int = 0
    complete: bool = True
    error: str | None = None
    notes: list[str] = Field(default_factory=list)
    #: the records came from a poorer fallback (e.g. a bulk file without budgets): fields
    #: they leave empty keep their stored values instead of being recorded as changes
    degraded: bool = False
    #: the digest of the source row each record was read from (native id → hex digest),
    #: stored with the call so that the next run can tell the row unchanged (issue 15)
    digests: dict[str, str] = Field(default_factory=dict)
    #: calls the source listed with the very row stored (the same digest), so not read
    #: again: native id → (that digest, the call's status at this run, which time alone
    #: may have moved). The store keeps their records and counts them as seen.
    unchanged: dict[str, tuple[str, CallStatus]] = Field(default_factory=dict)

    @property
    def outcome(self) -> RunOutcome:
        """ok when complete; partial when something was missed; failed when nothing came."""
        if self.complete and self.error is None:
            return RunOutcome.OK
        if self.records or self.unchanged:
            return RunOutcome.PARTIAL
        return RunOutcome.FAILED
