"""``cachesync_redis_targets``: module-level Redis clients replaced by the test's client.

Registered as a plugin only when the option is set, so the autouse fixture costs nothing to
the sessions that do not use it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pytest_cachesync._import_path import resolve_owner
from pytest_cachesync._session import RUNTIME_KEY
from pytest_cachesync.stores.clients import is_async_client


@pytest.fixture(autouse=True)
def _cachesync_redis_targets(request: pytest.FixtureRequest) -> Iterator[None]:
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
