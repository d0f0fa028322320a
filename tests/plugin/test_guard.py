"""Refusals: remote hosts, foreign keyspaces and databases, unreachable servers.

Each refused case first writes data that is not a test's, runs pytest, and checks that every
key and row is still there.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from .conftest import Backend, needs_real_db, needs_real_redis

WRITER = """
def test_writes(cachesync):
    cachesync.redis.set(cachesync.key("k"), "v")
"""


def _assert_refused_once(result: pytest.RunResult, *patterns: str) -> None:
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {pattern}" for pattern in patterns])
    assert result.stderr.str().count("ERROR: ") == 1
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


@pytest.mark.parametrize("n", [[], ["-n", "2"]], ids=["single", "xdist"])
def test_remote_redis_host_is_refused_before_any_connection(
    pytester: pytest.Pytester, default_backend: None, n: list[str]
) -> None:
    pytester.makepyfile(WRITER)
    result = pytester.runpytest("--cachesync-redis-url=redis://cache.example.invalid:6379/0", *n)
    _assert_refused_once(
        result,
        "cachesync refused Redis host 'cache.example.invalid' in "
        "redis://cache.example.invalid:6379/0*--cachesync-allow-remote*Nothing was contacted.",
    )


def test_remote_database_host_is_refused(pytester: pytest.Pytester, default_backend: None) -> None:
    pytester.makepyfile(WRITER)
    result = pytester.runpytest(
        "--cachesync-db-url=postgresql+psycopg://app:pw@db.example.invalid:5432/shop"
    )
    _assert_refused_once(
        result,
        "cachesync refused database host 'db.example.invalid' in "
        "postgresql+psycopg://app:***@db.example.invalid:5432/shop*--cachesync-allow-remote*",
    )


def test_allow_remote_lets_the_url_through_to_the_connection(
    pytester: pytest.Pytester, default_backend: None
) -> None:
    pytester.makepyfile(WRITER)
    result = pytester.runpytest(
        "--cachesync-redis-url=redis://cache.example.invalid:6379/0", "--cachesync-allow-remote"
    )
    _assert_refused_once(result, "cachesync cannot reach Redis at redis://cache.example.invalid*")


@pytest.mark.parametrize(
    ("option", "pattern"),
    [
        ("--cachesync-redis-url=redis://127.0.0.1:1/0", "cachesync cannot reach Redis at *"),
        (
            "--cachesync-db-url=postgresql+psycopg://postgres@127.0.0.1:1/shop",
            "cachesync cannot reach the database server at *127.0.0.1:1/postgres*",
        ),
    ],
)
def test_unreachable_server_is_one_error_at_session_start(
    pytester: pytest.Pytester, default_backend: None, option: str, pattern: str
) -> None:
    pytester.makepyfile(WRITER * 1 + "\n\ndef test_two(cachesync):\n    pass\n")
    _assert_refused_once(pytester.runpytest(option), pattern)


def test_foreign_sqlite_file_is_refused_and_untouched(
    pytester: pytest.Pytester, default_backend: None
) -> None:
    leftover = pytester.path / "test_app.db"
    engine = sa.create_engine(f"sqlite:///{leftover}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE orders (id INTEGER PRIMARY KEY)")
        conn.exec_driver_sql("INSERT INTO orders VALUES (1), (2)")
    pytester.makepyfile(WRITER)
    result = pytester.runpytest(f"--cachesync-db-url=sqlite:///{pytester.path / 'app.db'}")
    _assert_refused_once(
        result, f"cachesync refused to use the existing database '{leftover}'*No row was touched."
    )
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM orders").scalar() == 2
    engine.dispose()


@pytest.fixture
def owner(backend: Backend) -> Iterator[redis.Redis]:
    """A client of the inner runs' Redis database, emptied before and after the test."""
    assert backend.redis_url is not None
    client = redis.Redis.from_url(backend.redis_url)
    client.flushdb()
    try:
        yield client
    finally:
        client.flushdb()
        client.close()


