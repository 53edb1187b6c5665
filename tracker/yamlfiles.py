"""YAML files validated into pydantic models, with every problem reported by file, line and field.

Profiles and subscribers are YAML files that people edit by hand; a mistake must come back
as ``hydrogen.yaml:7: deadline.min_days: must not be above max_days``, all of them at
once, not as a traceback. This module reads one YAML document with line marks, validates
it against a model and turns pydantic's errors into :class:`Problem` values.

YAML is read with PyYAML's safe loader, except that only ``true``/``false`` are booleans:
YAML 1.1 would read ``countries: [NO]`` (Norway) as ``[false]``; and aliases (``*name``)
are refused where they are read, before anything is built: nine levels of lists of
aliases (a "billion laughs" of 300 bytes) would otherwise expand to hundreds of millions of
items and take gigabytes. Hand-written profiles and subscribers have no need for them.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from tracker.errors import ConfigError

YAML_SUFFIXES = (".yaml", ".yml")
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Problem:
    """One thing wrong in one file: where it is and what it is."""

    origin: str
    line: int | None
    field: str | None
    message: str

    def __str__(self) -> str:
        where = f"{self.origin}:{self.line}" if self.line is not None else self.origin
        return ": ".join(part for part in (where, self.field, self.message) if part)


class FilesError(ConfigError):
    """One or more files are invalid; ``problems`` lists every one of them."""

    def __init__(self, what: str, problems: Iterable[Problem]) -> None:
        self.problems = list(problems)
        count = len(self.problems)
        lines = "\n".join(f"  {p}" for p in self.problems)
        super().__init__(f"{count} problem{'s' if count != 1 else ''} in {what}:\n{lines}")


ALIASES_REFUSED = ("aliases (*{anchor}) are not allowed in profile and subscriber files: "
                   "write the value out in full")


class _AliasRefused(yaml.MarkedYAMLError):
    """The document uses an alias; raised by the composer before it builds anything."""


class _Loader(yaml.SafeLoader):
    """SafeLoader where only true/false are booleans and aliases are refused."""

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]  # untyped in types-PyYAML
            raise _AliasRefused(problem=ALIASES_REFUSED.format(anchor=event.anchor),
                                problem_mark=event.start_mark)
        return super().compose_node(parent, index)


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


def line_for(loc: tuple[Any, ...], lines: Mapping[tuple[Any, ...], int]) -> int | None:
    """The line of the deepest known part of ``loc``."""
    for end in range(len(loc), 0, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return lines.get(())


def field_name(loc: tuple[Any, ...]) -> str:
    """("channels", "email") → "channels.email"; ("subscriptions", 0, "mode") → "subscriptions[0].mode"."""
    return ".".join(str(p) if not isinstance(p, int) else f"[{p}]" for p in loc).replace(".[", "[")


def _known_fields(model: type[BaseModel], loc: tuple[Any, ...]) -> tuple[str, ...]:
    """The field names allowed where ``loc`` points, following nested models and lists."""
    current: Any = model
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        fields = _model_fields(current)
        if part not in fields:
            return ()
        annotation = fields[part].annotation
        for candidate in (annotation, *getattr(annotation, "__args__", ())):
            if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                current = candidate
                break
            inner = getattr(candidate, "__args__", ())
            found = next((a for a in inner if isinstance(a, type) and issubclass(a, BaseModel)),
                         None)
            if found is not None:
                current = found
                break
        else:
            return ()
    return tuple(_model_fields(current))


def _model_fields(model: Any) -> dict[str, Any]:
    """A model's fields; for one whose fields are made at run time from the plugins (a
    subscriber's ``channels``), the fields of the model it ``assembled()``."""
    assembled = getattr(model, "assembled", None)
    return dict(getattr(assembled() if callable(assembled) else model, "model_fields", {}))


