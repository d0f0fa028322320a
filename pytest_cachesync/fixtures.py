"""The plugin's fixtures: clean Redis and SQL stores for every test that asks for them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest

from ._markers import MARKER_NAME, marker_options
from ._pytest_shortcuts import current_item, fixture_value
from ._session import RUNTIME_KEY, Runtime
from .watch_fixtures import ttl_policy

# Redis, SQLAlchemy and the stores are imported inside the fixtures, on first use: this module
# is registered in every session of every project that has the plugin installed.
if TYPE_CHECKING:
    import redis
    import sqlalchemy as sa
    from sqlalchemy.orm import Session

    from ._options import DbReset
    from .facade import CacheSync
    from .stores.redis import RedisKeyspace
    from .stores.sql import TestDatabase
    from .stores.truncate import Truncator, WriteTracker


@dataclass
class SqlStore:
    """The session's test database, engine and truncation machinery."""

    database: TestDatabase
    engine: sa.Engine
    tracker: WriteTracker
    truncator: Truncator
    default_strategy: DbReset


@dataclass
class TestSql:
    """One test's SQL side: its Session, what to hand the app, and how to reset it."""

    __test__ = False

    get_session: Callable[[], Session]  # made on first use
    bind: sa.Engine | sa.Connection
    engine: sa.Engine
    strategy: DbReset
    reset: Callable[[], None]
    close: Callable[[], None]

    @property
    def session(self) -> Session:
        return self.get_session()


# The fixtures take the config from ``_cachesync_config`` and their test from ``current_item``
# rather than ``request``: see _pytest_shortcuts for why and what that saves. For the same reason
# ``cachesync`` sets both stores up itself instead of depending on ``cachesync_redis`` and
# ``cachesync_db``. Whichever fixture asks first sets a store up for the test (kept on
# ``item.stash``) and tears it down; later ones share it.

# The test pytest runs next (None after the last one, or when the session stops early), set by
# the plugin's teardown hook before the test's fixtures are torn down.
NEXT_ITEM = pytest.StashKey["pytest.Item | None"]()

_TEST_REDIS = pytest.StashKey["redis.Redis"]()
_TEST_SQL = pytest.StashKey[TestSql]()


@pytest.fixture(scope="session")
def _cachesync_runtime(_cachesync_config: pytest.Config) -> Runtime:
    return _cachesync_config.stash[RUNTIME_KEY]


@pytest.fixture(scope="session")
def _cachesync_keyspace(_cachesync_config: pytest.Config) -> Iterator[RedisKeyspace]:
    from .stores.redis import RedisKeyspace

    runtime = _cachesync_config.stash[RUNTIME_KEY]
    target = runtime.redis_target
    plan = runtime.redis_plan
    if target is None:
        keyspace = RedisKeyspace.embedded(plan)
    else:
        keyspace = RedisKeyspace.on_server(target, plan)
    keyspace.check(allow_foreign=runtime.settings.allow_foreign_redis.value)
    keyspace.claim()
    try:
        yield keyspace
        if not runtime.settings.keep.value:
            # A developer's server keeps no test's keys after the session: only the sentinel.
            keyspace.empty()
    finally:
        keyspace.close()


def _start_test_redis(
    item: pytest.Item, keyspace: RedisKeyspace
) -> tuple[Callable[[], redis.Redis], bool]:
    """Start emptying the test's keyspace; the call returned waits for that and gives the client.

    In two steps so that the SQL reset runs while the Redis server empties the keyspace. The
    flag says whether this call set the keyspace up for the test (then it ends it too).
    """
    shared = item.stash.get(_TEST_REDIS, None)
    if shared is not None:
        return (lambda: shared), False
    wait = keyspace.start_reset() if marker_options(item).reset else None

    def ready() -> redis.Redis:
        if wait is not None:
            wait()
        item.stash[_TEST_REDIS] = keyspace.client
        return keyspace.client

    return ready, True


