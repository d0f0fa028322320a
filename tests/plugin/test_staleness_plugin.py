"""The staleness assertions, oracle mode and TTL bounds through the plugin, on a toy app."""

from __future__ import annotations

import textwrap

import pytest

from .toy import toy  # noqa: F401  (a fixture)

pytestmark = pytest.mark.usefixtures("backend", "toy")


def test_assert_fresh_passes_and_fails(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_correct="""
        def test_fresh(cachesync, client, read):
            read()
            client.put("/lots/1", json={"price": 9})
            assert cachesync.assert_fresh(read)["price"] == 9
        """,
        test_planted="""
        INVALIDATE = False

        def test_stale(cachesync, client, read):
            read()
            client.put("/lots/1", json={"price": 9})
            cachesync.assert_fresh(read)
        """,
    )
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*stale read: the answer differs from the one computed with the cache bypassed",
            "*--- cached",
            "*+++ fresh",
            '*-  "price": 2',
            '*+  "price": 9',
            "*served from the cache by:",
            "*lot:1  (pattern lot:*, age *, TTL left *)",
        ]
    )


def test_assert_fresh_within_uses_the_clock(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_short_ttl="""
        INVALIDATE = False
        TTL = 10

        def test_fresh_within_ttl(cachesync_clock, cachesync, client, read):
            read()
            client.put("/lots/1", json={"price": 9})
            assert cachesync.assert_fresh_within(read, 10)["price"] == 9
        """,
        test_long_ttl="""
        INVALIDATE = False
        TTL = 300

        def test_stale_after_ttl(cachesync, client, read):
            read()
            client.put("/lots/1", json={"price": 9})
            cachesync.assert_fresh_within(read, 10)
        """,
    )
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*AssertionError: still stale 10 s later: stale read*"])


def test_assert_invalidated_passes_and_fails(pytester: pytest.Pytester) -> None:
    body = """
        def test_put_invalidates(cachesync, client, read):
            read()
            with cachesync.assert_invalidated("lot:1"):
                client.put("/lots/1", json={{"price": 9}})
            with cachesync.assert_invalidated(reads=[read]):
                client.put("/lots/1", json={{"price": 10}})
        """
    pytester.makepyfile(
        test_correct=body.format(),
        test_planted="INVALIDATE = False\n" + textwrap.dedent(body.format()),
    )
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*the block did not invalidate what it made stale:",
            "*lot:1: not invalidated",
            "*cache effects of the block: none",
        ]
    )


def test_assert_invalidated_without_with_fails_the_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_forgot_with="""
        INVALIDATE = False

        def test_bare_call(cachesync, client, read):
            read()
            cachesync.assert_invalidated("lot:1")
            client.put("/lots/1", json={"price": 9})

        def test_kept_but_not_entered(cachesync, client, read):
            read()
            check = cachesync.assert_invalidated("lot:*")
            client.put("/lots/1", json={"price": 9})
            assert check is not None
        """
    )
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=2, errors=2)
    result.stdout.fnmatch_lines(
        [
            "*assert_invalidated(...) checks the block of a `with` statement; these calls had*",
            "*assert_invalidated('lot:1')",
            "*assert_invalidated('lot:*')",
        ]
    )


def test_check_ttl_policy_from_argument_and_marker(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_policy="""
        import pytest

        TTL = 300

        def test_argument(cachesync_spy, cachesync, read):
            read()
            cachesync.check_ttl_policy({"lot:*": 600})
            cachesync.check_ttl_policy("lot:*=10")

        def test_spy_set_up_after_the_write(cachesync, read):
            read()
            cachesync.check_ttl_policy({"lot:*": 10})

        @pytest.mark.cachesync(ttl_bounds={"lot:*": 60})
        def test_marker(cachesync, read):
            read()
            cachesync.check_ttl_policy()
        """
    )
    result = pytester.runpytest("-p", "no:randomly")
    # The marker's bound is also checked at teardown: one failure and one teardown error.
    result.assert_outcomes(failed=3, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*cache keys break the TTL policy:",
            "*lot:1: written with TTL 300 s, bound 10 s",
        ]
    )
    result.stdout.fnmatch_lines(["*lot:1: written with TTL 300 s, bound 60 s"])
    # Read back from the server: 300 s within the write's own millisecond, else a little less.
    result.stdout.re_match_lines([r".*lot:1: TTL left (300|29\d(\.\d+)?) s, bound 10 s"])


