"""Users: admin list, self-or-admin get/update, admin delete (releasing the user's spots).

A password or role change and a deletion end every session of the user: the tokens die with
the token version (or the row), and the ``user_session:*`` keys are deleted after the commit.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from werkzeug.security import generate_password_hash

from sample_app import booking, cache_keys, queries
from sample_app.cache import cached_response, invalidate
from sample_app.db import get_session
from sample_app.errors import ApiError, conflict, not_found
from sample_app.models import ROLES, Reservation, RevokedSession, User
from sample_app.security import (
    admin_required,
    authenticate,
    drop_sessions_of,
    revoke_all_tokens,
)
from sample_app.validation import EMAIL_PATTERN, json_body

bp = Blueprint("users", __name__, url_prefix="/users")


def _self_or_admin(user_id: int) -> User:
    me = authenticate()
    if me.id != user_id and not me.is_admin:
        raise ApiError(403, "you may only access your own account")
    return me


@bp.get("")
@admin_required
def list_users() -> Response:
    response = cached_response(
        cache_keys.USERS_ALL, lambda: queries.users_list(get_session()), "CACHE_USER_TTL"
    )
    assert response is not None  # a list, possibly empty, never None
    return response


@bp.get("/<id:user_id>")
def get_user(user_id: int) -> Response:
    _self_or_admin(user_id)
    response = cached_response(
        cache_keys.user(user_id),
        lambda: queries.user_detail(get_session(), user_id),
        "CACHE_USER_TTL",
    )
    if response is None:
        raise not_found("user", user_id)
    return response


@bp.route("/<id:user_id>", methods=["PUT", "PATCH"])
def update_user(user_id: int) -> Response:
    me = _self_or_admin(user_id)
    body = json_body(optional=("email", "password", "vehicle_number", "phone", "role"))
    session = get_session()
    user = session.get(User, user_id)
    if user is None:
        raise not_found("user", user_id)
    changes: dict[str, Any] = {}
    if "email" in body:
        changes["email"] = body.string("email", max_len=254, pattern=EMAIL_PATTERN).lower()
    if "password" in body:
        changes["password_hash"] = generate_password_hash(
            body.string("password", min_len=6, max_len=128)
        )
    for field in ("vehicle_number", "phone"):
        if field in body:
            changes[field] = body.optional_string(field, max_len=32)
    if "role" in body:
        if not me.is_admin:
            raise ApiError(403, "only an admin may change roles")
        role = body.string("role", max_len=10)
        if role not in ROLES:
            raise ApiError(400, f"'role' must be one of {', '.join(ROLES)}", {"field": "role"})
        changes["role"] = role
    if "email" in changes:
        clash = session.scalar(
            select(User.id).where(User.email == changes["email"], User.id != user_id)
        )
        if clash is not None:
            raise conflict("email already registered")
    revokes = "password_hash" in changes or changes.get("role", user.role) != user.role
    for field, value in changes.items():
        setattr(user, field, value)
    if revokes:
        revoke_all_tokens(session, user_id)
    invalidate(cache_keys.user(user_id), cache_keys.USERS_ALL)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise conflict("email already registered") from None
    if revokes:
        drop_sessions_of(user_id)
    return jsonify(queries.user_detail(session, user_id))


@bp.delete("/<id:user_id>")
@admin_required
def delete_user(user_id: int) -> Response:
    if authenticate().id == user_id:
        raise conflict("an admin cannot delete their own account")
    session = get_session()
    user = session.get(User, user_id)
    if user is None:
        raise not_found("user", user_id)
    active = session.scalars(
        select(Reservation).where(Reservation.user_id == user_id, Reservation.end_at.is_(None))
    ).all()
    released = [booking.release(session, r).id for r in active]
    # Keep the reservation history without relying on the database's ON DELETE rules.
    session.execute(
        update(Reservation)
        .where(Reservation.user_id == user_id)
        .values(user_id=None)
        .execution_options(synchronize_session=False)
    )
    session.execute(delete(RevokedSession).where(RevokedSession.user_id == user_id))
    session.delete(user)
    invalidate(cache_keys.user(user_id), cache_keys.USERS_ALL)
    session.commit()
    drop_sessions_of(user_id)
    return jsonify({"deleted": user_id, "released_reservations": released})
