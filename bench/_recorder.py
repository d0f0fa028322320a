"""pytest plugin loaded into measured runs (`-p bench._recorder`): each test's own time.

It writes, by node id, as JSON to the file named by BENCH_RECORD:
- `cycles`: the wall time of each test's whole run protocol (setup, call, teardown and the
  reports of each), so work a fixture leaves to the moments between its phases is counted;
- `durations`: setup + call + teardown seconds as pytest reports them;
- `outcomes`.
Under xdist only the controller writes: it sees every report, but it runs no protocol, so
`cycles` stays empty there.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Generator

import pytest

_cycles: dict[str, float] = {}
_durations: dict[str, float] = {}
_outcomes: dict[str, str] = {}


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, object, object]:
    start = time.perf_counter()
    try:
        return (yield)
    finally:
        _cycles[item.nodeid] = time.perf_counter() - start


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
            record = {"cycles": _cycles, "durations": _durations, "outcomes": _outcomes}
            json.dump(record, handle)
