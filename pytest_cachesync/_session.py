"""Session-wide state of the plugin, kept on ``config.stash``.

``preflight`` runs at session start (in an xdist controller: for every worker, before any
worker starts), so a refused, busy or unreachable store is one error before any test runs.
The claims it takes against concurrent sessions are held until pytest unconfigures.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pytest

from ._options import Settings
from ._workers import Worker, current_worker, planned_workers

# The stores are imported when a setting names a server, or when a test first asks for one: a
# session that never uses the plugin imports neither redis nor SQLAlchemy.
if TYPE_CHECKING:
    from sqlalchemy.engine import URL

    from .stores.redis import KeyspacePlan
    from .stores.targets import RedisTarget


@dataclass
class Runtime:
    """What the session fixtures build on."""

    settings: Settings
    worker: Worker
    db_url: URL | None
    redis_databases: int | None = None
    redis_plans: dict[str, KeyspacePlan] = field(default_factory=dict)

    @property
    def redis_target(self) -> RedisTarget | None:
        """The configured Redis server, parsed and judged; None for the embedded default."""
        return self.settings.redis_url.value

    @property
    def redis_plan(self) -> KeyspacePlan:
        plan = self.redis_plans.get(self.worker.name)
        if plan is None:
            # The embedded default needs no preflight: its keyspace is planned on first use.
            from .stores.redis import plan_keyspace

            plan = self.redis_plans[self.worker.name] = plan_keyspace(
                self.redis_target,
                self.settings.redis_isolation.value,
                self.worker,
                self.redis_databases,
            )
        return plan


RUNTIME_KEY = pytest.StashKey[Runtime]()


def configure(config: pytest.Config, settings: Settings) -> Runtime:
    """Judge the addresses the clients would dial (no connection) and remember the settings."""
    redis_target = settings.redis_url.value
    db_url: URL | None = None
    if redis_target is not None or settings.db_url.value:
        from .stores.targets import HostPolicy, database_target, judge_redis

        policy = HostPolicy(
            settings.allow_remote.value, frozenset(h.lower() for h in settings.allow_hosts.value)
        )
        if redis_target is not None:
            judge_redis(redis_target, policy)
        if settings.db_url.value:
            db_url = database_target(settings.db_url.value, policy).url
    runtime = Runtime(settings=settings, worker=current_worker(config), db_url=db_url)
    config.stash[RUNTIME_KEY] = runtime
    return runtime


def preflight(config: pytest.Config, runtime: Runtime) -> None:
    """Claim the stores, reach the servers, refuse foreign keyspaces and databases.

    Every worker's keyspace and database is checked before anything is written anywhere, so a
    refusal leaves every store exactly as it was.
    """
    settings = runtime.settings
    target = runtime.redis_target
    if target is None and runtime.db_url is None:
        # Embedded stores private to this process: nothing to claim or reach.
        return
    from .stores.claims import SessionLocks, hold_stores
    from .stores.redis import RedisKeyspace, plan_keyspace, server_database_count
    from .stores.sql import plan_database

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
