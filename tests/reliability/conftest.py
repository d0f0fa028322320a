"""Fixtures of the reliability suite: the sample app on the plugin's stores, plus figures.

``app``/``client``/``redis_client``/``db_bind``/``kit`` come from tests/conftest.py; only the
app's config differs (no rate limit). Figures recorded through ``figures`` are printed at the
end of the run and kept in ``artifacts/reliability.json``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from .figures import Figures, render

_FIGURES = pytest.StashKey[Figures]()


@pytest.fixture
def app_config(app_config: dict[str, Any]) -> dict[str, Any]:
    # Thousands of requests from one client: the limiter has its own tests.
    app_config["RATE_LIMIT_PER_HOUR"] = 0
    return app_config


@pytest.fixture(scope="session")
def figures(pytestconfig: pytest.Config) -> Iterator[Figures]:
    collected = pytestconfig.stash.setdefault(_FIGURES, Figures())
    yield collected
    collected.save()


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    collected = config.stash.get(_FIGURES, None)
    if collected is None or not collected.groups:
        return
    terminalreporter.section("reliability figures")
    for line in render(collected.groups):
        terminalreporter.write_line(line)
