"""Cache figures per test and per pattern: terminal summary, JSON, and the xdist merge.

Hook bodies live here as plain functions: a worker sends `worker_output(figures)` through
`config.workeroutput`, the controller calls `merge(...)`, then `render(...)` in
`pytest_terminal_summary` and `write_json(...)` for `--cachesync-report PATH`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pytest

from .map_report import merge_maps, render_map_lines

SCHEMA_VERSION = 1
UNATTRIBUTED = "(no cache key)"
"""Where stale reads go whose answer no observed cache key served."""


class TerminalWriter(Protocol):
    def write_sep(self, sep: str, title: str | None = None, **markup: bool) -> None: ...

    def write_line(self, line: str, **markup: bool) -> None: ...


@dataclass(slots=True)
class PatternStats:
    """Counters of one cache pattern."""

    hits: int = 0
    misses: int = 0
    fills: int = 0
    invalidations: int = 0
    leases: int = 0
    stale_reads: int = 0
    worst_staleness: float = 0.0
    keys_without_ttl: int = 0

    def count(self, effect: str) -> None:
        name = {"hit": "hits", "miss": "misses", "fill": "fills", "lease": "leases"}.get(
            effect, "invalidations" if effect == "invalidation" else None
        )
        if name is None:
            raise ValueError(f"unknown cache effect {effect!r}")
        setattr(self, name, getattr(self, name) + 1)

    @property
    def hit_ratio(self) -> float | None:
        reads = self.hits + self.misses
        return self.hits / reads if reads else None

    def add(self, other: PatternStats) -> None:
        self.hits += other.hits
        self.misses += other.misses
        self.fills += other.fills
        self.invalidations += other.invalidations
        self.leases += other.leases
        self.stale_reads += other.stale_reads
        self.worst_staleness = max(self.worst_staleness, other.worst_staleness)
        self.keys_without_ttl += other.keys_without_ttl

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PatternStats:
        known = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(slots=True)
class ItemFigures:
    """Everything one test contributes to the report."""

    nodeid: str
    patterns: dict[str, PatternStats] = field(default_factory=dict)
    commands: int = 0
    sql_statements: int = 0
    reads_checked: int = 0
    fresh: int = 0
    stale: int = 0
    violations: int = 0
    worst_staleness: float = 0.0
    keys_without_ttl: list[str] = field(default_factory=list)
    invalidation_map: dict[str, Any] = field(default_factory=dict)

    @property
    def cache_traffic(self) -> int:
        """Commands seen on cache keys: hits, misses, fills, invalidations and leases."""
        return sum(
            s.hits + s.misses + s.fills + s.invalidations + s.leases for s in self.patterns.values()
        )

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["patterns"] = {p: asdict(s) for p, s in self.patterns.items()}
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ItemFigures:
        patterns = {p: PatternStats.from_dict(s) for p, s in data.get("patterns", {}).items()}
        known = set(cls.__dataclass_fields__) - {"patterns"}
        return cls(patterns=patterns, **{k: v for k, v in data.items() if k in known})


@dataclass(slots=True)
class Report:
    tests: list[ItemFigures] = field(default_factory=list)

    @property
    def patterns(self) -> dict[str, PatternStats]:
        totals: dict[str, PatternStats] = {}
        for test in self.tests:
            for pattern, stats in test.patterns.items():
                totals.setdefault(pattern, PatternStats()).add(stats)
        return totals

    def _sum(self, name: str) -> int:
        return sum(int(getattr(t, name)) for t in self.tests)

    @property
    def reads_checked(self) -> int:
        return self._sum("reads_checked")

    @property
    def fresh(self) -> int:
        return self._sum("fresh")

    @property
    def stale(self) -> int:
        return self._sum("stale")

    @property
    def violations(self) -> int:
        return self._sum("violations")

    @property
    def worst_staleness(self) -> float:
        return max((t.worst_staleness for t in self.tests), default=0.0)

    @property
    def checked_without_traffic(self) -> bool:
        """Reads were checked, yet no command on a cache key reached the test's Redis.

        Then every check compared the app with itself: its Redis client is not the test's.
        """
        return self.reads_checked > 0 and not any(t.cache_traffic for t in self.tests)

    @property
    def invalidation_map(self) -> dict[str, Any]:
        """The tests' invalidation maps merged (see ``map_report``)."""
        return merge_maps((t.nodeid, t.invalidation_map) for t in self.tests)

    def score_line(self) -> str:
        checked, fresh = self.reads_checked, self.fresh
        line = f"reads checked: {checked}, fresh: {fresh}"
        if checked == 0:
            return line
        stale = checked - fresh
        if stale == 0:
            # No stale read among N bounds the stale rate near 1/N: at least log10(N) nines.
            return f"{line} (all fresh, >= {math.log10(checked):.1f} nines)"
        return f"{line} ({-math.log10(stale / checked):.1f} nines)"


