"""Comparing a cached answer with a fresh one: volatile fields out, a readable diff."""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable, Sequence
from typing import Any

_PATH_PART = re.compile(r"\.([^.\[\]]+)|\[(\*|\d+)\]")


def _parse_path(path: str) -> tuple[str, ...] | None:
    """`$.items[*].updated_at` -> ("items", "*", "updated_at"); None for a bare field name."""
    if not path.startswith("$"):
        return None
    rest, parts = path[1:], []
    while rest:
        match = _PATH_PART.match(rest)
        if match is None:
            raise ValueError(f"cannot read the JSON path {path!r}: use $.field, [n] or [*]")
        parts.append(match.group(1) if match.group(1) is not None else match.group(2))
        rest = rest[match.end() :]
    return tuple(parts)


class IgnoreList:
    """Fields left out of comparisons: `$.a.b[*].c` paths, or bare names matched at any depth."""

    def __init__(self, entries: Iterable[str] = ()) -> None:
        self.names: set[str] = set()
        self.paths: list[tuple[str, ...]] = []
        for entry in entries:
            if not isinstance(entry, str) or not entry:
                raise TypeError(f"an ignore entry is a JSON path or field name, got {entry!r}")
            parsed = _parse_path(entry)
            if parsed is None:
                self.names.add(entry)
            else:
                self.paths.append(parsed)

    def __bool__(self) -> bool:
        return bool(self.names or self.paths)

    def scrub(self, value: Any) -> Any:
        if not self:
            return value
        return self._scrub(value, [(p, 0) for p in self.paths])

    def _scrub(self, value: Any, live: Sequence[tuple[tuple[str, ...], int]]) -> Any:
        def child(step: str) -> list[tuple[tuple[str, ...], int]]:
            return [(p, i + 1) for p, i in live if i < len(p) and p[i] in (step, "*")]

        def dropped(step: str) -> bool:
            return any(len(p) == depth for p, depth in child(step))

        if isinstance(value, dict):
            return {
                k: self._scrub(v, child(str(k)))
                for k, v in value.items()
                if k not in self.names and not dropped(str(k))
            }
        if isinstance(value, list):
            return [
                self._scrub(v, child(str(i))) for i, v in enumerate(value) if not dropped(str(i))
            ]
        return value


def comparable(value: Any) -> Any:
    """What is compared of a read's result: a response's status and JSON (or text) body."""
    status = getattr(value, "status_code", None)
    if status is not None and hasattr(value, "get_data"):
        body = value.get_json(silent=True) if hasattr(value, "get_json") else None
        if body is None:
            body = value.get_data(as_text=True)
        return {"status": status, "body": body}
    if status is not None and hasattr(value, "json") and hasattr(value, "text"):
        # An httpx response (Starlette's TestClient): JSON when the body parses as such.
        try:
            return {"status": status, "body": value.json()}
        except ValueError:
            return {"status": status, "body": value.text}
    return value


def pretty(value: Any) -> str:
    try:
        return json.dumps(value, indent=2, sort_keys=True, default=repr)
    except (TypeError, ValueError):
        return repr(value)


def diff(cached: Any, fresh: Any) -> str:
    """A unified diff of the pretty JSON of both values."""
    lines = difflib.unified_diff(
        pretty(cached).splitlines(),
        pretty(fresh).splitlines(),
        fromfile="cached",
        tofile="fresh",
        lineterm="",
    )
    return "\n".join(lines)
