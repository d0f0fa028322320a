"""Request-body parsing: a JSON object with known fields of the right types, or a 4xx.

Bodies are bounded before they are parsed: ``MAX_CONTENT_LENGTH`` bytes (413 above it) and
``MAX_JSON_DEPTH`` levels of nesting (400), so no body can exhaust memory or the stack.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from typing import Any

from flask import Flask, current_app, request
from werkzeug.exceptions import RequestEntityTooLarge

from sample_app.errors import bad_request

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
EMAIL_PATTERN = _EMAIL
MAX_JSON_DEPTH = 32
# NUL ends strings in C and PostgreSQL refuses it; a lone surrogate cannot be encoded as
# UTF-8 at all. Neither is text a person typed.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_CENT = Decimal("0.01")


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
        if _UNSTORABLE.search(value):
            raise bad_request(
                f"'{name}' contains a NUL byte or an unpaired surrogate", {"field": name}
            )
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
        if not amount.is_finite() or amount < 0:
            raise bad_request(
                f"'{name}' must be a non-negative amount with at most 2 decimals", {"field": name}
            )
        # The range is checked first, without arithmetic: quantize() and even ``* 100`` raise
        # on numbers as large as 1e30 or 1E+999999.
        if amount > Decimal(maximum_cents).scaleb(-2):
            raise bad_request(
                f"'{name}' must be at most {Decimal(maximum_cents) / 100}", {"field": name}
            )
        if amount != amount.quantize(_CENT):
            raise bad_request(
                f"'{name}' must be a non-negative amount with at most 2 decimals", {"field": name}
            )
        return int(amount * 100)


def _nesting_depth(text: str) -> int:
    """How deeply arrays and objects nest in ``text`` (brackets inside strings not counted)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def parse_json(raw: bytes) -> Any:
    """``raw`` as JSON, or a 400 ``ApiError``; nesting beyond ``MAX_JSON_DEPTH`` is refused
    before parsing, as the parser would recurse once per level."""
    try:
        text = raw.decode(json.detect_encoding(raw))
    except UnicodeDecodeError:
        raise bad_request("request body must be valid JSON") from None
    if _nesting_depth(text) > MAX_JSON_DEPTH:
        raise bad_request(f"JSON nests deeper than {MAX_JSON_DEPTH} levels")
    try:
        return json.loads(text)
    except ValueError:  # also the integers of more digits than Python converts
        raise bad_request("request body must be valid JSON") from None


def json_body(*, required: Iterable[str] = (), optional: Iterable[str] = ()) -> Payload:
    """The request's JSON object body checked against the allowed field names."""
    raw = request.get_data(cache=True)
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    if request.content_length is None and len(raw) >= limit:
        # werkzeug cuts a streamed (chunked) body at the limit without a word: what was read
        # may be a valid prefix, never the whole body.
        raise _too_large(limit)
    data = parse_json(raw)
    if not isinstance(data, dict):
        raise bad_request("request body must be a JSON object")
    return Payload(data, required=required, optional=optional)


def refuse_oversized_body() -> None:
    """413 for a declared body over ``MAX_CONTENT_LENGTH``, on every route.

    Werkzeug only checks when a view reads the body; refusing early answers the same on
    routes that never read it.
    """
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    if request.content_length is not None and request.content_length > limit:
        raise _too_large(limit)


def _too_large(limit: int) -> RequestEntityTooLarge:
    return RequestEntityTooLarge(f"request bodies are limited to {limit} bytes")


def init_app(app: Flask) -> None:
    app.before_request(refuse_oversized_body)
