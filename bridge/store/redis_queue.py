"""The Redis store's queue for the bot (see :mod:`.redis_keys` for the keys): each write
is one script that changes the queue, stores and publishes the status frames it implies
and sets the session's expiry (none while a message may still go), in one atomic step.

The lease is a key of its own per conversation, in the conversation's slot: taken with
``SET ... PX`` when free, renewed only by its holder, deleted only by its holder (a lease
that ran out may be somebody else's by the time its old holder lets go)."""

from __future__ import annotations

from typing import Any

from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError

from bridge.refusals import Refusal
from bridge.store import Entry, Outgoing, Store, Waiting
from bridge.store.redis_base import available, register, status_parts
from bridge.store.redis_batch import Batcher
from bridge.store.redis_keys import QUEUES, SessionKeys, call_id_of_queue, channel, lease
from bridge.store.redis_replicated import run_replicated
from bridge.store.redis_topology import Client

SCAN_COUNT = 500  # keys a SCAN step looks at: few round trips, no long block of Redis


class RedisQueue(Store):
    def __init__(self, redis: Client, ttl_ms: int, wait_ms: int = 0) -> None:
        super().__init__()
        self.redis = redis
        self.ttl_ms = ttl_ms
        self.wait_ms = wait_ms
        self._peek = register(redis, "peek")
        self._settle = register(redis, "settle")
        self._retry = register(redis, "retry")
        self._claim = register(redis, "claim", session=False)
        self._release = register(redis, "release", session=False)
        # Scripts whose reply is an acknowledgement: they wait for a replica (wait_ms).
        self._acknowledged: set[AsyncScript] = {self._settle, self._retry}
        self._batch = Batcher(redis, wait_ms, self._single)

    async def _run(self, program: Any, call_id: str, args: list[Any], client: Any = None) -> Any:
        # The live channel is a key too: a cluster checks it is in the conversation's slot.
        keys = [*SessionKeys.of(call_id), channel(call_id)]
        with available():
            if client is not None:
                return await program(keys=keys, args=args, client=client)
            return await self._batch.run(program, keys, args, program in self._acknowledged)

    async def _single(self, program: AsyncScript, keys: list[str], args: list[Any]) -> Any:
        """One call on its own (what a batch falls back to on a cluster's redirection)."""
        if self.wait_ms and program in self._acknowledged:
            return await run_replicated(self.redis, program, keys, args, self.wait_ms)
        return await program(keys=keys, args=args)

    async def _each(self, program: AsyncScript, call_ids: list[str], args: list[Any]) -> Any:
        """``program`` on each conversation, pipelined (one round trip per node). A
        cluster's pipeline does not load scripts: a node without it (a promoted replica)
        gets it, and the pipeline goes again."""
        for attempt in range(2):
            try:
                async with self.redis.pipeline(transaction=False) as pipe:
                    for call_id in call_ids:
                        await self._run(program, call_id, args, client=pipe)
                    return await pipe.execute()
            except NoScriptError:
                if attempt:
                    raise
                await self.redis.script_load(program.script)
        return None

    async def next_outgoing(self, call_id: str) -> Outgoing | None:
        count, *head = await self._run(self._peek, call_id, [1])
        if not count or head[2]:  # empty, or held behind a message that gave up
            return None
        seq, queued_at, _, body, epoch = head
        return Outgoing(int(seq), bytes(body), float(queued_at), epoch.decode())

    async def settle(
        self, call_id: str, job: Outgoing, sent: bool, detail: str | None = None
    ) -> tuple[str, list[Entry]]:
        seq = job.seq
        if sent:
            head, tail = status_parts("sent")
            held = b"", b""
        else:
            head, tail = status_parts("failed", detail)
            held = status_parts("failed", f"held until message {seq} is sent")
        frame = head + b"%d" % seq + tail
        args = [self.ttl_ms, channel(call_id), seq, int(sent), frame, *held, job.epoch]
        epoch, frames = await self._run(self._settle, call_id, args)
        return epoch.decode(), [(None, f) for f in frames]

    async def retry(self, call_id: str, seq: int) -> tuple[str, list[Entry]]:
        args = [self.ttl_ms, channel(call_id), seq, *status_parts("sending")]
        reply = await self._run(self._retry, call_id, args)
        if reply[0] == b"not_failed":
            raise Refusal("not_failed", f"message {seq} is not waiting for a retry")
        _, epoch, frames = reply
        return epoch.decode(), [(None, f) for f in frames]

    async def waiting(self) -> list[Waiting]:
        """The conversations with a queue key: a SCAN (all of Redis, a little at a time;
        it may name a key twice; on a cluster every master), then each queue's head, in one
        pipelined round trip."""
        with available():
            found = {
                call_id_of_queue(key)
                async for key in self.redis.scan_iter(match=QUEUES, count=SCAN_COUNT)
            }
            call_ids = sorted(found)
            heads = await self._each(self._peek, call_ids, [0])
        return [
            Waiting(call_id, int(head[0]), float(head[2]), not head[3])
            for call_id, head in zip(call_ids, heads, strict=True)
            if head[0]  # delivered between the SCAN and the look
        ]

    async def claim(self, call_id: str, owner: str, ttl: float) -> bool:
        with available():
            got = await self._claim(keys=[lease(call_id)], args=[owner, max(1, round(ttl * 1000))])
        return bool(got)

    async def release(self, call_id: str, owner: str) -> None:
        with available():
            await self._release(keys=[lease(call_id)], args=[owner])

    async def forget(self, call_id: str) -> bool:
        with available():
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.delete(*SessionKeys.of(call_id))
                pipe.delete(lease(call_id))  # whoever forwarded it has nothing left to do
                deleted, _ = await pipe.execute()
        return bool(deleted)
