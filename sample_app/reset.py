"""Reset the system: database rows (admins kept) and the Redis keys derived from them."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import CursorResult, delete, func, select
from sqlalchemy.orm import Session

from sample_app import cache_keys
from sample_app.cache import CacheLayer
from sample_app.models import (
    ROLE_ADMIN,
    ParkingLot,
    ParkingSpot,
    Reservation,
    RevokedSession,
    User,
)
from sample_app.security import drop_sessions

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


def reset_system(session: Session, cache: CacheLayer) -> dict[str, Any]:
    """Delete every row except admin users, then clear the cache; a report of what was done."""
    deleted: dict[str, int] = {}
    # Logout records of the users about to go: bookkeeping, not rows to report.
    session.execute(
        delete(RevokedSession).where(
            RevokedSession.user_id.in_(select(User.id).where(User.role != ROLE_ADMIN))
        )
    )
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
        "sessions_dropped": drop_sessions(cache, lambda owner: owner in admins),
        "redis": "ok" if cleared is not None else "unavailable (cache flushed when it is back)",
    }
