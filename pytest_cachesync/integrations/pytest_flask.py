"""pytest-flask's ``live_server`` on the test's stores.

pytest-flask serves the app from a forked process (multiprocessing, pytest-flask 1.3). A
child process cannot reach what lives in the test process: the embedded fakeredis server,
the transaction the rollback strategy keeps open, the clients the plugin routes for each test
after the fork. The plugin replaces the fixture with one that serves from a thread of the
test process instead, so every request runs on the test's own Redis and database, whatever
was routed for that test, and pytest-flask's ``client`` and the plugin's
``cachesync_client`` stay usable side by side.

``live_server`` is function-scoped and serves the running test's ``app`` (which may depend on
``cachesync``). The listening socket follows pytest-flask's ``live_server_scope``: with
``session`` (its default) one server per session and worker, with ``function`` one per test.
Registered only when pytest-flask is installed and enabled; nothing here is imported before.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class ThreadLiveServer:
    """A WSGI server on a thread of the test process, serving whichever app is current.

    Requests are handled one at a time on the server's thread: the test's SQL connection is
    not made for concurrent use, and the test waits for each answer anyway.
    """

    def __init__(self, host: str, port: int, wait: float) -> None:
        self.host = host
        self.port = port or _free_port(host)
        self.wait = wait
        self.app: Any = None
        self._server: Any = None
        self._thread: threading.Thread | None = None

    def _dispatch(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if self.app is None:
            start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
            return [b"live_server: no test is running"]
        return self.app(environ, start_response)

    def start(self) -> None:
        """Listen and serve (idempotent: ``--no-start-live-server`` leaves it to the test)."""
        if self._thread is not None:
            return
        from werkzeug.serving import make_server

        try:
            self._server = make_server(self.host, self.port, self._dispatch, threaded=False)
        except OSError as error:
            pytest.fail(f"live_server: cannot listen on {self.host}:{self.port}: {error}")
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"cachesync-live-server-{self.port}",
            daemon=True,
        )
        self._thread.start()

    @property
    def started(self) -> bool:
        return self._thread is not None

    def url(self, url: str = "") -> str:
        return f"http://{self.host}:{self.port}{url}"

    def stop(self) -> None:
        if self._server is None or self._thread is None:
            return
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(self.wait)
        self._server = self._thread = None

    def __repr__(self) -> str:
        return f"<LiveServer listening at {self.url()} (thread of the test process)>"


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


def _scope(fixture_name: str, config: pytest.Config) -> str:
    scope = str(config.getini("live_server_scope") or "session")
    return "function" if scope == "function" else "session"


@pytest.fixture(scope=_scope)  # type: ignore[arg-type]
def _cachesync_live_server(pytestconfig: pytest.Config) -> Iterator[ThreadLiveServer]:
    server = ThreadLiveServer(
        pytestconfig.getoption("live_server_host"),
        int(pytestconfig.getoption("live_server_port")),
        float(pytestconfig.getoption("live_server_wait")),
    )
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def live_server(
    request: pytest.FixtureRequest, app: Any, _cachesync_live_server: ThreadLiveServer
) -> Iterator[ThreadLiveServer]:
    """pytest-flask's ``live_server``, served from a thread on the test's stores.

    ``live_server.url("/path")`` and ``url_for(..., _external=True)`` point at it; the app is
    the test's ``app`` fixture, so its routed Redis clients and its bind are the test's.
    """
    server = _cachesync_live_server
    wanted = app.config.get("LIVESERVER_PORT")
    if wanted and int(wanted) != server.port and server.started:
        pytest.fail(
            f"live_server: the app asks for port {wanted} (LIVESERVER_PORT) but the "
            f"session's server listens on {server.port}; use --live-server-port={wanted} or "
            "live_server_scope = function."
        )
    if wanted:
        server.port = int(wanted)
    original_server_name = app.config["SERVER_NAME"]
    # As pytest-flask does: url_for(..., _external=True) then names the live server.
    host = (original_server_name or "localhost.localdomain").split(":", 1)[0]
    app.config["SERVER_NAME"] = f"{host}:{server.port}"
    server.app = app
    if request.config.getoption("start_live_server"):
        server.start()
    try:
        yield server
    finally:
        server.app = None
        app.config["SERVER_NAME"] = original_server_name
