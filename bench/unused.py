"""What an installed but unused plugin costs a project: start-up time, imports, xdist workers.

Every pytest run in an environment with pytest-cachesync installed loads the plugin. A trivial
300-test suite that never asks for a ``cachesync`` fixture runs with the plugin and with
``-p no:cachesync``, alternating, several times; the goal is the difference of the medians.
The same run counts the modules the plugin adds to ``sys.modules`` and checks that no store
library is among them, and runs 1000 near-empty tests with ``-n 2`` against ``-n 0``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from bench._suites import SuiteRun, bench_python, run_suite, tail
from bench._table import Result, markdown_table, median, ratio

TRIVIAL_TESTS = 300
NEAR_EMPTY_TESTS = 1000
ROUNDS = 11
GOAL_MS = 60.0
GOAL_SPEEDUP = 1.0
TIMEOUT_S = 120.0
HEAVY = ("redis", "sqlalchemy", "fakeredis", "flask", "werkzeug", "lupa")

_TRIVIAL = """
import pytest


@pytest.mark.parametrize("n", range({count}))
def test_trivial(n):
    assert n + 1 > n
"""

# Run in a process of its own: which modules does a pytest run end with?
_COUNT_MODULES = """
import json, sys
import pytest

pytest.main(sys.argv[2:])
print(json.dumps(sorted(sys.modules)), file=open(sys.argv[1], "w"))
"""

# Neither the benchmark venv's other plugins nor the caller's settings take part.
_QUIET = ["-p", "no:hypothesispytest", "-p", "no:pytest_redis", "-p", "no:pytest_postgresql"]
_WITHOUT = ["-p", "no:cachesync"]
# As in a user's environment, compiled modules and pytest's rewritten ones are cached on disk (an
# empty value turns a PYTHONDONTWRITEBYTECODE=1 of the caller off); a first, uncounted run of
# each variant writes the caches.
_ENV = {"PYTHONDONTWRITEBYTECODE": ""}


def _run(suite: Path, args: list[str]) -> SuiteRun:
    return run_suite(suite, [*_QUIET, *args], timeout_s=TIMEOUT_S, env=_ENV)


def _write(directory: Path, count: int) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    (directory / "test_trivial.py").write_text(_TRIVIAL.format(count=count), encoding="utf-8")
    return directory


def _check(label: str, run: SuiteRun, expected: int) -> bool:
    if run.ok and run.passed == expected:
        return True
    print(f"  {label} failed ({run.failed} failed, {run.passed} passed):\n{tail(run.output)}")
    return False


def _startup_rows(suite: Path) -> list[Result]:
    with_plugin: list[SuiteRun] = []
    without: list[SuiteRun] = []
    ok = True
    for round_ in range(ROUNDS + 1):
        for args, runs in (([], with_plugin), (_WITHOUT, without)):
            run = _run(suite, ["-p", "no:xdist", *args])
            ok = _check("trivial suite", run, TRIVIAL_TESTS) and ok
            if round_:
                runs.append(run)
    plugin_ms = median([run.wall_s * 1000.0 for run in with_plugin])
    baseline_ms = median([run.wall_s * 1000.0 for run in without])
    added = plugin_ms - baseline_ms
    # CPU time alongside: on a loaded machine wall time spreads by more than the goal.
    added_cpu = median([run.cpu_s * 1000.0 for run in with_plugin]) - median(
        [run.cpu_s * 1000.0 for run in without]
    )
    return [
        Result(f"unused plugin, {TRIVIAL_TESTS} trivial tests: -p no:cachesync", baseline_ms, "ms"),
        Result(
            f"unused plugin, {TRIVIAL_TESTS} trivial tests: installed, unused",
            plugin_ms,
            "ms",
            ratio=ratio(plugin_ms, baseline_ms),
            versus="-p no:cachesync",
        ),
        Result(
            "unused plugin: added to every pytest run",
            added,
            "ms",
            goal=f"<= +{GOAL_MS:.0f} ms",
            met=ok and added <= GOAL_MS,
            note=f"median of {ROUNDS} runs each, alternating",
        ),
        Result(
            "unused plugin: CPU time added to every pytest run",
            added_cpu,
            "ms",
            note="user + system, same runs; hardly moved by other work on the machine",
        ),
    ]


def _modules(suite: Path, args: list[str]) -> list[str]:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as record:
        path = Path(record.name)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CACHESYNC_")} | _ENV
    command = [str(bench_python()), "-c", _COUNT_MODULES, str(path), "-q", *_QUIET, *args]
    subprocess.run(command, cwd=suite, env=env, capture_output=True, timeout=TIMEOUT_S)
    try:
        loaded: list[str] = json.loads(path.read_text(encoding="utf-8"))
    finally:
        path.unlink(missing_ok=True)
    return loaded


def _module_rows(suite: Path) -> list[Result]:
    with_plugin = _modules(suite, ["-p", "no:xdist"])
    without = _modules(suite, ["-p", "no:xdist", *_WITHOUT])
    added = sorted(set(with_plugin) - set(without))
    heavy = sorted({name.partition(".")[0] for name in added} & set(HEAVY))
    own = sum(1 for name in added if name.startswith("pytest_cachesync"))
    return [
        Result(
            "unused plugin: modules a pytest run adds",
            float(len(added)),
            "modules",
            goal="no store or web library",
            met=bool(with_plugin) and not heavy,
            note=f"{own} of the plugin's own, of {len(with_plugin)} in all; "
            f"store/web libraries: {', '.join(heavy) or 'none'}",
        )
    ]


def _xdist_rows(suite: Path) -> list[Result]:
    # xdist's own ratio, without the plugin, alongside: on a small machine it bounds what the
    # plugin can reach.
    variants = {
        "-n 0": ["-n", "0"],
        "-n 2": ["-n", "2"],
        "-n 0 no plugin": ["-n", "0", *_WITHOUT],
        "-n 2 no plugin": ["-n", "2", *_WITHOUT],
    }
    samples: dict[str, list[float]] = {name: [] for name in variants}
    ok = True
    for round_ in range(4):
        for name, args in variants.items():
            run = _run(suite, args)
            ok = _check(f"near-empty suite {name}", run, NEAR_EMPTY_TESTS) and ok
            if round_:
                samples[name].append(run.wall_s)
    wall = {name: median(values) for name, values in samples.items()}
    speedup = ratio(wall["-n 0"], wall["-n 2"])
    without = ratio(wall["-n 0 no plugin"], wall["-n 2 no plugin"])
    return [
        Result(f"unused plugin, {NEAR_EMPTY_TESTS} near-empty tests: -n 0", wall["-n 0"], "s"),
        Result(
            f"unused plugin, {NEAR_EMPTY_TESTS} near-empty tests: -n 2 vs -n 0",
            speedup,
            "x faster",
            versus="-n 0",
            goal=f">= {GOAL_SPEEDUP:.1f}x",
            met=ok and speedup is not None and speedup >= GOAL_SPEEDUP,
            note=f"-n 2: {wall['-n 2']:.2f} s; median of 3 runs each",
        ),
        Result(
            f"{NEAR_EMPTY_TESTS} near-empty tests, -p no:cachesync: -n 2 vs -n 0",
            without,
            "x faster",
            versus="-n 0, -p no:cachesync",
            note=f"xdist alone: {wall['-n 2 no plugin']:.2f} s vs {wall['-n 0 no plugin']:.2f} s",
        ),
    ]


def main() -> list[Result]:
    print("== unused: what the installed plugin costs a project that does not use it")
    with tempfile.TemporaryDirectory(prefix="bench-unused-") as workdir:
        trivial = _write(Path(workdir) / "trivial", TRIVIAL_TESTS)
        near_empty = _write(Path(workdir) / "near_empty", NEAR_EMPTY_TESTS)
        rows = [*_module_rows(trivial), *_startup_rows(trivial), *_xdist_rows(near_empty)]
    print(markdown_table(rows))
    return rows


if __name__ == "__main__":
    main()
    sys.exit(0)
