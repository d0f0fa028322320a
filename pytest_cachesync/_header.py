"""The ``cachesync:`` line of pytest's report header."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ._options import Settings
from ._session import Runtime
from .clock.engines import engine_header
from .stores.guard import mask_db_url, mask_redis_url

_OTHER_SETTINGS = (
    "redis_isolation",
    "allow_remote",
    "allow_foreign_redis",
    "reuse_db",
    "metadata",
    "redis_targets",
)


def _redis_part(runtime: Runtime) -> str:
    setting = runtime.settings.redis_url
    plans = list(runtime.redis_plans.values())
    if setting.value is None:
        where = "fakeredis"
        if plans and plans[0].prefix:
            where += " (key prefix per worker)"
    else:
        where = mask_redis_url(setting.value)
        modes = {plan.mode for plan in plans}
        if modes == {"db"} and len(plans) > 1:
            dbs = sorted(plan.db for plan in plans)
            where += f" [db {dbs[0]}..{dbs[-1]}, one per worker]"
        elif "prefix" in modes:
            where += " [key prefix per worker]"
    return f"redis={where} ({setting.source})"


def _db_part(runtime: Runtime) -> str:
    setting = runtime.settings.db_url
    if runtime.db_url is None:
        return f"db=sqlite file per worker ({setting.source})"
    return f"db={mask_db_url(runtime.db_url)} ({setting.source})"


def header_line(runtime: Runtime, describe: Callable[[Settings, Sequence[str]], list[str]]) -> str:
    reset = runtime.settings.db_reset
    parts = [
        _redis_part(runtime),
        _db_part(runtime),
        f"db-reset={reset.value} ({reset.source})",
        *describe(runtime.settings, _OTHER_SETTINGS),
    ]
    return "cachesync: " + ", ".join(parts)


_STALENESS_SETTINGS = (
    "cache_patterns",
    "strict",
    "allowed_staleness",
    "oracle_skip",
    "ttl_bounds",
    "report",
    "invalidation_map",
    "invalidation_exempt",
    "map",
)


def _shown(value: object) -> str:
    if value is None or value == ():
        return "none"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:g} s"
    if isinstance(value, tuple):
        return " ".join(str(v) for v in value)
    return str(value)


def clock_line(runtime: Runtime) -> str:
    engine = runtime.settings.clock_engine
    return f"cachesync {engine_header(engine.value)} [clock-engine from {engine.source}]"


def staleness_line(runtime: Runtime) -> str:
    parts = []
    for name in _STALENESS_SETTINGS:
        setting = getattr(runtime.settings, name)
        value = setting.value
        # Exemptions hold spaces themselves.
        shown = "; ".join(value) if name == "invalidation_exempt" and value else _shown(value)
        parts.append(f"{name.replace('_', '-')}={shown} ({setting.source})")
    return "cachesync staleness: " + ", ".join(parts)


def header_lines(
    runtime: Runtime, describe: Callable[[Settings, Sequence[str]], list[str]]
) -> list[str]:
    return [header_line(runtime, describe), clock_line(runtime), staleness_line(runtime)]
