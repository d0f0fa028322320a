from __future__ import annotations

import stat
from pathlib import Path

import fakeredis
import pytest
from flask import Flask

from sample_app import create_app
from sample_app.config import ConfigError, load_settings


@pytest.mark.parametrize(
    ("app_env", "ttl"), [("development", 10), ("testing", 5), ("production", 300)]
)
def test_app_env_selects_default_ttl(app_env: str, ttl: int) -> None:
    settings = load_settings({"APP_ENV": app_env, "SECRET_KEY": "s"})
    assert settings["CACHE_DEFAULT_TTL"] == ttl
    assert settings["CACHE_USER_TTL"] == ttl
    assert settings["CACHE_PARKING_TTL"] == ttl


def test_ttl_variables_override_the_env_default() -> None:
    settings = load_settings(
        {"APP_ENV": "production", "SECRET_KEY": "s", "CACHE_DEFAULT_TTL": "60"},
        {"CACHE_PARKING_TTL": 7},
    )
    assert (settings["CACHE_USER_TTL"], settings["CACHE_PARKING_TTL"]) == (60, 7)


def test_redis_host_port_db_build_a_url() -> None:
    settings = load_settings({"REDIS_HOST": "127.0.0.1", "REDIS_PORT": "6390", "REDIS_DB": "4"})
    assert settings["REDIS_URL"] == "redis://127.0.0.1:6390/4"
    assert load_settings({})["REDIS_URL"] is None


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"APP_ENV": "staging"}, "APP_ENV"),
        ({"CACHE_DEFAULT_TTL": "ten"}, "CACHE_DEFAULT_TTL"),
        ({"CACHE_USER_TTL": "0"}, "CACHE_USER_TTL"),
        ({"REDIS_PORT": "x"}, "REDIS_PORT"),
        ({"REDIS_URL": "http://127.0.0.1"}, "REDIS_URL"),
        ({"RATE_LIMIT_PER_HOUR": "-1"}, "RATE_LIMIT_PER_HOUR"),
        ({"REDIS_SOCKET_TIMEOUT": "0"}, "REDIS_SOCKET_TIMEOUT"),
        ({"APP_ENV": "production"}, "SECRET_KEY"),
    ],
)
def test_invalid_settings_fail_at_startup(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        create_app(environ)


def test_environment_variables_are_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CACHE_PARKING_TTL", "42")
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'env.sqlite3'}")
    app = create_app()
    assert app.config["CACHE_PARKING_TTL"] == 42
    assert app.config["DATABASE_URL"].endswith("env.sqlite3")


def test_embedded_default_runs_on_fakeredis_and_sqlite(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("REDIS_URL", "REDIS_HOST", "REDIS_PORT", "REDIS_DB", "DATABASE_URL", "APP_ENV"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr("flask.Flask.auto_find_instance_path", lambda self: str(tmp_path))
    app = create_app()
    from sample_app.cache import get_cache

    client = get_cache(app).client
    assert isinstance(client, fakeredis.FakeRedis)
    response = app.test_client().get("/parking-lots")
    assert response.status_code == 200
    assert response.get_json() == []
    assert (tmp_path / "sample_app.sqlite3").exists()
    # Its own server: nothing leaks to another app or to fakeredis's shared default server.
    client.set("probe", "1", ex=5)
    assert get_cache(create_app()).client.get("probe") is None
    assert fakeredis.FakeRedis().get("probe") is None


def _app_in(instance: Path, monkeypatch: pytest.MonkeyPatch, **config: str) -> Flask:
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.setattr("flask.Flask.auto_find_instance_path", lambda self: str(instance))
    return create_app({"APP_ENV": "development"} | config)


def test_without_secret_key_each_instance_draws_and_keeps_its_own(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    first = _app_in(tmp_path / "a", monkeypatch).config["SECRET_KEY"]
    again = _app_in(tmp_path / "a", monkeypatch).config["SECRET_KEY"]
    other = _app_in(tmp_path / "b", monkeypatch, APP_ENV="testing").config["SECRET_KEY"]
    assert first == again != other
    assert len(first) >= 32
    stored = tmp_path / "a" / "secret_key"
    assert stored.read_text().strip() == first
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert not [p.name for p in (tmp_path / "a").iterdir() if "secret_key." in p.name]


def test_a_given_secret_key_wins_and_writes_no_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    app = _app_in(tmp_path, monkeypatch, SECRET_KEY="given-key")
    assert app.config["SECRET_KEY"] == "given-key"
    assert not (tmp_path / "secret_key").exists()


def test_an_unusable_key_file_stops_startup(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "secret_key").write_text("short\n")
    with pytest.raises(ConfigError, match="delete it"):
        _app_in(tmp_path, monkeypatch)
    assert (tmp_path / "secret_key").read_text() == "short\n"


def test_max_content_length_is_read_and_checked() -> None:
    assert load_settings({})["MAX_CONTENT_LENGTH"] == 64 * 1024
    assert load_settings({"MAX_CONTENT_LENGTH": "1048576"})["MAX_CONTENT_LENGTH"] == 1048576
    with pytest.raises(ConfigError, match="MAX_CONTENT_LENGTH"):
        load_settings({"MAX_CONTENT_LENGTH": "1k"})
