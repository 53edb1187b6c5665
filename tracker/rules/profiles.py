"""Profiles: what a cluster or an SME can bid for, loaded from YAML files or the database.

A profile is data (:class:`Profile`), validated when it is loaded. Every problem in a file
is reported, not just the first, each as a :class:`ProfileProblem` with the file, the line
where the YAML parser knows it, the field and the message: an unknown field (with a "did
you mean"), a query that does not parse (with its column), a deadline window or budget
range with min above max, an unknown programme (with a "did you mean" from
``tracker.programmes``), duplicate names across files. Loading raises :class:`ProfileError`
(a ConfigError, so the CLI exits with 2 and the daemon refuses to start) listing them all.

YAML is read with PyYAML's safe loader, except that only ``true``/``false`` are booleans:
YAML 1.1 would read ``countries: [NO]`` (Norway) as ``[false]``.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from tracker.errors import ConfigError
from tracker.models import CallStatus
from tracker.programmes import lookup, unknown_programme_message
from tracker.rules.query import Query, parse_query

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


@dataclass(frozen=True)
class ProfileProblem:
    """One thing wrong with one profile: where it is and what it is."""

    origin: str
    line: int | None
    field: str | None
    message: str

    def __str__(self) -> str:
        where = f"{self.origin}:{self.line}" if self.line is not None else self.origin
        return ": ".join(part for part in (where, self.field, self.message) if part)


class ProfileError(ConfigError):
    """One or more profiles are invalid; ``problems`` lists every one of them."""

    def __init__(self, problems: Iterable[ProfileProblem]) -> None:
        self.problems = list(problems)
        count = len(self.problems)
        lines = "\n".join(f"  {p}" for p in self.problems)
        super().__init__(f"{count} problem{'s' if count != 1 else ''} in profiles:\n{lines}")


# -- the model -----------------------------------------------------------------------------

def _canonical_programme(name: str) -> str:
    programme = lookup(name)
    if programme is None:
        raise ValueError(unknown_programme_message(name))
    return programme.name


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


ProgrammeName = Annotated[str, AfterValidator(_canonical_programme)]
PlaceCode = Annotated[str, AfterValidator(_place)]
Label = Annotated[str, AfterValidator(_nonblank)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DeadlineWindow(_Strict):
    """Days from now to the call's next deadline, both ends included."""

    min_days: int | None = Field(None, ge=0)
    max_days: int | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> DeadlineWindow:
        if self.min_days is not None and self.max_days is not None and self.min_days > self.max_days:
            raise ValueError(f"min_days {self.min_days} is above max_days {self.max_days}")
        return self


class BudgetRange(_Strict):
    """The call's total topic budget in EUR, both ends included."""

    min: int | None = Field(None, ge=0)
    max: int | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> BudgetRange:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max}")
        return self


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


# -- YAML with line numbers -----------------------------------------------------------------

class _Loader(yaml.SafeLoader):
    """SafeLoader where only true/false are booleans (YAML 1.1 reads NO, Norway, as false)."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def _lines(node: yaml.Node, path: tuple[Any, ...], into: dict[tuple[Any, ...], int],
           duplicates: list[tuple[tuple[Any, ...], int]]) -> None:
    """Record the line of every mapping key and sequence item under ``node``."""
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node.value)
            where = (*path, key)
            if where in into:
                duplicates.append((where, key_node.start_mark.line + 1))
            into[where] = key_node.start_mark.line + 1
            _lines(value_node, where, into, duplicates)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            into[(*path, index)] = item.start_mark.line + 1
            _lines(item, (*path, index), into, duplicates)


def _line_for(loc: tuple[Any, ...], lines: Mapping[tuple[Any, ...], int]) -> int | None:
    for end in range(len(loc), 0, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return None


def _message(error: Mapping[str, Any]) -> str:
    if error["type"] == "extra_forbidden":
        unknown = str(error["loc"][-1])
        message = "unknown field"
        known = FIELDS if len(error["loc"]) == 1 else ()
        close = difflib.get_close_matches(unknown, known, n=1)
        return message + (f"; did you mean {close[0]!r}?" if close else "")
    if error["type"] == "missing":
        return "required field is missing"
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] not in ("value_error",) and not isinstance(error.get("input"), dict | list):
        message += f", got {error.get('input')!r}"
    return message


def _field_name(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) if not isinstance(part, int) else f"[{part}]" for part in loc
                    ).replace(".[", "[")


def validate_profile(
    data: Any, origin: str, lines: Mapping[tuple[Any, ...], int] | None = None
) -> tuple[Profile | None, list[ProfileProblem]]:
    """Validate one profile mapping; return it (or None) and every problem found."""
    lines = lines or {}
    if not isinstance(data, dict):
        kind = "nothing" if data is None else type(data).__name__
        return None, [ProfileProblem(origin, lines.get((), 1 if lines else None), None,
                                     f"expected a mapping of profile fields, got {kind}")]
    try:
        profile = Profile.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        with_items = {tuple(e["loc"][:-1]) for e in errors if isinstance(e["loc"][-1], int)}
        problems = [
            ProfileProblem(origin, _line_for(tuple(e["loc"]), lines), _field_name(tuple(e["loc"])),
                           _message(e))
            for e in errors
            # a list whose items failed is also "too short": say only what is wrong with the items
            if not (e["type"] == "too_short" and tuple(e["loc"]) in with_items)
        ]
        return None, problems
    return profile.with_origin(origin), []


def parse_profile_text(text: str, origin: str) -> tuple[Profile | None, list[ProfileProblem]]:
    """Parse one YAML document into a profile, reporting every problem with its line."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = " ".join(p for p in (exc.context, exc.problem) if p) or "not valid YAML"
        return None, [ProfileProblem(origin, line, None, f"not valid YAML: {problem}")]
    except yaml.YAMLError as exc:
        return None, [ProfileProblem(origin, None, None, f"not valid YAML: {exc}")]
    finally:
        loader.dispose()
    lines: dict[tuple[Any, ...], int] = {}
    duplicates: list[tuple[tuple[Any, ...], int]] = []
    if node is not None:
        lines[()] = node.start_mark.line + 1
        _lines(node, (), lines, duplicates)
    profile, problems = validate_profile(data, origin, lines)
    problems = [ProfileProblem(origin, line, _field_name(where), "duplicate field")
                for where, line in duplicates] + problems
    return (profile if not problems else None), problems


def profile_files(paths: Iterable[Path]) -> tuple[list[Path], list[ProfileProblem]]:
    """The YAML files named by ``paths`` (directories expanded, sorted) and missing paths."""
    files: list[Path] = []
    problems: list[ProfileProblem] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.iterdir()
                                if p.suffix in PROFILE_SUFFIXES and p.is_file()))
        elif path.is_file():
            files.append(path)
        else:
            problems.append(ProfileProblem(str(path), None, None, "no such file or directory"))
    return files, problems


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
    files, problems = profile_files(paths)
    profiles: list[Profile] = []
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(ProfileProblem(str(path), None, None, f"cannot read: {exc}"))
            continue
        profile, found = parse_profile_text(text, str(path))
        problems.extend(found)
        if profile is not None:
            profiles.append(profile)
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

