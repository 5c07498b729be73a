"""One pub/sub connection of the fan-out and the conversations subscribed on it: the only
one on a single Redis or with Sentinel (whose client finds the current master on every
connect), one per shard on a cluster (sharded pub/sub: SSUBSCRIBE to the master that owns
the conversation's slot). It owns its reconnects, with back-off; after every
(re)subscription its owner pushes the latest message to the sockets (see redis_fanout).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections import Counter, deque
from dataclasses import dataclass
from typing import Any, Protocol

from redis.asyncio import Redis
from redis.asyncio.client import PubSub

from bridge.store.redis_base import UNAVAILABLE
from bridge.store.redis_keys import call_id_of, channel

log = logging.getLogger(__name__)

RECONNECT_DELAYS = (0.05, 5.0)  # pub/sub back-off: first and longest wait, doubling between
_PUBLISHED = (b"message", b"smessage")  # a frame on a live channel: [kind, channel, data]


class Owner(Protocol):
    def deliver(self, call_id: str, data: bytes) -> None: ...
    def catch_up(self, call_id: str) -> None: ...
    def lost(self, listener: Listener) -> None: ...
    def moved(self, listener: Listener, call_id: str) -> None: ...


@dataclass
class _Confirmation:
    done: asyncio.Future[None]
    catch_up: bool  # nobody waited for this subscription: push the latest message when it is on


class Listener:
    def __init__(self, name: str, client: Redis, owner: Owner, sharded: bool) -> None:
        self.name = name
        self.client = client
        self.owner = owner
        self.sharded = sharded
        self.call_ids: set[str] = set()  # subscribed, or to subscribe when connected
        self._pubsub: PubSub | None = None
        self._lock = asyncio.Lock()  # keeps (S)SUBSCRIBE/(S)UNSUBSCRIBE in call order
        # One per SUBSCRIBE sent, resolved in order by Redis's confirmations.
        self._confirming: dict[str, deque[_Confirmation]] = {}
        self._leaving: Counter[str] = Counter()  # SUNSUBSCRIBEs sent, not confirmed yet
        self.first_attempt = asyncio.Event()  # it tried to connect once
        self._task: asyncio.Task[None] | None = None

    @property
    def connected(self) -> bool:
        return self._pubsub is not None

    def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name=f"redis listener {self.name}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.client.aclose()

    async def add(self, call_id: str, catch_up: bool = False) -> asyncio.Future[None] | None:
        """Subscribe ``call_id``; the confirmation to wait for, if it was sent."""
        self.call_ids.add(call_id)
        async with self._lock:
            if self._pubsub is None:
                return None  # the listener subscribes it when it connects, and catches up
            # Expected before it is asked for: the listener can read the confirmation
            # before this await returns, and drops one nobody expects. A failed command
            # is confirmed by _confirm_all() when the connection goes.
            done = self._expect(call_id, catch_up)
            await self._command("subscribe", call_id)
            return done

    async def remove(self, call_id: str) -> None:
        self.call_ids.discard(call_id)
        async with self._lock:
            if self._pubsub is not None:
                if self.sharded:
                    self._leaving[call_id] += 1
                await self._command("unsubscribe", call_id)

    def pending(self, call_id: str) -> asyncio.Future[None] | None:
        confirmations = self._confirming.get(call_id)
        return confirmations[-1].done if confirmations else None

    def late(self, call_id: str) -> None:
        """Nobody waits for the confirmation any more: catch up when it comes."""
        confirmations = self._confirming.get(call_id)
        if confirmations:
            confirmations[-1].catch_up = True

    async def _command(self, command: str, call_id: str) -> None:
        assert self._pubsub is not None
        name = ("s" if self.sharded else "") + command
        try:
            await getattr(self._pubsub, name)(channel(call_id))
        except UNAVAILABLE as exc:
            log.debug("pub/sub %s %s failed: %s", name, call_id, exc)

    async def _listen(self) -> None:
        delay = RECONNECT_DELAYS[0]
        while True:
            pubsub = self.client.pubsub()
            try:
                await pubsub.connect()  # type: ignore[no-untyped-call]
                async with self._lock:
                    self._pubsub = pubsub
                    # A copy: add() puts a call_id in the set before it waits for the lock
                    # (and subscribes it itself once it has it).
                    for call_id in list(self.call_ids):
                        self._expect(call_id, catch_up=True)
                        # One channel a command: a shard refuses several slots at once.
                        await self._command("subscribe", call_id)
                self.first_attempt.set()
                if delay > RECONNECT_DELAYS[0]:
                    log.info("Redis pub/sub %s connected again", self.name)
                delay = RECONNECT_DELAYS[0]
                await self._read(pubsub)
            except UNAVAILABLE as exc:
                first_failure = delay == RECONNECT_DELAYS[0]
                log.log(
                    logging.WARNING if first_failure else logging.DEBUG,
                    "Redis pub/sub %s unavailable (%s); retrying in %.2fs",
                    self.name,
                    exc,
                    delay,
                )
            except Exception:  # fan-out must never stop for good: log it, start over
                log.exception("Redis pub/sub listener failed; restarting in %.2fs", delay)
            finally:
                self.first_attempt.set()
                self._pubsub = None
                self._confirm_all()  # nothing more comes on this connection
                self._leaving.clear()
                await pubsub.aclose()  # type: ignore[no-untyped-call]
            self.owner.lost(self)
            await asyncio.sleep(delay)
            delay = min(delay * 2, RECONNECT_DELAYS[1])

    async def _read(self, pubsub: PubSub) -> None:
        """Until the connection breaks. A published frame (nearly every reply) goes straight
        to the owner: redis-py's ``get_message`` costs about 4 µs more a message on top
        of the read (a health check, a retry wrapper, a dict per message); the rest
        (confirmations) goes through it, so that its bookkeeping of channels holds."""
        connection = pubsub.connection
        assert connection is not None
        while True:
            # math.inf: no timeout for this read (PubSub's own way to block, redis-py 8).
            response = await connection.read_response(
                timeout=math.inf, disconnect_on_error=False, push_request=True
            )
            if isinstance(response, list) and response and response[0] in _PUBLISHED:
                self.owner.deliver(call_id_of(response[1]), response[2])
                continue
            message = await pubsub.handle_message(response)
            if message is not None:
                self._dispatch(message)

    def _expect(self, call_id: str, catch_up: bool) -> asyncio.Future[None]:
        done = asyncio.get_running_loop().create_future()
        self._confirming.setdefault(call_id, deque()).append(_Confirmation(done, catch_up))
        return done

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
            self.owner.catch_up(call_id)

    def _confirm_all(self) -> None:
        """The connection is gone: stop waiting (the reconnect subscribes and catches up)."""
        for pending in self._confirming.values():
            for confirmation in pending:
                confirmation.done.set_result(None)
        self._confirming.clear()

    def _dispatch(self, message: dict[str, Any]) -> None:
        call_id = call_id_of(message["channel"])
        kind = message["type"]
        if kind in ("subscribe", "ssubscribe"):
            self._confirm(call_id)
        elif kind in ("message", "smessage"):
            self.owner.deliver(call_id, message["data"])
        elif kind == "sunsubscribe":
            if self._leaving[call_id] > 0:
                self._leaving[call_id] -= 1
                if not self._leaving[call_id]:
                    del self._leaving[call_id]
            elif call_id in self.call_ids:  # the shard gave its slot away: follow it
                self.call_ids.discard(call_id)
                self.owner.moved(self, call_id)
