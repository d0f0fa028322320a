"""1000 sample-app tests on real Redis and PostgreSQL through the plugin: -n 2 against -n 0.

The speed-up counts only when both runs pass every test: parallel workers that share a keyspace
or a database would fail the suite's assertions instead of merely running faster. The suite
is `bench._app_suite` (about ten API requests per test, as an app's own tests make). A suite
of near-empty tests runs alongside, without a goal: it shows where xdist stops paying off.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

from bench._app_suite import write_app_suite
from bench._isolation_suites import PLUGIN_FIXTURES, STORES
from bench._suites import SuiteRun, plugin_offers, run_suite, tail, write_suite
from bench._table import Result, markdown_table, ratio
from bench.compare import WITHOUT_BASELINE_PLUGINS, plugin_real_args

TESTS = 1000
WORKERS = 2
GOAL_SPEEDUP = 1.6
TIMEOUT_S = 300.0


def _run(suite: Path, workers: int) -> SuiteRun:
    args = [*WITHOUT_BASELINE_PLUGINS, *plugin_real_args(), "-n", str(workers)]
    return run_suite(suite, args, timeout_s=TIMEOUT_S)


def _measure(label: str, write: Callable[[Path], None], goal: bool, workdir: Path) -> list[Result]:
    suite = workdir / label.replace(" ", "_")
    write(suite)
    serial = _run(suite, 0)
    parallel = _run(suite, WORKERS)
    for name, run in (("-n 0", serial), (f"-n {WORKERS}", parallel)):
        if not run.ok:
            counts = f"{run.failed} failed, {run.passed} passed"
            print(f"  {label}, {name} failed ({counts}):\n{tail(run.output)}")
    failures = serial.failed + parallel.failed
    both_ok = serial.ok and parallel.ok
    speedup = ratio(serial.wall_s, parallel.wall_s) if both_ok else None
    per_test_ms = serial.wall_s * 1000.0 / max(serial.passed, 1)
    return [
        Result(
            f"xdist, {label}: -n 0 wall time",
            serial.wall_s,
            "s",
            note=f"{serial.passed} passed, {per_test_ms:.1f} ms of wall time per test",
        ),
        Result(
            f"xdist, {label}: -n {WORKERS} wall time",
            parallel.wall_s,
            "s",
            note=f"{parallel.passed} passed",
        ),
        Result(
            f"xdist, {label}: -n {WORKERS} vs -n 0",
            speedup,
            "x faster",
            versus="-n 0",
            goal=f">= {GOAL_SPEEDUP}x, 0 failures" if goal else "",
            met=(speedup is not None and speedup >= GOAL_SPEEDUP and failures == 0)
            if goal
            else None,
            note=f"{failures} failures",
        ),
    ]


def main() -> list[Result]:
    print(f"== xdist: {TESTS} real-services tests, -n {WORKERS} against -n 0")
    if not plugin_offers("cachesync")["cachesync"]:
        print("  the cachesync fixture is not available yet")
        return [Result(f"xdist -n {WORKERS} vs -n 0", None, "x faster", note="not available")]
    with tempfile.TemporaryDirectory(prefix="bench-xdist-") as workdir:
        rows = _measure(
            "sample-app tests", lambda path: write_app_suite(path, TESTS), True, Path(workdir)
        )
        rows += _measure(
            "near-empty tests",
            lambda path: write_suite(path, STORES + PLUGIN_FIXTURES, TESTS),
            False,
            Path(workdir),
        )
    print(markdown_table(rows))
    return rows


if __name__ == "__main__":
    main()
