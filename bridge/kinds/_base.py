"""What every widget message shares: the head fields, and the wire config."""

from __future__ import annotations

from typing import Any, Literal, TypedDict

from pydantic import BaseModel, ConfigDict, Field

from bridge.vendor.base import Media

Sender = Literal["bot", "user", "system"]


class Wire(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True, serialize_by_alias=True)


class MessageBase(Wire):
    """A widget message. A kind's message adds ``kind: Literal[...]`` and its own fields."""

    v: Literal[1] = 1
    call_id: str
    seq: int = Field(ge=0, description="per-call_id counter from 1, no gaps (0 = not stored yet)")
    id: str = Field(description="stable id: the same vendor message always gets the same id")
    sender: Sender = Field(alias="from")
    ts: int = Field(description="Unix seconds")
    # Declared here so code holding any widget message can read it; every kind narrows it
    # to a Literal, which is where the union's discriminator comes from. Its place (after
    # ts) is the place in every message's JSON.
    kind: str


# The head fields of the message a translator makes, under their wire names (``from`` is
# ``sender`` in Python): ``Message(**head, ...)`` or ``{**head, "kind": ..., ...}``.
Head = TypedDict(
    "Head",
    {"v": Literal[1], "call_id": str, "seq": int, "id": str, "from": Sender, "ts": int},
)

# A widget message as JSON data: what ``message.model_dump(by_alias=True,
# exclude_none=True)`` gives (fields under wire names, in declaration order, None left
# out). A translator may return this instead of the model: it skips a validation and a
# serialization per message (about 9 µs for a list message), so the built-in kinds do,
# and tests/test_kinds.py checks that each one's data is exactly what its model gives.
WidgetData = dict[str, Any]


def with_media(data: WidgetData, media: Media) -> WidgetData:
    """``data`` with the ``url`` and ``name`` fields of a message that shows ``media``."""
    data["url"] = media.origin_url
    if media.name is not None:
        data["name"] = media.name
    return data
