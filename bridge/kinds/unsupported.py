"""Kind ``unsupported``: a content type no other kind reads, shown (as its type), never
dropped. Its vendor models' ``type: str`` makes them the fallback of the content union."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field

from bridge.kinds import Head, Kind, MessageBase, WidgetData, register
from bridge.vendor.base import Model


class OtherContent(Model):
    # Extra fields kept: two unknown contents of one type differ by them (de-duplication).
    model_config = ConfigDict(extra="allow", frozen=True)

    type: str = Field(min_length=1, max_length=64)

    @property
    def label(self) -> str:
        return self.type


class OtherInteractiveContent(Model):
    """``interactive`` with an ``interactive.type`` no kind reads."""

    type: Literal["interactive"]
    interactive: OtherContent

    @property
    def label(self) -> str:
        return f"interactive.{self.interactive.type}"


class UnsupportedMessage(MessageBase):
    kind: Literal["unsupported"] = "unsupported"
    content_type: str


def translate(content: OtherContent | OtherInteractiveContent, head: Head) -> WidgetData:
    return {**head, "kind": "unsupported", "content_type": content.label}


KIND = register(
    Kind(
        "unsupported",
        vendor=(OtherInteractiveContent, OtherContent),
        widget=(UnsupportedMessage,),
        translate=translate,
    )
)
