"""Reset the system: database rows (admins kept) and the Redis keys derived from them."""

from __future__ import annotations

import json
from typing import Any, cast

import redis
from sqlalchemy import CursorResult, delete, func, select
from sqlalchemy.orm import Session

from sample_app import cache_keys
from sample_app.cache import CacheLayer
from sample_app.models import ROLE_ADMIN, ParkingLot, ParkingSpot, Reservation, User

RESET_PATTERNS = (*cache_keys.CACHE_PATTERNS, "daily_*")


def row_counts(session: Session) -> dict[str, int]:
    models: dict[str, Any] = {
        "users": User,
        "parking_lots": ParkingLot,
        "parking_spots": ParkingSpot,
        "reservations": Reservation,
    }
    return {
        name: int(session.scalar(select(func.count()).select_from(model)) or 0)
        for name, model in models.items()
    }


def _drop_sessions_except(cache: CacheLayer, keep_user_ids: set[int]) -> int:
    """Delete ``user_session:*`` keys of users not in ``keep_user_ids``; number deleted."""

    def drop(client: redis.Redis) -> int:
        dropped = 0
        match = cache_keys.escape_glob(cache.prefix) + "user_session:*"
        for key in client.scan_iter(match=match, count=500):
            raw = client.get(key)
            try:
                owner = json.loads(raw)["user_id"] if raw is not None else None
            except (ValueError, KeyError, TypeError):
                owner = None
            if owner not in keep_user_ids:
                dropped += int(client.unlink(key))
        active = cache.key(cache_keys.ACTIVE_USERS)
        for member in client.smembers(active):
            text = member.decode() if isinstance(member, bytes) else str(member)
            if not text.isdigit() or int(text) not in keep_user_ids:
                client.srem(active, member)
        return dropped

    return cache.guarded(drop, 0, needed=True)


def reset_system(session: Session, cache: CacheLayer) -> dict[str, Any]:
    """Delete every row except admin users, then clear the cache; a report of what was done."""
    deleted: dict[str, int] = {}
    for name, statement in (
        ("reservations", delete(Reservation)),
        ("parking_spots", delete(ParkingSpot)),
        ("parking_lots", delete(ParkingLot)),
        ("users", delete(User).where(User.role != ROLE_ADMIN)),
    ):
        result = cast(
            CursorResult[Any],
            session.execute(statement.execution_options(synchronize_session=False)),
        )
        deleted[name] = int(result.rowcount)
    session.commit()
    session.expunge_all()
    admins = set(session.scalars(select(User.id).where(User.role == ROLE_ADMIN)))
    cleared = cache.clear(RESET_PATTERNS)
    return {
        "deleted_rows": deleted,
        "admins_kept": len(admins),
        "cache_cleared": cleared,
        "sessions_dropped": _drop_sessions_except(cache, admins),
        "redis": "ok" if cleared is not None else "unavailable (cache flushed when it is back)",
    }
