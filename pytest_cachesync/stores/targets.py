"""The servers options name, parsed once where they enter: the address and its masked form."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit, urlunsplit

REDIS_SCHEMES = ("redis", "rediss", "unix")


def mask_redis_url(url: str) -> str:
    """The URL with its password replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    userinfo = f"{parts.username or ''}:***"
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{userinfo}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def redis_db_from_url(url: str) -> int:
    """The database number a redis-py URL selects (path for redis://, ``?db=`` for unix://)."""
    parts = urlsplit(url)
    query_db = parse_qs(parts.query).get("db")
    raw = query_db[0] if query_db else ""
    if not raw and parts.scheme != "unix":
        raw = parts.path.lstrip("/")
    if not raw:
        return 0
    try:
        return int(raw)
    except ValueError:
        raise ValueError(
            f"Redis URL {mask_redis_url(url)!r} names database {raw!r}, which is not a number"
        ) from None


@dataclass(frozen=True)
class RedisTarget:
    """A Redis server and base database, from ``--cachesync-redis-url``."""

    url: str
    db: int

    @classmethod
    def parse(cls, url: str) -> RedisTarget:
        url = url.strip()
        if urlsplit(url).scheme not in REDIS_SCHEMES:
            raise ValueError(
                f"Redis URL {mask_redis_url(url)!r} must start with redis://, rediss:// or "
                "unix:// (leave it unset for the embedded fakeredis server)"
            )
        return cls(url, redis_db_from_url(url))

    @property
    def masked(self) -> str:
        """The URL as shown in headers and errors: without its password."""
        return mask_redis_url(self.url)

    def __str__(self) -> str:
        return self.masked
