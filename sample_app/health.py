"""Health checks."""

from __future__ import annotations

import time

from flask import Blueprint, Response, jsonify

from sample_app.cache import get_cache

bp = Blueprint("health", __name__, url_prefix="/health")


@bp.get("/redis")
def redis_health() -> tuple[Response, int]:
    started = time.perf_counter()
    ok, problem = get_cache().ping()
    latency_ms = round((time.perf_counter() - started) * 1000, 3)
    if ok:
        return jsonify({"status": "ok", "latency_ms": latency_ms}), 200
    body = {"status": "unavailable", "error": "redis unavailable", "details": problem}
    return jsonify(body), 503
