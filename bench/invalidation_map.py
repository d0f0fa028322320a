"""The invalidation map's cost: the sample app's suite in oracle mode, recording on and off.

Recording means listening to every SQL statement, transaction event, cache effect and request
of a test; building the map is done once per test. The figure is the summed per-test time, as
in ``bench.strict``; both runs are in oracle mode, so the ratio is the map's share alone. Runs
alternate so that drift on a noisy machine hits both alike. Embedded stores only: nothing
shared is used.
"""

from __future__ import annotations

from bench._suites import ROOT, SuiteRun, on_against_off, plugin_offers, run_suite
from bench._table import Result, markdown_table
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
    rows = on_against_off(
        _run,
        ROUNDS,
        NAME,
        labels=("map: oracle run, recording off", "map: oracle run, recording on"),
        versus="recording off",
        goal_ratio=GOAL_RATIO,
    )
    print(markdown_table(rows))
    return rows


if __name__ == "__main__":
    main()
