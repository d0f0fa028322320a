"""Routing cache libraries of the app to the test's Redis, undone when the test ends."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any

import pytest

from .watch_fixtures import KEY_NAMESPACES

if TYPE_CHECKING:
    import redis

    from .stores.redis import RedisKeyspace


class Routes:
    """The routes taken in one test; each backend is routed once however often it is asked."""

    def __init__(
        self, stack: ExitStack, client: redis.Redis, key_prefix: str, namespaces: list[str]
    ) -> None:
        self._stack = stack
        self._client = client
        self._key_prefix = key_prefix
        self._namespaces = namespaces
        self._taken: set[tuple[int, int]] = set()

    def _add_namespace(self, namespace: str) -> None:
        if namespace not in self._namespaces:
            self._namespaces.append(namespace)

    def flask_caching(self, cache: Any, *, app: Any = None) -> None:
        from .integrations.flask_caching import route_flask_caching

        key = (id(cache), id(app if app is not None else getattr(cache, "app", None)))
        if key in self._taken:
            return
        self._stack.enter_context(
            route_flask_caching(
                cache,
                self._client,
                key_prefix=self._key_prefix,
                app=app,
                on_namespace=self._add_namespace,
            )
        )
        self._taken.add(key)


@pytest.fixture
def _cachesync_routes(
    request: pytest.FixtureRequest,
    cachesync_redis: redis.Redis,
    _cachesync_keyspace: RedisKeyspace,
) -> Iterator[Routes]:
    namespaces = request.node.stash.setdefault(KEY_NAMESPACES, [])
    with ExitStack() as stack:
        yield Routes(stack, cachesync_redis, _cachesync_keyspace.key_prefix, namespaces)
