"""pytest-cachesync: test apps that cache SQL data in Redis."""

from __future__ import annotations

__version__ = "0.1.0"
