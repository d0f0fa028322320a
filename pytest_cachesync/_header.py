"""The ``cachesync`` lines of pytest's report header, shown when the plugin is configured."""

from __future__ import annotations

from ._options import OPTIONS, Section, Setting, shown
from ._session import Runtime
from .clock.engines import engine_header

# Shown first on the stores line, always, with their own wording.
_STORES_FIRST = ("redis_url", "db_url", "db_reset")


def _redis_part(runtime: Runtime) -> str:
    setting = runtime.settings.redis_url
    plans = list(runtime.redis_plans.values()) or [runtime.redis_plan]
    if setting.value is None:
        where = "fakeredis"
        if plans and plans[0].prefix:
            where += " (key prefix per worker)"
    else:
        where = setting.value.masked
        modes = {plan.mode for plan in plans}
        if modes == {"db"} and len(plans) > 1:
            dbs = sorted(plan.db for plan in plans)
            where += f" [db {dbs[0]}..{dbs[-1]}, one per worker]"
        elif "prefix" in modes:
            where += " [key prefix per worker]"
    return f"redis={where} ({setting.source})"


def _db_part(runtime: Runtime) -> str:
    from .stores.guard import mask_db_url

    setting = runtime.settings.db_url
    if runtime.db_url is None:
        return f"db=sqlite file per worker ({setting.source})"
    return f"db={mask_db_url(runtime.db_url)} ({setting.source})"


def _render(value: object) -> str:
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    return shown(value)


def _settings(runtime: Runtime, section: Section) -> list[tuple[str, Setting[object]]]:
    return [
        (option.name.replace("_", "-"), getattr(runtime.settings, option.name))
        for option in OPTIONS
        if option.section == section
    ]


def header_line(runtime: Runtime) -> str:
    reset = runtime.settings.db_reset
    parts = [
        _redis_part(runtime),
        _db_part(runtime),
        f"db-reset={reset.value} ({reset.source})",
    ]
    for name, setting in _settings(runtime, "stores"):
        if name.replace("-", "_") not in _STORES_FIRST and setting.source != "default":
            parts.append(f"{name}={_render(setting.value)} ({setting.source})")
    return "cachesync: " + ", ".join(parts)


def clock_line(runtime: Runtime) -> str:
    engine = runtime.settings.clock_engine
    return f"cachesync {engine_header(engine.value)} [clock-engine from {engine.source}]"


def staleness_line(runtime: Runtime) -> str:
    parts = [
        f"{name}={shown(setting.value)} ({setting.source})"
        for name, setting in _settings(runtime, "staleness")
    ]
    return "cachesync staleness: " + ", ".join(parts)


def header_lines(runtime: Runtime) -> list[str]:
    return [header_line(runtime), clock_line(runtime), staleness_line(runtime)]
