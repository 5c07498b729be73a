"""Kind ``file``: a download link with the file's name."""

from __future__ import annotations

from typing import Literal

from bridge.kinds import Head, Kind, MessageBase, WidgetData, register
from bridge.kinds._base import with_media
from bridge.vendor.base import Media, Model


class FileContent(Model):
    type: Literal["file"]
    media: Media


class FileMessage(MessageBase):
    kind: Literal["file"] = "file"
    url: str
    name: str | None = None


def translate(content: FileContent, head: Head) -> WidgetData:
    return with_media({**head, "kind": "file"}, content.media)


KIND = register(Kind("file", vendor=(FileContent,), widget=(FileMessage,), translate=translate))
