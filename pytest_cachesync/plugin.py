"""pytest hooks and options of pytest-cachesync.

Installed, the plugin is loaded by every pytest run in the environment, so this module and the
fixture modules it registers import no store, client or web library at start-up: Redis,
SQLAlchemy, fakeredis and Flask are imported when a test first asks for a ``cachesync``
fixture (or an option names a server).
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest

from . import async_fixtures, clock_fixture, fixtures, watch_fixtures
from ._markers import CLOCK_MARKER_HELP, MARKER_HELP
from ._options import add_options, resolve
from ._pytest_shortcuts import shortcuts
from ._session import RUNTIME_KEY, configure, preflight
from .staleness.report import (
    FIGURES_KEY,
    REPORT_KEY,
    WORKEROUTPUT_KEY,
    SessionFigures,
    observed,
)


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER_HELP)
    config.addinivalue_line("markers", CLOCK_MARKER_HELP)
    runtime = configure(config, resolve(config))
    config.stash[FIGURES_KEY] = SessionFigures()
    config.pluginmanager.register(shortcuts(config), "cachesync-shortcuts")
    config.pluginmanager.register(fixtures, "cachesync-fixtures")
    config.pluginmanager.register(clock_fixture, "cachesync-clock-fixture")
    config.pluginmanager.register(watch_fixtures, "cachesync-watch-fixtures")
    config.pluginmanager.register(async_fixtures, "cachesync-async-fixtures")
    flask_plugin = config.pluginmanager.get_plugin("flask")
    if getattr(flask_plugin, "__name__", "").startswith("pytest_flask"):
        # pytest-flask's live_server forks; the plugin's serves from a thread on the test's
        # stores (registered after pytest-flask, so its fixture is the one tests get).
        from .integrations import pytest_flask

        config.pluginmanager.register(pytest_flask, "cachesync-pytest-flask")
    if runtime.settings.flask_caching.value:
        from .integrations import flask_caching

        config.pluginmanager.register(flask_caching, "cachesync-flask-caching")
    if runtime.settings.redis_targets.value:
        # Autouse: registered only when set, so other sessions pay nothing per test.
        from . import _import_targets

        config.pluginmanager.register(_import_targets, "cachesync-redis-targets")


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    preflight(session.config, session.config.stash[RUNTIME_KEY])


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    # Before pytest tears the test's fixtures down: they look at what runs next.
    item.stash[fixtures.NEXT_ITEM] = nextitem


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if call.excinfo is not None:
        from ._setup_errors import shorten_repeated

        shorten_repeated(item, call, report)
    return report


def pytest_report_header(config: pytest.Config) -> list[str] | None:
    runtime = config.stash.get(RUNTIME_KEY, None)
    if runtime is None or not runtime.settings.configured:
        # Installed but not set up for this project: its runs stay as they were.
        return None
    from ._header import header_lines

    return header_lines(runtime)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    figures = node.config.stash.get(FIGURES_KEY, None)
    if figures is not None:
        figures.add_worker_output(getattr(node, "workeroutput", None))


def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    figures = config.stash.get(FIGURES_KEY, None)
    if figures is None:
        return
    workeroutput = getattr(config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput[WORKEROUTPUT_KEY] = figures.worker_output()
        return
    from .staleness.report import write_json

    report = config.stash[REPORT_KEY] = figures.report()
    settings = config.stash[RUNTIME_KEY].settings
    path = settings.report.value
    if path:
        write_json(report, config.invocation_params.dir / path)
    if settings.map.value:
        from .staleness.map_page import write_page

        write_page(report.invalidation_map, config.invocation_params.dir / settings.map.value)
    if observed(report):
        from .staleness.markdown import append_step_summary

        append_step_summary(report)
    if report.checked_without_traffic and session.exitstatus == pytest.ExitCode.OK:
        # Every oracle check passed by comparing the app with itself: not a pass.
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    from .staleness.report import render

    report = config.stash.get(REPORT_KEY, None)
    if report is not None and observed(report):
        render(report, terminalreporter)
