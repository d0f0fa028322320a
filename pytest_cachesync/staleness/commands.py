"""What a Redis command does to which keys: the spy's command table."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from .patterns import as_text


class Kind(Enum):
    READ = "read"
    WRITE = "write"
    DELETE = "delete"
    EXPIRE = "expire"
    SCRIPT = "script"
    INSPECT = "inspect"
    OTHER = "other"


class TtlEffect(Enum):
    NONE = "none"  # the command leaves the key's TTL alone (or writes nothing)
    SET = "set"  # TTL set to `ttl` seconds
    CLEARED = "cleared"  # a plain SET / PERSIST drops any TTL
    UNKNOWN = "unknown"  # set, but only the server knows to what (EXAT, scripts)


# Not frozen: a frozen dataclass costs the spy ~1 us more per command.
@dataclass(slots=True)
class ParsedCommand:
    name: str
    keys: tuple[object, ...]
    kind: Kind
    value: object = None  # the string written by SET-like commands
    conditional: bool = False  # SET NX / SETNX / MSETNX: may write nothing
    ttl: float | None = None
    ttl_effect: TtlEffect = TtlEffect.NONE


_FIRST_KEY_READS = frozenset(
    [
        "GET",
        "GETEX",
        "HGET",
        "HGETALL",
        "HMGET",
        "HKEYS",
        "HVALS",
        "HLEN",
        "HEXISTS",
        "SMEMBERS",
        "SISMEMBER",
        "SMISMEMBER",
        "SCARD",
        "LRANGE",
        "LINDEX",
        "LLEN",
        "ZRANGE",
        "ZRANGEBYSCORE",
        "ZREVRANGE",
        "ZREVRANGEBYSCORE",
        "ZSCORE",
        "ZCARD",
        "ZRANK",
        "STRLEN",
        "GETRANGE",
        "JSON.GET",
        "HRANDFIELD",
        "SRANDMEMBER",
    ]
)
_FIRST_KEY_WRITES = frozenset(
    [
        "HSET",
        "HMSET",
        "HSETNX",
        "HDEL",
        "SADD",
        "SREM",
        "RPUSH",
        "LPUSH",
        "RPUSHX",
        "LPUSHX",
        "LSET",
        "LREM",
        "LTRIM",
        "LPOP",
        "RPOP",
        "ZADD",
        "ZREM",
        "ZINCRBY",
        "INCR",
        "DECR",
        "INCRBY",
        "DECRBY",
        "INCRBYFLOAT",
        "HINCRBY",
        "HINCRBYFLOAT",
        "APPEND",
        "SETRANGE",
        "JSON.SET",
        "SPOP",
    ]
)
_ALL_KEY_INSPECTS = frozenset(
    {"EXISTS", "TOUCH", "TYPE", "TTL", "PTTL", "EXPIRETIME", "PEXPIRETIME"}
)
_SCRIPTS = frozenset({"EVAL", "EVALSHA", "EVAL_RO", "EVALSHA_RO", "FCALL", "FCALL_RO"})
_EXPIRES = {"EXPIRE": 1.0, "PEXPIRE": 0.001}
_EXPIRE_AT = frozenset({"EXPIREAT", "PEXPIREAT"})


def _number(value: object) -> float | None:
    try:
        return float(as_text(value))
    except ValueError:
        return None


def _parse_set(args: Sequence[object]) -> ParsedCommand:
    key, value = args[1], args[2]
    options = [as_text(a).upper() for a in args[3:]]
    ttl: float | None = None
    effect = TtlEffect.CLEARED
    for index, option in enumerate(options):
        if option in ("EX", "PX") and index + 1 < len(options):
            number = _number(options[index + 1])
            if number is not None:
                ttl = number if option == "EX" else number / 1000
                effect = TtlEffect.SET
        elif option in ("EXAT", "PXAT"):
            effect = TtlEffect.UNKNOWN
        elif option == "KEEPTTL":
            effect = TtlEffect.NONE
    conditional = "NX" in options or "XX" in options
    return ParsedCommand("SET", (key,), Kind.WRITE, value, conditional, ttl, effect)


def parse_command(args: Sequence[object]) -> ParsedCommand:
    """Classify one command as redis-py sends it (`("SET", key, value, "EX", 10)`)."""
    if not args:
        return ParsedCommand("", (), Kind.OTHER)
    name = as_text(args[0]).upper()
    rest = tuple(args[1:])
    if name == "SET" and len(args) >= 3:
        return _parse_set(args)
    if name in _FIRST_KEY_READS and rest:
        return ParsedCommand(name, rest[:1], Kind.READ)
    if name == "MGET":
        return ParsedCommand(name, rest, Kind.READ)
    if name in ("SETEX", "PSETEX") and len(rest) >= 3:
        seconds = _number(rest[1])
        ttl = None if seconds is None else seconds / (1000 if name == "PSETEX" else 1)
        return ParsedCommand(name, rest[:1], Kind.WRITE, rest[2], False, ttl, TtlEffect.SET)
    if name in ("SETNX", "GETSET") and len(rest) >= 2:
        effect = TtlEffect.CLEARED
        return ParsedCommand(name, rest[:1], Kind.WRITE, rest[1], name == "SETNX", None, effect)
    if name in ("MSET", "MSETNX"):
        return ParsedCommand(
            name, rest[0::2], Kind.WRITE, None, name == "MSETNX", None, TtlEffect.CLEARED
        )
    if name in _FIRST_KEY_WRITES and rest:
        return ParsedCommand(name, rest[:1], Kind.WRITE)
    if name in ("DEL", "UNLINK", "GETDEL"):
        return ParsedCommand(name, rest, Kind.DELETE)
    if name in _EXPIRES and len(rest) >= 2:
        number = _number(rest[1])
        ttl = None if number is None else number * _EXPIRES[name]
        kind = Kind.DELETE if ttl is not None and ttl <= 0 else Kind.EXPIRE
        return ParsedCommand(name, rest[:1], kind, None, False, ttl, TtlEffect.SET)
    if name in _EXPIRE_AT and rest:
        return ParsedCommand(name, rest[:1], Kind.EXPIRE, None, False, None, TtlEffect.UNKNOWN)
    if name == "PERSIST" and rest:
        return ParsedCommand(name, rest[:1], Kind.EXPIRE, None, False, None, TtlEffect.CLEARED)
    if name in _SCRIPTS and len(rest) >= 2:
        count = _number(rest[1])
        keys = rest[2 : 2 + int(count)] if count is not None else ()
        return ParsedCommand(name, keys, Kind.SCRIPT, None, False, None, TtlEffect.UNKNOWN)
    if name in _ALL_KEY_INSPECTS:
        return ParsedCommand(name, rest, Kind.INSPECT)
    if name in ("RENAME", "RENAMENX", "COPY") and len(rest) >= 2:
        return ParsedCommand(name, rest[:2], Kind.OTHER)
    return ParsedCommand(name, (), Kind.OTHER)


def is_empty_reply(value: object) -> bool:
    """A read reply that means "nothing cached": nil, an empty hash/set/list."""
    if value is None:
        return True
    if isinstance(value, dict | list | set | tuple):
        return len(value) == 0
    return False
