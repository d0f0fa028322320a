"""Per-test isolation cost of pytest-cachesync against the tools users would pick instead.

Every variant runs the same generated tests (each asserts it starts from empty stores, then
writes one Redis key and one row) in pytest subprocesses. A test's time is its cycle: the wall
time of its whole run protocol (setup, call, teardown and their reports), so work a fixture
leaves for between its phases is counted too. Its overhead is its median cycle minus that of the
no-isolation control on the same backend.

The machine's speed drifts within a run by more than the plugin's goals, so:
- the plugin's tests run in the same process as their control, alternating with it in blocks
  of BLOCK tests; each round gives one overhead (median plugin cycle - median control cycle in
  that process), and the figure is the median over ROUNDS rounds;
- the other tools run in processes of their own, once per round (the slow ones once), and are
  set against the control run of the same round.
The control rows printed are the separate control processes. In the plugin's processes its hooks
and its SQL write tracker run for the control tests too, which hides a few microseconds of its
cost.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from bench import _services
from bench._isolation_suites import (
    COMPARE_DB,
    CONTROL_TEST,
    EMBEDDED_SESSION,
    PGPP_DB,
    PGPP_SESSION,
    PLUGIN_FIXTURES,
    PLUGIN_TEST,
    REAL_SESSION,
    STORES,
    control_stores,
    fixture,
    interleaved_module,
)
from bench._suites import SuiteRun, plugin_offers, run_suite, tail, write_suite
from bench._table import Result, markdown_table, median, ratio

PYTEST_REDIS_PORT = 6410
PLUGIN_REDIS_DB = 14
PLUGIN_DB = "bench_plugin"
FAST_COUNT = 150
BLOCK = 10  # consecutive tests of one kind where plugin and control tests alternate
SLOW_COUNT = 40  # pytest-postgresql creates a database per test: ~100x slower, one round only
ROUNDS = 6
TIMEOUT_S = 120.0

_NO_PLUGIN = ["-p", "no:cachesync", "-p", "no:xdist"]
WITHOUT_BASELINE_PLUGINS = ["-p", "no:pytest_redis", "-p", "no:pytest_postgresql"]
_NO_OTHERS = [*WITHOUT_BASELINE_PLUGINS, "-p", "no:xdist"]


@dataclass(frozen=True)
class Variant:
    """One way of isolating tests; `control` names the no-isolation run it is measured against."""

    name: str
    backend: str  # "real" or "embedded"
    conftest: str
    args: list[str] = field(default_factory=list)
    count: int = FAST_COUNT
    is_control: bool = False
    # Its tests alternate with control tests in one process (see the module's docstring).
    interleaved: bool = False


def baseline_variants() -> list[Variant]:
    real, embedded = STORES + REAL_SESSION, STORES + EMBEDDED_SESSION
    plain = "    return Stores(RedisSide({r}, {iso}), SqlSide({e}, {iso}))"
    truncate = (
        "    with real_engine.begin() as conn:\n"
        '        conn.execute(sa.text("TRUNCATE item RESTART IDENTITY CASCADE"))\n'
        "    real_redis.flushdb()\n"
    )
    recreate = "    METADATA.drop_all({e})\n    METADATA.create_all({e})\n    {r}.flushdb()\n"
    pytest_redis = [*_NO_PLUGIN, "-p", "no:pytest_postgresql", f"--redis-port={PYTEST_REDIS_PORT}"]
    pytest_pg = [*_NO_PLUGIN, "-p", "no:pytest_redis"]
    both = [*_NO_PLUGIN, f"--redis-port={PYTEST_REDIS_PORT}"]
    r_real = {"r": "real_redis", "e": "real_engine"}
    r_emb = {"r": "embedded_redis", "e": "embedded_engine"}
    return [
        Variant(
            "no isolation (control)",
            "real",
            STORES + control_stores("real", name="stores"),
            [*_NO_PLUGIN, *_NO_OTHERS],
            is_control=True,
        ),
        Variant(
            "no isolation (control)",
            "embedded",
            STORES + control_stores("embedded", name="stores"),
            [*_NO_PLUGIN, *_NO_OTHERS],
            is_control=True,
        ),
        Variant(
            "TRUNCATE + FLUSHDB",
            "real",
            real + fixture("real_redis, real_engine", truncate + plain.format(**r_real, iso=True)),
            [*_NO_PLUGIN, *_NO_OTHERS],
        ),
        Variant(
            "drop_all/create_all + FLUSHDB",
            "real",
            real
            + fixture(
                "real_redis, real_engine",
                recreate.format(**r_real) + plain.format(**r_real, iso=True),
            ),
            [*_NO_PLUGIN, *_NO_OTHERS],
        ),
        Variant(
            "drop_all/create_all + FLUSHDB",
            "embedded",
            embedded
            + fixture(
                "embedded_redis, embedded_engine",
                recreate.format(**r_emb) + plain.format(**r_emb, iso=True),
            ),
            [*_NO_PLUGIN, *_NO_OTHERS],
        ),
        Variant(
            "pytest-redis redisdb",
            "real",
            real
            + fixture(
                "redisdb, real_engine",
                "    return Stores(RedisSide(redisdb, True), SqlSide(real_engine, False))",
            ),
            pytest_redis,
        ),
        Variant(
            "pytest-postgresql per-test database",
            "real",
            real
            + PGPP_SESSION
            + fixture(
                "real_redis, postgresql_bench",
                "    return Stores(RedisSide(real_redis, False), PsycopgSide(postgresql_bench))",
            ),
            pytest_pg,
            count=SLOW_COUNT,
        ),
        Variant(
            "pytest-redis + pytest-postgresql",
            "real",
            real
            + PGPP_SESSION
            + fixture(
                "redisdb, postgresql_bench",
                "    return Stores(RedisSide(redisdb, True), PsycopgSide(postgresql_bench))",
            ),
            both,
            count=SLOW_COUNT,
        ),
    ]


PLUGIN_NAME = "pytest-cachesync"


def plugin_strategies() -> tuple[str, ...]:
    try:
        from pytest_cachesync._options import DB_RESET_CHOICES
    except ImportError:
        return ()
    return tuple(DB_RESET_CHOICES)


def plugin_real_args() -> list[str]:
    return [
        f"--cachesync-redis-url=redis://127.0.0.1:6379/{PLUGIN_REDIS_DB}",
        f"--cachesync-db-url={_services.pg_url(PLUGIN_DB)}",
    ]


def plugin_variants(strategies: tuple[str, ...]) -> list[Variant]:
    variants = []
    for strategy in strategies:
        for backend in ("real", "embedded"):
            args = [*_NO_OTHERS, f"--cachesync-db-reset={strategy}"]
            if backend == "real":
                args += plugin_real_args()
            conftest = STORES + control_stores(backend) + PLUGIN_FIXTURES
            variants.append(
                Variant(f"{PLUGIN_NAME} {strategy}", backend, conftest, args, interleaved=True)
            )
    return variants


@dataclass(frozen=True)
class Measured:
    """A variant's runs, one per round."""

    variant: Variant
    runs: list[SuiteRun]

    @property
    def ok(self) -> bool:
        return all(run.ok for run in self.runs)

    def round_ms(self, prefix: str = "") -> list[float]:
        """Median cycle per test of each round, of the tests whose name starts with `prefix`."""
        return [
            median(ms for test, ms in run.cycles.items() if test.startswith(prefix))
            for run in self.runs
        ]

    @property
    def per_test_ms(self) -> float | None:
        if not self.ok:
            return None
        return median(self.round_ms(PLUGIN_TEST if self.variant.interleaved else ""))

    @property
    def wall_s(self) -> float:
        return median(run.wall_s for run in self.runs)


