"""`python -m bench` (`make bench`): every benchmark in one run, then one summary table.

Each benchmark module's main() runs in turn; its rows go into the summary, which is printed and
written to bench/results/latest.md with the date and the machine. A module that is missing or
fails is listed as such, and every goal that is not met says so.
"""

from __future__ import annotations

import importlib
import inspect
import os
import time
import traceback
from collections.abc import Callable

from bench._table import Result, machine_header, markdown_table, recording, write_latest

# In-process benchmarks first, while the machine is quiet; then the ones that start processes.
MODULES = (
    "isolation",
    "compare",
    "clock",
    "spy",
    "strict",
    "strict_asgi",
    "invalidation_map",
    "unused",
    "xdist",
    "migrations",
    "load",
)


def _call(entry: Callable[..., object]) -> object:
    # Modules with a command line of their own take argv; run them on their defaults.
    return entry([]) if inspect.signature(entry).parameters else entry()


def run_module(name: str) -> list[Result]:
    try:
        module = importlib.import_module(f"bench.{name}")
    except ModuleNotFoundError as error:
        if error.name != f"bench.{name}":
            raise
        print(f"== {name}: bench/{name}.py is missing")
        return [Result(f"{name}", None, "-", note="benchmark missing")]
    try:
        with recording() as printed:
            returned = _call(module.main)
    except (Exception, SystemExit) as error:
        traceback.print_exc()
        return [Result(f"{name}", None, "-", note=f"failed: {type(error).__name__}")]
    if isinstance(returned, list) and all(isinstance(row, Result) for row in returned):
        return returned
    return printed


def load_line(loads: dict[str, float]) -> str:
    """The machine's 1-minute load average as each benchmark started.

    On a shared 2-core machine a load near or above 2 means other work competed for the cores:
    absolute figures and same-run ratios of that benchmark are then the least trustworthy.
    """
    return "- load (1-min average) at each start: " + ", ".join(
        f"{name} {load:.1f}" for name, load in loads.items()
    )


def summary(rows: list[Result], elapsed_s: float, loads: dict[str, float] | None = None) -> str:
    missed = [row.name for row in rows if row.met is False]
    met = sum(1 for row in rows if row.met)
    verdict = f"goals met: {met} of {met + len(missed)}"
    if missed:
        verdict += "; NOT met: " + "; ".join(missed)
    return "\n\n".join(
        [
            "# pytest-cachesync benchmarks",
            machine_header()
            + f"\n- run time: {elapsed_s:.0f} s"
            + (f"\n{load_line(loads)}" if loads else ""),
            "Medians; ratios compare figures measured in this same run.",
            markdown_table(rows),
            verdict,
        ]
    )


def main() -> int:
    start = time.perf_counter()
    rows: list[Result] = []
    loads: dict[str, float] = {}
    for name in MODULES:
        loads[name] = os.getloadavg()[0]
        rows += run_module(name)
        print()
    text = summary(rows, time.perf_counter() - start, loads)
    print(text)
    print(f"\nwritten to {write_latest(text + chr(10))}")
    return 0 if all(row.met is not False for row in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
