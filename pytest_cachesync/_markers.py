"""The ``cachesync`` marker: per-test options of the plugin."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, NoReturn

import pytest

from ._options import DB_RESET_CHOICES, DbReset

if TYPE_CHECKING:
    from .staleness.checks import TtlPolicy

MARKER_NAME = "cachesync"
MARKER_SIGNATURE = (
    "cachesync(*, reset=True, db_reset=None, strict=None, staleness=None, ttl_bounds=None, "
    "ignore=(), invalidation_exempt=())"
)
MARKER_HELP = (
    f"{MARKER_SIGNATURE}: per-test options of pytest-cachesync. reset=False: this test starts "
    "from what the previous test left instead of empty stores; db_reset='truncate'|'rollback': "
    "the SQL isolation strategy for this test; strict=True|False: replay cachesync_client's GETs "
    "with the cache bypassed (overrides --cachesync-strict); staleness=SECONDS: the allowed "
    "staleness of those reads; ttl_bounds='users:*=10' or {'users:*': 10}: TTL bounds checked "
    "at teardown; ignore=('$.generated_at',): volatile fields the replay does not compare; "
    "invalidation_exempt=('POST /reservations -> users:*',): write sites allowed to leave keys "
    "of a pattern cached (strict mode fails on other missing invalidations)."
)


@dataclass(frozen=True)
class MarkerOptions:
    """Keyword arguments of the closest ``cachesync`` marker, validated."""

    reset: bool = True
    db_reset: DbReset | None = None
    strict: bool | None = None
    staleness: float | None = None
    ttl_bounds: TtlPolicy | None = None
    ignore: tuple[str, ...] = ()
    invalidation_exempt: tuple[str, ...] = ()


_KNOWN = frozenset(MarkerOptions.__dataclass_fields__)


def _fail(node: pytest.Item, message: str) -> NoReturn:
    pytest.fail(f"{node.nodeid}: {message}", pytrace=False)


def _staleness(node: pytest.Item, value: object) -> float | None:
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value < 0
    ):
        _fail(node, f"cachesync(staleness={value!r}) must be a non-negative number of seconds.")
    return float(value)


def _ttl_bounds(node: pytest.Item, value: object) -> TtlPolicy | None:
    if value is None:
        return None
    from .staleness.checks import TtlPolicy

    if not isinstance(value, str | Mapping):
        _fail(node, f"cachesync(ttl_bounds=...) must be a string or a mapping, got {value!r}.")
    try:
        return TtlPolicy.parse(value)
    except ValueError as error:
        _fail(node, f"cachesync(ttl_bounds=...): {error}.")


def _exemptions(node: pytest.Item, value: object) -> tuple[str, ...]:
    entries = (value,) if isinstance(value, str) else value
    if not isinstance(entries, list | tuple) or not all(isinstance(e, str) for e in entries):
        _fail(
            node,
            f"cachesync(invalidation_exempt=...) must be a string or a list of strings, "
            f"got {value!r}.",
        )
    from .staleness.map_analysis import parse_exemptions

    try:
        parse_exemptions(entries, "marker")
    except ValueError as error:
        _fail(node, f"cachesync(invalidation_exempt=...): {error}.")
    return tuple(entries)


def _ignore(node: pytest.Item, value: object) -> tuple[str, ...]:
    entries = (value,) if isinstance(value, str) else value
    if not isinstance(entries, list | tuple) or not all(isinstance(e, str) for e in entries):
        _fail(node, f"cachesync(ignore=...) must be a string or a list of strings, got {value!r}.")
    return tuple(entries)


_OPTIONS_KEY = pytest.StashKey[tuple[int, MarkerOptions]]()


def marker_options(node: pytest.Item) -> MarkerOptions:
    """The test's validated marker options, parsed once (several fixtures and hooks ask).

    Parsed again when the test's own markers change: ``request.applymarker`` during the test
    adds one. Markers of the module or class are set at collection, before any test runs.
    Looking the marker up costs more than the rest, so the count of the test's own markers,
    not the marker itself, says whether the cached options still hold.
    """
    own = len(node.own_markers)
    cached = node.stash.get(_OPTIONS_KEY, None)
    if cached is not None and cached[0] == own:
        return cached[1]
    options = _parse(node, node.get_closest_marker(MARKER_NAME))
    node.stash[_OPTIONS_KEY] = (own, options)
    return options


def _parse(node: pytest.Item, marker: pytest.Mark | None) -> MarkerOptions:
    if marker is None:
        return MarkerOptions()
    if marker.args:
        _fail(
            node,
            f"@pytest.mark.{MARKER_SIGNATURE} takes keyword arguments only, got {marker.args!r}.",
        )
    unknown = sorted(set(marker.kwargs) - _KNOWN)
    if unknown:
        _fail(node, f"unknown argument(s) {', '.join(unknown)} of @pytest.mark.{MARKER_SIGNATURE}.")
    kwargs = marker.kwargs
    reset = kwargs.get("reset", True)
    db_reset = kwargs.get("db_reset")
    strict = kwargs.get("strict")
    if not isinstance(reset, bool):
        _fail(node, "cachesync(reset=...) must be True or False.")
    if db_reset is not None and db_reset not in DB_RESET_CHOICES:
        _fail(
            node,
            f"cachesync(db_reset={db_reset!r}) must be one of "
            f"{', '.join(map(repr, DB_RESET_CHOICES))} or None.",
        )
    if strict is not None and not isinstance(strict, bool):
        _fail(node, "cachesync(strict=...) must be True, False or None.")
    return MarkerOptions(
        reset=reset,
        db_reset=db_reset,
        strict=strict,
        staleness=_staleness(node, kwargs.get("staleness")),
        ttl_bounds=_ttl_bounds(node, kwargs.get("ttl_bounds")),
        ignore=_ignore(node, kwargs.get("ignore", ())),
        invalidation_exempt=_exemptions(node, kwargs.get("invalidation_exempt", ())),
    )
