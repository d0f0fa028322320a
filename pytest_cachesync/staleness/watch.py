"""One test's observers: the cache spy, the SQL recorder and the checks built on them.

Installed only for tests that ask for them (``cachesync_spy``, ``cachesync_client``, a
``cachesync.assert_*`` call, TTL bounds), so the rest of a suite pays nothing for the spy.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis
import sqlalchemy as sa

from .bypass import Bypass
from .checks import StalenessChecker, format_seconds
from .deps import DepsRecorder
from .exemptions import Exemption
from .map_analysis import analyse
from .oracle import OracleClient
from .patterns import LEASE_PREFIX, KeyClassifier, TtlPolicy
from .race import RaceInjector
from .report import ItemFigures, item_figures
from .spy import RedisSpy
from .sql_recorder import SqlRecorder

NO_PATTERNS_HELP = (
    "no cache patterns are configured, so no Redis key counts as cache and {what} would check "
    "nothing. Name the cache keys, e.g. in pytest.ini:\n"
    "    cachesync_cache_patterns = users:* user:* parking_lot:*\n"
    "(or --cachesync-cache-patterns / CACHESYNC_CACHE_PATTERNS)."
)


def clock_time(read_clock: Callable[[], object | None]) -> Callable[[], float]:
    """Seconds since the epoch on the test's clock when one is running, else wall time."""

    def now() -> float:
        clock = read_clock()
        timestamp = getattr(clock, "timestamp", None)
        if clock is not None and getattr(clock, "running", False) and callable(timestamp):
            return float(timestamp())
        return time.time()

    return now


@dataclass
class Watch:
    """The spy on the test's Redis client and the recorder on its engine, with their checks."""

    spy: RedisSpy
    sql: SqlRecorder
    bypass: Bypass
    checker: StalenessChecker
    race: RaceInjector
    oracles: list[OracleClient] = field(default_factory=list)
    deps: DepsRecorder | None = None
    exemptions: tuple[Exemption, ...] = ()
    _map: tuple[tuple[int, ...], dict[str, Any]] | None = None

    @classmethod
    def install(
        cls,
        client: redis.Redis,
        engine: sa.Engine,
        patterns: Sequence[str],
        *,
        prefix: str,
        now: Callable[[], float],
        lease_prefix: str = LEASE_PREFIX,
        namespaces: list[str] | None = None,
        invalidation_map: bool = True,
    ) -> Watch:
        classifier = KeyClassifier(patterns, prefix, lease_prefix, namespaces=namespaces)
        spy = RedisSpy(client, classifier, clock=now).install()
        try:
            sql = SqlRecorder(engine, clock=now).install()
            sql.mark = lambda: len(spy.effects)
        except BaseException:
            spy.uninstall()
            raise
        deps: DepsRecorder | None = None
        if invalidation_map and spy.classifier.patterns:
            try:
                deps = DepsRecorder(spy, sql).install()
            except BaseException:
                sql.uninstall()
                spy.uninstall()
                raise
        bypass = Bypass(spy, sql=sql)
        return cls(
            spy=spy,
            sql=sql,
            bypass=bypass,
            checker=StalenessChecker(spy, bypass),
            race=RaceInjector(spy, bypass, sql=sql),
            deps=deps,
        )

    def uninstall(self) -> None:
        try:
            if self.deps is not None:
                self.deps.uninstall()
        finally:
            try:
                self.sql.uninstall()
            finally:
                self.spy.uninstall()

    def invalidation_map(self) -> dict[str, Any]:
        """The test's invalidation map so far (empty when it is not recorded)."""
        if self.deps is None:
            return {}
        recording = self.deps.recording
        # Asked after the test body (strict mode) and again at teardown: built once unless
        # fixtures' teardown recorded more.
        version: tuple[int, ...] = (
            len(recording.fills),
            len(recording.writes),
            len(recording.invalidations),
            self.deps.commits,
        )
        if self._map is None or self._map[0] != version:
            self._map = (version, analyse(recording, self.exemptions))
        return self._map[1]

    def require_patterns(self, what: str) -> None:
        """Refuse a check that would pass vacuously because no key is cache."""
        if not self.spy.classifier.patterns:
            raise RuntimeError(NO_PATTERNS_HELP.format(what=what))

    def oracle(
        self,
        client: object,
        *,
        allowed_staleness: float,
        ignore: Sequence[str],
        skip: Sequence[str] = (),
        kind: type[OracleClient] = OracleClient,
    ) -> OracleClient:
        """A strict oracle around a test client (Flask's, or ``kind``'s), counted in this
        test's figures."""
        self.require_patterns("oracle mode")
        oracle = kind(
            client,
            self.spy,
            self.bypass,
            allowed_staleness=allowed_staleness,
            ignore=ignore,
            skip=skip,
            strict=True,
            sql=self.sql,
        )
        self.oracles.append(oracle)
        return oracle

    def figures(self, nodeid: str) -> ItemFigures:
        return item_figures(
            nodeid,
            patterns=self.spy.stats(),
            commands=self.spy.commands_total,
            sql_statements=self.sql.count,
            checks=[check for oracle in self.oracles for check in oracle.checks],
            keys_without_ttl=self.checker.keys_without_ttl(),
            pattern_of={key: record.pattern for key, record in self.spy.keys.items()},
            invalidation_map=self.invalidation_map(),
        )

    def _unobserved_ttl_problems(self, policy: TtlPolicy | None) -> list[tuple[str, str]]:
        # Cache keys written before the spy was installed (it is set up on first use) are
        # judged by what the server holds now: no TTL, or more TTL left than the bound.
        spy, classifier = self.spy, self.spy.classifier
        problems: list[tuple[str, str]] = []
        cursor: Any = 0
        while True:
            cursor, keys = spy.raw("SCAN", cursor, "MATCH", classifier.prefix + "*", "COUNT", 1000)
            for raw_key in keys:
                name, pattern = classifier.strip(raw_key), classifier.pattern_for(raw_key)
                if pattern is None or name in spy.keys:
                    continue
                left_ms = int(spy.raw("PTTL", raw_key))
                bound = policy.bound_for(pattern, name) if policy else None
                if left_ms == -1:
                    problems.append((name, "no TTL"))
                elif bound is not None and left_ms / 1000 > bound + 0.001:
                    left = format_seconds(left_ms / 1000)
                    problems.append((name, f"TTL left {left}, bound {format_seconds(bound)}"))
            if int(cursor) == 0:
                return problems

    def check_ttl_policy(self, policy: TtlPolicy | None) -> None:
        """Every cache key written in the test has a TTL, within its pattern's bound if any."""
        __tracebackhide__ = True
        self.require_patterns("the TTL policy")
        problems = self.checker.ttl_problems(policy) + self._unobserved_ttl_problems(policy)
        if problems:
            listing = "\n".join(f"  {key}: {problem}" for key, problem in sorted(problems))
            raise AssertionError(f"cache keys break the TTL policy:\n{listing}")
