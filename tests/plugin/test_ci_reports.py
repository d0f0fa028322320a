"""CI shards: ``merge-reports`` adds their JSON reports up, GitHub's step summary gets Markdown."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_cachesync.__main__ import main

from .test_report_plugin import SPIED
from .toy import toy  # noqa: F401  (a fixture)

pytestmark = pytest.mark.usefixtures("backend", "toy")


def _run_suite(pytester: pytest.Pytester, report: str, *selection: str) -> None:
    args = ["-p", "no:randomly", "--cachesync-oracle", "--cachesync-report", report]
    result = pytester.runpytest(*args, *selection)
    assert result.ret == 0, result.stdout.str()


def _load(path: Path) -> dict[str, object]:
    data = json.loads(path.read_text())
    assert isinstance(data, dict)
    return data


def test_merged_shards_equal_the_whole_run(
    pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]
) -> None:
    pytester.makepyfile(test_spied=SPIED.format(n=5))
    _run_suite(pytester, "whole.json")
    ids = [f"test_spied.py::test_reads[{i}]" for i in range(5)]
    _run_suite(pytester, "shard1.json", *ids[:2])
    _run_suite(pytester, "shard2.json", *ids[2:], "test_spied.py::test_without_the_spy")
    shard1 = _load(pytester.path / "shard1.json")
    assert len(shard1["tests"]) == 2  # type: ignore[arg-type]

    code = main(["merge-reports", "-o", "out/all.json", "shard2.json", "shard1.json"])

    assert code == 0
    assert "2 reports, 5 tests" in capsys.readouterr().out
    merged, whole = _load(pytester.path / "out" / "all.json"), _load(pytester.path / "whole.json")
    assert merged == whole
    summary = merged["summary"]
    assert isinstance(summary, dict)
    assert summary["reads_checked"] == 20


def test_merge_refuses_bad_input_and_writes_nothing(
    pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]
) -> None:
    pytester.makepyfile(test_spied=SPIED.format(n=1))
    _run_suite(pytester, "good.json")
    (pytester.path / "all.json").write_text("previous\n")
    (pytester.path / "broken.json").write_text('{"tests": [')
    (pytester.path / "other.json").write_text('{"name": "not ours"}')
    (pytester.path / "v9.json").write_text('{"version": 9, "tests": []}')
    cases = {
        ("good.json", "broken.json"): "broken.json: not JSON",
        ("good.json", "other.json"): "other.json: not a pytest-cachesync report",
        ("good.json", "missing.json"): "missing.json: cannot read it",
        ("good.json", str(pytester.path / "good.json")): "good.json: given twice (as good.json)",
        ("good.json", "v9.json"): "version 9, expected 1",
    }
    for inputs, message in cases.items():
        assert main(["merge-reports", "-o", "all.json", *inputs]) == 2
        err = capsys.readouterr().err
        assert message in err
        assert "nothing written" in err
    assert (pytester.path / "all.json").read_text() == "previous\n"


def test_a_test_in_two_shards_is_refused_unless_allowed(
    pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]
) -> None:
    pytester.makepyfile(test_spied=SPIED.format(n=1))
    _run_suite(pytester, "a.json")
    _run_suite(pytester, "b.json")
    assert main(["merge-reports", "-o", "all.json", "a.json", "b.json"]) == 2
    assert "test_spied.py::test_reads[0]" in capsys.readouterr().err
    assert main(["merge-reports", "--allow-duplicates", "-o", "all.json", "a.json", "b.json"]) == 0
    summary = _load(pytester.path / "all.json")["summary"]
    assert isinstance(summary, dict)
    assert summary["reads_checked"] == 8


def test_step_summary_gets_the_report_as_markdown(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    summary = pytester.path / "step-summary.md"
    summary.write_text("# earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    pytester.makepyfile(test_spied=SPIED.format(n=2))
    _run_suite(pytester, "r.json")
    text = summary.read_text()
    assert text.startswith("# earlier step\n### cachesync\n")
    assert "| `lot:*` | 4 | 4 | 50% | 4 | 2 | 0 | - | 0 |" in text
    assert "reads checked: 8, fresh: 8" in text


def test_no_step_summary_without_cache_activity(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    summary = pytester.path / "step-summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    pytester.makepyfile("def test_plain(cachesync):\n    cachesync.redis.set('lot:1', 1)\n")
    pytester.runpytest().assert_outcomes(passed=1)
    assert not summary.exists()


def test_module_entry_point(tmp_path: Path) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "pytest_cachesync", "merge-reports", "-o", "x.json", "nope.json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 2
    assert "nope.json: cannot read it" in completed.stderr
    assert not (tmp_path / "x.json").exists()
