"""Fixtures of the staleness tools: the spy, the oracle client, TTL bounds at teardown, and
the routes that bring an app's cache libraries onto the test's Redis for the spy to see."""

from __future__ import annotations

from collections.abc import Generator, Iterator
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any

import pytest

from ._markers import marker_options
from ._pytest_shortcuts import insert_fixture
from ._session import RUNTIME_KEY, Runtime
from .clock_fixture import CLOCK_KEY
from .staleness.report import FIGURES_KEY

if TYPE_CHECKING:
    import redis
    import sqlalchemy as sa

    from .integrations.flask_caching import Routes
    from .staleness.oracle import CacheSyncClient, OracleClient
    from .staleness.patterns import TtlPolicy
    from .staleness.spy import RedisSpy
    from .staleness.watch import Watch
    from .stores.redis import RedisKeyspace


def ttl_policy(node: pytest.Item, runtime: Runtime) -> TtlPolicy | None:
    """The TTL bounds of a test: its marker's, else the configured ones, else none."""
    marked = marker_options(node).ttl_bounds
    if marked is not None:
        return marked
    return runtime.settings.ttl_bounds.value


def oracle_mode(node: pytest.Item, runtime: Runtime) -> bool:
    """Whether the test runs in oracle mode: its marker's ``oracle=``, else the setting."""
    marked = marker_options(node).oracle
    return runtime.settings.oracle.value if marked is None else marked


WATCH_FIXTURE = "_cachesync_watch"
KEY_NAMESPACES = pytest.StashKey[list[str]]()
"""Key prefixes of the cache libraries routed in a test, shared with its spy's classifier."""
_WATCH = pytest.StashKey["Watch"]()


@pytest.fixture
def _cachesync_watch(
    request: pytest.FixtureRequest,
    cachesync_redis: redis.Redis,
    _cachesync_keyspace: RedisKeyspace,
    cachesync_engine: sa.Engine,
) -> Iterator[Watch]:
    from .staleness.watch import Watch, clock_time

    # The runtime from the stash, not a fixture: each fixture in a test's closure costs time.
    runtime = request.config.stash[RUNTIME_KEY]
    item = request.node
    watch = Watch.install(
        cachesync_redis,
        cachesync_engine,
        runtime.settings.cache_patterns.value,
        prefix=_cachesync_keyspace.key_prefix,
        now=clock_time(lambda: item.stash.get(CLOCK_KEY, None)),
        lease_prefix=runtime.settings.lease_prefix.value,
        namespaces=item.stash.setdefault(KEY_NAMESPACES, []),
        invalidation_map=runtime.settings.invalidation_map.value,
    )
    from .staleness.exemptions import parse_exemptions

    exempt = runtime.settings.invalidation_exempt
    watch.exemptions = parse_exemptions(exempt.value, exempt.source) + parse_exemptions(
        marker_options(item).invalidation_exempt, "marker"
    )
    item.stash[_WATCH] = watch
    try:
        yield watch
    finally:
        del item.stash[_WATCH]
        try:
            figures = watch.figures(item.nodeid)
        finally:
            watch.uninstall()
        request.config.stash[FIGURES_KEY].add(figures)
    try:
        watch.checker.raise_unentered()
    except AssertionError as error:
        pytest.fail(str(error), pytrace=False)
    watch.spy.assert_within_prefix()
    policy = ttl_policy(item, runtime)
    if policy is not None:
        watch.check_ttl_policy(policy)


@pytest.fixture
def cachesync_spy(_cachesync_watch: Watch) -> RedisSpy:
    """The cache spy on the test's Redis client: hits, misses, fills and invalidations per key.

    Every command sent through ``cachesync.redis`` (single commands, pipelines, MULTI/EXEC,
    scripts) is observed for the duration of the test and the client is restored at teardown.
    Keys matching ``--cachesync-cache-patterns`` are cache, the others state. Assert with
    ``assert_hit(key_or_pattern)``, ``assert_missed``, ``assert_filled``,
    ``assert_invalidated``, ``assert_not_hit`` and ``assert_commands_at_most(n)``; ``stats()``
    gives the figures per pattern. SQL statements on ``cachesync.engine`` are recorded alongside
    (``cachesync.sql``). Also reachable as ``cachesync.spy``.
    """
    return _cachesync_watch.spy


