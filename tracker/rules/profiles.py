"""Profiles: what a cluster or an SME can bid for, loaded from YAML files or the database.

A profile is data (:class:`Profile`), validated when it is loaded. Every problem in a file
is reported, not just the first, each as a :class:`ProfileProblem` with the file, the line
where the YAML parser knows it, the field and the message: an unknown field (with a "did
you mean"), a query that does not parse (with its column), a deadline window or budget
range with min above max, an unknown programme (with a "did you mean" from
``tracker.programmes``), duplicate names across files. Loading raises :class:`ProfileError`
(a ConfigError, so the CLI exits with 2 and the daemon refuses to start) listing them all.

YAML is read by :mod:`tracker.yamlfiles`, as subscriber files are.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any, ClassVar, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    field_validator,
    model_validator,
)

from tracker.models import CallStatus
from tracker.programmes import canonical
from tracker.rules.query import Query, parse_query
from tracker.yamlfiles import (
    FilesError,
    Problem,
    parse_model_text,
    read_models,
    validate_mapping,
    yaml_files,
)

PROFILE_SUFFIXES = (".yaml", ".yml")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_PLACE = re.compile(r"^[A-Z]{2}[0-9A-Z]{0,3}$")
#: ISO 3166-1 alpha-2 codes, plus EL and UK, which NUTS and the EU use for Greece and the UK.
_COUNTRIES = frozenset([
    "AD", "AE", "AF", "AG", "AI", "AL", "AM", "AO", "AQ", "AR", "AS", "AT", "AU", "AW", "AX", "AZ",
    "BA", "BB", "BD", "BE", "BF", "BG", "BH", "BI", "BJ", "BL", "BM", "BN", "BO", "BQ", "BR", "BS",
    "BT", "BV", "BW", "BY", "BZ", "CA", "CC", "CD", "CF", "CG", "CH", "CI", "CK", "CL", "CM", "CN",
    "CO", "CR", "CU", "CV", "CW", "CX", "CY", "CZ", "DE", "DJ", "DK", "DM", "DO", "DZ", "EC", "EE",
    "EG", "EH", "ER", "ES", "ET", "FI", "FJ", "FK", "FM", "FO", "FR", "GA", "GB", "GD", "GE", "GF",
    "GG", "GH", "GI", "GL", "GM", "GN", "GP", "GQ", "GR", "GS", "GT", "GU", "GW", "GY", "HK", "HM",
    "HN", "HR", "HT", "HU", "ID", "IE", "IL", "IM", "IN", "IO", "IQ", "IR", "IS", "IT", "JE", "JM",
    "JO", "JP", "KE", "KG", "KH", "KI", "KM", "KN", "KP", "KR", "KW", "KY", "KZ", "LA", "LB", "LC",
    "LI", "LK", "LR", "LS", "LT", "LU", "LV", "LY", "MA", "MC", "MD", "ME", "MF", "MG", "MH", "MK",
    "ML", "MM", "MN", "MO", "MP", "MQ", "MR", "MS", "MT", "MU", "MV", "MW", "MX", "MY", "MZ", "NA",
    "NC", "NE", "NF", "NG", "NI", "NL", "NO", "NP", "NR", "NU", "NZ", "OM", "PA", "PE", "PF", "PG",
    "PH", "PK", "PL", "PM", "PN", "PR", "PS", "PT", "PW", "PY", "QA", "RE", "RO", "RS", "RU", "RW",
    "SA", "SB", "SC", "SD", "SE", "SG", "SH", "SI", "SJ", "SK", "SL", "SM", "SN", "SO", "SR", "SS",
    "ST", "SV", "SX", "SY", "SZ", "TC", "TD", "TF", "TG", "TH", "TJ", "TK", "TL", "TM", "TN", "TO",
    "TR", "TT", "TV", "TW", "TZ", "UA", "UG", "UM", "US", "UY", "UZ", "VA", "VC", "VE", "VG", "VI",
    "VN", "VU", "WF", "WS", "YE", "YT", "ZA", "ZM", "ZW", "EL", "UK",
])


#: one problem in one profile file (the shared YAML-file problem type)
ProfileProblem = Problem


class ProfileError(FilesError):
    """One or more profiles are invalid; ``problems`` lists every one of them."""

    def __init__(self, problems: Iterable[ProfileProblem]) -> None:
        super().__init__("profiles", problems)


# -- the model -----------------------------------------------------------------------------

def _place(code: str) -> str:
    code = code.strip().upper()
    if not _PLACE.match(code) or code[:2] not in _COUNTRIES:
        raise ValueError(f"{code!r} is not an ISO 3166 alpha-2 country or a NUTS code (ES, ES24)")
    return code


def _nonblank(text: str) -> str:
    text = " ".join(text.split())
    if not text:
        raise ValueError("must not be empty")
    return text


ProgrammeName = Annotated[str, AfterValidator(canonical)]
PlaceCode = Annotated[str, AfterValidator(_place)]
Label = Annotated[str, AfterValidator(_nonblank)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Range(_Strict):
    """Optional ends, both included; when both are given the low one may not be above the
    high one. Each range names its ends after the YAML keys people write (``_ends``)."""

    _ends: ClassVar[tuple[str, str]]

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        low, high = self._ends
        start, end = getattr(self, low), getattr(self, high)
        if start is not None and end is not None and start > end:
            raise ValueError(f"{low} {start} is above {high} {end}")
        return self


class DeadlineWindow(_Range):
    """Days from now to the call's next deadline, both ends included."""

    _ends = ("min_days", "max_days")
    min_days: int | None = Field(None, ge=0)
    max_days: int | None = Field(None, ge=0)


