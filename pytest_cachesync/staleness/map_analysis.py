"""The invalidation map of one test: write sites x key patterns, from a recorded timeline.

A cell is *missing* when the site committed a write to a table that a still-cached key of the
pattern was filled from and invalidated no key of the pattern, or, where the rows on both sides
are known and the same, not that key. It is *invalidated* when the site deleted (or refilled)
keys of the pattern, *exempt* when an exemption names it, and otherwise unrelated (not listed).
Separately, a key deleted while the same thread still held uncommitted writes that later commit
is an invalidation before COMMIT: a reader in between refills the cache with the old rows.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from .deps import REQUEST, Fill, Recording, Site, Write
from .exemptions import Exemption
from .map_report import EXEMPT, INVALIDATED, MISSING, STATES
from .sql_rows import describe_rows, write_overlap


def _tables(writes: Iterable[Write]) -> list[str]:
    return list(dict.fromkeys(w.table for w in writes))


@dataclass
class _Index:
    """The recording's fills and deletions by key, in time order, for lookups by bisection."""

    fills: dict[str, list[Fill]]
    fill_seqs: dict[str, list[int]]
    deleted: dict[str, list[int]]
    keys_of_table: dict[str, set[str]]

    @classmethod
    def of(cls, recording: Recording) -> _Index:
        index = cls({}, {}, {}, {})
        for fill in recording.fills:
            index.fills.setdefault(fill.key, []).append(fill)
            index.fill_seqs.setdefault(fill.key, []).append(fill.seq)
            for table in fill.reads:
                index.keys_of_table.setdefault(table, set()).add(fill.key)
        for invalidation in recording.invalidations:
            index.deleted.setdefault(invalidation.key, []).append(invalidation.seq)
        return index

    def cached_at(self, key: str, seq: int) -> Fill | None:
        """The fill whose value ``key`` held at ``seq``, if it was not deleted since."""
        position = bisect_left(self.fill_seqs[key], seq)
        if position == 0:
            return None
        fill = self.fills[key][position - 1]
        deletions = self.deleted.get(key, [])
        after_fill = bisect_right(deletions, fill.seq)
        if after_fill < len(deletions) and deletions[after_fill] < seq:
            return None
        return fill


def _affected(index: _Index, writes: list[Write]) -> dict[str, tuple[str, Fill, Write]]:
    """Keys whose cached value a committed write may have made stale: key -> (how, fill, write)."""
    found: dict[str, tuple[str, Fill, Write]] = {}
    for write in writes:
        commit = write.committed_at
        assert commit is not None
        for key in index.keys_of_table.get(write.table, ()):
            fill = index.cached_at(key, commit)
            if fill is None or write.table not in fill.reads:
                continue
            how = write_overlap(fill.reads[write.table], write.rows)
            if how == "disjoint":
                continue
            if key not in found or (how == "clear" and found[key][0] != "clear"):
                found[key] = (how, fill, write)
    return found


def _filled_from(fill: Fill, table: str) -> str:
    rows = describe_rows(fill.reads[table])
    return f"{table} (rows {rows})" if rows else table


def _evidence(
    site: Site, tables: list[str], keys: list[str], affected: dict[str, tuple[str, Fill, Write]]
) -> str:
    how, _, write = affected[keys[0]]
    listed = ", ".join(
        f"{k} from {_filled_from(affected[k][1], affected[k][2].table)}" for k in keys
    )
    verb = "was" if len(keys) == 1 else "were"
    text = (
        f"{site.label} wrote {', '.join(tables)}; "
        f"{keys[0] if len(keys) == 1 else 'keys'} {verb} filled from "
    )
    if len(keys) == 1:
        text += f"{_filled_from(affected[keys[0]][1], write.table)} and was not invalidated"
    else:
        text += f"what it wrote and not invalidated: {listed}"
    if how != "clear":
        rows = describe_rows(write.rows.pinned)
        which = f"its rows ({rows}) do not say" if rows else "its SQL does not say"
        text += f" ({which} which cached rows changed)"
    return text


