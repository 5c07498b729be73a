"""The widget message (bridge -> browser) and the pure translation from vendor messages.

The kinds' models (``bridge/kinds/``) are the single source of the wire format:
``/schema/widget-message.json`` is generated from :data:`WidgetMessage`, their union.
"""

from __future__ import annotations

import hashlib
from typing import Any

from pydantic import TypeAdapter

from bridge import kinds
from bridge.kinds import Head, WidgetUnion
from bridge.kinds.choices import ChoicesMessage
from bridge.kinds.text import ReplyTo, TextMessage
from bridge.vendor import airudder

# The kinds the bridge itself makes or reads: a person's text, a pick among choices.
__all__ = ["ChoicesMessage", "ReplyTo", "TextMessage"]

VERSION = 1

# Any registered kind's message: the union is built from the registry (bridge/kinds/).
WidgetMessage = WidgetUnion
WIDGET_MESSAGE: TypeAdapter[WidgetMessage] = TypeAdapter(WidgetMessage)
kinds.rebuild_on_change(WIDGET_MESSAGE)


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
    head: Head = {
        "call_id": call_id,
        "seq": 0,
        "id": message_id,
        "sender": "bot",
        "ts": message.timestamp,
    }
    return kinds.translate(message.content, head)


def translate_callback(callback: airudder.Callback) -> list[tuple[str, WidgetMessage]]:
    """All messages of one callback as ``(dedup_key, widget message)`` in order."""
    occurrences: dict[bytes, int] = {}
    out: list[tuple[str, WidgetMessage]] = []
    # model_dump_json(), minus its wrapper; looked up each time: registering a kind
    # rebuilds the model and with it its serializer.
    canonical_json = airudder.Message.__pydantic_serializer__.to_json
    for message in callback.messages:
        canonical = canonical_json(message)
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
