"""The sample app under gunicorn on real Redis + PostgreSQL, loaded from a second process.

* cached GETs: `GET /parking-lots/<id>` with the lot already in Redis (production TTL, 300 s).
* uncached GETs: the same requests, but the load process deletes the lot's key (untimed) before
  each one, so each timed request is a miss: lease, database load, fill. Each client thread has a
  lot of its own, so no thread's fill turns another thread's request into a hit.
* fills under a stampede: 100 requests released together on one missing key; the fills are the
  Lua `SET`s of that key that Redis MONITOR shows (one lease winner should fill, the rest wait).

Cached and uncached runs alternate for `ROUNDS` rounds; a throughput is the median round's,
latency percentiles are over every round's requests.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from bench import _services
from bench._loadgen import LoadSpec
from bench._table import Result, markdown_table, median, percentile, ratio

HOST = "127.0.0.1"
PORT = 5101
REDIS_DB = 12
REDIS_URL = f"redis://127.0.0.1:6379/{REDIS_DB}"
DATABASE = "bench_load"
WORKERS = 4
THREADS = 25  # 4 x 25 lets all 100 stampede requests be served at once
CONCURRENCY = 16
CACHED_REQUESTS = 4000
UNCACHED_REQUESTS = 1500
TIME_CAP_S = 20.0
STAMPEDE = 100
ROUNDS = 3
GOAL_SPEEDUP = 5.0
ADMIN = {"username": "admin", "password": "admin123"}  # seed-demo's demo admin
BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class LoadRun:
    latencies_ms: list[float]
    errors: int
    elapsed_s: float

    @property
    def throughput(self) -> float:
        return len(self.latencies_ms) / self.elapsed_s if self.elapsed_s > 0 else 0.0


def combined(runs: list[LoadRun]) -> LoadRun:
    """Every round's latencies, with the elapsed time that gives the median round's throughput."""
    latencies = [ms for run in runs for ms in run.latencies_ms]
    throughput = median(run.throughput for run in runs)
    elapsed_s = len(latencies) / throughput if throughput > 0 else 0.0
    return LoadRun(latencies, sum(run.errors for run in runs), elapsed_s)


def app_env() -> dict[str, str]:
    return {
        **os.environ,
        "REDIS_URL": REDIS_URL,
        "DATABASE_URL": _services.pg_url(DATABASE),
        "APP_ENV": "production",
        "SECRET_KEY": "benchmark-only-secret",
        # The load comes from one address: the per-client hourly limit would refuse most of it.
        "RATE_LIMIT_PER_HOUR": "0",
    }


def _request(
    method: str, path: str, body: dict[str, Any] | None = None, token: str | None = None
) -> tuple[int, Any]:
    conn = http.client.HTTPConnection(HOST, PORT, timeout=10)
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        conn.request(method, path, json.dumps(body) if body else None, headers)
        response = conn.getresponse()
        raw = response.read()
        return response.status, json.loads(raw) if raw else None
    finally:
        conn.close()


def prepare_database() -> None:
    _services.drop_databases([DATABASE])
    _services.ensure_databases([DATABASE])
    redis.Redis.from_url(REDIS_URL).flushdb()
    for command in ("init-db", "seed-demo"):
        subprocess.run(
            [str(BIN / "flask"), "--app", "sample_app", command],
            env=app_env(),
            check=True,
            capture_output=True,
            timeout=60,
        )


def start_server(log_path: Path) -> subprocess.Popen[bytes]:
    command = [str(BIN / "gunicorn"), "--workers", str(WORKERS), "--worker-class", "gthread"]
    command += ["--threads", str(THREADS), "--bind", f"{HOST}:{PORT}", "sample_app:create_app()"]
    with log_path.open("wb") as log:
        return subprocess.Popen(
            command, env=app_env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )


def wait_ready(server: subprocess.Popen[bytes], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {server.returncode}")
        try:
            if _request("GET", "/parking-lots")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)  # polling a starting server, not waiting out a TTL
    raise RuntimeError(f"gunicorn did not answer on {HOST}:{PORT} within {timeout_s:.0f} s")


def lot_ids(count: int) -> list[int]:
    """Ids of `count` lots, created through the admin API when the demo data has fewer."""
    status, lots = _request("GET", "/parking-lots")
    if status != 200:
        raise RuntimeError(f"GET /parking-lots answered {status}")
    ids = [int(lot["id"]) for lot in lots]
    if len(ids) >= count:
        return ids[:count]
    status, login = _request("POST", "/auth/login", ADMIN)
    if status != 200:
        raise RuntimeError(f"admin login answered {status}: {login}")
    for number in range(len(ids), count):
        lot = {
            "name": f"Benchmark lot {number}",
            "address": f"{number} Benchmark Road",
            "pincode": "560001",
            "price_per_hour": "20.00",
            "number_of_spots": 10,
        }
        status, created = _request("POST", "/parking-lots", lot, token=login["token"])
        if status != 201:
            raise RuntimeError(f"POST /parking-lots answered {status}: {created}")
        ids.append(int(created["id"]))
    return ids


def generate(spec: LoadSpec) -> LoadRun:
    """Run the load generator in a process of its own, so client and server do not share a GIL."""
    completed = subprocess.run(
        [sys.executable, "-m", "bench._loadgen", "--spec", spec.to_json()],
        capture_output=True,
        text=True,
        timeout=spec.time_cap_s + 60,
        check=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    data = json.loads(completed.stdout.strip().splitlines()[-1])
    return LoadRun(data["latencies_ms"], data["errors"], data["elapsed_s"])


def _spec(ids: list[int], requests: int, *, evict: bool, concurrency: int) -> LoadSpec:
    return LoadSpec(
        host=HOST,
        port=PORT,
        paths=[f"/parking-lots/{lot_id}" for lot_id in ids],
        requests=requests,
        concurrency=concurrency,
        time_cap_s=TIME_CAP_S,
        evict_redis_url=REDIS_URL if evict else None,
        keys=[f"parking_lot:{lot_id}" for lot_id in ids] if evict else [],
        burst=False,
    )


def count_fills(key: str, ids: list[int]) -> tuple[int, int, LoadRun]:
    """(fills, lease attempts) of `key` while STAMPEDE requests for it are released together."""
    client = redis.Redis.from_url(REDIS_URL)
    client.delete(key)
    end_marker = f"bench-stampede-end-{os.getpid()}"
    seen: list[dict[str, Any]] = []
    watching = threading.Event()

    def watch() -> None:
        with client.monitor() as monitor:  # type: ignore[no-untyped-call]
            watching.set()
            for command in monitor.listen():
                if command["db"] != REDIS_DB:
                    continue
                if end_marker in command["command"]:
                    return
                seen.append(command)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    watching.wait(timeout=5)
    try:
        spec = LoadSpec(
            host=HOST,
            port=PORT,
            paths=[f"/parking-lots/{ids[0]}"],
            requests=STAMPEDE,
            concurrency=STAMPEDE,
            time_cap_s=TIME_CAP_S,
            burst=True,
        )
        run = generate(spec)
    finally:
        client.echo(end_marker)
        watcher.join(timeout=10)
    sets = [c for c in seen if c["command"].startswith(f"SET {key} ")]
    fills = sum(1 for c in sets if c["client_type"] == "lua")
    return fills, len(sets) - fills, run


def measure() -> list[Result]:
    with tempfile.TemporaryDirectory(prefix="bench-load-") as workdir:
        server = start_server(Path(workdir) / "gunicorn.log")
        try:
            wait_ready(server)
            ids = lot_ids(CONCURRENCY)
            for lot_id in ids:  # warm every key the cached run reads
                _request("GET", f"/parking-lots/{lot_id}")
            # Alternated rounds, so that drift on a noisy machine hits both kinds alike.
            cached_runs, uncached_runs = [], []
            for _ in range(ROUNDS):
                spec = _spec(ids, CACHED_REQUESTS, evict=False, concurrency=CONCURRENCY)
                cached_runs.append(generate(spec))
                spec = _spec(ids, UNCACHED_REQUESTS, evict=True, concurrency=CONCURRENCY)
                uncached_runs.append(generate(spec))
            cached, uncached = combined(cached_runs), combined(uncached_runs)
            fills, leases, stampede = count_fills(f"parking_lot:{ids[0]}", ids)
        except Exception:
            print((Path(workdir) / "gunicorn.log").read_text(errors="replace")[-3000:])
            raise
        finally:
            _services.stop_group(server)
    return results(cached, uncached, fills, leases, stampede)


def results(
    cached: LoadRun, uncached: LoadRun, fills: int, leases: int, stampede: LoadRun
) -> list[Result]:
    rows = []
    for name, run in (("cached", cached), ("uncached", uncached)):
        if not run.latencies_ms:
            rows.append(Result(f"load: {name} GET", None, "req/s", note="no successful request"))
            continue
        note = (
            f"median of {ROUNDS} rounds; {len(run.latencies_ms)} ok, {run.errors} errors, "
            f"{CONCURRENCY} clients"
        )
        rows.append(Result(f"load: {name} GET throughput", run.throughput, "req/s", note=note))
        rows.append(Result(f"load: {name} GET p50", median(run.latencies_ms), "ms"))
        rows.append(Result(f"load: {name} GET p99", percentile(run.latencies_ms, 0.99), "ms"))
    speedup = ratio(cached.throughput, uncached.throughput)
    rows.append(
        Result(
            "load: cached vs uncached throughput",
            speedup,
            "x",
            versus="uncached",
            goal=f">= {GOAL_SPEEDUP:.0f}x",
            met=speedup is not None and speedup >= GOAL_SPEEDUP,
        )
    )
    rows.append(
        Result(
            f"load: database fills, {STAMPEDE} concurrent misses on one key",
            float(fills),
            "fills",
            goal="1",
            met=fills == 1 and stampede.errors == 0,
            note=f"{leases} lease attempts, {len(stampede.latencies_ms)} ok, "
            f"{stampede.errors} errors",
        )
    )
    return rows


def main() -> list[Result]:
    print(f"== load: gunicorn {WORKERS}x{THREADS} gthread, Redis db {REDIS_DB}, {DATABASE}")
    try:
        prepare_database()
        rows = measure()
    except Exception as error:
        print(f"  load test failed: {type(error).__name__}: {error}")
        rows = [Result("load: sample app under gunicorn", None, "req/s", note="run failed")]
    finally:
        redis.Redis.from_url(REDIS_URL).flushdb()
        _services.drop_databases([DATABASE])
    print(markdown_table(rows))
    return rows


if __name__ == "__main__":
    main()
