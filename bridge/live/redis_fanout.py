"""Fan-out across processes: pub/sub subscriptions to the ``live`` channels of the
call_ids that have sockets here (one connection per process, a :class:`Listener`; on a
cluster one per shard, see :mod:`.redis_shards`). The Redis store's scripts publish each
frame as they store it (see :mod:`bridge.store.redis_keys`), so
:meth:`RedisFanout.publish` has nothing left to do.

Pub/sub may drop frames (a reconnect, a slow subscriber, a fail-over); sockets then see a
seq gap and fill it from the store, and after every (re)subscription the latest message is
pushed again so a socket that missed the tail of a conversation notices. A frame of
another epoch than the one a socket replayed means Redis lost the session (restarted
without persistence), or a fenced session crossed a fail-over (see session.lua): its
outbox stops the socket so the browser re-syncs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from bridge.config import Settings
from bridge.live.fanout import Fanout
from bridge.live.outbox import Outbox
from bridge.live.redis_listener import Listener
from bridge.refusals import StoreUnavailable
from bridge.store import Entry, Store
from bridge.store.redis_base import client
from bridge.store.redis_keys import announcement

log = logging.getLogger(__name__)

# RESP2 for pub/sub connections: under RESP3 (redis-py 8's default) every published
# message is a push that redis-py formats into a debug line, logged or not (~6 µs each).
PUBSUB_PROTOCOL = 2


class RedisFanout(Fanout):
    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings = settings
        self.store = store
        self.timeout = settings.redis_timeout
        self._local: dict[str, set[Outbox]] = {}
        self._where: dict[str, Listener] = {}  # the listener each local call_id is on
        self._routing = asyncio.Lock()  # subscriptions move between listeners one at a time
        self._tasks: set[asyncio.Task[None]] = set()
        self._listener: Listener | None = None

    @classmethod
    async def connect(cls, settings: Settings, store: Store) -> RedisFanout:
        """A fan-out with its listener running. Redis being down now is not fatal: ``/readyz``
        says so, and everything recovers when it is back."""
        if settings.redis_mode() == "cluster":
            from bridge.live.redis_shards import ClusterFanout

            fanout: RedisFanout = ClusterFanout(settings, store)
        else:
            fanout = cls(settings, store)
        if not await fanout.start():
            log.error("Redis is not reachable (yet): /readyz answers 503 until it is")
        return fanout

    async def start(self) -> bool:
        """Start listening; whether the first connection was made within the timeout."""
        # The listener owns its reconnects (with back-off): its client never retries.
        redis = client(self.settings, retry=Retry(NoBackoff(), 0), protocol=PUBSUB_PROTOCOL)
        assert isinstance(redis, Redis)
        self._listener = self._new_listener("pub/sub", redis, sharded=False)
        return await self._first_attempt(self._listener)

    def _new_listener(self, name: str, redis: Redis, sharded: bool) -> Listener:
        listener = Listener(name, redis, self, sharded)
        listener.start()
        return listener

    async def _first_attempt(self, listener: Listener) -> bool:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(listener.first_attempt.wait(), self.timeout)
        return listener.connected

    def _route(self, call_id: str) -> Listener:
        """The listener ``call_id`` belongs on."""
        assert self._listener is not None
        return self._listener

    def _spawn(self, coro: Any, name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def publish(self, call_id: str, epoch: str, frames: Sequence[Entry]) -> None:
        """Nothing to do: the store's script published these as it stored them."""

    async def subscribe(self, call_id: str, outbox: Outbox) -> None:
        self._local.setdefault(call_id, set()).add(outbox)
        # Every socket takes the lock (FIFO): a second socket of a call_id must not look
        # it up while the first one is still waiting to route it.
        async with self._routing:
            listener = self._where.get(call_id)
            if listener is None:
                listener = self._where[call_id] = self._route(call_id)
                await listener.add(call_id)
        pending = listener.pending(call_id)
        if pending is not None:
            try:
                await asyncio.wait_for(asyncio.shield(pending), self.timeout)
            except TimeoutError:
                log.warning("no pub/sub confirmation for %s yet; catching up later", call_id)
                listener.late(call_id)

    async def unsubscribe(self, call_id: str, outbox: Outbox) -> None:
        outboxes = self._local.get(call_id)
        if outboxes is None:
            return
        outboxes.discard(outbox)
        if not outboxes:
            del self._local[call_id]
            async with self._routing:
                listener = self._where.pop(call_id, None)
                if listener is not None:
                    await listener.remove(call_id)

    # -- what listeners tell their owner ------------------------------------------------

    def deliver(self, call_id: str, data: bytes) -> None:
        seq, epoch, frame = announcement(data)
        self._push(call_id, epoch.decode(), seq, frame)

    def catch_up(self, call_id: str) -> None:
        self._spawn(self._catch_up(call_id), f"catch up {call_id}")

    def lost(self, listener: Listener) -> None:
        """Its connection went; it reconnects by itself (a cluster re-routes, too)."""

    def moved(self, listener: Listener, call_id: str) -> None:
        """Only a cluster's shard gives a slot away."""

    def _push(self, call_id: str, epoch: str, seq: int | None, frame: bytes) -> None:
        for outbox in list(self._local.get(call_id, ())):
            outbox.push(epoch, seq, frame)

    async def _catch_up(self, call_id: str) -> None:
        """Push the latest stored message to the local sockets: one that has it drops it,
        one that is behind sees the gap and fills it from the store."""
        try:
            latest = await self.store.latest(call_id)
        except StoreUnavailable as exc:
            log.debug("catch-up of %s failed: %s", call_id, exc)
            return
        if latest is not None:  # nothing stored (yet): the next append's epoch tells
            epoch, (seq, frame) = latest
            self._push(call_id, epoch, seq, frame)

    def _listeners(self) -> list[Listener]:
        return [self._listener] if self._listener is not None else []

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for listener in self._listeners():
            await listener.stop()
