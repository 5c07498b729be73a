"""The store on Redis, for several bridge processes serving one conversation (the key
layout is in :mod:`.redis_keys`; the scripts in ``lua/``).

Every write is one Lua script, so two processes appending to one call_id at once never
reuse or skip a seq. Every script refreshes the idle expiry of all the session's keys
together (or makes them persistent while messages wait for the bot: see redis_keys);
sessions watched by a socket of this process are refreshed periodically by the store's own
task, so they never expire while somebody looks at them. The queue for the bot and the
lease are :mod:`.redis_queue`'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any, cast

import orjson
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import RedisError

from bridge.config import Settings
from bridge.frames import DeliveryStatus, StatusFrame
from bridge.refusals import Refusal, StoreUnavailable
from bridge.store import Appended, Entry, Item, Replay
from bridge.store.redis_base import (
    UNAVAILABLE,
    available,
    client,
    new_epoch,
    register,
    status_parts,
)
from bridge.store.redis_keys import SessionKeys, channel
from bridge.store.redis_queue import RedisQueue
from bridge.store.seen import encoded
from bridge.vendor.airudder import Envelope
from bridge.widget import WIDGET_MESSAGE, ReplyTo, WidgetMessage

log = logging.getLogger(__name__)


def _entry(entry: Any) -> tuple[int, bytes]:
    """(seq, frame) of a stream entry ``(b"<seq>-0", {b"f": frame})``."""
    entry_id, fields = entry
    return int(entry_id.split(b"-")[0]), cast(bytes, fields[b"f"])


class RedisStore(RedisQueue):
    def __init__(self, settings: Settings) -> None:
        # Retrying a script is safe: a retried append finds its de-dup keys and stores
        # nothing, a retried settle finds the queue settled already (a retried retry is
        # refused as not_failed, having retried: the sockets saw its 'sending' frames).
        redis = client(
            settings,
            socket_timeout=settings.redis_timeout,
            retry=Retry(ExponentialBackoff(cap=0.2, base=0.02), 2),
        )
        ttl_ms = max(1, round(settings.session_ttl * 1000))
        super().__init__(redis, ttl_ms, settings.redis_wait_ms())
        self.max_message_bytes = settings.max_message_bytes
        self.timeout = self.deadline = settings.redis_timeout
        retention = max(1, round(settings.dedup_retention * 1000))
        sending = status_parts("sending")
        self._append = register(
            redis,
            "append",
            constants={
                "TTL": ttl_ms,
                "LIMIT": settings.history_limit,
                "BUDGET": settings.history_bytes,
                # The de-duplication keys: the newest CAP of a conversation, expiring
                # RETENTION ms after its last message (no total count: docs/security.md).
                "CAP": settings.dedup_per_call,
                "RETENTION": retention,
                "SENDING_HEAD": sending[0],
                "SENDING_TAIL": sending[1],
            },
        )
        self._replay = register(redis, "replay")
        self._status = register(redis, "status")
        self._touch = register(redis, "touch")
        self._acknowledged |= {self._append, self._status}
        self._watched: Counter[str] = Counter()
        self._refresh_every = min(settings.sweep_interval, settings.session_ttl / 3)
        self._refresher: asyncio.Task[None] | None = None

    async def append(
        self,
        call_id: str,
        items: Sequence[Item],
        *,
        envelope: Envelope | None = None,
        answer: ReplyTo | None = None,
        outgoing: bytes | None = None,
    ) -> Appended:
        parts = encoded(items, self.max_message_bytes)  # or refused: nothing changed
        # The settings' part of the script's input is in the script (see __init__).
        args: list[Any] = [
            new_epoch(),
            channel(call_id),
            envelope.model_dump_json() if envelope else "",
            answer.seq if answer else "",
            answer.option_id if answer else "",
            "" if outgoing is None else repr(time.time()),
            outgoing or b"",
        ]
        for (key, _), draft in zip(items, parts, strict=True):
            args.extend((key, draft.id, draft.head, draft.tail))
        reply = await self._run(self._append, call_id, args)
        if reply[0] == b"already_answered":
            assert answer is not None
            raise Refusal("already_answered", f"message {answer.seq} was answered already")
        _, epoch, seqs, stored = reply
        frames: list[Entry] = []
        for seq, new, draft in zip(seqs, stored, parts, strict=True):
            if new:
                frames.append((seq, draft.frame(seq)))
                if outgoing is not None:  # queued, and shown as on its way, by the script
                    sending = status_parts("sending")
                    frames.append((None, sending[0] + b"%d" % seq + sending[1]))
        return Appended(epoch.decode(), [int(seq) for seq in seqs], frames)

    async def replay(self, call_id: str, after: int | None, epoch: str | None) -> Replay:
        args = [self.ttl_ms, new_epoch(), "" if after is None else after, epoch or ""]
        got_epoch, last, recovered, _, stored, statuses = await self._run(
            self._replay, call_id, args
        )
        first = last - len(stored) + 1
        frames: list[Entry] = [(first + i, frame) for i, frame in enumerate(stored)]
        by_seq = sorted(
            (int(seq), frame) for seq, frame in zip(statuses[::2], statuses[1::2], strict=True)
        )
        frames += [(None, frame) for _, frame in by_seq]
        return Replay(frames, last, got_epoch.decode(), bool(recovered))

    async def latest(self, call_id: str) -> tuple[str, Entry] | None:
        session = SessionKeys.of(call_id)
        with available():
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.hget(session.meta, "epoch")
                pipe.xrevrange(session.log, count=1)
                epoch, latest = await pipe.execute()
        if epoch is None or not latest:
            return None
        return epoch.decode(), _entry(latest[0])

    async def find(self, call_id: str, ref: int | str) -> WidgetMessage | None:
        session = SessionKeys.of(call_id)
        with available():
            if isinstance(ref, int):
                seq = ref
            else:
                score = await self.redis.zscore(session.ids, ref)
                if score is None:
                    return None
                seq = int(score)
            if seq < 1:
                return None
            entries = await self.redis.xrange(session.log, f"{seq}-0", f"{seq}-0")
        if not entries:
            return None
        _, frame = _entry(entries[0])
        return WIDGET_MESSAGE.validate_python(orjson.loads(frame)["message"])

    async def set_status(
        self, call_id: str, seq: int, status: DeliveryStatus, detail: str | None = None
    ) -> tuple[str, bytes]:
        frame = StatusFrame(seq=seq, status=status, detail=detail).encode()
        args = [self.ttl_ms, new_epoch(), channel(call_id), seq, frame]
        epoch = await self._run(self._status, call_id, args)
        return epoch.decode(), frame

    async def envelope(self, call_id: str) -> Envelope | None:
        with available():
            raw = await self.redis.hget(SessionKeys.of(call_id).meta, "envelope")
        return Envelope.model_validate_json(raw) if raw else None

    def watch(self, call_id: str) -> None:
        self._watched[call_id] += 1

    def unwatch(self, call_id: str) -> None:
        self._watched[call_id] -= 1
        if self._watched[call_id] <= 0:
            del self._watched[call_id]

    async def ping(self) -> bool:
        try:
            return bool(await asyncio.wait_for(self.redis.ping(), self.timeout))
        except (RedisError, OSError, TimeoutError):
            return False

    async def _refresh(self) -> None:
        """A session somebody watches here does not expire while they watch. A script, so
        that a session with messages for the bot stays persistent (see redis_keys)."""
        while True:
            await asyncio.sleep(self._refresh_every)
            watched = list(self._watched)
            if not watched:
                continue
            try:
                await self._each(self._touch, watched, [self.ttl_ms])
            except (*UNAVAILABLE, StoreUnavailable) as exc:
                log.debug("expiry refresh failed: %s", exc)

    async def start(self) -> None:
        self._refresher = asyncio.create_task(self._refresh(), name="redis expiry refresh")

    async def close(self) -> None:
        if self._refresher is not None:
            self._refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresher
        await self._batch.close()
        await self.redis.aclose()
