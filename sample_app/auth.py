"""Register, login (token), logout and logout everywhere."""

from __future__ import annotations

import re

from flask import Blueprint, Response, jsonify
from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from werkzeug.security import check_password_hash, generate_password_hash

from sample_app import cache_keys
from sample_app.cache import invalidate
from sample_app.db import get_session
from sample_app.errors import ApiError, conflict
from sample_app.models import ROLE_USER, User
from sample_app.security import (
    authenticate,
    close_session,
    current_claims,
    drop_sessions_of,
    login_required,
    open_session,
    revoke_all_tokens,
)
from sample_app.serializers import user_to_dict
from sample_app.validation import EMAIL_PATTERN, json_body

bp = Blueprint("auth", __name__, url_prefix="/auth")
USERNAME_PATTERN = re.compile(r"^[A-Za-z0-9_.-]+$")


@bp.post("/register")
def register() -> tuple[Response, int]:
    body = json_body(
        required=("username", "email", "password"), optional=("vehicle_number", "phone")
    )
    username = body.string("username", min_len=3, max_len=80, pattern=USERNAME_PATTERN)
    email = body.string("email", max_len=254, pattern=EMAIL_PATTERN).lower()
    password = body.string("password", min_len=6, max_len=128)
    session = get_session()
    taken = session.scalar(
        select(User.id).where(or_(User.username == username, User.email == email))
    )
    if taken is not None:
        raise conflict("username or email already registered")
    user = User(
        username=username,
        email=email,
        password_hash=generate_password_hash(password),
        role=ROLE_USER,
        vehicle_number=body.optional_string("vehicle_number", max_len=32),
        phone=body.optional_string("phone", max_len=32),
    )
    session.add(user)
    invalidate(cache_keys.USERS_ALL)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise conflict("username or email already registered") from None
    return jsonify(user_to_dict(user)), 201


@bp.post("/login")
def login() -> Response:
    body = json_body(required=("username", "password"))
    username = body.string("username", max_len=80)
    password = body.string("password", max_len=128)
    user = get_session().scalar(select(User).where(User.username == username))
    if user is None or not check_password_hash(user.password_hash, password):
        raise ApiError(401, "invalid username or password")
    token = open_session(user)
    return jsonify({"token": token, "token_type": "Bearer", "user": user_to_dict(user)})


@bp.post("/logout")
@login_required
def logout() -> Response:
    close_session(get_session(), current_claims())
    return jsonify({"message": "logged out"})


@bp.post("/logout-everywhere")
def logout_everywhere() -> Response:
    """End every session of the caller, this one included (a stolen token dies too)."""
    user_id = authenticate().id
    session = get_session()
    revoke_all_tokens(session, user_id)
    session.commit()
    drop_sessions_of(user_id)
    return jsonify({"message": "logged out everywhere"})
