"""``--cachesync-map PATH.html``: the run's invalidation map as one self-contained page.

A matrix of write sites (rows) x key patterns (columns), one colour per state; hovering a cell
shows its first piece of evidence, clicking it lists all of it with the tests, the keys, the
tables the site wrote and the tables the pattern's keys were filled from. No external file,
font or script: the page opens from a CI artifact as it is.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from html import escape
from pathlib import Path
from typing import Any

_STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #1d2330; }
h1 { font-size: 20px; margin: 0 0 4px; }
#summary { color: #4a5468; margin-bottom: 16px; }
table.map { border-collapse: collapse; }
table.map th, table.map td { border: 1px solid #d5dae3; padding: 6px 10px; }
table.map thead th { background: #f3f5f9; font-weight: 600; }
table.map tbody th { text-align: left; font: 13px ui-monospace, monospace; background: #f8f9fb; }
td.cell { text-align: center; cursor: pointer; min-width: 96px; font-size: 12px; }
td.cell:hover, td.cell.selected { outline: 3px solid #1d2330; outline-offset: -3px; }
.missing { background: #e5484d; color: #fff; font-weight: 700; }
.invalidated { background: #46a758; color: #fff; }
.exempt { background: #f5d90a; color: #1d2330; }
.unrelated { background: #fff; color: #9aa3b2; }
.outside { background-image: repeating-linear-gradient(45deg, transparent 0 6px,
  rgba(255,255,255,.35) 6px 9px); }
#legend span { display: inline-block; padding: 2px 8px; margin-right: 6px; border-radius: 3px; }
#evidence { margin-top: 18px; padding: 12px 16px; border: 1px solid #d5dae3; max-width: 960px;
  background: #fbfcfd; white-space: normal; }
#evidence h2 { font-size: 16px; margin: 0 0 8px; }
#evidence li { margin-bottom: 4px; }
code { font: 12px ui-monospace, monospace; }
section { margin-top: 18px; }
"""

_SCRIPT = """
const data = JSON.parse(document.getElementById('map-data').textContent);
const panel = document.getElementById('evidence');
function text(tag, content) {
  const e = document.createElement(tag);
  e.textContent = content;
  return e;
}
function show(td) {
  document.querySelectorAll('td.cell.selected').forEach(c => c.classList.remove('selected'));
  td.classList.add('selected');
  const site = td.dataset.site, pattern = td.dataset.pattern;
  const cell = data.cells.find(c => c.site === site && c.pattern === pattern);
  panel.replaceChildren(text('h2', site + ' \\u2192 ' + pattern + ': ' + td.dataset.state));
  const wrote = (data.sites[site] || {}).tables || [];
  const filled = data.sources[pattern] || [];
  panel.append(text('p', 'wrote: ' + (wrote.join(', ') || 'nothing seen')
    + ' \\u2014 keys of ' + pattern + ' filled from: ' + (filled.join(', ') || 'nothing seen')));
  if (!cell) {
    panel.append(text('p', 'unrelated: no key of this pattern was filled from a table this '
      + 'site wrote, and the site deleted none.'));
    return;
  }
  const tests = Object.entries(cell.tests).map(([s, n]) => s + ' in ' + n + ' test(s)').join(', ');
  panel.append(text('p', tests));
  if (cell.keys.length) panel.append(text('p', 'keys: ' + cell.keys.join(', ')));
  if (cell.exempt) panel.append(text('p', 'exempted by ' + cell.exempt));
  const list = document.createElement('ul');
  for (const e of cell.evidence) {
    const li = text('li', e.text + ' ');
    li.append(text('code', '[' + e.test + ']'));
    list.append(li);
  }
  panel.append(list);
}
document.querySelectorAll('td.cell').forEach(td => td.addEventListener('click', () => show(td)));
const first = document.querySelector('td.cell.missing:not(.outside)')
  || document.querySelector('td.cell.missing') || document.querySelector('td.cell');
if (first) show(first);
"""


