"""The widget message (bridge -> browser) and the pure translation from vendor messages.

The kinds' models (``bridge/kinds/``) are the single source of the wire format:
``/schema/widget-message.json`` is generated from :data:`WidgetMessage`, their union.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import TypeAdapter

from bridge import kinds
from bridge.kinds import Head, WidgetData, WidgetUnion
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


def dedup_key(call_id: str, identity: bytes, occurrence: int) -> str:
    """Identity of one vendor message for de-duplicating retried callbacks.

    ``msg_id`` alone is not unique (the vendor's own example reuses one id for six
    messages), so the whole message object counts (``identity``: its JSON, keys sorted).
    ``occurrence`` separates identical objects repeated inside one body, which a retry of
    that body repeats the same way.
    """
    digest = hashlib.sha256(call_id.encode() + b"\0" + identity + b"\0%d" % occurrence)
    return digest.hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class Draft:
    """A widget message on its way into the store: its id, and its ``message`` frame
    split around the seq, which the store puts in without a copy of the model or a second
    encoding: ``head + b"%d" % seq + tail`` is the frame of the message stored with that
    seq. Encoded once; every socket gets the same bytes."""

    id: str
    head: bytes
    tail: bytes

    @classmethod
    def of(cls, message: WidgetMessage | WidgetData) -> Draft:
        """From a widget model, or from the same as JSON data (a kind's fast path, see
        :data:`bridge.kinds.WidgetData`)."""
        if isinstance(message, dict):
            message_id, body = message["id"], orjson.dumps(message)
        else:
            if message.seq != 0:
                message = message.model_copy(update={"seq": 0})
            message_id, body = message.id, _to_json(message)
        # ``v`` and ``call_id`` come first, and a JSON string holds a quote only escaped:
        # the first ``"seq":0`` is the field.
        head, marker, tail = (b'{"type":"message","message":' + body + b"}").partition(SEQ_0)
        assert marker, "the widget message has no seq field"
        return cls(message_id, head + b'"seq":', tail)

    def frame(self, seq: int) -> bytes:
        return self.head + b"%d" % seq + self.tail

    def size(self) -> int:
        """Bytes of its frame with a seq of one digit (the size limit's measure)."""
        return len(self.head) + len(self.tail) + 1


SEQ_0 = b'"seq":0'


def _to_json(message: WidgetMessage) -> bytes:
    # model_dump_json(exclude_none=True), minus its wrapper and the str round trip; looked
    # up each time: registering a kind rebuilds the model and with it its serializer.
    return type(message).__pydantic_serializer__.to_json(message, exclude_none=True)


def encode(message: WidgetMessage) -> bytes:
    """The ``message`` frame of ``message``."""
    return b'{"type":"message","message":' + _to_json(message) + b"}"


def translate(call_id: str, message: airudder.Message, message_id: str) -> Draft:
    """One vendor message -> one widget message (seq 0: the store assigns it)."""
    head: Head = {
        "v": 1,
        "call_id": call_id,
        "seq": 0,
        "id": message_id,
        "from": "bot",
        "ts": message.timestamp,
    }
    return Draft.of(kinds.translate(message.content, head))


def translate_callback(received: airudder.Received) -> list[tuple[str, Draft]]:
    """All messages of one callback as ``(dedup_key, draft)`` in order."""
    callback, identities = received
    occurrences: dict[bytes, int] = {}
    out: list[tuple[str, Draft]] = []
    for message, identity in zip(callback.messages, identities, strict=True):
        occurrence = occurrences[identity] = occurrences.get(identity, -1) + 1
        key = dedup_key(callback.call_id, identity, occurrence)
        out.append((key, translate(callback.call_id, message, key)))
    return out
