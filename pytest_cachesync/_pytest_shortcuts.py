"""Every place the plugin goes around pytest's fixture machinery, and what that saves.

pytest 9 builds a new ``FixtureDef`` (and inspects a signature) for ``request`` each time a
fixture in a test's closure that names ``request`` is executed for the test, session-scoped and
cached ones included; ``pytestconfig`` and ``tmp_path_factory`` name it. Measured with the
embedded rows of ``bench/compare.py`` (plugin and control tests interleaved in one process; see
docs/benchmarks.md): with the plugin's fixtures declaring ``request``, ``pytestconfig``,
``tmp_path_factory`` and ``cachesync_metadata`` instead of the shortcuts here, the median
overhead per ``cachesync`` test went from 0.36 to 0.52 ms (rollback) and from 0.48 to 0.68 ms
(truncate): over 40%, where the rule is to keep a shortcut worth more than 5%. So:

- the plugin's fixtures get the config from ``_cachesync_config`` (a session fixture of a
  plugin object that holds the config, so it names no ``request``) and their test from
  :func:`current_item` (set by a setup hook) instead of ``request.node``;
- ``_cachesync_sql`` reaches ``tmp_path_factory`` through the test's own request, once;
- the staleness watch is put in front of a test's fixtures by its setup hook (changing
  ``item.fixturenames``), not by an autouse fixture every test would pay for.

Every fixture whose dependencies name no ``request`` declares them, so ``--setup-plan`` shows
them and pytest checks their scopes; the fixtures only some tests use (the spy, the clock, the
client) take ``request`` as usual. The next test (``NEXT_ITEM``) comes from the documented
``pytest_runtest_teardown`` hook. The only other private name the package touches is
``_pytest.timing`` (clock/pytest_timing.py), for correctness: pytest's timers stay on real time
while a clock travels.
"""

from __future__ import annotations

from typing import Any

import pytest

CURRENT_ITEM = pytest.StashKey[pytest.Item]()
"""The test being set up, run or torn down."""


def shortcuts(config: pytest.Config) -> object:
    """A plugin object: the ``_cachesync_config`` fixture and the hook that sets CURRENT_ITEM."""

    def config_fixture() -> pytest.Config:
        return config

    # `pytest --fixtures` lists a fixture under its function's module: with the fixtures that
    # use this one, not under a heading of its own whose only fixture is private, so hidden.
    config_fixture.__module__ = f"{__package__}.fixtures"

    class Shortcuts:
        # A static method of a class made per config: pytest deprecates session fixtures that
        # are instance methods, and a fixture naming ``request`` is the cost avoided here.
        _cachesync_config = pytest.fixture(scope="session", name="_cachesync_config")(
            staticmethod(config_fixture)
        )

        @pytest.hookimpl(tryfirst=True)
        def pytest_runtest_setup(self, item: pytest.Item) -> None:
            item.config.stash[CURRENT_ITEM] = item

    return Shortcuts()


def current_item(config: pytest.Config) -> pytest.Item:
    """The test whose fixtures are being set up (``request.node`` without a ``request``)."""
    return config.stash[CURRENT_ITEM]


def fixture_value(item: pytest.Item, name: str) -> Any:
    """The value of fixture ``name`` for ``item``, set up on first use.

    pytest offers ``getfixturevalue`` only on request objects; the item's own request is the
    one a fixture without ``request`` can reach (pytest-django reaches it the same way).
    """
    request = getattr(item, "_request", None)
    if request is None:
        raise RuntimeError(
            f"cachesync: cannot set up fixture {name!r} on demand in {item.nodeid}; request it "
            "in the test's arguments instead."
        )
    return request.getfixturevalue(name)


def insert_fixture(item: pytest.Item, name: str) -> None:
    """Make ``item`` use fixture ``name``, set up before its function-scoped fixtures."""
    names: list[str] = list(getattr(item, "fixturenames", ()))
    info = getattr(item, "_fixtureinfo", None)
    definitions = getattr(info, "name2fixturedefs", None) or {}
    index = len(names)
    for position, other in enumerate(names):
        fixturedefs = definitions.get(other)
        if fixturedefs and fixturedefs[-1].scope == "function":
            # Where autouse fixtures of function scope would stand: after the wider ones.
            index = position
            break
    # A new list: parametrized tests share the one pytest built.
    item.fixturenames = [*names[:index], name, *names[index:]]  # type: ignore[attr-defined]
