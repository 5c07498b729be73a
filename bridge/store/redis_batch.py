"""Script calls made in one event-loop iteration, sent to Redis together.

Under load many callbacks reach the store in the same iteration; each used to be one
round trip of its own (a write, a wake-up, a read, per call). Here the first call of an
iteration schedules a send for the next one, and every call made until then joins it:
one write of all the commands (a pipeline, not a transaction: each script stays atomic
on its own, and the calls are independent; packed by :mod:`.redis_wire`) and one read
of all the replies. Each caller gets its own reply, or its own error: a script that
fails (or refuses) fails only its own call.

With ``wait_ms`` a batch that holds an acknowledged write ends with one ``WAIT 1``
(see :mod:`.redis_replicated`), and those writes are answered only once it confirmed.

A node without a script (a promoted replica, a new node: scripts are not replicated)
answers NOSCRIPT for those calls only: the script is loaded and they go again. On a
cluster the batch is split by the master of each call's slot, one pipeline per node at
once; a call that meets anything but a reply there (a slot that moved or is moving, a
broken connection, NOSCRIPT) goes again alone by the unbatched way, which follows
redirections and reloads scripts (the rare case; a retried script is safe, see redis.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterNode, PipelineCommand, RedisCluster
from redis.commands.core import AsyncScript
from redis.exceptions import AskError, MovedError, NoScriptError, TryAgainError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from bridge.refusals import StoreUnavailable
from bridge.store import redis_wire as wire
from bridge.store.redis_topology import Client

# One call the unbatched way: (program, keys, args) -> its reply.
Single = Callable[[AsyncScript, list[str], list[Any]], Awaitable[Any]]


@dataclass(slots=True)
class Call:
    program: AsyncScript
    keys: list[str]
    args: list[Any]
    acknowledged: bool  # answered only once a replica has it (with wait_ms)
    reply: asyncio.Future[Any] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )

    def command(self) -> tuple[wire.Arg, ...]:
        return ("EVALSHA", self.program.sha, len(self.keys), *self.keys, *self.args)

    def resolve(self, reply: Any) -> None:
        if not self.reply.done():  # its caller may have given up (a timeout)
            if isinstance(reply, BaseException):
                self.reply.set_exception(reply)
            else:
                self.reply.set_result(reply)


class Batcher:
    def __init__(self, redis: Client, wait_ms: int, single: Single) -> None:
        self.redis = redis
        self.wait_ms = wait_ms
        self.single = single
        self.round_trips = 0  # pipelines sent (the tests count them)
        self._pending: list[Call] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def run(
        self, program: AsyncScript, keys: list[str], args: list[Any], acknowledged: bool
    ) -> Any:
        call = Call(program, keys, args, acknowledged and self.wait_ms > 0)
        if self._pending is None:
            self._pending = []
            # Its first step runs in the next iteration: the calls of this one join first.
            task = asyncio.create_task(self._send())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        self._pending.append(call)
        return await call.reply

    async def _send(self) -> None:
        calls, self._pending = self._pending or [], None
        try:
            if isinstance(self.redis, RedisCluster):
                await self._on_cluster(self.redis, calls)
            else:
                await self._pipelined(calls)
        except BaseException as exc:  # the connection, or a cancelled send: all of them
            for call in calls:
                call.resolve(exc if isinstance(exc, Exception) else StoreUnavailable("closing"))
            if not isinstance(exc, Exception):
                raise

    async def _pipelined(self, calls: Sequence[Call]) -> None:
        """One pipeline (one Redis, or the master Sentinel names); NOSCRIPT: load, again."""
        for attempt in range(2):
            replies, confirmed = await self._execute(calls)
            missing: list[Call] = []
            for call, reply in zip(calls, replies, strict=True):
                if isinstance(reply, NoScriptError) and not attempt:
                    missing.append(call)
                else:
                    call.resolve(_acknowledged(call, reply, confirmed, self.wait_ms))
            if not missing:
                return
            for program in {call.program.sha: call.program for call in missing}.values():
                await self.redis.script_load(program.script)
            calls = missing

    async def _execute(self, calls: Sequence[Call]) -> tuple[list[Any], bool]:
        """The replies (an error where a call failed) and whether a replica confirmed."""
        assert isinstance(self.redis, Redis)
        waits = any(call.acknowledged for call in calls)
        commands = [call.command() for call in calls]
        if waits:
            commands.append(("WAIT", 1, self.wait_ms))
        self.round_trips += 1
        payload = b"".join(wire.command(args) for args in commands)
        replies = await wire.exchange(self.redis.connection_pool, payload, len(commands))
        if waits:
            return replies[:-1], _replicas(replies[-1]) >= 1
        return replies, True

    async def _on_cluster(self, redis: RedisCluster, calls: Sequence[Call]) -> None:
        await redis.initialize()  # the slot map, read once (the client starts without it)
        by_node: dict[str, tuple[ClusterNode, list[Call]]] = {}
        alone: list[Call] = []
        for call in calls:
            try:
                node = redis.get_node_from_key(call.keys[0])
            except Exception:  # a slot without a master: the single way says how it is
                node = None
            if node is None:
                alone.append(call)
            else:
                by_node.setdefault(node.name, (node, []))[1].append(call)
        jobs = [self._on_node(node, batch) for node, batch in by_node.values()]
        jobs += [self._alone(call) for call in alone]
        await asyncio.gather(*jobs)

    async def _on_node(self, node: ClusterNode, calls: list[Call]) -> None:
        waits = any(call.acknowledged for call in calls)
        commands = [call.command() for call in calls]
        if waits:
            commands.append(("WAIT", 1, self.wait_ms))
        batch = [PipelineCommand(i, *command) for i, command in enumerate(commands)]
        self.round_trips += 1
        try:
            await node.execute_pipeline(batch)
        except Exception:  # the node went: each call goes the way that finds its successor
            await asyncio.gather(*(self._alone(call) for call in calls))
            return
        confirmed = not waits or _replicas(batch[-1].result) >= 1
        retry: list[Call] = []
        for call, command in zip(calls, batch, strict=False):
            if isinstance(command.result, _ELSEWHERE):
                retry.append(call)
            else:
                call.resolve(_acknowledged(call, command.result, confirmed, self.wait_ms))
        await asyncio.gather(*(self._alone(call) for call in retry))

    async def _alone(self, call: Call) -> None:
        try:
            call.resolve(await self.single(call.program, call.keys, call.args))
        except Exception as exc:
            call.resolve(exc)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def _replicas(reply: Any) -> int:
    return reply if isinstance(reply, int) else 0  # an error is no confirmation


def _acknowledged(call: Call, reply: Any, confirmed: bool, wait_ms: int) -> Any:
    if call.acknowledged and not confirmed and not isinstance(reply, Exception):
        return StoreUnavailable(f"no replica confirmed the write within {wait_ms} ms")
    return reply


# Errors the single way handles by going somewhere else or loading the script; any other
# (a script's own refusal, a full Redis) is the call's answer.
_ELSEWHERE = (
    NoScriptError,
    MovedError,
    AskError,
    TryAgainError,
    RedisConnectionError,
    RedisTimeoutError,
    OSError,
)
