"""Tokens, Redis-backed sessions and the ``login_required`` / ``admin_required`` decorators.

A token is an itsdangerous-signed ``{"sid", "uid", "iat"}``. It is valid while
``user_session:{sid}`` exists in Redis (12 h TTL). While Redis is unreachable, a token is accepted
on its signature alone if it was issued less than 12 h ago by the app clock.
"""

from __future__ import annotations

import functools
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

import redis
from flask import current_app, g, request
from itsdangerous import BadSignature, URLSafeSerializer

from sample_app import cache_keys, clock
from sample_app.cache import get_cache
from sample_app.db import get_session
from sample_app.errors import ApiError
from sample_app.models import User

P = ParamSpec("P")
R = TypeVar("R")
_SALT = "sample-app-auth-token"
_CLOCK_SKEW_SECONDS = 60


@dataclass(frozen=True)
class Claims:
    session_id: str
    user_id: int
    issued_at: float


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt=_SALT)


def open_session(user: User) -> str:
    """Store a 12 h session for ``user`` and return its token."""
    claims = Claims(secrets.token_urlsafe(18), user.id, clock.timestamp())
    cache = get_cache()
    key = cache.key(cache_keys.user_session(claims.session_id))
    active = cache.key(cache_keys.ACTIVE_USERS)
    value = json.dumps({"user_id": user.id, "issued_at": claims.issued_at})

    def store(client: redis.Redis) -> None:
        pipe = client.pipeline(transaction=True)
        pipe.set(key, value, ex=cache_keys.SESSION_TTL_SECONDS)
        pipe.sadd(active, str(user.id))
        pipe.expire(active, cache_keys.SESSION_TTL_SECONDS)
        pipe.execute()

    cache.guarded(store, None)
    token = _serializer().dumps(
        {"sid": claims.session_id, "uid": claims.user_id, "iat": claims.issued_at}
    )
    assert isinstance(token, str)
    return token


def close_session(claims: Claims) -> None:
    cache = get_cache()
    key = cache.key(cache_keys.user_session(claims.session_id))
    active = cache.key(cache_keys.ACTIVE_USERS)

    def drop(client: redis.Redis) -> None:
        pipe = client.pipeline(transaction=True)
        pipe.delete(key)
        pipe.srem(active, str(claims.user_id))
        pipe.execute()

    cache.guarded(drop, None)


def token_claims() -> Claims | None:
    """Claims of the request's bearer token if its signature is valid (no session check)."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    try:
        data: Any = _serializer().loads(token.strip())
    except BadSignature:
        return None
    if not isinstance(data, dict):
        return None
    sid, uid, iat = data.get("sid"), data.get("uid"), data.get("iat")
    if not isinstance(sid, str) or isinstance(uid, bool) or not isinstance(uid, int):
        return None
    if isinstance(iat, bool) or not isinstance(iat, int | float):
        return None
    return Claims(sid, uid, float(iat))


def _session_alive(claims: Claims) -> bool:
    age = clock.timestamp() - claims.issued_at
    if age < -_CLOCK_SKEW_SECONDS or age > cache_keys.SESSION_TTL_SECONDS:
        return False
    cache = get_cache()
    key = cache.key(cache_keys.user_session(claims.session_id))
    unreachable: tuple[bool, Any] = (False, None)
    reachable, raw = cache.guarded(lambda c: (True, c.get(key)), unreachable)
    if not reachable:
        return True  # Redis down: signature and age decide (see module docstring)
    if raw is None:
        return False
    try:
        stored = json.loads(raw)
    except ValueError:
        return False
    return isinstance(stored, dict) and stored.get("user_id") == claims.user_id


def authenticate() -> User:
    """The request's user, or a 401 ``ApiError``."""
    cached_user = g.get("current_user")
    if isinstance(cached_user, User):
        return cached_user
    claims = token_claims()
    if claims is None or not _session_alive(claims):
        raise ApiError(401, "authentication required", "send 'Authorization: Bearer <token>'")
    user = get_session().get(User, claims.user_id)
    if user is None:
        raise ApiError(401, "authentication required", "the token's user no longer exists")
    g.current_user = user
    g.auth_claims = claims
    return user


def current_claims() -> Claims:
    claims = g.get("auth_claims")
    assert isinstance(claims, Claims), "current_claims() needs authenticate() first"
    return claims


def login_required(view: Callable[P, R]) -> Callable[P, R]:
    @functools.wraps(view)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        authenticate()
        return view(*args, **kwargs)

    return wrapper


def admin_required(view: Callable[P, R]) -> Callable[P, R]:
    @functools.wraps(view)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        if not authenticate().is_admin:
            raise ApiError(403, "admin role required")
        return view(*args, **kwargs)

    return wrapper
