"""ASGI applications (FastAPI, Starlette): their test client, and the oracle around it.

Starlette's ``TestClient`` (an ``httpx.Client``) runs the app on an event loop in a thread of
its own. Opened as a context manager it keeps that loop for the whole test and runs the app's
lifespan, as a server would. The oracle is the Flask one with httpx's ways of naming a
request's query and of keeping cookies.
"""

from __future__ import annotations

import inspect
from typing import Any
from urllib.parse import urlencode

from .oracle import OracleClient


def is_asgi_app(app: object) -> bool:
    """Whether ``app`` is an ASGI application: an ``async`` callable of (scope, receive, send)."""
    if inspect.iscoroutinefunction(app):
        return True
    # The class's __call__: an instance's bound method hides the coroutine function in 3.11.
    return callable(app) and inspect.iscoroutinefunction(type(app).__call__)


def test_client_class() -> Any:
    """Starlette's ``TestClient``: open it as a context manager to keep one loop for a test."""
    try:
        from starlette.testclient import TestClient
    except ImportError as error:
        raise RuntimeError(
            f"cachesync_client needs Starlette's TestClient for an ASGI app ({error}); "
            "install pytest-cachesync[async]."
        ) from None
    return TestClient


class AsgiOracleClient(OracleClient):
    """The oracle around Starlette's ``TestClient``: every GET replayed with the cache bypassed."""

    @staticmethod
    def _check_client(client: Any) -> None:
        if not callable(getattr(client, "get", None)) or not hasattr(client, "cookies"):
            raise TypeError(
                "the ASGI oracle wraps a Starlette TestClient (an httpx.Client), got "
                f"{type(client).__name__}"
            )

    def _cookies(self) -> Any:
        # A copy in the client's own class: httpx's or httpx2's, whichever Starlette uses.
        cookies = self.client.cookies
        return type(cookies)(cookies)

    def _set_cookies(self, saved: Any) -> None:
        if saved is not None:
            self.client.cookies = saved

    @staticmethod
    def _path(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
        path = str(args[0]) if args else str(kwargs.get("url", "/"))
        params = kwargs.get("params")
        if params:
            query = params if isinstance(params, str) else urlencode(params, doseq=True)
            path += ("&" if "?" in path else "?") + query
        return path
