"""One browser socket's whole life: join (subscribe, replay, ``ready``), the send queue's
pump, the receive loop with its frame handlers, and a teardown that always runs.

Admission (origin, token, socket slots) happens before the upgrade, in the view; from the
upgrade on, everything that happens to the socket happens here."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import WebSocketError, WSCloseCode, WSMsgType, web

from bridge import frames
from bridge.delivery.request import outgoing_body
from bridge.frames import AckFrame, ChooseFrame, RetryFrame, SendFrame
from bridge.keys import FANOUT, FORWARDER, METRICS, SETTINGS, SOCKETS, STORE
from bridge.limits import FrameGate, frame_limit
from bridge.live.outbox import Outbox, StopReason
from bridge.refusals import Refusal, StoreUnavailable
from bridge.store import Entry, Replay
from bridge.widget import ChoicesMessage, ReplyTo, TextMessage

log = logging.getLogger(__name__)

CLOSE_TIMEOUT = 2.0  # a stalled peer never reads our close frame; stop waiting for it
STORE_DOWN = "the session store is unavailable, reconnect with after="
HISTORY_CHANGED = "history changed, reconnect"
OVERFLOW = "send queue overflow, reconnect with after="


class Socket:
    # One per open socket, thousands of them idle: no __dict__ each (~0.6 KB).
    __slots__ = (
        "_closing", "_pump", "call_id", "fanout", "forwarder", "gate", "metrics", "outbox",
        "request", "sent_seq", "settings", "sockets", "store", "ws",
    )  # fmt: skip

    def __init__(self, request: web.Request, call_id: str, gate: FrameGate) -> None:
        app = request.app
        self.request = request
        self.call_id = call_id
        self.gate = gate
        self.settings = app[SETTINGS]
        self.store = app[STORE]
        self.fanout = app[FANOUT]
        self.forwarder = app[FORWARDER]
        self.metrics = app[METRICS]
        self.sockets = app[SOCKETS]
        self.ws = web.WebSocketResponse(
            heartbeat=self.settings.ws_heartbeat,
            compress=False,  # per-frame deflate costs CPU for every socket
            max_msg_size=frame_limit(self.settings),
        )
        self.outbox = Outbox(self.settings.send_queue, self._stopped, self._write_now)
        self.sent_seq = 0
        self._pump: asyncio.Task[None] | None = None
        self._closing: asyncio.Task[None] | None = None

    # -- life -----------------------------------------------------------------------------

    async def serve(self, after: int | None, epoch: str | None) -> None:
        """Upgrade, then run until either side closes. Never raises: once upgraded there is
        no HTTP answer to give, so every ending is handled here."""
        await self.ws.prepare(self.request)
        self.sockets.add(self.ws)
        self.metrics.sockets.inc()
        self.store.watch(self.call_id)
        try:
            await self.fanout.subscribe(self.call_id, self.outbox)
            if await self._join(after, epoch):
                self._pump = asyncio.create_task(self._run_pump(), name=f"pump {self.call_id}")
                await self._receive()
        except ConnectionError as exc:  # the peer went away mid-write: nothing to tell it
            log.debug("socket lost: %s", exc, extra={"call_id": self.call_id})
        except Exception:
            log.exception("socket failed", extra={"call_id": self.call_id})
        finally:
            await self._teardown()

    async def _teardown(self) -> None:
        for task in (self._pump, self._closing):
            if task is not None and not task.done():
                task.cancel()
        if self._pump is not None:
            await self._reap(self._pump)
        with contextlib.suppress(Exception):  # the store or Redis may be down: still tidy up
            await self.fanout.unsubscribe(self.call_id, self.outbox)
        self.store.unwatch(self.call_id)
        self.metrics.sockets.dec()
        self.sockets.discard(self.ws)
        if not self.ws.closed:
            await self.close(WSCloseCode.GOING_AWAY, "closing")

    async def _reap(self, task: asyncio.Task[None]) -> None:
        """Wait for the pump and log what it died of, once, at the level it deserves."""
        try:
            await task
        except asyncio.CancelledError:
            pass
        except ConnectionError as exc:
            log.debug("socket lost while sending: %s", exc, extra={"call_id": self.call_id})
        except Exception:
            log.exception("socket pump failed", extra={"call_id": self.call_id})

    async def _join(self, after: int | None, epoch: str | None) -> bool:
        """Replay after subscribing: a frame stored in between is in both, and the seq check
        in the pump drops the second copy, so nothing is lost or doubled."""
        replay = await self._replay(after, epoch)
        if replay is None:
            return False
        self.outbox.epoch = replay.epoch
        self.sent_seq = replay.last_seq
        await self._send_all(replay.frames)
        await self.send(replay.ready_frame(self.settings.max_text_length))
        return True

    async def close(self, code: int, message: str) -> None:
        try:
            await asyncio.wait_for(
                self.ws.close(code=code, message=message.encode()), CLOSE_TIMEOUT
            )
        except (TimeoutError, ConnectionError):
            if self.request.transport is not None:
                self.request.transport.abort()

    def _stopped(self, reason: StopReason) -> None:
        """The outbox gave up (called from fan-out, which must not wait): close in the
        background so the browser reconnects and re-syncs."""
        if reason == "overflow":
            self.metrics.overflows.inc()
            log.info("send queue full, closing socket", extra={"call_id": self.call_id})
            message = OVERFLOW
        else:
            log.info("session reset in the store, closing socket", extra={"call_id": self.call_id})
            message = HISTORY_CHANGED
        if self._pump is not None:
            self._pump.cancel()
        # Held so the task is not garbage-collected before it runs.
        self._closing = asyncio.create_task(self.close(WSCloseCode.TRY_AGAIN_LATER, message))

    # -- sending --------------------------------------------------------------------------

    async def send(self, frame: bytes) -> None:
        await self.ws.send_frame(frame, WSMsgType.TEXT)

    def _write_now(self, seq: int | None, frame: bytes) -> bool:
        """Fan-out's frame straight onto the transport (the outbox calls this only while
        the pump is idle): True when handled, False when the pump must (a gap to fill, a
        closing transport). A reader that lets more than ``send_buffer_bytes`` pile up
        unsent is closed with 1013, as one whose queue is full."""
        if seq is not None:
            if seq <= self.sent_seq:
                return True  # already sent during replay
            if seq > self.sent_seq + 1:
                return False
        transport = self.request.transport
        if transport is None or transport.is_closing() or self.ws.closed:
            return False
        if transport.get_write_buffer_size() > self.settings.send_buffer_bytes:
            self.outbox.stop("overflow")
            return True
        # aiohttp's writer puts each frame on the transport whole and at once, and a
        # server's frames are not masked: a frame written here never splits one of its own.
        transport.write(frames.text_frame_head(len(frame)) + frame)
        if seq is not None:  # it waited for nothing: no queue-wait to observe
            self.sent_seq = seq
            self.metrics.delivered.inc()
        return True

    async def _send_all(self, replayed: list[Entry]) -> None:
        for _, frame in replayed:
            await self.send(frame)
        self.metrics.delivered.inc(sum(1 for seq, _ in replayed if seq is not None))

    async def _run_pump(self) -> None:
        while True:
            seq, frame, enqueued_at = await self.outbox.get()
            if seq is not None:
                if seq <= self.sent_seq:
                    continue  # already sent during replay
                if seq > self.sent_seq + 1 and not await self._fill_gap(seq):
                    return
                self.sent_seq = seq
            await self.send(frame)
            if seq is not None:
                self.metrics.delivered.inc()
                self.metrics.latency.observe(time.perf_counter() - enqueued_at)

    async def _fill_gap(self, seq: int) -> bool:
        """A live frame skipped ahead (a fan-out over the network can drop one): send the
        missing ones from the store, or close so the client re-syncs."""
        replay = await self._replay(self.sent_seq, self.outbox.epoch)
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
            return await self.store.replay(self.call_id, after, epoch)
        except StoreUnavailable:
            await self.close(WSCloseCode.TRY_AGAIN_LATER, STORE_DOWN)
            return None

    # -- receiving ------------------------------------------------------------------------

    async def _receive(self) -> None:
        async for msg in self.ws:
            if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                if msg.type is WSMsgType.ERROR and _too_big(msg.data):  # aiohttp sent 1009
                    self.metrics.rejections.labels("frame_too_large").inc()
                continue
            try:
                self.gate.check()
                frame = frames.parse_client(msg.data)
                await HANDLERS[type(frame)](self, frame)
            except Refusal as refusal:
                self.metrics.rejections.labels(refusal.code).inc()
                if refusal.close:
                    log.info(
                        "closing a socket: %s", refusal.detail, extra={"call_id": self.call_id}
                    )
                    await self.close(WSCloseCode.POLICY_VIOLATION, refusal.detail)
                    return
                await self.send(frames.error(refusal.code, refusal.detail, *frames.echo(msg.data)))

    async def _on_send(self, frame: SendFrame) -> None:
        if not frame.text.strip():
            raise Refusal("empty_text", "the message is empty")
        limit = self.settings.max_text_length
        if len(frame.text) > limit:
            raise Refusal("text_too_long", f"at most {limit} characters")
        draft = TextMessage(**self._head(frame), text=frame.text)
        await self._said(frame.client_msg_id, draft)

    async def _on_choose(self, frame: ChooseFrame) -> None:
        choices = await self.store.find(self.call_id, frame.message_id)
        if not isinstance(choices, ChoicesMessage):
            raise Refusal("unknown_message", f"no choices message {frame.message_id!r} here")
        option = choices.option(frame.option_id)
        if option is None:
            raise Refusal(
                "unknown_option", f"message {choices.seq} has no option {frame.option_id!r}"
            )
        answer = ReplyTo(seq=choices.seq, option_id=option.id)
        draft = TextMessage(**self._head(frame), text=option.label, reply_to=answer)
        await self._said(frame.client_msg_id, draft, choices, answer)

    async def _on_retry(self, frame: RetryFrame) -> None:
        await self.forwarder.retry(self.call_id, frame.seq)

    def _head(self, frame: SendFrame | ChooseFrame) -> dict[str, Any]:
        return {
            "call_id": self.call_id,
            "seq": 0,
            "id": frame.client_msg_id,
            "sender": "user",
            "ts": int(time.time()),
            "client_msg_id": frame.client_msg_id,
        }

    async def _said(
        self,
        client_msg_id: str,
        draft: TextMessage,
        choices: ChoicesMessage | None = None,
        answer: ReplyTo | None = None,
    ) -> None:
        """Store what the person said (every tab shows it) and queue it for the bot in the
        same step, acknowledge, then have it forwarded. A frame re-sent after a lost ack
        has the same client_msg_id: same key, same seq, queued once."""
        key = f"user:{client_msg_id}"
        body = outgoing_body(draft, choices, await self.store.envelope(self.call_id))
        # The sender hears "ack" first, then the message with every other tab: on Redis
        # the message's fan-out copy can come back before the store's answer.
        self.outbox.hold()
        try:
            appended = await self.store.append(
                self.call_id, [(key, draft)], answer=answer, outgoing=body
            )
            [seq] = appended.seqs
            if seq:
                await self.send(AckFrame(client_msg_id=client_msg_id, seq=seq).encode())
        finally:
            self.outbox.release()
        self.fanout.publish(self.call_id, appended.epoch, appended.frames)
        if not seq:  # recorded (and queued) before the conversation started over
            raise Refusal("already_sent", "this message was sent before the chat restarted")
        self.forwarder.kick(self.call_id)


Handler = Callable[[Socket, Any], Awaitable[None]]
HANDLERS: dict[type[frames.ClientFrame], Handler] = {
    SendFrame: Socket._on_send,
    ChooseFrame: Socket._on_choose,
    RetryFrame: Socket._on_retry,
}


def _too_big(error: object) -> bool:
    return isinstance(error, WebSocketError) and error.code == WSCloseCode.MESSAGE_TOO_BIG
