"""The pure translation from vendor messages to widget messages: no server involved."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from bridge import airudder, samples, widget
from bridge.config import SignScheme


def translated(body: dict) -> list[widget.WidgetMessage]:
    return [m for _, m in widget.translate_callback(airudder.Callback.model_validate(body))]


def test_seed_example_becomes_seven_messages_of_the_expected_kinds() -> None:
    messages = translated(samples.seed_callback())
    assert [m.kind for m in messages] == [
        "text",
        "image",
        "video",
        "audio",
        "file",
        "choices",
        "choices",
    ]
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
    assert isinstance(message, widget.FileMessage)
    assert (message.name, message.url) == ("filename", "https://www.airudder.com/xxxx.pdf")


@pytest.mark.parametrize(
    ("content", "label"),
    [
        ({"type": "location", "location": {"lat": 1}}, "location"),
        ({"type": "interactive", "interactive": {"type": "product"}}, "interactive.product"),
    ],
)
def test_unknown_content_type_becomes_unsupported(content: dict, label: str) -> None:
    raw = samples.text_message("x", "m1")
    raw["content"] = content
    (message,) = translated(samples.callback("c1", raw))
    assert isinstance(message, widget.UnsupportedMessage)
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
    good = airudder.sign(body, b"s3cret", scheme)
    assert airudder.verify(body, good, [b"old", b"s3cret"], scheme)
    assert not airudder.verify(body, good, [b"other"], scheme)
    assert not airudder.verify(body, None, [b"s3cret"], scheme)
    if scheme is not SignScheme.STATIC:
        assert not airudder.verify(body + b" ", good, [b"s3cret"], scheme)


def test_hex_signature_accepts_sha256_prefix_and_upper_case() -> None:
    body = b"{}"
    digest = airudder.sign(body, b"k", SignScheme.HMAC_SHA256_HEX)
    for header in (f"sha256={digest}", digest.upper()):
        assert airudder.verify(body, header, [b"k"], SignScheme.HMAC_SHA256_HEX)
