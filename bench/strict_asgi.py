"""The oracle's cost on an ASGI app: a FastAPI shop suite with --cachesync-oracle against plain.

The shop is the one of the plugin's own tests (redis.asyncio cache-aside with a lease, async
SQLAlchemy), driven through Starlette's TestClient: each test creates a product, reads it
cold and warm, changes its price and reads it and its catalog entry again. As in
``bench.strict`` (whose comparison it runs) the figure is the summed per-test time, plain and
strict runs alternate, and wall time is in the note. The suite runs on the embedded default stores.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from bench._suites import SuiteRun, run_suite
from bench._table import Result
from bench.compare import WITHOUT_BASELINE_PLUGINS
from bench.strict import PLAIN_FLAGS, STRICT_FLAG, strict_against_plain
from tests.plugin.shop import CONFTEST, INI, SHOP

TESTS = 40
TIMEOUT_S = 180.0
NAME = "oracle mode vs plain, FastAPI shop suite"

TEST_MODULE = """
import pytest


@pytest.mark.parametrize("n", range({count}))
def test_product(client, n):
    assert client.get("/products/1").json()["price"] == 30
    assert client.get("/products/1").json()["price"] == 30
    client.put("/products/1/price", json={{"price": 30 + n}})
    assert client.get("/products/1").json()["price"] == 30 + n
    assert client.get("/catalog/1").json()["price"] == 30 + n
    assert client.get("/catalog/1").json()["price"] == 30 + n
"""


def write_shop_suite(directory: Path, count: int) -> None:
    # The shop's ini turns oracle mode on; the plain runs turn it off on the command line.
    (directory / "pytest.ini").write_text(INI, encoding="utf-8")
    (directory / "conftest.py").write_text(CONFTEST, encoding="utf-8")
    (directory / "shop.py").write_text(SHOP, encoding="utf-8")
    (directory / "test_shop.py").write_text(TEST_MODULE.format(count=count), encoding="utf-8")


def _run(directory: Path, strict: bool) -> SuiteRun:
    args = [*WITHOUT_BASELINE_PLUGINS, "-p", "no:randomly"]
    args += [STRICT_FLAG] if strict else PLAIN_FLAGS
    return run_suite(directory, args, timeout_s=TIMEOUT_S)


def main() -> list[Result]:
    print(f"== strict_asgi: {TESTS} FastAPI shop tests with {STRICT_FLAG} against without")
    with tempfile.TemporaryDirectory(prefix="cachesync-bench-asgi-") as tmp:
        directory = Path(tmp)
        write_shop_suite(directory, TESTS)
        return strict_against_plain(lambda strict: _run(directory, strict), NAME, "oracle (ASGI)")


if __name__ == "__main__":
    main()
