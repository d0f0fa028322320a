"""Redis key names and the glob patterns that group them.

Cache patterns hold data derived from the database (safe to delete at any time); state patterns
hold sessions, rate-limit windows and counters, which are not rebuilt from the database.
"""

from __future__ import annotations

import datetime as dt
import fnmatch

USERS_ALL = "users:all"
PARKING_LOTS_ALL = "parking_lots:all"
ACTIVE_USERS = "active_users"

# Exact up to the separator: a bare prefix (``parking_lot*``) would also take in any state key
# that merely starts with the same word, and clear-cache would delete it.
CACHE_PATTERNS = ("users:*", "user:*", "parking_lot:*", "parking_lots:*")
STATE_PATTERNS = ("user_session:*", "active_users", "rate_limit:*", "daily_*")

SESSION_TTL_SECONDS = 12 * 3600
RATE_LIMIT_WINDOW_SECONDS = 3600


def user(user_id: int) -> str:
    return f"user:{user_id}"


def parking_lot(lot_id: int) -> str:
    return f"parking_lot:{lot_id}"


def user_session(session_id: str) -> str:
    return f"user_session:{session_id}"


def rate_limit(who: str, window: int) -> str:
    return f"rate_limit:{who}:{window}"


def daily(counter: str, day: dt.date) -> str:
    return f"daily_{counter}:{day.isoformat()}"


def pattern_of(key: str) -> str:
    """The pattern a key belongs to (the first one matching), or the key itself."""
    for pattern in CACHE_PATTERNS + STATE_PATTERNS:
        if fnmatch.fnmatchcase(key, pattern):
            return pattern
    return key


def escape_glob(text: str) -> str:
    """``text`` as a literal inside a Redis MATCH pattern."""
    return "".join("\\" + ch if ch in "*?[]\\" else ch for ch in text)
