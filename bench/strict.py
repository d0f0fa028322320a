"""The oracle's cost: the sample app's test suite with --cachesync-oracle against plain runs.

The figure is the summed per-test time (setup + call + teardown as pytest reports it), which is
what oracle mode adds to; wall time, which also holds start-up and collection, is in the note.
Plain and strict runs alternate so that drift on a noisy machine hits both alike.
"""

from __future__ import annotations

from bench._suites import ROOT, SuiteRun, plugin_offers, run_suite, tail
from bench._table import Result, markdown_table, median, ratio
from bench.compare import WITHOUT_BASELINE_PLUGINS

SUITE = ROOT / "tests" / "app"
STRICT_FLAG = "--cachesync-oracle"
# The project's own ini turns oracle mode on, so the plain run has to turn it off.
PLAIN_FLAGS = ["-o", "cachesync_oracle=false"]
ROUNDS = 2
GOAL_RATIO = 2.2
TIMEOUT_S = 180.0
NAME = "oracle mode vs plain, sample app suite"


def _run(strict: bool) -> SuiteRun:
    args = [*WITHOUT_BASELINE_PLUGINS, *([STRICT_FLAG] if strict else PLAIN_FLAGS)]
    return run_suite(SUITE, args, timeout_s=TIMEOUT_S, cwd=ROOT)


def main() -> list[Result]:
    print(f"== strict: {SUITE.relative_to(ROOT)} with {STRICT_FLAG} against without")
    if not plugin_offers(STRICT_FLAG)[STRICT_FLAG]:
        print(f"  {STRICT_FLAG} is not available")
        return [Result(NAME, None, "x", note="not available")]
    runs: dict[bool, list[SuiteRun]] = {False: [], True: []}
    for _ in range(ROUNDS):
        for strict in (False, True):
            runs[strict].append(_run(strict))
    failed = [run for group in runs.values() for run in group if not run.ok]
    for run in failed[:1]:
        print(f"  a run failed ({run.failed} failed, {run.passed} passed):\n{tail(run.output)}")
    test_s = {key: median(sum(r.durations_ms) / 1000 for r in group) for key, group in runs.items()}
    wall_s = {key: median(r.wall_s for r in group) for key, group in runs.items()}
    factor = ratio(test_s[True], test_s[False]) if not failed else None
    tests = runs[False][0].passed
    rows = [
        Result("strict: plain run, summed test time", test_s[False], "s", note=f"{tests} tests"),
        Result("strict: strict run, summed test time", test_s[True], "s"),
        Result(
            NAME,
            factor,
            "x slower",
            versus="plain",
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