def describe_error(error: Mapping[str, Any], model: type[BaseModel]) -> str:
    """A readable message for one pydantic error, with "did you mean" for unknown fields."""
    if error["type"] == "extra_forbidden":
        unknown = str(error["loc"][-1])
        close = difflib.get_close_matches(unknown, _known_fields(model, tuple(error["loc"])), n=1)
        return "unknown field" + (f"; did you mean {close[0]!r}?" if close else "")
    if error["type"] == "missing":
        return "required field is missing"
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] != "value_error" and not isinstance(error.get("input"), dict | list):
        message += f", got {error.get('input')!r}"
    return message


def validate_mapping(
    data: Any, model: type[M], origin: str, lines: Mapping[tuple[Any, ...], int] | None = None,
    *, what: str = "fields",
) -> tuple[M | None, list[Problem]]:
    """Validate one mapping against ``model``; return the value (or None) and every problem."""
    lines = lines or {}
    if not isinstance(data, dict):
        kind = "nothing" if data is None else type(data).__name__
        return None, [Problem(origin, lines.get(()), None, f"expected a mapping of {what}, got {kind}")]
    try:
        return model.model_validate(data), []
    except ValidationError as exc:
        errors = exc.errors()
        with_items = {tuple(e["loc"][:-1]) for e in errors if e["loc"] and isinstance(e["loc"][-1], int)}
        return None, [
            Problem(origin, line_for(tuple(e["loc"]), lines), field_name(tuple(e["loc"])) or None,
                    describe_error(e, model))
            for e in errors
            if not (e["type"] == "too_short" and tuple(e["loc"]) in with_items)
        ]


def parse_yaml(text: str, origin: str) -> tuple[Any, dict[tuple[Any, ...], int], list[Problem]]:
    """One YAML document: its data, the line of every key and item, and syntax problems."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except _AliasRefused as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark is not None else None
        return None, {}, [Problem(origin, line, None, str(exc.problem))]
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = " ".join(p for p in (exc.context, exc.problem) if p) or "not valid YAML"
        return None, {}, [Problem(origin, line, None, f"not valid YAML: {problem}")]
    except yaml.YAMLError as exc:
        return None, {}, [Problem(origin, None, None, f"not valid YAML: {exc}")]
    finally:
        loader.dispose()
    lines: dict[tuple[Any, ...], int] = {}
    duplicates: list[tuple[tuple[Any, ...], int]] = []
    if node is not None:
        lines[()] = node.start_mark.line + 1
        _lines(node, (), lines, duplicates)
    problems = [Problem(origin, line, field_name(where), "duplicate field")
                for where, line in duplicates]
    return data, lines, problems


def parse_model_text(text: str, model: type[M], origin: str, *, what: str = "fields"
                     ) -> tuple[M | None, list[Problem]]:
    """Parse one YAML document into ``model``, reporting every problem with its line."""
    data, lines, problems = parse_yaml(text, origin)
    if problems and data is None:
        return None, problems
    value, found = validate_mapping(data, model, origin, lines, what=what)
    problems += found
    return (value if not problems else None), problems


def yaml_files(paths: Iterable[Path]) -> tuple[list[Path], list[Problem]]:
    """The YAML files named by ``paths`` (directories expanded, sorted) and missing paths."""
    files: list[Path] = []
    problems: list[Problem] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.iterdir() if p.suffix in YAML_SUFFIXES and p.is_file()))
        elif path.is_file():
            files.append(path)
        else:
            problems.append(Problem(str(path), None, None, "no such file or directory"))
    return files, problems


def read_models(paths: Iterable[Path], model: type[M], *, what: str = "fields"
                ) -> tuple[list[tuple[Path, M]], list[Problem]]:
    """Read every YAML file under ``paths`` into ``model``; the valid ones and all problems."""
    files, problems = yaml_files(paths)
    values: list[tuple[Path, M]] = []
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(Problem(str(path), None, None, f"cannot read: {exc}"))
            continue
        value, found = parse_model_text(text, model, str(path), what=what)
        problems.extend(found)
        if value is not None:
            values.append((path, value))
    return values, problems
