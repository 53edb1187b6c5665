"""Every URL setting of every source is an http(s) URL, checked when the configuration loads.

A ``file://`` or ``gopher://`` URL can never be fetched; it is a configuration error (exit 2,
naming the key) instead of a run that fails after a minute of retries.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from tests.test_cli import run
from tracker.config import WebUrl, load_config
from tracker.errors import ConfigError
from tracker.plugins import source_plugins

#: the keys a plugin needs besides its URLs, so that only the URL is wrong
REQUIRED = {"ecl_pages": {"publisher": "EISMEA"}, "html_list": {"item": ".call"}}


def url_settings() -> list[tuple[str, str]]:
    """(kind, key) of every setting of every installed source plugin that holds a URL."""
    found = []
    for kind, plugin in sorted(source_plugins().items()):
        for key in plugin.settings.model_fields:
            if key == "url" or key.endswith("_url"):
                found.append((kind, key))
    return found


def test_the_built_in_and_user_source_kinds_have_url_settings() -> None:
    kinds = {kind for kind, _ in url_settings()}
    assert {"ft_portal", "interreg", "eccp", "ecl_pages", "eit", "cascade_hub", "rss",
            "html_list"} <= kinds


def block(kind: str, key: str, url: str) -> str:
    values: dict[str, Any] = {"kind": kind, **REQUIRED.get(kind, {})}
    for other_kind, other_key in url_settings():
        if other_kind == kind:
            values[other_key] = "https://calls.example.eu/list"
    values[key] = url
    return "[sources.mine]\n" + "".join(f'{k} = "{v}"\n' for k, v in values.items())


@pytest.mark.parametrize(("kind", "key"), url_settings())
@pytest.mark.parametrize("url", ["file:///etc/passwd", "gopher://calls.example.eu/1",
                                 "ftp://calls.example.eu/list", "calls.example.eu/list",
                                 "https://", "https://calls.example.eu/a list"])
def test_a_source_url_that_is_not_http_is_a_config_error_naming_the_key(
    tmp_path: Path, kind: str, key: str, url: str
) -> None:
    path = tmp_path / "callwatch.toml"
    path.write_text(block(kind, key, url), encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    assert caught.value.key == f"sources.mine.{key}"
    assert "expected an http:// or https:// URL" in str(caught.value)
    assert str(path) in str(caught.value)


@pytest.mark.parametrize(("kind", "key"), url_settings())
def test_http_and_https_source_urls_load(tmp_path: Path, kind: str, key: str) -> None:
    path = tmp_path / "callwatch.toml"
    path.write_text(block(kind, key, "http://127.0.0.1:8080/calls?page=0"), encoding="utf-8")
    assert getattr(load_config(path, environ={}).sources["mine"], key) == \
        "http://127.0.0.1:8080/calls?page=0"


def test_the_packaged_defaults_pass() -> None:
    settings = load_config(environ={})
    assert settings.sources["ft_portal"].search_url.startswith("https://")  # type: ignore[attr-defined]


def test_http_url_type() -> None:
    class Model(BaseModel):
        url: WebUrl

    assert Model(url="HTTPS://calls.example.eu/x").url == "HTTPS://calls.example.eu/x"
    with pytest.raises(ValidationError, match="expected an http:// or https:// URL"):
        Model(url="javascript:alert(1)")


def test_callwatch_exits_2_naming_the_key_of_a_file_url(tmp_path: Path) -> None:
    path = tmp_path / "callwatch.toml"
    path.write_text('[sources.interreg]\nsite_url = "file:///etc/passwd"\n', encoding="utf-8")
    result = run("--config", str(path), "sources", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "sources.interreg.site_url" in result.stderr
    assert "expected an http:// or https:// URL" in result.stderr
    assert "Traceback" not in result.stderr
