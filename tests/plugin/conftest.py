"""Backends for the pytester runs of the plugin suite.

Inner runs use the real servers when the outer run does (``CACHESYNC_REDIS_URL`` /
``CACHESYNC_DB_URL`` set), but on their own Redis databases and database names, so the outer
session's stores and the inner ones never collide.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import psycopg  # noqa: F401 - see below
import pytest
from sqlalchemy.engine import make_url

from pytest_cachesync.stores.guard import redis_db_from_url

# psycopg is imported here, once, by the outer run: pytester forgets the modules an inner run
# imported, and psycopg imported again beside its compiled part, which stays, raises errors
# that are no longer its own exception classes (SQLAlchemy cannot wrap them).

REAL_REDIS_URL = os.environ.get("CACHESYNC_REDIS_URL") or None
REAL_DB_URL = os.environ.get("CACHESYNC_DB_URL") or None


# Read once at import: inner runs must not inherit them (see _clear_env).
_OUTER_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
_OUTER_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))


def _outer_worker_index() -> int:
    return int(_OUTER_WORKER.removeprefix("gw")) if _OUTER_WORKER.startswith("gw") else 0


def inner_redis_url(outer: str) -> str:
    """Base db of inner runs: past the outer run's dbs (one per outer worker), two per worker."""
    parts = urlsplit(outer)
    db = redis_db_from_url(outer) + _OUTER_WORKERS + 2 * _outer_worker_index()
    return urlunsplit((parts.scheme, parts.netloc, f"/{db}", parts.query, parts.fragment))


def inner_db_url(outer: str, tag: str = "p") -> str:
    """The base database name of inner runs: the outer one's plus the tag and the outer worker
    (a tag of their own keeps some tests' inner runs apart from all the others')."""
    url = make_url(outer)
    return url.set(database=f"{url.database}_{tag}{_outer_worker_index()}").render_as_string(
        hide_password=False
    )


@dataclass(frozen=True)
class Backend:
    """The stores inner runs use: ``None`` = embedded default."""

    redis_url: str | None
    db_url: str | None

    @property
    def real(self) -> bool:
        return self.redis_url is not None


def _clear_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        # An outer xdist worker's identity would make an in-process inner run think it is one.
        if name.startswith("CACHESYNC_") or name.startswith("PYTEST_XDIST_"):
            monkeypatch.delenv(name)
    # Set after pytester's setup, which clears it. Inner runs re-import their plugins, and
    # hypothesis' alone costs a second per run. pytest-flask, installed for its integration
    # tests, is enabled by those alone: its autouse fixtures would change the others.
    monkeypatch.setenv("PYTEST_ADDOPTS", "-p no:hypothesispytest -p no:cacheprovider -p no:flask")


@pytest.fixture
def backend(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Backend:
    _clear_env(monkeypatch)
    redis_url = inner_redis_url(REAL_REDIS_URL) if REAL_REDIS_URL else None
    db_url = inner_db_url(REAL_DB_URL) if REAL_DB_URL else None
    if redis_url:
        monkeypatch.setenv("CACHESYNC_REDIS_URL", redis_url)
    if db_url:
        monkeypatch.setenv("CACHESYNC_DB_URL", db_url)
    return Backend(redis_url, db_url)


@pytest.fixture
def default_backend(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """Inner runs on the embedded default whatever the outer run uses."""
    _clear_env(monkeypatch)


needs_real_redis = pytest.mark.skipif(
    REAL_REDIS_URL is None, reason="needs a real Redis: set CACHESYNC_REDIS_URL"
)
needs_real_db = pytest.mark.skipif(
    REAL_DB_URL is None, reason="needs a real PostgreSQL: set CACHESYNC_DB_URL"
)

MODELS = """
import pytest
import sqlalchemy as sa

metadata = sa.MetaData()
items = sa.Table(
    "items", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(50), nullable=False),
)
tags = sa.Table(
    "tags", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("item_id", sa.ForeignKey("items.id"), nullable=False),
)


def count(conn, table=items):
    return conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
"""

CONFTEST = """
import pytest
from models import metadata


@pytest.fixture(scope="session")
def cachesync_metadata():
    return metadata
"""


@pytest.fixture
def models(pytester: pytest.Pytester) -> None:
    """A toy schema (items, tags) as ``models.py`` and a conftest returning its MetaData."""
    pytester.makepyfile(models=MODELS)
    pytester.makeconftest(CONFTEST)
    pytester.syspathinsert()
