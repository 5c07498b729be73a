"""The AIRudder callback "bot reply message" and the upstream request: pydantic models.

The models follow the vendor's spec (``shared/seed``) as restated in DESIGN.md section 1.
Unknown fields are ignored because real senders add fields over time. A message's content
is one of the registered kinds' models (``bridge/kinds/``); an unknown ``content.type``
validates as the ``unsupported`` kind's, so it can still be shown.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import orjson
from pydantic import Field, ValidationError

from bridge.kinds import VendorContent, rebuild_on_change
from bridge.vendor.base import TAG_MARK, Id, Model
from bridge.vendor.base import CallId as CallId  # re-exported: the web layer checks call ids

MESSAGE_SEND = "message.send"


class Message(Model):
    msg_id: Id
    sender_type: str = Field(min_length=1, max_length=32)  # "robot" today; kept open
    timestamp: int = Field(ge=0, lt=2**42)
    content: VendorContent  # one of the content models of bridge/kinds/


class User(Model):
    id: Id
    name: str | None = None


class Callback(Model):
    event: str = Field(min_length=1, max_length=64)
    call_id: CallId
    channel: str = Field(max_length=256)
    channel_id: str = Field(max_length=256)
    user: User
    messages: list[Message] = Field(min_length=1, max_length=100)


rebuild_on_change(Message, Callback)


class Received(NamedTuple):
    callback: Callback
    # Each message's identity: its JSON object as sent, keys sorted (see widget.dedup_key).
    identities: list[bytes]


def receive(body: bytes) -> Received:
    """The callback in ``body`` (``Callback.model_validate_json(body)``: the same model, or
    the same errors) and its messages' identities.

    Faster on the good path: with the Python content discriminators, orjson plus
    Python-mode validation takes about 13 µs for a list message where JSON mode takes 18,
    and the identities come from the objects orjson already made (under 1 µs a message,
    where a canonical dump through the models took 8). A body orjson or Python-mode
    validation refuses is validated again in JSON mode, so a sender sees JSON mode's errors
    (and its verdict on what orjson cannot read, e.g. huge ints); such a body's identities
    come from the models, the same for every copy of it. tests/test_translate.py checks the
    two modes agree.
    """
    try:
        raw = orjson.loads(body)
        callback = Callback.model_validate(raw)
    except (orjson.JSONDecodeError, ValidationError):
        callback = Callback.model_validate_json(body)
        return Received(callback, [m.model_dump_json().encode() for m in callback.messages])
    return Received(
        callback, [orjson.dumps(m, option=orjson.OPT_SORT_KEYS) for m in raw["messages"]]
    )


def parse_callback(body: bytes) -> Callback:
    return receive(body).callback


def error_path(loc: tuple[int | str, ...]) -> str:
    """A pydantic error location as the sender knows the field, union tags left out:
    ``messages.0.content.media.origin_url``."""
    return ".".join(str(part) for part in loc if not str(part).startswith(TAG_MARK))


class Envelope(Model):
    """Who a session belongs to, from its latest callback; echoed on upstream requests."""

    channel: str
    channel_id: str
    user: User

    @classmethod
    def of(cls, callback: Callback) -> Envelope:
        return cls(channel=callback.channel, channel_id=callback.channel_id, user=callback.user)


# -- the other direction: what the person says, forwarded to the vendor -------------------


class UserText(Model):
    type: Literal["text"] = "text"
    text: str


class ReplyPick(Model):
    """WhatsApp's ``button_reply`` / ``list_reply``: which option the person picked."""

    id: str
    title: str
    description: str | None = None


class PickedInteractive(Model):
    type: Literal["button_reply", "list_reply"]
    button_reply: ReplyPick | None = None
    list_reply: ReplyPick | None = None


class UserInteractive(Model):
    type: Literal["interactive"] = "interactive"
    interactive: PickedInteractive


class UserMessage(Model):
    msg_id: str = Field(description="the same on every retry, so the receiver can de-duplicate")
    sender_type: Literal["user"] = "user"
    timestamp: int
    content: UserText | UserInteractive


class UpstreamRequest(Model):
    """The body POSTed to ``BRIDGE_UPSTREAM_URL``: the callback envelope, mirrored."""

    event: str = MESSAGE_SEND
    call_id: str
    channel: str
    channel_id: str
    user: User
    messages: list[UserMessage]