@needs_real_redis
@pytest.mark.parametrize("isolation", ["db", "prefix"])
def test_foreign_redis_keys_are_refused_and_untouched(
    pytester: pytest.Pytester, owner: redis.Redis, isolation: str
) -> None:
    owner.set("customer:1", "alice")
    owner.set("cachesync:main:customer:2", "bob")
    pytester.makepyfile(WRITER)
    result = pytester.runpytest(f"--cachesync-redis-isolation={isolation}")
    # In prefix mode the keyspace is the prefix: only the key under it counts, and the key
    # outside it is never touched, even when the foreign keys inside may be deleted.
    count = 2 if isolation == "db" else 1
    _assert_refused_once(
        result,
        f"cachesync refused to empty Redis database *: it holds {count} key(s) and no test "
        "sentinel*--cachesync-allow-foreign-redis*No key was touched.",
    )
    assert sorted(owner.keys("*")) == [b"cachesync:main:customer:2", b"customer:1"]
    result = pytester.runpytest(
        f"--cachesync-redis-isolation={isolation}", "--cachesync-allow-foreign-redis"
    )
    result.assert_outcomes(passed=1)
    if isolation == "prefix":
        assert owner.get("customer:1") == b"alice"
    # Claimed: later runs need no override.
    pytester.runpytest(f"--cachesync-redis-isolation={isolation}").assert_outcomes(passed=1)


SENTINEL_THEN_DEATH = {
    "conftest": """
import os


def pytest_runtest_logreport(report):
    # Dies right after the last test's teardown: before anything could read a reply.
    if report.when == "teardown" and report.nodeid.endswith("test_second"):
        os._exit(3)
""",
    "test_marked": """
def test_first(cachesync):
    assert cachesync.redis.dbsize() == 0
    cachesync.redis.set("first", "1")


def test_second(cachesync):
    # The sentinel written after test_first is gone again: each test sees an empty keyspace.
    assert cachesync.redis.dbsize() == 0
    cachesync.redis.set("second", "2")
""",
}


@needs_real_redis
def test_sentinel_marks_the_database_between_tests_even_when_the_process_dies(
    pytester: pytest.Pytester, owner: redis.Redis
) -> None:
    pytester.makepyfile(**SENTINEL_THEN_DEATH)
    # --cachesync-keep: the session's end would otherwise empty the keyspace before the death.
    died = pytester.runpytest_subprocess("-p", "no:randomly", "--cachesync-keep")
    assert died.ret == 3, died.stdout.str()
    # The sentinel was sent after test_second without waiting for its reply, then the
    # process died: the server still has it, so the next run knows the keys are a test's.
    assert sorted(owner.keys("*")) == [b"cachesync:sentinel", b"second"]
    (pytester.path / "conftest.py").unlink()
    pytester.runpytest_subprocess("-p", "no:randomly").assert_outcomes(passed=2)


@needs_real_redis
def test_foreign_keys_in_a_second_worker_db_are_refused_under_xdist(
    pytester: pytest.Pytester, backend: Backend
) -> None:
    assert backend.redis_url is not None
    base = redis.Redis.from_url(backend.redis_url)
    second = redis.Redis(
        connection_pool=redis.ConnectionPool(
            **{
                **base.connection_pool.connection_kwargs,
                "db": base.get_connection_kwargs()["db"] + 1,
            }
        )
    )
    base.flushdb()
    second.flushdb()
    second.set("invoice:9", "due")
    try:
        pytester.makepyfile(WRITER)
        result = pytester.runpytest("-n", "2")
        _assert_refused_once(result, "cachesync refused to empty Redis database *")
        assert second.get("invoice:9") == b"due"
        # Every worker's keyspace is checked before any is marked: not even a sentinel.
        assert base.dbsize() == 0
    finally:
        second.flushdb()
        base.flushdb()
        base.close()
        second.close()


