"""What a person says on a socket: client frames become ``from: "user"`` messages in the
session (so every tab and every reconnect shows them), then go upstream."""

from __future__ import annotations

import time

from pydantic import ValidationError

from bridge import frames
from bridge.config import Settings
from bridge.hub import Hub, Refused, StoreUnavailable
from bridge.sockets import Connection
from bridge.upstream import Forwarder
from bridge.widget import ChoicesMessage, ReplyTo, TextMessage


class Conversation:
    """The person's side of one socket."""

    def __init__(
        self, conn: Connection, hub: Hub, forwarder: Forwarder, settings: Settings, origin: str
    ) -> None:
        self.conn = conn
        self.hub = hub
        self.forwarder = forwarder
        self.settings = settings
        self.origin = origin  # this server's address, for the built-in demo bot

    async def receive(self, data: str) -> None:
        """Handle one client frame; every refusal is answered with an ``error`` frame."""
        try:
            frame = frames.CLIENT_FRAME.validate_json(data)
        except ValidationError as exc:
            first = exc.errors(include_url=False, include_input=False)[0]
            where = ".".join(str(p) for p in first["loc"]) or "frame"
            await self._refuse("invalid_frame", f"{where}: {first['msg']}")
            return
        client_msg_id = getattr(frame, "client_msg_id", None)
        try:
            if isinstance(frame, frames.RetryFrame):
                await self.forwarder.retry(self.conn.call_id, frame.seq, self.origin)
                return
            seq = await self._record(frame)
        except Refused as refusal:
            retried = frame.seq if isinstance(frame, frames.RetryFrame) else None
            await self._refuse(refusal.code, refusal.detail, client_msg_id, retried)
            return
        except StoreUnavailable:  # the socket stays open: the person can send it again
            await self.conn.send(
                frames.error("store_unavailable", "messages cannot be stored now", client_msg_id)
            )
            return
        await self.conn.send(frames.AckFrame(client_msg_id=frame.client_msg_id, seq=seq).encode())
        await self.forwarder.submit(self.conn.call_id, seq, self.origin)

    async def _refuse(
        self, code: str, detail: str, client_msg_id: str | None = None, seq: int | None = None
    ) -> None:
        self.conn.metrics.rejections.labels(code).inc()
        await self.conn.send(frames.error(code, detail, client_msg_id, seq))

    async def _record(self, frame: frames.SendFrame | frames.ChooseFrame) -> int:
        call_id = self.conn.call_id
        head = {
            "call_id": call_id,
            "seq": 0,
            "id": frame.client_msg_id,
            "sender": "user",
            "ts": int(time.time()),
            "client_msg_id": frame.client_msg_id,
        }
        # A frame re-sent after a lost ack carries the same client_msg_id: same key, same seq.
        key = f"user:{frame.client_msg_id}"
        if isinstance(frame, frames.SendFrame):
            if not frame.text.strip():
                raise Refused("empty_text", "the message is empty")
            if len(frame.text) > self.settings.max_text_length:
                raise Refused(
                    "text_too_long", f"at most {self.settings.max_text_length} characters"
                )
            draft = TextMessage(**head, text=frame.text)
            return (await self.hub.append(call_id, [(key, draft)]))[0]
        choices = await self.hub.find(call_id, frame.message_id)
        if not isinstance(choices, ChoicesMessage):
            raise Refused("unknown_message", f"no choices message {frame.message_id!r} here")
        option = choices.option(frame.option_id)
        if option is None:
            raise Refused(
                "unknown_option", f"message {choices.seq} has no option {frame.option_id!r}"
            )
        answer = ReplyTo(seq=choices.seq, option_id=option.id)
        draft = TextMessage(**head, text=option.label, reply_to=answer)
        return (await self.hub.append(call_id, [(key, draft)], answer=answer))[0]
