"""``python -m pytest_cachesync merge-reports``: one report from the JSON reports of CI shards.

Each shard's ``--cachesync-report`` file holds every test's figures; merging them is the
merge the xdist controller does with its workers' figures, so the totals of the merged report
are exactly those one run of the whole suite on one machine would report.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .markdown import append_step_summary
from .report import Report, merge, to_json


class MergeError(Exception):
    """An input that cannot be merged; nothing has been written."""


def _load(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise MergeError(f"{path}: cannot read it ({error.strerror or error})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise MergeError(f"{path}: not JSON ({error})") from None
    if not isinstance(data, dict) or not isinstance(data.get("tests"), list):
        raise MergeError(
            f"{path}: not a pytest-cachesync report (written by --cachesync-report): "
            "no list of tests"
        )
    return data


def merge_files(paths: Sequence[Path], *, allow_duplicates: bool = False) -> Report:
    """The report of all ``paths``; refuses a file given twice and, unless allowed, a test
    that two shards both ran (its figures would be counted twice)."""
    if not paths:
        raise MergeError("no report to merge")
    seen: dict[Path, Path] = {}
    for path in paths:
        resolved = path.resolve()
        if resolved in seen:
            raise MergeError(f"{path}: given twice (as {seen[resolved]})")
        seen[resolved] = path
    reports = [_load(path) for path in paths]
    try:
        merged = merge(reports)
    except (ValueError, TypeError, KeyError) as error:
        raise MergeError(f"cannot merge: {error}") from None
    if not allow_duplicates:
        counts = Counter(test.nodeid for test in merged.tests)
        twice = sorted(nodeid for nodeid, count in counts.items() if count > 1)
        if twice:
            shown = ", ".join(twice[:5]) + (", ..." if len(twice) > 5 else "")
            raise MergeError(
                f"{len(twice)} test(s) appear in more than one report ({shown}); shards of one "
                "run hold each test once. Pass --allow-duplicates to add their figures anyway "
                "(e.g. the same suite on several Python versions)."
            )
    return merged


def _write_atomically(text: str, target: Path) -> None:
    # Into a temporary file beside the target, then renamed: an interrupted merge never leaves
    # a truncated report where the previous one was.
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=target.name + ".", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pytest_cachesync merge-reports",
        description="Merge the JSON cache reports of test shards (--cachesync-report files) "
        "into one; with GITHUB_STEP_SUMMARY set, its Markdown summary is appended there.",
    )
    parser.add_argument("reports", nargs="+", type=Path, metavar="REPORT", help="shard reports")
    parser.add_argument(
        "-o", "--output", type=Path, required=True, help="where to write the merged report"
    )
    parser.add_argument(
        "--allow-duplicates",
        action="store_true",
        help="add up the figures of a test found in several reports instead of refusing",
    )
    return parser


def main(argv: Sequence[str]) -> int:
    args = build_parser().parse_args(argv)
    try:
        report = merge_files(args.reports, allow_duplicates=args.allow_duplicates)
    except MergeError as error:
        print(f"merge-reports: {error}; nothing written.", file=sys.stderr)
        return 2
    _write_atomically(to_json(report) + "\n", args.output)
    append_step_summary(report)
    print(
        f"merge-reports: {len(args.reports)} reports, {len(report.tests)} tests -> "
        f"{args.output}; {report.score_line()}"
    )
    return 0
