"""Fan-out across processes: one pub/sub connection per process, subscribed to the
``live`` channels of the call_ids that have sockets here. The Redis store's scripts
publish each frame as they store it (see :mod:`bridge.store.redis_keys`), so
:meth:`RedisFanout.publish` has nothing left to do.

Pub/sub may drop frames (a reconnect, a slow subscriber); sockets then see a seq gap and
fill it from the store, and after every (re)subscription the latest message is pushed
again so a socket that missed the tail of a conversation notices. A frame of another
epoch than the one a socket replayed means Redis lost the session (restarted without
persistence): its outbox stops the socket so the browser re-syncs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from bridge.config import Settings
from bridge.live.fanout import Fanout
from bridge.live.outbox import Outbox
from bridge.refusals import StoreUnavailable
from bridge.store import Entry, Store
from bridge.store.redis_base import UNAVAILABLE, client
from bridge.store.redis_keys import announcement, call_id_of, channel

log = logging.getLogger(__name__)

RECONNECT_DELAYS = (0.05, 5.0)  # pub/sub back-off: first and longest wait, doubling between


@dataclass
class _Confirmation:
    done: asyncio.Future[None]
    catch_up: bool  # nobody waited for this subscription: push the latest message when it is on


class RedisFanout(Fanout):
    def __init__(self, settings: Settings, store: Store) -> None:
        self.store = store
        self.timeout = settings.redis_timeout
        # The listener owns its reconnects (with back-off): its client never retries.
        self._client = client(settings, retry=Retry(NoBackoff(), 0))
        self._local: dict[str, set[Outbox]] = {}
        self._pubsub: PubSub | None = None
        self._pubsub_lock = asyncio.Lock()  # keeps SUBSCRIBE/UNSUBSCRIBE in call order
        # One per SUBSCRIBE sent, resolved in order by Redis's confirmations.
        self._confirming: dict[str, deque[_Confirmation]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._first_attempt = asyncio.Event()  # the listener tried to connect once

    @classmethod
    async def connect(cls, settings: Settings, store: Store) -> RedisFanout:
        """A fan-out with its listener running. Redis being down now is not fatal: ``/readyz``
        says so, and everything recovers when it is back."""
        fanout = cls(settings, store)
        fanout._spawn(fanout._listen(), "redis listener")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(fanout._first_attempt.wait(), fanout.timeout)
        if fanout._pubsub is None:
            log.error("Redis is not reachable (yet): /readyz answers 503 until it is")
        return fanout

    def _spawn(self, coro: Any, name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def publish(self, call_id: str, epoch: str, frames: Sequence[Entry]) -> None:
        """Nothing to do: the store's script published these as it stored them."""

    def watched(self) -> int:
        return len(self._local)

    async def subscribe(self, call_id: str, outbox: Outbox) -> None:
        outboxes = self._local.setdefault(call_id, set())
        outboxes.add(outbox)
        if len(outboxes) == 1:
            await self._pubsub_command("subscribe", call_id)
        pending = self._confirming.get(call_id)
        if pending:
            confirmation = pending[-1]
            try:
                await asyncio.wait_for(asyncio.shield(confirmation.done), self.timeout)
            except TimeoutError:
                log.warning("no pub/sub confirmation for %s yet; catching up later", call_id)
                confirmation.catch_up = True

    async def unsubscribe(self, call_id: str, outbox: Outbox) -> None:
        outboxes = self._local.get(call_id)
        if outboxes is None:
            return
        outboxes.discard(outbox)
        if not outboxes:
            del self._local[call_id]
            await self._pubsub_command("unsubscribe", call_id)

    async def _pubsub_command(self, command: str, call_id: str) -> None:
        """SUBSCRIBE or UNSUBSCRIBE on the listener's connection. No connection, or a broken
        one: the listener subscribes everything local when it is back, then catches up."""
        async with self._pubsub_lock:
            if self._pubsub is None:
                return
            if command == "subscribe":
                # Expected before it is asked for: the listener can read the confirmation
                # before this await returns, and drops one nobody expects (then the
                # socket waited the whole timeout). A failed command is confirmed by the
                # listener's _confirm_all() when it loses the connection.
                self._expect_confirmation(call_id, catch_up=False)
            try:
                await getattr(self._pubsub, command)(channel(call_id))
            except UNAVAILABLE as exc:
                log.debug("pub/sub %s %s failed: %s", command, call_id, exc)

    async def _listen(self) -> None:
        delay = RECONNECT_DELAYS[0]
        while True:
            pubsub = self._client.pubsub()
            try:
                await pubsub.connect()  # type: ignore[no-untyped-call]
                async with self._pubsub_lock:
                    self._pubsub = pubsub
                    if self._local:
                        await pubsub.subscribe(*map(channel, self._local))
                        for call_id in self._local:
                            self._expect_confirmation(call_id, catch_up=True)
                self._first_attempt.set()
                if delay > RECONNECT_DELAYS[0]:
                    log.info("Redis pub/sub connected again")
                delay = RECONNECT_DELAYS[0]
                while True:
                    message = await pubsub.get_message(timeout=None)
                    if message is not None:
                        self._dispatch(message)
            except UNAVAILABLE as exc:
                first_failure = delay == RECONNECT_DELAYS[0]
                log.log(
                    logging.WARNING if first_failure else logging.DEBUG,
                    "Redis pub/sub unavailable (%s); retrying in %.2fs",
                    exc,
                    delay,
                )
            except Exception:  # fan-out must never stop for good: log it, start over
                log.exception("Redis pub/sub listener failed; restarting in %.2fs", delay)
            finally:
                self._first_attempt.set()
                self._pubsub = None
                self._confirm_all()  # nothing more comes on this connection
                await pubsub.aclose()  # type: ignore[no-untyped-call]
            await asyncio.sleep(delay)
            delay = min(delay * 2, RECONNECT_DELAYS[1])

    def _expect_confirmation(self, call_id: str, catch_up: bool) -> None:
        done = asyncio.get_running_loop().create_future()
        self._confirming.setdefault(call_id, deque()).append(_Confirmation(done, catch_up))

    def _confirm(self, call_id: str) -> None:
        pending = self._confirming.get(call_id)
        if not pending:
            return
        confirmation = pending.popleft()
        if not pending:
            del self._confirming[call_id]
        confirmation.done.set_result(None)
        if confirmation.catch_up:
            # Messages published before this moment were missed: resend the latest.
            self._spawn(self._catch_up(call_id), f"catch up {call_id}")

    def _confirm_all(self) -> None:
        """The connection is gone: stop waiting (the reconnect subscribes and catches up)."""
        for pending in self._confirming.values():
            for confirmation in pending:
                confirmation.done.set_result(None)
        self._confirming.clear()

    def _dispatch(self, message: dict[str, Any]) -> None:
        call_id = call_id_of(message["channel"])
        if message["type"] == "subscribe":
            self._confirm(call_id)
        elif message["type"] == "message":
            seq, epoch, frame = announcement(message["data"])
            self._deliver(call_id, epoch.decode(), seq, frame)

    def _deliver(self, call_id: str, epoch: str, seq: int | None, frame: bytes) -> None:
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
            self._deliver(call_id, epoch, seq, frame)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._client.aclose()
