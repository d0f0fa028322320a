"""A set-up error of the plugin is shown in full once, then named by the tests it also stops.

A session-scoped store that cannot be set up (an unreachable server, a refused database), or a
configuration the staleness tools refuse, fails every test that asks for it with the same
error: pytest would print the same traceback for each. The first test keeps it in full; later
ones get one line that points back to it.
"""

from __future__ import annotations

import pytest

_SEEN = pytest.StashKey[dict[tuple[str, str], str]]()


def _from_plugin(excinfo: pytest.ExceptionInfo[BaseException]) -> bool:
    return any("pytest_cachesync" in str(entry.path) for entry in excinfo.traceback)


def shorten_repeated(
    item: pytest.Item, call: pytest.CallInfo[None], report: pytest.TestReport
) -> None:
    """Replace a set-up error already shown for an earlier test by a line naming that test."""
    excinfo = call.excinfo
    if call.when != "setup" or excinfo is None or not report.failed:
        return
    if not _from_plugin(excinfo):
        return
    message = str(excinfo.value).strip()
    key = (excinfo.typename, message)
    seen = item.config.stash.setdefault(_SEEN, {})
    first = seen.setdefault(key, item.nodeid)
    if first == item.nodeid:
        return
    headline = message.splitlines()[0] if message else excinfo.typename
    report.longrepr = (
        f"{excinfo.typename}: {headline}\n"
        f"(the same set-up error as at {first}, shown there in full)"
    )
