"""Options that name Python objects (``package.module:attribute.path``): resolving them, and
routing the Redis clients ``cachesync_redis_targets`` names to the test's.

The autouse ``_cachesync_redis_targets`` fixture here works only where this module is
registered as a plugin, which ``pytest_configure`` does only when that option is set: the
sessions that do not use it pay no fixture per test.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from ._session import RUNTIME_KEY

if TYPE_CHECKING:
    import sqlalchemy as sa


def _split(path: str, option: str) -> tuple[str, list[str]]:
    module, sep, attrs = path.partition(":")
    if not sep or not module or not attrs:
        raise pytest.UsageError(
            f"cachesync: {option} entry {path!r} must look like 'package.module:attribute'."
        )
    return module, attrs.split(".")


def resolve_owner(path: str, option: str) -> tuple[object, str]:
    """The object holding the attribute named by ``path`` and the attribute's name."""
    module_name, attrs = _split(path, option)
    try:
        owner: object = importlib.import_module(module_name)
    except ImportError as exc:
        raise pytest.UsageError(f"cachesync: {option} {path!r}: cannot import: {exc}.") from None
    for name in attrs[:-1]:
        try:
            owner = getattr(owner, name)
        except AttributeError:
            raise pytest.UsageError(f"cachesync: {option} {path!r}: {name!r} not found.") from None
    if not hasattr(owner, attrs[-1]):
        raise pytest.UsageError(f"cachesync: {option} {path!r}: {attrs[-1]!r} not found.")
    return owner, attrs[-1]


def load_metadata(path: str) -> sa.MetaData:
    """A MetaData from a path to one, or to anything with a ``metadata`` attribute."""
    import sqlalchemy as sa

    owner, name = resolve_owner(path, "cachesync_metadata")
    found = getattr(owner, name)
    metadata = found if isinstance(found, sa.MetaData) else getattr(found, "metadata", None)
    if not isinstance(metadata, sa.MetaData):
        raise pytest.UsageError(
            f"cachesync: cachesync_metadata {path!r} is a {type(found).__name__}, not a "
            "MetaData or a declarative base / Flask-SQLAlchemy db with a .metadata."
        )
    return metadata


@pytest.fixture(autouse=True)
def _cachesync_redis_targets(request: pytest.FixtureRequest) -> Iterator[None]:
    from .stores.clients import is_async_client

    targets = request.config.stash[RUNTIME_KEY].settings.redis_targets.value
    client = request.getfixturevalue("cachesync_redis")
    with pytest.MonkeyPatch.context() as patcher:
        for target in targets:
            owner, name = resolve_owner(target, "cachesync_redis_targets")
            # An asyncio client is replaced by the test's asyncio one: its callers await.
            if is_async_client(getattr(owner, name, None)):
                patcher.setattr(owner, name, request.getfixturevalue("cachesync_async_redis"))
            else:
                patcher.setattr(owner, name, client)
        yield
