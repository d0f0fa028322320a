"""Per-test isolation cost of pytest-cachesync against the tools users would pick instead.

Every variant runs the same generated suite (each test asserts it starts from empty stores, then
writes one Redis key and one row) in its own pytest subprocess. A variant's per-test overhead is
the median per-test duration (setup + call + teardown, as pytest reports it) minus the median of
the no-isolation control on the same backend, measured in the same run.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from bench import _services
from bench._suites import SuiteRun, plugin_offers, run_suite, tail, write_suite
from bench._table import Result, markdown_table, median, ratio

REDIS_DB = 13
COMPARE_DB = "bench_compare"
PGPP_DB = "bench_pgpp"  # pytest-postgresql adds "_tmpl" for its template database
PYTEST_REDIS_PORT = 6410
PLUGIN_REDIS_DB = 14
PLUGIN_DB = "bench_plugin"
FAST_COUNT = 300
SLOW_COUNT = 40  # pytest-postgresql creates a database per test: ~100x slower, one round only
ROUNDS = 2
TIMEOUT_S = 120.0

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

_REAL_SESSION = f"""
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

_EMBEDDED_SESSION = """
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

_PGPP_SESSION = f'''
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


def _fixture(params: str, body: str) -> str:
    return f"\n\n@pytest.fixture\ndef stores({params}):\n{body}\n"


_NO_PLUGIN = ["-p", "no:cachesync", "-p", "no:xdist"]
WITHOUT_BASELINE_PLUGINS = ["-p", "no:pytest_redis", "-p", "no:pytest_postgresql"]
_NO_OTHERS = [*WITHOUT_BASELINE_PLUGINS, "-p", "no:xdist"]


@dataclass(frozen=True)
class Variant:
    """One way of isolating tests; `control` names the no-isolation run it is measured against."""

    name: str
    backend: str  # "real" or "embedded"
    conftest: str
    args: list[str] = field(default_factory=list)
    count: int = FAST_COUNT
    is_control: bool = False


def baseline_variants() -> list[Variant]:
    real, embedded = STORES + _REAL_SESSION, STORES + _EMBEDDED_SESSION
    plain = "    return Stores(RedisSide({r}, {iso}), SqlSide({e}, {iso}))"
    truncate = (
        "    with real_engine.begin() as conn:\n"
        '        conn.execute(sa.text("TRUNCATE item RESTART IDENTITY CASCADE"))\n'
        "    real_redis.flushdb()\n"
    )
    recreate = "    METADATA.drop_all({e})\n    METADATA.create_all({e})\n    {r}.flushdb()\n"
    pytest_redis = [*_NO_PLUGIN, "-p", "no:pytest_postgresql", f"--redis-port={PYTEST_REDIS_PORT}"]
    pytest_pg = [*_NO_PLUGIN, "-p", "no:pytest_redis"]
    both = [*_NO_PLUGIN, f"--redis-port={PYTEST_REDIS_PORT}"]
    r_real = {"r": "real_redis", "e": "real_engine"}
    r_emb = {"r": "embedded_redis", "e": "embedded_engine"}
    return [
        Variant(
            "no isolation (control)",
            "real",
            real + _fixture("real_redis, real_engine", plain.format(**r_real, iso=False)),
            [*_NO_PLUGIN, *_NO_OTHERS],
            is_control=True,
        ),
        Variant(
            "no isolation (control)",
            "embedded",
            embedded
            + _fixture("embedded_redis, embedded_engine", plain.format(**r_emb, iso=False)),
            [*_NO_PLUGIN, *_NO_OTHERS],
            is_control=True,
        ),
        Variant(
            "TRUNCATE + FLUSHDB",
            "real",
            real + _fixture("real_redis, real_engine", truncate + plain.format(**r_real, iso=True)),
            [*_NO_PLUGIN, *_NO_OTHERS],
        ),
        Variant(
            "drop_all/create_all + FLUSHDB",
            "real",
            real
            + _fixture(
                "real_redis, real_engine",
                recreate.format(**r_real) + plain.format(**r_real, iso=True),
            ),
            [*_NO_PLUGIN, *_NO_OTHERS],
        ),
        Variant(
            "drop_all/create_all + FLUSHDB",
            "embedded",
            embedded
            + _fixture(
                "embedded_redis, embedded_engine",
                recreate.format(**r_emb) + plain.format(**r_emb, iso=True),
            ),
            [*_NO_PLUGIN, *_NO_OTHERS],
        ),
        Variant(
            "pytest-redis redisdb",
            "real",
            real
            + _fixture(
                "redisdb, real_engine",
                "    return Stores(RedisSide(redisdb, True), SqlSide(real_engine, False))",
            ),
            pytest_redis,
        ),
        Variant(
            "pytest-postgresql per-test database",
            "real",
            real
            + _PGPP_SESSION
            + _fixture(
                "real_redis, postgresql_bench",
                "    return Stores(RedisSide(real_redis, False), PsycopgSide(postgresql_bench))",
            ),
            pytest_pg,
            count=SLOW_COUNT,
        ),
        Variant(
            "pytest-redis + pytest-postgresql",
            "real",
            real
            + _PGPP_SESSION
            + _fixture(
                "redisdb, postgresql_bench",
                "    return Stores(RedisSide(redisdb, True), PsycopgSide(postgresql_bench))",
            ),
            both,
            count=SLOW_COUNT,
        ),
    ]


PLUGIN_FIXTURES = """

@pytest.fixture(scope="session")
def cachesync_metadata():
    return METADATA


@pytest.fixture
def stores(cachesync):
    return Stores(RedisSide(cachesync.redis, True), SqlSide(cachesync.bind, True))