def _end_test_redis(item: pytest.Item, keyspace: RedisKeyspace) -> None:
    del item.stash[_TEST_REDIS]
    keyspace.mark()


def _redis_allowed(runtime: Runtime) -> set[tuple[object, ...]]:
    """The one Redis database a test may connect to: its own keyspace's (none when embedded)."""
    target = runtime.redis_target
    if target is None:
        return set()
    db = runtime.redis_plan.db
    if target.path is not None:
        return {("unix", target.path, db)}
    return {("tcp", target.host, target.port, db)}


def _guard_redis(item: pytest.Item, runtime: Runtime) -> Callable[[], None]:
    from .stores.connections import guard_test

    patterns = marker_options(item).allow_connections
    return guard_test(item, patterns, redis_allowed=_redis_allowed(runtime))


def _guard_sql(item: pytest.Item, store: SqlStore) -> Callable[[], None]:
    from .stores.connections import connect_args, guard_test

    patterns = marker_options(item).allow_connections
    return guard_test(item, patterns, sql_allowed=[connect_args(store.engine)])


@pytest.fixture
def cachesync_redis(
    _cachesync_config: pytest.Config, _cachesync_keyspace: RedisKeyspace
) -> Iterator[redis.Redis]:
    """A redis-py client on the test's own keyspace, emptied before the test.

    On the default backend it is a ``fakeredis.FakeRedis`` on a server private to this session
    and xdist worker; with ``--cachesync-redis-url`` it is a ``redis.Redis`` on the worker's own
    database number (or, in prefix mode, the shared database: then every key must start with
    ``cachesync.key_prefix``). Emptied *before* each test, so a test that crashed cannot leak
    into the next one; ``@pytest.mark.cachesync(reset=False)`` skips that.
    """
    item = current_item(_cachesync_config)
    ready, owned = _start_test_redis(item, _cachesync_keyspace)
    client = ready()
    end_guard = _guard_redis(item, _cachesync_config.stash[RUNTIME_KEY])
    yield client
    try:
        if owned:
            _end_test_redis(item, _cachesync_keyspace)
    finally:
        end_guard()


@pytest.fixture(scope="session")
def cachesync_metadata(_cachesync_runtime: Runtime) -> sa.MetaData:
    """The MetaData whose tables the plugin creates once per session and worker.

    Override this fixture in your conftest.py to return your models' MetaData (for example
    ``Base.metadata``), or set the ini key ``cachesync_metadata = myapp.models:Base``. Without
    either, it is an empty MetaData: enough for tests that only use Redis.
    """
    import sqlalchemy as sa

    from ._import_targets import load_metadata

    path = _cachesync_runtime.settings.metadata.value
    return load_metadata(path) if path else sa.MetaData()


@pytest.fixture(scope="session")
def _cachesync_sql(
    _cachesync_config: pytest.Config, cachesync_metadata: sa.MetaData
) -> Iterator[SqlStore]:
    from .stores.engines import make_engine
    from .stores.savepoints import install_events, uninstall_events
    from .stores.sql import plan_database
    from .stores.truncate import Truncator, WriteTracker

    runtime = _cachesync_config.stash[RUNTIME_KEY]
    # Looked up, once, rather than declared: it names ``request`` (see _pytest_shortcuts).
    item = current_item(_cachesync_config)
    tmp_path_factory: pytest.TempPathFactory = fixture_value(item, "tmp_path_factory")
    reuse = runtime.settings.reuse_db.value
    database = plan_database(runtime.db_url, runtime.worker, tmp_path_factory.getbasetemp())
    migrated = _migrate(_cachesync_config, runtime, database, reuse=reuse)
    reused = database.create(reuse=reuse) if migrated is None else migrated
    engine = make_engine(database.url)
    if migrated is not None:
        from .integrations.alembic import schema_of

        # What the migrations made, whatever cachesync_metadata declares.
        cachesync_metadata = schema_of(engine)
    tracker = WriteTracker(engine, cachesync_metadata)
    truncator = Truncator(engine, cachesync_metadata, tracker)
    try:
        if migrated is None:
            cachesync_metadata.create_all(engine)
        tracker.install()
        install_events(engine)
        if reused:
            # Rows a previous session left behind are deleted before the first test.
            tracker.mark_all()
        yield SqlStore(database, engine, tracker, truncator, runtime.settings.db_reset.value)
        if reuse and not runtime.settings.keep.value:
            # A kept database keeps its tables, not the last test's rows.
            tracker.mark_all()
            truncator.reset()
    finally:
        tracker.uninstall()
        uninstall_events(engine)
        truncator.close()
        engine.dispose()
        if not reuse:
            database.drop()