def test_ttl_bounds_are_checked_at_teardown(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_long="""
        TTL = 300

        def test_writes_long_ttl(read):
            assert read()["price"] == 2
        """,
        test_short="""
        import pytest

        def test_writes_short_ttl(read):
            read()

        def test_no_redis():
            pass

        @pytest.mark.cachesync(ttl_bounds="lot:*=5")
        def test_marker_is_stricter(read):
            read()
        """,
    )
    result = pytester.runpytest("-p", "no:randomly", "--cachesync-ttl-bounds", "lot:*=10")
    result.assert_outcomes(passed=4, errors=2)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_writes_long_ttl*",
            "*lot:1: written with TTL 300 s, bound 10 s",
        ]
    )
    result.stdout.fnmatch_lines(["*lot:1: written with TTL 10 s, bound 5 s"])
    result.stdout.fnmatch_lines(["*ttl-bounds=lot:*=10 (cli)*"])


def test_bad_ttl_bounds_option_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest("--cachesync-ttl-bounds", "lot:*=soon")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*option --cachesync-ttl-bounds: TTL bound for 'lot:*' is not a number*"]
    )


STRICT = """
def test_update_then_read(cachesync_client):
    assert cachesync_client.get("/lots/1").status_code == 200
    cachesync_client.put("/lots/1", json={"price": 9})
    assert cachesync_client.get("/lots/1").status_code == 200
"""


def test_strict_mode_finds_a_missing_invalidation(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_correct=STRICT, test_planted="INVALIDATE = False\n" + STRICT)
    plain = pytester.runpytest("-p", "no:randomly")
    plain.assert_outcomes(passed=2)
    strict = pytester.runpytest("-p", "no:randomly", "--cachesync-oracle")
    strict.assert_outcomes(passed=1, failed=1)
    strict.stdout.fnmatch_lines(
        [
            "*stale read beyond the allowed staleness:",
            "*GET /lots/1: stale for * (allowed: 0 s)",
            "*served from the cache by:",
            "*lot:1  (pattern lot:*",
            "FAILED test_planted.py::test_update_then_read - AssertionError*",
        ]
    )
    strict.stdout.fnmatch_lines(["*oracle=on (cli)*"])


def test_strict_from_marker_and_off_by_marker(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_planted="""
        import pytest
        from pytest_cachesync import OracleClient

        INVALIDATE = False

        @pytest.mark.cachesync(oracle=True)
        def test_marked_strict(cachesync_client):
            assert isinstance(cachesync_client, OracleClient)
            cachesync_client.get("/lots/1")
            cachesync_client.put("/lots/1", json={"price": 9})
            cachesync_client.get("/lots/1")

        @pytest.mark.cachesync(oracle=False)
        def test_marked_plain(cachesync_client):
            assert not isinstance(cachesync_client, OracleClient)
            cachesync_client.get("/lots/1")
            cachesync_client.put("/lots/1", json={"price": 9})
            assert cachesync_client.get("/lots/1").get_json()["price"] == 2
        """
    )
    result = pytester.runpytest("-p", "no:randomly", "-o", "cachesync_oracle=true")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["FAILED *test_marked_strict - AssertionError: stale read*"])


