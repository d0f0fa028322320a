"""pytest-cachesync: test apps that cache SQL data in Redis.

The public API. Each name is imported on first access (PEP 562), so that pytest loading the
plugin, or ``import pytest_cachesync``, imports no Redis, SQLAlchemy or fakeredis module::

    from pytest_cachesync import CacheSync, TtlPolicy

Everything else in the package is private and may change without notice.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "CacheClock",
    "CacheSync",
    "CacheSyncClient",
    "KeyClassifier",
    "OracleClient",
    "RaceInjector",
    "RedisSpy",
    "TtlPolicy",
    "__version__",
    "bind_flask_sqlalchemy",
]

if TYPE_CHECKING:
    from .clock.clock import CacheClock
    from .facade import CacheSync
    from .integrations.flask_sqlalchemy import bind_flask_sqlalchemy
    from .staleness.oracle import CacheSyncClient, OracleClient
    from .staleness.patterns import KeyClassifier, TtlPolicy
    from .staleness.race import RaceInjector
    from .staleness.spy import RedisSpy

_WHERE = {
    "CacheClock": ".clock.clock",
    "CacheSync": ".facade",
    "CacheSyncClient": ".staleness.oracle",
    "KeyClassifier": ".staleness.patterns",
    "OracleClient": ".staleness.oracle",
    "RaceInjector": ".staleness.race",
    "RedisSpy": ".staleness.spy",
    "TtlPolicy": ".staleness.patterns",
    "bind_flask_sqlalchemy": ".integrations.flask_sqlalchemy",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    # Not cached in globals(): the import system already caches the module, and a cached class
    # would outlive a re-import of its module (pytester's in-process runs drop the modules a run
    # imported), so isinstance() against the public name would fail.
    return getattr(import_module(module, __name__), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
