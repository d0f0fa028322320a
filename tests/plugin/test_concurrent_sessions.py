"""Two pytest sessions on the same stores: the second is refused, the first is unaffected.

The first session runs in a subprocess and holds its stores inside a test that waits for a
release file; the second starts meanwhile with the same URLs. After the first ends (normally or
killed) a third session on the same stores runs.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
import redis
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from pytest_cachesync.stores.guard import redis_db_from_url

from .conftest import REAL_DB_URL, REAL_REDIS_URL, Backend, needs_real_db, needs_real_redis

HOLDER = """
import os
import time
from pathlib import Path

import pytest


@pytest.mark.cachesync(db_reset="truncate")
def test_holds_the_stores(cachesync):
    cachesync.redis.set(cachesync.key("held"), "v")
    with cachesync.engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS held (v INTEGER)")
        conn.exec_driver_sql("INSERT INTO held VALUES (1)")
    Path(os.environ["HOLD_READY"]).write_text(str(os.getpid()))
    release = Path(os.environ["HOLD_RELEASE"])
    deadline = time.monotonic() + 120
    while not release.exists():
        assert time.monotonic() < deadline, "never released"
        time.sleep(0.02)
    # Whatever the refused session did, this session's stores are as it left them.
    assert cachesync.redis.get(cachesync.key("held")) == b"v"
    with cachesync.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM held").scalar_one() == 1
"""

_BOUND_SECONDS = 60.0


class Holder:
    """The first session, in its own process."""

    def __init__(self, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
        self.pytester = pytester
        self.ready = pytester.path / "ready"
        self.release_file = pytester.path / "release"
        self.log = pytester.path / "holder.log"
        self.process: subprocess.Popen[bytes] | None = None
        monkeypatch.setenv("HOLD_READY", str(self.ready))
        monkeypatch.setenv("HOLD_RELEASE", str(self.release_file))

    def start(self, *args: str) -> int:
        with self.log.open("w") as log:
            self.process = self.pytester.popen(
                [sys.executable, "-m", "pytest", "-q", *args], stdout=log, stderr=log
            )
        deadline = time.monotonic() + _BOUND_SECONDS
        while not self.ready.exists():
            assert self.process.poll() is None, self.output()
            assert time.monotonic() < deadline, "the first session never reached its test"
            time.sleep(0.02)
        return self.process.pid

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def finish(self) -> int:
        assert self.process is not None
        self.release_file.touch()
        return self.process.wait(timeout=_BOUND_SECONDS)

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=_BOUND_SECONDS)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.release_file.touch()
            try:
                self.process.wait(timeout=_BOUND_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture
def holder(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, backend: Backend
) -> Iterator[Holder]:
    pytester.makepyfile(HOLDER)
    started = Holder(pytester, monkeypatch)
    yield started
    started.stop()


def _use_only(monkeypatch: pytest.MonkeyPatch, store: str) -> None:
    """Leave only one real store configured, so the refusal seen is that store's."""
    monkeypatch.delenv("CACHESYNC_DB_URL" if store == "redis" else "CACHESYNC_REDIS_URL")


def _run_third(pytester: pytest.Pytester, holder: Holder, *args: str) -> pytest.RunResult:
    """A later session; its copy of the holder's test finds the release file and ends at once."""
    holder.release_file.touch()
    return pytester.runpytest(*args)


def _refusal(store: str, backend: Backend, pid: int, *, redis_db: int | None = None) -> str:
    holding = f"another pytest session is using it right now (pytest-cachesync pid {pid} on host *"
    if store == "redis":
        assert backend.redis_url is not None
        return f"ERROR: cachesync refused Redis db {redis_db} at *: {holding}"
    assert backend.db_url is not None
    name = f"test_{make_url(backend.db_url).database}"
    return f"ERROR: cachesync refused the test database '{name}' (*): {holding}"


def _redis_value(url: str, db: int) -> bytes | None:
    client = redis.Redis.from_url(url, db=db)
    try:
        value = client.get("held")
        assert value is None or isinstance(value, bytes)
        return value
    finally:
        client.close()


def _held_rows(db_url: str) -> int:
    url = make_url(db_url)
    engine = sa.create_engine(url.set(database=f"test_{url.database}"))
    try:
        with engine.connect() as conn:
            return int(conn.exec_driver_sql("SELECT count(*) FROM held").scalar_one())
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    "store",
    [pytest.param("redis", marks=needs_real_redis), pytest.param("db", marks=needs_real_db)],
)
def test_second_session_is_refused_and_first_is_unaffected(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    backend: Backend,
    holder: Holder,
    store: str,
) -> None:
    _use_only(monkeypatch, store)
    pid = holder.start()

    refused = pytester.runpytest()

    assert refused.ret == pytest.ExitCode.USAGE_ERROR
    redis_db = redis_db_from_url(backend.redis_url) if backend.redis_url else None
    refused.stderr.fnmatch_lines([_refusal(store, backend, pid, redis_db=redis_db) + "Wait*"])
    assert refused.stderr.str().count("ERROR: ") == 1
    refused.stdout.no_fnmatch_line("*test_holds_the_stores*")
    if store == "redis":
        assert backend.redis_url is not None
        assert redis_db is not None
        assert _redis_value(backend.redis_url, redis_db) == b"v"
    else:
        assert backend.db_url is not None
        assert _held_rows(backend.db_url) == 1

    assert holder.finish() == 0, holder.output()
    _run_third(pytester, holder).assert_outcomes(passed=1)


