"""The run's cache figures: collected per test, sent by xdist workers, merged by the controller."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from .report import ItemFigures, Report, merge, worker_output

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
