"""Fixed-window rate limit per client and hour: ``rate_limit:{who}:{window}`` with INCR + EXPIRE."""

from __future__ import annotations

import math

import redis
from flask import Flask, Response, current_app, request

from sample_app import cache_keys, clock
from sample_app.cache import get_cache
from sample_app.errors import error_response
from sample_app.security import token_claims

_EXEMPT_BLUEPRINTS = frozenset({"health"})


def _client_id() -> str:
    claims = token_claims()
    if claims is not None:
        return f"user:{claims.user_id}"
    return f"ip:{request.remote_addr or 'unknown'}"


def check_rate_limit() -> Response | None:
    limit = int(current_app.config["RATE_LIMIT_PER_HOUR"])
    if limit == 0 or request.blueprint in _EXEMPT_BLUEPRINTS:
        return None
    now = clock.timestamp()
    window = int(now // cache_keys.RATE_LIMIT_WINDOW_SECONDS)
    window_end = (window + 1) * cache_keys.RATE_LIMIT_WINDOW_SECONDS
    retry_after = max(1, math.ceil(window_end - now))
    cache = get_cache()
    key = cache.key(cache_keys.rate_limit(_client_id(), window))

    def count(client: redis.Redis) -> int:
        pipe = client.pipeline(transaction=True)
        pipe.incr(key)
        pipe.expire(key, retry_after)
        return int(pipe.execute()[0])

    used = cache.guarded(count, None)
    if used is None or used <= limit:
        return None  # Redis down: requests are not limited rather than refused
    response = error_response(
        429, "rate limit exceeded", {"limit_per_hour": limit, "retry_after": retry_after}
    )
    response.headers["Retry-After"] = str(retry_after)
    return response


def init_app(app: Flask) -> None:
    app.before_request(check_rate_limit)