def item_figures(
    nodeid: str,
    *,
    patterns: Mapping[str, PatternStats] | None = None,
    commands: int = 0,
    sql_statements: int = 0,
    checks: Sequence[Any] = (),
    keys_without_ttl: Sequence[str] = (),
    pattern_of: Mapping[str, str] | None = None,
    invalidation_map: Mapping[str, Any] | None = None,
) -> ItemFigures:
    """Build one test's figures from the spy's stats and the oracle's checks.

    `checks` are `oracle.ReadCheck`s (anything with `.fresh`, `.violation`, `.staleness`,
    `.patterns`); `pattern_of` maps each key without TTL to its pattern.
    """
    figures = ItemFigures(
        nodeid, {p: PatternStats.from_dict(asdict(s)) for p, s in (patterns or {}).items()}
    )
    figures.commands, figures.sql_statements = commands, sql_statements
    figures.invalidation_map = dict(invalidation_map or {})
    for check in checks:
        figures.reads_checked += 1
        if check.fresh:
            figures.fresh += 1
            continue
        figures.stale += 1
        figures.violations += int(bool(check.violation))
        staleness = float(check.staleness) if check.staleness is not None else 0.0
        figures.worst_staleness = max(figures.worst_staleness, staleness)
        for pattern in check.patterns or (UNATTRIBUTED,):
            stats = figures.patterns.setdefault(pattern, PatternStats())
            stats.stale_reads += 1
            stats.worst_staleness = max(stats.worst_staleness, staleness)
    figures.keys_without_ttl = sorted(keys_without_ttl)
    for key in figures.keys_without_ttl:
        pattern = (pattern_of or {}).get(key, UNATTRIBUTED)
        figures.patterns.setdefault(pattern, PatternStats()).keys_without_ttl += 1
    return figures


def worker_output(tests: Iterable[ItemFigures]) -> dict[str, Any]:
    """A JSON-able dict for `config.workeroutput["cachesync"]`."""
    return {"version": SCHEMA_VERSION, "tests": [t.to_dict() for t in tests]}


def merge(outputs: Iterable[Mapping[str, Any]]) -> Report:
    """The controller's report from the workers' `worker_output` dicts (and its own)."""
    report = Report()
    for output in outputs:
        version = output.get("version")
        if version != SCHEMA_VERSION:
            raise ValueError(f"cachesync report figures of version {version!r}, expected 1")
        report.tests.extend(ItemFigures.from_dict(t) for t in output.get("tests", ()))
    report.tests.sort(key=lambda t: t.nodeid)
    return report


NO_TRAFFIC = (
    "no cache traffic reached the test Redis; is the app's client routed? {checked} reads "
    "were checked in oracle mode, but the test's Redis saw no command on a cache pattern, so "
    "each replay compared the app with itself"
)


def _seconds(value: float, *, stale: bool = False) -> str:
    # A stale read made at the instant of its write (a frozen clock) is stale for 0 s.
    return f"{value:.3g} s" if value or stale else "-"


