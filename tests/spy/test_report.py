from __future__ import annotations

import json
from pathlib import Path

import pytest
import redis
from sqlalchemy.engine import Engine

from pytest_cachesync import OracleClient, RedisSpy
from pytest_cachesync.staleness import report
from pytest_cachesync.staleness.bypass import Bypass
from pytest_cachesync.staleness.checks import StalenessChecker

from .conftest import create_toy_app


class RecordingWriter:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def write_sep(self, sep: str, title: str | None = None, **markup: bool) -> None:
        self.lines.append(f"{sep * 3} {title} {sep * 3}")

    def write_line(self, line: str, **markup: bool) -> None:
        self.lines.append(line)


def figures_of_a_run(
    nodeid: str, redis_client: redis.Redis, spy: RedisSpy, bypass: Bypass, engine: Engine
) -> report.ItemFigures:
    client = create_toy_app(redis_client, engine, forget_invalidation=True).test_client()
    oracle = OracleClient(client, spy, bypass)
    oracle.get("/lots/1")
    oracle.get("/lots/1")
    oracle.put("/lots/1", json={"price": 5})
    oracle.get("/lots/1")
    redis_client.set("lots:all", "[]")  # a cache key without TTL
    checker = StalenessChecker(spy, bypass)
    return report.item_figures(
        nodeid,
        patterns=spy.stats(),
        commands=spy.commands_total,
        checks=oracle.checks,
        keys_without_ttl=checker.keys_without_ttl(),
        pattern_of={k: r.pattern for k, r in spy.keys.items()},
    )


def test_figures_of_one_test(fake_redis: redis.Redis, engine: Engine) -> None:
    with RedisSpy(fake_redis, ["lots:*", "lot:*"]) as spy:
        figures = figures_of_a_run("t::a", fake_redis, spy, Bypass(spy), engine)
    assert (figures.reads_checked, figures.fresh, figures.stale, figures.violations) == (3, 2, 1, 1)
    lot = figures.patterns["lot:*"]
    assert (lot.hits, lot.misses, lot.fills, lot.stale_reads) == (2, 1, 1, 1)
    assert figures.keys_without_ttl == ["lots:all"]
    assert figures.patterns["lots:*"].keys_without_ttl == 1


def test_worker_figures_merge_render_and_json(tmp_path: Path) -> None:
    lot = report.PatternStats(hits=3, misses=1, fills=1, stale_reads=1, worst_staleness=2.5)
    worker_a = report.worker_output(
        [report.ItemFigures("t::b", {"lot:*": lot}, reads_checked=1000, fresh=999, stale=1,
                            violations=1, worst_staleness=2.5)]
    )  # fmt: skip
    worker_b = report.worker_output(
        [report.ItemFigures("t::a", {"lot:*": report.PatternStats(hits=1, misses=3),
                                     "users:*": report.PatternStats(fills=2, keys_without_ttl=1)},
                            keys_without_ttl=["users:all"])]
    )  # fmt: skip
    # What crosses the xdist channel is plain JSON.
    merged = report.merge([json.loads(json.dumps(worker_a)), json.loads(json.dumps(worker_b))])
    assert [t.nodeid for t in merged.tests] == ["t::a", "t::b"]
    writer = RecordingWriter()
    report.render(merged, writer)
    assert writer.lines == [
        "=== cachesync ===",
        "pattern  hits  misses  hit ratio  fills  invalidations  stale reads  worst staleness  "
        "keys without TTL",
        "lot:*       4       4        50%      1              0            1            2.5 s  "
        "               0",
        "users:*     0       0          -      2              0            0                -  "
        "               1",
        "reads checked: 1000, fresh: 999 (3.0 nines)",
        "stale reads: 1 (1 beyond their staleness budget), worst staleness: 2.5 s",
    ]
    path = report.write_json(merged, tmp_path / "out" / "cachesync.json")
    data = json.loads(path.read_text())
    assert data["summary"]["score"] == "reads checked: 1000, fresh: 999 (3.0 nines)"
    assert data["patterns"]["lot:*"]["hit_ratio"] == 0.5
    assert [t["nodeid"] for t in data["tests"]] == ["t::a", "t::b"]


def test_score_line_when_all_fresh_or_nothing_checked() -> None:
    assert report.Report().score_line() == "reads checked: 0, fresh: 0"
    all_fresh = report.Report([report.ItemFigures("t", reads_checked=100, fresh=100)])
    assert all_fresh.score_line() == "reads checked: 100, fresh: 100 (all fresh, >= 2.0 nines)"
    assert report.render_lines(report.Report()) == ["no cache activity observed"]


def test_merge_refuses_figures_of_another_version() -> None:
    with pytest.raises(ValueError, match="version 99"):
        report.merge([{"version": 99, "tests": []}])
