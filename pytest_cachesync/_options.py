"""Resolution of the plugin's settings: command line > environment > ini file > default."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, Literal, TypeVar

import pytest

from .clock.engines import ENGINE_CHOICES, EngineChoice
from .staleness.oracle import parse_path_patterns
from .staleness.patterns import parse_patterns

T = TypeVar("T")

Source = Literal["cli", "env", "ini", "default"]
DbReset = Literal["rollback", "truncate"]
RedisIsolation = Literal["auto", "db", "prefix"]

DB_RESET_CHOICES: tuple[DbReset, ...] = ("rollback", "truncate")
REDIS_ISOLATION_CHOICES: tuple[RedisIsolation, ...] = ("auto", "db", "prefix")


@dataclass(frozen=True)
class Setting(Generic[T]):
    """A resolved value and where it came from."""

    value: T
    source: Source


@dataclass(frozen=True)
class OptionSpec:
    """One setting, reachable as ``--cachesync-<name>``, ini ``cachesync_<name>`` and env."""

    name: str
    help: str
    kind: Literal["str", "bool", "choice", "list", "patterns", "paths", "seconds"]
    choices: tuple[str, ...] = ()

    @property
    def flag(self) -> str:
        return "--cachesync-" + self.name.replace("_", "-")

    @property
    def dest(self) -> str:
        return "cachesync_" + self.name

    @property
    def ini(self) -> str:
        return "cachesync_" + self.name

    @property
    def env(self) -> str:
        return "CACHESYNC_" + self.name.upper()


OPTIONS: tuple[OptionSpec, ...] = (
    OptionSpec(
        "redis_url",
        "Redis server for tests: redis://, rediss:// or unix:// URL; the database number is the "
        "base for xdist workers. Default: an embedded fakeredis server per session and worker.",
        "str",
    ),
    OptionSpec(
        "db_url",
        "SQLAlchemy URL naming database X: the plugin creates and drops its own test_X "
        "(test_X_gwN per xdist worker). Default: a SQLite file per worker in pytest's basetemp.",
        "str",
    ),
    OptionSpec(
        "db_reset",
        "How tests are kept apart in SQL: 'rollback' (each test inside a transaction rolled back "
        "at teardown; default) or 'truncate' (rows deleted before each test, for apps that commit "
        "through their own engine).",
        "choice",
        DB_RESET_CHOICES,
    ),
    OptionSpec(
        "redis_isolation",
        "Keyspace per xdist worker: 'db' (own database number), 'prefix' (key prefix "
        "cachesync:<worker>: in the base database) or 'auto' (db when the server has enough "
        "databases; default).",
        "choice",
        REDIS_ISOLATION_CHOICES,
    ),
    OptionSpec(
        "allow_remote",
        "Allow Redis and database hosts that are not loopback or a unix socket.",
        "bool",
    ),
    OptionSpec(
        "allow_foreign_redis",
        "Allow flushing a Redis database that holds keys without the plugin's test sentinel.",
        "bool",
    ),
    OptionSpec(
        "reuse_db",
        "Keep the test database at the end of the session and reuse it in the next one.",
        "bool",
    ),
    OptionSpec(
        "metadata",
        "Import path 'module:attr' of the MetaData (or declarative base) whose tables the "
        "default cachesync_metadata fixture returns.",
        "str",
    ),
    OptionSpec(
        "redis_targets",
        "Attributes 'module:attr' replaced by the test's Redis client during every test "
        "(ini: one per line; command line and env: comma separated).",
        "list",
    ),
    OptionSpec(
        "clock_engine",
        "Library that moves Python's clock for cachesync_clock: 'time-machine', 'freezegun' or "
        "'auto' (time-machine when installed, it is faster; default).",
        "choice",
        ENGINE_CHOICES,
    ),
    OptionSpec(
        "cache_patterns",
        "Glob patterns of the Redis keys that are cache, e.g. 'users:* user:* parking_lot*' "
        "(space or comma separated; ini: also one per line). Other keys are state. Default: "
        "none, and the staleness checks refuse to run until it is set.",
        "patterns",
    ),
    OptionSpec(
        "strict",
        "Replay every GET of cachesync_client with the cache bypassed and fail a test that "
        "reads data staler than the allowed staleness.",
        "bool",
    ),
    OptionSpec(
        "allowed_staleness",
        "Seconds (clock time since the write that changed the answer) a read of "
        "cachesync_client may be stale in strict mode. Default 0: read-your-writes.",
        "seconds",
    ),
    OptionSpec(
        "oracle_skip",
        "Glob patterns of request paths whose GETs strict mode passes through without replay, "
        "e.g. '/admin/redis-dashboard /health/*' (space or comma separated; matched on the path "
        "without its query string; '*' also matches '/'): ops endpoints that describe Redis "
        "itself (TTLs, counts, latency) rather than data. Default: none, every GET is checked.",
        "paths",
    ),
    OptionSpec(
        "ttl_bounds",
        "Maximum TTL per cache pattern, e.g. 'users:*=10 parking_lot*=10'; when set, every "
        "test that uses the plugin's Redis fails at teardown if it wrote a cache key with no "
        "TTL or a longer one.",
        "str",
    ),
    OptionSpec(
        "report",
        "Write the cache figures of the run (hits, misses, stale reads per pattern) as JSON to "
        "this path.",
        "str",
    ),
    OptionSpec(
        "invalidation_map",
        "Record what each cache fill read and what each write changed and invalidated, for the "
        "invalidation map (on by default; 'false' in the ini or environment turns it off).",
        "bool",
    ),
    OptionSpec(
        "invalidation_exempt",
        "Write sites allowed to leave keys of a pattern cached, as 'METHOD /rule -> pattern', "
        "e.g. 'POST /reservations -> users:*' (ini: one per line; command line and env: comma "
        "separated). Strict mode fails on other missing invalidations.",
        "list",
    ),
    OptionSpec(
        "map",
        "Write the invalidation map of the run (write sites x key patterns) as a self-contained "
        "HTML page to this path.",
        "str",
    ),
)

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


@dataclass(frozen=True)
class Settings:
    """Every setting of the plugin, each with its source."""

    redis_url: Setting[str | None]
    db_url: Setting[str | None]
    db_reset: Setting[DbReset]
    redis_isolation: Setting[RedisIsolation]
    allow_remote: Setting[bool]
    allow_foreign_redis: Setting[bool]
    reuse_db: Setting[bool]
    metadata: Setting[str | None]
    redis_targets: Setting[tuple[str, ...]]
    clock_engine: Setting[EngineChoice]
    cache_patterns: Setting[tuple[str, ...]]
    strict: Setting[bool]
    allowed_staleness: Setting[float]
    oracle_skip: Setting[tuple[str, ...]]
    ttl_bounds: Setting[str | None]
    report: Setting[str | None]
    invalidation_map: Setting[bool]
    invalidation_exempt: Setting[tuple[str, ...]]
    map: Setting[str | None]


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("cachesync", "clean Redis and SQL stores per test (pytest-cachesync)")
    for spec in OPTIONS:
        help_text = f"{spec.help} [ini: {spec.ini}, env: {spec.env}]"
        if spec.kind == "bool":
            group.addoption(
                spec.flag, action="store_true", default=None, dest=spec.dest, help=help_text
            )
            parser.addini(spec.ini, spec.help, type="bool", default=None)
        elif spec.kind == "list":
            group.addoption(
                spec.flag, default=None, dest=spec.dest, metavar="TARGETS", help=help_text
            )
            parser.addini(spec.ini, spec.help, type="linelist", default=[])
        elif spec.kind in ("patterns", "paths", "seconds"):
            metavar = {"patterns": "PATTERNS", "paths": "PATHS"}.get(spec.kind, "SECONDS")
            group.addoption(
                spec.flag, default=None, dest=spec.dest, metavar=metavar, help=help_text
            )
            parser.addini(spec.ini, spec.help, default=None)
        else:
            group.addoption(
                spec.flag,
                default=None,
                dest=spec.dest,
                choices=spec.choices or None,
                help=help_text,
            )
            parser.addini(spec.ini, spec.help, default=None)


def _parse_bool(raw: str, where: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise pytest.UsageError(f"{where}: expected a boolean (1/0, true/false, yes/no), got {raw!r}.")


def _split_list(raw: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.replace("\n", ",").split(",") if part.strip())


def _parse_seconds(raw: str, where: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise pytest.UsageError(f"{where}: expected a number of seconds, got {raw!r}.") from None
    if not math.isfinite(value) or value < 0:
        raise pytest.UsageError(f"{where}: expected a non-negative number of seconds, got {raw!r}.")
    return value


def _parse_paths(raw: str, where: str) -> tuple[str, ...]:
    try:
        return parse_path_patterns(raw)
    except ValueError as error:
        raise pytest.UsageError(f"{where}: {error}.") from None


def _convert(spec: OptionSpec, raw: str, where: str) -> object:
    if spec.kind == "bool":
        return _parse_bool(raw, where)
    if spec.kind == "list":
        return _split_list(raw)
    if spec.kind == "patterns":
        return parse_patterns(raw)
    if spec.kind == "paths":
        return _parse_paths(raw, where)
    if spec.kind == "seconds":
        return _parse_seconds(raw.strip(), where)
    return _check_choice(spec, raw.strip(), where)


def _check_choice(spec: OptionSpec, value: str, where: str) -> str:
    if spec.choices and value not in spec.choices:
        raise pytest.UsageError(f"{where}: {value!r} is not one of {', '.join(spec.choices)}.")
    return value


def _raw_setting(
    config: pytest.Config, spec: OptionSpec, environ: Callable[[str], str | None]
) -> tuple[object, Source]:
    cli = config.getoption(spec.dest, default=None)
    if cli is not None:
        if spec.kind in ("bool", "choice"):
            return cli, "cli"
        return _convert(spec, str(cli), f"option {spec.flag}"), "cli"
    env = environ(spec.env)
    if env is not None and (env.strip() or spec.kind == "bool"):
        return _convert(spec, env, f"environment variable {spec.env}"), "env"
    ini = config.getini(spec.ini)
    if spec.kind == "list":
        if ini:
            return tuple(str(line) for line in ini), "ini"
    elif spec.kind == "bool":
        if ini is not None:
            return bool(ini), "ini"
    elif ini and str(ini).strip():
        return _convert(spec, str(ini), f"ini option {spec.ini}"), "ini"
    return _DEFAULTS[spec.name], "default"


_DEFAULTS: dict[str, object] = {
    "redis_url": None,
    "db_url": None,
    "db_reset": "rollback",
    "redis_isolation": "auto",
    "allow_remote": False,
    "allow_foreign_redis": False,
    "reuse_db": False,
    "metadata": None,
    "redis_targets": (),
    "clock_engine": "auto",
    "cache_patterns": (),
    "strict": False,
    "allowed_staleness": 0.0,
    "oracle_skip": (),
    "ttl_bounds": None,
    "report": None,
    "invalidation_map": True,
    "invalidation_exempt": (),
    "map": None,
}


def resolve(
    config: pytest.Config, environ: Callable[[str], str | None] = os.environ.get
) -> Settings:
    """Resolve every setting with precedence command line > environment > ini > default."""
    values: dict[str, Setting[object]] = {}
    for spec in OPTIONS:
        value, source = _raw_setting(config, spec, environ)
        values[spec.name] = Setting(value, source)
    return Settings(**values)  # type: ignore[arg-type]


def describe_sources(settings: Settings, names: Sequence[str]) -> list[str]:
    """``name=value (source)`` for the given settings that were not left at their default."""
    parts: list[str] = []
    for name in names:
        setting: Setting[object] = getattr(settings, name)
        if setting.source != "default":
            parts.append(f"{name.replace('_', '-')}={_render(setting.value)} ({setting.source})")
    return parts


def _render(value: object) -> str:
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g} s"
    return str(value)