def test_allowed_staleness_from_marker_and_option(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_budget="""
        import pytest

        INVALIDATE = False
        TTL = 30

        @pytest.mark.cachesync(staleness=10)
        def test_within_budget(cachesync_clock, cachesync_client):
            cachesync_client.get("/lots/1")
            cachesync_client.put("/lots/1", json={"price": 9})
            cachesync_clock.advance(9)
            assert cachesync_client.get("/lots/1").get_json()["price"] == 2

        @pytest.mark.cachesync(staleness=10)
        def test_beyond_budget(cachesync_clock, cachesync_client):
            cachesync_client.get("/lots/1")
            cachesync_client.put("/lots/1", json={"price": 9})
            cachesync_clock.advance(15)
            cachesync_client.get("/lots/1")

        def test_option_budget(cachesync_clock, cachesync_client):
            cachesync_client.get("/lots/1")
            cachesync_client.put("/lots/1", json={"price": 9})
            cachesync_clock.advance(15)
            cachesync_client.get("/lots/1")
        """
    )
    # A staleness budget is the oracle's, for reads: it exempts no missing invalidation, so the
    # planted one is exempted explicitly.
    result = pytester.runpytest(
        "-p",
        "no:randomly",
        "--cachesync-oracle",
        "--cachesync-allowed-staleness",
        "20",
        "--cachesync-invalidation-exempt",
        "PUT /lots/<lot_id> -> lot:*",
    )
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*GET /lots/1: stale for 15 s (allowed: 10 s)",
            "FAILED *test_beyond_budget*",
        ]
    )


def test_client_without_app_fixture_is_a_clear_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_no_app="""
        import pytest

        @pytest.fixture
        def app():
            return object()

        def test_needs_a_flask_app(cachesync_client):
            pass
        """,
    )
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*the `app` fixture returned object, neither a Flask application*"]
    )


def test_staleness_checks_refuse_to_run_without_patterns(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\n")
    pytester.makepyfile(
        test_unconfigured="""
        def test_assert_fresh(cachesync, read):
            cachesync.assert_fresh(read)

        def test_strict_client(cachesync_client):
            pass

        def test_spy_counts_commands(cachesync_spy, read):
            read()
            cachesync_spy.assert_commands_at_most(2)
        """
    )
    result = pytester.runpytest("-p", "no:randomly", "--cachesync-oracle")
    result.assert_outcomes(passed=1, failed=1, errors=1)
    result.stdout.fnmatch_lines(
        ["*no cache patterns are configured*assert_fresh would check nothing*"]
    )
    result.stdout.fnmatch_lines(["*cachesync_cache_patterns = users:* user:* parking_lot*"])


def test_client_without_any_app_fixture_says_how_to_write_one(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest("")
    pytester.makepyfile("def test_needs_an_app(cachesync_client):\n    pass\n")
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*cachesync_client needs an `app` fixture returning your Flask or ASGI application*"]
    )


OPS_ROUTE = """
import pytest

INVALIDATE = False
# These tests are about the oracle's replay: the planted missing invalidation is intended.
pytestmark = pytest.mark.cachesync(invalidation_exempt="PUT /lots/<lot_id> -> lot:*")


@pytest.fixture
def app(app):
    # The same cached read under an ops path.
    app.add_url_rule("/ops/lots/<int:lot_id>", "ops_lot", app.view_functions["get_lot"])
    return app
"""


def test_oracle_skip_passes_matching_paths_through_unreplayed(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_ops=OPS_ROUTE
        + """
def test_skipped_path(cachesync_client):
    cachesync_client.get("/ops/lots/1")
    cachesync_client.put("/lots/1", json={"price": 9})
    stale = cachesync_client.get("/ops/lots/1?verbose=1")
    assert stale.get_json()["price"] == 2
    assert cachesync_client.checks == []
    assert cachesync_client.skipped == ["/ops/lots/1", "/ops/lots/1?verbose=1"]


def test_other_paths_are_still_replayed(cachesync_client):
    cachesync_client.get("/ops/lots/1")
    cachesync_client.put("/lots/1", json={"price": 9})
    cachesync_client.get("/lots/1")
"""
    )
    result = pytester.runpytest(
        "-p", "no:randomly", "--cachesync-oracle", "--cachesync-oracle-skip", "/ops/*,/health/*"
    )
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*GET /lots/1: stale for * (allowed: 0 s)",
            "FAILED *test_other_paths_are_still_replayed - AssertionError*",
        ]
    )
    result.stdout.fnmatch_lines(["*oracle-skip=/ops/* /health/* (cli)*"])


