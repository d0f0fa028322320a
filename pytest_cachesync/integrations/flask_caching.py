"""Flask-Caching: a ``Cache``'s Redis backends routed to the test's Redis for one test.

Two ways in, both taking the ``Cache`` object and nothing private:

* ``cachesync.route_flask_caching(cache)`` in a fixture or test;
* ini ``cachesync_flask_caching = myapp.extensions:cache`` (one per line), for every test.

The backend's ``CACHE_KEY_PREFIX`` goes to the spy's key classifier, so cache patterns name
keys as the app names them (``view/*``), and in prefix isolation the test's key prefix is put
in front of it. This module imports Flask-Caching only when a route is taken; the plugin
registers it (for the autouse fixture) only when the option is set.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    import redis

ROUTED_BACKENDS = ("RedisCache", "RedisSentinelCache")


def _installed_versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    found = []
    for name in ("flask-caching", "cachelib"):
        try:
            found.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            found.append(f"{name} not installed")
    return ", ".join(found)


def _backend(cache: Any, app: Any) -> Any:
    extensions = getattr(app, "extensions", {}).get("cache", {})
    if cache not in extensions:
        raise RuntimeError(
            f"route_flask_caching: this Cache is not initialised on app {app.name!r} (call "
            "cache.init_app(app) first, or pass the app it serves as app=...)."
        )
    return extensions[cache]


def _check_backend(backend: Any, app: Any) -> None:
    from flask_caching.backends.rediscache import RedisCache

    kind = type(backend).__name__
    if not isinstance(backend, RedisCache) or kind == "RedisClusterCache":
        raise RuntimeError(
            f"route_flask_caching: the cache backend of app {app.name!r} is {kind} "
            f"(CACHE_TYPE={app.config.get('CACHE_TYPE')!r}); the plugin routes "
            f"{' and '.join(ROUTED_BACKENDS)}. Configure one of them for the tests, its "
            "connection is never used."
        )
    # The clients live in private attributes of cachelib's BaseRedisCache (flask-caching
    # >= 2.0); if a release renames them, say so rather than route nothing.
    if not (hasattr(backend, "_read_client") and hasattr(backend, "_write_client")):
        raise RuntimeError(
            f"route_flask_caching: {kind} has no _read_client/_write_client in the installed "
            f"versions ({_installed_versions()}); this version of pytest-cachesync supports "
            "flask-caching 2.x."
        )


@contextmanager
def _routed(backend: Any, client: Any, key_prefix: str) -> Iterator[None]:
    # The one place the plugin touches Flask-Caching's private state: the backend's two
    # clients (a sentinel cache reads from a replica and writes to the master; both become
    # the test's client), checked by _check_backend against the installed version.
    saved = (backend._read_client, backend._write_client, backend.key_prefix)
    original = backend.key_prefix
    backend._read_client = backend._write_client = client
    if key_prefix:
        backend.key_prefix = (
            (lambda: key_prefix + original())
            if callable(original)
            else key_prefix + (original or "")
        )
    try:
        yield
    finally:
        backend._read_client, backend._write_client, backend.key_prefix = saved


def _apps(cache: Any, app: Any) -> list[Any]:
    if app is not None:
        return [app]
    if getattr(cache, "app", None) is not None:
        return [cache.app]
    from flask import current_app, has_app_context

    if has_app_context():
        return [current_app._get_current_object()]  # type: ignore[attr-defined]
    raise RuntimeError(
        "route_flask_caching: this Cache is bound to no app yet; call it after "
        "cache.init_app(app), or pass the app as app=..."
    )


@contextmanager
def route_flask_caching(
    cache: Any,
    client: Any,
    *,
    key_prefix: str = "",
    app: Any = None,
    on_namespace: Callable[[str], None] = lambda namespace: None,
) -> Iterator[None]:
    """Inside the block, every command ``cache`` sends for ``app`` goes to ``client``.

    ``app`` defaults to the app the Cache was last initialised on (``cache.app``), else the
    current app. ``key_prefix`` (the test's, in prefix isolation) goes in front of the
    backend's own ``CACHE_KEY_PREFIX``, which ``on_namespace`` receives.
    """
    with ExitStack() as stack:
        for target in _apps(cache, app):
            backend = _backend(cache, target)
            _check_backend(backend, target)
            namespace = backend.key_prefix
            if isinstance(namespace, str) and namespace:
                on_namespace(namespace)
            stack.enter_context(_routed(backend, client, key_prefix))
        yield


def _init_app_routing(cache: Any, route: Callable[[Any], None]) -> Callable[..., None]:
    """``cache.init_app`` that also routes the app it initialises (for app factories that run
    inside the test, after the autouse fixture)."""
    original = cache.init_app

    def init_app(app: Any, config: Any = None) -> None:
        original(app, config)
        route(app)

    return init_app


class Routes:
    """The cache backends routed to the test's Redis in one test.

    Each backend is routed once however often it is asked, and every route is undone when the
    test's ExitStack closes.
    """

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


@pytest.fixture(autouse=True)
def _cachesync_flask_caching(request: pytest.FixtureRequest) -> Iterator[None]:
    from pytest_cachesync._import_targets import resolve_owner
    from pytest_cachesync._session import RUNTIME_KEY

    targets = request.config.stash[RUNTIME_KEY].settings.flask_caching.value
    routes = request.getfixturevalue("_cachesync_routes")
    with pytest.MonkeyPatch.context() as patcher:
        for target in targets:
            owner, name = resolve_owner(target, "cachesync_flask_caching")
            cache = getattr(owner, name)
            if not hasattr(cache, "init_app") or not hasattr(cache, "cached"):
                raise pytest.UsageError(
                    f"cachesync_flask_caching: {target} is a {type(cache).__name__}, not a "
                    "flask_caching.Cache."
                )
            if getattr(cache, "app", None) is not None:
                routes.flask_caching(cache, app=cache.app)

            def route(app: Any, cache: Any = cache) -> None:
                routes.flask_caching(cache, app=app)

            patcher.setattr(cache, "init_app", _init_app_routing(cache, route))
        yield
