"""pytest hooks and options of pytest-cachesync."""

from __future__ import annotations

import pytest

from . import fixtures
from .markers import MARKER_HELP
from .runtime import RUNTIME_KEY, configure, preflight
from .settings import add_options, describe_sources, resolve


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER_HELP)
    configure(config, resolve(config))
    config.pluginmanager.register(fixtures, "cachesync-fixtures")


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    preflight(session.config, session.config.stash[RUNTIME_KEY])


def pytest_report_header(config: pytest.Config) -> str | None:
    from .header import header_line

    runtime = config.stash.get(RUNTIME_KEY, None)
    if runtime is None:
        return None
    return header_line(runtime, describe_sources)