"""
PLUGIN_NAME = "pytest-cachesync"


def plugin_strategies() -> tuple[str, ...]:
    try:
        from pytest_cachesync.settings import DB_RESET_CHOICES
    except ImportError:
        return ()
    return tuple(DB_RESET_CHOICES)


def plugin_real_args() -> list[str]:
    return [
        f"--cachesync-redis-url=redis://127.0.0.1:6379/{PLUGIN_REDIS_DB}",
        f"--cachesync-db-url={_services.pg_url(PLUGIN_DB)}",
    ]


def plugin_variants(strategies: tuple[str, ...]) -> list[Variant]:
    variants = []
    for strategy in strategies:
        for backend in ("real", "embedded"):
            args = [*_NO_OTHERS, f"--cachesync-db-reset={strategy}"]
            if backend == "real":
                args += plugin_real_args()
            variants.append(
                Variant(f"{PLUGIN_NAME} {strategy}", backend, STORES + PLUGIN_FIXTURES, args)
            )
    return variants


@dataclass(frozen=True)
class Measured:
    """A variant's runs; its per-test figure is the median over the tests of all of them."""

    variant: Variant
    runs: list[SuiteRun]

    @property
    def ok(self) -> bool:
        return all(run.ok for run in self.runs)

    @property
    def per_test_ms(self) -> float | None:
        if not self.ok:
            return None
        return median(ms for run in self.runs for ms in run.durations_ms)

    @property
    def wall_s(self) -> float:
        return median(run.wall_s for run in self.runs)


def measure(variants: list[Variant], workdir: Path) -> list[Measured]:
    """Run every variant; fast ones again in a second round, so drift hits all variants alike."""
    measured = [Measured(variant, []) for variant in variants]
    for round_number in range(ROUNDS):
        for index, item in enumerate(measured):
            if round_number > 0 and item.variant.count == SLOW_COUNT:
                continue
            suite = workdir / f"suite_{index}"
            if round_number == 0:
                write_suite(suite, item.variant.conftest, item.variant.count)
            run = run_suite(suite, item.variant.args, timeout_s=TIMEOUT_S)
            if not run.ok:
                print(f"  {item.variant.name} ({item.variant.backend}) FAILED:\n{tail(run.output)}")
            item.runs.append(run)
    return measured


def overhead_ms(measured: list[Measured]) -> dict[tuple[str, str], float | None]:
    """Per-test overhead of each variant over its backend's control, keyed by (name, backend)."""
    controls = {m.variant.backend: m.per_test_ms for m in measured if m.variant.is_control}
    overheads: dict[tuple[str, str], float | None] = {}
    for item in measured:
        control = controls.get(item.variant.backend)
        own = item.per_test_ms
        if item.variant.is_control or own is None or control is None:
            overheads[(item.variant.name, item.variant.backend)] = None
        else:
            overheads[(item.variant.name, item.variant.backend)] = own - control
    return overheads


GOAL_MS = {"real": 1.0, "embedded": 0.3}
LESS_THAN_TOOLS = 100.0
TOOLS_TOGETHER = "pytest-redis + pytest-postgresql"


def results(measured: list[Measured]) -> list[Result]:
    overheads = overhead_ms(measured)
    rows = []
    for item in measured:
        name, backend = item.variant.name, item.variant.backend
        label = f"isolation, {backend}: {name}"
        if not item.ok:
            rows.append(Result(label, None, "ms/test", note="run failed"))
            continue
        if item.variant.is_control:
            note = f"{item.variant.count} tests"
            rows.append(Result(label, item.per_test_ms, "ms/test", note=note))
            continue
        overhead = overheads[(name, backend)]
        goal, met = "", None
        if name.startswith(PLUGIN_NAME) and overhead is not None:
            goal, met = f"<= {GOAL_MS[backend]} ms", overhead <= GOAL_MS[backend]
        rows.append(
            Result(
                label,
                overhead,
                "ms/test over control",
                versus="control",
                goal=goal,
                met=met,
                note=f"{item.variant.count} tests x {len(item.runs)} runs, "
                f"{item.wall_s:.1f} s wall",
            )
        )
    tools = overheads.get((TOOLS_TOGETHER, "real"))
    for (name, backend), overhead in overheads.items():
        if backend == "real" and name.startswith(PLUGIN_NAME):
            factor = ratio(tools, overhead) if overhead is not None and overhead > 0 else None
            rows.append(
                Result(
                    f"isolation: {TOOLS_TOGETHER} vs {name} (real)",
                    factor,
                    "x less overhead",
                    goal=f">= {LESS_THAN_TOOLS:.0f}x",
                    met=None if factor is None else factor >= LESS_THAN_TOOLS,
                    note="" if factor is not None else "overhead not measurable (<= 0)",
                )
            )
    return rows


def main() -> list[Result]:
    print("== isolation against the tools users pick instead (subprocess suites)")
    variants = baseline_variants()
    if plugin_offers("cachesync")["cachesync"]:
        variants += plugin_variants(plugin_strategies())
    else:
        print(f"  {PLUGIN_NAME}: the cachesync fixture is not available; only baselines run")
    _services.ensure_databases([COMPARE_DB])
    try:
        with tempfile.TemporaryDirectory(prefix="bench-compare-") as workdir:
            measured = measure(variants, Path(workdir))
    finally:
        _services.drop_databases([COMPARE_DB, PGPP_DB, f"{PGPP_DB}_tmpl"])
    rows = results(measured)
    print(markdown_table(rows))
    return rows


if __name__ == "__main__":
    main()
