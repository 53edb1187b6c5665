"""EU Funding & Tenders Portal (SEDIA search API): Horizon Europe, Digital Europe, SMP and more.

Manifest
- URL: ``POST https://api.tech.ec.europa.eu/search-api/prod/rest/search`` (``search_url``)
  with ``apiKey``, ``text``, ``pageSize`` and ``pageNumber`` as URL parameters and a
  multipart body whose parts ``query``, ``languages`` and ``sort`` are JSON documents sent
  with ``Content-Type: application/json`` (plain form fields give HTTP 500, a query in the
  URL is silently ignored). Fallback: ``GET .../referenceData/grantsTenders.json``
  (``bulk_url``, ~130 MB, stream-parsed with ijson), read into the search-result shape so
  that it gives the same record wherever it has the data (``bulk_to_result``).
- Returns: open (31094502) and forthcoming (31094501) grants of the configured programmes:
  type 1 call topics, type 8 cascade calls (FSTP, e.g. Euroclusters under SMP-COSME),
  type 2 external actions when ``types`` includes 2. Type-2 rows (calls for proposals
  published through PROSPECT) carry the EU external action codes (111111, 47376280,
  45876777 NDICI), not those of the configured programmes, so the type-2 part of the query
  also accepts every code of the EU External Action family (``tracker.programmes``); types
  1 and 8 stay limited to the configured programmes.
- Changes: continuously; the portal re-indexes daily. Default interval 6h.
- Fixtures: tracker/demo/fakes/recordings/ft_portal/ (the replay server's and the demo's results: two
  real samples and the authored quirk cases), tests/fixtures/ft_portal/ (more real samples:
  a Joint Undertaking row, a slice of a real bulk file; and type-2 rows, filled
  ``links``/``publicationDocuments`` and bulk/search counterparts written in the real shape).

Quirks handled here (evidence in shared/sources/ft_portal.md):
- every ``metadata`` value is a list; ``actions``, ``budgetOverview``, ``latestInfos``,
  ``callUpdates``, ``links`` and ``publicationDocuments`` hold JSON inside the string and
  are decoded twice;
- ``links`` is a list of ``{url, criterionDescription}`` (the bulk file has the same list;
  public code reads them as the submission-service links, one per type of action) and
  ``publicationDocuments`` a list of ``{docUrl, nameDoc, typeDoc, ...}`` (the call
  documents, e.g. the guidelines of an external-action call): both become the record's
  ``documents``, whose new urls are ``documents_changed`` events. A row with neither field
  (the real 2026 sample rows carry neither) says nothing: ``documents`` stays None, so a
  later row with them is a baseline, not a burst of events;
- ``keywords`` is either a plain list or one JSON-encoded list;
- ``deadlineDate`` holds every cut-off (two-stage, multiple cut-off);
- a deadline at midnight (UTC, Brussels or its own offset) or given as a bare date means
  17:00 Brussels time, the portal's published cut-off;
- legacy copies (``DATASOURCE`` = ``SEDIA_PRD_CENTRICITY``) and stub rows are dropped in
  favour of the richest current row of the same identifier;
- some type-8 rows have no ``metadata``: their fields sit at the top level;
- a type-8 row is keyed by its own cascade call id (``cascade-<n>``), a type-2 row by its
  PROSPECT call id, ``callIdentifier`` (``prospect-<n>``), as in the portal's page urls;
- the status flag lags: a topic flagged forthcoming whose opening date has passed is open,
  one flagged open or forthcoming whose last cut-off has passed is closed (the dates decide,
  ``tracker.status.status_for``);
- ``budgetOverview`` describes the whole call: the topic's own action is the entry whose
  ``action`` starts with "<identifier> "; amounts are strings (new shape) or numbers (old);
  a figure several topics share (one budget line for all of them; a Joint Undertaking puts
  the call total on every topic, 170,760,699 in HORIZON-JU-CBE-2026) is the call total
  (``call_budget_eur``), and the topic's own budget is then its largest grant × grants
  expected, or unknown (``topic_budget``);
- one result per language copy, most of them untranslated: the record's ``language`` is
  that of the text it keeps (``text_language``), not the copy's label;
- pages are walked with a deterministic sort (identifier ascending) until a short or
  empty page, and the echoed page number is checked.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import re
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, date, datetime, time
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import Any, NamedTuple

import ijson
import orjson
from pydantic import Field, ValidationError, field_validator

from scrapers._records import amount_eur, count_of, read_item
from scrapers._source import HttpSource
from tracker import __version__, programmes
from tracker.config import WebUrl
from tracker.dates import BRUSSELS, PORTAL_CUTOFF, local_to_utc
from tracker.errors import (
    InvalidRecord,
    LayoutChanged,
    PermanentError,
    SourceUnavailable,
    TransientError,
)
from tracker.models import HTTP_URL, CallDocument, CallRecord, CallStatus, ScrapeResult
from tracker.plaintext import html_to_summary, html_to_text, one_line
from tracker.ports import Progress, SourcePlugin, SourceSettings
from tracker.status import status_for

log = logging.getLogger(__name__)

STATUS_CODES = {
    "31094501": CallStatus.FORTHCOMING,
    "31094502": CallStatus.OPEN,
    "31094503": CallStatus.CLOSED,
}
STATUS_NAMES = {"forthcoming": CallStatus.FORTHCOMING, "open": CallStatus.OPEN,
                "closed": CallStatus.CLOSED}
WANTED_STATUS_CODES = ("31094501", "31094502")
LEGACY_DATASOURCE = "SEDIA_PRD_CENTRICITY"
#: the search API will not page past this many results
RESULT_WINDOW = 10_000
SUMMARY_LIMIT = 4000
UPDATE_LIMIT = 600

_ACTION_CODES = {
    "research and innovation actions": "RIA",
    "innovation actions": "IA",
    "coordination and support actions": "CSA",
    "programme cofund actions": "COFUND",
}


class FtPortalSettings(SourceSettings):
    """Settings of ``[sources.ft_portal]``."""

    search_url: WebUrl = Field(
        "https://api.tech.ec.europa.eu/search-api/prod/rest/search",
        description="POST endpoint of the portal's search API",
    )
    bulk_url: WebUrl = Field(
        "https://ec.europa.eu/info/funding-tenders/opportunities/data/referenceData/grantsTenders.json",
        description="the portal's bulk file, read when the search API fails",
    )
    portal_url: WebUrl = Field(
        "https://ec.europa.eu/info/funding-tenders/opportunities/portal/screen/opportunities",
        description="base of the public topic pages used as each call's url",
    )
    api_key: str = Field("SEDIA", description="the portal front end's public key, not a secret")
    programmes: tuple[str, ...] = Field((
        "Horizon Europe", "Digital Europe", "Single Market Programme", "EU4Health", "LIFE",
        "CEF", "Erasmus+", "Creative Europe", "Innovation Fund", "I3", "EMFAF",
    ), description="canonical names or aliases (`CEF`, `I3`); `EU External Action` and `NDICI` "
       "exist too")
    types: tuple[str, ...] = Field(("1", "8"), description=(
        "1 topics, 8 cascade calls, 2 EU external action calls (PROSPECT); numbers or strings, "
        "e.g. `[1, 2, 8]`. Type 2 comes with the codes of the EU External Action family (111111 "
        "Prospect, 47376280 eGrants, 45876777 NDICI - Global Europe) whatever `programmes` lists"))
    page_size: int = Field(100, ge=1, le=100, description="the API caps pages at 100")
    languages: tuple[str, ...] = Field(("en",), description="languages the search API is asked for")
    max_pages: int = Field(200, ge=1, description="safety stop for a runaway walk")

    @field_validator("programmes")
    @classmethod
    def _known_programmes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for name in value:
            programme = programmes.lookup(name)
            if programme is None:
                raise ValueError(programmes.unknown_programme_message(name))
            if not programme.portal_codes:
                raise ValueError(f"{programme.name} is not published on the portal")
        return value

    @field_validator("types", mode="before")
    @classmethod
    def _types_as_text(cls, value: Any) -> Any:
        """``types = [1, 2, 8]`` (TOML numbers) means the same as ``["1", "2", "8"]``."""
        if isinstance(value, int | str) and not isinstance(value, bool):
            value = [value]
        if isinstance(value, list | tuple):
            return tuple(str(v) if isinstance(v, int) and not isinstance(v, bool) else v
                         for v in value)
        return value

    @field_validator("types")
    @classmethod
    def _known_types(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = sorted(set(value) - {"1", "2", "8"})
        if unknown:
            raise ValueError(f"unknown portal types {unknown}; use 1 (topics), "
                             "2 (external actions), 8 (cascade)")
        return tuple(dict.fromkeys(value))

    def programme_codes(self, kind: str = "1") -> list[str]:
        """The frameworkProgramme codes asked for rows of type ``kind``: the configured
        programmes', and for type 2 also every EU external action code."""
        codes: list[str] = []
        for name in self.programmes:
            programme = programmes.lookup(name)
            assert programme is not None  # noqa: S101 - checked by the validator
            codes.extend(c for c in programme.portal_codes if c not in codes)
        if kind == "2":
            external = programmes.family_portal_codes(programmes.EXTERNAL_ACTION)
            codes.extend(c for c in external if c not in codes)
        return codes


