"""The cache spy on an asyncio client: ``redis.asyncio.Redis``, valkey's, or fakeredis's.

The tap replaces the instance's coroutine ``execute_command`` and its ``pipeline``, as the
spy does on a synchronous client, and feeds the spy it is attached to: one record of hits,
misses, fills and invalidations whichever client the app used. It follows the spy's routing,
so a bypassed run sends the asyncio client's commands to the scratch server too, and it runs
the spy's interceptors (the race injector) on a worker thread while the fill awaits them: the
event loop stays free, so the action injected can be a request served by that same loop.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable, Sequence
from typing import Any

from .commands import Kind, ParsedCommand, parse_command
from .spy import RedisSpy, restore_wrapped, save_wrapped

_SCRATCH_ATTRIBUTE = "_cachesync_async_scratch"


class AsyncTap:
    """Observes one asyncio client instance on behalf of a ``RedisSpy``."""

    def __init__(self, spy: RedisSpy, client: Any) -> None:
        from pytest_cachesync.stores.clients import is_async_client

        if not is_async_client(client):
            raise TypeError(
                "the asyncio tap wraps a redis.asyncio.Redis or valkey.asyncio.Valkey instance "
                f"(or a fakeredis one), got {type(client).__name__}"
            )
        self.spy = spy
        self.client = client
        self._saved: dict[str, object] = {}
        self._raw: Callable[..., Any] = client.execute_command
        self._raw_pipeline: Callable[..., Any] = client.pipeline
        self.installed = False

    def install(self) -> AsyncTap:
        if self.installed:
            raise RuntimeError("this tap is already installed")
        self._saved = save_wrapped(self.client, AsyncTap)
        self._raw = self.client.execute_command
        self._raw_pipeline = self.client.pipeline
        self.client.execute_command = self._execute_command
        self.client.pipeline = self._pipeline
        # The app may run on an ASGI test client's own thread: a replay must reach it there.
        self.spy.route_every_thread = True
        self.installed = True
        return self

    def uninstall(self) -> None:
        if not self.installed:
            return
        restore_wrapped(self.client, self._saved)
        self._saved = {}
        self.installed = False

    # -- routing ------------------------------------------------------------------------------

    def _scratch(self) -> Any:
        """The asyncio twin of the spy's current route (a scratch FakeRedis), or None."""
        route = self.spy._route
        if route is None:
            return None
        twin = route.__dict__.get(_SCRATCH_ATTRIBUTE)
        if twin is None:
            import fakeredis

            server = route.connection_pool.connection_kwargs.get("server")
            if server is None:
                raise RuntimeError(
                    "an asyncio client can only be bypassed to an in-process fakeredis server"
                )
            decode = bool(self.client.connection_pool.connection_kwargs.get("decode_responses"))
            twin = fakeredis.FakeAsyncRedis(server=server, decode_responses=decode)
            route.__dict__[_SCRATCH_ATTRIBUTE] = twin
        return twin

    def _sync_execute(self) -> Callable[..., Any]:
        """A synchronous way to the same keyspace, for the spy's reads of script effects."""
        execute, _ = self.spy._target()
        return execute

    async def _before(self, parsed: ParsedCommand, bypassed: bool) -> list[str]:
        if bypassed or not self.spy._interceptors:
            return self.spy._before(parsed, bypassed)
        loop = asyncio.get_running_loop()
        call = functools.partial(contextvars.copy_context().run, self.spy._before, parsed, bypassed)
        keys: list[str] = await loop.run_in_executor(None, call)
        return keys

    # -- the wrappers -------------------------------------------------------------------------

    async def _execute_command(self, *args: Any, **options: Any) -> Any:
        scratch = self._scratch()
        execute = scratch.execute_command if scratch is not None else self._raw
        bypassed = scratch is not None
        parsed = parse_command(args)
        cache_keys = await self._before(parsed, bypassed)
        peek = self._sync_execute()
        is_script = parsed.kind is Kind.SCRIPT
        before = self.spy._peek_all(peek, cache_keys) if is_script else {}
        result = await execute(*args, **options)
        self.spy._record(parsed, args, result, cache_keys, bypassed, False, peek, before)
        return result

    def _pipeline(self, transaction: bool = True, shard_hint: Any = None) -> Any:
        scratch = self._scratch()
        if scratch is not None:
            pipe = scratch.pipeline(transaction, shard_hint)
        else:
            pipe = self._raw_pipeline(transaction, shard_hint)
        bypassed = scratch is not None
        execute_batch = pipe.execute
        immediate = pipe.immediate_execute_command
        spy = self.spy

        async def execute(raise_on_error: bool = True) -> list[Any]:
            staged = [(parse_command(args), args) for args, _ in pipe.command_stack]
            keys: list[Sequence[str]] = [
                await self._before(parsed, bypassed) for parsed, _ in staged
            ]
            peek = self._sync_execute()
            script_keys = [
                k
                for (p, _), ks in zip(staged, keys, strict=True)
                if p.kind is Kind.SCRIPT
                for k in ks
            ]
            before = spy._peek_all(peek, script_keys)
            results: list[Any] = await execute_batch(raise_on_error)
            for (parsed, args), cache_keys, result in zip(staged, keys, results, strict=False):
                if not isinstance(result, Exception):
                    spy._record(
                        parsed, args, result, list(cache_keys), bypassed, True, peek, before
                    )
            return results

        async def immediate_execute_command(*args: Any, **options: Any) -> Any:
            parsed = parse_command(args)
            cache_keys = await self._before(parsed, bypassed)
            result = await immediate(*args, **options)
            spy._record(parsed, args, result, cache_keys, bypassed, True, self._sync_execute(), {})
            return result

        pipe.execute = execute
        pipe.immediate_execute_command = immediate_execute_command
        return pipe
