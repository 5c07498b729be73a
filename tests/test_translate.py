"""The pure translation from vendor messages to widget messages: no server involved."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from bridge import widget
from bridge.config import SignScheme
from bridge.demo import samples
from bridge.kinds.file import FileMessage
from bridge.kinds.unsupported import UnsupportedMessage
from bridge.vendor import airudder, signing
from tests.helpers import SEED_KINDS, translated


def test_seed_example_becomes_seven_messages_of_the_expected_kinds() -> None:
    messages = translated(samples.seed_callback())
    assert [m.kind for m in messages] == SEED_KINDS
    assert len({m.id for m in messages}) == 7, "one reused msg_id must not merge messages"


def test_list_keeps_button_label_section_titles_and_rows() -> None:
    (message,) = translated(samples.callback("c1", samples.sample_message("list")))
    assert isinstance(message, widget.ChoicesMessage)
    assert message.style == "list"
    assert message.button == "请选择"
    assert [s.title for s in message.sections] == ["查询类", "寄件类"]
    assert [o.label for s in message.sections for o in s.options] == [
        "物流查询",
        "网点查询",
        "大件快递",
        "小件快递",
    ]


def test_buttons_keep_their_order() -> None:
    (message,) = translated(samples.callback("c1", samples.sample_message("button")))
    assert isinstance(message, widget.ChoicesMessage)
    assert message.style == "buttons"
    assert [o.label for o in message.sections[0].options] == ["男", "女", "其他"]
    assert message.sections[0].options[0].id.endswith("-button-0-")


def test_row_description_travels() -> None:
    raw = samples.sample_message("list")
    raw["content"]["interactive"]["action"]["sections"][0]["rows"][0]["description"] = "24h"
    (message,) = translated(samples.callback("c1", raw))
    assert isinstance(message, widget.ChoicesMessage)
    assert message.sections[0].options[0].description == "24h"


def test_file_keeps_name_and_url() -> None:
    (message,) = translated(samples.callback("c1", samples.sample_message("file")))
    assert isinstance(message, FileMessage)
    assert (message.name, message.url) == ("filename", "https://www.airudder.com/xxxx.pdf")


def test_media_keeps_its_name_for_the_alt_text() -> None:
    raw = samples.sample_message("image")
    raw["content"]["media"]["name"] = "Store front, Main Street"
    (named,) = translated(samples.callback("c1", raw))
    (plain,) = translated(samples.callback("c1", samples.sample_message("image")))
    assert named.kind == plain.kind == "image"
    assert getattr(named, "name", None) == "Store front, Main Street"
    assert getattr(plain, "name", "missing") is None
    assert b'"name"' not in widget.encode(plain), "no name: no field on the wire"


@pytest.mark.parametrize(
    ("content", "label"),
    [
        ({"type": "x-unknown-test-kind", "x-unknown-test-kind": {"a": 1}}, "x-unknown-test-kind"),
        (
            {"type": "interactive", "interactive": {"type": "x-unknown-test-kind"}},
            "interactive.x-unknown-test-kind",
        ),
    ],
)
def test_unknown_content_type_becomes_unsupported(content: dict, label: str) -> None:
    raw = samples.text_message("x", "m1")
    raw["content"] = content
    (message,) = translated(samples.callback("c1", raw))
    assert isinstance(message, UnsupportedMessage)
    assert message.content_type == label


def test_extra_fields_are_ignored_and_user_name_is_optional() -> None:
    body = samples.seed_callback()
    body["surprise"] = {"new": True}
    body["messages"][0]["content"]["emphasis"] = "bold"
    del body["user"]["name"]
    assert translated(body)[0].kind == "text"


@pytest.mark.parametrize(
    ("mutate", "path"),
    [
        (
            lambda b: b["messages"][1]["content"]["media"].update(origin_url="ftp://x/y.jpg"),
            "messages.1.content.media.origin_url",
        ),
        (lambda b: b["messages"][0]["content"].pop("text"), "messages.0.content.text"),
        (lambda b: b["user"].pop("id"), "user.id"),
        (lambda b: b.update(messages=[]), "messages"),
        (
            lambda b: b["messages"][5]["content"]["interactive"]["action"]["sections"][1]["rows"][
                0
            ].pop("id"),
            "messages.5.content.interactive.action.sections.1.rows.0.id",
        ),
        (
            lambda b: b["messages"][6]["content"]["interactive"]["action"].update(buttons=[]),
            "messages.6.content.interactive.action.buttons",
        ),
    ],
)
def test_schema_errors_name_the_field_path(mutate, path: str) -> None:
    body = samples.seed_callback()
    mutate(body)
    with pytest.raises(ValidationError) as info:
        airudder.Callback.model_validate(body)
    assert path in [airudder.error_path(e["loc"]) for e in info.value.errors()]


def test_widget_message_round_trips_through_its_schema_model() -> None:
    for message in translated(samples.seed_callback()):
        encoded = widget.encode(message)
        assert encoded.startswith(b'{"type":"message","message":{')
        assert (
            widget.WIDGET_MESSAGE.validate_json(encoded[len(b'{"type":"message","message":') : -1])
            == message
        )


@pytest.mark.parametrize("scheme", list(SignScheme))
def test_signature_accepts_the_right_secret_only(scheme: SignScheme) -> None:
    body = b'{"a":1}'
    good = signing.sign(body, b"s3cret", scheme)
    assert signing.verify(body, good, [b"old", b"s3cret"], scheme)
    assert not signing.verify(body, good, [b"other"], scheme)
    assert not signing.verify(body, None, [b"s3cret"], scheme)
    if scheme is not SignScheme.STATIC:
        assert not signing.verify(body + b" ", good, [b"s3cret"], scheme)


def test_hex_signature_accepts_sha256_prefix_and_upper_case() -> None:
    body = b"{}"
    digest = signing.sign(body, b"k", SignScheme.HMAC_SHA256_HEX)
    for header in (f"sha256={digest}", digest.upper()):
        assert signing.verify(body, header, [b"k"], SignScheme.HMAC_SHA256_HEX)


_LEAF = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=5)
    | st.sampled_from(["text", "image", "interactive", "list", "button", "http://x/y", "1.0"])
)
_KEYS = st.sampled_from(["type", "text", "media", "origin_url", "interactive", "rows", "id"])
_VALUE = st.recursive(
    _LEAF, lambda c: st.lists(c, max_size=3) | st.dictionaries(_KEYS, c, max_size=3), max_leaves=8
)


def _paths(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(node, dict):
        children: Any = node.items()
    else:
        children = enumerate(node) if isinstance(node, list) else []
    return [path, *(p for k, v in children for p in _paths(v, (*path, k)))]


def _outcome(parse: Any, body: bytes) -> tuple[str, Any]:
    try:
        return "ok", parse(body).model_dump_json()
    except ValidationError as exc:  # ctx holds exception objects, equal only as text
        return "error", [{**e, "ctx": str(e.get("ctx"))} for e in exc.errors(include_url=False)]


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.sampled_from(_paths(samples.seed_callback("c1"))), _VALUE, st.booleans())
def test_parse_callback_is_validate_json(path: tuple[Any, ...], value: Any, delete: bool) -> None:
    """The fast parse accepts exactly what JSON-mode validation accepts, with its errors."""
    body: Any = samples.seed_callback("c1")
    parent = body
    for key in path[:-1]:
        parent = parent[key]
    if path and delete and isinstance(parent, dict):
        del parent[path[-1]]
    elif path:
        parent[path[-1]] = value
    raw = json.dumps(body).encode()
    assert _outcome(airudder.parse_callback, raw) == _outcome(
        airudder.Callback.model_validate_json, raw
    )


@pytest.mark.parametrize(
    "raw", [b"", b"{", b"[1]", b"null", b'{"a": 1e400}', b"\xff", b'{"event": "\\ud800"}']
)
def test_parse_callback_errors_on_bodies_orjson_refuses(raw: bytes) -> None:
    assert _outcome(airudder.parse_callback, raw) == _outcome(
        airudder.Callback.model_validate_json, raw
    )
