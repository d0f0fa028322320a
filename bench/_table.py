"""Figures shared by every benchmark: medians, ratios, the machine header and the result table."""

from __future__ import annotations

import contextlib
import datetime
import math
import os
import platform
import statistics
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

RESULTS_DIR = Path(__file__).resolve().parent / "results"
REAL_REDIS_URL = "redis://127.0.0.1:6379/12"
REAL_PG_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


@dataclass(frozen=True)
class Result:
    """One row of the summary table.

    `value` is a median in `unit`; `ratio` compares it with the row named in `versus`, measured in
    the same run (the machine is noisy, so only same-run ratios are meaningful). `met` is None when
    the row has no goal, and the `goal` text says what was required otherwise.
    """

    name: str
    value: float | None
    unit: str
    ratio: float | None = None
    versus: str = ""
    goal: str = ""
    met: bool | None = None
    note: str = ""


def median(values: Iterable[float]) -> float:
    data = list(values)
    if not data:
        raise ValueError("median of no values")
    return statistics.median(data)


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile: the smallest value with `fraction` of the data at or below it."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    ordered = sorted(values)
    rank = max(1, math.ceil(len(ordered) * fraction))
    return ordered[rank - 1]


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """`numerator / denominator`, or None when either side is missing or the divisor is not > 0."""
    if numerator is None or denominator is None or denominator <= 0:
        return None
    return numerator / denominator


def timings_ms(action: Callable[[], object], repeat: int) -> list[float]:
    """Wall time in milliseconds of each of `repeat` calls of `action`."""
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        samples.append((time.perf_counter() - start) * 1000.0)
    return samples


def _redis_version() -> str:
    try:
        import redis

        info = redis.Redis.from_url(REAL_REDIS_URL, socket_timeout=2).info("server")
        return str(info["redis_version"])
    except Exception as error:  # the header must print even when a service is down
        return f"unavailable ({type(error).__name__})"


def _postgres_version() -> str:
    try:
        import psycopg

        with psycopg.connect(REAL_PG_URL, connect_timeout=2) as conn:
            row = conn.execute("SHOW server_version").fetchone()
        return str(row[0]) if row else "unknown"
    except Exception as error:
        return f"unavailable ({type(error).__name__})"


def machine_header() -> str:
    """Date and machine the figures were measured on, as markdown lines."""
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return "\n".join(
        [
            f"- date: {now}",
            f"- machine: {platform.system()} {platform.machine()}, nproc {os.cpu_count()}",
            f"- python: {platform.python_version()}",
            f"- redis: {_redis_version()}, postgresql: {_postgres_version()}",
        ]
    )


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def goal_cell(result: Result) -> str:
    if result.met is None:
        return result.goal or ""
    verdict = "goal met" if result.met else "NOT met"
    return f"{verdict} ({result.goal})" if result.goal else verdict


_printed: list[Result] | None = None


@contextlib.contextmanager
def recording() -> Iterator[list[Result]]:
    """Collect the rows every markdown_table call prints inside the block.

    The summary takes a benchmark's rows this way when its main() returns an exit code.
    """
    global _printed
    outer, _printed = _printed, []
    try:
        yield _printed
    finally:
        _printed = outer


def markdown_table(results: Sequence[Result]) -> str:
    """The results as one markdown table; missing figures print as '-'."""
    if _printed is not None:
        _printed.extend(results)
    lines = [
        "| measurement | median | unit | ratio | vs | goal | note |",
        "|---|---:|---|---:|---|---|---|",
    ]
    for result in results:
        ratio_text = "-" if result.ratio is None else f"{_number(result.ratio)}x"
        cells = [
            result.name,
            _number(result.value),
            result.unit,
            ratio_text,
            result.versus,
            goal_cell(result),
            result.note,
        ]
        lines.append("| " + " | ".join(cell.replace("|", "/") for cell in cells) + " |")
    return "\n".join(lines)


def write_latest(text: str) -> Path:
    """Store the report where the README quotes it from."""
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / "latest.md"
    path.write_text(text, encoding="utf-8")
    return path
