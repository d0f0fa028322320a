"""Exemptions from the invalidation map's check in oracle mode: ``METHOD /rule -> key pattern``.

Kept apart from the map's analysis so that reading the settings imports nothing heavy.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase


@dataclass(frozen=True, slots=True)
class Exemption:
    """``SITE -> PATTERN``: globs on the write site's label and on the key pattern."""

    site: str
    pattern: str
    source: str

    @classmethod
    def parse(cls, text: str, source: str) -> Exemption:
        site, arrow, pattern = text.partition("->")
        site, pattern = " ".join(site.split()), pattern.strip()
        if not arrow or not site or not pattern or " " not in site:
            raise ValueError(
                f"invalidation exemption {text!r} is not 'METHOD /rule -> key pattern', "
                "e.g. 'POST /reservations -> users:*'"
            )
        return cls(site, pattern, source)

    def covers(self, site: str, pattern: str) -> bool:
        return fnmatchcase(site, self.site) and (
            pattern == self.pattern or fnmatchcase(pattern, self.pattern)
        )

    def render(self) -> str:
        return f"{self.site} -> {self.pattern} ({self.source})"


def parse_exemptions(entries: Iterable[str], source: str) -> tuple[Exemption, ...]:
    return tuple(Exemption.parse(entry, source) for entry in entries if entry.strip())
