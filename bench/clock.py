"""The clock's cost: a 10 s-TTL expiry check by time travel against waiting it out, per backend, and
entering/leaving a travel and advancing, per engine.

    .venv/bin/python -m bench.clock [--repeat N] [--skip-sleep]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable

import fakeredis
import redis

from bench._table import Result, markdown_table, median, ratio
from pytest_cachesync import CacheClock
from pytest_cachesync.clock.engines import (
    EngineName,
    create_engine,
    is_installed,
    resolve_engine_name,
)

# Database 7 is the one these figures may wipe; the tests use 6.
REAL_REDIS_URL = "redis://127.0.0.1:6379/7"
START = "2024-03-01T08:00:00Z"
TTL_SECONDS = 10
CHECK_GOAL_MS = 5.0

# freezegun replaces `time.perf_counter` and every module attribute bound to it while it runs; a
# reference inside a tuple is out of its reach, so the figures stay in real time.
_REAL_PERF_COUNTER = (time.perf_counter,)


def _timings_ms(action: Callable[[], object], repeat: int) -> list[float]:
    clock = _REAL_PERF_COUNTER[0]
    samples = []
    for _ in range(repeat):
        began = clock()
        action()
        samples.append((clock() - began) * 1000.0)
    return samples


def _expiry_check(client: redis.Redis, engine: EngineName) -> Callable[[], None]:
    """What a test of a 10 s TTL does: travel, write, move to just before and to the expiry."""

    def check() -> None:
        with CacheClock(client, engine=engine, start_at=START) as clock:
            client.set("bench:ttl", 1, ex=TTL_SECONDS)
            clock.advance(TTL_SECONDS - 0.1)
            if client.get("bench:ttl") is None:
                raise AssertionError("the key expired before its TTL")
            clock.advance(0.1)
            if client.get("bench:ttl") is not None:
                raise AssertionError("the key outlived its TTL")

    return check


def _sleep_check_ms(client: redis.Redis) -> float:
    # A real server expires a key only once its expiry instant has passed, so wait a hair longer.
    began = _REAL_PERF_COUNTER[0]()
    client.set("bench:sleep", 1, ex=TTL_SECONDS)
    time.sleep(TTL_SECONDS + 0.002)
    if client.get("bench:sleep") is not None:
        raise AssertionError("the key outlived its TTL")
    return (_REAL_PERF_COUNTER[0]() - began) * 1000.0


def _real_client() -> redis.Redis | None:
    client = redis.Redis.from_url(REAL_REDIS_URL, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.ConnectionError:
        return None
    client.flushdb()
    return client


def _engine_start_stop(engine: EngineName) -> Callable[[], None]:
    def start_stop() -> None:
        travel = create_engine(engine)
        travel.start(0.0, tick=False)
        travel.stop()

    return start_stop


def _advance_ms(client: redis.Redis, engine: EngineName, repeat: int) -> list[float]:
    with CacheClock(client, engine=engine, start_at=START) as clock:
        client.set("bench:advance", 1, ex=10**9)
        return _timings_ms(lambda: clock.advance(1), repeat)


def measure(repeat: int, skip_sleep: bool) -> list[Result]:
    engines: list[EngineName] = [
        name for name in ("time-machine", "freezegun") if is_installed(name)
    ]
    default_engine = resolve_engine_name("auto")
    backends: dict[str, redis.Redis] = {
        "fakeredis": fakeredis.FakeRedis(server=fakeredis.FakeServer())
    }
    real = _real_client()
    if real is not None:
        backends["redis"] = real
    results: list[Result] = []
    goal = f"<= {CHECK_GOAL_MS:g} ms"
    for backend, client in backends.items():
        sleep_ms = None if skip_sleep else _sleep_check_ms(client)
        sleep_name = f"{TTL_SECONDS} s TTL check, {backend}, real sleep"
        results.append(Result(sleep_name, sleep_ms, "ms", note="once" if sleep_ms else "skipped"))
        for engine in engines:
            check_ms = median(_timings_ms(_expiry_check(client, engine), repeat))
            # The goal is for the default engine; the other is shown for comparison.
            is_default = engine == default_engine
            results.append(
                Result(
                    f"{TTL_SECONDS} s TTL check, {backend}, clock ({engine})",
                    check_ms,
                    "ms",
                    ratio=ratio(sleep_ms, check_ms),
                    versus=sleep_name if sleep_ms else "",
                    goal=goal if is_default else "",
                    met=check_ms <= CHECK_GOAL_MS if is_default else None,
                    note="start, set, 2 advances, 2 gets, stop"
                    + ("" if is_default else "; not the default engine"),
                )
            )
        client.flushdb()
    if real is None:
        results.append(Result("real Redis", None, "-", note=f"{REAL_REDIS_URL} unreachable"))

    fake = backends["fakeredis"]
    loaded = f"{len(sys.modules)} modules loaded"
    enter_exit: dict[str, float] = {}
    advance: dict[str, float] = {}
    for engine in engines:
        enter_exit[engine] = median(_timings_ms(_engine_start_stop(engine), repeat))
        advance[engine] = median(_advance_ms(fake, engine, repeat))
    for engine in engines:
        other = "freezegun" if engine == "time-machine" else ""
        results.append(
            Result(
                f"enter/exit, {engine}",
                enter_exit[engine],
                "ms",
                ratio=ratio(enter_exit[engine], enter_exit.get(other)),
                versus=f"enter/exit, {other}" if other in enter_exit else "",
                note=loaded,
            )
        )
    for engine in engines:
        other = "freezegun" if engine == "time-machine" else ""
        results.append(
            Result(
                f"advance, {engine}, fakeredis",
                advance[engine],
                "ms",
                ratio=ratio(advance[engine], advance.get(other)),
                versus=f"advance, {other}, fakeredis" if other in advance else "",
                note="includes removing due keys",
            )
        )
    if real is not None:
        real.flushdb()
        real.close()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.clock", description=__doc__)
    parser.add_argument("--repeat", type=int, default=200, help="samples per median")
    parser.add_argument(
        "--skip-sleep", action="store_true", help="do not wait out a real TTL (no ratio)"
    )
    options = parser.parse_args(argv)
    if options.repeat < 1:
        parser.error("--repeat must be at least 1")
    results = measure(options.repeat, options.skip_sleep)
    print(markdown_table(results))
    failed = [result.name for result in results if result.met is False]
    print("all goals met" if not failed else f"goals NOT met: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
