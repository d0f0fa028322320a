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


@dataclass
class Runtime:
    """What the session fixtures build on."""

    settings: Settings
    worker: Worker
    db_url: URL | None
    redis_databases: int | None = None
    redis_plans: dict[str, KeyspacePlan] = field(default_factory=dict)

    @property
    def redis_url(self) -> str | None:
        """The URL of the configured Redis server; None for the embedded default."""
        target = self.settings.redis_url.value
        return None if target is None else target.url

    @property
    def redis_plan(self) -> KeyspacePlan:
        plan = self.redis_plans.get(self.worker.name)
        if plan is None:
            # The embedded default needs no preflight: its keyspace is planned on first use.
            from .stores.redis import plan_keyspace

            plan = self.redis_plans[self.worker.name] = plan_keyspace(
                self.redis_url,
                self.settings.redis_isolation.value,
                self.worker,
                self.redis_databases,
            )
        return plan


RUNTIME_KEY = pytest.StashKey[Runtime]()


def configure(config: pytest.Config, settings: Settings) -> Runtime:
    """Validate the URLs (no connection) and remember the settings."""
    allow_remote = settings.allow_remote.value
    redis_url = settings.redis_url.value
    db_url: URL | None = None
    if redis_url is not None or settings.db_url.value:
        from .stores.guard import check_db_url, check_redis_url, parse_db_url

        if redis_url is not None:
            check_redis_url(redis_url.url, allow_remote=allow_remote)
        if settings.db_url.value:
            db_url = parse_db_url(settings.db_url.value)
            check_db_url(db_url, allow_remote=allow_remote)
    runtime = Runtime(settings=settings, worker=current_worker(config), db_url=db_url)
    config.stash[RUNTIME_KEY] = runtime
    return runtime


def preflight(config: pytest.Config, runtime: Runtime) -> None:
    """Claim the stores, reach the servers, refuse foreign keyspaces and databases."""
    settings = runtime.settings
    redis_url = runtime.redis_url
    if redis_url is None and runtime.db_url is None:
        # Embedded stores private to this process: nothing to claim or reach.
        return
    from .stores.claims import SessionLocks, hold_stores
    from .stores.redis import RedisKeyspace, plan_keyspace, server_database_count
    from .stores.sql import plan_database

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
