"""The real services the benchmarks use: PostgreSQL databases named bench_*, child processes."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess

from psycopg import sql

MAINTENANCE_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
PREFIX = "bench_"


def _checked(name: str) -> str:
    # Only databases of the benchmarks' own are ever created or dropped.
    if not name.startswith(PREFIX):
        raise ValueError(f"benchmark databases must be named {PREFIX}*, got {name!r}")
    return name


def pg_url(database: str, driver: str = "postgresql+psycopg") -> str:
    return f"{driver}://postgres@127.0.0.1:5432/{_checked(database)}"


def ensure_databases(names: list[str]) -> None:
    import psycopg

    with psycopg.connect(MAINTENANCE_URL, autocommit=True) as conn:
        for name in names:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (_checked(name),)
            ).fetchone()
            if not exists:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def drop_databases(names: list[str]) -> None:
    import psycopg

    with psycopg.connect(MAINTENANCE_URL, autocommit=True) as conn:
        for name in names:
            row = conn.execute(
                "SELECT datistemplate FROM pg_database WHERE datname = %s", (_checked(name),)
            ).fetchone()
            if row is None:
                continue
            database = sql.Identifier(name)
            if row[0]:  # a template database refuses DROP until it is an ordinary one again
                conn.execute(sql.SQL("ALTER DATABASE {} WITH is_template false").format(database))
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(database))


def stop_group(process: subprocess.Popen[bytes], timeout_s: float = 10.0) -> None:
    """Stop a child started with start_new_session=True, and every process it started.

    The group is signalled even when the child itself has exited: servers it started may live on.
    """
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=timeout_s)
