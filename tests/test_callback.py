"""POST /webhooks/airudder: acceptance, signatures, errors and idempotency, over real HTTP."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from bridge import samples
from tests.conftest import MakeClient
from tests.helpers import messages, nothing_more, post, until_ready

Client = TestClient[Any, Any]


async def test_seed_example_arrives_in_order_and_only_on_its_call_id(client: Client) -> None:
    mine = await client.ws_connect("/ws/mine")
    other = await client.ws_connect("/ws/other")
    await until_ready(mine)
    await until_ready(other)
    assert await post(client, samples.seed_callback("mine")) == (200, {})
    got = await messages(mine, 7)
    assert [m["kind"] for m in got] == [
        "text",
        "image",
        "video",
        "audio",
        "file",
        "choices",
        "choices",
    ]
    assert [m["seq"] for m in got] == list(range(1, 8))
    assert {m["call_id"] for m in got} == {"mine"}
    assert got[5]["style"] == "list" and got[6]["style"] == "buttons"
    await nothing_more(other)


async def test_retried_callback_is_acknowledged_but_not_shown_twice(client: Client) -> None:
    body = samples.seed_callback("retry")
    assert (await post(client, body))[0] == 200
    assert (await post(client, body))[0] == 200
    ws = await client.ws_connect("/ws/retry")
    replayed, ready = await until_ready(ws)
    assert len(replayed) == 7 and ready["last_seq"] == 7


async def test_same_msg_id_with_new_content_is_a_new_message(client: Client) -> None:
    await post(client, samples.callback("c", samples.text_message("one", "m1", 10)))
    await post(client, samples.callback("c", samples.text_message("two", "m1", 10)))
    ws = await client.ws_connect("/ws/c")
    replayed, _ = await until_ready(ws)
    assert [m["text"] for m in replayed] == ["one", "two"]


async def test_identical_messages_inside_one_body_both_show(client: Client) -> None:
    msg = samples.text_message("again", "m1", 10)
    await post(client, samples.callback("c", msg, msg))
    await post(client, samples.callback("c", msg, msg))  # the vendor's retry of that body
    ws = await client.ws_connect("/ws/c")
    replayed, _ = await until_ready(ws)
    assert [m["text"] for m in replayed] == ["again", "again"]


async def test_signature_required_when_secret_set(make_client: MakeClient) -> None:
    client = await make_client(signing_secret="topsecret")
    body = samples.seed_callback("signed")
    status, error = await post(client, body)
    assert status == 401 and error["error"] == "bad_signature"
    status, _ = await post(client, body, secret=b"wrong")
    assert status == 401
    ws = await client.ws_connect("/ws/signed")
    replayed, _ = await until_ready(ws)
    assert replayed == [], "a refused callback must store nothing"
    assert await post(client, body, secret=b"topsecret") == (200, {})
    assert len(await messages(ws, 7)) == 7


async def test_rotation_accepts_old_and_new_secret(make_client: MakeClient) -> None:
    client = await make_client(signing_secret="new,old")
    for i, secret in enumerate((b"new", b"old")):
        body = samples.callback("rot", samples.text_message("x", f"m{i}"))
        assert (await post(client, body, secret=secret))[0] == 200


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"{not json", 400, "invalid_json"),
        (b"\xff\xfe{}", 400, "invalid_json"),
        (b"[]", 422, "invalid_payload"),
        (b'{"event":"message.send"}', 422, "invalid_payload"),
    ],
)
async def test_bad_bodies_get_json_errors(
    client: Client, body: bytes, status: int, code: str
) -> None:
    got_status, error = await post(client, body)
    assert (got_status, error["error"]) == (status, code)
    assert error["detail"]


async def test_non_http_media_url_is_refused_with_its_path_and_nothing_stored(
    client: Client,
) -> None:
    body = samples.seed_callback("bad-media")
    body["messages"][3]["content"]["media"]["origin_url"] = "javascript:alert(1)"
    status, error = await post(client, body)
    assert status == 422
    assert [d["path"] for d in error["detail"]] == ["messages.3.content.media.origin_url"]
    ws = await client.ws_connect("/ws/bad-media")
    replayed, ready = await until_ready(ws)
    assert replayed == [] and ready["last_seq"] == 0, "no half-applied callback"


async def test_body_over_limit_is_413(make_client: MakeClient) -> None:
    client = await make_client(max_body_bytes=2048)
    body = samples.callback("big", samples.text_message("x" * 4000, "m1"))
    status, error = await post(client, body)
    assert (status, error["error"]) == (413, "body_too_large")


async def test_unknown_event_is_acknowledged_and_pushes_nothing(client: Client) -> None:
    ws = await client.ws_connect("/ws/ev")
    await until_ready(ws)
    body = samples.callback("ev", samples.text_message("x", "m1"), event="call.end")
    assert await post(client, body) == (200, {})
    await nothing_more(ws)
    metrics = await (await client.get("/metrics")).text()
    assert 'bridge_callbacks_total{event="other",outcome="ignored"} 1.0' in metrics


async def test_unknown_content_type_is_delivered_as_unsupported(client: Client) -> None:
    raw = samples.text_message("x", "m1")
    raw["content"] = {"type": "sticker", "sticker": {"id": "9"}}
    await post(client, samples.callback("u", raw))
    ws = await client.ws_connect("/ws/u")
    replayed, _ = await until_ready(ws)
    assert replayed[0]["kind"] == "unsupported" and replayed[0]["content_type"] == "sticker"


async def test_schema_is_served_and_describes_every_kind(client: Client) -> None:
    resp = await client.get("/schema/widget-message.json")
    assert resp.status == 200
    schema = await resp.json()
    kinds = set()
    for definition in schema["$defs"].values():
        kind = definition.get("properties", {}).get("kind", {})
        kinds |= set(kind.get("enum", [])) | ({kind["const"]} if "const" in kind else set())
    assert kinds == {"text", "image", "video", "audio", "file", "choices", "unsupported"}


async def test_healthz(client: Client) -> None:
    resp = await client.get("/healthz")
    assert resp.status == 200 and (await resp.json())["status"] == "ok"


async def test_unknown_path_is_json_404(client: Client) -> None:
    resp = await client.get("/nope")
    assert resp.status == 404 and (await resp.json())["error"] == "not_found"