def measure(variants: list[Variant], workdir: Path) -> list[Measured]:
    """Run every variant once per round (slow ones in the first round only)."""
    measured = [Measured(variant, []) for variant in variants]
    for round_number in range(ROUNDS):
        for index, item in enumerate(measured):
            variant = item.variant
            if round_number > 0 and variant.count == SLOW_COUNT:
                continue
            suite = workdir / f"suite_{index}"
            if round_number == 0:
                module = interleaved_module(variant.count, BLOCK) if variant.interleaved else None
                write_suite(suite, variant.conftest, variant.count, module=module)
            run = run_suite(suite, variant.args, timeout_s=TIMEOUT_S)
            if not run.ok:
                print(f"  {variant.name} ({variant.backend}) FAILED:\n{tail(run.output)}")
            item.runs.append(run)
    return measured


def overhead_of(item: Measured, control: Measured) -> float | None:
    """Median over rounds of the variant's per-test time minus its control's in that round.

    The control of an interleaved variant is its own control tests; a variant run in fewer
    rounds than the control (the slow ones) is set against the control's median.
    """
    if not item.ok or not control.ok:
        return None
    if item.variant.interleaved:
        own, base = item.round_ms(PLUGIN_TEST), item.round_ms(CONTROL_TEST)
    else:
        own, base = item.round_ms(), control.round_ms()
    if len(own) == len(base):
        return median(mine - theirs for mine, theirs in zip(own, base, strict=True))
    return median(own) - median(base)


