"""One browser socket: replay of history, then live frames from its outbox, in seq order."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from aiohttp import WSCloseCode, WSMsgType, web

from bridge.hub import Frame, Hub, Outbox, Replay, StopReason, StoreUnavailable
from bridge.keys import SETTINGS
from bridge.metrics import Metrics

log = logging.getLogger(__name__)

CLOSE_TIMEOUT = 2.0  # a stalled peer never reads our close frame; stop waiting for it
STORE_DOWN = "the session store is unavailable, reconnect with after="
HISTORY_CHANGED = "history changed, reconnect"


class Connection:
    def __init__(
        self,
        request: web.Request,
        ws: web.WebSocketResponse,
        call_id: str,
        hub: Hub,
        metrics: Metrics,
        queue_size: int,
    ) -> None:
        self.request = request
        self.ws = ws
        self.call_id = call_id
        self.hub = hub
        self.metrics = metrics
        self.outbox = Outbox(queue_size, self._stopped)
        self.sent_seq = 0
        self.epoch = ""
        self._pump: asyncio.Task[None] | None = None
        self._closing: asyncio.Task[None] | None = None

    async def start(self, after: int | None, epoch: str | None) -> None:
        """Subscribe first, then replay: a message stored in between is in both and the
        seq check in :meth:`_run` drops the second copy, so nothing is lost or doubled."""
        await self.hub.subscribe(self.call_id, self.outbox)
        replay = await self._replay(after, epoch)
        if replay is None:
            return
        self.epoch = replay.epoch
        self.sent_seq = replay.last_seq
        await self._send_all(replay.frames)
        max_text = self.request.app[SETTINGS].max_text_length
        await self.ws.send_frame(replay.ready_frame(max_text), WSMsgType.TEXT)
        self._pump = asyncio.create_task(self._run(), name=f"pump {self.call_id}")

    async def stop(self) -> None:
        if self._pump is not None:
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump
        await self.hub.unsubscribe(self.call_id, self.outbox)

    async def send(self, frame: bytes) -> None:
        """A frame for this socket alone (ack, error)."""
        await self.ws.send_frame(frame, WSMsgType.TEXT)

    async def _send_all(self, frames: list[Frame]) -> None:
        for _, frame in frames:
            await self.ws.send_frame(frame, WSMsgType.TEXT)
        self.metrics.delivered.inc(sum(1 for seq, _ in frames if seq is not None))

    async def _run(self) -> None:
        while True:
            seq, frame, enqueued_at = await self.outbox.get()
            if seq is not None:
                if seq <= self.sent_seq:
                    continue  # already sent during replay
                if seq > self.sent_seq + 1 and not await self._fill_gap(seq):
                    return
                self.sent_seq = seq
            await self.ws.send_frame(frame, WSMsgType.TEXT)
            if seq is not None:
                self.metrics.delivered.inc()
                self.metrics.latency.observe(time.perf_counter() - enqueued_at)

    async def _fill_gap(self, seq: int) -> bool:
        """A live frame skipped ahead (a store that fans out over the network can drop
        one): send the missing ones from history, or close so the client re-syncs."""
        replay = await self._replay(self.sent_seq, self.epoch)
        if replay is None:
            return False
        if not replay.recovered:
            await self.close(WSCloseCode.TRY_AGAIN_LATER, HISTORY_CHANGED)
            return False
        await self._send_all([f for f in replay.frames if f[0] is not None and f[0] < seq])
        return True

    async def _replay(self, after: int | None, epoch: str | None) -> Replay | None:
        """The store's replay, or None after closing with 1013 when the store is down (the
        browser retries with ``after=`` and catches up once it is back)."""
        try:
            return await self.hub.replay(self.call_id, after, epoch)
        except StoreUnavailable:
            await self.close(WSCloseCode.TRY_AGAIN_LATER, STORE_DOWN)
            return None

    def _stopped(self, reason: StopReason) -> None:
        """Called from fan-out, which must not wait: close in the background."""
        if reason == "overflow":
            self.metrics.overflows.inc()
            log.info("send queue full, closing socket", extra={"call_id": self.call_id})
            message = "send queue overflow, reconnect with after="
        else:
            log.info("session reset in the store, closing socket", extra={"call_id": self.call_id})
            message = HISTORY_CHANGED
        if self._pump is not None:
            self._pump.cancel()
        # Held so the close task is not garbage-collected before it runs.
        self._closing = asyncio.create_task(self.close(WSCloseCode.TRY_AGAIN_LATER, message))

    async def close(self, code: int, message: str) -> None:
        try:
            await asyncio.wait_for(
                self.ws.close(code=code, message=message.encode()), CLOSE_TIMEOUT
            )
        except (TimeoutError, ConnectionError):
            if self.request.transport is not None:
                self.request.transport.abort()