# -- the request -------------------------------------------------------------------------

def build_query(settings: FtPortalSettings) -> dict[str, Any]:
    """The ``query`` part: wanted types, open or forthcoming, configured programmes.

    Type 2 (external actions) is asked for with its own programme codes: with types 1 or 8
    beside it, the query is a ``should`` of one ``bool``/``must`` per group, the nesting
    the portal's own front end sends (shared/samples/ft_portal/*cs-param.json).
    """
    status = {"terms": {"status": list(WANTED_STATUS_CODES)}}
    groups: list[tuple[list[str], list[str]]] = []
    topic_types = [t for t in settings.types if t != "2"]
    if topic_types:
        groups.append((topic_types, settings.programme_codes("1")))
    if "2" in settings.types:
        groups.append((["2"], settings.programme_codes("2")))
    if len(groups) == 1:
        (kinds, codes), = groups
        return {"bool": {"must": [
            {"terms": {"type": kinds}}, status, {"terms": {"frameworkProgramme": codes}},
        ]}}
    return {"bool": {"must": [status, {"bool": {"should": [
        {"bool": {"must": [{"terms": {"type": kinds}},
                           {"terms": {"frameworkProgramme": codes}}]}}
        for kinds, codes in groups
    ]}}]}}


def build_request(settings: FtPortalSettings, page: int) -> dict[str, Any]:
    """URL parameters and multipart parts for one page, as the portal's own front end sends."""

    def part(value: Any) -> tuple[str, bytes, str]:
        return ("blob", json.dumps(value).encode(), "application/json")

    return {
        "params": {"apiKey": settings.api_key, "text": "***", "pageSize": settings.page_size,
                   "pageNumber": page},
        "files": {
            "query": part(build_query(settings)),
            "languages": part(list(settings.languages)),
            "sort": part({"field": "identifier", "order": "ASC"}),
        },
    }


# -- decoding helpers --------------------------------------------------------------------

def _values(fields: Mapping[str, Any], key: str) -> list[Any]:
    """A metadata value as a list (the API wraps every value in one)."""
    value = fields.get(key)
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _first(fields: Mapping[str, Any], key: str) -> str | None:
    for value in _values(fields, key):
        if value is not None and str(value).strip():
            return str(value).strip()
    return None


