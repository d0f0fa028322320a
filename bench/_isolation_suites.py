"""The code of the generated suites that bench.compare and bench.xdist run.

Every suite's tests assert they start from empty stores (when isolated), then write one Redis key
and one row through a `stores` fixture; the conftest texts here provide the stores each variant
isolates (or not).
"""

from __future__ import annotations

REDIS_DB = 13
COMPARE_DB = "bench_compare"
PGPP_DB = "bench_pgpp"  # pytest-postgresql adds "_tmpl" for its template database

STORES = '''
import pytest
import sqlalchemy as sa

METADATA = sa.MetaData()
ITEM = sa.Table(
    "item",
    METADATA,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(50)),
)
COUNT_ITEMS = sa.select(sa.func.count()).select_from(ITEM)


class RedisSide:
    def __init__(self, client, isolated):
        self.client, self.isolated = client, isolated

    def check_clean(self, n):
        # The previous test's key, not DBSIZE: a plugin may keep a marker key of its own.
        left = self.client.exists(f"item:{n - 1}")
        if self.isolated:
            assert not left, f"item:{n - 1} left by the previous test"

    def write(self, n):
        self.client.set(f"item:{n}", n, ex=10)


class SqlSide:
    """Over an Engine each call is its own transaction; a Connection is the fixture's to reset."""

    def __init__(self, bind, isolated):
        self.bind, self.isolated = bind, isolated

    def _execute(self, statement):
        if isinstance(self.bind, sa.Engine):
            with self.bind.begin() as conn:
                result = conn.execute(statement)
                return result.all() if statement.is_select else None
        result = self.bind.execute(statement)
        return result.all() if statement.is_select else None

    def check_clean(self, n):
        rows = self._execute(COUNT_ITEMS)[0][0]
        if self.isolated:
            assert rows == 0, f"{rows} rows left by an earlier test"

    def write(self, n):
        self._execute(ITEM.insert().values(id=n, name=f"item {n}"))


class PsycopgSide:
    def __init__(self, conn):
        self.conn = conn

    def check_clean(self, n):
        rows = self.conn.execute("SELECT count(*) FROM item").fetchone()[0]
        assert rows == 0, f"{rows} rows left by an earlier test"

    def write(self, n):
        self.conn.execute("INSERT INTO item (id, name) VALUES (%s, %s)", (n, f"item {n}"))
        self.conn.commit()


class Stores:
    def __init__(self, redis_side, sql_side):
        self.sides = (redis_side, sql_side)

    def check_clean(self, n):
        for side in self.sides:
            side.check_clean(n)

    def write(self, n):
        for side in self.sides:
            side.write(n)
'''

REAL_SESSION = f"""
import redis


@pytest.fixture(scope="session")
def real_redis():
    client = redis.Redis.from_url("redis://127.0.0.1:6379/{REDIS_DB}")
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture(scope="session")
def real_engine():
    # As the plugin's test databases are set up: commits do not wait for the WAL flush.
    engine = sa.create_engine(
        "postgresql+psycopg://postgres@127.0.0.1:5432/{COMPARE_DB}",
        connect_args={{"options": "-c synchronous_commit=off"}},
    )
    METADATA.drop_all(engine)
    METADATA.create_all(engine)
    yield engine
    METADATA.drop_all(engine)
    engine.dispose()
"""

EMBEDDED_SESSION = """
import fakeredis


@pytest.fixture(scope="session")
def embedded_redis():
    return fakeredis.FakeRedis(server=fakeredis.FakeServer())


@pytest.fixture(scope="session")
def embedded_engine(tmp_path_factory):
    # A SQLite file with the pragmas the plugin's embedded default uses: like for like.
    engine = sa.create_engine(f"sqlite:///{tmp_path_factory.mktemp('db') / 'control.db'}")

    @sa.event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection, _record):
        dbapi_connection.execute("PRAGMA journal_mode=WAL")
        dbapi_connection.execute("PRAGMA synchronous=OFF")

    METADATA.create_all(engine)
    yield engine
    engine.dispose()
"""

PGPP_SESSION = f'''
from pytest_postgresql import factories


def create_item_table(**connect_kwargs):
    engine = sa.create_engine("postgresql+psycopg://", connect_args=connect_kwargs)
    METADATA.create_all(engine)
    engine.dispose()


postgresql_bench_proc = factories.postgresql_noproc(
    host="127.0.0.1", port=5432, user="postgres", dbname="{PGPP_DB}", load=[create_item_table]
)
postgresql_bench = factories.postgresql("postgresql_bench_proc")
'''


def fixture(params: str, body: str, name: str = "stores") -> str:
    return f"\n\n@pytest.fixture\ndef {name}({params}):\n{body}\n"


def control_stores(backend: str, name: str = "control_stores") -> str:
    """The no-isolation control's session fixtures and its stores fixture, called `name`."""
    if backend == "real":
        r, e, session = "real_redis", "real_engine", REAL_SESSION
    else:
        r, e, session = "embedded_redis", "embedded_engine", EMBEDDED_SESSION
    body = f"    return Stores(RedisSide({r}, False), SqlSide({e}, False))"
    return session + fixture(f"{r}, {e}", body, name=name)


PLUGIN_FIXTURES = """

@pytest.fixture(scope="session")
def cachesync_metadata():
    return METADATA


@pytest.fixture
def stores(cachesync):
    return Stores(RedisSide(cachesync.redis, True), SqlSide(cachesync.bind, True))
"""
CONTROL_TEST = "test_control"
PLUGIN_TEST = "test_plugin"


def interleaved_module(count: int, block: int) -> str:
    """`count` control tests and `count` plugin tests in one module, alternating in blocks.

    Tests run in the order they are defined: a block of `block` control tests (fixture
    `control_stores`), then a block of plugin tests (fixture `stores`), and so on. Both kinds
    share the drift of the machine, which separate processes do not.
    """
    parts = ["import pytest\n"]
    for first in range(0, count, block):
        numbers = f"range({first}, {min(first + block, count)})"
        for name, fixture_name in ((CONTROL_TEST, "control_stores"), (PLUGIN_TEST, "stores")):
            parts.append(
                f"\n@pytest.mark.parametrize('n', {numbers})\n"
                f"def {name}_{first}(n, {fixture_name}):\n"
                f"    {fixture_name}.check_clean(n)\n"
                f"    {fixture_name}.write(n)\n"
            )
    return "".join(parts)
