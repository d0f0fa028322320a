"""Fixtures for the spy tests: Redis clients (fakeredis and real), an engine, a toy app.

The toy app is a parking-lot API with three cache disciplines: naive cache-aside
(get-from-db-then-SETEX), lease-guarded (SET NX lease + Lua compare-and-set fill), and a
planted bug (a write that forgets its DEL).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import fakeredis
import pytest
import redis
import sqlalchemy as sa
from flask import Flask, jsonify, request
from real_stores import claimed_real_redis
from sqlalchemy.engine import Engine

from pytest_cachesync import RedisSpy
from pytest_cachesync.staleness.bypass import Bypass
from pytest_cachesync.staleness.sql_recorder import SqlRecorder

CACHE_PATTERNS = ("lots:*", "lot:*")
TTL = 10

metadata = sa.MetaData()
lots = sa.Table(
    "lots",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(50), nullable=False),
    sa.Column("price", sa.Integer, nullable=False),
)

# Sets the key to the value only while it still holds the caller's lease; a DEL in between
# (an invalidation) kills the lease and the stale fill is dropped.
FILL_IF_LEASED = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
  return 1
end
return 0
"""


class FakeClock:
    """Frozen time that moves only on advance(); fakeredis TTLs follow it via time-machine."""

    def __init__(self) -> None:
        import time_machine

        self._travel = time_machine.travel(datetime(2030, 1, 1, tzinfo=UTC), tick=False)
        self._traveller: Any = None

    def __enter__(self) -> FakeClock:
        self._traveller = self._travel.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._travel.stop()

    def now(self) -> float:
        return time.time()

    def advance(self, seconds: float) -> None:
        self._traveller.shift(seconds)


def create_toy_app(
    client: redis.Redis, engine: Engine, *, mode: str = "naive", forget_invalidation: bool = False
) -> Flask:
    app = Flask("toy")
    fill_if_leased = client.register_script(FILL_IF_LEASED)

    def lot_row(lot_id: int) -> dict[str, Any] | None:
        with engine.connect() as conn:
            row = conn.execute(sa.select(lots).where(lots.c.id == lot_id)).mappings().first()
        return dict(row) if row else None

    def cached(key: str, load: Any) -> Any:
        raw = client.get(key)
        if raw is not None and not raw.startswith(b"L:"):
            return json.loads(raw)
        if mode == "naive":
            value = load()
            client.execute_command("SETEX", key, TTL, json.dumps(value))
            return value
        token = f"L:{uuid.uuid4().hex}"
        leased = client.set(key, token, nx=True, px=5000)
        value = load()
        if leased:
            fill_if_leased(keys=[key], args=[token, json.dumps(value), TTL])
        return value

    @app.before_request
    def count_requests() -> None:
        # State, not cache: a per-client request counter with its own TTL.
        client.incr("rate_limit:127.0.0.1")
        client.expire("rate_limit:127.0.0.1", 3600)

    @app.get("/lots/<int:lot_id>")
    def get_lot(lot_id: int) -> Any:
        value = cached(f"lot:{lot_id}", lambda: lot_row(lot_id))
        return (jsonify(value), 200) if value else (jsonify(error="not found"), 404)

    @app.get("/lots")
    def list_lots() -> Any:
        def load() -> list[dict[str, Any]]:
            with engine.connect() as conn:
                return [
                    dict(r) for r in conn.execute(sa.select(lots).order_by(lots.c.id)).mappings()
                ]

        return jsonify(cached("lots:all", load))

    @app.put("/lots/<int:lot_id>")
    def update_lot(lot_id: int) -> Any:
        body = request.get_json()
        with engine.begin() as conn:
            conn.execute(sa.update(lots).where(lots.c.id == lot_id).values(**body))
        if not forget_invalidation:
            client.delete(f"lot:{lot_id}", "lots:all")
        return jsonify(ok=True)

    return app


@pytest.fixture(params=["fakeredis", "redis"])
def redis_client(request: pytest.FixtureRequest) -> redis.Redis:
    """fakeredis, and the plugin's real keyspace when the run asks for a real Redis."""
    if request.param == "fakeredis":
        return fakeredis.FakeRedis(server=fakeredis.FakeServer())
    return claimed_real_redis(request)


@pytest.fixture
def fake_redis() -> redis.Redis:
    return fakeredis.FakeRedis(server=fakeredis.FakeServer())


@pytest.fixture
def engine(tmp_path: Any) -> Iterator[Engine]:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'toy.db'}")
    metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(
            sa.insert(lots),
            [{"id": 1, "name": "North", "price": 2}, {"id": 2, "name": "South", "price": 3}],
        )
    yield engine
    engine.dispose()


@pytest.fixture
def spy(redis_client: redis.Redis) -> Iterator[RedisSpy]:
    with RedisSpy(redis_client, CACHE_PATTERNS) as installed:
        yield installed


@pytest.fixture
def sql(engine: Engine) -> Iterator[SqlRecorder]:
    with SqlRecorder(engine) as recorder:
        yield recorder


@pytest.fixture
def bypass(spy: RedisSpy, sql: SqlRecorder) -> Bypass:
    return Bypass(spy, sql=sql)
