"""Pointing an existing Flask-SQLAlchemy ``db`` at the test's database for one test."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa

_MISSING = object()


@contextmanager
def bind_flask_sqlalchemy(db: Any, app: Any, bind: sa.Engine | sa.Connection) -> Iterator[None]:
    """Route ``db.session`` (default bind key) of ``app`` to ``bind`` inside the block.

    With a Connection (rollback strategy) the app's sessions join the test's transaction with
    ``join_transaction_mode="create_savepoint"``: ``db.session.commit()`` commits a SAVEPOINT
    and the test's rollback discards everything. With an Engine (truncate strategy) the app
    commits for real and the plugin deletes the rows before the next test.
    """
    if not isinstance(bind, sa.Engine | sa.Connection):
        # Checked here: SQLAlchemy would fail only at the app's first query, far from the cause.
        raise TypeError(
            "bind_flask_sqlalchemy: bind must be an Engine or a Connection, such as "
            f"cachesync.bind; got {type(bind).__name__}."
        )
    engines = getattr(db, "_app_engines", None)
    if engines is None or app not in engines:
        raise RuntimeError(
            "bind_flask_sqlalchemy: this Flask-SQLAlchemy db is not initialised on the given "
            "app (call db.init_app(app) first; Flask-SQLAlchemy >= 3.0 is required)."
        )
    app_engines: dict[str | None, Any] = engines[app]
    factory = db.session.session_factory
    saved_engine = app_engines.get(None, _MISSING)
    saved_mode = factory.kw.get("join_transaction_mode", _MISSING)
    app_engines[None] = bind
    if isinstance(bind, sa.Connection):
        factory.configure(join_transaction_mode="create_savepoint")
    try:
        yield
    finally:
        with app.app_context():
            db.session.remove()
        if saved_engine is _MISSING:
            app_engines.pop(None, None)
        else:
            app_engines[None] = saved_engine
        if saved_mode is _MISSING:
            factory.kw.pop("join_transaction_mode", None)
        else:
            factory.kw["join_transaction_mode"] = saved_mode
