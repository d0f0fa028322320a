"""The oracle's cost: the sample app's test suite with --cachesync-oracle against plain runs.

The figure is the summed per-test time (setup + call + teardown as pytest reports it), which is
what oracle mode adds to; wall time, which also holds start-up and collection, is in the note.
Plain and strict runs alternate so that drift on a noisy machine hits both alike.
"""

from __future__ import annotations

from collections.abc import Callable

from bench._suites import ROOT, SuiteRun, on_against_off, plugin_offers, run_suite
from bench._table import Result, markdown_table
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
    return strict_against_plain(_run, NAME, "strict")


def strict_against_plain(run: Callable[[bool], SuiteRun], name: str, label: str) -> list[Result]:
    """Rows of ``run(strict)`` against ``run(plain)``, alternated over ``ROUNDS`` rounds."""
    if not plugin_offers(STRICT_FLAG)[STRICT_FLAG]:
        print(f"  {STRICT_FLAG} is not available")
        return [Result(name, None, "x", note="not available")]
    rows = on_against_off(
        run,
        ROUNDS,
        name,
        labels=(f"{label}: plain run", f"{label}: strict run"),
        versus="plain",
        goal_ratio=GOAL_RATIO,
    )
    print(markdown_table(rows))
    return rows


if __name__ == "__main__":
    main()
