"""Per-test cost of the plugin's isolation of Redis + SQL against a no-isolation control.

Each "test" writes 3 keys and 2 rows. The plugin's per-test work (Redis reset before, sentinel
after; SQL rollback scope or truncation of the written tables) is measured around it, as are
common alternatives, all in the same run. Real servers come from CACHESYNC_REDIS_URL and
CACHESYNC_DB_URL (skipped when unset).

    .venv/bin/python -m bench.isolation
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import redis
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from pytest_cachesync._workers import MAIN
from pytest_cachesync.stores.engines import make_engine
from pytest_cachesync.stores.redis import RedisKeyspace, plan_keyspace, server_database_count
from pytest_cachesync.stores.rollback import RollbackScope
from pytest_cachesync.stores.sql import SqliteFileDatabase, TestDatabase, plan_database
from pytest_cachesync.stores.targets import HostPolicy, redis_target
from pytest_cachesync.stores.truncate import Truncator, WriteTracker

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "400"))
SLOW_ROUNDS = 8

metadata = sa.MetaData()
items = sa.Table(
    "items",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(50), nullable=False),
)
tags = sa.Table(
    "tags",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("item_id", sa.ForeignKey("items.id"), nullable=False),
)


Step = Callable[[], None]


def _noop() -> None:
    pass


def timed(setup: Step, body: Step, teardown: Step, rounds: int) -> tuple[float, float]:
    """Median ms of the isolation work (setup + teardown) and of the whole test."""
    isolation: list[float] = []
    total: list[float] = []
    for index in range(rounds + min(10, rounds)):
        t0 = time.perf_counter()
        setup()
        t1 = time.perf_counter()
        body()
        t2 = time.perf_counter()
        teardown()
        t3 = time.perf_counter()
        if index >= min(10, rounds):
            isolation.append((t1 - t0) + (t3 - t2))
            total.append(t3 - t0)
    return statistics.median(isolation) * 1000, statistics.median(total) * 1000


def write_keys_and_rows(client: redis.Redis, session: Session) -> None:
    client.set("user:1", "a")
    client.set("users:all", "b")
    client.set("lot:1", "c")
    session.execute(items.insert().values(name="x"))
    last = sa.select(sa.func.max(items.c.id)).scalar_subquery()
    session.execute(tags.insert().values(item_id=last))
    session.commit()


class Variants:
    """Each way of isolating a test, as setup/body/teardown steps on the same stores."""

    def __init__(
        self,
        keyspace: RedisKeyspace,
        redis_url: str | None,
        engine: sa.Engine,
        database: TestDatabase,
    ) -> None:
        self.keyspace = keyspace
        self.redis_url = redis_url
        self.engine = engine
        self.database = database
        self.tracker = WriteTracker(engine, metadata)
        self.truncator = Truncator(engine, metadata, self.tracker)
        self.session: Session | None = None
        self.scope: RollbackScope | None = None

    def body(self) -> None:
        assert self.session is not None
        write_keys_and_rows(self.keyspace.client, self.session)

    def open_plain(self) -> None:
        self.session = Session(self.engine)

    def close_plain(self) -> None:
        assert self.session is not None
        self.session.close()

    def plugin_rollback_setup(self) -> None:
        self.keyspace.reset()
        self.truncator.reset()
        self.scope = RollbackScope(self.engine)
        self.tracker.ignored_connection = self.scope.connection
        self.session = self.scope.session

    def plugin_rollback_teardown(self) -> None:
        assert self.scope is not None
        self.tracker.ignored_connection = None
        self.scope.close()
        self.keyspace.mark()

    def plugin_truncate_setup(self) -> None:
        self.keyspace.reset()
        self.truncator.reset(restart_all_sequences=True)
        self.open_plain()

    def plugin_truncate_teardown(self) -> None:
        self.close_plain()
        # As the fixture does when the next test resets: the deletions leave now.
        self.truncator.start_reset(restart_all_sequences=True)
        self.keyspace.mark()

    def flushdb_fresh_client_setup(self) -> None:
        assert self.redis_url is not None
        fresh = redis.Redis.from_url(self.redis_url)
        fresh.flushdb()
        fresh.close()
        self.open_plain()

    def drop_create_setup(self) -> None:
        metadata.drop_all(self.engine)
        metadata.create_all(self.engine)
        self.open_plain()

    def truncate_cascade_setup(self) -> None:
        with self.engine.begin() as conn:
            conn.exec_driver_sql("TRUNCATE items, tags RESTART IDENTITY CASCADE")
        self.open_plain()

    def create_database_setup(self) -> None:
        self.truncator.close()  # its connection would keep the database from being dropped
        self.engine.dispose()
        self.database.create(reuse=False)
        fresh = sa.create_engine(self.database.url, poolclass=sa.pool.NullPool)
        metadata.create_all(fresh)
        fresh.dispose()
        self.open_plain()


def measure(
    label: str,
    keyspace: RedisKeyspace,
    redis_url: str | None,
    database: TestDatabase,
    goal_ms: float,
) -> bool:
    database.create(reuse=False)
    engine = make_engine(database.url)
    metadata.create_all(engine)
    v = Variants(keyspace, redis_url, engine, database)
    v.tracker.install()
    plans: list[tuple[str, Step, Step, int]] = [
        ("control (no isolation)", v.open_plain, v.close_plain, ROUNDS),
        ("plugin, rollback", v.plugin_rollback_setup, v.plugin_rollback_teardown, ROUNDS),
        ("plugin, truncate", v.plugin_truncate_setup, v.plugin_truncate_teardown, ROUNDS),
    ]
    if redis_url is not None:
        plans.append(
            (
                "FLUSHDB per test, fresh client",
                v.flushdb_fresh_client_setup,
                v.close_plain,
                ROUNDS // 2,
            )
        )
    plans.append(("drop_all/create_all", v.drop_create_setup, v.close_plain, SLOW_ROUNDS * 4))
    if engine.dialect.name == "postgresql":
        plans.append(
            (
                "TRUNCATE ... RESTART IDENTITY CASCADE",
                v.truncate_cascade_setup,
                v.close_plain,
                ROUNDS // 4,
            )
        )
        plans.append(
            ("CREATE DATABASE per test", v.create_database_setup, v.close_plain, SLOW_ROUNDS)
        )
    results: dict[str, tuple[float, float]] = {}
    try:
        for name, setup, teardown, rounds in plans:
            v.truncator.reset()
            results[name] = timed(setup, v.body, teardown, rounds)
    finally:
        v.tracker.uninstall()
        v.truncator.close()
        engine.dispose()
        database.drop()
        keyspace.reset()
        keyspace.mark()
    return report(label, results, goal_ms)


def report(label: str, results: dict[str, tuple[float, float]], goal_ms: float) -> bool:
    control_iso, _control_total = results["control (no isolation)"]
    best = min(results["plugin, rollback"][0], results["plugin, truncate"][0]) - control_iso
    print(f"\n{label}")
    print(
        "  median ms per test; isolation = reset work only (setup + teardown), overhead ="
        " isolation minus the control's"
    )
    print(f"  {'variant':40} {'test':>8} {'isolation':>10} {'overhead':>9} {'x plugin':>9}")
    for name, (iso, total) in results.items():
        overhead = iso - control_iso
        ratio = (
            "" if "plugin" in name or "control" in name else f"{overhead / max(best, 1e-3):8.0f}x"
        )
        print(f"  {name:40} {total:8.3f} {iso:10.3f} {overhead:+9.3f} {ratio:>9}")
    met = True
    for mode in ("rollback", "truncate"):
        overhead = results[f"plugin, {mode}"][0] - control_iso
        ok = overhead <= goal_ms
        met &= ok or mode == "truncate"
        print(
            f"  goal: plugin {mode} overhead {overhead:.3f} ms <= {goal_ms} ms: "
            f"{'MET' if ok else 'NOT MET'}"
        )
    return met


def main() -> int:
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        plan = plan_keyspace(None, "auto", MAIN, None)
        embedded = RedisKeyspace.embedded(plan)
        sqlite = SqliteFileDatabase(Path(tmp) / "bench.sqlite3", default=True)
        ok &= measure("embedded: fakeredis + SQLite file", embedded, None, sqlite, 0.3)
    redis_url = os.environ.get("CACHESYNC_REDIS_URL")
    db_url = os.environ.get("CACHESYNC_DB_URL")
    if not (redis_url and db_url):
        print("\nreal servers: skipped (set CACHESYNC_REDIS_URL and CACHESYNC_DB_URL)")
        return 0 if ok else 1
    target = redis_target(redis_url, HostPolicy())
    plan = plan_keyspace(target, "auto", MAIN, server_database_count(target))
    keyspace = RedisKeyspace.on_server(target, plan)
    keyspace.check(allow_foreign=False)
    keyspace.claim()
    database = plan_database(make_url(db_url), MAIN, None)
    database.preflight()
    ok &= measure(
        f"real: {keyspace.where} + {database.describe()}", keyspace, redis_url, database, 1.0
    )
    keyspace.close()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
