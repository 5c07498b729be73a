"""Kind ``text``: plain text, also what a person says (with ``reply_to`` for a pick)."""

from __future__ import annotations

from typing import Literal

from bridge.kinds import Head, Kind, MessageBase, WidgetData, Wire, register
from bridge.vendor.base import Model


class TextContent(Model):
    type: Literal["text"]
    text: str


class ReplyTo(Wire):
    """What a person's pick answers: the choices message's seq and the option picked."""

    seq: int
    option_id: str


class TextMessage(MessageBase):
    kind: Literal["text"] = "text"
    text: str
    client_msg_id: str | None = None
    reply_to: ReplyTo | None = None


def translate(content: TextContent, head: Head) -> WidgetData:
    return {**head, "kind": "text", "text": content.text}


KIND = register(Kind("text", vendor=(TextContent,), widget=(TextMessage,), translate=translate))
