"""Data for the Redis dashboard: keys per pattern with TTLs, hit ratios, memory."""

from __future__ import annotations

from typing import Any

import redis

from sample_app import cache_keys
from sample_app.cache import CacheLayer

KEYS_LISTED_PER_PATTERN = 50


def _memory(client: redis.Redis) -> dict[str, Any]:
    try:
        info = client.info("memory")
    except redis.ResponseError:
        return {}
    return {k: info[k] for k in ("used_memory", "used_memory_human") if k in info}


def snapshot(cache: CacheLayer) -> dict[str, Any]:
    """Everything the dashboard shows; ``redis.status`` is "unavailable" when Redis fails."""
    data: dict[str, Any] = {
        "key_prefix": cache.prefix,
        "stats": {"patterns": cache.stats.snapshot(), "totals": cache.stats.totals()},
        "cache_patterns": list(cache_keys.CACHE_PATTERNS),
        "state_patterns": list(cache_keys.STATE_PATTERNS),
    }

    def read(client: redis.Redis) -> dict[str, Any]:
        patterns: dict[str, Any] = {}
        for pattern in cache_keys.CACHE_PATTERNS + cache_keys.STATE_PATTERNS:
            total, listed = cache.scan_keys(pattern, KEYS_LISTED_PER_PATTERN)
            patterns[pattern] = {
                "count": total,
                "keys": [{"key": key, "ttl_ms": ttl} for key, ttl in listed],
            }
        return {"status": "ok", "patterns": patterns, "memory": _memory(client)}

    data["redis"] = cache.guarded(read, {"status": "unavailable", "patterns": {}, "memory": {}})
    return data
