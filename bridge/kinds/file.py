"""Kind ``file``: a download link with the file's name."""

from __future__ import annotations

from typing import Literal

from bridge.kinds import Head, Kind, MessageBase, register
from bridge.vendor.base import Media, Model


class FileContent(Model):
    type: Literal["file"]
    media: Media


class FileMessage(MessageBase):
    kind: Literal["file"] = "file"
    url: str
    name: str | None = None


def translate(content: FileContent, head: Head) -> FileMessage:
    return FileMessage(**head, url=content.media.origin_url, name=content.media.name)


KIND = register(Kind("file", vendor=(FileContent,), widget=(FileMessage,), translate=translate))
