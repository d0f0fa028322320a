"""Inner runs of the integration tests reuse the plugin suite's backends."""

from __future__ import annotations

from tests.plugin.conftest import backend, default_backend  # noqa: F401  (fixtures)