def _migrate(
    config: pytest.Config, runtime: Runtime, database: TestDatabase, *, reuse: bool
) -> bool | None:
    """With ``alembic_config`` set: the database created and upgraded to head, and whether
    it was reused; None without it (the caller creates the tables of the metadata)."""
    setting = runtime.settings.alembic_config
    if not setting.value:
        return None
    from .integrations import alembic
    from .stores.sql import ServerDatabase

    path = alembic.resolve_config_path(setting.value, setting.source, config)
    template = None
    url = runtime.db_url
    on_server = url is not None and url.get_backend_name() == "postgresql" and url.database
    if runtime.settings.alembic_template.value and url is not None and on_server:
        template = ServerDatabase(url.set(database=f"test_{url.database}_template"))
    return alembic.prepare(database, path, reuse=reuse, template=template)


@pytest.fixture(scope="session")
def cachesync_engine(_cachesync_sql: SqlStore) -> sa.Engine:
    """The SQLAlchemy Engine on this session's (and xdist worker's) test database.

    The plugin creates the database (a SQLite file in pytest's basetemp by default, ``test_X``
    or ``test_X_gwN`` on a server), creates the tables of ``cachesync_metadata`` once, and drops
    the database at the end unless ``--cachesync-reuse-db``.
    """
    return _cachesync_sql.engine


def _test_sql(item: pytest.Item, store: SqlStore) -> tuple[TestSql, bool]:
    """The test's SQL side, and whether this call set it up (then it ends it too)."""
    shared = item.stash.get(_TEST_SQL, None)
    if shared is not None:
        return shared, False
    options = marker_options(item)
    strategy = options.db_reset or store.default_strategy
    if options.reset:
        # Rows committed outside a rolled-back transaction (truncate mode, or an app engine
        # that bypassed the test's connection) are gone before the test starts: deletions sent
        # after the previous test are waited for here, and tables written since are emptied.
        store.truncator.reset(restart_all_sequences=strategy == "truncate")
    test_sql = _rollback_sql(store) if strategy == "rollback" else _truncate_sql(store, item)
    item.stash[_TEST_SQL] = test_sql
    return test_sql, True


def _end_test_sql(item: pytest.Item, test_sql: TestSql) -> None:
    del item.stash[_TEST_SQL]
    test_sql.close()


def _rollback_sql(store: SqlStore) -> TestSql:
    from .stores.rollback import RollbackScope

    scope = RollbackScope(store.engine)
    store.tracker.ignored_connection = scope.connection

    def reset() -> None:
        scope.reset()
        store.truncator.reset()

    def close() -> None:
        store.tracker.ignored_connection = None
        scope.close()

    return TestSql(lambda: scope.session, scope.connection, store.engine, "rollback", reset, close)


def _truncate_sql(store: SqlStore, item: pytest.Item) -> TestSql:
    from sqlalchemy.orm import Session

    made: list[Session] = []

    def get_session() -> Session:
        if not made:
            made.append(Session(bind=store.engine))
        return made[0]

    def close_session() -> None:
        if made:
            made[0].close()

    def reset() -> None:
        close_session()
        store.truncator.reset(restart_all_sequences=True)

    def close() -> None:
        close_session()
        if _resets_sql(item.stash.get(NEXT_ITEM, None)):
            # The server deletes the test's rows while pytest moves on to the next test, whose
            # setup waits for that (and deletes whatever was written in between). Only then:
            # a next test with reset=False, or none at all (the last, or -x after a failure),
            # finds the rows as this test left them.
            store.truncator.start_reset(restart_all_sequences=True)

    return TestSql(get_session, store.engine, store.engine, "truncate", reset, close)


