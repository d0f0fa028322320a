"""The ``cachesync`` marker: per-test options of the plugin."""

from __future__ import annotations

import inspect
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

import pytest

from ._options import DB_RESET_CHOICES, DbReset

if TYPE_CHECKING:
    from .staleness.patterns import TtlPolicy

MARKER_NAME = "cachesync"


def _marker(
    *,
    reset: bool = True,
    db_reset: DbReset | None = None,
    oracle: bool | None = None,
    staleness: float | None = None,
    ttl_bounds: str | Mapping[str, float] | None = None,
    ignore: str | tuple[str, ...] = (),
    invalidation_exempt: str | tuple[str, ...] = (),
    strict: bool | None = None,  # the former name of oracle
) -> None:
    """The arguments ``@pytest.mark.cachesync(...)`` takes; marks are bound to it."""


_SIGNATURE = inspect.signature(_marker)
MARKER_SIGNATURE = (
    "cachesync(*, reset=True, db_reset=None, oracle=None, staleness=None, ttl_bounds=None, "
    "ignore=(), invalidation_exempt=())"
)
MARKER_HELP = (
    f"{MARKER_SIGNATURE}: per-test options of pytest-cachesync. reset=False: this test starts "
    "from what the previous test left instead of empty stores; db_reset='truncate'|'rollback': "
    "the SQL isolation strategy for this test; oracle=True|False: replay cachesync_client's GETs "
    "with the cache bypassed (overrides --cachesync-oracle); staleness=SECONDS: the allowed "
    "staleness of those reads; ttl_bounds='users:*=10' or {'users:*': 10}: TTL bounds checked "
    "at teardown; ignore=('$.generated_at',): volatile fields the replay does not compare; "
    "invalidation_exempt=('POST /reservations -> users:*',): write sites allowed to leave keys "
    "of a pattern cached (oracle mode fails on other missing invalidations)."
)
CLOCK_MARKER_NAME = "cachesync_clock"
CLOCK_MARKER_HELP = (
    "cachesync_clock(start_at=None, *, tick=False, engine=None): start the test's clock at an "
    "instant (datetime, date, ISO 8601 string or Unix timestamp; naive means UTC), ticking or "
    "frozen."
)


@dataclass(frozen=True)
class MarkerOptions:
    """Keyword arguments of the closest ``cachesync`` marker, validated."""

    reset: bool = True
    db_reset: DbReset | None = None
    oracle: bool | None = None
    staleness: float | None = None
    ttl_bounds: TtlPolicy | None = None
    ignore: tuple[str, ...] = ()
    invalidation_exempt: tuple[str, ...] = ()


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
    from .staleness.patterns import TtlPolicy

    if not isinstance(value, str | Mapping):
        _fail(node, f"cachesync(ttl_bounds=...) must be a string or a mapping, got {value!r}.")
    try:
        return TtlPolicy.parse(value)
    except ValueError as error:
        _fail(node, f"cachesync(ttl_bounds=...): {error}.")


def _ignore(node: pytest.Item, value: object) -> tuple[str, ...]:
    entries = (value,) if isinstance(value, str) else value
    if not isinstance(entries, list | tuple) or not all(isinstance(e, str) for e in entries):
        _fail(node, f"cachesync(ignore=...) must be a string or a list of strings, got {value!r}.")
    return tuple(entries)


def _exemptions(node: pytest.Item, value: object) -> tuple[str, ...]:
    entries = (value,) if isinstance(value, str) else value
    if not isinstance(entries, list | tuple) or not all(isinstance(e, str) for e in entries):
        _fail(
            node,
            f"cachesync(invalidation_exempt=...) must be a string or a list of strings, "
            f"got {value!r}.",
        )
    from .staleness.exemptions import parse_exemptions

    try:
        parse_exemptions(entries, "marker")
    except ValueError as error:
        _fail(node, f"cachesync(invalidation_exempt=...): {error}.")
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
    try:
        bound = _SIGNATURE.bind(*marker.args, **marker.kwargs)
    except TypeError as error:
        problem = str(error)
    else:
        problem = ""
    if problem:
        _fail(node, f"@pytest.mark.{MARKER_SIGNATURE}: {problem}.")
    bound.apply_defaults()
    kwargs: dict[str, Any] = bound.arguments
    reset, db_reset, oracle = kwargs["reset"], kwargs["db_reset"], kwargs["oracle"]
    if kwargs["strict"] is not None:
        import warnings

        warnings.warn(
            pytest.PytestDeprecationWarning(
                f"{node.nodeid}: @pytest.mark.cachesync(strict=...) is now oracle=..."
            ),
            stacklevel=1,
        )
        if oracle is None:
            oracle = kwargs["strict"]
    if not isinstance(reset, bool):
        _fail(node, "cachesync(reset=...) must be True or False.")
    if db_reset is not None and db_reset not in DB_RESET_CHOICES:
        _fail(
            node,
            f"cachesync(db_reset={db_reset!r}) must be one of "
            f"{', '.join(map(repr, DB_RESET_CHOICES))} or None.",
        )
    if oracle is not None and not isinstance(oracle, bool):
        _fail(node, "cachesync(oracle=...) must be True, False or None.")
    return MarkerOptions(
        reset=reset,
        db_reset=db_reset,
        oracle=oracle,
        staleness=_staleness(node, kwargs["staleness"]),
        ttl_bounds=_ttl_bounds(node, kwargs["ttl_bounds"]),
        ignore=_ignore(node, kwargs["ignore"]),
        invalidation_exempt=_exemptions(node, kwargs["invalidation_exempt"]),
    )
