"""``init-db`` brings a SQLite database of an earlier release to the current schema."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import sqlite
from sqlalchemy.schema import CreateTable

from sample_app import create_app
from sample_app.models import Base, RevokedSession


def _earlier_release_schema(path: Path) -> None:
    """The tables as the release before token versions created them: no AUTOINCREMENT."""
    with sqlite3.connect(path) as db:
        for table in Base.metadata.sorted_tables:
            if table is RevokedSession.__table__:
                continue
            ddl = str(CreateTable(table).compile(dialect=sqlite.dialect()))
            lines = [line for line in ddl.splitlines() if "token_version" not in line]
            db.execute("\n".join(lines).replace(" AUTOINCREMENT", ""))
        db.executescript(
            """
            INSERT INTO users (id, username, email, password_hash, role, created_at) VALUES
              (1, 'root', 'root@example.com', 'x', 'admin', '2026-01-01 00:00:00'),
              (2, 'alice', 'alice@example.com', 'x', 'user', '2026-01-01 00:00:00');
            INSERT INTO parking_lots VALUES (1, 'Central', 'a', '5600', 100, 1,
                                             '2026-01-01 00:00:00');
            INSERT INTO parking_spots VALUES (1, 1, 1, 'occupied', 2);
            INSERT INTO reservations VALUES (1, 1, 2, 100, '2026-01-01 00:00:00', NULL, NULL);
            """
        )


def _table_sql(path: Path, name: str) -> str:
    with sqlite3.connect(path) as db:
        row = db.execute("SELECT sql FROM sqlite_master WHERE name = ?", (name,)).fetchone()
    return str(row[0])


def test_init_db_upgrades_an_earlier_sqlite_database_without_losing_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "old.sqlite3"
    _earlier_release_schema(path)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    app = create_app(
        {"APP_ENV": "testing", "SECRET_KEY": "k" * 32, "DATABASE_URL": f"sqlite:///{path}"}
    )
    for _ in range(2):  # idempotent
        result = app.test_cli_runner().invoke(args=["init-db"])
        assert result.exit_code == 0, result.output
    for name in ("users", "parking_lots", "parking_spots", "reservations"):
        assert "AUTOINCREMENT" in _table_sql(path, name)
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA foreign_keys=ON")
        assert db.execute("SELECT id, token_version FROM users").fetchall() == [(1, 0), (2, 0)]
        # The rebuild ran no ON DELETE action: alice still holds her spot and reservation.
        assert db.execute("SELECT user_id FROM parking_spots").fetchall() == [(2,)]
        assert db.execute("SELECT user_id FROM reservations").fetchall() == [(2,)]
        assert db.execute("PRAGMA foreign_key_check").fetchall() == []
        db.execute("DELETE FROM users WHERE id = 2")
        db.execute(
            "INSERT INTO users (username, email, password_hash, role, created_at) "
            "VALUES ('bob', 'bob@example.com', 'x', 'user', '2026-01-02 00:00:00')"
        )
        assert db.execute("SELECT id FROM users WHERE username = 'bob'").fetchone() == (3,)
    engine = sa.create_engine(f"sqlite:///{path}")
    assert "revoked_sessions" in sa.inspect(engine).get_table_names()
    engine.dispose()
