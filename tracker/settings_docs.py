"""Every setting is declared once, in its pydantic model; the files that list settings derive from it.

A setting's default, constraints and help text live in its ``Field`` (``tracker/config.py``
for callwatch's own sections, each source plugin's settings model for ``[sources.<name>]``).
From those models this module renders the packaged defaults (``tracker/defaults.toml``, the
descriptions as its comments) and the README's configuration table (between the
``<!-- settings:start -->`` and ``<!-- settings:end -->`` markers), so neither can drift:
``tests/test_settings_docs.py`` fails when a file differs from what the models give.
Regenerate both with::

    python -m tracker.settings_docs --write

The one thing the models cannot say is which source instances callwatch ships with
(``eismea``, ``hadea`` and ``eic`` are three instances of ``ecl_pages``, and ``interreg`` is
off until its key is set): that is :data:`PACKAGED_SOURCES`, the values that differ from the
plugin's defaults. Rendering is pure (models in, text out); only :func:`main` touches files.
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from tracker.config import PACKAGED_DEFAULTS, NotifierSettings, Settings
from tracker.dates import format_duration
from tracker.plugins import source_plugins
from tracker.ports import SourcePlugin, SourceSettings

README = Path(__file__).resolve().parent.parent / "README.md"
START = "<!-- settings:start -->"
END = "<!-- settings:end -->"
COMMAND = "python -m tracker.settings_docs --write"
WIDTH = 99  # longest line of defaults.toml


@dataclass(frozen=True)
class PackagedSource:
    """A source instance in the packaged defaults: its plugin's defaults plus ``values``."""

    name: str
    comment: str
    values: Mapping[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        """The plugin: ``kind`` when the values set it, else the instance's own name."""
        return str(self.values.get("kind") or self.name)


#: The source instances callwatch ships, in the order of defaults.toml.
PACKAGED_SOURCES: tuple[PackagedSource, ...] = (
    PackagedSource("ft_portal", "EU Funding & Tenders Portal: its search API, its bulk file as "
                   "fallback."),
    PackagedSource("interreg", "interreg.eu call search (Algolia): open and forthcoming calls of "
                   "all Interreg programmes. Off until you set api_key (or "
                   "CALLWATCH_SOURCES__INTERREG__API_KEY); a rejected key fails the run with "
                   "\"interreg.eu rejected the search key; set sources.interreg.api_key\".",
                   {"enabled": False}),
    PackagedSource("eccp", "European Cluster Collaboration Platform call inventory: list pages, "
                   "then each detail page."),
    PackagedSource("eismea", "Commission agency sites in ECL markup: one ecl_pages instance per "
                   "site. EISMEA: SMP (clusters, Euroclusters), EIC, I3.",
                   {"kind": "ecl_pages",
                    "list_url": "https://eismea.ec.europa.eu/funding-opportunities/calls-proposals_en",
                    "publisher": "EISMEA"}),
    PackagedSource("hadea", "HaDEA: Digital Europe, EU4Health, CEF Digital, Horizon clusters.",
                   {"kind": "ecl_pages", "list_url": "https://hadea.ec.europa.eu/calls-proposals_en",
                    "publisher": "HaDEA"}),
    PackagedSource("eic", "EIC news, not a call list: off; items are stored as news (closed, tag "
                   "news), and news pages carry no deadlines.",
                   {"kind": "ecl_pages", "enabled": False,
                    "list_url": "https://eic.ec.europa.eu/news_en", "publisher": "EIC",
                    "programme": "Horizon Europe", "details": False}),
    PackagedSource("eit", "EIT Opportunities: the open calls of every EIT community (KIC) on one "
                   "page."),
    PackagedSource("cascade_hub", "Cascade Funding Hub (cascadefunding.eu): open FSTP calls "
                   "embedded in its open-calls page."),
)

HEADER = """\
callwatch packaged defaults. Every key callwatch knows is here with its default value.
Your own file (--config, $CALLWATCH_CONFIG or ./config/callwatch.toml) is merged over this,
and CALLWATCH_<SECTION>__<KEY> environment variables override both.
Secrets never go in a file: CALLWATCH_TELEGRAM_TOKEN, CALLWATCH_SMTP_USERNAME,
CALLWATCH_SMTP_PASSWORD and the variable named by notifiers.webhook.secret_env.
Generated from the settings models by `python -m tracker.settings_docs --write`: change a
default or a comment in its model (tracker/config.py, scrapers/*.py, notifiers/*.py), not
here."""

SOURCES_HEADER = """\
Sources. Each [sources.<name>] has enabled, interval and its own keys; kind picks the plugin
when the name is not the plugin's own (several instances of one kind)."""


@dataclass(frozen=True)
class SettingRow:
    """One line of the README's table: a dotted key, its default as shown, its help text."""

    key: str
    default: str
    description: str


# --- reading the models ---------------------------------------------------------------------


def _sub_model(info: FieldInfo) -> type[BaseModel] | None:
    annotation = info.annotation
    if annotation is NotifierSettings:  # one table per channel plugin, assembled at run time
        return NotifierSettings.assembled()
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def _extra(info: FieldInfo, key: str) -> Any:
    extra = info.json_schema_extra
    return extra.get(key) if isinstance(extra, dict) else None


def _doc(model: type[BaseModel]) -> str | None:
    """The model's own docstring (not an inherited one), as one paragraph."""
    doc = model.__dict__.get("__doc__")
    return " ".join(doc.split()) if doc else None


def _settings_fields(model: type[BaseModel]) -> Iterator[tuple[str, FieldInfo]]:
    for name, info in model.model_fields.items():
        if not info.exclude:
            yield name, info


def _default(info: FieldInfo) -> Any:
    return info.get_default(call_default_factory=True)


def _own_fields(plugin: SourcePlugin) -> Iterator[tuple[str, FieldInfo]]:
    """A plugin's keys that the base SourceSettings does not already document."""
    base = SourceSettings.model_fields
    for name, info in _settings_fields(plugin.settings):
        if name not in base or info.is_required() or _default(info) != _default(base[name]):
            yield name, info


def _packaged_kinds(
    plugins: Mapping[str, SourcePlugin], packaged: Sequence[PackagedSource]
) -> dict[str, list[str]]:
    """Plugin kind → the packaged instances of that kind, in packaged order."""
    kinds: dict[str, list[str]] = {}
    for source in packaged:
        if source.kind not in plugins:
            raise ValueError(f"packaged source {source.name}: no plugin of kind {source.kind!r}")
        kinds.setdefault(source.kind, []).append(source.name)
    return kinds


# --- the README table ------------------------------------------------------------------------


def _shown(value: Any) -> str:
    """A default as the README shows it: the TOML value in a code span, or 'empty'."""
    if value is None or value == "":
        return "empty"
    if isinstance(value, str | Path):
        return f"`{value}`"
    if isinstance(value, timedelta):
        return f"`{format_duration(value)}`"
    return f"`{toml_value(value)}`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _row(key: str, info: FieldInfo, prefix: str = "") -> SettingRow:
    shown = _extra(info, "shown_default")
    if shown is None:
        shown = "required" if info.is_required() else _shown(_default(info))
    return SettingRow(key, str(shown), prefix + (info.description or ""))


def _model_rows(model: type[BaseModel], prefix: str) -> Iterator[SettingRow]:
    for name, info in _settings_fields(model):
        sub = _sub_model(info)
        if sub is not None:
            yield from _model_rows(sub, f"{prefix}{name}.")
        else:
            yield _row(f"{prefix}{name}", info)


def setting_rows(
    plugins: Mapping[str, SourcePlugin], packaged: Sequence[PackagedSource] = PACKAGED_SOURCES,
    model: type[BaseModel] = Settings,
) -> list[SettingRow]:
    """Every documented key: the sections of ``model``, then the keys of the shipped sources'
    plugins (``sources.<kind>.key`` when an instance has the plugin's name, else
    ``sources.<name>.key`` with the kind named in its help)."""
    rows: list[SettingRow] = []
    for name, info in _settings_fields(model):
        sub = _sub_model(info)
        if sub is not None:
            rows.extend(_model_rows(sub, f"{name}."))
        elif name == "sources":
            rows.extend(_row(f"sources.<name>.{key}", base)
                        for key, base in _settings_fields(SourceSettings))
            for kind, names in _packaged_kinds(plugins, packaged).items():
                if kind in names:
                    prefix, note = f"sources.{kind}.", ""
                else:
                    note = f"kind `{kind}` ({', '.join(f'`{n}`' for n in names)}): "
                    prefix = "sources.<name>."
                rows.extend(_row(prefix + key, info, note)
                            for key, info in _own_fields(plugins[kind]))
        else:
            rows.append(_row(name, info))
    return rows


def render_table(rows: Sequence[SettingRow]) -> str:
    """The README's Markdown table of settings."""
    lines = ["| Key | Default | Meaning |", "|---|---|---|"]
    lines += [f"| `{row.key}` | {_cell(row.default)} | {_cell(row.description)} |" for row in rows]
    return "\n".join(lines) + "\n"


def replace_between_markers(text: str, block: str, *, label: str = "README.md") -> str:
    """``text`` with what lies between the settings markers replaced by ``block``."""
    start, end = text.find(START), text.find(END)
    if start < 0 or end < start:
        raise ValueError(f"{label} has no {START} … {END} block")
    head = text[:start + len(START)]
    return f"{head}\n{block}{text[end:]}"


# --- defaults.toml ---------------------------------------------------------------------------


def toml_value(value: Any) -> str:
    """One TOML value (JSON strings are valid TOML basic strings; tests read it back)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, timedelta):
        return json.dumps(format_duration(value))
    if isinstance(value, str | Path):
        return json.dumps(str(value), ensure_ascii=False)
    if isinstance(value, tuple | list):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    raise TypeError(f"no TOML form for {value!r}")


def _comment(text: str) -> list[str]:
    """Help text as wrapped TOML comment lines (code spans lose their backticks)."""
    plain = text.replace("`", "")
    return textwrap.wrap(plain, WIDTH - 2, initial_indent="# ", subsequent_indent="# ",
                         break_on_hyphens=False, break_long_words=False) if plain else []


def _array_lines(key: str, value: Sequence[Any]) -> list[str]:
    """A long array over several lines, never splitting an item."""
    lines, current = [f"{key} = ["], "   "
    for item in value:
        piece = f" {toml_value(item)},"
        if len(current) + len(piece) > WIDTH:
            lines.append(current)
            current = "   "
        current += piece
    return [*lines, current, "]"]


def _key_lines(key: str, value: Any, description: str) -> list[str]:
    """``key = value``, its help inline when both fit on one line, else above it."""
    assignment = f"{key} = {toml_value(value)}"
    padded = assignment.ljust(max(28, len(assignment) + 2))
    inline = f"{padded}# {description.replace('`', '')}" if description else assignment
    if len(inline) <= WIDTH and "\n" not in inline:
        return [inline]
    if len(assignment) > WIDTH and isinstance(value, tuple | list):
        return [*_comment(description), *_array_lines(key, value)]
    return [*_comment(description), assignment]


def _reads_empty_as_unset(model: type[BaseModel], name: str, values: Mapping[str, Any]) -> bool:
    """Whether ``name = ""`` gives None, so an unset default can be written as an empty string."""
    try:
        return getattr(model.model_validate({**values, name: ""}), name) is None
    except ValidationError:
        return False


def _table_lines(
    model: type[BaseModel], values: Mapping[str, Any], fields: Iterable[tuple[str, FieldInfo]]
) -> list[str]:
    lines: list[str] = []
    for name, info in fields:
        description = info.description or ""
        if name in values:
            value = values[name]
        elif info.is_required():
            shown = str(_extra(info, "shown_default") or "required").replace("`", "")
            lines += _comment(f"{name}: {description}. Default: {shown}, set at start.")
            continue
        else:
            value = _default(info)
        if value is None:
            if not _reads_empty_as_unset(model, name, values):
                lines += _comment(f"{name} (not set): {description}")
                continue
            value = ""
        lines += _key_lines(name, value, description)
    return lines


def _section_lines(model: type[BaseModel], path: str) -> list[str]:
    """``[path]`` and its keys, then its sub-sections; keys without a default as comments."""
    leaves = [(n, i) for n, i in _settings_fields(model) if _sub_model(i) is None]
    lines: list[str] = []
    if leaves:
        keys = _table_lines(model, {}, leaves)
        has_values = any(not line.startswith("#") for line in keys)
        header = f"[{path}]" if has_values else f"# [{path}]"
        doc = _doc(model)
        lines += ["", *(_comment(doc) if doc else []), header, *keys]
    for name, info in _settings_fields(model):
        sub = _sub_model(info)
        if sub is not None:
            lines += _section_lines(sub, f"{path}.{name}")
    return lines


def commented_section(model: type[BaseModel], path: str, values: Mapping[str, Any]) -> list[str]:
    """``[path]`` for a starting config (`callwatch init`): the keys in ``values`` set, every
    other key of ``model`` commented out at its default, each with its help; a key without
    a default is left out unless set."""
    doc = _doc(model)
    lines = ["", *(_comment(doc) if doc else []), f"[{path}]"]
    for name, info in _settings_fields(model):
        if _sub_model(info) is not None:
            continue
        description = info.description or ""
        if name in values:
            lines += _key_lines(name, values[name], description)
            continue
        if info.is_required():
            continue
        value = _default(info)
        if value is None:
            if not _reads_empty_as_unset(model, name, {}):
                continue
            value = ""
        lines += [line if line.startswith("#") else f"# {line}"
                  for line in _key_lines(name, value, description)]
    return lines


def render_defaults(
    plugins: Mapping[str, SourcePlugin], packaged: Sequence[PackagedSource] = PACKAGED_SOURCES,
    model: type[BaseModel] = Settings,
) -> str:
    """The text of ``tracker/defaults.toml``."""
    _packaged_kinds(plugins, packaged)  # every packaged kind has its plugin
    lines = [f"# {line}" for line in HEADER.splitlines()]
    for name, info in _settings_fields(model):
        sub = _sub_model(info)
        if sub is not None:
            lines += _section_lines(sub, name)
        elif name == "sources":
            lines += ["", *(f"# {line}" for line in SOURCES_HEADER.splitlines())]
            for source in packaged:
                plugin = plugins[source.kind]
                # kind only where set: the sources header explains it once
                ordered = [(key, info) for key, info in _settings_fields(plugin.settings)
                           if key != "kind" or key in source.values]
                lines += ["", *_comment(source.comment), f"[sources.{source.name}]",
                          *_table_lines(plugin.settings, source.values, ordered)]
    return "\n".join(lines) + "\n"


# --- checking a loaded configuration -----------------------------------------------------------


def _flat(value: Any, prefix: str) -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _flat(item, f"{prefix}{key}.")
    else:
        yield prefix.rstrip("."), value


def _dump(settings: Settings) -> dict[str, Any]:
    """Every value, each source by its own plugin's model (the field's type is the base)."""
    dumped = settings.model_dump(mode="json", exclude={"sources"})
    dumped["sources"] = {name: source.model_dump(mode="json")
                         for name, source in settings.sources.items()}
    return dumped


def default_differences(
    loaded: Settings, plugins: Mapping[str, SourcePlugin],
    packaged: Sequence[PackagedSource] = PACKAGED_SOURCES,
) -> list[str]:
    """Keys whose loaded value differs from what the models and PACKAGED_SOURCES declare.

    ``loaded`` is what ``load_config`` gives with no file of your own: if defaults.toml and
    the models disagree on any key, that key is listed with both values.
    """
    sources = {}
    for source in packaged:
        sources[source.name] = plugins[source.kind].settings.model_validate(dict(source.values))
    declared = Settings.model_validate({
        "profiles": {"directory": loaded.profiles.directory},
        "subscribers": {"directory": loaded.subscribers.directory},
        "sources": sources,
    })
    got, want = dict(_flat(_dump(loaded), "")), dict(_flat(_dump(declared), ""))
    return [f"{key}: defaults.toml gives {got.get(key)!r}, the model {want.get(key)!r}"
            for key in sorted(got.keys() | want.keys()) if got.get(key) != want.get(key)]


# --- the command -------------------------------------------------------------------------------


def generated_files(readme_text: str) -> dict[Path, str]:
    """Each generated file and the text the models give for it."""
    plugins = source_plugins()
    table = render_table(setting_rows(plugins))
    return {
        PACKAGED_DEFAULTS: render_defaults(plugins),
        README: replace_between_markers(readme_text, table),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """``--write`` rewrites defaults.toml and the README table; ``--check`` exits 1 if stale."""
    parser = argparse.ArgumentParser(prog="python -m tracker.settings_docs", description=(
        "Render tracker/defaults.toml and README's settings table from the settings models."))
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true", help="rewrite both files")
    mode.add_argument("--check", action="store_true", help="exit 1 when a file is out of date")
    args = parser.parse_args(argv)
    if not README.is_file():  # an installed package has no README beside it
        parser.error(f"{README} not found: run this in a source checkout of callwatch")
    stale = []
    for path, text in generated_files(README.read_text(encoding="utf-8")).items():
        if path.read_text(encoding="utf-8") == text:
            continue
        stale.append(path)
        if args.write:
            path.write_text(text, encoding="utf-8")
    for path in stale:
        sys.stderr.write(f"{'rewrote' if args.write else 'out of date'}: {path}\n")
    return 1 if stale and args.check else 0


if __name__ == "__main__":
    raise SystemExit(main())
