"""Session start-up with Alembic migrations on PostgreSQL, 4 xdist workers: template vs each.

A generated project of 40 migrations (a table with an index each) and 8 near-empty tests runs
with ``-n 4`` and ``cachesync_alembic_config``, three ways:

* template, cold: no template yet; one worker migrates it, the others wait, all four copy it;
* template, warm: the template the previous session left (what every later session does);
* each worker: ``CACHESYNC_ALEMBIC_TEMPLATE=no``, every worker runs all the migrations.

The tests take well under a millisecond, so the session's wall time is its start-up and
teardown: interpreters, the plugin, and the four test databases.

Settings: ``BENCH_MIGRATIONS_DB_URL`` (default ``.../bench_migrations``; the plugin creates and
drops ``test_bench_migrations_gwN`` and keeps ``test_bench_migrations_template``, dropped at the
end of the benchmark).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import sqlalchemy as sa

from bench._suites import run_suite, tail
from bench._table import Result, markdown_table, median, ratio
from bench.compare import WITHOUT_BASELINE_PLUGINS

DB_URL = os.environ.get(
    "BENCH_MIGRATIONS_DB_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/bench_migrations"
)
MIGRATIONS = 40
TESTS = 8
WORKERS = 4
ROUNDS = 3
TIMEOUT_S = 300.0

ENV_PY = """
from alembic import context
from sqlalchemy import engine_from_config, pool

config = context.config
connectable = engine_from_config(
    config.get_section(config.config_ini_section, {}), prefix="sqlalchemy.", poolclass=pool.NullPool
)
with connectable.connect() as connection:
    context.configure(connection=connection, target_metadata=None)
    with context.begin_transaction():
        context.run_migrations()
"""

MIGRATION = """
import sqlalchemy as sa
from alembic import op

revision = "{rev:04d}"
down_revision = {down}


def upgrade():
    op.create_table(
        "t{rev:04d}",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(80), nullable=False),
        sa.Column("created", sa.DateTime, server_default=sa.func.now()),
        sa.Column("parent_id", sa.Integer, nullable=True),
    )
    op.create_index("ix_t{rev:04d}_name", "t{rev:04d}", ["name"])
"""

TEST = """
import pytest


@pytest.mark.parametrize("i", range({tests}))
def test_starts(cachesync_engine, i):
    pass
"""


def write_project(root: Path) -> None:
    versions = root / "migrations" / "versions"
    versions.mkdir(parents=True)
    (root / "migrations" / "env.py").write_text(ENV_PY)
    (root / "alembic.ini").write_text(
        "[alembic]\nscript_location = migrations\nsqlalchemy.url = postgresql://unused\n"
    )
    for rev in range(1, MIGRATIONS + 1):
        down = "None" if rev == 1 else f'"{rev - 1:04d}"'
        (versions / f"{rev:04d}.py").write_text(MIGRATION.format(rev=rev, down=down))
    (root / "test_start.py").write_text(TEST.format(tests=TESTS))
    (root / "pytest.ini").write_text("[pytest]\ncachesync_alembic_config = alembic.ini\n")


def _drop_template() -> None:
    url = sa.make_url(DB_URL)
    admin = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            name = f"test_{url.database}_template"
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()


def _session(root: Path, *, template: bool) -> float | None:
    args = [*WITHOUT_BASELINE_PLUGINS, f"--cachesync-db-url={DB_URL}", "-n", str(WORKERS)]
    env = {"CACHESYNC_ALEMBIC_TEMPLATE": "yes" if template else "no"}
    run = run_suite(root, args, timeout_s=TIMEOUT_S, env=env)
    if not run.ok or run.passed != TESTS:
        print(f"  session failed ({run.failed} failed, {run.passed} passed):\n{tail(run.output)}")
        return None
    return run.wall_s


def _median(values: list[float | None]) -> float | None:
    return None if any(v is None for v in values) else median(v for v in values if v is not None)


def main() -> list[Result]:
    print(f"== migrations: {MIGRATIONS} migrations, -n {WORKERS}, template vs each worker")
    cold: list[float | None] = []
    warm: list[float | None] = []
    each: list[float | None] = []
    with tempfile.TemporaryDirectory(prefix="bench-migrations-") as workdir:
        root = Path(workdir)
        write_project(root)
        try:
            for _ in range(ROUNDS):
                _drop_template()
                cold.append(_session(root, template=True))
                warm.append(_session(root, template=True))
                each.append(_session(root, template=False))
        finally:
            _drop_template()
    cold_s, warm_s, each_s = _median(cold), _median(warm), _median(each)
    label = f"session start-up, {MIGRATIONS} migrations, -n {WORKERS}"
    rows = [
        Result(f"{label}: each worker migrates", each_s, "s", note=f"median of {ROUNDS}"),
        Result(
            f"{label}: template, first session",
            cold_s,
            "s",
            ratio=ratio(each_s, cold_s),
            versus="each worker",
            note="one worker migrates the template, all copy it",
        ),
        Result(
            f"{label}: template kept",
            warm_s,
            "s",
            ratio=ratio(each_s, warm_s),
            versus="each worker",
            note="later sessions: copies only",
        ),
    ]
    print(markdown_table(rows))
    return rows


if __name__ == "__main__":
    main()