def _json_field(fields: Mapping[str, Any], key: str) -> Any:
    """A field holding JSON inside its string, decoded a second time (None if unusable)."""
    raw = _first(fields, key)
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        log.debug("undecodable JSON in field %s", key)
        return None


def _json_entries(fields: Mapping[str, Any], key: str) -> list[dict[str, Any]] | None:
    """The objects of a list-valued field: JSON inside the string (search API) or already a
    list (bulk file); None when the row has no such field, [] when it is empty or unusable."""
    if key not in fields:
        return None
    values = _values(fields, key)
    if values and all(isinstance(v, dict) for v in values):
        return list(values)
    decoded = _json_field(fields, key)
    if isinstance(decoded, dict):
        decoded = [decoded]
    return [e for e in decoded if isinstance(e, dict)] if isinstance(decoded, list) else []


def _document(title: Any, url: Any) -> CallDocument | None:
    link = str(url or "").strip()
    if not re.match(HTTP_URL, link):
        return None
    return CallDocument(title=one_line(str(title or "")) or "Link", url=link)


def documents_of(fields: Mapping[str, Any]) -> tuple[CallDocument, ...] | None:
    """The call's documents (``publicationDocuments``) then its links (``links``), both JSON
    inside a string; None when the row carries neither field. Entries without an http(s)
    url are left out."""
    publications = _json_entries(fields, "publicationDocuments")
    links = _json_entries(fields, "links")
    if publications is None and links is None:
        return None
    found = [_document(e.get("nameDoc") or e.get("typeDoc") or "Document", e.get("docUrl"))
             for e in publications or ()]
    found += [_document(e.get("criterionDescription"), e.get("url")) for e in links or ()]
    return tuple(d for d in found if d is not None)


def keywords_of(fields: Mapping[str, Any]) -> list[str]:
    """Keywords in either shape: a plain list, or one JSON-encoded list inside the list."""
    words: list[str] = []
    for value in _values(fields, "keywords"):
        text = str(value).strip()
        if text.startswith("["):
            try:
                decoded = json.loads(text)
            except ValueError:
                decoded = None
            if isinstance(decoded, list):
                words.extend(str(w) for w in decoded)
                continue
        words.append(text)
    return [w.strip() for w in words if w and w.strip()]


_ISO = re.compile(r"^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)([+-]\d{2}:?\d{2}|Z)?$")
_DATE_ZONE = re.compile(r"^(\d{4}-\d{2}-\d{2})(?:[+-]\d{2}:\d{2})?(?:\s+[A-Za-z_/]+)?$")


