"""Settings from the environment (and an optional mapping of overrides), validated at startup."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

APP_ENVS = ("development", "testing", "production")
DEFAULT_TTL_BY_ENV = {"development": 10, "testing": 5, "production": 300}
SECRET_KEY_FILE = "secret_key"
# Flask's own limit: werkzeug answers 413 before a larger body is read.
DEFAULT_MAX_CONTENT_LENGTH = 64 * 1024

# Keys read from the process environment when present. Everything else keeps its default.
_ENV_KEYS = (
    "APP_ENV",
    "SECRET_KEY",
    "REDIS_URL",
    "REDIS_HOST",
    "REDIS_PORT",
    "REDIS_DB",
    "REDIS_SOCKET_TIMEOUT",
    "DATABASE_URL",
    "CACHE_DEFAULT_TTL",
    "CACHE_USER_TTL",
    "CACHE_PARKING_TTL",
    "CACHE_KEY_PREFIX",
    "CACHE_LEASE_MS",
    "CACHE_LEASE_WAIT_MS",
    "RATE_LIMIT_PER_HOUR",
    "MAX_CONTENT_LENGTH",
)


class ConfigError(ValueError):
    """A setting has a value the app cannot run with."""


def _as_int(name: str, value: Any, *, minimum: int) -> int:
    if isinstance(value, bool):
        raise ConfigError(f"{name} must be an integer, got {value!r}")
    try:
        number = int(str(value).strip()) if not isinstance(value, int) else value
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {value!r}") from None
    if number < minimum:
        raise ConfigError(f"{name} must be >= {minimum}, got {number}")
    return number


def _as_float(name: str, value: Any, *, minimum: float) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number, got {value!r}") from None
    if not number > minimum:
        raise ConfigError(f"{name} must be > {minimum}, got {number}")
    return number


def _redis_url(raw: Mapping[str, Any]) -> str | None:
    url = raw.get("REDIS_URL")
    if url:
        scheme = urlsplit(str(url)).scheme
        if scheme not in ("redis", "rediss", "unix"):
            raise ConfigError(f"REDIS_URL must use redis://, rediss:// or unix://, got {url!r}")
        return str(url)
    if not any(raw.get(k) for k in ("REDIS_HOST", "REDIS_PORT", "REDIS_DB")):
        return None
    host = str(raw.get("REDIS_HOST") or "localhost")
    port = _as_int("REDIS_PORT", raw.get("REDIS_PORT") or 6379, minimum=1)
    db = _as_int("REDIS_DB", raw.get("REDIS_DB") or 0, minimum=0)
    return f"redis://{host}:{port}/{db}"


def load_settings(
    environ: Mapping[str, str] | None = None, overrides: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Merge environment and overrides (overrides win) into validated Flask config values.

    ``REDIS_URL``/``DATABASE_URL`` are ``None`` when unset: the app then uses its embedded
    default (in-process fakeredis, SQLite file in the instance folder).
    """
    env = os.environ if environ is None else environ
    raw: dict[str, Any] = {k: env[k] for k in _ENV_KEYS if env.get(k) not in (None, "")}
    raw.update(overrides or {})

    app_env = str(raw.get("APP_ENV", "development")).strip().lower()
    if app_env not in APP_ENVS:
        raise ConfigError(f"APP_ENV must be one of {', '.join(APP_ENVS)}, got {app_env!r}")

    default_ttl = _as_int(
        "CACHE_DEFAULT_TTL", raw.get("CACHE_DEFAULT_TTL", DEFAULT_TTL_BY_ENV[app_env]), minimum=1
    )
    secret = raw.get("SECRET_KEY") or None
    if secret is None and app_env == "production":
        raise ConfigError("SECRET_KEY must be set when APP_ENV=production")

    prefix = raw.get("CACHE_KEY_PREFIX", "")
    if not isinstance(prefix, str):
        raise ConfigError(f"CACHE_KEY_PREFIX must be a string, got {prefix!r}")

    settings = dict(raw)
    settings.update(
        APP_ENV=app_env,
        SECRET_KEY=secret,
        REDIS_URL=_redis_url(raw),
        REDIS_SOCKET_TIMEOUT=_as_float(
            "REDIS_SOCKET_TIMEOUT", raw.get("REDIS_SOCKET_TIMEOUT", 0.25), minimum=0
        ),
        DATABASE_URL=raw.get("DATABASE_URL") or None,
        CACHE_DEFAULT_TTL=default_ttl,
        CACHE_USER_TTL=_as_int("CACHE_USER_TTL", raw.get("CACHE_USER_TTL", default_ttl), minimum=1),
        CACHE_PARKING_TTL=_as_int(
            "CACHE_PARKING_TTL", raw.get("CACHE_PARKING_TTL", default_ttl), minimum=1
        ),
        CACHE_KEY_PREFIX=prefix,
        CACHE_LEASE_MS=_as_int("CACHE_LEASE_MS", raw.get("CACHE_LEASE_MS", 5000), minimum=1),
        CACHE_LEASE_WAIT_MS=_as_int(
            "CACHE_LEASE_WAIT_MS", raw.get("CACHE_LEASE_WAIT_MS", 1000), minimum=0
        ),
        RATE_LIMIT_PER_HOUR=_as_int(
            "RATE_LIMIT_PER_HOUR", raw.get("RATE_LIMIT_PER_HOUR", 1000), minimum=0
        ),
        MAX_CONTENT_LENGTH=_as_int(
            "MAX_CONTENT_LENGTH",
            raw.get("MAX_CONTENT_LENGTH", DEFAULT_MAX_CONTENT_LENGTH),
            minimum=1024,
        ),
    )
    return settings


def instance_secret_key(instance_path: str) -> str:
    """The instance's own random key, created on first use in ``instance_path``.

    Outside production a missing ``SECRET_KEY`` must not mean a key anyone can read in the
    source: each instance draws its own, once, and keeps it so tokens survive a restart.
    """
    folder = Path(instance_path)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / SECRET_KEY_FILE
    if not path.exists():
        draft = folder / f".{SECRET_KEY_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(48) + "\n")
        try:
            # A link never replaces an existing file: of processes starting together, the
            # first one's key wins and the others read it.
            os.link(draft, path)
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    key = path.read_text().strip()
    if len(key) < 32:
        raise ConfigError(
            f"{path} holds no usable key (fewer than 32 characters); delete it to draw a new one"
        )
    return key