def _resets_sql(item: pytest.Item | None) -> bool:
    """Whether ``item`` empties the SQL tables before it runs (an invalid marker counts as no)."""
    if item is None:
        return False
    names = getattr(item, "fixturenames", ())
    if "cachesync" not in names and "cachesync_db" not in names:
        return False
    reset = next(
        (m.kwargs["reset"] for m in item.iter_markers(MARKER_NAME) if "reset" in m.kwargs), True
    )
    return reset is True


@pytest.fixture
def cachesync_db(_cachesync_config: pytest.Config, _cachesync_sql: SqlStore) -> Iterator[Session]:
    """A SQLAlchemy Session for the test, isolated by the chosen strategy.

    ``rollback`` (default): the Session is bound to a connection whose outer transaction is
    rolled back after the test; ``commit()`` only releases a SAVEPOINT. ``truncate``: a plain
    Session on the engine; rows of the tables written are deleted before the next test.
    Choose with ``--cachesync-db-reset`` or per test with
    ``@pytest.mark.cachesync(db_reset="truncate")``.
    """
    item = current_item(_cachesync_config)
    test_sql, owned = _test_sql(item, _cachesync_sql)
    end_guard = _guard_sql(item, _cachesync_sql)
    yield test_sql.session
    try:
        if owned:
            _end_test_sql(item, test_sql)
    finally:
        end_guard()


@pytest.fixture
def cachesync(
    _cachesync_config: pytest.Config,
    _cachesync_keyspace: RedisKeyspace,
    _cachesync_sql: SqlStore,
) -> Iterator[CacheSync]:
    """Everything a test of a caching app needs, in one object.

    ``cachesync.redis`` (the test's Redis client), ``cachesync.db`` (its Session),
    ``cachesync.engine``, ``cachesync.bind`` (hand this to the app: a Connection in rollback
    mode, the Engine in truncate mode), ``cachesync.key_prefix`` and ``cachesync.reset()`` to
    empty both stores mid-test. Set up on first use: ``cachesync.clock`` (time travel),
    ``cachesync.spy``, ``cachesync.sql``, ``cachesync.race`` and the staleness assertions
    ``cachesync.assert_fresh(read)``, ``assert_fresh_within(read, seconds)``,
    ``assert_invalidated(*keys)`` and ``check_ttl_policy()``.
    """
    from .facade import CacheSync

    config = _cachesync_config
    item = current_item(config)
    keyspace = _cachesync_keyspace
    redis_ready, redis_owned = _start_test_redis(item, keyspace)
    test_sql, sql_owned = _test_sql(item, _cachesync_sql)
    client = redis_ready()
    runtime = config.stash[RUNTIME_KEY]
    end_redis_guard = _guard_redis(item, runtime)
    end_sql_guard = _guard_sql(item, _cachesync_sql)
    yield CacheSync(
        redis=client,
        db=test_sql.get_session,
        engine=test_sql.engine,
        bind=test_sql.bind,
        key_prefix=keyspace.key_prefix,
        db_reset=test_sql.strategy,
        reset_redis=keyspace.reset,
        reset_db=test_sql.reset,
        list_keys=keyspace.keys,
        fixture=lambda name: fixture_value(item, name),
        ttl_policy=lambda: ttl_policy(item, runtime),
    )
    try:
        if sql_owned:
            _end_test_sql(item, test_sql)
    finally:
        try:
            if redis_owned:
                _end_test_redis(item, keyspace)
        finally:
            end_sql_guard()
            end_redis_guard()
