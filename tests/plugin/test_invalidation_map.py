"""The invalidation map on an app written elsewhere: missing invalidations no test reads back."""

from __future__ import annotations

import json

import pytest

from .conftest import Backend
from .foreign_app import shop

__all__ = ["shop"]

DELETE_ONLY = """
def test_delete_user(client):
    client.get("/lots/3")
    client.get("/users/2")
    assert client.delete("/users/2").status_code == 200
"""


@pytest.mark.usefixtures("shop")
@pytest.mark.parametrize("reset", ["rollback", "truncate"])
def test_strict_fails_a_delete_that_forgets_the_lot(
    pytester: pytest.Pytester, backend: Backend, reset: str
) -> None:
    pytester.makepyfile(test_delete=DELETE_ONLY)
    result = pytester.runpytest("--cachesync-strict", f"--cachesync-db-reset={reset}")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*missing invalidation: DELETE /users/<user_id> wrote spots, members; parking_lot:3 was "
            "filled from spots (rows free=1, lot_id=3) and was not invalidated "
            "(pattern parking_lot:*; keys parking_lot:3)",
        ]
    )
    assert "parking_lot:4" not in result.stdout.str()
