"""Request-body parsing: a JSON object with known fields of the right types, or a 400."""

from __future__ import annotations

import re
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from typing import Any

from flask import request

from sample_app.errors import bad_request

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
EMAIL_PATTERN = _EMAIL


class Payload:
    """A JSON object body; accessors raise a 400 ``ApiError`` naming the bad field."""

    def __init__(
        self, data: dict[str, Any], *, required: Iterable[str] = (), optional: Iterable[str] = ()
    ) -> None:
        required_set, optional_set = set(required), set(optional)
        unknown = sorted(set(data) - required_set - optional_set)
        if unknown:
            raise bad_request("unknown fields", {"unknown": unknown})
        missing = sorted(f for f in required_set if data.get(f) is None)
        if missing:
            raise bad_request("missing fields", {"missing": missing})
        self.data = data

    def __contains__(self, name: str) -> bool:
        return name in self.data

    def string(
        self,
        name: str,
        *,
        min_len: int = 1,
        max_len: int = 255,
        pattern: re.Pattern[str] | None = None,
    ) -> str:
        value = self.data.get(name)
        if not isinstance(value, str):
            raise bad_request(f"'{name}' must be a string", {"field": name})
        value = value.strip()
        if not min_len <= len(value) <= max_len:
            raise bad_request(
                f"'{name}' must have {min_len} to {max_len} characters", {"field": name}
            )
        if pattern is not None and not pattern.match(value):
            raise bad_request(f"'{name}' has an invalid format", {"field": name})
        return value

    def optional_string(self, name: str, *, max_len: int = 255) -> str | None:
        if self.data.get(name) is None:
            return None
        return self.string(name, min_len=0, max_len=max_len) or None

    def integer(self, name: str, *, minimum: int, maximum: int) -> int:
        value = self.data.get(name)
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad_request(f"'{name}' must be an integer", {"field": name})
        if not minimum <= value <= maximum:
            raise bad_request(f"'{name}' must be between {minimum} and {maximum}", {"field": name})
        return value

    def cents(self, name: str, *, maximum_cents: int = 100_000_00) -> int:
        """A non-negative amount with at most two decimals (number or string), as cents."""
        value = self.data.get(name)
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise bad_request(f"'{name}' must be a number", {"field": name})
        try:
            amount = Decimal(str(value).strip())
        except InvalidOperation:
            raise bad_request(f"'{name}' must be a number", {"field": name}) from None
        if not amount.is_finite() or amount < 0 or amount != amount.quantize(Decimal("0.01")):
            raise bad_request(
                f"'{name}' must be a non-negative amount with at most 2 decimals", {"field": name}
            )
        cents = int(amount * 100)
        if cents > maximum_cents:
            raise bad_request(f"'{name}' is too large", {"field": name})
        return cents


def json_body(*, required: Iterable[str] = (), optional: Iterable[str] = ()) -> Payload:
    """The request's JSON object body checked against the allowed field names."""
    data = request.get_json(silent=True, force=True)
    if data is None:
        raise bad_request("request body must be valid JSON")
    if not isinstance(data, dict):
        raise bad_request("request body must be a JSON object")
    return Payload(data, required=required, optional=optional)
