"""Session-wide state of the plugin, kept on ``config.stash``.

``preflight`` runs at session start (in an xdist controller: for every worker, before any
worker starts), so a refused, busy or unreachable store is one error before any test runs.
The claims it takes against concurrent sessions are held until pytest unconfigures.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from sqlalchemy.engine import URL

from ._options import Settings
from ._workers import Worker, current_worker, planned_workers
from .stores.claims import SessionLocks, hold_stores
from .stores.guard import check_db_url, check_redis_url, parse_db_url
from .stores.redis import KeyspacePlan, RedisKeyspace, plan_keyspace, server_database_count
from .stores.sql import plan_database


@dataclass
class Runtime:
    """What the session fixtures build on."""

    settings: Settings
    worker: Worker
    db_url: URL | None
    redis_databases: int | None = None
    redis_plans: dict[str, KeyspacePlan] = field(default_factory=dict)

    @property
    def redis_plan(self) -> KeyspacePlan:
        return self.redis_plans[self.worker.name]


RUNTIME_KEY = pytest.StashKey[Runtime]()


def configure(config: pytest.Config, settings: Settings) -> Runtime:
    """Validate the URLs (no connection) and remember the settings."""
    allow_remote = settings.allow_remote.value
    redis_url = settings.redis_url.value
    if redis_url is not None:
        check_redis_url(redis_url, allow_remote=allow_remote)
    db_url = parse_db_url(settings.db_url.value) if settings.db_url.value else None
    if db_url is not None:
        check_db_url(db_url, allow_remote=allow_remote)
    bounds = settings.ttl_bounds
    if bounds.value is not None:
        from .staleness.checks import TtlPolicy

        try:
            TtlPolicy.parse(bounds.value)
        except ValueError as error:
            raise pytest.UsageError(f"cachesync ttl-bounds ({bounds.source}): {error}.") from None
    exempt = settings.invalidation_exempt
    if exempt.value:
        from .staleness.map_analysis import parse_exemptions

        try:
            parse_exemptions(exempt.value, exempt.source)
        except ValueError as error:
            raise pytest.UsageError(f"cachesync invalidation-exempt: {error}.") from None
    runtime = Runtime(settings=settings, worker=current_worker(config), db_url=db_url)
    config.stash[RUNTIME_KEY] = runtime
    return runtime


def preflight(config: pytest.Config, runtime: Runtime) -> None:
    """Claim the stores, reach the servers, refuse foreign keyspaces and databases."""
    settings = runtime.settings
    redis_url = settings.redis_url.value
    workers = planned_workers(config)
    if redis_url is not None:
        runtime.redis_databases = server_database_count(redis_url)
    for worker in workers:
        runtime.redis_plans[worker.name] = plan_keyspace(
            redis_url, settings.redis_isolation.value, worker, runtime.redis_databases
        )
    databases = (
        [plan_database(runtime.db_url, worker, None) for worker in workers]
        if runtime.db_url is not None
        else []
    )
    if not runtime.worker.is_xdist:
        # An xdist worker runs under the claims its controller took for every worker.
        locks = SessionLocks()
        config.add_cleanup(locks.release)
        hold_stores(locks, redis_url, list(runtime.redis_plans.values()), databases)
    for index, worker in enumerate(workers):
        if redis_url is not None:
            keyspace = RedisKeyspace.on_server(redis_url, runtime.redis_plans[worker.name])
            try:
                keyspace.claim(allow_foreign=settings.allow_foreign_redis.value)
            finally:
                keyspace.close()
        if databases:
            databases[index].preflight()
    if runtime.worker.name not in runtime.redis_plans:
        runtime.redis_plans[runtime.worker.name] = plan_keyspace(
            redis_url, settings.redis_isolation.value, runtime.worker, runtime.redis_databases
        )
