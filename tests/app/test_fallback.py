"""Redis down or timing out: database fallback, one warning per request, recovery, no stale data."""

from __future__ import annotations

import logging
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa
from appkit import AppKit
from flask import Flask
from redis.backoff import NoBackoff
from redis.retry import Retry

from sample_app import create_app

PORT = 6401


def _free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


class ThrowawayRedis:
    """A redis-server on 127.0.0.1:PORT that a test can stop and start again."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(PORT),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
        )
        probe = redis.Redis(port=PORT, socket_timeout=0.2)
        for _ in range(100):
            try:
                probe.ping()
                return
            except redis.ConnectionError:
                time.sleep(0.02)  # waiting for a process to start, not for a TTL
        raise RuntimeError("throwaway redis-server did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=5)
            self.process = None


@pytest.fixture
def throwaway_redis(tmp_path: Path) -> Iterator[ThrowawayRedis]:
    if shutil.which("redis-server") is None or not _free(PORT):
        pytest.skip(f"needs redis-server and a free port {PORT}")
    server = ThrowawayRedis(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def fragile_app(throwaway_redis: ThrowawayRedis, db_bind: sa.Engine) -> Flask:
    return create_app(
        {"APP_ENV": "testing", "REDIS_URL": f"redis://127.0.0.1:{PORT}/0"}, engine=db_bind
    )


def _cache_warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        r for r in caplog.records if r.name == "sample_app.cache" and r.levelno == logging.WARNING
    ]


# The app is pointed at a server that is not the test's on purpose: a dead port.
@pytest.mark.cachesync(allow_connections=["redis://localhost:6409/*"])
def test_unreachable_redis_falls_back_with_one_warning_per_request(
    db_bind: sa.Engine, caplog: pytest.LogCaptureFixture
) -> None:
    dead = redis.Redis(
        port=6409, socket_timeout=0.2, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0)
    )
    app = create_app({"APP_ENV": "testing"}, redis_client=dead, engine=db_bind)
    kit = AppKit(app, app.test_client(), dead)
    lot = kit.lot()
    kit.admin()
    caplog.set_level(logging.WARNING, logger="sample_app.cache")
    headers = kit.headers("root")  # login works without Redis
    assert len(_cache_warnings(caplog)) == 1
    for method, path in [
        ("get", "/parking-lots"),
        ("get", f"/parking-lots/{lot}"),
        ("get", "/users"),
        ("post", "/admin/clear-cache"),
        ("get", "/admin/redis-dashboard"),
    ]:
        caplog.clear()
        response = getattr(kit.client, method)(path, headers=headers)
        assert response.status_code == 200, (path, response.get_json())
        assert len(_cache_warnings(caplog)) == 1, path
    booked = kit.client.post("/reservations", json={"lot_id": lot}, headers=headers)
    assert booked.status_code == 201
    assert kit.client.get(f"/parking-lots/{lot}").get_json()["available_spots"] == 2
    health = kit.client.get("/health/redis")
    assert health.status_code == 503
    assert health.get_json()["status"] == "unavailable"


@pytest.mark.cachesync(allow_connections=[f"redis://*:{PORT}/*"])
def test_redis_outage_and_recovery_serve_no_stale_value(
    fragile_app: Flask, throwaway_redis: ThrowawayRedis, caplog: pytest.LogCaptureFixture
) -> None:
    probe = redis.Redis(port=PORT)
    kit = AppKit(fragile_app, fragile_app.test_client(), probe)
    lot = kit.lot(spots=2)
    kit.admin()
    headers = kit.headers("root")
    assert kit.client.get("/health/redis").status_code == 200
    kit.client.get(f"/parking-lots/{lot}")
    assert kit.cached(f"parking_lot:{lot}")["available_spots"] == 2

    # The server keeps its data across the outage (a restart from its snapshot, or a network
    # partition): the old value is still there when it comes back.
    probe.save()
    throwaway_redis.stop()
    caplog.set_level(logging.WARNING, logger="sample_app.cache")
    booked = kit.client.post("/reservations", json={"lot_id": lot}, headers=headers)
    assert booked.status_code == 201
    assert kit.client.get(f"/parking-lots/{lot}").get_json()["available_spots"] == 1
    assert kit.client.get("/health/redis").status_code == 503

    throwaway_redis.start()
    assert kit.cached(f"parking_lot:{lot}")["available_spots"] == 2  # stale copy survived
    response = kit.client.get(f"/parking-lots/{lot}")
    assert response.status_code == 200
    assert response.get_json()["available_spots"] == 1
    assert kit.cached(f"parking_lot:{lot}")["available_spots"] == 1
    assert kit.client.get("/health/redis").status_code == 200
