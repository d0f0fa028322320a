"""Generated pytest suites run in a subprocess, with each test's own duration recorded.

A suite is a directory with a `conftest.py` (the fixtures under measurement) and a test module of
`count` identical tests; `bench._recorder` records the time of every test's whole run protocol
(its cycle) and pytest's own setup + call + teardown durations. Medians of those per-test figures
leave out interpreter start-up, plugin loading and session fixtures, which the first test or the
collection pays once.
"""

from __future__ import annotations

import json
import os
import re
import resource
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench._services import stop_group
from bench._table import Result, median, ratio

ROOT = Path(__file__).resolve().parent.parent
BENCH_PYTHON = ROOT / ".venv-bench" / "bin" / "python"

_TEST_MODULE = """
import pytest


@pytest.mark.parametrize("n", range({count}))
def test_item(n, stores):
    stores.check_clean(n)
    stores.write(n)
"""


@dataclass(frozen=True)
class SuiteRun:
    """What one pytest subprocess did: wall and CPU time, per-test durations and outcomes.

    ``cpu_s`` is the user + system time of the process and every process it waited for (xdist
    workers): unlike wall time, other work on a loaded machine hardly moves it.
    """

    wall_s: float
    cpu_s: float
    durations_ms: list[float]
    cycles: dict[str, float]  # ms by test name (node id without the file); empty under xdist
    passed: int
    failed: int
    exit_code: int
    output: str

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and self.failed == 0 and self.passed > 0


def bench_python() -> Path:
    """The interpreter of the separate benchmark venv (it holds pytest-redis/pytest-postgresql)."""
    if not BENCH_PYTHON.exists():
        raise RuntimeError(
            f"{BENCH_PYTHON} is missing; create it with `make bench` or: "
            "python3 -m venv .venv-bench && "
            ".venv-bench/bin/pip install -e '.[dev]' pytest-redis pytest-postgresql"
        )
    return BENCH_PYTHON


