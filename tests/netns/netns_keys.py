"""The embedded suite touches no server: a Redis on 127.0.0.1:6379 keeps every key it held.

Runs only inside a private network namespace, whose 127.0.0.1:6379 is a Redis of its own,
holding a key in each of its 16 databases. ``CACHESYNC_NETNS_SUITE`` names what runs there
(default: the clock and spy suites, which once flushed databases of that port); CI runs the
whole suite (``tests``).
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from .standins import RedisStandIn, bring_up_network, inside_private_namespace

pytestmark = pytest.mark.skipif(
    not inside_private_namespace(), reason="runs inside a private network namespace only"
)

SUITE_ENV = "CACHESYNC_NETNS_SUITE"
DEFAULT_SUITE = "tests/clock tests/spy"
DATABASES = 16
ROOT = Path(__file__).resolve().parents[2]


def test_the_embedded_suite_leaves_every_key_of_a_local_redis(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    bring_up_network()
    server = RedisStandIn("127.0.0.1", 6379, tmp_path_factory.mktemp("local-redis"))
    try:
        for db in range(DATABASES):
            with server.client(db) as client:
                client.set(f"developer:{db}", f"kept {db}")
                client.set(f"session:{db}", "x", ex=43_200)
        before = server.connections()
        env = {k: v for k, v in os.environ.items() if not k.startswith("CACHESYNC_")}
        env["CACHESYNC_IN_NETNS"] = "1"
        suite = shlex.split(os.environ.get(SUITE_ENV) or DEFAULT_SUITE)
        run = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *suite],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        tail = "\n".join(run.stdout.splitlines()[-15:])
        assert run.returncode == 0, f"{' '.join(suite)} failed inside the namespace:\n{tail}"
        print(f"suite {' '.join(suite)}: {run.stdout.splitlines()[-1]}")
        kept = 0
        for db in range(DATABASES):
            with server.client(db) as client:
                assert client.get(f"developer:{db}") == f"kept {db}".encode(), f"db {db}"
                assert client.ttl(f"session:{db}") > 43_000, f"db {db}"
                assert client.dbsize() == 2, f"db {db}"
                kept += 2
        others = server.connections() - before
        print(f"keys kept: {kept} of {2 * DATABASES}; connections from the suite: {others}")
        assert others == 0, "the embedded suite connected to the local Redis"
    finally:
        server.stop()