def render_lines(report: Report) -> list[str]:
    patterns = report.patterns
    if not patterns and not report.reads_checked:
        return ["no cache activity observed"]
    if not patterns:
        return [report.score_line(), "ERROR: " + NO_TRAFFIC.format(checked=report.reads_checked)]
    header: tuple[str, ...] = ("pattern", "hits", "misses", "hit ratio", "fills")
    header += ("invalidations", "stale reads", "worst staleness", "keys without TTL")
    rows: list[tuple[str, ...]] = [header]
    for pattern, s in sorted(patterns.items()):
        ratio = "-" if s.hit_ratio is None else f"{s.hit_ratio:.0%}"
        rows.append(
            (
                *(pattern, str(s.hits), str(s.misses), ratio, str(s.fills), str(s.invalidations)),
                str(s.stale_reads),
                _seconds(s.worst_staleness, stale=bool(s.stale_reads)),
                str(s.keys_without_ttl),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [
        "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    ]
    lines.append(report.score_line())
    if report.checked_without_traffic:
        lines.append("ERROR: " + NO_TRAFFIC.format(checked=report.reads_checked))
    if report.stale:
        lines.append(
            f"stale reads: {report.stale} ({report.violations} beyond their staleness budget), "
            f"worst staleness: {_seconds(report.worst_staleness)}"
        )
    return lines


def render(report: Report, terminalreporter: TerminalWriter) -> None:
    """The `pytest_terminal_summary` section."""
    terminalreporter.write_sep("=", "cachesync")
    for line in render_lines(report):
        terminalreporter.write_line(
            line, red=line.startswith("ERROR:"), bold=line.startswith("ERROR:")
        )
    map_lines = render_map_lines(report.invalidation_map)
    if map_lines:
        terminalreporter.write_sep("-", "invalidation map")
        for line in map_lines:
            terminalreporter.write_line(line)


def to_dict(report: Report) -> dict[str, Any]:
    return {
        "version": SCHEMA_VERSION,
        "summary": {
            "reads_checked": report.reads_checked,
            "fresh": report.fresh,
            "stale": report.stale,
            "violations": report.violations,
            "worst_staleness": report.worst_staleness,
            "score": report.score_line(),
            "no_cache_traffic": report.checked_without_traffic,
            "error": (
                NO_TRAFFIC.format(checked=report.reads_checked)
                if report.checked_without_traffic
                else None
            ),
        },
        "patterns": {
            p: {**asdict(s), "hit_ratio": s.hit_ratio} for p, s in sorted(report.patterns.items())
        },
        "tests": [t.to_dict() for t in report.tests],
        "invalidation_map": report.invalidation_map,
    }


def to_json(report: Report) -> str:
    return json.dumps(to_dict(report), indent=2, sort_keys=True)


def write_json(report: Report, path: str | Path) -> Path:
    """Write the report for `--cachesync-report PATH`, creating parent folders."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(to_json(report) + "\n", encoding="utf-8")
    return target


# -- the run's figures: collected per test, sent by xdist workers, merged by the controller --

WORKEROUTPUT_KEY = "cachesync"
"""Where a worker leaves its figures in ``config.workeroutput``."""


class SessionFigures:
    """Every observed test's figures in this process, and those the workers sent."""

    def __init__(self) -> None:
        self.tests: list[ItemFigures] = []
        self.worker_outputs: list[Mapping[str, Any]] = []

    def add(self, figures: ItemFigures) -> None:
        self.tests.append(figures)

    def add_worker_output(self, workeroutput: Mapping[str, Any] | None) -> None:
        output = (workeroutput or {}).get(WORKEROUTPUT_KEY)
        if output is not None:
            self.worker_outputs.append(output)

    def worker_output(self) -> dict[str, Any]:
        return worker_output(self.tests)

    def report(self) -> Report:
        return merge([self.worker_output(), *self.worker_outputs])


def observed(report: Report) -> bool:
    """Whether any test sent a command through a spy or had a read checked."""
    return any(t.commands or t.reads_checked or t.patterns for t in report.tests)


FIGURES_KEY = pytest.StashKey[SessionFigures]()
REPORT_KEY = pytest.StashKey[Report]()
