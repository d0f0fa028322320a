"""The cache report as Markdown, for CI job summaries (``GITHUB_STEP_SUMMARY``)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from .report import NO_TRAFFIC, Report

STEP_SUMMARY_ENV = "GITHUB_STEP_SUMMARY"
WORST_TESTS = 10
"""How many tests with stale reads the summary names; the JSON report has them all."""


def _cell(text: str) -> str:
    # A pattern or node id may hold "|", which would split the table's row.
    return text.replace("|", "\\|")


def _seconds(value: float) -> str:
    return f"{value:.3g} s" if value else "-"


def render_markdown(report: Report, *, title: str = "cachesync") -> str:
    """A heading, the per-pattern table, the score and the tests that read stale data."""
    lines = [f"### {title}", ""]
    patterns = report.patterns
    if not patterns and not report.reads_checked:
        return "\n".join([*lines, "No cache activity observed.", ""])
    if patterns:
        lines.append(
            "| pattern | hits | misses | hit ratio | fills | invalidations | stale reads "
            "| worst staleness | keys without TTL |"
        )
        lines.append("|" + "---|" + "---:|" * 8)
        for pattern, s in sorted(patterns.items()):
            ratio = "-" if s.hit_ratio is None else f"{s.hit_ratio:.0%}"
            cells = (
                f"`{_cell(pattern)}`",
                *(str(s.hits), str(s.misses), ratio, str(s.fills), str(s.invalidations)),
                *(str(s.stale_reads), _seconds(s.worst_staleness), str(s.keys_without_ttl)),
            )
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    lines.append(report.score_line())
    if report.checked_without_traffic:
        # The run failed for this; the summary is where a CI user looks first.
        lines += ["", "> **Error:** " + NO_TRAFFIC.format(checked=report.reads_checked) + "."]
    stale_tests = sorted(
        (t for t in report.tests if t.stale), key=lambda t: (-t.stale, -t.worst_staleness)
    )
    if stale_tests:
        lines += ["", f"Tests with stale reads ({len(stale_tests)}):", ""]
        for test in stale_tests[:WORST_TESTS]:
            lines.append(
                f"- `{_cell(test.nodeid)}`: {test.stale} stale, {test.violations} beyond budget, "
                f"worst {_seconds(test.worst_staleness)}"
            )
        if len(stale_tests) > WORST_TESTS:
            lines.append(f"- ... {len(stale_tests) - WORST_TESTS} more in the JSON report")
    lines.append("")
    return "\n".join(lines)


def append_step_summary(
    report: Report, environ: Mapping[str, str] = os.environ, *, title: str = "cachesync"
) -> Path | None:
    """Append the report to the file ``GITHUB_STEP_SUMMARY`` names, if it names one.

    GitHub Actions gives each step its own file and renders what the step appended; other
    CI systems leave the variable unset, and then nothing is written.
    """
    target = environ.get(STEP_SUMMARY_ENV, "").strip()
    if not target:
        return None
    path = Path(target)
    with path.open("a", encoding="utf-8") as summary:
        summary.write(render_markdown(report, title=title) + "\n")
    return path
