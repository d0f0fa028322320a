"""The pytester set-up of ``lotsapp.py``: a conftest as its users would write one, and an ini.

The conftest points the module-level app at the test's stores (the global Redis client swapped
for ``cachesync.redis``, the Flask-SQLAlchemy ``db`` bound to ``cachesync.bind``) and seeds lot 1
(two spots, one taken by user 2).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import Backend

APP_SOURCE = (Path(__file__).parent / "lotsapp.py").read_text()

CONFTEST = """
import pytest
import sqlalchemy as sa
import lotsapp
from pytest_cachesync.integrations.flask_sqlalchemy import bind_flask_sqlalchemy


@pytest.fixture(scope="session")
def cachesync_metadata():
    return lotsapp.db.metadata


@pytest.fixture
def app(cachesync, monkeypatch):
    monkeypatch.setattr(lotsapp, "cache", cachesync.redis)
    with bind_flask_sqlalchemy(lotsapp.db, lotsapp.app, cachesync.bind):
        with lotsapp.app.app_context():
            session = lotsapp.db.session
            session.add(lotsapp.Lot(id=1, name="North"))
            session.add(lotsapp.User(id=2, name="ann"))
            session.flush()  # no relationship() orders the rows: the spots come after
            session.add(lotsapp.Spot(id=1, lot_id=1, user_id=2))
            session.add(lotsapp.Spot(id=2, lot_id=1))
            if session.get_bind().dialect.name == "postgresql":
                # The seed chose its ids; rows the app creates take theirs past them.
                for table in ("lot", '"user"', "spot"):
                    session.execute(
                        sa.text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), 100)")
                    )
            session.commit()
        yield lotsapp.app


@pytest.fixture
def client(app):
    return app.test_client()
"""

INI = """
[pytest]
cachesync_cache_patterns = parking_lot:*
cachesync_oracle = {oracle}
"""

RESET_MODES = ("rollback", "truncate")


@pytest.fixture
def lots(pytester: pytest.Pytester, backend: Backend) -> Backend:
    """``lotsapp.py``, its conftest and an ini (cache pattern ``parking_lot:*``, no oracle)."""
    pytester.makepyfile(lotsapp=APP_SOURCE)
    pytester.makeconftest(CONFTEST)
    pytester.makeini(INI.format(oracle="false"))
    pytester.syspathinsert()
    return backend


def oracle_ini(pytester: pytest.Pytester) -> None:
    """The configuration the README recommends: every GET of cachesync_client replayed."""
    pytester.makeini(INI.format(oracle="true"))
