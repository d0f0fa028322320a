"""The ``cachesync:`` line of pytest's report header."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from .guard import mask_db_url, mask_redis_url
from .runtime import Runtime
from .settings import Settings

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