@needs_real_db
def test_foreign_postgres_database_is_refused_and_untouched(
    pytester: pytest.Pytester, backend: Backend
) -> None:
    assert backend.db_url is not None
    url = make_url(backend.db_url)
    name = f"test_{url.database}"
    admin = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    foreign = sa.create_engine(url.set(database=name), poolclass=sa.pool.NullPool)
    try:
        with foreign.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE orders (id INTEGER PRIMARY KEY)")
            conn.exec_driver_sql("INSERT INTO orders VALUES (1), (2), (3)")
        pytester.makepyfile(WRITER)
        result = pytester.runpytest()
        _assert_refused_once(
            result,
            f"cachesync refused to use the existing database '{name}'*DROP DATABASE*"
            "No row was touched.",
        )
        with foreign.connect() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM orders").scalar() == 3
    finally:
        foreign.dispose()
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@needs_real_redis
def test_a_prefix_claim_never_licenses_emptying_the_database(
    pytester: pytest.Pytester, owner: redis.Redis
) -> None:
    for n in range(3):
        owner.set(f"customer:{n}", "kept")
    pytester.makepyfile(WRITER)
    pytester.runpytest("--cachesync-redis-isolation=prefix").assert_outcomes(passed=1)
    result = pytester.runpytest("--cachesync-redis-isolation=db")
    _assert_refused_once(result, "cachesync refused to empty Redis database *No key was touched.")
    assert owner.mget([f"customer:{n}" for n in range(3)]) == [b"kept"] * 3


@needs_real_redis
@pytest.mark.parametrize("isolation", ["db", "prefix"])
def test_a_session_leaves_only_its_sentinel_unless_kept(
    pytester: pytest.Pytester, owner: redis.Redis, isolation: str
) -> None:
    if isolation == "prefix":
        owner.set("customer:1", "kept")
    pytester.makepyfile(WRITER)
    option = f"--cachesync-redis-isolation={isolation}"
    pytester.runpytest(option).assert_outcomes(passed=1)
    left = sorted(key for key in owner.keys("*") if key != b"customer:1")
    assert left == [
        b"cachesync:main:cachesync:sentinel" if isolation == "prefix" else b"cachesync:sentinel"
    ]
    pytester.runpytest(option, "--cachesync-keep").assert_outcomes(passed=1)
    assert any(key.endswith(b"k") for key in owner.keys("*"))
    if isolation == "prefix":
        assert owner.get("customer:1") == b"kept"


def test_a_file_that_is_not_sqlite_at_the_test_database_path_is_refused(
    pytester: pytest.Pytester, default_backend: None
) -> None:
    kept = pytester.path / "test_app.db"
    kept.write_bytes(b"quarterly numbers, not a database\n" * 100)
    pytester.makepyfile(WRITER)
    result = pytester.runpytest(f"--cachesync-db-url=sqlite:///{pytester.path / 'app.db'}")
    _assert_refused_once(
        result, "cachesync refused to use the existing database*No row was touched."
    )
    assert kept.read_bytes() == b"quarterly numbers, not a database\n" * 100


@needs_real_redis
def test_rediss_against_a_plain_server_is_one_clean_error(
    pytester: pytest.Pytester, backend: Backend
) -> None:
    assert backend.redis_url is not None
    pytester.makepyfile(WRITER)
    url = "rediss://" + backend.redis_url.removeprefix("redis://")
    _assert_refused_once(
        pytester.runpytest(f"--cachesync-redis-url={url}"), "cachesync cannot reach Redis at *"
    )


@needs_real_db
def test_a_database_name_that_needs_quoting_is_quoted(
    pytester: pytest.Pytester, backend: Backend
) -> None:
    assert backend.db_url is not None
    url = make_url(backend.db_url)
    odd = url.set(database=f'{url.database}_Odd "name; DROP')
    pytester.makepyfile(WRITER)
    result = pytester.runpytest(f"--cachesync-db-url={odd.render_as_string(hide_password=False)}")
    result.assert_outcomes(passed=1)
