"""Kinds ``image``, ``video`` and ``audio``: a URL the widget plays or shows."""

from __future__ import annotations

from typing import Literal

from bridge.kinds import Head, Kind, MessageBase, register
from bridge.vendor.base import Media, Model


class MediaContent(Model):
    type: Literal["image", "video", "audio"]
    media: Media


class MediaMessage(MessageBase):
    kind: Literal["image", "video", "audio"]
    url: str


def translate(content: MediaContent, head: Head) -> MediaMessage:
    return MediaMessage(**head, kind=content.type, url=content.media.origin_url)


KIND = register(Kind("media", vendor=(MediaContent,), widget=(MediaMessage,), translate=translate))