def parse_portal_time(value: Any) -> datetime | date | None:
    """A portal date or datetime in any of its shapes; a bare ``date`` when no time is meant.

    Shapes: "2027-04-08T00:00:00.000+0000", "2023-05-11T02:00:00.000+0200",
    "2024-09-27+02:00 Europe/Brussels", "2026-11-26", "09 March 2023", epoch milliseconds.
    A value at midnight in UTC, in Brussels or in its own offset carries only a date.
    """
    if value is None or value == "":
        return None
    if isinstance(value, Decimal):  # the bulk file's numbers with a fraction or an exponent
        value = float(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:  # epoch ms; inf, nan and 1e400 (read as inf) are no time at all
            moment = datetime.fromtimestamp(value / 1000, UTC)
        except (OverflowError, OSError, ValueError) as exc:
            raise ValueError(f"unrecognised portal date {value!r}") from exc
        return _date_if_midnight(moment)
    text = str(value).strip()
    match = _ISO.match(text)
    if match:
        day, clock, offset = match.groups()
        offset = offset or "+0000"
        if offset == "Z":
            offset = "+0000"
        offset = offset.replace(":", "")
        clock = clock if clock.count(":") == 2 else clock + ":00"
        clock = clock.split(".")[0]
        moment = datetime.strptime(f"{day}T{clock}{offset}", "%Y-%m-%dT%H:%M:%S%z")
        if moment.time() == time(0, 0):
            return moment.date()
        return _date_if_midnight(moment)
    match = _DATE_ZONE.match(text)
    if match:
        return date.fromisoformat(match.group(1))
    for layout in ("%d %B %Y", "%d %b %Y", "%B %d, %Y"):
        try:
            return datetime.strptime(text, layout).date()  # noqa: DTZ007 - date only
        except ValueError:
            continue
    if text.isdigit():
        return parse_portal_time(int(text))
    raise ValueError(f"unrecognised portal date {text!r}")


def _date_if_midnight(moment: datetime) -> datetime | date:
    utc = moment.astimezone(UTC)
    if utc.time() == time(0, 0):
        return utc.date()
    local = moment.astimezone(BRUSSELS)
    if local.time() == time(0, 0):
        return local.date()
    return utc


def _portal_moment(value: Any, time_of_day: time) -> datetime | None:
    """A portal time in UTC; a date-only value means ``time_of_day`` in Brussels that day.

    A text (the search API's shape) is read once and kept (``_text_moment``): the
    topics of one call share their dates, so most of a run's dates were read a row before."""
    if type(value) is str:
        return _text_moment(value, time_of_day)
    return _read_moment(value, time_of_day)


def _read_moment(value: Any, time_of_day: time) -> datetime | None:
    parsed = parse_portal_time(value)
    if parsed is None or isinstance(parsed, datetime):
        return parsed
    return local_to_utc(parsed, time_of_day, BRUSSELS)


_text_moment = functools.lru_cache(maxsize=4096)(_read_moment)


def deadline_utc(value: Any) -> datetime | None:
    """A cut-off in UTC; a date-only value means 17:00 Brussels time on that day."""
    return _portal_moment(value, PORTAL_CUTOFF)


def opening_utc(value: Any) -> datetime | None:
    """An opening date in UTC; a date-only value means the start of that day in Brussels."""
    return _portal_moment(value, time(0, 0))


_NO_BUDGET: dict[str, int | None] = {
    "budget_eur": None, "budget_min_eur": None, "budget_max_eur": None, "expected_grants": None,
    "call_budget_eur": None, "call_budget_topics": None,
}


def _year_amounts(action: Mapping[str, Any]) -> dict[str, int] | None:
    """An action's ``budgetYearMap`` as euros per year; None when it gives no figure, or a
    year's figure is no usable amount (a partial sum would state a wrong total as known)."""
    years = action.get("budgetYearMap")
    given = {str(year): value for year, value in years.items() if value not in (None, "")} \
        if isinstance(years, dict) else {}
    amounts = {year: amount_eur(value) for year, value in given.items()}
    if not amounts or None in amounts.values():
        return None
    return {year: amount for year, amount in amounts.items() if amount is not None}


def _topic_of(action: Mapping[str, Any]) -> str:
    """The topic an action of the table belongs to: "HORIZON-X-01" of "HORIZON-X-01 - HORIZON-RIA …"."""
    return str(action.get("action", "")).split(" ", 1)[0]


def _sharing_topics(lines: list[list[dict[str, Any]]], own_line: list[dict[str, Any]],
                    figure: dict[str, int]) -> set[str]:
    """The topics that carry ``figure`` as one budget they share, or an empty set when the
    figure is the topic's own.

    A figure is shared when several topics of one budget line (one key of
    ``budgetTopicActionMap``) carry it: the portal lists topics that share a budget under
    one key (CEF-T-2022-CORECOEN: four topics, EUR 2 bn; the CBE JU 2026 call: every topic,
    its call total EUR 170,760,699). It is shared too when every action of the table
    carries it and it is more than their grants could take (largest grant × grants
    expected). Equal figures on separate lines are otherwise each topic's own
    (HORIZON-JU-SNS-2022 STREAM-B-01-03 and STREAM-C-01-01 both have EUR 25 M).
    """
    same_line = {_topic_of(a) for a in own_line if _year_amounts(a) == figure}
    if len(same_line) > 1:
        return same_line
    everyone = [action for line in lines for action in line]
    topics = {_topic_of(a) for a in everyone}
    if len(topics) < 2 or any(_year_amounts(a) != figure for a in everyone):
        return set()
    total = sum(figure.values())
    payable = [_largest_payout(a) for a in everyone]
    known = [p for p in payable if p is not None]
    return topics if known and all(total > p for p in known) else set()


def _largest_payout(action: Mapping[str, Any]) -> int | None:
    """The most an action's grants can take: its largest grant × the grants expected."""
    high = amount_eur(action.get("maxContribution"))
    grants = count_of(action.get("expectedGrants"))
    return high * grants if high and grants else None


def topic_budget(overview: Any, identifier: str) -> dict[str, int | None]:
    """The topic's own budget from budgetOverview (old and new shapes), never the call total.

    ``budgetOverview`` is the whole call's table: the topic's own action is the entry whose
    ``action`` starts with "<identifier> ". Its ``budgetYearMap`` (summed over the years) is
    the topic's budget unless several topics share that figure (``_sharing_topics``): then
    it is the budget of all of them together, for a Joint Undertaking the call's total
    (``call_budget_eur``, with ``call_budget_topics``), and the topic's own budget is its
    largest grant × the grants expected, or unknown when either is missing.

    A figure that is no usable amount (text, negative, ``1e400`` or ``Infinity``, which JSON
    reads as a float that is not finite) is unknown, and so is a total with such a year in
    it: the call is kept and still announced, only without that figure.
    """
    if not isinstance(overview, dict):
        return dict(_NO_BUDGET)
    action_map = overview.get("budgetTopicActionMap")
    if not isinstance(action_map, dict):
        return dict(_NO_BUDGET)
    lines = [[a for a in actions if isinstance(a, dict)] for actions in action_map.values()
             if isinstance(actions, list)]
    found = next(((line, action) for line in lines for action in line
                  if _topic_of(action) == identifier), None)
    if found is None:
        return dict(_NO_BUDGET)
    own_line, own = found
    figure = _year_amounts(own)
    per_grant = {"budget_min_eur": amount_eur(own.get("minContribution")),
                 "budget_max_eur": amount_eur(own.get("maxContribution")),
                 "expected_grants": count_of(own.get("expectedGrants"))}
    sharing = _sharing_topics(lines, own_line, figure) if figure else set()
    if figure is None or not sharing:
        return {**_NO_BUDGET, **per_grant,
                "budget_eur": sum(figure.values()) if figure else None}
    return {**per_grant, "budget_eur": _largest_payout(own),
            "call_budget_eur": sum(figure.values()), "call_budget_topics": len(sharing)}


def action_type_of(fields: Mapping[str, Any]) -> str | None:
    """A short type of action (RIA, IA, CSA, COFUND, PJG…) from ``actions`` or its label.

    ``actions`` is JSON inside a string in search results and a plain list in the bulk
    file: both give the same ``types[].typeOfAction`` ("HORIZON-RIA HORIZON Research and
    Innovation Actions"), so both paths give the same type of action.
    """
    for action in _json_entries(fields, "actions") or ():
        for kind in action.get("types") or []:
            label = str(kind.get("typeOfAction", "")) if isinstance(kind, dict) else ""
            code = label.split(" ", 1)[0]
            if "-" in code:
                return code.rsplit("-", 1)[1]
    text = _first(fields, "typesOfAction")
    if text:
        lowered = " ".join(text.lower().split())
        for words, code in _ACTION_CODES.items():
            if lowered.endswith(words):
                return code
        return one_line(text)
    return None


def updates_of(fields: Mapping[str, Any]) -> list[str]:
    """latestInfos and callUpdates entries as plain text, each with its date."""
    texts: list[str] = []
    for key in ("latestInfos", "callUpdates"):
        entries = _json_field(fields, key)
        if not isinstance(entries, list):
            continue
        for entry in entries:
            if not isinstance(entry, dict):
                continue
            text = html_to_text(str(entry.get("content") or ""))
            if not text:
                continue
            if len(text) > UPDATE_LIMIT:
                text = text[: UPDATE_LIMIT - 1].rstrip() + "…"
            when = str(entry.get("approvalDate") or entry.get("lastChangeDate") or "").strip()
            texts.append(f"{when}: {text}" if when else text)
    return texts


#: English words that are frequent in any English text and are not words of another EU
#: language ("in", "is", "on", "an", "are", "to" are: German, Dutch, Czech, Romanian…)
_ENGLISH_MARKERS = frozenset((
    "the", "and", "of", "with", "for", "which", "that", "this", "these", "those", "should",
    "will", "from", "their", "its", "such", "into", "through", "between", "been", "has",
    "have", "were", "would", "could", "must", "they",
))
_WORD = re.compile(r"[^\W\d_]+")


def reads_as_english(text: str) -> bool:
    """True when ``text`` is English prose: enough of its words are English function words
    no other EU language uses (about one word in seven in English; next to none in a
    translation). A text too short to tell (a bare title) is not called English."""
    words = _WORD.findall(text.casefold())
    hits = sum(1 for word in words if word in _ENGLISH_MARKERS)
    return hits >= 3 and hits >= 0.05 * len(words)


def text_language(text: str, label: str | None) -> str | None:
    """The language of the text a record keeps, not the label of the copy it came from.

    The search API returns one result per language copy, and the portal leaves most copies
    untranslated: a ``bg``, ``es`` or ``ro`` copy usually carries the English text. No field
    says the text's own language (``language`` and the reference suffix name the copy), so
    the text is read: English prose is ``en``, anything else keeps the copy's label. A
    function-word test is enough for that one question (the original or the translation);
    the language-identification libraries that fit weigh 96 MB (lingua) or pull numpy in
    (py3langid), and langdetect has not been released since 2021. A copy labelled ``en``
    is ``en`` whatever the test says, so its text is not read: most rows (the richest row
    of a call is its English copy) skip the test, a tenth of a scrape (issue 15).
    """
    if label == "en":
        return label
    if reads_as_english(text):
        return "en"
    return label or None


def sub_programme_of(identifier: str) -> str | None:
    """"HORIZON-CL5" from "HORIZON-CL5-2024-D2-01-03", "SMP-COSME" from "SMP-COSME-2026-…"."""
    match = re.match(r"^([A-Z0-9]+(?:-[A-Z]+[A-Z0-9]*)*?)-\d{4}(?:-|$)", identifier)
    return match.group(1) if match else None


# -- rows --------------------------------------------------------------------------------

def fields_of(result: Mapping[str, Any]) -> dict[str, Any]:
    """A result's fields: its ``metadata``, or the top level when metadata is missing."""
    metadata = result.get("metadata")
    if isinstance(metadata, dict) and metadata:
        return metadata
    return {k: v for k, v in result.items() if k not in ("metadata",)}


def row_type(result: Mapping[str, Any]) -> str:
    return _first(fields_of(result), "type") or ""


def row_key(result: Mapping[str, Any]) -> str | None:
    """Which rows describe the same call: the topic identifier, or for a cascade call its
    own competitive-call id (many cascade calls share one parent topic identifier), or for
    an external-action call (type 2) its PROSPECT call id, the number in its page's url."""
    fields = fields_of(result)
    kind = row_type(result)
    if kind == "8":
        return cascade_id(result)
    if kind == "2":
        prospect = _first(fields, "callIdentifier")
        if prospect:
            return f"prospect-{prospect}"
    return _first(fields, "identifier") or _first(fields, "callIdentifier")


def cascade_id(result: Mapping[str, Any]) -> str | None:
    """The cascade call's id: from ``3884COMPETITIVE_CALLen``, else callccm2Id, else url."""
    reference = str(result.get("reference") or _first(fields_of(result), "reference") or "")
    match = re.match(r"^(\d+)COMPETITIVE_CALL", reference)
    if match:
        return f"cascade-{match.group(1)}"
    fields = fields_of(result)
    call_id = _first(fields, "callccm2Id")
    if call_id:
        return f"cascade-{call_id}"
    url = str(result.get("url") or "")
    tail = url.rstrip("/").rsplit("/", 1)[-1]
    return f"cascade-{tail}" if tail.isdigit() else None


def richness(result: Mapping[str, Any]) -> tuple[int, int, int]:
    """Sort key for duplicate rows: current over legacy, English first, then filled fields."""
    fields = fields_of(result)
    legacy = (_first(fields, "DATASOURCE") or _first(fields, "datasource")) == LEGACY_DATASOURCE
    english = (result.get("language") or _first(fields, "language")) == "en"
    filled = sum(1 for v in fields.values() if v not in (None, "", [], [""], ["[]"]))
    return (0 if legacy else 1, 1 if english else 0, filled)


def dates_and_status(fields: Mapping[str, Any], native_id: str, now: datetime
                     ) -> tuple[datetime | None, list[datetime], CallStatus]:
    """A row's opening, cut-offs and status at ``now``; InvalidRecord when its dates cannot
    be read, or when it has neither a known status nor a deadline (a stub row)."""
    try:
        deadlines = [d for d in (deadline_utc(v) for v in _values(fields, "deadlineDate")) if d]
        opening = opening_utc(_first(fields, "startDate"))
    except ValueError as exc:
        raise InvalidRecord(str(exc), native_id=native_id) from exc

    code = _first(fields, "status")
    stated = STATUS_CODES.get(code or "")
    if stated is None and not deadlines:  # stub rows and unknown codes (type 2 has 310945031)
        raise InvalidRecord(f"unknown status {code!r} and no deadline", native_id=native_id)
    # the flag lags both ways: the dates decide wherever they are known (scrapers._records)
    return opening, deadlines, status_for(opening, deadlines, now, stated.value if stated else None)


def normalize_result(
    result: Mapping[str, Any], *, source: str, portal_url: str, now: datetime
) -> CallRecord:
    """One search result as a CallRecord; raise InvalidRecord when it cannot be one."""
    fields = fields_of(result)
    kind = row_type(result)
    identifier = _first(fields, "identifier")
    native_id = row_key(result)
    if not native_id:
        raise InvalidRecord("no identifier")
    opening, deadlines, status = dates_and_status(fields, native_id, now)

    programme_code = _first(fields, "frameworkProgramme") or ""
    programme = programmes.by_portal_code(programme_code)
    summary_html = _first(fields, "descriptionByte") or _first(fields, "description") or ""
    summary = html_to_summary(summary_html, SUMMARY_LIMIT)
    call_identifier = _first(fields, "callIdentifier")

    if kind == "8":
        title = one_line(_first(fields, "callTitle") or result.get("summary") or
                         _first(fields, "title"))
        url: str | None = str(result.get("url") or _first(fields, "url") or "") or None
        budget: dict[str, int | None] = {"budget_eur": amount_eur(_first(fields, "budget"))}
        action_type: str | None = "FSTP"
        project = _first(fields, "projectAcronym")
        tags = [t for t in (project, one_line(_first(fields, "title"))) if t]
    else:
        title = one_line(_first(fields, "title") or result.get("summary") or
                         result.get("content"))
        if kind == "2":
            url = f"{portal_url}/prospect-details/{call_identifier or identifier}PROSPECTSEN"
            budget = {"budget_eur": amount_eur(_first(fields, "budget"))}
        else:
            url = f"{portal_url}/topic-details/{identifier}"
            budget = topic_budget(_json_field(fields, "budgetOverview"), identifier or "")
        action_type = action_type_of(fields)
        tags = [str(t) for t in _values(fields, "tags")]
    if not title:
        raise InvalidRecord("no title", native_id=native_id)

    skip = {identifier, call_identifier}
    keywords = [k for k in keywords_of(fields) if k not in skip]
    try:
        return CallRecord(
            source=source,
            native_id=native_id,
            title=title,
            status=status,
            programme=programme.name if programme else None,
            sub_programme=sub_programme_of(identifier or ""),
            call_identifier=call_identifier,
            topic_identifier=identifier,
            summary=summary,
            url=url,
            opening_date=opening,
            deadlines=tuple(deadlines),
            deadline_model=_first(fields, "deadlineModel"),
            action_type=action_type,
            keywords=tuple(keywords),
            tags=tuple(tags),
            language=text_language(f"{title} {summary}",
                                   str(result.get("language") or _first(fields, "language") or "")),
            updates=tuple(updates_of(fields)),
            documents=documents_of(fields),
            **budget,
        )
    except ValidationError as exc:
        raise InvalidRecord(str(exc.errors()[0]["msg"]), native_id=native_id) from exc


def parse_page(payload: Any, expected_page: int) -> tuple[list[dict[str, Any]], int | None]:
    """The results and totalResults of one search page; LayoutChanged if it is not one."""
    if not isinstance(payload, dict) or not isinstance(payload.get("results"), list):
        raise LayoutChanged("search response has no results list")
    echoed = payload.get("pageNumber")
    if echoed is not None and count_of(echoed) != expected_page:
        raise LayoutChanged(f"asked for page {expected_page}, the API answered page {echoed!r}")
    results = [r for r in payload["results"] if isinstance(r, dict)]
    return results, count_of(payload.get("totalResults"))


#: Bump when ``normalize_result`` reads the same row otherwise (beside callwatch's version,
#: part of every row digest): stored calls are then read again from their rows.
DIGEST_VERSION = "1"


def digest_salt(name: str, settings: FtPortalSettings) -> bytes:
    """What a row's reading depends on besides the row (and ``now``, which only moves the
    status): the code's version and the source's settings (``portal_url``)."""
    return f"{DIGEST_VERSION}\0{__version__}\0{name}\0{settings.model_dump_json()}\0".encode()


def row_digest(row: Mapping[str, Any], salt: bytes = b"") -> str:
    """A digest of one raw search result as decoded, and of ``salt``.

    orjson writes a row in a tenth of ``json.dumps``'s time, but writes NaN and Infinity
    (which ``json.loads`` reads) as ``null``, and refuses ints beyond 64 bits: a row whose
    orjson text holds a ``null`` (or that orjson refuses) is written by ``json.dumps``
    instead, which writes each of them as itself, so two different rows never share a text.
    """
    try:
        body = b"o" + orjson.dumps(row)
    except TypeError:  # orjson.JSONEncodeError: an int beyond 64 bits
        body = b"n"
    if b"null" in body:
        body = b"j" + json.dumps(row, ensure_ascii=False).encode("utf-8", "surrogatepass")
    return hashlib.sha256(salt + body).hexdigest()


class Unchanged(NamedTuple):
    """A row the store holds already (same digest): not read again; its status at ``now``."""

    digest: str
    status: CallStatus


class Collector:
    """Keeps one call per key while pages stream in, so memory holds records, not raw rows.

    For each key (topic identifier, or cascade call id) the richest row wins: a current row
    over a legacy ``SEDIA_PRD_CENTRICITY`` copy, English over other languages, then the row
    with the most filled fields (stubs lose). Only a row that beats the current best is
    normalized; a row that cannot be normalized, whatever it raises (``read_item``), is
    kept as its error and counted invalid, and the walk goes on.

    With ``known`` (the digests of the stored calls' rows, ``row_digest`` with ``salt``), a
    row whose digest is the stored one is not normalized: its reading is the stored record,
    but for the status, which time moves and which is read here (``Unchanged``).
    """

    def __init__(self, *, source: str, portal_url: str, now: datetime,
                 known: Mapping[str, str] | None = None, salt: bytes = b"") -> None:
        self.source = source
        self.portal_url = portal_url
        self.now = now
        self.known = known or {}
        self.salt = salt
        self.best: dict[str, tuple[tuple[int, int, int], str,
                                   CallRecord | InvalidRecord | Unchanged]] = {}
        self.keyless = 0

    def add(self, rows: Iterable[Mapping[str, Any]]) -> None:
        for row in rows:
            key = row_key(row)
            if key is None:
                self.keyless += 1
                continue
            rank = richness(row)
            if key in self.best and self.best[key][0] >= rank:
                continue
            digest = row_digest(row, self.salt)
            if self.known.get(key) == digest:
                try:
                    _opening, _deadlines, status = dates_and_status(fields_of(row), key,
                                                                    self.now)
                except InvalidRecord:  # it was read before: then it is read again here
                    pass
                else:
                    self.best[key] = (rank, digest, Unchanged(digest, status))
                    continue
            outcome = read_item(self.source, key, functools.partial(
                normalize_result, row, source=self.source, portal_url=self.portal_url,
                now=self.now))
            self.best[key] = (rank, digest, outcome)

    def result(self) -> tuple[list[CallRecord], int]:
        """The records, and the number of rows that could not become one (logged)."""
        records: list[CallRecord] = []
        invalid = self.keyless
        for _rank, _digest, outcome in self.best.values():
            if isinstance(outcome, Unchanged):
                continue
            if isinstance(outcome, CallRecord):
                records.append(outcome)
                continue
            invalid += 1
            log.warning("invalid record source=%s call=%s error=%s", self.source,
                        outcome.native_id, outcome.reason)
        if self.keyless:
            log.warning("invalid records source=%s count=%d error=no identifier", self.source,
                        self.keyless)
        return records, invalid

    def digests(self) -> dict[str, str]:
        """The row digest of each record (native id → digest)."""
        return {key: digest for key, (_rank, digest, outcome) in self.best.items()
                if isinstance(outcome, CallRecord)}

    def unchanged(self) -> dict[str, tuple[str, CallStatus]]:
        """The rows not read again (native id → (digest, status at ``now``))."""
        return {key: (outcome.digest, outcome.status)
                for key, (_rank, _digest, outcome) in self.best.items()
                if isinstance(outcome, Unchanged)}


def normalize_all(
    rows: Iterable[Mapping[str, Any]], *, source: str, portal_url: str, now: datetime
) -> tuple[list[CallRecord], int]:
    """Normalize every row, one call per key; count and log the rows that cannot be parsed."""
    collector = Collector(source=source, portal_url=portal_url, now=now)
    collector.add(rows)
    return collector.result()


# -- the bulk file -----------------------------------------------------------------------

def _abbreviation(value: Any) -> str:
    """The ``abbreviation`` of a ``{id, abbreviation, description}`` object, or the text."""
    if isinstance(value, dict):
        return str(value.get("abbreviation") or "").strip()
    return str(value or "").strip() if isinstance(value, str) else ""


def bulk_deadline_model(item: Mapping[str, Any]) -> str:
    """A bulk object's deadline model ("single-stage", "two-stage", "multiple cut-off").

    The file has carried it under several names: ``deadlineModel`` (2026 files, an object,
    ``{}`` when unset), ``sumbissionProcedure`` (sic, older files) or ``submissionProcedure``,
    and each action's ``submissionProcedure`` (the same object as in the search API's
    ``actions``). The first one set wins.
    """
    for key in ("deadlineModel", "sumbissionProcedure", "submissionProcedure"):
        found = _abbreviation(item.get(key))
        if found:
            return found
    actions = item.get("actions")
    for action in actions if isinstance(actions, list) else ():
        found = _abbreviation(action.get("submissionProcedure")) if isinstance(action, dict) else ""
        if found:
            return found
    return ""


def bulk_to_result(item: Mapping[str, Any]) -> dict[str, Any] | None:
    """A grantsTenders.json object in the search-result shape, so one normalizer serves both.

    Everything the file shares with the search API is passed on, so that both give the same
    record wherever the file has the data: dates, status, programme, keywords and tags,
    ``actions`` (type of action, read as in search results), ``topicActions`` (the label of
    the type of action) and the deadline model (``bulk_deadline_model``).

    Left out on purpose: its ``links``, because the bulk file has no
    ``publicationDocuments``, so documents read from it would be a poorer list than the
    stored one (without them the record's ``documents`` stays None and a degraded run keeps
    the stored list); and its ``latestInfos``, whose dates are written otherwise than in
    search results ("2023-10-03" against "Oct 3, 2023 4:14:13 PM"), so the same news items
    would read as new ones and be announced again.
    """
    status = item.get("status")
    label = str(status.get("abbreviation", "")) if isinstance(status, dict) else str(status or "")
    code = {"forthcoming": "31094501", "open": "31094502", "closed": "31094503"}.get(
        label.strip().lower())
    programme = item.get("frameworkProgramme")
    programme_code = ""
    if isinstance(programme, dict):
        found = programmes.lookup(str(programme.get("abbreviation", ""))) or \
            programmes.lookup(str(programme.get("description", "")))
        programme_code = found.portal_codes[0] if found and found.portal_codes else \
            str(programme.get("id", ""))
    identifier = item.get("identifier")
    if not identifier:
        return None
    return {
        "reference": f"{item.get('ccm2Id', '')}BULK",
        "url": "",
        "language": "en",
        "metadata": {
            "type": [str(item.get("type", ""))],
            "identifier": [identifier],
            "callIdentifier": [item.get("callIdentifier") or ""],
            "title": [item.get("title") or ""],
            "status": [code] if code else [],
            "frameworkProgramme": [programme_code],
            "startDate": [item.get("plannedOpeningDateLong")]
            if item.get("plannedOpeningDateLong") else [],
            "deadlineDate": list(item.get("deadlineDatesLong") or []),
            "keywords": [str(k) for k in item.get("keywords") or []],
            "tags": [str(t) for t in item.get("tags") or []],
            "deadlineModel": [bulk_deadline_model(item)],
            "actions": [a for a in item.get("actions") or [] if isinstance(a, dict)],
            "typesOfAction": [
                str(a.get("description") or "") for a in item.get("topicActions") or []
                if isinstance(a, dict)],
            "DATASOURCE": ["SEDIA"],
        },
    }


def parse_bulk(path: Path, settings: FtPortalSettings) -> Iterator[dict[str, Any]]:
    """Stream the bulk file: wanted types, open or forthcoming, configured programmes."""
    codes = {kind: set(settings.programme_codes(kind)) for kind in settings.types}
    with path.open("rb") as handle:
        # numbers with a fraction or exponent come as Decimal: yajl refuses 1e400 as a float
        # ("numeric overflow"), which would end the whole walk for one odd value
        for item in ijson.items(handle, "fundingData.GrantTenderObj.item"):
            if not isinstance(item, dict):
                continue
            try:
                result = bulk_to_result(item)
            except Exception:  # one odd object (a list where a dict belongs) must not end the walk
                log.exception("unreadable bulk item skipped identifier=%s", item.get("identifier"))
                continue
            if result is None:
                continue
            fields = result["metadata"]
            kind = fields["type"][0]
            if kind not in codes:
                continue
            if not fields["status"] or fields["status"][0] not in WANTED_STATUS_CODES:
                continue
            if fields["frameworkProgramme"][0] not in codes[kind]:
                continue
            yield result


# -- the source --------------------------------------------------------------------------

class FtPortalSource(HttpSource[FtPortalSettings]):
    """One configured instance of the portal source: walk the search API, else the bulk file."""

    #: the digests of the stored calls' rows (``skip_unchanged``)
    known: Mapping[str, str] = MappingProxyType({})

    def skip_unchanged(self, digests: Mapping[str, str]) -> None:
        """Leave unread the search results whose digest is the stored one (the portal's API
        is a POST, with no validators to ask conditionally: the rows are compared instead)."""
        self.known = digests

    async def fetch_page(self, page: int) -> Any:
        """POST one search page and return its decoded JSON."""
        response = await self.http.request("POST", self.settings.search_url,
                                           **build_request(self.settings, page))
        try:
            return response.json()
        except ValueError as exc:
            raise SourceUnavailable(f"page {page} of the search API is not JSON "
                                    f"(truncated?): {exc}") from exc

    async def walk(
        self, collector: Collector, progress: Progress | None
    ) -> tuple[bool, str | None]:
        """Feed every result page to ``collector``; (complete, error) — a failure after the
        first page leaves a partial run, a failure on the first page is raised."""
        total: int | None = None
        for page in range(1, self.settings.max_pages + 1):
            try:
                results, total = parse_page(await self.fetch_page(page), page)
            except (TransientError, PermanentError) as exc:
                if page == 1:
                    raise
                return False, f"page {page}: {exc}"
            collector.add(results)
            if progress:
                pages = None if total is None else -(-total // self.settings.page_size)
                progress(page, pages)
            if len(results) < self.settings.page_size:
                break
        else:
            return False, f"stopped after max_pages={self.settings.max_pages}"
        if total is not None and total > RESULT_WINDOW:
            return False, (f"{total} results exceed the API's {RESULT_WINDOW} window; "
                           "narrow the programmes")
        return True, None

    async def fetch_bulk(self, directory: Path) -> Path:
        """Stream the bulk file to disk (it is ~130 MB) and return its path."""
        path = directory / "grantsTenders.json"
        async with self.http.stream("GET", self.settings.bulk_url) as response:
            with path.open("wb") as handle:
                async for chunk in response.aiter_bytes():
                    handle.write(chunk)
        return path

    async def scrape(self, now: datetime, progress: Progress | None = None) -> ScrapeResult:
        """Walk the search API; if it keeps failing, fall back to the bulk file (degraded)."""
        collector = Collector(source=self.name, portal_url=self.settings.portal_url, now=now,
                              known=self.known, salt=digest_salt(self.name, self.settings))
        try:
            complete, error = await self.walk(collector, progress)
        except (TransientError, PermanentError) as search_error:
            log.warning("search API failed source=%s error=%s; trying the bulk file",
                        self.name, search_error)
            return await self._scrape_bulk(now, search_error)
        records, invalid = collector.result()
        return ScrapeResult(records=records, invalid=invalid, complete=complete, error=error,
                            digests=collector.digests(), unchanged=collector.unchanged())

    async def _scrape_bulk(self, now: datetime, search_error: Exception) -> ScrapeResult:
        try:
            with tempfile.TemporaryDirectory(prefix="callwatch-bulk-") as directory:
                path = await self.fetch_bulk(Path(directory))
                collector = Collector(source=self.name, portal_url=self.settings.portal_url,
                                      now=now)
                collector.add(parse_bulk(path, self.settings))
        except (TransientError, PermanentError, ValueError, ijson.JSONError) as bulk_error:
            return ScrapeResult(complete=False, error=(
                f"search API failed ({search_error}); bulk file failed too ({bulk_error})"))
        records, invalid = collector.result()
        return ScrapeResult(
            records=records, invalid=invalid, complete=False, degraded=True,
            error=f"search API failed: {search_error}",
            notes=["degraded: read the bulk file (no budgets, summaries or cascade calls)"],
        )


PLUGIN = SourcePlugin(kind="ft_portal", settings=FtPortalSettings, create=FtPortalSource, description=(
    "EU Funding & Tenders Portal search API (types 1 and 8, 2 when configured; "
    "bulk-file fallback)"))
