"""``CacheSync``: the object behind the ``cachesync`` fixture."""

from __future__ import annotations

from collections.abc import Callable

import redis
import sqlalchemy as sa
from sqlalchemy.orm import Session


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
    """

    def __init__(
        self,
        *,
        redis: redis.Redis,
        db: Session,
        engine: sa.Engine,
        bind: sa.Engine | sa.Connection,
        key_prefix: str,
        db_reset: str,
        reset_redis: Callable[[], None],
        reset_db: Callable[[], None],
        list_keys: Callable[[], list[bytes]],
    ) -> None:
        self.redis = redis
        self.db = db
        self.engine = engine
        self.bind = bind
        self.key_prefix = key_prefix
        self.db_reset = db_reset
        self._reset_redis = reset_redis
        self._reset_db = reset_db
        self._list_keys = list_keys

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

    def __repr__(self) -> str:
        return (
            f"<CacheSync db_reset={self.db_reset!r} key_prefix={self.key_prefix!r} "
            f"engine={self.engine.url.render_as_string(hide_password=True)!r}>"
        )
