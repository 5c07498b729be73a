"""The frames on ``/ws/{call_id}``, both ways. Message frames are built by
:class:`bridge.widget.Draft` (once per message, shared by every socket); the rest here."""

from __future__ import annotations

import struct
from typing import Annotated, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from bridge.kinds import rebuild_on_change
from bridge.refusals import Refusal
from bridge.widget import WidgetMessage

DeliveryStatus = Literal["sending", "sent", "failed"]
ClientMsgId = Annotated[str, Field(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


class _Frame(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    def encode(self) -> bytes:
        return self.model_dump_json(exclude_none=True).encode()


# -- server -> browser -------------------------------------------------------------------


class MessageFrame(_Frame):
    type: Literal["message"] = "message"
    message: WidgetMessage


rebuild_on_change(MessageFrame)  # it embeds the union of the registered kinds


class ReadyFrame(_Frame):
    """Sent once the replay is done; ``recovered`` false = the replay is the whole kept
    history (first join, another epoch, or trimmed): the client replaces what it shows."""

    type: Literal["ready"] = "ready"
    last_seq: int
    epoch: str
    recovered: bool
    max_text_length: int = Field(description="the longest text a ``send`` frame may carry")


class AckFrame(_Frame):
    type: Literal["ack"] = "ack"
    client_msg_id: str
    seq: int


class ErrorBody(_Frame):
    code: str
    detail: str


class ErrorFrame(_Frame):
    type: Literal["error"] = "error"
    client_msg_id: str | None = None
    seq: int | None = Field(None, description="the message a refused ``retry`` named")
    error: ErrorBody


class StatusFrame(_Frame):
    """Upstream delivery of the person's message ``seq``, for every socket of the session."""

    type: Literal["status"] = "status"
    seq: int
    status: DeliveryStatus
    detail: str | None = None


ServerFrame = Annotated[
    MessageFrame | ReadyFrame | AckFrame | ErrorFrame | StatusFrame, Field(discriminator="type")
]


# -- browser -> server -------------------------------------------------------------------


class SendFrame(_Frame):
    type: Literal["send"]
    client_msg_id: ClientMsgId
    text: str


class ChooseFrame(_Frame):
    type: Literal["choose"]
    client_msg_id: ClientMsgId
    message_id: int | str = Field(description="the choices message's seq or id")
    option_id: str = Field(min_length=1, max_length=256)


class RetryFrame(_Frame):
    type: Literal["retry"]
    seq: int = Field(ge=1)


ClientFrame = Annotated[SendFrame | ChooseFrame | RetryFrame, Field(discriminator="type")]
CLIENT_FRAME: TypeAdapter[ClientFrame] = TypeAdapter(ClientFrame)


def error(
    code: str, detail: str, client_msg_id: str | None = None, seq: int | None = None
) -> bytes:
    return ErrorFrame(
        client_msg_id=client_msg_id, seq=seq, error=ErrorBody(code=code, detail=detail)
    ).encode()


def parse_client(data: str | bytes) -> ClientFrame:
    """A client frame, or ``Refusal("invalid_frame")`` naming the first field at fault."""
    if isinstance(data, bytes):
        raise Refusal("invalid_frame", "frames are JSON text")
    try:
        return CLIENT_FRAME.validate_json(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(p) for p in first["loc"]) or "frame"
        raise Refusal("invalid_frame", f"{where}: {first['msg']}") from None


def echo(data: str | bytes) -> tuple[str | None, int | None]:
    """The client_msg_id (and a retry's seq) of a refused frame, read leniently, so the
    widget knows which of its messages the error is about."""
    try:
        raw = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None, None
    if not isinstance(raw, dict):
        return None, None
    client_msg_id, seq = raw.get("client_msg_id"), raw.get("seq")
    return (
        client_msg_id if isinstance(client_msg_id, str) else None,
        seq if raw.get("type") == "retry" and type(seq) is int else None,
    )


def text_frame_head(length: int) -> bytes:
    """The head of an unmasked, final WebSocket text frame (RFC 6455 5.2) of ``length``:
    what goes before a frame written straight onto a socket's transport."""
    if length < 126:
        return struct.pack("!BB", 0x81, length)
    if length < 65536:
        return struct.pack("!BBH", 0x81, 126, length)
    return struct.pack("!BBQ", 0x81, 127, length)
