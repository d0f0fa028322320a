"""The address a client will really connect to, judged from every place its client reads."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from pytest_cachesync.stores.connections import connect_args, sql_address
from pytest_cachesync.stores.targets import HostPolicy, database_target, redis_target

LOCAL = HostPolicy()
PG = "postgresql+psycopg://postgres@"

REMOTE_REDIS_URLS = [
    ("redis://10.255.255.1:6379/0", "10.255.255.1"),
    ("redis:///5?host=10.255.255.1", "10.255.255.1"),
    ("redis://?host=10.255.255.1&port=6379", "10.255.255.1"),
    ("rediss://10.255.255.1/0", "10.255.255.1"),
    ("redis://localhost./0", "localhost."),
    ("redis://127.1/0", "127.1"),
    ("redis://2130706433/0", "2130706433"),
    ("redis://0x7f000001/0", "0x7f000001"),
    ("redis://[::ffff:10.255.255.1]/0", "::ffff:10.255.255.1"),
    ("redis://0.0.0.0/0", "0.0.0.0"),
    ("redis://redis/0", "redis"),
    ("redis://user:secret@10.255.255.1/0", "10.255.255.1"),
]


@pytest.mark.parametrize(("url", "host"), REMOTE_REDIS_URLS)
def test_redis_hosts_that_are_not_loopback_are_refused(url: str, host: str) -> None:
    with pytest.raises(pytest.UsageError) as refused:
        redis_target(url, LOCAL)
    message = str(refused.value)
    assert f"refused Redis host {host!r}" in message
    assert "Nothing was contacted" in message
    assert "secret" not in message


@pytest.mark.parametrize(
    ("url", "address"),
    [
        ("redis://127.0.0.1:6400/3", "redis://127.0.0.1:6400/3"),
        ("redis:///3", "redis://localhost:6379/3"),
        ("redis:///3?host=127.0.0.2", "redis://127.0.0.2:6379/3"),
        ("redis://[::1]:6400/0", "redis://[::1]:6400/0"),
        ("redis://LOCALHOST/0?db=4", "redis://localhost:6379/4"),
        ("unix:///tmp/redis.sock?db=2", "unix:///tmp/redis.sock?db=2"),
    ],
)
def test_local_redis_targets_name_the_real_address(url: str, address: str) -> None:
    assert redis_target(url, LOCAL).address == address


def test_the_url_host_wins_over_the_query_host_as_in_redis_py() -> None:
    assert redis_target("redis://127.0.0.1/0?host=10.255.255.1", LOCAL).host == "127.0.0.1"


def test_an_allowed_name_passes_exactly() -> None:
    policy = HostPolicy(allowed=frozenset({"redis"}))
    assert redis_target("redis://redis:6379/1", policy).address == "redis://redis:6379/1"
    with pytest.raises(pytest.UsageError, match=r"'redis\.'"):
        redis_target("redis://redis.:6379/1", policy)
    with pytest.raises(pytest.UsageError, match="'redis2'"):
        redis_target("redis://redis2:6379/1", policy)


@pytest.mark.parametrize(
    ("url", "pattern"),
    [
        ("redis+cluster://127.0.0.1/0", "must start with"),
        ("redis://127.0.0.1/0?cluster=true", "cluster"),
        ("unix:///tmp/r.sock?host=127.0.0.1", "host"),
        ("redis://127.0.0.1/abc", "not a number"),
        ("redis://127.0.0.1:port/0", "cannot parse"),
        ("redis://127.0.0.1/0?socket_timeout=soon", "cannot parse"),
    ],
)
def test_malformed_redis_urls_are_one_clean_error(url: str, pattern: str) -> None:
    with pytest.raises(pytest.UsageError, match=pattern):
        redis_target(url, LOCAL)


def _service_file(tmp_path: Path, host_line: str) -> dict[str, str]:
    path = tmp_path / "pg_service.conf"
    path.write_text(f"[prod]\n{host_line}\ndbname=app\n")
    return {"PGSERVICEFILE": str(path), "PGSYSCONFDIR": str(tmp_path / "none")}


@pytest.mark.parametrize(
    ("url", "env_names", "host"),
    [
        (PG + "10.255.255.1/app", {}, "10.255.255.1"),
        (PG + "127.0.0.1/app?hostaddr=10.255.255.1", {}, "10.255.255.1"),
        (PG + "/app?host=127.0.0.1&host=10.255.255.1", {}, "10.255.255.1"),
        (PG + "/app?host=127.0.0.1:5432&host=10.255.255.1:5432", {}, "10.255.255.1"),
        (PG + "/app?host=127.0.0.1,10.255.255.1", {}, "10.255.255.1"),
        (PG + "/app", {"PGHOST": "10.255.255.1"}, "10.255.255.1"),
        (PG + "/app", {"PGHOSTADDR": "10.255.255.1"}, "10.255.255.1"),
        (PG + "/app", {"PGHOST": "localhost."}, "localhost."),
        (PG + "db.internal/app", {}, "db.internal"),
        (PG + "/app?service=prod", {"service": "host=10.255.255.1"}, "10.255.255.1"),
        (PG + "/app", {"service": "hostaddr=10.255.255.1", "PGSERVICE": "prod"}, "10.255.255.1"),
    ],
)
def test_database_hosts_are_judged_as_libpq_reads_them(
    url: str, env_names: dict[str, str], host: str, tmp_path: Path
) -> None:
    environ = dict(env_names)
    if "service" in environ:
        environ |= _service_file(tmp_path, environ.pop("service"))
    with pytest.raises(pytest.UsageError) as refused:
        database_target(url, LOCAL, environ)
    assert f"refused database host {host!r}" in str(refused.value)


@pytest.mark.parametrize(
    ("url", "environ"),
    [
        (PG + "127.0.0.1/app", {"PGHOST": "10.255.255.1"}),  # the URL's host wins
        (PG + "db.internal/app?hostaddr=127.0.0.1", {}),  # hostaddr is dialled, not the name
        (PG + "/app", {}),  # the default unix socket
        (PG + "/app?host=/var/run/postgresql", {"PGHOSTADDR": ""}),
        ("sqlite:///app.db", {"PGHOST": "10.255.255.1"}),
    ],
)
def test_local_database_targets_pass(url: str, environ: dict[str, str]) -> None:
    database_target(url, LOCAL, environ)


def test_an_unknown_service_is_one_clean_error(tmp_path: Path) -> None:
    environ = _service_file(tmp_path, "host=127.0.0.1")
    with pytest.raises(pytest.UsageError, match="service 'other'"):
        database_target(PG + "/app?service=other", LOCAL, environ)


def test_a_missing_driver_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "psycopg" else real_find_spec(name, *a),
    )
    with pytest.raises(pytest.UsageError, match=r"pip install 'pytest-cachesync\[postgres\]'"):
        database_target(PG + "127.0.0.1/app", LOCAL, {})


@pytest.mark.parametrize(
    ("missing", "expected"),
    [
        ("asyncpg", r"'asyncpg' for .* is not installed\. Install it \(pip install asyncpg\)"),
        (
            "psycopg",
            r"'psycopg' for postgresql\+asyncpg://.* is not installed \(the plugin's own work "
            r"on the database uses it\)\. Install it \(pip install 'pytest-cachesync\[postgres\]'",
        ),
    ],
    ids=["asyncpg", "psycopg"],
)
def test_an_asyncpg_url_needs_asyncpg_and_psycopg(
    monkeypatch: pytest.MonkeyPatch, missing: str, expected: str
) -> None:
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == missing else real_find_spec(name, *a),
    )
    with pytest.raises(pytest.UsageError, match=expected):
        database_target("postgresql+asyncpg://postgres@127.0.0.1/app", LOCAL, {})


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "postgresql+asyncpg://app:pw@/shop?host=10.0.0.1:5432&host=10.0.0.2:5433",
            "postgresql://app@10.0.0.1,10.0.0.2:5432,5433/shop",
        ),
        (
            "postgresql+psycopg://app:pw@/shop?host=10.0.0.1:5432&host=10.0.0.2:5433",
            "postgresql://app@10.0.0.1,10.0.0.2:5432,5433/shop",
        ),
        ("postgresql+asyncpg://app:pw@127.0.0.1:5432/shop", "postgresql://app@127.0.0.1:5432/shop"),
    ],
)
def test_a_refused_database_is_shown_as_libpq_writes_it(url: str, shown: str) -> None:
    engine_url = sa.make_url(url)
    dialect = engine_url.get_dialect()()
    cargs, cparams = dialect.create_connect_args(engine_url)
    assert sql_address(dialect, tuple(cargs), dict(cparams)) == shown


def test_hosts_given_as_a_list_are_part_of_the_allowed_address() -> None:
    # asyncpg gets several hosts as lists: two host lists must not compare equal.
    pytest.importorskip("asyncpg")
    ours = sa.create_engine(
        "postgresql+asyncpg://app@/shop?host=127.0.0.1:5432&host=127.0.0.1:5433"
    )
    other = sa.create_engine(
        "postgresql+asyncpg://app@/shop?host=127.0.0.1:6432&host=127.0.0.1:6433"
    )
    assert connect_args(ours) != connect_args(other)
    assert connect_args(ours)[1]["host"] == ("127.0.0.1", "127.0.0.1")


def test_the_test_database_is_admitted_in_other_words_but_not_when_it_may_lead_elsewhere() -> None:
    ours = connect_args(sa.create_engine("postgresql+psycopg://app@127.0.0.1:5432/test_shop"))
    same = {"dbname": "test_shop", "user": "app", "host": "127.0.0.1", "port": 5432}
    shown = "postgresql://app@127.0.0.1:5432/test_shop"
    assert ours.address == shown
    assert ours.admits((), {**same, "application_name": "myapp"}, shown)
    # libpq dials hostaddr, and a service file may name another server.
    assert not ours.admits((), {**same, "hostaddr": "10.0.0.5"}, shown)
    assert not ours.admits((), {**same, "service": "prod"}, shown)
    # A connection string is merged with the rest by the driver: it may hold a hostaddr.
    assert not ours.admits((), {**same, "dsn": "hostaddr=10.0.0.5"}, shown)
    # Another database, user or port is another store.
    other = {**same, "dbname": "shop", "application_name": "myapp"}
    assert not ours.admits((), other, shown.replace("test_shop", "shop"))
    sockets = connect_args(sa.create_engine("postgresql+psycopg://app@/test_shop"))
    assert "(default socket)" in sockets.address
    assert sockets.admits((), {"dbname": "test_shop", "user": "app"}, sockets.address)
    # In other words, a socket is named by nothing the guard can compare.
    renamed = {"dbname": "test_shop", "user": "app", "application_name": "myapp"}
    assert not sockets.admits((), renamed, sockets.address)
