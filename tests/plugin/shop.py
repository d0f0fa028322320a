"""A small FastAPI shop that caches SQL rows in Redis, written into pytester runs.

Async SQLAlchemy models, ``redis.asyncio`` cache-aside: ``/products/{id}`` fills under a lease
(a write deletes the lease, so a fill that read the database before it never lands),
``/catalog/{id}`` with a plain ``SET``. Changing a price invalidates both keys; renaming a
product forgets to (the planted bug).
"""

from __future__ import annotations

import pytest

SHOP = '''
import json
import uuid

import sqlalchemy as sa
from fastapi import FastAPI, HTTPException
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Product(Base):
    __tablename__ = "products"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(50))
    price: Mapped[int]


FILL_IF_LEASED = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
  return 1
end
return 0
"""
TTL = 30


def create_app(redis, engine, prefix=""):
    app = FastAPI()
    sessions = async_sessionmaker(engine, expire_on_commit=False)

    def key(name):
        return prefix + name

    async def load(product_id):
        async with sessions() as session:
            product = await session.get(Product, product_id)
            if product is None:
                raise HTTPException(404)
            return {"id": product.id, "name": product.name, "price": product.price}

    async def update(product_id, **values):
        async with sessions() as session, session.begin():
            product = await session.get(Product, product_id)
            if product is None:
                raise HTTPException(404)
            for name, value in values.items():
                setattr(product, name, value)

    @app.get("/products/{product_id}")
    async def product(product_id: int):
        cache_key = key(f"product:{product_id}")
        cached = await redis.get(cache_key)
        if cached is not None and not cached.startswith(b"L:"):
            return json.loads(cached)
        lease = "L:" + uuid.uuid4().hex
        leased = await redis.set(cache_key, lease, nx=True, px=5000)
        data = await load(product_id)
        if leased:
            await redis.eval(FILL_IF_LEASED, 1, cache_key, lease, json.dumps(data), TTL)
        return data

    @app.get("/catalog/{product_id}")
    async def catalog_entry(product_id: int):
        cache_key = key(f"catalog:{product_id}")
        cached = await redis.get(cache_key)
        if cached is not None:
            return json.loads(cached)
        data = await load(product_id)
        await redis.set(cache_key, json.dumps(data), ex=TTL)
        return data

    @app.post("/products", status_code=201)
    async def create(body: dict):
        async with sessions() as session, session.begin():
            product = Product(name=body["name"], price=body["price"])
            session.add(product)
            await session.flush()
            return {"id": product.id}

    @app.put("/products/{product_id}/price")
    async def set_price(product_id: int, body: dict):
        await update(product_id, price=body["price"])
        await redis.delete(key(f"product:{product_id}"), key(f"catalog:{product_id}"))
        return {"ok": True}

    @app.put("/products/{product_id}/name")
    async def rename(product_id: int, body: dict):
        await update(product_id, name=body["name"])
        return {"ok": True}

    return app
'''

CONFTEST = """
import pytest
from shop import Base, create_app


@pytest.fixture(scope="session")
def cachesync_metadata():
    return Base.metadata


@pytest.fixture
def anyio_backend():
    return "asyncio"  # redis.asyncio runs on asyncio only


@pytest.fixture
def app(cachesync):
    return create_app(cachesync.async_redis, cachesync.async_engine, cachesync.key_prefix)


@pytest.fixture
def client(cachesync_client):
    assert cachesync_client.post("/products", json={"name": "kettle", "price": 30}).json() == {
        "id": 1
    }
    return cachesync_client
"""

INI = """
[pytest]
cachesync_cache_patterns = product:* catalog:*
cachesync_oracle = true
"""


@pytest.fixture
def shop(pytester: pytest.Pytester) -> None:
    """The shop as ``shop.py``, a conftest wiring it to the plugin, oracle mode on."""
    pytester.makepyfile(shop=SHOP)
    pytester.makeconftest(CONFTEST)
    pytester.makeini(INI)
    pytester.syspathinsert()
