"""The plugin's settings: one table, resolved once as command line > environment > ini > default.

Each field of :class:`Settings` is an option: its help, default and parser live on the field,
and the resolved value is the parsed object (a :class:`RedisTarget`, a :class:`TtlPolicy`, a
tuple of patterns), so nothing downstream parses a setting again.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any, Generic, Literal, TypeVar, get_args

import pytest

from .clock.engines import ENGINE_CHOICES, EngineChoice
from .staleness.exemptions import parse_exemptions
from .staleness.patterns import TtlPolicy, parse_path_patterns, parse_patterns
from .stores.targets import RedisTarget

T = TypeVar("T")

Source = Literal["cli", "env", "ini", "default"]
Section = Literal["stores", "clock", "staleness"]
DbReset = Literal["rollback", "truncate"]
RedisIsolation = Literal["auto", "db", "prefix"]

DB_RESET_CHOICES: tuple[DbReset, ...] = get_args(DbReset)
REDIS_ISOLATION_CHOICES: tuple[RedisIsolation, ...] = get_args(RedisIsolation)


@dataclass(frozen=True)
class Setting(Generic[T]):
    """A resolved value and where it came from."""

    value: T
    source: Source


@dataclass(frozen=True)
class Option:
    """One setting, reachable as ``--cachesync-<name>``, ini ``cachesync_<name>`` and env.

    ``kind`` is the shape on the command line and in the ini file: ``flag`` (a boolean),
    ``value`` (one string) or ``lines`` (ini: one per line; elsewhere: comma separated).
    ``parse`` turns the raw text into the setting's value and raises ValueError on bad input.
    ``aliases`` are former names, still read, with a deprecation warning.
    """

    name: str
    help: str
    default: object
    parse: Callable[[str], object]
    kind: Literal["flag", "value", "lines"] = "value"
    metavar: str | None = None
    choices: tuple[str, ...] = ()
    section: Section = "stores"
    aliases: tuple[str, ...] = ()
    also: tuple[str, ...] = ()  # more spellings of the flag, e.g. the singular of a list

    @property
    def flag(self) -> str:
        return flag_of(self.name)

    @property
    def ini(self) -> str:
        return "cachesync_" + self.name

    @property
    def env(self) -> str:
        return "CACHESYNC_" + self.name.upper()


def flag_of(name: str) -> str:
    return "--cachesync-" + name.replace("_", "-")


def _option(**spec: Any) -> dict[str, Option]:
    return {"option": Option(**spec)}


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _bool(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(f"expected a boolean (1/0, true/false, yes/no), got {raw!r}")


def _text(raw: str) -> str | None:
    return raw.strip() or None


def _choice(*choices: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.strip()
        if value not in choices:
            raise ValueError(f"{value!r} is not one of {', '.join(choices)}")
        return value

    return parse


def _lines(raw: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.replace("\n", ",").split(",") if part.strip())


def _seconds(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"expected a number of seconds, got {raw!r}") from None
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"expected a non-negative number of seconds, got {raw!r}")
    return value


def _redis_target(raw: str) -> RedisTarget | None:
    return RedisTarget.parse(raw) if raw.strip() else None


def _ttl_policy(raw: str) -> TtlPolicy | None:
    return TtlPolicy.parse(raw) if raw.strip() else None


def _exemptions(raw: str) -> tuple[str, ...]:
    entries = tuple(line.strip() for line in raw.splitlines() if line.strip())
    if len(entries) == 1:  # command line and environment: comma separated
        entries = _lines(raw)
    parse_exemptions(entries, "")  # raises ValueError naming the bad entry
    return entries


def _lease_prefix(raw: str) -> str:
    if not raw.strip():
        raise ValueError("the lease prefix cannot be empty")
    return raw.strip()


@dataclass(frozen=True)
class Settings:
    """Every setting of the plugin, parsed, each with its source."""

    redis_url: Setting[RedisTarget | None] = field(
        metadata=_option(
            name="redis_url",
            help="Redis server for tests: redis://, rediss:// or unix:// URL; the database number "
            "is the base for xdist workers. Default: an embedded fakeredis server per session"
            " and worker.",
            default=None,
            parse=_redis_target,
            metavar="URL",
        )
    )
    db_url: Setting[str | None] = field(
        metadata=_option(
            name="db_url",
            help="SQLAlchemy URL naming database X: the plugin creates and drops its own test_X "
            "(test_X_gwN per xdist worker). Default: a SQLite file per worker in pytest's "
            "basetemp.",
            default=None,
            parse=_text,
            metavar="URL",
        )
    )
    db_reset: Setting[DbReset] = field(
        metadata=_option(
            name="db_reset",
            help="How tests are kept apart in SQL: 'rollback' (each test inside a transaction "
            "rolled back at teardown; default) or 'truncate' (rows deleted before each test, "
            "for apps that commit through their own engine).",
            default="rollback",
            parse=_choice(*DB_RESET_CHOICES),
            choices=DB_RESET_CHOICES,
        )
    )
    redis_isolation: Setting[RedisIsolation] = field(
        metadata=_option(
            name="redis_isolation",
            help="Keyspace per xdist worker: 'db' (own database number), 'prefix' (key prefix "
            "cachesync:<worker>: in the base database) or 'auto' (db when the server has "
            "enough databases; default).",
            default="auto",
            parse=_choice(*REDIS_ISOLATION_CHOICES),
            choices=REDIS_ISOLATION_CHOICES,
        )
    )
    allow_remote: Setting[bool] = field(
        metadata=_option(
            name="allow_remote",
            help="Allow Redis and database hosts that are not loopback or a unix socket.",
            default=False,
            parse=_bool,
            kind="flag",
        )
    )
    allow_hosts: Setting[tuple[str, ...]] = field(
        metadata=_option(
            name="allow_hosts",
            help="Allow exactly this Redis or database host name (a CI service such as 'redis' "
            "or 'postgres'); repeat --cachesync-allow-host for more (ini: one per line; env: "
            "comma separated).",
            default=(),
            parse=_lines,
            kind="lines",
            metavar="HOST",
            also=("--cachesync-allow-host",),
        )
    )
    keep: Setting[bool] = field(
        metadata=_option(
            name="keep",
            help="Leave the session's keys and rows in real stores at the end, for debugging (by "
            "default the plugin empties what it claimed).",
            default=False,
            parse=_bool,
            kind="flag",
        )
    )
    allow_foreign_redis: Setting[bool] = field(
        metadata=_option(
            name="allow_foreign_redis",
            help="Allow flushing a Redis database that holds keys without the plugin's test "
            "sentinel.",
            default=False,
            parse=_bool,
            kind="flag",
        )
    )
    reuse_db: Setting[bool] = field(
        metadata=_option(
            name="reuse_db",
            help="Keep the test database at the end of the session and reuse it in the next one.",
            default=False,
            parse=_bool,
            kind="flag",
        )
    )
    metadata: Setting[str | None] = field(
        metadata=_option(
            name="metadata",
            help="Import path 'module:attr' of the MetaData (or declarative base) whose tables the"
            " default cachesync_metadata fixture returns.",
            default=None,
            parse=_text,
            metavar="MODULE:ATTR",
        )
    )
    alembic_config: Setting[str | None] = field(
        metadata=_option(
            name="alembic_config",
            help="Path of an alembic.ini: each test database is upgraded to head by the app's "
            "migrations, once per session and worker, instead of cachesync_metadata.create_all "
            "(relative to the ini file when set there, else to the current directory).",
            default=None,
            parse=_text,
            metavar="PATH",
        )
    )
    alembic_template: Setting[bool] = field(
        metadata=_option(
            name="alembic_template",
            help="On PostgreSQL with alembic-config: run the migrations once into a template "
            "database test_X_template (kept, rebuilt when the migrations change) and copy it "
            "for every worker (default: yes; 'no' in ini/env upgrades each worker's database "
            "itself).",
            default=True,
            parse=_bool,
            kind="flag",
        )
    )
    redis_targets: Setting[tuple[str, ...]] = field(
        metadata=_option(
            name="redis_targets",
            help="Attributes 'module:attr' replaced by the test's Redis client during every test "
            "(ini: one per line; command line and env: comma separated).",
            default=(),
            parse=_lines,
            kind="lines",
            metavar="TARGETS",
        )
    )
    flask_caching: Setting[tuple[str, ...]] = field(
        metadata=_option(
            name="flask_caching",
            help="Flask-Caching Cache objects 'module:attr' whose RedisCache / RedisSentinelCache "
            "backends use the test's Redis during every test (ini: one per line; command line "
            "and env: comma separated).",
            default=(),
            parse=_lines,
            kind="lines",
            metavar="CACHES",
        )
    )
    clock_engine: Setting[EngineChoice] = field(
        metadata=_option(
            name="clock_engine",
            help="Library that moves Python's clock for cachesync_clock: 'time-machine', "
            "'freezegun' or 'auto' (time-machine when installed, it is faster; default).",
            default="auto",
            parse=_choice(*ENGINE_CHOICES),
            choices=ENGINE_CHOICES,
            section="clock",
        )
    )
    cache_patterns: Setting[tuple[str, ...]] = field(
        metadata=_option(
            name="cache_patterns",
            help="Glob patterns of the Redis keys that are cache, e.g. 'users:* user:* "
            "parking_lot:*' (space or comma separated; ini: also one per line). Other keys are"
            " state. Default: none, and the staleness checks refuse to run until it is set.",
            default=(),
            parse=parse_patterns,
            metavar="PATTERNS",
            section="staleness",
        )
    )
    oracle: Setting[bool] = field(
        metadata=_option(
            name="oracle",
            help="Oracle mode: replay every GET of cachesync_client with the cache bypassed and "
            "fail a test that reads data staler than the allowed staleness.",
            default=False,
            parse=_bool,
            kind="flag",
            section="staleness",
            aliases=("strict",),
        )
    )
    allowed_staleness: Setting[float] = field(
        metadata=_option(
            name="allowed_staleness",
            help="Seconds (clock time since the write that changed the answer) a read of "
            "cachesync_client may be stale in oracle mode. Default 0: read-your-writes.",
            default=0.0,
            parse=_seconds,
            metavar="SECONDS",
            section="staleness",
        )
    )
    oracle_skip: Setting[tuple[str, ...]] = field(
        metadata=_option(
            name="oracle_skip",
            help="Glob patterns of request paths whose GETs oracle mode passes through without "
            "replay, e.g. '/admin/redis-dashboard /health/*' (space or comma separated; "
            "matched on the path without its query string; '*' also matches '/'): ops "
            "endpoints that describe Redis itself (TTLs, counts, latency) rather than data. "
            "Default: none.",
            default=(),
            parse=parse_path_patterns,
            metavar="PATHS",
            section="staleness",
        )
    )
    ttl_bounds: Setting[TtlPolicy | None] = field(
        metadata=_option(
            name="ttl_bounds",
            help="Maximum TTL per cache pattern, e.g. 'users:*=10 parking_lot:*=10'; when set, "
            "every test that uses the plugin's Redis fails at teardown if it wrote a cache "
            "key with no TTL or a longer one.",
            default=None,
            parse=_ttl_policy,
            metavar="BOUNDS",
            section="staleness",
        )
    )
    lease_prefix: Setting[str] = field(
        metadata=_option(
            name="lease_prefix",
            help="Values starting with this text are fill leases (a fill in progress), not cached "
            "data: the staleness tools neither count nor compare them. Default: 'L:'.",
            default="L:",
            parse=_lease_prefix,
            metavar="PREFIX",
            section="staleness",
        )
    )
    invalidation_map: Setting[bool] = field(
        metadata=_option(
            name="invalidation_map",
            help="Record what each cache fill read and what each write changed and invalidated, "
            "for the invalidation map (on by default; 'false' in the ini file or environment "
            "turns it off).",
            default=True,
            parse=_bool,
            kind="flag",
            section="staleness",
        )
    )
    invalidation_exempt: Setting[tuple[str, ...]] = field(
        metadata=_option(
            name="invalidation_exempt",
            help="Write sites allowed to leave keys of a pattern cached, as 'METHOD /rule -> "
            "pattern', e.g. 'POST /reservations -> users:*' (ini: one per line; command line "
            "and environment: comma separated). Oracle mode fails on other missing "
            "invalidations.",
            default=(),
            parse=_exemptions,
            kind="lines",
            metavar="EXEMPTIONS",
            section="staleness",
        )
    )
    map: Setting[str | None] = field(
        metadata=_option(
            name="map",
            help="Write the invalidation map of the run (write sites x key patterns) as a "
            "self-contained HTML page to this path.",
            default=None,
            parse=_text,
            metavar="PATH",
            section="staleness",
        )
    )

    report: Setting[str | None] = field(
        metadata=_option(
            name="report",
            help="Write the cache figures of the run (hits, misses, stale reads per pattern) as "
            "JSON to this path.",
            default=None,
            parse=_text,
            metavar="PATH",
            section="staleness",
        )
    )

    @property
    def configured(self) -> bool:
        """Whether any setting was given (command line, environment or ini file)."""
        return any(getattr(self, option.name).source != "default" for option in OPTIONS)


OPTIONS: tuple[Option, ...] = tuple(f.metadata["option"] for f in fields(Settings))


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("cachesync", "clean Redis and SQL stores per test (pytest-cachesync)")
    for option in OPTIONS:
        help_text = f"{option.help} [ini: {option.ini}, env: {option.env}]"
        _add(parser, group, option, option.name, help_text)
        for alias in option.aliases:
            _add(parser, group, option, alias, f"Deprecated name of {option.flag}.")


def _add(
    parser: pytest.Parser, group: pytest.OptionGroup, option: Option, name: str, help_text: str
) -> None:
    flag, dest, ini = flag_of(name), "cachesync_" + name, "cachesync_" + name
    if option.kind == "flag":
        group.addoption(flag, action="store_true", default=None, dest=dest, help=help_text)
        # The off switch, so that the command line can override an ini or env "true".
        group.addoption(
            "--no-" + flag.removeprefix("--"),
            action="store_false",
            default=None,
            dest=dest,
            help=f"Turn {flag} off (overrides {ini} and {option.env}).",
        )
        parser.addini(ini, option.help, type="bool", default=None)
        return
    # A list option may be repeated (--cachesync-allow-host a --cachesync-allow-host b).
    group.addoption(
        flag,
        *(option.also if name == option.name else ()),
        action="append" if option.kind == "lines" else "store",
        default=None,
        dest=dest,
        metavar=option.metavar,
        choices=option.choices or None,
        help=help_text,
    )
    if option.kind == "lines":
        parser.addini(ini, option.help, type="linelist", default=[])
    else:
        parser.addini(ini, option.help, default=None)


def _parsed(option: Option, raw: str, where: str) -> object:
    try:
        return option.parse(raw)
    except ValueError as error:
        raise pytest.UsageError(f"{where}: {error}.") from None


def _raw(
    config: pytest.Config, option: Option, name: str, environ: Callable[[str], str | None]
) -> tuple[object, Source] | None:
    """The value given under ``name`` (the option's own or a former one), parsed."""
    cli = config.getoption("cachesync_" + name, default=None)
    if isinstance(cli, list):
        cli = ",".join(cli)
    if cli is not None:
        value = (
            cli if option.kind == "flag" else _parsed(option, str(cli), f"option {flag_of(name)}")
        )
        return value, "cli"
    env_name = "CACHESYNC_" + name.upper()
    env = environ(env_name)
    if env is not None and (env.strip() or option.kind == "flag"):
        return _parsed(option, env, f"environment variable {env_name}"), "env"
    ini_name = "cachesync_" + name
    ini = config.getini(ini_name)
    if option.kind == "flag":
        return (bool(ini), "ini") if ini is not None else None
    if option.kind == "lines":
        return (
            (_parsed(option, "\n".join(map(str, ini)), f"ini option {ini_name}"), "ini")
            if ini
            else None
        )
    if ini and str(ini).strip():
        return _parsed(option, str(ini), f"ini option {ini_name}"), "ini"
    return None


def resolve(
    config: pytest.Config, environ: Callable[[str], str | None] = os.environ.get
) -> Settings:
    """Resolve every setting with precedence command line > environment > ini > default."""
    values: dict[str, Setting[object]] = {}
    for option in OPTIONS:
        found = _raw(config, option, option.name, environ)
        for alias in option.aliases:
            if found is not None:
                break
            found = _raw(config, option, alias, environ)
            if found is not None:
                config.issue_config_time_warning(
                    pytest.PytestDeprecationWarning(
                        f"cachesync: {flag_of(alias)} (ini cachesync_{alias}, env "
                        f"CACHESYNC_{alias.upper()}) is now {option.flag} (ini {option.ini}, "
                        f"env {option.env})."
                    ),
                    stacklevel=2,
                )
        value, source = found if found is not None else (option.default, "default")
        values[option.name] = Setting(value, source)
    return Settings(**values)  # type: ignore[arg-type]


def shown(value: object) -> str:
    """A setting's value as the report header shows it."""
    if value is None or value == ():
        return "none"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:g} s"
    if isinstance(value, tuple):
        # Entries with spaces of their own (invalidation exemptions) need another separator.
        separator = "; " if any(" " in str(v) for v in value) else " "
        return separator.join(str(v) for v in value)
    if isinstance(value, TtlPolicy):
        return " ".join(f"{p}={s:g}" for p, s in value.bounds.items())
    return str(value)