def overhead_ms(measured: list[Measured]) -> dict[tuple[str, str], float | None]:
    """Per-test overhead of each variant over its backend's control, keyed by (name, backend)."""
    controls = {m.variant.backend: m for m in measured if m.variant.is_control}
    overheads: dict[tuple[str, str], float | None] = {}
    for item in measured:
        control = controls.get(item.variant.backend)
        key = (item.variant.name, item.variant.backend)
        if item.variant.is_control or control is None:
            overheads[key] = None
        else:
            overheads[key] = overhead_of(item, control)
    return overheads


GOAL_MS = {"real": 1.0, "embedded": 0.3}
LESS_THAN_TOOLS = 100.0
TOOLS_TOGETHER = "pytest-redis + pytest-postgresql"


def _note(item: Measured) -> str:
    runs = f"{len(item.runs)} rounds, {item.wall_s:.1f} s wall per round"
    if item.variant.interleaved:
        count = item.variant.count
        return f"{count} tests between {count} control tests in one process x {runs}"
    return f"{item.variant.count} tests x {runs}"


def results(measured: list[Measured]) -> list[Result]:
    overheads = overhead_ms(measured)
    rows = []
    for item in measured:
        name, backend = item.variant.name, item.variant.backend
        label = f"isolation, {backend}: {name}"
        if not item.ok:
            rows.append(Result(label, None, "ms/test", note="run failed"))
            continue
        if item.variant.is_control:
            note = f"{item.variant.count} tests"
            rows.append(Result(label, item.per_test_ms, "ms/test", note=note))
            continue
        overhead = overheads[(name, backend)]
        goal, met = "", None
        if name.startswith(PLUGIN_NAME) and overhead is not None:
            goal, met = f"<= {GOAL_MS[backend]} ms", overhead <= GOAL_MS[backend]
        rows.append(
            Result(
                label,
                overhead,
                "ms/test over control",
                versus="control",
                goal=goal,
                met=met,
                note=_note(item),
            )
        )
    tools = overheads.get((TOOLS_TOGETHER, "real"))
    for (name, backend), overhead in overheads.items():
        if backend == "real" and name.startswith(PLUGIN_NAME):
            factor = ratio(tools, overhead) if overhead is not None and overhead > 0 else None
            rows.append(
                Result(
                    f"isolation: {TOOLS_TOGETHER} vs {name} (real)",
                    factor,
                    "x less overhead",
                    goal=f">= {LESS_THAN_TOOLS:.0f}x",
                    met=None if factor is None else factor >= LESS_THAN_TOOLS,
                    note="" if factor is not None else "overhead not measurable (<= 0)",
                )
            )
    return rows


def main() -> list[Result]:
    print("== isolation against the tools users pick instead (subprocess suites)")
    variants = baseline_variants()
    if plugin_offers("cachesync")["cachesync"]:
        variants += plugin_variants(plugin_strategies())
    else:
        print(f"  {PLUGIN_NAME}: the cachesync fixture is not available; only baselines run")
    _services.ensure_databases([COMPARE_DB])
    try:
        with tempfile.TemporaryDirectory(prefix="bench-compare-") as workdir:
            measured = measure(variants, Path(workdir))
    finally:
        _services.drop_databases([COMPARE_DB, PGPP_DB, f"{PGPP_DB}_tmpl"])
    rows = results(measured)
    print(markdown_table(rows))
    return rows


if __name__ == "__main__":
    main()
