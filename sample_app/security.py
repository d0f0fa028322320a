"""Tokens, sessions and the ``login_required`` / ``admin_required`` decorators.

A token is an itsdangerous-signed ``{"sid", "uid", "ver", "iat"}``, accepted while all of:

* it was issued less than 12 h ago by the app clock;
* its user still exists (ids are never reused, so a deleted user's token names nobody) and
  ``ver`` equals the user's ``token_version``: a password or role change, deleting the user
  and "log out everywhere" raise the version and so kill every older token;
* its session was not ended by a logout (``revoked_sessions`` rows);
* ``user_session:{sid}`` exists in Redis (12 h TTL), when Redis answers.

The database checks run on every request, so revocation holds while Redis is down: only the
Redis session check is skipped then, never the others.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

import redis
from flask import current_app, g, request
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import delete, exists, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from sample_app import cache_keys, clock
from sample_app.cache import CacheLayer, get_cache
from sample_app.db import get_session
from sample_app.errors import ApiError
from sample_app.models import RevokedSession, User

P = ParamSpec("P")
R = TypeVar("R")
_SALT = "sample-app-auth-token"
_CLOCK_SKEW_SECONDS = 60


@dataclass(frozen=True)
class Claims:
    session_id: str
    user_id: int
    version: int
    issued_at: float


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt=_SALT)


def open_session(user: User) -> str:
    """Store a 12 h session for ``user`` and return its token."""
    claims = Claims(secrets.token_urlsafe(18), user.id, user.token_version, clock.timestamp())
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
        {
            "sid": claims.session_id,
            "uid": claims.user_id,
            "ver": claims.version,
            "iat": claims.issued_at,
        }
    )
    assert isinstance(token, str)
    return token


def close_session(session: Session, claims: Claims) -> None:
    """End one session: recorded in the database first, so it holds whatever Redis does."""
    now = clock.now()
    expires = dt.datetime.fromtimestamp(
        claims.issued_at + cache_keys.SESSION_TTL_SECONDS + _CLOCK_SKEW_SECONDS, dt.UTC
    )
    # Rows of tokens that have expired anyway are pruned here, so the table stays small.
    session.execute(delete(RevokedSession).where(RevokedSession.expires_at < now))
    if session.get(RevokedSession, claims.session_id) is None:
        session.add(
            RevokedSession(session_id=claims.session_id, user_id=claims.user_id, expires_at=expires)
        )
    try:
        session.commit()
    except IntegrityError:
        session.rollback()  # a concurrent logout of the same token recorded it first
    cache = get_cache()
    key = cache.key(cache_keys.user_session(claims.session_id))
    active = cache.key(cache_keys.ACTIVE_USERS)

    def drop(client: redis.Redis) -> None:
        pipe = client.pipeline(transaction=True)
        pipe.delete(key)
        pipe.srem(active, str(claims.user_id))
        pipe.execute()

    cache.guarded(drop, None)


def revoke_all_tokens(session: Session, user_id: int) -> None:
    """Kill every token of ``user_id`` issued so far, once ``session`` commits."""
    session.execute(
        update(User)
        .where(User.id == user_id)
        .values(token_version=User.token_version + 1)
        .execution_options(synchronize_session="fetch")
    )


def drop_sessions(cache: CacheLayer, keep: Callable[[int | None], bool]) -> int:
    """Delete the ``user_session:*`` keys whose owner ``keep`` refuses; number deleted.

    ``keep`` gets the owner's user id, or None for a key that names none. The keys only save
    the database a look-up: a token whose user or version is gone is refused without them.
    """

    def drop(client: redis.Redis) -> int:
        dropped = 0
        match = cache_keys.escape_glob(cache.prefix) + "user_session:*"
        for key in client.scan_iter(match=match, count=500):
            raw = client.get(key)
            try:
                owner = json.loads(raw)["user_id"] if raw is not None else None
            except (ValueError, KeyError, TypeError):
                owner = None
            if not keep(owner if isinstance(owner, int) else None):
                dropped += int(client.unlink(key))
        active = cache.key(cache_keys.ACTIVE_USERS)
        for member in client.smembers(active):
            text = member.decode() if isinstance(member, bytes) else str(member)
            if not keep(int(text) if text.isdigit() else None):
                client.srem(active, member)
        return dropped

    return cache.guarded(drop, 0, needed=True)


def drop_sessions_of(user_id: int) -> int:
    """Delete ``user_id``'s ``user_session:*`` keys (after its tokens were revoked)."""
    return drop_sessions(get_cache(), lambda owner: owner != user_id)


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
    sid, uid, ver, iat = data.get("sid"), data.get("uid"), data.get("ver"), data.get("iat")
    if not isinstance(sid, str) or not isinstance(uid, int) or not isinstance(ver, int):
        return None
    if any(isinstance(v, bool) for v in (uid, ver, iat)) or not isinstance(iat, int | float):
        return None
    return Claims(sid, uid, ver, float(iat))


def _redis_session_alive(claims: Claims) -> bool:
    """The Redis session check; True while Redis cannot answer (the database decides then)."""
    cache = get_cache()
    key = cache.key(cache_keys.user_session(claims.session_id))
    unreachable: tuple[bool, Any] = (False, None)
    reachable, raw = cache.guarded(lambda c: (True, c.get(key)), unreachable)
    if not reachable:
        return True
    if raw is None:
        return False
    try:
        stored = json.loads(raw)
    except ValueError:
        return False
    return isinstance(stored, dict) and stored.get("user_id") == claims.user_id


def _valid_user(claims: Claims) -> User | None:
    """The token's user if it exists, has the token's version and the session is not revoked."""
    revoked = exists().where(RevokedSession.session_id == claims.session_id)
    row = (
        get_session()
        .execute(
            select(User, revoked)
            .where(User.id == claims.user_id)
            .execution_options(populate_existing=True)
        )
        .first()
    )
    if row is None:
        return None
    user, is_revoked = row
    if is_revoked or user.token_version != claims.version:
        return None
    assert isinstance(user, User)
    return user


def authenticate() -> User:
    """The request's user, or a 401 ``ApiError``."""
    cached_user = g.get("current_user")
    if isinstance(cached_user, User):
        return cached_user
    claims = token_claims()
    user = None
    if claims is not None:
        age = clock.timestamp() - claims.issued_at
        fresh = -_CLOCK_SKEW_SECONDS <= age <= cache_keys.SESSION_TTL_SECONDS
        if fresh and _redis_session_alive(claims):
            user = _valid_user(claims)
    if claims is None or user is None:
        raise ApiError(401, "authentication required", "send 'Authorization: Bearer <token>'")
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
