"""The staleness assertions for reads that are coroutines, and the guard of the sync ones.

A synchronous assertion handed a coroutine function would compare two coroutine objects (two
different reprs: a false "stale read"); it refuses them and names the async variant instead.
The async variants run the same checks, awaiting the read in the bypass.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from types import TracebackType
from typing import Any, TypeVar

from pytest_cachesync.clock.reading import ClockLike

from .checks import StalenessChecker, TrackedBlock, block_call, still_stale

T = TypeVar("T")

AsyncRead = Callable[[], Awaitable[T]]


def _refusal(name: str, what: object) -> TypeError:
    shown = getattr(what, "__qualname__", None) or type(what).__name__
    return TypeError(
        f"{name} got a coroutine function ({shown}); its answer is only known once awaited. "
        f"Use `await cachesync.{name}_async(...)` for async reads."
    )


def sync_only(read: Callable[[], T], name: str, role: str = "read") -> Callable[[], T]:
    """``read``, refused when it is (or turns out to be) asynchronous."""
    if not callable(read):
        raise TypeError(f"{name} takes a callable as its {role}, got {type(read).__name__}")
    if inspect.iscoroutinefunction(read):
        raise _refusal(name, read)

    def checked() -> T:
        result = read()
        if inspect.isawaitable(result):
            close = getattr(result, "close", None)
            if callable(close):
                close()  # never awaited: without this Python warns when it is collected
            raise _refusal(name, read)
        return result

    return checked


async def awaited(read: AsyncRead[T], name: str) -> T:
    """What ``read()`` resolves to; a synchronous callable is refused, naming ``name``."""
    result: Any = read()
    if not inspect.isawaitable(result):
        raise TypeError(
            f"{name}_async takes a coroutine function (an async def read), got one that "
            f"returned {type(result).__name__}; use {name} for synchronous reads."
        )
    value: T = await result
    return value


async def assert_fresh_async(
    checker: StalenessChecker, read: AsyncRead[T], *, ignore: Iterable[str] = ()
) -> T:
    """``assert_fresh`` for an async read: the two runs are awaited, the verdict is the same."""
    mark = len(checker.spy.effects)
    cached = await awaited(read, "assert_fresh")
    serving = checker.serving_keys(mark)
    with checker.bypass.active():
        fresh = await read()
    return checker.verdict(cached, fresh, serving, ignore)


async def assert_fresh_within_async(
    checker: StalenessChecker,
    read: AsyncRead[T],
    seconds: float,
    clock: ClockLike | None = None,
    *,
    ignore: Iterable[str] = (),
) -> T:
    checker.advance_for(seconds, clock)
    try:
        return await assert_fresh_async(checker, read, ignore=ignore)
    except AssertionError as error:
        raise still_stale(seconds, error) from None


class AsyncInvalidationBlock(TrackedBlock):
    """What ``assert_invalidated_async(...)`` returns: the check runs when its ``async with``
    block exits; never entered, it fails the test as ``assert_invalidated`` does."""

    def __init__(self, check: Callable[[], AbstractAsyncContextManager[None]], call: str) -> None:
        super().__init__(call)
        self._check = check
        self._running: AbstractAsyncContextManager[None] | None = None

    async def __aenter__(self) -> None:
        self._enter_once("async with")
        self._running = self._check()
        await self._running.__aenter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool | None:
        __tracebackhide__ = True
        assert self._running is not None
        return await self._running.__aexit__(exc_type, exc, traceback)

    def _misused(self, how: str) -> TypeError:
        self.entered = True  # this error reports it; teardown need not again
        return TypeError(
            f"{self.call} is not {how}: write `async with cachesync.{self.call}:` around the "
            "write that must invalidate"
        )

    def __enter__(self) -> None:
        raise self._misused("a `with` block")

    def __exit__(self, *exc_info: object) -> None:
        return None

    def __await__(self) -> Generator[Any, None, None]:
        raise self._misused("awaitable")


def assert_invalidated_async(
    checker: StalenessChecker,
    *keys_or_patterns: str,
    reads: Sequence[AsyncRead[object]] = (),
) -> AsyncInvalidationBlock:
    """``assert_invalidated`` whose ``reads`` are coroutine functions."""
    if not keys_or_patterns and not reads:
        raise TypeError("name the keys or patterns to invalidate, or pass reads=[...]")
    call = block_call("assert_invalidated_async", keys_or_patterns, bool(reads))
    block = AsyncInvalidationBlock(lambda: _invalidated(checker, keys_or_patterns, reads), call)
    return checker.track(block)


@asynccontextmanager
async def _invalidated(
    checker: StalenessChecker,
    keys_or_patterns: Sequence[str],
    reads: Sequence[AsyncRead[object]],
) -> AsyncIterator[None]:
    __tracebackhide__ = True
    start = checker.block_start()
    yield
    problems: list[str] = []
    compared: set[str] = set()
    for read in reads:
        fills = len(checker.spy.effects)
        with checker.bypass.active():
            await awaited(read, "assert_invalidated")
        problems.extend(checker.stale_fills(fills, compared))
    checker.finish_block(start, keys_or_patterns, problems, compared)
