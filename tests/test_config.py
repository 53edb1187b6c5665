"""Configuration: file discovery, merging, environment overrides and clear errors."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from tests.tls_support import Authority
from tracker.config import env_overrides, load_config
from tracker.errors import ConfigError


def write(tmp_path: Path, text: str, name: str = "callwatch.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_packaged_defaults_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no ./config/callwatch.toml here
    settings = load_config(environ={})
    assert settings.http.delay == 1.0
    assert settings.sources["ft_portal"].interval == timedelta(hours=6)
    assert settings.database.resolved_url().startswith("sqlite:///")


def test_file_merges_over_defaults_and_resolves_directories(tmp_path: Path) -> None:
    path = write(tmp_path, '[http]\ndelay = 2.5\n[profiles]\ndirectory = "p"\n'
                           '[sources.ft_portal]\ninterval = "30s"\n')
    settings = load_config(path, environ={})
    assert settings.http.delay == 2.5
    assert settings.http.timeout == 30.0  # default kept
    assert settings.profiles.directory == tmp_path / "p"
    assert settings.sources["ft_portal"].interval == timedelta(seconds=30)


def test_a_zero_jitter_switches_it_off(tmp_path: Path) -> None:
    settings = load_config(write(tmp_path, '[scheduler]\njitter = "0s"\n'), environ={})
    assert settings.scheduler.jitter == timedelta(0)


def test_search_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config").mkdir()
    write(tmp_path / "config", "[http]\ndelay = 3.0\n")
    env_file = write(tmp_path, "[http]\ndelay = 4.0\n", "env.toml")
    explicit = write(tmp_path, "[http]\ndelay = 5.0\n", "explicit.toml")
    assert load_config(environ={}).http.delay == 3.0
    assert load_config(environ={"CALLWATCH_CONFIG": str(env_file)}).http.delay == 4.0
    assert load_config(explicit, environ={"CALLWATCH_CONFIG": str(env_file)}).http.delay == 5.0


def test_environment_overrides_any_key(tmp_path: Path) -> None:
    path = write(tmp_path, "[http]\ndelay = 2.0\n")
    environ = {
        "CALLWATCH_HTTP__DELAY": "0.5",
        "CALLWATCH_SOURCES__FT_PORTAL__SEARCH_URL": "http://127.0.0.1:9/search",
        "CALLWATCH_SOURCES__FT_PORTAL__ENABLED": "false",
        "CALLWATCH_SOURCES__FT_PORTAL__PROGRAMMES": '["Horizon Europe"]',
        "CALLWATCH_DATABASE__URL": "sqlite:////tmp/x.db",
        "CALLWATCH_TELEGRAM_TOKEN": "123:secret",  # a secret, not an override
    }
    settings = load_config(path, environ=environ)
    portal = settings.sources["ft_portal"]
    assert settings.http.delay == 0.5
    assert portal.search_url == "http://127.0.0.1:9/search"  # type: ignore[attr-defined]
    assert portal.enabled is False
    assert portal.programmes == ("Horizon Europe",)  # type: ignore[attr-defined]
    assert settings.database.url == "sqlite:////tmp/x.db"


def test_portal_types_as_toml_numbers(tmp_path: Path) -> None:
    settings = load_config(write(tmp_path, "[sources.ft_portal]\ntypes = [1, 2, 8]\n"),
                           environ={})
    assert settings.sources["ft_portal"].types == ("1", "2", "8")  # type: ignore[attr-defined]
    from_env = load_config(write(tmp_path, ""),
                           environ={"CALLWATCH_SOURCES__FT_PORTAL__TYPES": "[1, 2, 8]"})
    assert from_env.sources["ft_portal"].types == ("1", "2", "8")  # type: ignore[attr-defined]


def test_db_option_wins(tmp_path: Path) -> None:
    settings = load_config(write(tmp_path, ""), environ={"CALLWATCH_DATABASE__URL": "sqlite://"},
                           database_url="sqlite:////tmp/y.db")
    assert settings.database.url == "sqlite:////tmp/y.db"


@pytest.mark.parametrize(
    ("text", "key", "fragment"),
    [
        ("[http\ntimeout = 3\n", None, "not valid TOML"),
        ("[http]\ntimout = 3\n", "http.timout", "unknown key"),
        ("[bogus]\nx = 1\n", "bogus", "unknown key"),
        ('[http]\ntimeout = "soon"\n', "http.timeout", "valid number"),
        ('[sources.ft_portal]\ninterval = "soon"\n', "sources.ft_portal.interval", "duration"),
        ('[sources.ft_portal]\ninterval = "0s"\n', "sources.ft_portal.interval", "above zero"),
        ("[scheduler]\njitter = -5\n", "scheduler.jitter", "zero or more"),
        ("[sources.ft_portal]\npage_size = 500\n", "sources.ft_portal.page_size", "100"),
        ("[sources.ft_portal]\ntypes = [1, 3]\n", "sources.ft_portal.types",
         "unknown portal types ['3']"),
        ('[sources.ft_portal]\nprogrammes = ["Horizn Europe"]\n', "sources.ft_portal.programmes",
         "did you mean 'Horizon Europe'"),
        ('[sources.mine]\nkind = "gopher"\n', "sources.mine.kind", "unknown source kind"),
        ('[notifiers.email]\nsecurity = "tls"\n', "notifiers.email.security", "starttls"),
        ('[notifiers.email]\nsecurity = "ssl"\nca_file = "relay-ca.pem"\n', "notifiers.email.ca_file",
         "cannot read the CA file: No such file or directory"),
        ('[notifiers.email]\nsecurity = "ssl"\nca_file = "."\n', "notifiers.email.ca_file",
         "cannot read the CA file: Is a directory"),
        ('[notifiers.email]\nsecurity = "ssl"\nca_file = "callwatch.toml"\n', "notifiers.email.ca_file",
         "not a PEM file of CA certificates"),
        ('[notifiers.email]\nca_file = "callwatch.toml"\n', "notifiers.email.ca_file",
         'only used over TLS: set security to "starttls" or "ssl"'),
    ],
)
def test_errors_name_file_key_and_expectation(
    tmp_path: Path, text: str, key: str | None, fragment: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    message = str(caught.value)
    assert str(path) in message
    assert fragment in message
    if key:
        assert caught.value.key == key
        assert key in message


def test_error_from_environment_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"CALLWATCH_HTTP__RETRIES: http\.retries"):
        load_config(write(tmp_path, ""), environ={"CALLWATCH_HTTP__RETRIES": "many"})


def test_missing_explicit_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "nope.toml", environ={})


def test_env_overrides_parsing() -> None:
    overrides, origins = env_overrides({
        "CALLWATCH_A__B__C": "3", "CALLWATCH_TEST_DATABASE_URL": "x", "OTHER__X": "1",
        "CALLWATCH_SMTP_PASSWORD": "p",
    })
    assert overrides == {"a": {"b": {"c": 3}}}
    assert origins == {"a.b.c": "CALLWATCH_A__B__C"}


def test_repository_config_is_valid() -> None:
    repo = Path(__file__).parent.parent
    settings = load_config(repo / "config" / "callwatch.toml", environ={})
    assert settings.profiles.directory == repo / "config" / "profiles"


def test_email_ca_file_is_read_beside_the_config_file_and_checked_at_start(tmp_path: Path) -> None:
    ca = Authority.create(tmp_path / "certs", "relay-ca").ca_file
    assert load_config(write(tmp_path, ""), environ={}).notifiers.email.ca_file is None
    path = write(tmp_path, '[notifiers.email]\nsecurity = "starttls"\nca_file = "certs/relay-ca.pem"\n')
    assert load_config(path, environ={}).notifiers.email.ca_file == ca
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={"CALLWATCH_NOTIFIERS__EMAIL__CA_FILE": str(tmp_path / "gone.pem")})
    assert caught.value.key == "notifiers.email.ca_file"
    assert caught.value.path == "CALLWATCH_NOTIFIERS__EMAIL__CA_FILE"
    assert "No such file or directory" in str(caught.value)


@pytest.mark.parametrize(("written", "expected"), [
    ("sqlite:///live.db", "sqlite:///{conf}/live.db"),
    ("sqlite:///data/live.db", "sqlite:///{conf}/data/live.db"),
    ("sqlite:////srv/callwatch/live.db", "sqlite:////srv/callwatch/live.db"),
    ("sqlite:///:memory:", "sqlite:///:memory:"),
    ("sqlite:///~/live.db", "sqlite:///~/live.db"),
    ("sqlite:///file:live.db?mode=ro&uri=true", "sqlite:///file:live.db?mode=ro&uri=true"),
    ("postgresql://cw@db.example/callwatch", "postgresql://cw@db.example/callwatch"),
])
def test_a_relative_sqlite_file_in_a_config_file_is_beside_that_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, written: str, expected: str) -> None:
    conf = tmp_path / "conf"
    conf.mkdir()
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    config = conf / "callwatch.toml"
    config.write_text(f'[database]\nurl = "{written}"\n', encoding="utf-8")
    assert load_config(config, environ={}).database.url == expected.format(conf=conf)
    # the environment and --db are read from where the command runs, as before
    overridden = load_config(config, environ={"CALLWATCH_DATABASE__URL": "sqlite:///x.db"})
    assert overridden.database.url == "sqlite:///x.db"
    assert load_config(config, environ={}, database_url="sqlite:///y.db").database.url == \
        "sqlite:///y.db"
