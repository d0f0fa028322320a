"""pytest hooks and options of pytest-cachesync."""

from __future__ import annotations