def _cell(site: str, pattern: str, cell: Mapping[str, Any] | None, outside: bool) -> str:
    state = cell["state"] if cell else "unrelated"
    hover = cell["evidence"][0]["text"] if cell and cell["evidence"] else "unrelated"
    shown = {"missing": "MISSING", "invalidated": "invalidated", "exempt": "exempt"}
    classes = f"cell {state}" + (" outside" if outside else "")
    return (
        f'<td class="{classes}" data-site="{escape(site)}" data-pattern="{escape(pattern)}" '
        f'data-state="{state}" title="{escape(hover)}">{shown.get(state, "&middot;")}</td>'
    )


def render_page(run_map: Mapping[str, Any], title: str = "cachesync invalidation map") -> str:
    """The page for a merged map (``map_report.merge_maps``); an empty map gives a note."""
    if not run_map:
        body = "<p id='summary'>No write site committed a write in this run: nothing to map.</p>"
        return _document(title, body, {"cells": [], "sites": {}, "sources": {}})
    cells = {(c["site"], c["pattern"]): c for c in run_map["cells"]}
    patterns: list[str] = run_map["patterns"]
    head = "".join(f"<th scope='col'>{escape(p)}</th>" for p in patterns)
    rows = []
    for site, info in run_map["sites"].items():
        outside = info["kind"] != "request"
        tds = "".join(_cell(site, p, cells.get((site, p)), outside) for p in patterns)
        rows.append(f"<tr><th scope='row'>{escape(site)}</th>{tds}</tr>")
    summary = run_map["summary"]
    parts = [
        f"{summary['sites']} write sites x {summary['patterns']} key patterns",
        f"missing: {summary['missing']}",
        f"invalidated: {summary['invalidated']}",
        f"exempt: {summary['exempt']}",
        f"invalidated before commit: {summary['invalidated_before_commit']}",
    ]
    if summary.get("missing_outside_requests"):
        parts.append(f"missing outside requests (test code): {summary['missing_outside_requests']}")
    early = "".join(
        f"<li>{escape(e['evidence'])} <code>[{escape(e['tests'][0])}]</code></li>"
        for e in run_map["early"]
    )
    exemptions = "".join(
        f"<li>{escape(text)}{'' if used else ' (matched nothing)'}</li>"
        for text, used in run_map["exemptions"].items()
    )
    body = f"""
<p id="summary">{escape("; ".join(parts))}</p>
<p id="legend"><span class="missing">MISSING</span><span class="invalidated">invalidated</span>
<span class="exempt">exempt</span><span class="unrelated">&middot; unrelated</span>
<span class="outside invalidated">striped: writes outside requests</span></p>
<table class="map"><thead><tr><th scope="col">write site</th>{head}</tr></thead>
<tbody>{"".join(rows)}</tbody></table>
<div id="evidence" aria-live="polite">Click a cell for its evidence.</div>
<section id="early"><h2>Invalidated before commit</h2><ul>{early or "<li>none</li>"}</ul></section>
<section id="exemptions"><h2>Exemptions</h2><ul>{exemptions or "<li>none</li>"}</ul></section>
"""
    return _document(title, body, run_map)


def _document(title: str, body: str, data: Mapping[str, Any]) -> str:
    # No "<" at all inside the JSON: "</script" or "<!--" in a label would end or derail the
    # script element.
    payload = json.dumps(data, sort_keys=True).replace("<", "\\u003c")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>
<style>{_STYLE}</style></head>
<body><h1>{escape(title)}</h1>{body}
<script type="application/json" id="map-data">{payload}</script>
<script>{_SCRIPT}</script></body></html>
"""


def write_page(run_map: Mapping[str, Any], path: str | Path) -> Path:
    """Write the page for ``--cachesync-map PATH``, creating parent folders."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render_page(run_map), encoding="utf-8")
    return target
