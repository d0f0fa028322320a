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
    allow_connections: str | tuple[str, ...] = (),
    invalidation_exempt: str | tuple[str, ...] = (),
    strict: bool | None = None,  # the former name of oracle
) -> None:
    """The arguments ``@pytest.mark.cachesync(...)`` takes; marks are bound to it."""


_SIGNATURE = inspect.signature(_marker)
MARKER_SIGNATURE = (
    "cachesync(*, reset=True, db_reset=None, oracle=None, staleness=None, ttl_bounds=None, "
    "ignore=(), allow_connections=(), invalidation_exempt=())"
)
MARKER_HELP = (
    f"{MARKER_SIGNATURE}: per-test options of pytest-cachesync. reset=False: this test starts "
    "from what the previous test left instead of empty stores; db_reset='truncate'|'rollback': "
    "the SQL isolation strategy for this test; oracle=True|False: replay cachesync_client's GETs "
    "with the cache bypassed (overrides --cachesync-oracle); staleness=SECONDS: the allowed "
    "staleness of those reads; ttl_bounds='users:*=10' or {'users:*': 10}: TTL bounds checked "
    "at teardown; ignore=('$.generated_at',): volatile fields the replay does not compare; "
    "allow_connections=('redis://127.0.0.1:6420/*',): stores besides the test's that it may "
    "connect to (glob patterns of redis://HOST:PORT/DB or the database URL without password); "
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
    """Keyword arguments of the test's ``cachesync`` markers, validated.

    Merged key by key: each argument comes from the closest marker that names it, so a test's
    ``@pytest.mark.cachesync(ttl_bounds=...)`` keeps its module's ``oracle=False``.
    """

    reset: bool = True
    db_reset: DbReset | None = None
    oracle: bool | None = None
    staleness: float | None = None
    ttl_bounds: TtlPolicy | None = None
    ignore: tuple[str, ...] = ()
    allow_connections: tuple[str, ...] = ()
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
        problem = str(error)
    # Outside the except block: failing inside it would print the message twice, chained.
    _fail(node, f"cachesync(ttl_bounds=...): {problem}.")


def _strings(node: pytest.Item, value: object, name: str = "ignore") -> tuple[str, ...]:
    entries = (value,) if isinstance(value, str) else value
    if not isinstance(entries, list | tuple) or not all(isinstance(e, str) for e in entries):
        _fail(node, f"cachesync({name}=...) must be a string or a list of strings, got {value!r}.")
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
    options = _parse(node, (), merged_kwargs(node))
    node.stash[_OPTIONS_KEY] = (own, options)
    return options


def merged_kwargs(node: pytest.Item) -> dict[str, object]:
    """The arguments of every ``cachesync`` marker of ``node``, the closest one's first."""
    merged: dict[str, object] = {}
    for marker in node.iter_markers(MARKER_NAME):
        if marker.args:
            _parse(node, marker.args, marker.kwargs)  # fails, with the error of a Python call
        for name, value in marker.kwargs.items():
            merged.setdefault(name, value)
    return merged


def _parse(
    node: pytest.Item, args: tuple[object, ...], kwargs: Mapping[str, object]
) -> MarkerOptions:
    if not args and not kwargs:
        return MarkerOptions()
    try:
        bound = _SIGNATURE.bind(*args, **kwargs)
    except TypeError as error:
        problem = str(error)
    else:
        problem = ""
    if problem:
        _fail(node, f"@pytest.mark.{MARKER_SIGNATURE}: {problem}.")
    bound.apply_defaults()
    arguments: dict[str, Any] = bound.arguments
    reset, db_reset, oracle = arguments["reset"], arguments["db_reset"], arguments["oracle"]
    if arguments["strict"] is not None:
        import warnings

        warnings.warn(
            pytest.PytestDeprecationWarning(
                f"{node.nodeid}: @pytest.mark.cachesync(strict=...) is now oracle=..."
            ),
            stacklevel=1,
        )
        if oracle is None:
            oracle = arguments["strict"]
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
        staleness=_staleness(node, arguments["staleness"]),
        ttl_bounds=_ttl_bounds(node, arguments["ttl_bounds"]),
        ignore=_strings(node, arguments["ignore"]),
        allow_connections=_strings(node, arguments["allow_connections"], "allow_connections"),
        invalidation_exempt=_exemptions(node, arguments["invalidation_exempt"]),
    )