def test_oracle_skip_precedence_cli_over_env_over_ini(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makeini("[pytest]\ncachesync_cache_patterns = lot:*\ncachesync_oracle_skip = /ops/*\n")
    pytester.makepyfile(
        test_ops=OPS_ROUTE
        + """
def test_stale_ops_read(cachesync_client):
    cachesync_client.get("/ops/lots/1")
    cachesync_client.put("/lots/1", json={"price": 9})
    cachesync_client.get("/ops/lots/1")
"""
    )
    from_ini = pytester.runpytest("--cachesync-oracle")
    from_ini.assert_outcomes(passed=1)
    from_ini.stdout.fnmatch_lines(["*oracle-skip=/ops/* (ini)*"])

    monkeypatch.setenv("CACHESYNC_ORACLE_SKIP", "/health/*")
    from_env = pytester.runpytest("--cachesync-oracle")
    from_env.assert_outcomes(failed=1)
    from_env.stdout.fnmatch_lines(["*oracle-skip=/health/* (env)*", "*GET /ops/lots/1: stale*"])

    from_cli = pytester.runpytest("--cachesync-oracle", "--cachesync-oracle-skip", "/ops/lots/*")
    from_cli.assert_outcomes(passed=1)
    from_cli.stdout.fnmatch_lines(["*oracle-skip=/ops/lots/* (cli)*"])

    # An empty value on the command line clears the patterns of the lower sources.
    cleared = pytester.runpytest("--cachesync-oracle", "--cachesync-oracle-skip=")
    cleared.assert_outcomes(failed=1)
    cleared.stdout.fnmatch_lines(["*oracle-skip=none (cli)*"])


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (
            ["--cachesync-oracle-skip", "admin/*"],
            None,
            "*option --cachesync-oracle-skip: request path patterns start with '/'"
            " (e.g. /admin/*), got 'admin/*'.",
        ),
        (
            [],
            "/health/* http://localhost/admin/*",
            "*environment variable CACHESYNC_ORACLE_SKIP: request path patterns start with '/'"
            "*got 'http://localhost/admin/*'.",
        ),
        (
            ["-o", "cachesync_oracle_skip=*/dashboard"],
            None,
            "*ini option cachesync_oracle_skip: request path patterns start with '/'*",
        ),
    ],
)
def test_bad_oracle_skip_is_a_usage_error(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    env: str | None,
    message: str,
) -> None:
    if env is not None:
        monkeypatch.setenv("CACHESYNC_ORACLE_SKIP", env)
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


def test_replay_log_records_are_marked(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_logs="""
        import logging

        from pytest_cachesync.staleness.oracle import REPLAY_LOG_ATTRIBUTE


        def test_replay_lines_are_told_apart(app, cachesync_client, caplog):
            log = logging.getLogger("toyapp.requests")
            app.before_request(lambda: log.warning("GET seen"))
            cachesync_client.get("/lots/1")
            marked = [getattr(r, REPLAY_LOG_ATTRIBUTE, False) for r in caplog.records]
            assert marked == [False, True]
            logging.getLogger("toyapp.requests").warning("after the replay")
            assert not hasattr(caplog.records[-1], REPLAY_LOG_ATTRIBUTE)
        """
    )
    result = pytester.runpytest("--cachesync-oracle")
    result.assert_outcomes(passed=1)


def test_the_replay_starts_from_the_state_the_request_saw(pytester: pytest.Pytester) -> None:
    # A counter the request moves (a rate limit reaching its limit) must not make the replay
    # answer differently: both runs start from the same state.
    pytester.makepyfile(
        test_counter="""
        import flask
        import pytest


        @pytest.fixture
        def app(app, cachesync):
            @app.before_request
            def limit():
                used = cachesync.redis.incr(cachesync.key("hits"))
                if used > 2:
                    return flask.jsonify(error="rate limit exceeded"), 429
                return None

            return app


        def test_at_the_limit(cachesync_client):
            assert cachesync_client.get("/lots/1").status_code == 200
            assert cachesync_client.get("/lots/1").status_code == 200
            assert cachesync_client.get("/lots/1").status_code == 429
            assert len(cachesync_client.checks) == 3
        """
    )
    result = pytester.runpytest("--cachesync-oracle")
    result.assert_outcomes(passed=1)
