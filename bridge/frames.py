"""The frames on ``/ws/{call_id}``, both ways. Message frames are built by
:func:`bridge.widget.encode` (once per message, shared by every socket); the rest here."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from bridge.kinds import rebuild_on_change
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