@needs_real_redis
@needs_real_db
def test_xdist_controller_claims_for_its_workers(
    pytester: pytest.Pytester, backend: Backend, holder: Holder
) -> None:
    assert backend.redis_url is not None
    base = int(backend.redis_url.rsplit("/", 1)[1])
    pid = holder.start("-n", "2")

    second_worker_db = backend.redis_url.rsplit("/", 1)[0] + f"/{base + 1}"
    refused = pytester.runpytest(f"--cachesync-redis-url={second_worker_db}")

    assert refused.ret == pytest.ExitCode.USAGE_ERROR
    refused.stderr.fnmatch_lines([_refusal("redis", backend, pid, redis_db=base + 1)])
    assert holder.finish() == 0, holder.output()
    _run_third(pytester, holder, "-n", "2").assert_outcomes(passed=1)


@pytest.mark.skipif(
    REAL_REDIS_URL is None and REAL_DB_URL is None,
    reason="needs a real Redis or PostgreSQL: set CACHESYNC_REDIS_URL or CACHESYNC_DB_URL",
)
def test_killed_session_leaves_no_claim_behind(
    pytester: pytest.Pytester, backend: Backend, holder: Holder
) -> None:
    pid = holder.start()
    holder.kill()
    _wait_until_servers_forget(backend, pid)

    # The killed test left its key without the sentinel: that is the foreign-data guard's call.
    result = _run_third(pytester, holder, "--cachesync-allow-foreign-redis")

    result.assert_outcomes(passed=1)


def _wait_until_servers_forget(backend: Backend, pid: int) -> None:
    """Bounded wait for the servers to notice the killed process's connections are gone."""
    marker = f"pid={pid}/"
    label = f"pytest-cachesync pid {pid} on host %"
    deadline = time.monotonic() + _BOUND_SECONDS
    while True:
        alive = False
        if backend.redis_url is not None:
            client = redis.Redis.from_url(backend.redis_url)
            try:
                alive = any(marker in str(entry.get("name")) for entry in client.client_list())
            finally:
                client.close()
        if not alive and backend.db_url is not None:
            engine = sa.create_engine(make_url(backend.db_url).set(database="postgres"))
            try:
                with engine.connect() as conn:
                    alive = bool(
                        conn.execute(
                            sa.text(
                                "SELECT count(*) FROM pg_stat_activity "
                                "WHERE application_name LIKE :label"
                            ),
                            {"label": label},
                        ).scalar_one()
                    )
            finally:
                engine.dispose()
        if not alive:
            return
        assert time.monotonic() < deadline, "the servers kept the killed session's connections"
        time.sleep(0.05)


def test_parallel_runs_share_nothing_on_the_default_backend(
    pytester: pytest.Pytester, default_backend: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """fakeredis and the SQLite file are private to a session: no claim, no refusal."""
    pytester.makepyfile(HOLDER)
    holder = Holder(pytester, monkeypatch)
    try:
        holder.start()
        _run_third(pytester, holder).assert_outcomes(passed=1)
        assert holder.finish() == 0, holder.output()
    finally:
        holder.stop()


def test_a_named_sqlite_file_is_claimed_like_a_server_database(
    pytester: pytest.Pytester, holder: Holder
) -> None:
    # The default SQLite file lives in each session's basetemp; one named by the user does not.
    named = "--cachesync-db-url=sqlite:///app.db"
    pid = holder.start(named)

    refused = pytester.runpytest(named)

    assert refused.ret == pytest.ExitCode.USAGE_ERROR
    refused.stderr.fnmatch_lines(
        [
            "ERROR: cachesync refused the test database '*test_app.db' (sqlite:///*test_app.db): "
            f"another pytest session is using it right now (pytest-cachesync pid {pid} on host *"
        ]
    )
    refused.stdout.no_fnmatch_line("*test_holds_the_stores*")
    assert holder.finish() == 0, holder.output()
    assert not (pytester.path / "test_app.db.cachesync-lock").exists()
    _run_third(pytester, holder, named).assert_outcomes(passed=1)


def test_a_killed_session_leaves_no_claim_on_a_named_sqlite_file(
    pytester: pytest.Pytester, holder: Holder
) -> None:
    named = "--cachesync-db-url=sqlite:///app.db"
    holder.start(named)
    holder.kill()

    # The kernel dropped the lock with the process; the lock file it left is no claim. (On a
    # real Redis the killed test left its key without the sentinel: the foreign-data guard's
    # call, as for the servers above.)
    assert (pytester.path / "test_app.db.cachesync-lock").exists()
    result = _run_third(pytester, holder, named, "--cachesync-allow-foreign-redis")
    result.assert_outcomes(passed=1)
