"""Turning parsed items into CallRecords, counting the ones that cannot be, and run results.

Every source builds its records through ``RecordBatch`` (the portal through ``read_item``,
the same rule): one bad item (an unparseable deadline, an empty title, a number that is not
finite) is logged with its id and counted in ``ScrapeResult.invalid``, and never stops the
run. That holds for *any* exception raised while one item is read: an unexpected one is a
bug met on that item, logged with its traceback, but it too costs only that item. A failure
of the whole run (a rejected key, a challenge page, a changed layout) becomes a
``ScrapeResult`` with ``error`` set, keeping whatever was read before it, so the store
records the reason and the source's health shows it.

Scraped numbers (amounts, counts) are read here too, by ``finite_number``, ``amount_eur``
and ``count_of``: JSON parsers read ``1e400``, ``Infinity`` and ``NaN`` as floats that are
not finite, and ``int()`` or ``round()`` of one raises. No scraped figure is infinite, so a
non-finite number is no figure at all: these helpers give None for it, and the caller
decides whether the field is then unknown or the item invalid.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from pydantic import Field, ValidationError, field_validator

from scrapers._dates import names_relative_day, parse_date
from tracker import programmes
from tracker.dedupe import OFFICIAL_ID_IN_TEXT
from tracker.errors import CallwatchError, InvalidRecord
from tracker.models import CallRecord, ScrapeResult
from tracker.ports import SourceSettings
from tracker.status import status_for

log = logging.getLogger(__name__)

#: Official EU call and topic identifiers (HORIZON-…, SMP-COSME-…, DIGITAL-…) inside a text.
IDENTIFIER = OFFICIAL_ID_IN_TEXT


def read_item(source: str, item_id: str, build: Callable[[], CallRecord]) -> CallRecord | InvalidRecord:
    """The record ``build`` makes, or the InvalidRecord saying why this item cannot be one.

    Bad data raises InvalidRecord, pydantic's ValidationError, ValueError or an
    ArithmeticError (``int(float("inf"))`` is an OverflowError): the reason is returned for
    the caller to log and count. Any other exception is a bug in the scraper met on this
    one item: it is logged here with its traceback, so it is seen and fixed, and it too
    makes only this item invalid, so one odd record never costs the rest of the run.
    """
    try:
        return build()
    except InvalidRecord as exc:
        exc.native_id = exc.native_id or item_id
        return exc
    except ValidationError as exc:
        return InvalidRecord(str(exc.errors()[0]["msg"]), native_id=item_id)
    except (ValueError, ArithmeticError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return InvalidRecord(reason, native_id=item_id)
    except Exception as exc:  # a bug met on one item must not lose the others
        log.exception("unexpected error reading an item source=%s call=%s", source, item_id)
        return InvalidRecord(f"unexpected {type(exc).__name__}: {exc}", native_id=item_id)


class RecordBatch:
    """Records of one run, and the count of items that could not become one."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.records: list[CallRecord] = []
        self.invalid = 0
        self.notes: list[str] = []
        #: False once a part of the source could not be read (a detail page): such a run is
        #: never complete, so a call it missed is not taken for closed
        self.complete = True
        self._seen: set[str] = set()

    def add(self, item_id: str, build: Callable[[], CallRecord]) -> CallRecord | None:
        """Build one record; on a bad item (whatever it raised) log it with ``item_id`` and
        count it."""
        outcome = read_item(self.source, item_id, build)
        if isinstance(outcome, InvalidRecord):
            self.invalid += 1
            log.warning("invalid item source=%s call=%s reason=%s", self.source, item_id,
                        outcome.reason)
            return None
        record = outcome
        if record.native_id in self._seen:  # a call listed twice in one run
            return None
        self._seen.add(record.native_id)
        self.records.append(record)
        return record

    def result(self, *, complete: bool = True, error: str | None = None) -> ScrapeResult:
        return ScrapeResult(records=self.records, invalid=self.invalid,
                            complete=complete and self.complete, error=error, notes=list(self.notes))

    def failed(self, exc: CallwatchError) -> ScrapeResult:
        """The run stopped on ``exc``: keep what was read, say why, never count it complete."""
        log.warning("source failed source=%s error=%s: %s", self.source, type(exc).__name__, exc)
        self.notes.append(f"error type: {type(exc).__name__}")
        return self.result(complete=False, error=str(exc))


def require(value: str | None, what: str, item_id: str) -> str:
    """``value`` when it has text, else InvalidRecord naming what is missing."""
    if value is None or not value.strip():
        raise InvalidRecord(f"no {what}", native_id=item_id)
    return value.strip()