def _site_cells(recording: Recording, index: _Index, site: Site) -> list[dict[str, Any]]:
    committed = [w for w in recording.writes if w.site is site and w.committed_at is not None]
    handled: dict[str, set[str]] = {}
    for invalidation in recording.invalidations:
        if invalidation.site is site:
            handled.setdefault(invalidation.pattern, set()).add(invalidation.key)
    for fill in recording.fills:
        if fill.site is site and site.kind == REQUEST and committed:
            handled.setdefault(fill.pattern, set()).add(fill.key)  # written through
    affected = _affected(index, committed)
    by_pattern: dict[str, list[str]] = {}
    for key, (_, fill, _) in affected.items():
        by_pattern.setdefault(fill.pattern, []).append(key)
    tables = _tables(committed)
    cells: list[dict[str, Any]] = []
    for pattern in sorted(set(by_pattern) | set(handled)):
        keys = sorted(by_pattern.get(pattern, []))
        done = handled.get(pattern, set())
        clear = [k for k in keys if affected[k][0] == "clear"]
        missing = (clear or keys) if not done else [k for k in clear if k not in done]
        cell: dict[str, Any] = {"site": site.label, "pattern": pattern, "kind": site.kind}
        if missing:
            cell |= {
                "state": MISSING,
                "keys": missing,
                "evidence": _evidence(site, tables, missing, affected),
            }
        else:
            shown = sorted(done)
            cell |= {
                "state": INVALIDATED,
                "keys": shown,
                "evidence": f"{site.label} wrote {', '.join(tables) or 'nothing'}; "
                f"invalidated {', '.join(shown[:5])}" + (" ..." if len(shown) > 5 else ""),
            }
        cells.append(cell)
    return cells


def _early(recording: Recording) -> list[dict[str, Any]]:
    sources: dict[str, set[str]] = {}
    for fill in recording.fills:
        sources.setdefault(fill.pattern, set()).update(fill.reads)
    found: list[dict[str, Any]] = []
    seen: set[tuple[int, str]] = set()
    for invalidation in recording.invalidations:
        site = invalidation.site
        committed = [w for w in invalidation.pending if w.committed_at is not None]
        if site is None or not committed or (id(site), invalidation.key) in seen:
            continue
        tables = _tables(committed)
        known = sources.get(invalidation.pattern)
        if known and not known & set(tables):
            continue  # the key's fills never read what was written
        seen.add((id(site), invalidation.key))
        found.append(
            {
                "site": site.label,
                "kind": site.kind,
                "pattern": invalidation.pattern,
                "key": invalidation.key,
                "tables": tables,
                "evidence": f"{site.label} invalidated {invalidation.key} before COMMIT of "
                f"the write to {', '.join(tables)}: a read in between refills it with the "
                "old rows",
            }
        )
    return found


def analyse(recording: Recording, exemptions: Sequence[Exemption] = ()) -> dict[str, Any]:
    """The map of one test as JSON-able data (sites, cells, early invalidations, sources)."""
    # Only sites that committed a write: a GET that releases its lease, or an admin action
    # that only empties the cache, deletes keys but changes nothing the cache was filled from.
    sites: dict[int, Site] = {}
    for write in recording.writes:
        if write.committed_at is not None:
            sites.setdefault(id(write.site), write.site)
    cells: dict[tuple[str, str], dict[str, Any]] = {}
    tables: dict[str, set[str]] = {}
    kinds: dict[str, str] = {}
    index = _Index.of(recording)
    for site in sites.values():
        kinds[site.label] = site.kind
        tables.setdefault(site.label, set()).update(
            w.table for w in recording.writes if w.site is site and w.committed_at is not None
        )
        for cell in _site_cells(recording, index, site):
            key = (cell["site"], cell["pattern"])
            kept = cells.get(key)
            if kept is None or STATES.index(cell["state"]) < STATES.index(kept["state"]):
                cells[key] = cell
    early = _early(recording)
    used: set[str] = set()
    for finding in (*cells.values(), *early):
        exemption = next(
            (e for e in exemptions if e.covers(finding["site"], finding["pattern"])), None
        )
        if exemption is not None and finding.get("state", MISSING) == MISSING:
            finding["exempt"] = exemption.render()
            used.add(exemption.render())
            if "state" in finding:
                finding["state"] = EXEMPT
    sources: dict[str, set[str]] = {}
    for fill in recording.fills:
        sources.setdefault(fill.pattern, set()).update(fill.reads)
    return {
        "sites": {
            label: {"kind": kinds[label], "tables": sorted(t)}
            for label, t in sorted(tables.items())
        },
        "sources": {pattern: sorted(t) for pattern, t in sorted(sources.items()) if t},
        "cells": sorted(cells.values(), key=lambda c: (c["site"], c["pattern"])),
        "early": early,
        "exemptions": {e.render(): e.render() in used for e in exemptions},
    }


def findings(test_map: dict[str, Any]) -> list[str]:
    """What fails a test in oracle mode: missing invalidations and early ones, by requests."""
    lines = [
        f"missing invalidation: {cell['evidence']} "
        f"(pattern {cell['pattern']}; keys {', '.join(cell['keys'])})"
        for cell in test_map.get("cells", ())
        if cell["state"] == MISSING and cell["kind"] == REQUEST
    ]
    lines += [
        f"invalidated before commit: {early['evidence']}"
        for early in test_map.get("early", ())
        if early["kind"] == REQUEST and "exempt" not in early
    ]
    return lines
