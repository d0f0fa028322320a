"""The ``cachesync`` marker: per-test options of the plugin."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from .settings import DB_RESET_CHOICES, DbReset

MARKER_NAME = "cachesync"
MARKER_SIGNATURE = "cachesync(*, reset=True, db_reset=None)"
MARKER_HELP = (
    f"{MARKER_SIGNATURE}: per-test options of pytest-cachesync. reset=False: this test starts "
    "from what the previous test left instead of empty stores; db_reset='truncate'|'rollback': "
    "the SQL isolation strategy for this test."
)


@dataclass(frozen=True)
class MarkerOptions:
    """Keyword arguments of the closest ``cachesync`` marker, validated."""

    reset: bool = True
    db_reset: DbReset | None = None


_KNOWN = frozenset(MarkerOptions.__dataclass_fields__)


def marker_options(node: pytest.Item) -> MarkerOptions:
    marker = node.get_closest_marker(MARKER_NAME)
    if marker is None:
        return MarkerOptions()
    if marker.args:
        pytest.fail(
            f"{node.nodeid}: @pytest.mark.{MARKER_SIGNATURE} takes keyword arguments only, "
            f"got {marker.args!r}.",
            pytrace=False,
        )
    unknown = sorted(set(marker.kwargs) - _KNOWN)
    if unknown:
        pytest.fail(
            f"{node.nodeid}: unknown argument(s) {', '.join(unknown)} of "
            f"@pytest.mark.{MARKER_SIGNATURE}.",
            pytrace=False,
        )
    reset = marker.kwargs.get("reset", True)
    db_reset = marker.kwargs.get("db_reset")
    if not isinstance(reset, bool):
        pytest.fail(f"{node.nodeid}: cachesync(reset=...) must be True or False.", pytrace=False)
    if db_reset is not None and db_reset not in DB_RESET_CHOICES:
        pytest.fail(
            f"{node.nodeid}: cachesync(db_reset={db_reset!r}) must be one of "
            f"{', '.join(map(repr, DB_RESET_CHOICES))} or None.",
            pytrace=False,
        )
    return MarkerOptions(reset=reset, db_reset=db_reset)
