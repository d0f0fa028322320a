"""The cache spy's cost per command, and the oracle client's overhead on a batch of GETs.

Per command: the median of batch times divided by the batch size, for GET on fakeredis and on a
real Redis (db 7), without and with the spy installed. Oracle: a batch of GETs against a small
cache-aside Flask app, through the plain test client and through the oracle (each GET replayed
with the cache bypassed), alternating so drift hits both alike.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import fakeredis
import redis
import sqlalchemy as sa
from flask import Flask, jsonify

from bench._table import Result, markdown_table, median, ratio, timings_ms
from pytest_cachesync import OracleClient, RedisSpy
from pytest_cachesync.staleness.bypass import Bypass

SPY_REDIS_URL = "redis://127.0.0.1:6379/7"
PATTERNS = ("lot:*", "lots:*")
BATCH = 500
ROUNDS = 21
GETS = 40


def _per_command_ns(client: redis.Redis) -> tuple[float, float]:
    """Median ns per GET without and with the spy, rounds alternating."""
    client.set("lot:1", "x" * 100, ex=60)

    def batch() -> None:
        for _ in range(BATCH):
            client.get("lot:1")

    plain: list[float] = []
    spied: list[float] = []
    for _ in range(ROUNDS):
        plain += timings_ms(batch, 1)
        with RedisSpy(client, PATTERNS):  # a test's figures, not a session's: memory stays flat
            spied += timings_ms(batch, 1)
    client.delete("lot:1")
    return median(plain) * 1e6 / BATCH, median(spied) * 1e6 / BATCH


def _real_client() -> redis.Redis | None:
    client = redis.Redis.from_url(SPY_REDIS_URL, socket_timeout=2)
    try:
        client.ping()
    except redis.RedisError:
        return None
    return client


def _spy_rows() -> list[Result]:
    rows = []
    backends: list[tuple[str, redis.Redis | None]] = [
        ("fakeredis", fakeredis.FakeRedis(server=fakeredis.FakeServer())),
        ("redis db 7", _real_client()),
    ]
    for name, client in backends:
        if client is None:
            rows.append(Result(f"spy: GET on {name}", None, "ns/cmd", note="server unavailable"))
            continue
        without, with_spy = _per_command_ns(client)
        rows.append(Result(f"spy: GET on {name}, without spy", without, "ns/cmd"))
        rows.append(
            Result(
                f"spy: GET on {name}, with spy",
                with_spy,
                "ns/cmd",
                ratio=ratio(with_spy, without),
                versus="without spy",
                note=f"+{with_spy - without:,.0f} ns per command",
            )
        )
    return rows


def _toy_app(client: redis.Redis, engine: sa.Engine) -> Flask:
    app = Flask("bench_toy")

    @app.get("/lots/<int:lot_id>")
    def get_lot(lot_id: int) -> Any:
        key = f"lot:{lot_id}"
        raw = client.get(key)
        if raw is not None:
            return jsonify(json.loads(raw))
        with engine.connect() as conn:
            row = conn.execute(sa.text("SELECT id, name FROM lots WHERE id = :id"), {"id": lot_id})
            value = dict(row.mappings().one())
        client.set(key, json.dumps(value), ex=10)
        return jsonify(value)

    return app


def _oracle_rows() -> list[Result]:
    with tempfile.TemporaryDirectory() as folder:
        engine = sa.create_engine(f"sqlite:///{Path(folder) / 'bench.db'}")
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE lots (id INTEGER PRIMARY KEY, name TEXT)"))
            conn.execute(
                sa.text("INSERT INTO lots (id, name) VALUES (:id, :name)"),
                [{"id": i, "name": f"lot {i}"} for i in range(1, 11)],
            )
        client = fakeredis.FakeRedis(server=fakeredis.FakeServer())
        app = _toy_app(client, engine)
        with RedisSpy(client, PATTERNS) as spy:
            oracle = OracleClient(app.test_client(), spy, Bypass(spy))
            plain = app.test_client()

            def batch(get: Callable[[str], object]) -> Callable[[], None]:
                def run() -> None:
                    for n in range(GETS):
                        get(f"/lots/{n % 10 + 1}")

                return run

            plain_ms, oracle_ms = [], []
            for _ in range(ROUNDS):
                plain_ms += timings_ms(batch(plain.get), 1)
                oracle_ms += timings_ms(batch(oracle.get), 1)
                spy.reset()
                oracle.checks.clear()
        engine.dispose()
    without, with_oracle = median(plain_ms) / GETS, median(oracle_ms) / GETS
    return [
        Result("oracle: GET through the test client", without, "ms/GET"),
        Result(
            "oracle: GET through the oracle (replayed bypassed)",
            with_oracle,
            "ms/GET",
            ratio=ratio(with_oracle, without),
            versus="test client",
        ),
    ]


def main() -> list[Result]:
    print(f"== spy: cost per command ({BATCH} GETs x {ROUNDS}), oracle on {GETS} GETs")
    rows = _spy_rows() + _oracle_rows()
    print(markdown_table(rows))
    return rows


if __name__ == "__main__":
    main()
