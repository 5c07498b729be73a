"""The widget message (bridge -> browser) and the pure translation from vendor messages.

These models are the single source of the wire format: ``/schema/widget-message.json`` is
generated from :data:`WidgetMessage`. List and button messages both become kind ``choices``
so the widget has one component for both.
"""

from __future__ import annotations

import hashlib
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from bridge.vendor import airudder

VERSION = 1


class _Wire(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True, serialize_by_alias=True)


class _Message(_Wire):
    v: Literal[1] = 1
    call_id: str
    seq: int = Field(ge=0, description="per-call_id counter from 1, no gaps (0 = not stored yet)")
    id: str = Field(description="stable id: the same vendor message always gets the same id")
    sender: Literal["bot", "user", "system"] = Field(alias="from")
    ts: int = Field(description="Unix seconds")


class Option(_Wire):
    id: str
    label: str
    description: str | None = None


class Section(_Wire):
    title: str | None = None
    options: list[Option]


class ReplyTo(_Wire):
    """What a person's pick answers: the choices message's seq and the option picked."""

    seq: int
    option_id: str


class TextMessage(_Message):
    kind: Literal["text"] = "text"
    text: str
    client_msg_id: str | None = None
    reply_to: ReplyTo | None = None


class MediaMessage(_Message):
    kind: Literal["image", "video", "audio"]
    url: str


class FileMessage(_Message):
    kind: Literal["file"] = "file"
    url: str
    name: str | None = None


class ChoicesMessage(_Message):
    kind: Literal["choices"] = "choices"
    text: str
    style: Literal["list", "buttons"]
    button: str | None = Field(None, description="style list: label of the button opening it")
    sections: list[Section]

    def option(self, option_id: str) -> Option | None:
        for section in self.sections:
            for option in section.options:
                if option.id == option_id:
                    return option
        return None


class UnsupportedMessage(_Message):
    kind: Literal["unsupported"] = "unsupported"
    content_type: str


WidgetMessage = Annotated[
    TextMessage | MediaMessage | FileMessage | ChoicesMessage | UnsupportedMessage,
    Field(discriminator="kind"),
]
WIDGET_MESSAGE: TypeAdapter[WidgetMessage] = TypeAdapter(WidgetMessage)


def json_schema() -> dict[str, Any]:
    schema = WIDGET_MESSAGE.json_schema(by_alias=True, mode="serialization")
    schema["$id"] = "widget-message.json"
    schema["title"] = f"airudder-bridge widget message v{VERSION}"
    return schema


def dedup_key(call_id: str, canonical: bytes, occurrence: int) -> str:
    """Identity of one vendor message for de-duplicating retried callbacks.

    ``msg_id`` alone is not unique (the vendor's own example reuses one id for six
    messages), so the whole message object counts. ``occurrence`` separates identical
    objects repeated inside one body, which a retry of that body repeats the same way.
    """
    digest = hashlib.sha256(call_id.encode() + b"\0" + canonical + b"\0%d" % occurrence)
    return digest.hexdigest()[:32]


def translate(call_id: str, message: airudder.Message, message_id: str) -> WidgetMessage:
    """One vendor message -> one widget message (seq 0: the store assigns it)."""
    head: dict[str, Any] = {
        "call_id": call_id,
        "seq": 0,
        "id": message_id,
        "sender": "bot",
        "ts": message.timestamp,
    }
    content = message.content
    if isinstance(content, airudder.TextContent):
        return TextMessage(**head, text=content.text)
    if isinstance(content, airudder.MediaContent):
        if content.type == "file":
            return FileMessage(**head, url=content.media.origin_url, name=content.media.name)
        return MediaMessage(**head, kind=content.type, url=content.media.origin_url)
    if isinstance(content, airudder.InteractiveContent):
        return _choices(head, content.interactive)
    return UnsupportedMessage(**head, content_type=content.label)


def _choices(
    head: dict[str, Any], interactive: airudder.ListInteractive | airudder.ButtonInteractive
) -> ChoicesMessage:
    # Plain dicts validated once: a model per option would be a validation call each.
    if isinstance(interactive, airudder.ListInteractive):
        sections = [
            {
                "title": section.title,
                "options": [
                    {"id": row.id, "label": row.title, "description": row.description}
                    for row in section.rows
                ],
            }
            for section in interactive.action.sections
        ]
        return ChoicesMessage.model_validate(
            {
                **head,
                "text": interactive.body.text,
                "style": "list",
                "button": interactive.action.button,
                "sections": sections,
            }
        )
    options = [{"id": b.reply.id, "label": b.reply.title} for b in interactive.action.buttons]
    return ChoicesMessage.model_validate(
        {
            **head,
            "text": interactive.body.text,
            "style": "buttons",
            "sections": [{"options": options}],
        }
    )


_CANONICAL = airudder.Message.__pydantic_serializer__  # model_dump_json(), minus its wrapper


def translate_callback(callback: airudder.Callback) -> list[tuple[str, WidgetMessage]]:
    """All messages of one callback as ``(dedup_key, widget message)`` in order."""
    occurrences: dict[bytes, int] = {}
    out: list[tuple[str, WidgetMessage]] = []
    for message in callback.messages:
        canonical = _CANONICAL.to_json(message)
        occurrence = occurrences[canonical] = occurrences.get(canonical, -1) + 1
        key = dedup_key(callback.call_id, canonical, occurrence)
        out.append((key, translate(callback.call_id, message, key)))
    return out


def encode(message: WidgetMessage) -> bytes:
    """The ``message`` frame, encoded once per message and shared by every socket."""
    # model_dump_json(exclude_none=True), minus its wrapper and the str round trip
    body = type(message).__pydantic_serializer__.to_json(message, exclude_none=True)
    return b'{"type":"message","message":' + body + b"}"


def frame_parts(draft: WidgetMessage) -> tuple[bytes, bytes]:
    """``encode(message)`` split around its seq, so a store puts the seq in without a copy
    of the model or a second encoding: ``head + b"%d" % seq + tail`` is exactly what
    :func:`encode` gives for the message stored with that seq. ``v`` and ``call_id`` come
    first, and a JSON string holds a quote only escaped: the first ``"seq":0`` is the field.
    """
    if draft.seq != 0:
        draft = draft.model_copy(update={"seq": 0})
    head, marker, tail = encode(draft).partition(b'"seq":0')
    assert marker, "the widget message has no seq field"
    return head + b'"seq":', tail
