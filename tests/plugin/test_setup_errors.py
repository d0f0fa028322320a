"""A set-up error of the plugin is printed once, not once per test."""

from __future__ import annotations

import pytest


@pytest.mark.usefixtures("default_backend")
def test_a_refused_configuration_is_shown_in_full_once(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\ncachesync_oracle = true\n")
    pytester.makeconftest(
        """
        import flask
        import pytest

        @pytest.fixture
        def app():
            return flask.Flask("app")
        """
    )
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.parametrize("i", range(3))
        def test_client(cachesync_client, i):
            pass
        """
    )
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(errors=3)
    # The errors section; the short summary repeats the first line of each message, and under CI
    # (the CI variable set) pytest does not cut those repeats to one line.
    output = result.stdout.str().split("short test summary info")[0]
    # In full once (not chained twice), then one line per test naming the first.
    assert output.count("cachesync_cache_patterns = users:* user:* parking_lot:*") == 1
    assert "During handling of the above exception" not in output
    assert output.count("the same set-up error as at") == 2
