"""The invalidation map's cost: the sample app's suite in oracle mode, recording on and off.

Recording means listening to every SQL statement, transaction event, cache effect and request
of a test; building the map is done once per test. The figure is the summed per-test time, as
in ``bench.strict``; both runs are in oracle mode, so the ratio is the map's share alone. Runs
alternate so that drift on a noisy machine hits both alike. Embedded stores only: nothing
shared is used.
"""

from __future__ import annotations

from bench._suites import ROOT, SuiteRun, plugin_offers, run_suite, tail
from bench._table import Result, markdown_table, median, ratio
from bench.compare import WITHOUT_BASELINE_PLUGINS

SUITE = ROOT / "tests" / "app"
ORACLE = ["--cachesync-oracle"]
MAP_OFF = ["-o", "cachesync_invalidation_map=false"]
ROUNDS = 3
GOAL_RATIO = 1.3
TIMEOUT_S = 240.0
NAME = "invalidation map recording, sample app suite in oracle mode"


def _run(recording: bool) -> SuiteRun:
    args = [*WITHOUT_BASELINE_PLUGINS, *ORACLE, *([] if recording else MAP_OFF)]
    return run_suite(SUITE, args, timeout_s=TIMEOUT_S, cwd=ROOT)


def main() -> list[Result]:
    print(f"== invalidation map: {SUITE.relative_to(ROOT)}, oracle mode, recording on against off")
    flag = "--cachesync-invalidation-map"
    if not plugin_offers(flag)[flag]:
        print(f"  {flag} is not available")
        return [Result(NAME, None, "x", note="not available")]
    runs: dict[bool, list[SuiteRun]] = {False: [], True: []}
    for _ in range(ROUNDS):
        for recording in (False, True):
            runs[recording].append(_run(recording))
    failed = [run for group in runs.values() for run in group if not run.ok]
    for run in failed[:1]:
        print(f"  a run failed ({run.failed} failed, {run.passed} passed):\n{tail(run.output)}")
    test_s = {key: median(sum(r.durations_ms) / 1000 for r in group) for key, group in runs.items()}
    wall_s = {key: median(r.wall_s for r in group) for key, group in runs.items()}
    factor = ratio(test_s[True], test_s[False]) if not failed else None
    tests = runs[True][0].passed
    rows = [
        Result("map: oracle run, recording off, summed test time", test_s[False], "s"),
        Result(
            "map: oracle run, recording on, summed test time",
            test_s[True],
            "s",
            note=f"{tests} tests",
        ),
        Result(
            NAME,
            factor,
            "x slower",
            versus="recording off",
            goal=f"<= {GOAL_RATIO}x",
            met=factor is not None and factor <= GOAL_RATIO,
            note=f"wall {wall_s[True]:.1f} s vs {wall_s[False]:.1f} s"
            + (f"; {len(failed)} runs failed" if failed else ""),
        ),
    ]
    print(markdown_table(rows))
    return rows


if __name__ == "__main__":
    main()
