"""Kinds ``image``, ``video`` and ``audio``: a URL the widget plays or shows."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from bridge.kinds import Head, Kind, MessageBase, WidgetData, register
from bridge.kinds._base import with_media
from bridge.vendor.base import Media, Model


class MediaContent(Model):
    type: Literal["image", "video", "audio"]
    media: Media


class MediaMessage(MessageBase):
    kind: Literal["image", "video", "audio"]
    url: str
    name: str | None = Field(None, description="the vendor's media.name: the image's alt text")


def translate(content: MediaContent, head: Head) -> WidgetData:
    return with_media({**head, "kind": content.type}, content.media)


KIND = register(Kind("media", vendor=(MediaContent,), widget=(MediaMessage,), translate=translate))