@pytest.fixture
def cachesync_client(
    request: pytest.FixtureRequest, _cachesync_watch: Watch
) -> Iterator[CacheSyncClient]:
    """A test client for your ``app`` fixture; in oracle mode it checks every GET.

    A Flask app gets ``app.test_client()``; an ASGI app (FastAPI, Starlette) gets Starlette's
    ``TestClient``, opened for the test (its lifespan runs). With ``--cachesync-oracle`` (or
    ``@pytest.mark.cachesync(oracle=True)``) every GET is replayed with the cache bypassed and
    compared; a read staler than the allowed staleness (``--cachesync-allowed-staleness``, or
    the marker's ``staleness=``; 0 = read-your-writes) fails the test at that GET. Otherwise it
    is the plain test client, at no replay cost. GETs of paths matching
    ``--cachesync-oracle-skip`` (ops endpoints that describe Redis itself) are not replayed;
    log records a replay creates carry ``cachesync_replay=True``. Either way the cache figures
    of the test go to the report. ``app`` is the pytest-flask convention: define an ``app``
    fixture returning your application.
    """
    from .staleness.oracle import OracleClient

    # Failures are raised outside the except blocks, which would print them twice, chained.
    try:
        app = request.getfixturevalue("app")
    except pytest.FixtureLookupError:
        app = None
    if app is None:
        pytest.fail(
            "cachesync_client needs an `app` fixture returning your Flask or ASGI application, "
            "e.g. in conftest.py:\n\n    @pytest.fixture\n    def app(cachesync):\n"
            "        return create_app(redis=cachesync.redis, db=cachesync.bind)",
            pytrace=False,
        )
    test_client = getattr(app, "test_client", None)
    if callable(test_client):
        yield _checked(request, _cachesync_watch, test_client(), OracleClient)
        return
    from .staleness.asgi_oracle import AsgiOracleClient, is_asgi_app, test_client_class

    if not is_asgi_app(app):
        pytest.fail(
            f"cachesync_client: the `app` fixture returned {type(app).__name__}, neither a "
            "Flask application (it has no test_client()) nor an ASGI one (an async callable).",
            pytrace=False,
        )
    try:
        client_class = test_client_class()
    except RuntimeError as error:
        missing = str(error)
    else:
        missing = ""
    if missing:
        pytest.fail(missing, pytrace=False)
    # The app runs on the test client's own thread: a replay must reroute that thread too.
    _cachesync_watch.spy.route_every_thread = True
    with client_class(app) as client:
        yield _checked(request, _cachesync_watch, client, AsgiOracleClient)


def _checked(
    request: pytest.FixtureRequest, watch: Watch, client: Any, kind: type[OracleClient]
) -> Any:
    """``client`` itself, or in oracle mode the oracle around it."""
    options = marker_options(request.node)
    runtime = request.config.stash[RUNTIME_KEY]
    settings = runtime.settings
    if not oracle_mode(request.node, runtime):
        return client
    allowed = settings.allowed_staleness.value if options.staleness is None else options.staleness
    try:
        return watch.oracle(
            client,
            allowed_staleness=allowed,
            ignore=options.ignore,
            skip=settings.oracle_skip.value,
            kind=kind,
        )
    except RuntimeError as error:
        refusal = str(error)
    pytest.fail(refusal, pytrace=False)


@pytest.fixture
def _cachesync_routes(
    request: pytest.FixtureRequest,
    cachesync_redis: redis.Redis,
    _cachesync_keyspace: RedisKeyspace,
) -> Iterator[Routes]:
    """Cache libraries of the app routed to the test's Redis, undone when the test ends."""
    from .integrations.flask_caching import Routes

    namespaces = request.node.stash.setdefault(KEY_NAMESPACES, [])
    with ExitStack() as stack:
        yield Routes(stack, cachesync_redis, _cachesync_keyspace.key_prefix, namespaces)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    # TTL bounds are checked for every test that uses the plugin's Redis, which needs the spy
    # from the test's start: its watch is set up first among the test's own fixtures. A hook,
    # not an autouse fixture, so that tests without bounds pay no fixture.
    names: list[str] | None = getattr(item, "fixturenames", None)
    if names is None or WATCH_FIXTURE in names:
        return
    if "cachesync_redis" not in names and "cachesync" not in names:
        return
    runtime = item.config.stash[RUNTIME_KEY]
    # Oracle mode watches every test on the plugin's stores: a missing invalidation fails a
    # test that never reads the key again, whatever client it drives the app with.
    settings = runtime.settings
    mapped = settings.invalidation_map.value and bool(settings.cache_patterns.value)
    if ttl_policy(item, runtime) is None and not (mapped and oracle_mode(item, runtime)):
        return
    insert_fixture(item, WATCH_FIXTURE)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, object, object]:
    # After the test body, before teardown: a failure here is the test's own, not an error.
    result = yield
    watch = item.stash.get(_WATCH, None)
    if watch is not None and oracle_mode(item, item.config.stash[RUNTIME_KEY]):
        from .staleness.map_analysis import findings

        problems = findings(watch.invalidation_map())
        if problems:
            exempt = "\n".join(f"  {line}" for line in problems)
            pytest.fail(
                f"oracle mode: {len(problems)} invalidation problem(s) in this test:\n{exempt}\n"
                "If one is intended, exempt it: @pytest.mark.cachesync(invalidation_exempt="
                "'METHOD /rule -> pattern') or the ini list cachesync_invalidation_exempt.",
                pytrace=False,
            )
    return result
