"""URL converters: ids the database can hold, so out-of-range ids are a plain 404."""

from __future__ import annotations

from typing import Any

from werkzeug.routing import IntegerConverter, Map

MAX_ID = 2**31 - 1  # INTEGER primary keys on PostgreSQL; SQLite rejects > 2**63 - 1 outright


class IdConverter(IntegerConverter):
    """``<id:name>``: a positive integer up to ``MAX_ID``; anything else does not match.

    ASCII digits only: ``\\d`` and ``int()`` also take other scripts' digits, so a path of
    fullwidth digits (U+FF10..) would name lot 1 under a second URL.
    """

    regex = r"[0-9]+"

    def __init__(self, url_map: Map, *args: Any, **kwargs: Any) -> None:
        super().__init__(url_map, min=1, max=MAX_ID)
