"""A 1000-test suite on real Redis and PostgreSQL through the plugin's fixtures: -n 2 against -n 0.

The speed-up counts only when both runs pass every test: parallel workers that share a keyspace
or a database would fail the suite's clean-store assertions instead of merely running faster.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from bench._suites import SuiteRun, plugin_offers, run_suite, tail, write_suite
from bench._table import Result, markdown_table, ratio
from bench.compare import PLUGIN_FIXTURES, STORES, WITHOUT_BASELINE_PLUGINS, plugin_real_args

TESTS = 1000
WORKERS = 2
GOAL_SPEEDUP = 1.6
TIMEOUT_S = 180.0


def _run(suite: Path, workers: int) -> SuiteRun:
    args = [*WITHOUT_BASELINE_PLUGINS, *plugin_real_args(), "-n", str(workers)]
    return run_suite(suite, args, timeout_s=TIMEOUT_S)


def main() -> list[Result]:
    print(f"== xdist: {TESTS} real-services tests, -n {WORKERS} against -n 0")
    if not plugin_offers("cachesync")["cachesync"]:
        print("  the cachesync fixture is not available yet")
        return [Result(f"xdist -n {WORKERS} vs -n 0", None, "x faster", note="not available")]
    with tempfile.TemporaryDirectory(prefix="bench-xdist-") as workdir:
        suite = Path(workdir) / "suite"
        write_suite(suite, STORES + PLUGIN_FIXTURES, TESTS)
        serial = _run(suite, 0)
        parallel = _run(suite, WORKERS)
    for name, run in (("-n 0", serial), (f"-n {WORKERS}", parallel)):
        if not run.ok:
            counts = f"{run.failed} failed, {run.passed} passed"
            print(f"  {name} failed ({counts}):\n{tail(run.output)}")
    failures = serial.failed + parallel.failed
    both_ok = serial.ok and parallel.ok
    speedup = ratio(serial.wall_s, parallel.wall_s) if both_ok else None
    rows = [
        Result("xdist -n 0 wall time", serial.wall_s, "s", note=f"{serial.passed} passed"),
        Result(
            f"xdist -n {WORKERS} wall time", parallel.wall_s, "s", note=f"{parallel.passed} passed"
        ),
        Result(
            f"xdist -n {WORKERS} vs -n 0",
            speedup,
            "x faster",
            versus="-n 0",
            goal=f">= {GOAL_SPEEDUP}x, 0 failures",
            met=speedup is not None and speedup >= GOAL_SPEEDUP and failures == 0,
            note=f"{failures} failures",
        ),
    ]
    print(markdown_table(rows))
    return rows


if __name__ == "__main__":
    main()
