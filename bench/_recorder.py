"""pytest plugin loaded into measured runs (`-p bench._recorder`): each test's own duration.

It writes setup + call + teardown seconds and the outcome of every test, by node id, as JSON to
the file named by BENCH_RECORD. Under xdist only the controller writes: it sees every report.
"""

from __future__ import annotations

import json
import os

import pytest

_durations: dict[str, float] = {}
_outcomes: dict[str, str] = {}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    _durations[report.nodeid] = _durations.get(report.nodeid, 0.0) + report.duration
    if report.failed:
        _outcomes[report.nodeid] = "failed"
    elif report.when == "call" or report.skipped:
        _outcomes.setdefault(report.nodeid, report.outcome)


def pytest_sessionfinish(session: pytest.Session) -> None:
    if hasattr(session.config, "workerinput"):
        return
    path = os.environ.get("BENCH_RECORD")
    if path:
        with open(path, "w", encoding="utf-8") as handle:
            json.dump({"durations": _durations, "outcomes": _outcomes}, handle)
