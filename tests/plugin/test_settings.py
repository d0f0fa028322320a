"""Options, their precedence (command line > env > ini > default) and the report header."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.usefixtures("default_backend")

PROBE = """
def test_probe(cachesync):
    print("MODE", cachesync.db_reset)
"""


def test_header_names_the_default_backends(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(PROBE)
    result = pytester.runpytest("--cachesync-report=figures.json")
    result.stdout.fnmatch_lines(
        [
            "cachesync: redis=fakeredis (default), db=sqlite file per worker (default), "
            "db-reset=rollback (default)",
            "cachesync staleness: *report=figures.json (cli)",
        ]
    )


def test_no_header_when_nothing_is_configured(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(PROBE)
    result = pytester.runpytest()
    result.stdout.no_fnmatch_line("cachesync*")


@pytest.mark.parametrize(
    ("ini", "env", "cli", "expected"),
    [
        ("truncate", None, None, "truncate (ini)"),
        ("truncate", "rollback", None, "rollback (env)"),
        ("rollback", "rollback", "truncate", "truncate (cli)"),
        (None, "truncate", None, "truncate (env)"),
    ],
)
def test_precedence_cli_over_env_over_ini(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    ini: str | None,
    env: str | None,
    cli: str | None,
    expected: str,
) -> None:
    pytester.makepyfile(PROBE)
    if ini:
        pytester.makeini(f"[pytest]\ncachesync_db_reset = {ini}\n")
    if env:
        monkeypatch.setenv("CACHESYNC_DB_RESET", env)
    args = ["-s"] + ([f"--cachesync-db-reset={cli}"] if cli else [])
    result = pytester.runpytest(*args)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [f"cachesync: *db-reset={expected}*", f"*MODE {expected.split()[0]}"]
    )


def test_bool_options_from_each_source_appear_in_header(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(PROBE)
    pytester.makeini("[pytest]\ncachesync_reuse_db = true\ncachesync_redis_isolation = prefix\n")
    monkeypatch.setenv("CACHESYNC_ALLOW_FOREIGN_REDIS", "yes")
    result = pytester.runpytest("--cachesync-allow-remote", "-s")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "cachesync: redis=fakeredis (key prefix per worker) (default), *"
            "redis-isolation=prefix (ini), allow-remote=yes (cli), "
            "allow-foreign-redis=yes (env), reuse-db=yes (ini)"
        ]
    )


def test_header_masks_passwords(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest(
        "--cachesync-db-url=postgresql+psycopg://app:s3cret@127.0.0.1:1/shop",
        "--cachesync-redis-url=redis://:hunter2@127.0.0.1:1/0",
    )
    output = result.stdout.str() + result.stderr.str()
    assert "s3cret" not in output
    assert "hunter2" not in output
    assert "redis://:***@127.0.0.1:1/0" in output


@pytest.mark.parametrize(
    ("env", "value", "message"),
    [
        (
            "CACHESYNC_DB_RESET",
            "wipe",
            "environment variable CACHESYNC_DB_RESET: 'wipe' is not one of rollback, truncate.",
        ),
        (
            "CACHESYNC_ALLOW_REMOTE",
            "maybe",
            "environment variable CACHESYNC_ALLOW_REMOTE: expected a boolean*",
        ),
        (
            "CACHESYNC_REDIS_URL",
            "http://127.0.0.1/0",
            "*must start with redis://, rediss:// or unix://*",
        ),
        (
            "CACHESYNC_REDIS_URL",
            "redis://127.0.0.1/zero",
            "*names database 'zero', which is not a number.*",
        ),
        ("CACHESYNC_DB_URL", "not a url", "*cannot parse database URL 'not a url'*"),
        ("CACHESYNC_DB_URL", "mysql://root@127.0.0.1/app", "*backend 'mysql' is not supported*"),
    ],
)
def test_bad_values_are_one_usage_error(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    env: str,
    value: str,
    message: str,
) -> None:
    pytester.makepyfile(PROBE)
    monkeypatch.setenv(env, value)
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {message}"])


def test_bad_ini_choice(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(PROBE)
    pytester.makeini("[pytest]\ncachesync_redis_isolation = shards\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: ini option cachesync_redis_isolation: 'shards' is not one of auto, db, prefix."]
    )


def test_help_lists_every_option_in_its_group(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines_random(
        [
            "clean Redis and SQL stores per test (pytest-cachesync):",
            "*--cachesync-redis-url=URL*",
            "*--cachesync-db-url=URL*",
            "*--cachesync-db-reset={rollback,truncate}*",
            "*--cachesync-redis-isolation={auto,db,prefix}*",
            "*--cachesync-allow-remote*",
            "*--cachesync-allow-foreign-redis*",
            "*--cachesync-reuse-db*",
            "*--cachesync-metadata=MODULE:ATTR*",
            "*--cachesync-redis-targets=TARGETS*",
            "*--cachesync-oracle *Oracle mode: replay every GET*",
            "*--cachesync-lease-prefix=PREFIX*",
            "*--cachesync-strict *Deprecated name of --cachesync-oracle.*",
            "*cachesync_db_reset (string):*",
        ]
    )


LEASE_PROBE = """
import pytest


def test_lease_is_not_a_fill(cachesync, cachesync_spy):
    cachesync.redis.set("user:1", "W:token", nx=True, px=5000)
    cachesync.redis.get("user:1")
    cachesync_spy.assert_missed("user:1")
    with pytest.raises(AssertionError):
        cachesync_spy.assert_filled("user:1")
"""


def test_lease_prefix_option(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\ncachesync_cache_patterns = user:*\n")
    pytester.makepyfile(LEASE_PROBE)
    # The default prefix is L:, so W:token is cached data: the probe fails.
    pytester.runpytest().assert_outcomes(failed=1)
    result = pytester.runpytest("--cachesync-lease-prefix=W:")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["cachesync staleness: *lease-prefix=W: (cli)*"])


def test_empty_lease_prefix_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(PROBE)
    result = pytester.runpytest("--cachesync-lease-prefix= ")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--cachesync-lease-prefix: the lease prefix cannot be empty*"])


def test_former_strict_names_still_work_with_a_deprecation_warning(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.cachesync(strict=True)
        def test_marked(cachesync_redis):
            pass
        """
    )
    monkeypatch.setenv("CACHESYNC_STRICT", "1")
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "cachesync staleness: *oracle=on (env)*",
            "*PytestDeprecationWarning: cachesync: --cachesync-strict (ini cachesync_strict, env "
            "CACHESYNC_STRICT) is now --cachesync-oracle*",
            "*PytestDeprecationWarning: *cachesync(strict=...) is now oracle=...",
        ]
    )
