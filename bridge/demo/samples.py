"""The vendor's example callback (the spec's, ``//`` comments removed) and one-message cuts
of it: used by the demo page, the demo bot and the tests."""

from __future__ import annotations

import copy
import json
import time
from functools import cache
from pathlib import Path
from typing import Any

KINDS = ("text", "image", "video", "audio", "file", "list", "button")


@cache
def _seed() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        (Path(__file__).with_name("seed_callback.json")).read_text(encoding="utf-8")
    )
    return data


def seed_callback(call_id: str | None = None) -> dict[str, Any]:
    """The spec's seven-message example, optionally for another call_id."""
    body = copy.deepcopy(_seed())
    if call_id is not None:
        body["call_id"] = call_id
    return body


def sample_message(kind: str) -> dict[str, Any]:
    """One message of the example by kind: text, image, video, audio, file, list, button."""
    return copy.deepcopy(_seed()["messages"][KINDS.index(kind)])


def callback(
    call_id: str, *messages: dict[str, Any], event: str = "message.send"
) -> dict[str, Any]:
    """A callback envelope like the example's around ``messages``."""
    body = seed_callback(call_id)
    body["event"] = event
    body["messages"] = list(messages)
    return body


def text_message(text: str, msg_id: str, timestamp: int | None = None) -> dict[str, Any]:
    return {
        "msg_id": msg_id,
        "sender_type": "robot",
        "timestamp": int(time.time()) if timestamp is None else timestamp,
        "content": {"type": "text", "text": text},
    }
