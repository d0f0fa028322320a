"""The plugin's fixtures declare to pytest what they depend on, where that costs no time."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.usefixtures("backend")


def test_setup_plan_shows_the_stores_and_what_they_use(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_uses_both(cachesync):
            pass
        """
    )
    result = pytester.runpytest("--setup-plan")
    result.stdout.fnmatch_lines_random(
        [
            "*SETUP    S _cachesync_keyspace (fixtures used: _cachesync_config)",
            "*SETUP    S cachesync_metadata (fixtures used: _cachesync_runtime)",
            "*SETUP    S _cachesync_sql (fixtures used: _cachesync_config, cachesync_metadata)",
            "*SETUP    F cachesync (fixtures used: *_cachesync_keyspace, _cachesync_sql)",
        ]
    )
    assert result.ret == 0


def test_a_function_scoped_metadata_override_is_a_scope_error(pytester: pytest.Pytester) -> None:
    # Looked up on demand, a per-test MetaData would silently serve the whole session.
    pytester.makeconftest(
        """
        import pytest
        import sqlalchemy as sa

        @pytest.fixture
        def cachesync_metadata():
            return sa.MetaData()
        """
    )
    pytester.makepyfile(
        """
        def test_db(cachesync_db):
            pass
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*ScopeMismatch*cachesync_metadata*"])
