"""Figures measured by the reliability tests, kept in ``artifacts/reliability.json``.

``python -m tests.reliability.figures`` prints the figures of the last run.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
FIGURES_FILE = ARTIFACTS / "reliability.json"


class Figures:
    """Named groups of figures; groups recorded in this run replace those of earlier runs."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.groups: dict[str, dict[str, Any]] = {}

    def record(self, group: str, **values: Any) -> None:
        with self._lock:
            self.groups.setdefault(group, {}).update(values)

    def add(self, group: str, **counts: int) -> None:
        """Add ``counts`` to the group's running totals (for figures summed over tests)."""
        with self._lock:
            values = self.groups.setdefault(group, {})
            for name, count in counts.items():
                values[name] = values.get(name, 0) + count

    def save(self, path: Path = FIGURES_FILE) -> None:
        if not self.groups:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        merged = load(path)
        merged.update(self.groups)
        temporary = path.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(json.dumps(merged, indent=2, sort_keys=True) + "\n")
        temporary.replace(path)


def load(path: Path = FIGURES_FILE) -> dict[str, dict[str, Any]]:
    if not path.exists():
        return {}
    data = json.loads(path.read_text())
    return data if isinstance(data, dict) else {}


def render(groups: dict[str, dict[str, Any]]) -> list[str]:
    lines: list[str] = []
    for group in sorted(groups):
        values = groups[group]
        lines.append(f"{group}:")
        lines.extend(f"  {name} = {values[name]}" for name in sorted(values))
    return lines


def main() -> int:
    groups = load()
    if not groups:
        print(f"no figures yet in {FIGURES_FILE}; run: python -m pytest tests/reliability")
        return 1
    print("\n".join(render(groups)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
