"""POST /webhooks/airudder: acceptance, signatures, errors and idempotency, over real HTTP."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from bridge.demo import samples
from tests.conftest import MakeClient
from tests.helpers import messages, nothing_more, post, until_ready

Client = TestClient[Any, Any]


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
    kind = "x-unknown-test-kind"  # obviously fake: a real new kind must not break this test
    raw["content"] = {"type": kind, kind: {"id": "9"}}
    await post(client, samples.callback("u", raw))
    ws = await client.ws_connect("/ws/u")
    replayed, _ = await until_ready(ws)
    assert replayed[0]["kind"] == "unsupported" and replayed[0]["content_type"] == kind


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
