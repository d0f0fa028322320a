"""Test databases built by Alembic migrations: ``cachesync_alembic_config``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.plugin.conftest import Backend, needs_real_db

pytest.importorskip("alembic")

# The migrations log every run of their upgrade, so a test can count them.
FIRST = """
import os
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None


def upgrade():
    with open(os.environ["MIGRATION_LOG"], "a") as log:
        log.write("0001\\n")
    op.create_table(
        "lots",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(50), nullable=False),
    )
"""

SECOND = """
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade():
    op.add_column("lots", sa.Column("price", sa.Integer, nullable=False, server_default="1"))
"""

TESTS = """
import sqlalchemy as sa
import pytest


@pytest.mark.parametrize("i", range(4))
def test_migrated_schema_starts_empty(cachesync, i):
    with cachesync.engine.connect() as conn:
        version = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one()
    assert version == "0002"
    count = cachesync.db.execute(sa.text("SELECT count(*) FROM lots")).scalar_one()
    assert count == 0
    cachesync.db.execute(sa.text("INSERT INTO lots (name) VALUES ('a')"))
    cachesync.db.commit()
    price = cachesync.db.execute(sa.text("SELECT price FROM lots")).scalar_one()
    assert price == 1
"""


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project whose schema comes from ``alembic init``'s generated env.py and two
    migrations; ``migrations.log`` gets a line each time the first migration runs."""
    from alembic import command
    from alembic.config import Config

    command.init(Config(str(pytester.path / "alembic.ini")), str(pytester.path / "migrations"))
    versions = pytester.path / "migrations" / "versions"
    (versions / "0001_lots.py").write_text(FIRST)
    (versions / "0002_price.py").write_text(SECOND)
    pytester.makepyfile(test_schema=TESTS)
    log = pytester.path / "migrations.log"
    monkeypatch.setenv("MIGRATION_LOG", str(log))
    return log


@pytest.fixture
def no_template(backend: Backend) -> Iterator[str | None]:
    """On PostgreSQL, no template database before and after the test (it outlives sessions);
    yields its name."""
    if backend.db_url is None:
        yield None
        return
    import sqlalchemy as sa

    url = sa.make_url(backend.db_url)
    template = f"test_{url.database}_template"
    admin = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")

    def drop() -> None:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{template}" WITH (FORCE)')

    drop()
    try:
        yield template
    finally:
        drop()
        admin.dispose()


def _runs(log: Path) -> int:
    return len(log.read_text().splitlines()) if log.exists() else 0


@pytest.mark.usefixtures("backend", "no_template")
@pytest.mark.parametrize("reset", ["rollback", "truncate"])
def test_each_test_starts_on_the_migrated_schema(
    pytester: pytest.Pytester, project: Path, reset: str
) -> None:
    pytester.makeini("[pytest]\ncachesync_alembic_config = alembic.ini\n")
    result = pytester.runpytest("-p", "no:randomly", f"--cachesync-db-reset={reset}")
    result.assert_outcomes(passed=4)
    assert _runs(project) == 1
    result.stdout.fnmatch_lines(["*alembic-config=alembic.ini (ini)*"])


@pytest.mark.usefixtures("default_backend")
def test_without_the_option_the_schema_is_missing(pytester: pytest.Pytester, project: Path) -> None:
    result = pytester.runpytest("-p", "no:randomly", "-x")
    result.assert_outcomes(failed=1)
    assert _runs(project) == 0


@pytest.mark.usefixtures("default_backend")
def test_loggers_survive_the_generated_env_py(pytester: pytest.Pytester, project: Path) -> None:
    pytester.makeconftest(
        "import logging\nlogger = logging.getLogger('myapp')\n"
        "def pytest_sessionfinish(session):\n    assert not logger.disabled\n"
    )
    pytester.makepyfile(
        test_log="""
        import logging

        def test_app_logs_are_captured(cachesync, caplog):
            logging.getLogger("myapp").warning("visible")
            assert "visible" in caplog.text
        """
    )
    result = pytester.runpytest("-p", "no:randomly", "--cachesync-alembic-config=alembic.ini")
    result.assert_outcomes(passed=5)


@pytest.mark.usefixtures("default_backend")
def test_a_missing_config_is_a_clear_error(pytester: pytest.Pytester, project: Path) -> None:
    result = pytester.runpytest("--cachesync-alembic-config=nope/alembic.ini")
    result.stdout.fnmatch_lines(["*cachesync_alembic_config: no file *nope*alembic.ini*"])
    assert result.ret != 0


@needs_real_db
@pytest.mark.usefixtures("backend", "no_template")
def test_workers_copy_one_template(
    pytester: pytest.Pytester, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makeini("[pytest]\ncachesync_alembic_config = alembic.ini\n")
    pytester.runpytest("-n", "2").assert_outcomes(passed=4)
    assert _runs(project) == 1  # one build for both workers
    pytester.runpytest("-n", "2").assert_outcomes(passed=4)
    assert _runs(project) == 1  # the template is kept between sessions
    second = project.parent / "migrations" / "versions" / "0002_price.py"
    second.write_text(second.read_text().replace('server_default="1"', 'server_default="2"'))
    pytester.runpytest("-n", "2").assert_outcomes(failed=4)
    assert _runs(project) == 2  # changed migrations rebuild it
    monkeypatch.setenv("CACHESYNC_ALEMBIC_TEMPLATE", "no")
    pytester.runpytest("-n", "2").assert_outcomes(failed=4)
    assert _runs(project) == 4  # without the template, each worker migrates its own
