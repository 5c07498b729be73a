"""A content kind is one registration: a test-only kind, made with the public API of
``bridge.kinds`` alone (what a new ``bridge/kinds/<name>.py`` holds), is validated,
translated, stored, pushed to sockets and published in the schema like a built-in one.

The test kinds are registered by fixtures and unregistered in their teardown, which also
checks that the registry and the schema are back to the built-in kinds: nothing leaks into
other tests (the suite runs in one process, one test at a time).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, Literal

import pytest
from pydantic import Field, PydanticUndefinedAnnotation, ValidationError

from bridge import frames, widget
from bridge.demo import samples
from bridge.kinds import Head, Kind, MessageBase, kinds, register, unregister
from bridge.kinds.choices import ChoicesMessage
from bridge.kinds.unsupported import UnsupportedMessage
from bridge.vendor import airudder
from bridge.vendor.base import HttpUrlStr, Model
from tests import helpers
from tests.conftest import MakeClient
from tests.helpers import messages, post, until_ready

UNKNOWN = "x-unknown-test-kind"  # no kind reads it, now or later

# -- a test-only kind: everything a kind module holds -------------------------------------


class Poll(Model):
    question: str
    options: list[str] = Field(min_length=2)


class PollContent(Model):
    type: Literal["x-test-poll"]
    poll: Poll


class PollMessage(MessageBase):
    kind: Literal["x-test-poll"] = "x-test-poll"
    question: str
    options: list[str]


def to_poll(content: PollContent, head: Head) -> PollMessage:
    return PollMessage(**head, question=content.poll.question, options=content.poll.options)


POLL = Kind("x-test-poll", vendor=(PollContent,), widget=(PollMessage,), translate=to_poll)


# -- and one more under ``interactive``, next to list and button --------------------------


class CtaInteractive(Model):
    type: Literal["x-test-cta"]
    url: HttpUrlStr


class CtaContent(Model):
    type: Literal["interactive"]
    interactive: CtaInteractive


class CtaMessage(MessageBase):
    kind: Literal["x-test-cta"] = "x-test-cta"
    url: str


def to_cta(content: CtaContent, head: Head) -> CtaMessage:
    return CtaMessage(**head, url=content.interactive.url)


CTA = Kind("x-test-cta", vendor=(CtaContent,), widget=(CtaMessage,), translate=to_cta)

BUILT_IN = kinds()
BUILT_IN_SCHEMA = json.dumps(widget.json_schema())


def registered(kind: Kind) -> Iterator[Kind]:
    register(kind)
    try:
        yield kind
    finally:
        unregister(kind)
        assert kinds() == BUILT_IN
        assert json.dumps(widget.json_schema()) == BUILT_IN_SCHEMA


@pytest.fixture
def poll() -> Iterator[Kind]:
    yield from registered(POLL)


@pytest.fixture
def cta() -> Iterator[Kind]:
    yield from registered(CTA)


def message(content: dict[str, Any], msg_id: str = "m1") -> dict[str, Any]:
    return {**samples.text_message("x", msg_id, 1722223000), "content": content}


def poll_content(**poll: Any) -> dict[str, Any]:
    return {"type": "x-test-poll", "poll": {"question": "Tea?", "options": ["yes", "no"], **poll}}


def translated(*contents: dict[str, Any]) -> list[MessageBase]:
    body = samples.callback("c1", *(message(c, f"m{i}") for i, c in enumerate(contents)))
    return helpers.translated(json.dumps(body).encode())


async def test_a_registered_kind_reaches_the_socket(
    poll: Kind, make_client: MakeClient, store: dict[str, Any]
) -> None:
    client = await make_client(**store)
    ws = await client.ws_connect("/ws/poll")
    await until_ready(ws)
    body = samples.callback(
        "poll", message(poll_content(extra="ignored")), message({"type": UNKNOWN}, "m2")
    )
    assert await post(client, body) == (200, {})
    got, unknown = await messages(ws, 2)
    assert {k: got[k] for k in ("seq", "from", "kind", "question", "options")} == {
        "seq": 1,
        "from": "bot",
        "kind": "x-test-poll",
        "question": "Tea?",
        "options": ["yes", "no"],
    }
    assert (unknown["kind"], unknown["content_type"]) == ("unsupported", UNKNOWN)


async def test_the_served_schema_describes_a_registered_kind(
    poll: Kind, make_client: MakeClient
) -> None:
    client = await make_client()
    schema = await (await client.get("/schema/widget-message.json")).json()
    assert schema["discriminator"]["mapping"]["x-test-poll"] == "#/$defs/PollMessage"
    assert {"question", "options"} <= set(schema["$defs"]["PollMessage"]["properties"])


def test_a_registered_kind_round_trips_and_names_its_error_paths(poll: Kind) -> None:
    (message,) = translated(poll_content())
    assert isinstance(message, PollMessage)
    encoded = widget.encode(message)
    assert frames.MessageFrame.model_validate_json(encoded).message == message
    inner = encoded[len(b'{"type":"message","message":') : -1]
    assert widget.WIDGET_MESSAGE.validate_json(inner) == message
    with pytest.raises(ValidationError) as info:
        translated(poll_content(options=["only one"]))
    paths = [airudder.error_path(e["loc"]) for e in info.value.errors()]
    assert paths == ["messages.0.content.poll.options"]


def test_without_the_registration_the_type_is_unsupported() -> None:
    (message,) = translated(poll_content())
    assert isinstance(message, UnsupportedMessage)
    assert message.content_type == "x-test-poll"


def test_an_interactive_kind_sits_next_to_list_and_button(cta: Kind) -> None:
    cta_content = {
        "type": "interactive",
        "interactive": {"type": "x-test-cta", "url": "https://x/"},
    }
    unknown = {"type": "interactive", "interactive": {"type": UNKNOWN}}
    got = translated(cta_content, samples.sample_message("button")["content"], unknown)
    assert [type(m) for m in got] == [CtaMessage, ChoicesMessage, UnsupportedMessage]
    assert isinstance(got[2], UnsupportedMessage)
    assert got[2].content_type == f"interactive.{UNKNOWN}"


@pytest.mark.parametrize(
    ("vendor", "widget_message", "clash"),
    [
        (PollContent, ChoicesMessage, "two kinds claim the widget kind 'choices'"),
        (Model, PollMessage, "Model.type must be a Literal"),
    ],
)
def test_a_kind_that_clashes_is_refused_and_changes_nothing(
    vendor: type[Model], widget_message: type[MessageBase], clash: str
) -> None:
    with pytest.raises(ValueError, match=clash):
        register(Kind("clash", vendor=(vendor,), widget=(widget_message,), translate=to_poll))
    assert kinds() == BUILT_IN
    assert json.dumps(widget.json_schema()) == BUILT_IN_SCHEMA


class PollAgain(Model):
    type: Literal["x-test-poll"]


def test_a_second_reader_of_a_type_is_refused(poll: Kind) -> None:
    again = Kind("again", vendor=(PollAgain,), widget=(), translate=to_poll)
    with pytest.raises(ValueError, match=r"two kinds claim content\.type 'x-test-poll'"):
        register(again)
    assert kinds()[-1] is POLL


class Unbuildable(MessageBase):
    kind: Literal["x-test-unbuildable"] = "x-test-unbuildable"
    later: DefinedNowhere  # type: ignore[name-defined]  # noqa: F821


def test_a_kind_pydantic_cannot_build_is_rolled_back() -> None:
    broken = Kind("broken", vendor=(), widget=(Unbuildable,), translate=to_poll)
    with pytest.raises(PydanticUndefinedAnnotation, match="DefinedNowhere"):
        register(broken)
    assert kinds() == BUILT_IN
    assert json.dumps(widget.json_schema()) == BUILT_IN_SCHEMA
    assert [m.kind for m in translated(samples.sample_message("text")["content"])] == ["text"]


TRICKY = 'quote " backslash \\ tab \t nl \n nul \u0000 del \u007f ls \u2028 é 🙂 </script>'


def tricky(kind: str) -> dict[str, Any]:
    """A sample message of ``kind`` with every string a sender controls made awkward and
    every optional field both present and absent."""

    def walk(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: walk(v) if k not in ("type", "origin_url") else v for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        return TRICKY + value if isinstance(value, str) else value

    content = walk(samples.sample_message(kind)["content"])
    if kind == "list":
        action = content["interactive"]["action"]
        del action["button"]
        del action["sections"][0]["title"]
        action["sections"][1]["rows"][0]["description"] = TRICKY
    return content


@pytest.mark.parametrize("kind", samples.KINDS)
def test_built_in_kinds_data_is_exactly_what_their_models_give(kind: str) -> None:
    """The built-in kinds hand the store JSON data, not models (a validation less per
    message): its frame must be byte for byte what the widget model makes of it."""
    contents = [samples.sample_message(kind)["content"], tricky(kind)]
    body = samples.callback("c1", *(message(c, f"m{i}") for i, c in enumerate(contents)))
    items = widget.translate_callback(airudder.receive(json.dumps(body).encode()))
    for _, draft in items:
        frame = draft.frame(3)
        model = frames.MessageFrame.model_validate_json(frame).message
        assert frame == widget.encode(model)
