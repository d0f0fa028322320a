"""The run's invalidation map: the tests' maps merged (across xdist workers too) and rendered.

Works on the JSON-able per-test maps of ``map_analysis.analyse``, as workers send them. A cell
of the merged map takes the worst state any test saw (missing, then exempt, then invalidated),
with how many tests saw each state and the evidence of the first few.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

MISSING, INVALIDATED, EXEMPT = "missing", "invalidated", "exempt"
STATES = (MISSING, EXEMPT, INVALIDATED)
"""Cell states, the one that wins a merge first."""

EVIDENCE_KEPT = 5
KEYS_KEPT = 10


def merge_maps(maps: Iterable[tuple[str, Mapping[str, Any]]]) -> dict[str, Any]:
    """``(nodeid, test map)`` pairs into the run's map (empty when no test recorded one)."""
    sites: dict[str, dict[str, Any]] = {}
    sources: dict[str, set[str]] = {}
    cells: dict[tuple[str, str], dict[str, Any]] = {}
    early: dict[tuple[str, str], dict[str, Any]] = {}
    exemptions: dict[str, bool] = {}
    for nodeid, test_map in maps:
        for label, site in test_map.get("sites", {}).items():
            merged = sites.setdefault(label, {"kind": site["kind"], "tables": []})
            merged["tables"] = sorted(set(merged["tables"]) | set(site["tables"]))
        for pattern, tables in test_map.get("sources", {}).items():
            sources.setdefault(pattern, set()).update(tables)
        for cell in test_map.get("cells", ()):
            _merge_cell(cells, cell, nodeid)
        for finding in test_map.get("early", ()):
            kept = early.setdefault((finding["site"], finding["key"]), {**finding, "tests": []})
            kept["tests"].append(nodeid)
        for text, used in test_map.get("exemptions", {}).items():
            exemptions[text] = exemptions.get(text, False) or bool(used)
    if not sites and not cells:
        return {}
    patterns = sorted({c["pattern"] for c in cells.values()} | set(sources))
    ordered = sorted(cells.values(), key=lambda c: (c["site"], c["pattern"]))
    counts = {
        state: sum(1 for c in ordered if c["state"] == state and c["kind"] == "request")
        for state in STATES
    }
    counts["missing_outside_requests"] = sum(
        1 for c in ordered if c["state"] == MISSING and c["kind"] != "request"
    )
    return {
        "summary": {
            "sites": len(sites),
            "patterns": len(patterns),
            **counts,
            "invalidated_before_commit": len(early),
        },
        "sites": dict(sorted(sites.items())),
        "patterns": patterns,
        "sources": {p: sorted(t) for p, t in sorted(sources.items())},
        "cells": ordered,
        "early": sorted(early.values(), key=lambda e: (e["site"], e["key"])),
        "exemptions": dict(sorted(exemptions.items())),
    }


def _merge_cell(
    cells: dict[tuple[str, str], dict[str, Any]], cell: Mapping[str, Any], nodeid: str
) -> None:
    key = (cell["site"], cell["pattern"])
    merged = cells.get(key)
    if merged is None:
        merged = cells[key] = {
            "site": cell["site"],
            "pattern": cell["pattern"],
            "kind": cell["kind"],
            "state": cell["state"],
            "tests": {},
            "keys": [],
            "evidence": [],
        }
    state = cell["state"]
    if STATES.index(state) < STATES.index(merged["state"]):
        merged["state"] = state
    merged["tests"][state] = merged["tests"].get(state, 0) + 1
    for k in cell.get("keys", ()):
        if k not in merged["keys"] and len(merged["keys"]) < KEYS_KEPT:
            merged["keys"].append(k)
    if cell.get("exempt"):
        merged["exempt"] = cell["exempt"]
    evidence = merged["evidence"]
    entry = {"test": nodeid, "state": state, "text": cell.get("evidence", "")}
    # Evidence of a missing cell is kept first: it is what a reader clicks for.
    evidence.append(entry)
    evidence.sort(key=lambda e: STATES.index(e["state"]))
    del evidence[EVIDENCE_KEPT:]


_SHOWN = {"missing": "MISSING", "exempt": "exempt", "invalidated": "invalidated"}


def render_map_lines(run_map: Mapping[str, Any]) -> list[str]:
    """The terminal section: a matrix, then the evidence of every missing cell."""
    if not run_map:
        return []
    summary = run_map["summary"]
    lines = [
        f"write sites: {summary['sites']}, key patterns: {summary['patterns']}; cells "
        f"invalidated: {summary['invalidated']}, missing: {summary['missing']}, exempt: "
        f"{summary['exempt']}; invalidated before commit: {summary['invalidated_before_commit']}"
    ]
    if summary["missing_outside_requests"]:
        lines[0] += (
            f" (and {summary['missing_outside_requests']} missing outside requests: test code "
            "that changed rows behind the app; never a failure)"
        )
    patterns: list[str] = run_map["patterns"]
    states = {(c["site"], c["pattern"]): _SHOWN[c["state"]] for c in run_map["cells"]}
    rows = [("write site", *patterns)]
    for label in run_map["sites"]:
        rows.append((label, *(states.get((label, p), "-") for p in patterns)))
    if len(rows) > 1 and patterns:
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        lines += [
            "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
        ]
    for cell in run_map["cells"]:
        if cell["state"] == MISSING:
            first = next(e for e in cell["evidence"] if e["state"] == MISSING)
            lines.append(f"missing: {first['text']} [{first['test']}]")
    for finding in run_map["early"]:
        lines.append(f"invalidated before commit: {finding['evidence']} [{finding['tests'][0]}]")
    for text, used in run_map["exemptions"].items():
        lines.append(f"exemption: {text}" + ("" if used else ", matched nothing"))
    return lines
