"""Ops endpoints: clear the cache, reset the database, Redis dashboard, database info."""

from __future__ import annotations

from flask import Blueprint, Response, abort, current_app, jsonify, render_template, request

from sample_app import dashboard
from sample_app.cache import get_cache
from sample_app.db import get_session
from sample_app.errors import ApiError
from sample_app.reset import reset_system, row_counts
from sample_app.security import admin_required

bp = Blueprint("admin", __name__, url_prefix="/admin")
debug_bp = Blueprint("debug", __name__, url_prefix="/debug")


def _production() -> bool:
    return bool(current_app.config["APP_ENV"] == "production")


@bp.post("/clear-cache")
@admin_required
def clear_cache() -> Response:
    cleared = get_cache().clear()
    if cleared is None:
        return jsonify(
            {
                "cleared": None,
                "total": 0,
                "redis": "unavailable",
                "details": "the cache will be flushed as soon as Redis answers again",
            }
        )
    return jsonify({"cleared": cleared, "total": sum(cleared.values()), "redis": "ok"})


@bp.post("/reset-database")
@admin_required
def reset_database() -> Response:
    if _production():
        raise ApiError(403, "reset-database is disabled when APP_ENV=production")
    return jsonify(reset_system(get_session(), get_cache()))


def _wants_html() -> bool:
    wanted = request.args.get("format")
    if wanted is not None:
        if wanted not in ("json", "html"):
            raise ApiError(400, "format must be 'json' or 'html'", {"field": "format"})
        return wanted == "html"
    accept = request.accept_mimetypes
    return accept["text/html"] > accept["application/json"]


@bp.get("/redis-dashboard")
def redis_dashboard() -> Response | str:
    # The HTML page is a data-free shell: its script fetches the JSON with the admin's token,
    # which a browser navigation cannot send.
    if _wants_html():
        return render_template("dashboard.html")
    return _dashboard_json()


@admin_required
def _dashboard_json() -> Response:
    return jsonify(dashboard.snapshot(get_cache()))


@debug_bp.get("/database-info")
@admin_required
def database_info() -> Response:
    if _production():
        abort(404)
    database = get_session().get_bind()
    return jsonify(
        {"dialect": database.dialect.name, "app_env": current_app.config["APP_ENV"]}
        | {"row_counts": row_counts(get_session())}
    )