def write_suite(directory: Path, conftest: str, count: int, *, module: str | None = None) -> None:
    """The suite's files; `module` replaces the test module of `count` identical tests."""
    directory.mkdir(parents=True, exist_ok=True)
    # An ini file of its own keeps the project's pytest settings (testpaths, addopts) out.
    (directory / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    (directory / "conftest.py").write_text(conftest, encoding="utf-8")
    text = module if module is not None else _TEST_MODULE.format(count=count)
    (directory / "test_generated.py").write_text(text, encoding="utf-8")


def run_suite(
    target: Path,
    args: list[str],
    *,
    timeout_s: float,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> SuiteRun:
    """Run pytest on `target` in the benchmark venv; never raises on test failures."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as record_file:
        record_path = Path(record_file.name)
    pythonpath = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    # A suite's stores come from its own arguments, never from the caller's CACHESYNC_* settings.
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("CACHESYNC_")}
    child_env = {**inherited, **(env or {}), "BENCH_RECORD": str(record_path)}
    child_env["PYTHONPATH"] = pythonpath  # for -p bench._recorder
    command = [str(bench_python()), "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    # The venv's own test tools are no part of a measured suite; hypothesis' plugin alone adds
    # a second to every process start, which -n 2 pays three times; pytest-flask's autouse
    # fixtures cost every test a request.
    command += ["-p", "no:hypothesispytest", "-p", "no:flask"]
    command += ["-p", "bench._recorder", *args, str(target)]
    directory = cwd or target
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    # A session of its own, so a timeout stops xdist workers and servers the suite started too.
    process = subprocess.Popen(
        command,
        cwd=directory,
        env=child_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        raw_output, _ = process.communicate(timeout=timeout_s)
        output = raw_output.decode(errors="replace")
    except subprocess.TimeoutExpired:
        output = f"timed out after {timeout_s:.0f} s"
    finally:
        stop_group(process)
        wall_s = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cycles, durations, outcomes = _read_record(record_path)
        record_path.unlink(missing_ok=True)
    passed = list(outcomes.values()).count("passed")
    failed = list(outcomes.values()).count("failed")
    if not outcomes:
        passed, failed = _counts_from_summary(output)
    return SuiteRun(
        wall_s=wall_s,
        cpu_s=(after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
        durations_ms=[seconds * 1000.0 for seconds in durations.values()],
        cycles={test.rpartition("::")[2]: seconds * 1000.0 for test, seconds in cycles.items()},
        passed=passed,
        failed=failed,
        exit_code=process.returncode if process.returncode is not None else -1,
        output=output,
    )


def _read_record(path: Path) -> tuple[dict[str, float], dict[str, float], dict[str, str]]:
    """Per-test cycles and durations (s) and outcomes by node id, as the recorder wrote them."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return {}, {}, {}
    if not text:
        return {}, {}, {}
    record = json.loads(text)
    cycles = {str(k): float(v) for k, v in record["cycles"].items()}
    durations = {str(k): float(v) for k, v in record["durations"].items()}
    outcomes = {str(k): str(v) for k, v in record["outcomes"].items()}
    return cycles, durations, outcomes


def _counts_from_summary(output: str) -> tuple[int, int]:
    passed = re.search(r"(\d+) passed", output)
    failed = re.search(r"(\d+) (?:failed|error)", output)
    return (int(passed.group(1)) if passed else 0, int(failed.group(1)) if failed else 0)


def tail(output: str, lines: int = 15) -> str:
    """The end of a subprocess's output, for error messages."""
    return "\n".join(output.strip().splitlines()[-lines:])


def plugin_offers(*names: str) -> dict[str, bool]:
    """Which of `names` (command-line flags or fixture names) the installed plugin provides now.

    The plugin is asked through pytest itself, in the benchmark venv, so a half-installed or
    broken plugin reads as "not offered" instead of failing the whole benchmark run.
    """
    with tempfile.TemporaryDirectory(prefix="bench-probe-") as empty:
        (Path(empty) / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
        base = [str(bench_python()), "-m", "pytest", "-p", "no:pytest_redis"]
        base += ["-p", "no:pytest_postgresql", "-p", "no:cacheprovider"]
        texts = []
        for extra in (["--help"], ["--fixtures", "-q"]):
            completed = subprocess.run(
                [*base, *extra, empty],
                cwd=empty,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            texts.append(completed.stdout)
    offered = "\n".join(texts)
    return {
        name: re.search(rf"(^|\s){re.escape(name)}\b", offered, re.M) is not None for name in names
    }


def on_against_off(
    run: Callable[[bool], SuiteRun],
    rounds: int,
    name: str,
    *,
    labels: tuple[str, str],
    versus: str,
    goal_ratio: float,
) -> list[Result]:
    """Rows of ``run(True)`` against ``run(False)``, alternated over ``rounds`` rounds.

    The figure is the summed per-test time (each run's median); ``labels`` name the off and on
    rows, and the ratio row is ``name`` with its goal.
    """
    runs: dict[bool, list[SuiteRun]] = {False: [], True: []}
    for _ in range(rounds):
        for on in (False, True):
            runs[on].append(run(on))
    failed = [r for group in runs.values() for r in group if not r.ok]
    for r in failed[:1]:
        print(f"  a run failed ({r.failed} failed, {r.passed} passed):\n{tail(r.output)}")
    test_s = {key: median(sum(r.durations_ms) / 1000 for r in group) for key, group in runs.items()}
    wall_s = {key: median(r.wall_s for r in group) for key, group in runs.items()}
    factor = ratio(test_s[True], test_s[False]) if not failed else None
    tests = runs[False][0].passed
    off_label, on_label = labels
    return [
        Result(f"{off_label}, summed test time", test_s[False], "s", note=f"{tests} tests"),
        Result(f"{on_label}, summed test time", test_s[True], "s"),
        Result(
            name,
            factor,
            "x slower",
            versus=versus,
            goal=f"<= {goal_ratio}x",
            met=factor is not None and factor <= goal_ratio,
            note=f"wall {wall_s[True]:.1f} s vs {wall_s[False]:.1f} s"
            + (f"; {len(failed)} runs failed" if failed else ""),
        ),
    ]
