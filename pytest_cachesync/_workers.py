"""Which pytest-xdist worker this process is, and how many there are."""

from __future__ import annotations

from dataclasses import dataclass

import pytest


@dataclass(frozen=True)
class Worker:
    """``name`` is ``gw<N>`` under xdist and ``main`` otherwise; ``index`` is N (0 otherwise)."""

    name: str
    index: int
    count: int

    @property
    def is_xdist(self) -> bool:
        return self.name != "main"

    @property
    def suffix(self) -> str:
        """Appended to per-worker resource names: ``_gw0`` under xdist, empty otherwise."""
        return f"_{self.name}" if self.is_xdist else ""


MAIN = Worker("main", 0, 1)


def current_worker(config: pytest.Config) -> Worker:
    workerinput: dict[str, object] | None = getattr(config, "workerinput", None)
    if workerinput is None:
        return MAIN
    name = str(workerinput["workerid"])
    count = int(str(workerinput.get("workercount", 1)))
    return Worker(name, int(name.removeprefix("gw")), count)


def is_xdist_controller(config: pytest.Config) -> bool:
    if getattr(config, "workerinput", None) is not None:
        return False
    return config.getoption("dist", default="no") != "no" and bool(
        config.getoption("tx", default=None)
    )


def planned_workers(config: pytest.Config) -> list[Worker]:
    """The workers whose stores this process prepares: all of them in an xdist controller."""
    if is_xdist_controller(config):
        tx = config.getoption("tx")
        count = len(tx)
        return [Worker(f"gw{i}", i, count) for i in range(count)]
    return [current_worker(config)]
