"""Every setting is declared once, in its model: defaults.toml and README's table follow from it.

These read the real files and load the real packaged defaults, so a setting added to a model
without regenerating, a default edited in defaults.toml by hand, or a README row written by
hand fails here, with the command that puts it right.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from tracker.config import PACKAGED_DEFAULTS, Settings, load_config
from tracker.plugins import source_plugins
from tracker.settings_docs import (
    COMMAND,
    END,
    PACKAGED_SOURCES,
    README,
    START,
    default_differences,
    generated_files,
    main,
    render_defaults,
    replace_between_markers,
    setting_rows,
)

PLUGINS = source_plugins()


@pytest.mark.parametrize("path", [PACKAGED_DEFAULTS, README], ids=lambda p: p.name)
def test_the_file_is_what_the_models_generate(path: Path) -> None:
    expected = generated_files(README.read_text(encoding="utf-8"))[path]
    assert path.read_text(encoding="utf-8") == expected, (
        f"{path} differs from the settings models; run `{COMMAND}`")


def test_the_check_command_agrees(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--check"]) == 0, capsys.readouterr().err


def test_loaded_defaults_equal_the_model_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No effective default depends on which of the two says it: the file loads to the models."""
    monkeypatch.chdir(tmp_path)  # no ./config/callwatch.toml here
    assert default_differences(load_config(environ={}), PLUGINS) == []


def test_a_default_changed_in_a_file_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The comparison can fail: a value that is not the model's is named with both values."""
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "callwatch.toml"
    path.write_text('[http]\ndelay = 3.0\n[sources.eccp]\nmax_pages = 7\n', encoding="utf-8")
    assert default_differences(load_config(path, environ={}), PLUGINS) == [
        "http.delay: defaults.toml gives 3.0, the model 1.0",
        "sources.eccp.max_pages: defaults.toml gives 7, the model 25",
    ]


def test_the_generated_defaults_read_back_to_the_model_values() -> None:
    """The hand-rolled TOML writer is checked by tomllib: every section validates as declared."""
    raw = tomllib.loads(render_defaults(PLUGINS))
    sources = raw.pop("sources")
    settings = Settings.model_validate(
        {**raw, "profiles": {"directory": "p"}, "subscribers": {"directory": "s"}})
    assert settings.model_dump(exclude={"profiles", "subscribers"}) == Settings.model_validate(
        {"profiles": {"directory": "p"}, "subscribers": {"directory": "s"}},
    ).model_dump(exclude={"profiles", "subscribers"})
    assert list(sources) == [source.name for source in PACKAGED_SOURCES]
    for source in PACKAGED_SOURCES:
        plugin = PLUGINS[str(source.values.get("kind") or source.name)]
        assert plugin.settings.model_validate(sources[source.name]) == \
            plugin.settings.model_validate(dict(source.values)), source.name


def test_every_setting_has_help() -> None:
    missing = [row.key for row in setting_rows(PLUGINS) if not row.description.strip()]
    assert missing == [], f"settings without a description in their Field: {missing}"


def test_every_key_of_defaults_toml_has_a_row() -> None:
    """The table covers the file: each key, or its `sources.<name>.key` form for a kind."""
    keys = {row.key for row in setting_rows(PLUGINS)}

    def flat(table: dict[str, object], prefix: str = "") -> list[str]:
        out: list[str] = []
        for key, value in table.items():
            out += flat(value, f"{prefix}{key}.") if isinstance(value, dict) else [prefix + key]
        return out

    missing = [key for key in flat(tomllib.loads(PACKAGED_DEFAULTS.read_text(encoding="utf-8")))
               if key not in keys and f"sources.<name>.{key.rpartition('.')[2]}" not in keys]
    assert missing == []


def test_markers_are_required() -> None:
    assert replace_between_markers(f"a\n{START}\nold\n{END}\nb", "new\n") == \
        f"a\n{START}\nnew\n{END}\nb"
    with pytest.raises(ValueError, match="settings:start"):
        replace_between_markers("no markers", "new\n")
