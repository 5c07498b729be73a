"""The AIRudder callback "bot reply message" and the upstream request: pydantic models.

The models follow the vendor's spec (``shared/seed``) as restated in DESIGN.md section 1.
Unknown fields are ignored because real senders add fields over time; an unknown
``content.type`` validates as :class:`OtherContent` so it can still be shown.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import orjson
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
)

MESSAGE_SEND = "message.send"

# Union tags show up in pydantic's error locations; the ":" marks them so that
# error_path() can drop them and report the field path a sender recognises.
TAG_MARK = ":"


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        raise ValueError("must be an absolute http(s) URL")
    return value


HttpUrlStr = Annotated[str, Field(min_length=1, max_length=4096), AfterValidator(_http_url)]
Id = Annotated[str, Field(min_length=1, max_length=256)]
CallId = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:@-]+$")]


class Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Media(Model):
    origin_url: HttpUrlStr
    name: str | None = None


class TextContent(Model):
    type: Literal["text"]
    text: str


class MediaContent(Model):
    type: Literal["image", "video", "audio", "file"]
    media: Media


class ListRow(Model):
    id: Id
    title: str
    description: str | None = None


class ListSection(Model):
    title: str | None = None
    rows: list[ListRow] = Field(min_length=1)


class ListAction(Model):
    button: str | None = None
    sections: list[ListSection] = Field(min_length=1)


class Reply(Model):
    id: Id
    title: str


class ReplyButton(Model):
    type: Literal["reply"] = "reply"
    reply: Reply


class ButtonAction(Model):
    buttons: list[ReplyButton] = Field(min_length=1)


class Body(Model):
    text: str


class ListInteractive(Model):
    type: Literal["list"]
    body: Body
    action: ListAction


class ButtonInteractive(Model):
    type: Literal["button"]
    body: Body
    action: ButtonAction


Interactive = Annotated[
    Annotated[ListInteractive, Tag(f"{TAG_MARK}list")]
    | Annotated[ButtonInteractive, Tag(f"{TAG_MARK}button")],
    Discriminator(lambda v: f"{TAG_MARK}{_field(v, 'type')}"),
]


class InteractiveContent(Model):
    type: Literal["interactive"]
    interactive: Interactive


class OtherContent(Model):
    """A content type this bridge does not know yet: shown as "unsupported", never dropped."""

    model_config = ConfigDict(extra="allow", frozen=True)  # kept: they tell two apart

    type: str = Field(min_length=1, max_length=64)

    @property
    def label(self) -> str:
        return self.type


class OtherInteractiveContent(Model):
    type: Literal["interactive"]
    interactive: OtherContent

    @property
    def label(self) -> str:
        return f"interactive.{self.interactive.type}"


def _field(value: Any, name: str) -> Any:
    return value.get(name) if isinstance(value, dict) else getattr(value, name, None)


def _content_tag(value: Any) -> str:
    kind = _field(value, "type")
    if kind == "text":
        return f"{TAG_MARK}text"
    if kind in ("image", "video", "audio", "file"):
        return f"{TAG_MARK}media"
    if kind == "interactive":
        inner = _field(_field(value, "interactive"), "type")
        if isinstance(inner, str) and inner not in ("list", "button"):
            return f"{TAG_MARK}other-interactive"
        return f"{TAG_MARK}interactive"
    return f"{TAG_MARK}other"


Content = Annotated[
    Annotated[TextContent, Tag(f"{TAG_MARK}text")]
    | Annotated[MediaContent, Tag(f"{TAG_MARK}media")]
    | Annotated[InteractiveContent, Tag(f"{TAG_MARK}interactive")]
    | Annotated[OtherInteractiveContent, Tag(f"{TAG_MARK}other-interactive")]
    | Annotated[OtherContent, Tag(f"{TAG_MARK}other")],
    Discriminator(_content_tag),
]


class Message(Model):
    msg_id: Id
    sender_type: str = Field(min_length=1, max_length=32)  # "robot" today; kept open
    timestamp: int = Field(ge=0, lt=2**42)
    content: Content


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


def parse_callback(body: bytes) -> Callback:
    """``Callback.model_validate_json(body)``: the same model, or the same errors.

    Faster on the good path: with the Python content discriminators, orjson plus
    Python-mode validation takes about 13 µs for a list message where JSON mode takes 18.
    A body orjson or Python-mode validation refuses is validated again in JSON mode, so a
    sender sees JSON mode's errors (and its verdict on what orjson cannot read, e.g. huge
    ints). tests/test_translate.py checks the two agree.
    """
    try:
        return Callback.model_validate(orjson.loads(body))
    except (orjson.JSONDecodeError, ValidationError):
        return Callback.model_validate_json(body)


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
