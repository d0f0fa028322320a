"""pytest-flask's ``live_server`` and ``client`` on the test's stores, in pytester runs."""

from __future__ import annotations

import pytest

pytest.importorskip("pytest_flask")

pytestmark = pytest.mark.usefixtures("backend", "with_pytest_flask")


@pytest.fixture
def with_pytest_flask(backend: object, monkeypatch: pytest.MonkeyPatch) -> None:
    """Inner runs load pytest-flask (the plugin suite's runs leave it out)."""
    monkeypatch.setenv("PYTEST_ADDOPTS", "-p no:hypothesispytest -p no:cacheprovider")


# A module-level app with a module-level Redis client and engine pointing at production
# servers that do not exist: only the plugin's routing can make it answer.
LIVEAPP = """
import flask
import redis
import sqlalchemy as sa
from sqlalchemy.orm import Session

metadata = sa.MetaData()
notes = sa.Table(
    "notes", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("text", sa.String(50), nullable=False),
)
redis_client = redis.Redis.from_url("redis://production-redis.invalid:6379/0")
# (SQLite: a driver first imported inside an inner run would be re-imported by the next one,
# and psycopg's compiled part keeps raising the first import's exception classes.)
bind = sa.create_engine("sqlite:////production-db.invalid/app.sqlite3")

app = flask.Flask("liveapp")


@app.get("/notes/<int:note_id>")
def note(note_id):
    hits = redis_client.incr("hits")
    with Session(bind=bind, join_transaction_mode="create_savepoint") as s:
        text = s.execute(sa.select(notes.c.text).where(notes.c.id == note_id)).scalar_one()
    return {"text": text, "hits": hits, "cached": (redis_client.get("note") or b"").decode()}


@app.get("/where")
def where():
    return {"url": flask.url_for("where", _external=True)}
"""

CONFTEST = """
import pytest
import liveapp


@pytest.fixture(scope="session")
def cachesync_metadata():
    return liveapp.metadata


@pytest.fixture
def app(cachesync, monkeypatch):
    monkeypatch.setattr(liveapp, "bind", cachesync.bind)
    return liveapp.app
"""

TESTS = """
import json
import urllib.request

import pytest

import liveapp


def fetch(url):
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


@pytest.mark.parametrize("text", ["first", "second", "third"])
def test_live_server_sees_the_tests_stores(live_server, cachesync, text):
    cachesync.db.execute(liveapp.notes.insert(), [{"id": 1, "text": text}])
    cachesync.db.commit()
    cachesync.redis.set("note", text)
    answer = fetch(live_server.url("/notes/1"))
    # Each test starts from empty stores: the counter restarts, the row is the test's own.
    assert answer == {"text": text, "hits": 1, "cached": text}
    assert fetch(live_server.url("/notes/1"))["hits"] == 2
    assert cachesync.redis.get("hits") == b"2"


def test_url_for_names_the_live_server(live_server):
    # pytest-flask's convention: SERVER_NAME is the app's (else localhost.localdomain) with
    # the live server's port.
    url = fetch(live_server.url("/where"))["url"]
    assert url == f"http://localhost.localdomain:{live_server.port}/where"


def test_flask_client_and_cachesync_client_side_by_side(client, cachesync_client, cachesync):
    cachesync.db.execute(liveapp.notes.insert(), [{"id": 1, "text": "both"}])
    assert client.get("/notes/1").get_json()["hits"] == 1
    assert cachesync_client.get("/notes/1").get_json()["hits"] == 2
    assert client.get("/notes/1").json["text"] == "both"
"""

INI = """
[pytest]
cachesync_redis_targets =
    liveapp:redis_client
cachesync_cache_patterns = note
{extra}
"""


def _write(pytester: pytest.Pytester, extra: str = "") -> None:
    pytester.makepyfile(liveapp=LIVEAPP, test_live=TESTS)
    pytester.makeconftest(CONFTEST)
    pytester.makeini(INI.format(extra=extra))
    pytester.syspathinsert()


@pytest.mark.parametrize("scope", ["session", "function"])
def test_live_server_serves_on_the_tests_stores(pytester: pytest.Pytester, scope: str) -> None:
    _write(pytester, f"live_server_scope = {scope}")
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=5)
    assert "production-redis.invalid" not in result.stdout.str()


def test_live_server_with_xdist(pytester: pytest.Pytester) -> None:
    _write(pytester)
    result = pytester.runpytest("-n", "2")
    result.assert_outcomes(passed=5)


def test_pytest_flask_own_server_cannot_reach_the_stores(pytester: pytest.Pytester) -> None:
    # Without the plugin's replacement (pytest-flask's forked server, imported into the
    # conftest so it wins), the same tests fail: in session scope with a ScopeMismatch against
    # the function-scoped app, in function scope because the child reaches neither store.
    forked = CONFTEST + "\nfrom pytest_flask.fixtures import live_server\n"
    for scope, outcome in (("session", {"errors": 3}), ("function", {"failed": 3})):
        _write(pytester, f"live_server_scope = {scope}")
        pytester.makeconftest(forked)
        result = pytester.runpytest("-p", "no:randomly", "-k", "sees_the_tests")
        result.assert_outcomes(**outcome)
