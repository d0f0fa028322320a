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
from .stores.redis import KeyspacePlan, RedisKeyspace, plan_keyspace, server_database_count
from .stores.sql import plan_database
from .stores.targets import DatabaseTarget, HostPolicy, RedisTarget, database_target, redis_target


@dataclass
class Runtime:
    """What the session fixtures build on."""

    settings: Settings
    worker: Worker
    redis_target: RedisTarget | None
    db_target: DatabaseTarget | None
    redis_databases: int | None = None
    redis_plans: dict[str, KeyspacePlan] = field(default_factory=dict)

    @property
    def db_url(self) -> URL | None:
        return None if self.db_target is None else self.db_target.url

    @property
    def redis_plan(self) -> KeyspacePlan:
        return self.redis_plans[self.worker.name]


RUNTIME_KEY = pytest.StashKey[Runtime]()


def configure(config: pytest.Config, settings: Settings) -> Runtime:
    """Parse and judge the URLs (no connection) and remember the settings."""
    policy = HostPolicy(
        settings.allow_remote.value, frozenset(h.lower() for h in settings.allow_hosts.value)
    )
    redis_url = settings.redis_url.value
    target = redis_target(redis_url, policy) if redis_url is not None else None
    db_url = settings.db_url.value
    db_target = database_target(db_url, policy) if db_url else None
    bounds = settings.ttl_bounds
    if bounds.value is not None:
        from .staleness.checks import TtlPolicy

        try:
            TtlPolicy.parse(bounds.value)
        except ValueError as error:
            raise pytest.UsageError(f"cachesync ttl-bounds ({bounds.source}): {error}.") from None
    runtime = Runtime(settings, current_worker(config), target, db_target)
    config.stash[RUNTIME_KEY] = runtime
    return runtime


def preflight(config: pytest.Config, runtime: Runtime) -> None:
    """Claim the stores, reach the servers, refuse foreign keyspaces and databases.

    Every worker's keyspace and database is checked before anything is written anywhere, so a
    refusal leaves every store exactly as it was.
    """
    settings = runtime.settings
    target = runtime.redis_target
    workers = planned_workers(config)
    if target is not None:
        runtime.redis_databases = server_database_count(target)
    for worker in workers:
        runtime.redis_plans[worker.name] = plan_keyspace(
            target, settings.redis_isolation.value, worker, runtime.redis_databases
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
        hold_stores(locks, target, list(runtime.redis_plans.values()), databases)
    keyspaces = (
        [RedisKeyspace.on_server(target, runtime.redis_plans[w.name]) for w in workers]
        if target is not None
        else []
    )
    try:
        for keyspace in keyspaces:
            keyspace.check(allow_foreign=settings.allow_foreign_redis.value)
        for database in databases:
            database.preflight()
        for keyspace in keyspaces:
            keyspace.claim()
    finally:
        for keyspace in keyspaces:
            keyspace.close()
    if runtime.worker.name not in runtime.redis_plans:
        runtime.redis_plans[runtime.worker.name] = plan_keyspace(
            target, settings.redis_isolation.value, runtime.worker, runtime.redis_databases
        )
