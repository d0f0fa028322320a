"""Neither clock engine moves pytest's own timers (--durations, junit times)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

TRAVELS = """
def test_travels(cachesync_clock):
    cachesync_clock.advance(10 * 365 * 86400)


def test_travels_again(cachesync_clock):
    cachesync_clock.advance(3600)
"""


@pytest.mark.usefixtures("default_backend")
@pytest.mark.parametrize("engine", ["time-machine", "freezegun"])
def test_durations_and_junit_times_stay_real(pytester: pytest.Pytester, engine: str) -> None:
    pytester.makepyfile(test_travel=TRAVELS)
    junit = pytester.path / "junit.xml"
    result = pytester.runpytest(
        "-p",
        "no:randomly",
        "--cachesync-clock-engine",
        engine,
        "--durations=0",
        "--durations-min=0",
        f"--junitxml={junit}",
    )
    result.assert_outcomes(passed=2)
    durations = [
        float(m.group(1))
        for line in result.outlines
        if (m := re.match(r"^(\d+\.\d+)s (setup|call|teardown)\s", line))
    ]
    assert len(durations) == 6, result.outlines
    assert max(durations) < 60
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None
    times = [float(case.get("time", "nan")) for case in suite.iter("testcase")]
    assert len(times) == 2
    assert max(times) < 60
    assert float(suite.get("time", "nan")) < 60
    assert suite.get("timestamp", "").startswith(("20", "19"))
    assert not suite.get("timestamp", "").startswith("203")
