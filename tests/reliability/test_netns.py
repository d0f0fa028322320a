"""The guard attacked in a private network namespace, where production is a real address.

The tests in tests/netns/ need an address that exists nowhere else and a 127.0.0.1:6379 that is
not the machine's: this test starts them in a namespace of their own (``unshare -rn``), whose
only traffic stays on its loopback. Where ``unshare`` is not permitted they are skipped, unless
``CACHESYNC_REQUIRE_NETNS=1`` (set by CI) turns that into a failure.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
INNER = ["tests/netns/netns_spellings.py", "tests/netns/netns_keys.py"]


def _namespace_refusal() -> str | None:
    """Why no private network namespace can be made here, or None."""
    if os.environ.get("CACHESYNC_IN_NETNS") == "1":
        return "already inside a private network namespace"
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return "unshare or ip is not installed"
    probe = subprocess.run(
        ["unshare", "-rn", "ip", "link", "set", "lo", "up"], capture_output=True, text=True
    )
    if probe.returncode != 0:
        return f"unshare -rn is not permitted here: {probe.stderr.strip()}"
    return None


def test_every_spelling_is_refused_and_no_key_is_lost_in_a_private_namespace() -> None:
    refusal = _namespace_refusal()
    if refusal is not None:
        if os.environ.get("CACHESYNC_REQUIRE_NETNS") == "1" and "already inside" not in refusal:
            pytest.fail(f"CACHESYNC_REQUIRE_NETNS=1 but {refusal}")
        pytest.skip(refusal)
    env = {
        k: v
        for k, v in os.environ.items()
        # The outer run's options (PYTEST_ADDOPTS="-n 2") would change what the inner runs test.
        if not k.startswith(("CACHESYNC_", "PYTEST_XDIST_", "PG")) and k != "PYTEST_ADDOPTS"
    }
    env["CACHESYNC_IN_NETNS"] = "1"
    if os.environ.get("CACHESYNC_NETNS_SUITE"):
        env["CACHESYNC_NETNS_SUITE"] = os.environ["CACHESYNC_NETNS_SUITE"]
    run = subprocess.run(
        [
            "unshare",
            "-rn",
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-s",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:randomly",
            *INNER,
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-5000:]
    summary = run.stdout.strip().splitlines()[-1]
    assert re.search(r"\d+ passed", summary), summary
    assert "skipped" not in summary, f"nothing may be skipped in the namespace: {summary}"
    print(*(line for line in output.splitlines() if "keys kept" in line or "suite " in line))
