"""Every spelling of a production host is refused, and production accepts no connection.

Runs only inside a private network namespace (see tests/reliability/test_netns.py, which
starts it with ``unshare -rn``): a Redis server on 10.255.255.1:6379 and a listening port on
10.255.255.1:5432 stand for production, and count every connection they accept.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import psycopg  # noqa: F401 - imported once by the outer run, as in tests/plugin/conftest.py
import pytest

from .standins import (
    PRODUCTION,
    ListenerStandIn,
    RedisStandIn,
    inside_private_namespace,
    production,
)

pytestmark = pytest.mark.skipif(
    not inside_private_namespace(), reason="runs inside a private network namespace only"
)

PG = "postgresql+psycopg://postgres:pw@"
DECIMAL = "184549121"  # 10.255.255.1 as one number: getaddrinfo reads it as that address
HEX = "0xafffff01"

REDIS_SPELLINGS = [
    (f"redis://{PRODUCTION}:6379/0", PRODUCTION),
    (f"redis:///5?host={PRODUCTION}", PRODUCTION),
    (f"redis://?host={PRODUCTION}&port=6379", PRODUCTION),
    (f"rediss://{PRODUCTION}:6379/0", PRODUCTION),
    (f"redis://user:pw@{PRODUCTION}:6379/0", PRODUCTION),
    (f"redis://[::ffff:{PRODUCTION}]:6379/0", f"::ffff:{PRODUCTION}"),
    (f"redis://{DECIMAL}:6379/0", DECIMAL),
    (f"redis://{HEX}:6379/0", HEX),
    (f"redis://{PRODUCTION}.:6379/0", f"{PRODUCTION}."),
]

# (URL, environment, service file section): the host libpq would dial is production's.
DB_SPELLINGS = [
    (f"{PG}{PRODUCTION}:5432/app", {}, None),
    (f"{PG}127.0.0.1/app?hostaddr={PRODUCTION}", {}, None),
    (f"{PG}/app?host=127.0.0.1&host={PRODUCTION}", {}, None),
    (f"{PG}/app?host=127.0.0.1:5432&host={PRODUCTION}:5432", {}, None),
    (f"{PG}/app?host=127.0.0.1,{PRODUCTION}", {}, None),
    (f"{PG}/app", {"PGHOST": PRODUCTION}, None),
    (f"{PG}/app", {"PGHOSTADDR": PRODUCTION}, None),
    (f"{PG}/app?service=prod", {}, f"host={PRODUCTION}"),
    (f"{PG}/app", {"PGSERVICE": "prod"}, f"hostaddr={PRODUCTION}"),
    (f"{PG}/app", {"PGSERVICE": "prod"}, f"host={DECIMAL}"),
]

WRITER = """
def test_writes(cachesync):
    cachesync.redis.set(cachesync.key("k"), "v")
"""


@pytest.fixture(scope="module")
def standins(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[RedisStandIn, ListenerStandIn]]:
    with production(tmp_path_factory.mktemp("standins")) as servers:
        servers[0].client().set("customer:1", "production data")
        yield servers


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(("CACHESYNC_", "PYTEST_XDIST_", "PG")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("PYTEST_ADDOPTS", "-p no:hypothesispytest -p no:cacheprovider")


def _assert_refused(result: pytest.RunResult, pattern: str) -> None:
    output = result.stdout.str() + result.stderr.str()
    assert result.ret == pytest.ExitCode.USAGE_ERROR, output
    result.stderr.fnmatch_lines([f"ERROR: {pattern}"])
    assert "Traceback" not in output
    assert "INTERNALERROR" not in output


def _counts(standins: tuple[RedisStandIn, ListenerStandIn]) -> tuple[int, int]:
    return standins[0].connections(), standins[1].accepted


def _assert_untouched(
    standins: tuple[RedisStandIn, ListenerStandIn], before: tuple[int, int]
) -> None:
    redis_server, listener = standins
    assert redis_server.connections() == before[0], "the production Redis accepted a connection"
    assert listener.accepted == before[1], "the production database port accepted a connection"
    with redis_server.client() as client:
        assert client.get("customer:1") == b"production data"


@pytest.mark.usefixtures("clean_env")
@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["single", "xdist"])
@pytest.mark.parametrize(("url", "host"), REDIS_SPELLINGS)
def test_redis_spelling_is_refused(
    pytester: pytest.Pytester,
    standins: tuple[RedisStandIn, ListenerStandIn],
    url: str,
    host: str,
    xdist: list[str],
) -> None:
    before = _counts(standins)
    pytester.makepyfile(WRITER)
    # An allowed CI name lets exactly that name through, not production's address.
    result = pytester.runpytest(
        f"--cachesync-redis-url={url}", "--cachesync-allow-host=redis", *xdist
    )
    _assert_refused(result, f"cachesync refused Redis host {host!r} in *Nothing was contacted.")
    assert "pw@" not in result.stderr.str()
    _assert_untouched(standins, before)


@pytest.mark.usefixtures("clean_env")
@pytest.mark.parametrize(("url", "environ", "service"), DB_SPELLINGS)
def test_database_spelling_is_refused(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    standins: tuple[RedisStandIn, ListenerStandIn],
    url: str,
    environ: dict[str, str],
    service: str | None,
) -> None:
    before = _counts(standins)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    if service is not None:
        service_file = Path(pytester.path) / "pg_service.conf"
        service_file.write_text(f"[prod]\n{service}\ndbname=app\n")
        monkeypatch.setenv("PGSERVICEFILE", str(service_file))
    pytester.makepyfile(WRITER)
    result = pytester.runpytest(f"--cachesync-db-url={url}")
    _assert_refused(result, "cachesync refused database host '*' in *Nothing was contacted.")
    assert ":pw@" not in result.stderr.str()
    _assert_untouched(standins, before)


@pytest.mark.usefixtures("clean_env")
def test_unrouted_clients_are_refused_before_they_connect(
    pytester: pytest.Pytester, standins: tuple[RedisStandIn, ListenerStandIn]
) -> None:
    before = _counts(standins)
    pytester.makepyfile(
        f"""
        import redis
        import sqlalchemy as sa

        APP_REDIS = redis.Redis(host="{PRODUCTION}")
        APP_DB = sa.create_engine("{PG}{PRODUCTION}:5432/app")

        def test_app_cache(cachesync):
            APP_REDIS.flushdb()

        def test_app_database(cachesync):
            with APP_DB.connect():
                pass
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=2, errors=2)
    result.stdout.fnmatch_lines(
        [
            f"*cachesync refused a Redis connection to redis://{PRODUCTION}:6379/0 during*",
            f"*cachesync refused a SQL connection to postgresql://postgres@{PRODUCTION}:5432/app*",
        ]
    )
    _assert_untouched(standins, before)


@pytest.mark.usefixtures("clean_env")
def test_the_standins_count_what_reaches_them(
    pytester: pytest.Pytester, standins: tuple[RedisStandIn, ListenerStandIn]
) -> None:
    """The control: with the guard overridden, both stand-ins see the connections."""
    redis_before, listener_before = _counts(standins)
    pytester.makepyfile(WRITER)
    result = pytester.runpytest(
        f"--cachesync-redis-url=redis://{PRODUCTION}:6379/0",
        f"--cachesync-db-url={PG}{PRODUCTION}:5432/app",
        "--cachesync-allow-remote",
    )
    assert result.ret != 0
    assert standins[0].connections() > redis_before
    assert standins[1].accepted > listener_before
    with standins[0].client() as client:  # the foreign-keyspace refusal still held
        assert client.get("customer:1") == b"production data"