class BudgetRange(_Range):
    """The topic's own budget in EUR (``CallRecord.budget_eur``, never a call total that
    several topics share), both ends included."""

    _ends = ("min", "max")
    min: int | None = Field(None, ge=0)
    max: int | None = Field(None, ge=0)


class Profile(_Strict):
    """One profile, as written in YAML (README "Profiles and matching" documents each field)."""

    name: str = Field(description="unique; used in commands and subscriptions")
    description: str = ""
    query: str | None = Field(None, description="the query language of tracker.rules.query")
    programmes: tuple[ProgrammeName, ...] = Field((), description="only these; empty means all")
    exclude_programmes: tuple[ProgrammeName, ...] = ()
    action_types: tuple[Label, ...] = ()
    status: tuple[CallStatus, ...] = Field(
        (CallStatus.OPEN, CallStatus.FORTHCOMING), min_length=1)
    deadline: DeadlineWindow | None = None
    budget_eur: BudgetRange | None = None
    countries: tuple[PlaceCode, ...] = ()
    audience: tuple[Label, ...] = ()
    min_score: int = Field(1, ge=0)

    _parsed: Query | None = PrivateAttr(None)
    _origin: str = PrivateAttr("")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError("use 1 to 100 letters, digits, '.', '_' or '-', starting with a "
                             f"letter or digit; got {value!r}")
        return value

    @field_validator("query")
    @classmethod
    def _query(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        parse_query(value)  # QuerySyntaxError is a ValueError: a field error with its column
        return value

    def model_post_init(self, context: Any, /) -> None:
        self._parsed = parse_query(self.query) if self.query else None

    @property
    def parsed_query(self) -> Query | None:
        """The parsed query, or None when the profile has none (every call passes the text test)."""
        return self._parsed

    @property
    def origin(self) -> str:
        """Where the profile came from: its file, or ``database``."""
        return self._origin

    def with_origin(self, origin: str) -> Profile:
        self._origin = origin
        return self

    def as_mapping(self) -> dict[str, Any]:
        """The profile as the YAML mapping that would produce it."""
        return self.model_dump(mode="json")


FIELDS = tuple(Profile.model_fields)


# -- YAML files (tracker.yamlfiles reads them with line numbers) ------------------------------

#: how a problem names what a profile file should hold ("expected a mapping of profile fields")
_WHAT = "profile fields"

def validate_profile(
    data: Any, origin: str, lines: Mapping[tuple[Any, ...], int] | None = None
) -> tuple[Profile | None, list[ProfileProblem]]:
    """Validate one profile mapping; return it (or None) and every problem found."""
    profile, problems = validate_mapping(data, Profile, origin, lines, what=_WHAT)
    return (profile.with_origin(origin) if profile is not None else None), problems


def parse_profile_text(text: str, origin: str) -> tuple[Profile | None, list[ProfileProblem]]:
    """Parse one YAML document into a profile, reporting every problem with its line."""
    profile, problems = parse_model_text(text, Profile, origin, what=_WHAT)
    return (profile.with_origin(origin) if profile is not None else None), problems


def profile_files(paths: Iterable[Path]) -> tuple[list[Path], list[ProfileProblem]]:
    """The YAML files named by ``paths`` (directories expanded, sorted) and missing paths."""
    return yaml_files(paths)


def duplicate_names(profiles: Iterable[Profile]) -> list[ProfileProblem]:
    """A problem for every profile whose name an earlier one already uses."""
    seen: dict[str, Profile] = {}
    problems: list[ProfileProblem] = []
    for profile in profiles:
        first = seen.setdefault(profile.name, profile)
        if first is not profile:
            problems.append(ProfileProblem(profile.origin, None, "name",
                                           f"duplicate name {profile.name!r} (also in {first.origin})"))
    return problems


def read_profiles(paths: Iterable[Path]) -> tuple[list[Profile], list[ProfileProblem]]:
    """Read every profile file under ``paths``; return the valid profiles and all problems."""
    read, problems = read_models(paths, Profile, what=_WHAT)
    profiles = [profile.with_origin(str(path)) for path, profile in read]
    problems.extend(duplicate_names(profiles))
    return profiles, problems


def load_directory(directory: Path) -> list[Profile]:
    """Every profile in ``directory``; a missing directory holds none. ProfileError on any problem."""
    if not directory.exists():
        return []
    profiles, problems = read_profiles([directory])
    if problems:
        raise ProfileError(problems)
    return profiles

