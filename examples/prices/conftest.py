from __future__ import annotations

import flask
import pytest
import sqlalchemy as sa
from prices import create_app, metadata, products

from pytest_cachesync import CacheSync


@pytest.fixture(scope="session")
def cachesync_metadata() -> sa.MetaData:
    return metadata  # created once per session and xdist worker


@pytest.fixture
def app(cachesync: CacheSync) -> flask.Flask:
    return create_app(cachesync.redis, cachesync.bind)


@pytest.fixture
def product(cachesync: CacheSync) -> int:
    cachesync.db.execute(products.insert().values(id=1, name="Lamp", price_cents=1999))
    cachesync.db.commit()
    return 1