def stated_deadline(found: re.Match[str] | None, *, zone: ZoneInfo,
                    native_id: str) -> tuple[datetime, ...]:
    """The deadline an English page states in ``found``'s first group (the match of a
    "Deadline: …" pattern). () when nothing was found, or when it names a day relative to
    the reading ("tomorrow": the page no longer says which day, so the deadline is
    unknown); InvalidRecord when it is no date at all."""
    if found is None:
        return ()
    deadline = parse_date(found.group(1), zone=zone, language="en")
    if deadline is None and not names_relative_day(found.group(1), language="en"):
        raise InvalidRecord(f"unparseable deadline {found.group(1)!r}", native_id=native_id)
    return (deadline,) if deadline else ()


def country_code(value: str | None) -> str | None:
    """A setting's ISO 3166 alpha-2 country code, upper case; ValueError for anything else."""
    if value is None:
        return None
    code = value.strip().upper()
    if not re.fullmatch(r"[A-Z]{2}", code):
        raise ValueError(f"expected an ISO 3166 alpha-2 country code like CZ, got {value!r}")
    return code


def canonical_programme(value: str | None) -> str | None:
    """A setting's programme under its canonical name (``tracker.programmes``)."""
    return None if value is None else programmes.canonical(value)


class PlacedSettings(SourceSettings):
    """Settings of a source the user configures (a feed, an HTML list): the programme,
    country and region of every call it lists, since such pages rarely say them. Each
    source adds its own ``language`` (of its dates) and reads ``region`` its own way."""

    programme: str | None = Field(None, description="canonical programme, e.g. Cohesion Policy")
    sub_programme: str | None = Field(None, description="the operational programme's name")
    country: str | None = Field(None, description="ISO country code the calls are for, e.g. AT")
    region: str | None = Field(None, description="NUTS code of the region, e.g. AT3")

    _check_country = field_validator("country")(country_code)
    _check_programme = field_validator("programme")(canonical_programme)


class Placement(Protocol):
    """What the settings of a source the user configures (a feed, an HTML list) say of every
    call it lists, since such pages rarely say it themselves."""

    @property
    def programme(self) -> str | None: ...
    @property
    def sub_programme(self) -> str | None: ...
    @property
    def country(self) -> str | None: ...
    @property
    def region(self) -> str | None: ...
    @property
    def language(self) -> str | None: ...


def configured_record(settings: Placement, *, source: str, native_id: str, title: str, summary: str,
                      url: str | None, opening: datetime | None, deadlines: tuple[datetime, ...],
                      now: datetime) -> CallRecord:
    """A call of a user-configured source: what the item gives, and the programme, country,
    region and language its settings give. The topic identifier is taken only when the
    title and summary name one alone: a news item naming several topics is about none."""
    identifiers = IDENTIFIER.findall(f"{title} {summary}")
    return CallRecord(
        source=source,
        native_id=native_id,
        title=title,
        status=status_for(opening, deadlines, now),
        programme=settings.programme,
        sub_programme=settings.sub_programme,
        topic_identifier=identifiers[0] if len(set(identifiers)) == 1 else None,
        summary=summary,
        url=url,
        opening_date=opening,
        deadlines=deadlines,
        countries=(settings.country,) if settings.country else (),
        regions=(settings.region,) if settings.region else (),
        language=settings.language,
    )


def own_identifier(text: str) -> str | None:
    """The one official identifier ``text`` names, a call's topic winning over the call
    (SMP-COSME-2024-CLUSTER-01 over SMP-COSME-2024-CLUSTER); None when it names several."""
    found = set(IDENTIFIER.findall(text))
    specific = {i for i in found if not any(o != i and o.startswith(i + "-") for o in found)}
    return specific.pop() if len(specific) == 1 else None


#: ints beyond this cannot be floats (``float(10**400)`` raises): no scraped figure is so large
_LARGEST_FLOAT = 2**1023


def finite_number(value: Any) -> float | None:
    """``value`` as a finite number: an int, a float, a Decimal (ijson's reading of the bulk
    file), or text such as "9000000" or "1,500,000.50"; None when it is missing, a bool, text
    that is no number, or not finite (``inf``, ``nan``, ``1e400``)."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return float(value) if abs(value) <= _LARGEST_FLOAT else None
    if isinstance(value, float | Decimal):
        number = float(value)  # a Decimal too large for a float becomes inf: refused below
    elif isinstance(value, str):
        try:
            number = float(value.replace(",", "").strip())
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def amount_eur(value: Any) -> int | None:
    """An amount in whole euros; None when it is missing, not a finite number, or negative."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value if 0 <= value <= _LARGEST_FLOAT else None  # exact, not through a float
    number = finite_number(value)
    if number is None or number < 0:
        return None
    return round(number)


def count_of(value: Any) -> int | None:
    """A count (expected grants, total results, a page number): a finite whole number not
    below zero, else None."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value if 0 <= value <= _LARGEST_FLOAT else None
    number = finite_number(value)
    if number is None or number < 0 or not number.is_integer():
        return None
    return int(number)
