"""``CacheSync``: the object behind the ``cachesync`` fixture."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import redis
import sqlalchemy as sa
from sqlalchemy.orm import Session

if TYPE_CHECKING:
    from .clock.clock import CacheClock
    from .staleness.async_checks import AsyncInvalidationBlock
    from .staleness.checks import InvalidationBlock, StalenessChecker
    from .staleness.patterns import TtlPolicy
    from .staleness.race import RaceInjector
    from .staleness.spy import RedisSpy
    from .staleness.sql_recorder import SqlRecorder
    from .staleness.watch import Watch

T = TypeVar("T")


class CacheSync:
    """One test's stores: its Redis client, SQL session, engine and what to hand an app.

    Attributes:
        redis: client on the test's keyspace (emptied before the test).
        db: the test's Session (isolated by the chosen reset strategy).
        engine: the session-wide Engine on the test database.
        bind: what to hand an app for SQL: the test's Connection in rollback mode (the app must
            join it with ``join_transaction_mode="create_savepoint"``), the Engine in truncate
            mode.
        key_prefix: prefix the app must put in front of every key ("" unless prefix isolation).
        db_reset: the strategy this test runs under, "rollback" or "truncate".

    The time-travel clock and the staleness tools are set up on first use, so a test that
    never touches them pays nothing: ``clock`` (the ``cachesync_clock`` fixture), ``spy``
    (``cachesync_spy``), ``sql`` (the SQL statements and commits of the test), ``race`` (the
    race injector), and the assertions ``assert_fresh``, ``assert_fresh_within``,
    ``assert_invalidated`` and ``check_ttl_policy``. For asyncio apps, also on first use:
    ``async_redis`` (a ``redis.asyncio`` client on the same keyspace, seen by the spy),
    ``async_engine`` (an ``AsyncEngine`` on the test database) and the assertions
    ``assert_fresh_async``, ``assert_fresh_within_async`` and ``assert_invalidated_async``.
    """

    def __init__(
        self,
        *,
        redis: redis.Redis,
        db: Session | Callable[[], Session],
        engine: sa.Engine,
        bind: sa.Engine | sa.Connection,
        key_prefix: str,
        db_reset: str,
        reset_redis: Callable[[], None],
        reset_db: Callable[[], None],
        list_keys: Callable[[], list[bytes]],
        fixture: Callable[[str], Any] | None = None,
        ttl_policy: Callable[[], TtlPolicy | None] = lambda: None,
    ) -> None:
        self.redis = redis
        # The Session is made on first use: most tests hand the app ``bind`` and never ask.
        self._db = db
        self.engine = engine
        self.bind = bind
        self.key_prefix = key_prefix
        self.db_reset = db_reset
        self._reset_redis = reset_redis
        self._reset_db = reset_db
        self._list_keys = list_keys
        self._fixture = fixture
        self._ttl_policy = ttl_policy

    @property
    def db(self) -> Session:
        """The test's Session (isolated by the chosen reset strategy)."""
        if not isinstance(self._db, Session):
            self._db = self._db()
        return self._db

    def key(self, name: str) -> str:
        """``name`` inside the test's keyspace (with ``key_prefix`` in front)."""
        return self.key_prefix + name

    def keys(self) -> list[bytes]:
        """Every key of the test's keyspace (under ``key_prefix`` in prefix mode)."""
        return self._list_keys()

    def reset(self) -> None:
        """Empty Redis and the database mid-test, as if the test had just started."""
        self._reset_redis()
        self._reset_db()

    def route_flask_caching(self, cache: Any, *, app: Any = None) -> None:
        """Send the Redis commands of a Flask-Caching ``Cache`` to ``redis`` until the test ends.

        For ``RedisCache`` and ``RedisSentinelCache`` backends, on ``app`` (default: the app
        the Cache was initialised on, else the current app). Its ``CACHE_KEY_PREFIX`` is known
        to the cache patterns (``view/*`` matches ``flask_cache_view//lots``) and, in prefix
        isolation, ``key_prefix`` goes in front of it.
        """
        self._get("_cachesync_routes").flask_caching(cache, app=app)

    # -- time travel and staleness, set up on first use ----------------------------------------

    def _get(self, name: str) -> Any:
        if self._fixture is None:
            raise RuntimeError(f"{name} is only available inside a test run by pytest")
        return self._fixture(name)

    def _watch(self) -> Watch:
        watch: Watch = self._get("_cachesync_watch")
        return watch

    def _checker(self, what: str) -> StalenessChecker:
        watch = self._watch()
        watch.require_patterns(what)
        return watch.checker

    @property
    def clock(self) -> CacheClock:
        """The test's time-travel clock (the ``cachesync_clock`` fixture; one per test)."""
        clock: CacheClock = self._get("cachesync_clock")
        return clock

    @property
    def spy(self) -> RedisSpy:
        """The cache spy on ``redis`` (the ``cachesync_spy`` fixture)."""
        spy: RedisSpy = self._get("cachesync_spy")
        return spy

    @property
    def sql(self) -> SqlRecorder:
        """Every SQL statement run on ``engine`` during the test, and the write commits."""
        return self._watch().sql

    @property
    def race(self) -> RaceInjector:
        """The race injector: ``race.assert_no_race(key, trigger=..., during=...)``, or
        ``await race.assert_no_race_async(...)`` with coroutine functions."""
        watch = self._watch()
        watch.require_patterns("the race injector")
        return watch.race

    @property
    def async_redis(self) -> Any:
        """A ``redis.asyncio.Redis`` on the test's keyspace (the ``cachesync_async_redis``
        fixture): the spy, the clock and the bypass see it as they see ``redis``."""
        return self._get("cachesync_async_redis")

    @property
    def async_engine(self) -> Any:
        """An ``AsyncEngine`` on the test database (the ``cachesync_async_engine`` fixture)."""
        return self._get("cachesync_async_engine")

    def assert_fresh(self, read: Callable[[], T], *, ignore: Iterable[str] = ()) -> T:
        """Run ``read`` as the app would, then with the cache bypassed; the answers must match.

        Returns the first answer. A failure shows both as a diff, with the keys that served the
        stale one, their age and TTL left. ``ignore`` lists volatile fields (``"$.at"``).
        A coroutine function is refused: ``await assert_fresh_async(read)`` checks those.
        """
        __tracebackhide__ = True
        from .staleness.async_checks import sync_only

        checked = sync_only(read, "assert_fresh")
        return self._checker("assert_fresh").assert_fresh(checked, ignore=ignore)

    def assert_fresh_within(
        self, read: Callable[[], T], seconds: float, *, ignore: Iterable[str] = ()
    ) -> T:
        """``read`` may be stale now but must be fresh once ``clock`` has advanced ``seconds``."""
        __tracebackhide__ = True
        from .staleness.async_checks import sync_only

        checked = sync_only(read, "assert_fresh_within")
        checker = self._checker("assert_fresh_within")
        return checker.assert_fresh_within(checked, seconds, self.clock, ignore=ignore)

    def assert_invalidated(
        self, *keys_or_patterns: str, reads: Sequence[Callable[[], object]] = ()
    ) -> InvalidationBlock:
        """``with cachesync.assert_invalidated("user:1"):`` the block must invalidate the named
        keys (or, with ``reads``, all that they fill).

        Called without ``with`` it checks nothing, so the test fails at teardown. Coroutine
        functions in ``reads`` are refused: ``assert_invalidated_async`` takes those.
        """
        from .staleness.async_checks import sync_only

        checked = [sync_only(read, "assert_invalidated") for read in reads]
        checker = self._checker("assert_invalidated")
        return checker.assert_invalidated(*keys_or_patterns, reads=checked)

    async def assert_fresh_async(
        self, read: Callable[[], Awaitable[T]], *, ignore: Iterable[str] = ()
    ) -> T:
        """``assert_fresh`` for an async read: ``await cachesync.assert_fresh_async(read)``."""
        from .staleness.async_checks import assert_fresh_async

        return await assert_fresh_async(self._checker("assert_fresh_async"), read, ignore=ignore)

    async def assert_fresh_within_async(
        self, read: Callable[[], Awaitable[T]], seconds: float, *, ignore: Iterable[str] = ()
    ) -> T:
        """``assert_fresh_within`` for an async read."""
        from .staleness.async_checks import assert_fresh_within_async

        checker = self._checker("assert_fresh_within_async")
        return await assert_fresh_within_async(checker, read, seconds, self.clock, ignore=ignore)

    def assert_invalidated_async(
        self, *keys_or_patterns: str, reads: Sequence[Callable[[], Awaitable[object]]] = ()
    ) -> AsyncInvalidationBlock:
        """``async with cachesync.assert_invalidated_async(...)``: reads are coroutine functions.

        Called without ``async with`` it checks nothing, so the test fails at teardown.
        """
        from .staleness.async_checks import assert_invalidated_async

        checker = self._checker("assert_invalidated_async")
        return assert_invalidated_async(checker, *keys_or_patterns, reads=reads)

    def check_ttl_policy(self, policy: TtlPolicy | Mapping[str, float] | str | None = None) -> None:
        """Every cache key written so far has a TTL within its pattern's bound.

        Without ``policy``: the marker's ``ttl_bounds``, else ``--cachesync-ttl-bounds``, else
        only "has a TTL" is checked.
        """
        __tracebackhide__ = True
        from .staleness.patterns import TtlPolicy

        if policy is None:
            parsed = self._ttl_policy()
        else:
            parsed = policy if isinstance(policy, TtlPolicy) else TtlPolicy.parse(policy)
        self._watch().check_ttl_policy(parsed)

    def __repr__(self) -> str:
        return (
            f"<CacheSync db_reset={self.db_reset!r} key_prefix={self.key_prefix!r} "
            f"engine={self.engine.url.render_as_string(hide_password=True)!r}>"
        )
