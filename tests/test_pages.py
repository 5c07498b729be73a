"""The pages over real HTTP: the demo's sample callbacks go through the real webhook (signed
when a secret is set), bad input gets a clear error, and pages allow no inline code."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from bridge.demo import samples
from tests.conftest import MakeClient
from tests.helpers import messages, nothing_more, post, until_ready

Client = TestClient[Any, Any]


async def demo_send(client: Client, body: Any) -> tuple[int, Any]:
    resp = await client.post("/demo/send", json=body)
    return resp.status, await resp.json()


@pytest.mark.parametrize("sample", samples.KINDS)
async def test_each_sample_goes_through_the_webhook(client: Client, sample: str) -> None:
    ws = await client.ws_connect("/ws/demo-one")
    await until_ready(ws)
    status, answer = await demo_send(client, {"call_id": "demo-one", "sample": sample})
    assert status == 200
    assert answer["status"] == 200 and answer["response"] == {}
    sent = answer["request"]["messages"]
    assert len(sent) == 1
    assert sent[0]["content"]["type"] == samples.sample_message(sample)["content"]["type"]
    [shown] = await messages(ws, 1)
    expected = {"list": "choices", "button": "choices"}.get(sample, sample)
    assert shown["kind"] == expected


async def test_all_seven_and_repeated_clicks_show_again(client: Client) -> None:
    ws = await client.ws_connect("/ws/demo-all")
    await until_ready(ws)
    for _ in range(2):
        status, answer = await demo_send(client, {"call_id": "demo-all", "sample": "all"})
        assert status == 200 and answer["status"] == 200
    shown = await messages(ws, 14)
    assert [m["seq"] for m in shown] == list(range(1, 15))
    assert [m["kind"] for m in shown[:7]] == [m["kind"] for m in shown[7:]]


async def test_bundled_image_sample_points_at_this_server(client: Client) -> None:
    status, answer = await demo_send(client, {"call_id": "demo-img", "sample": "image_local"})
    url = answer["request"]["messages"][0]["content"]["media"]["origin_url"]
    assert status == 200 and url.endswith("/static/demo/sample.svg")
    image = await client.get(url.split(str(client.server.port), 1)[1])
    assert image.status == 200 and image.content_type == "image/svg+xml"


async def test_demo_signs_when_a_secret_is_configured(make_client: MakeClient) -> None:
    client = await make_client(signing_secret="demo-secret", demo=True)
    status, answer = await demo_send(client, {"call_id": "signed", "sample": "text"})
    assert status == 200 and answer["status"] == 200
    unsigned = await post(client, samples.seed_callback("signed"))
    assert unsigned[0] == 401  # so the demo's 200 above came from a valid signature


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"{not json", 400, "invalid_json"),
        ({"call_id": "x", "sample": "nope"}, 422, "invalid_request"),
        ({"call_id": "bad id!", "sample": "text"}, 422, "invalid_request"),
        ({"sample": "text"}, 422, "invalid_request"),
        ({"call_id": "x", "sample": "text", "extra": 1}, 422, "invalid_request"),
    ],
)
async def test_bad_demo_input_is_refused_and_stores_nothing(
    client: Client, body: Any, status: int, code: str
) -> None:
    if isinstance(body, bytes):
        resp = await client.post("/demo/send", data=body)
    else:
        resp = await client.post("/demo/send", json=body)
    assert resp.status == status
    assert (await resp.json())["error"] == code
    ws = await client.ws_connect("/ws/x")
    replayed, _ = await until_ready(ws)
    assert replayed == []
    await nothing_more(ws)


async def test_demo_without_call_id_redirects_to_a_new_session(client: Client) -> None:
    first = await client.get("/demo", allow_redirects=False)
    second = await client.get("/demo", allow_redirects=False)
    assert first.status == second.status == 302
    assert first.headers["Location"].startswith("/demo?call_id=demo-")
    assert first.headers["Location"] != second.headers["Location"]


@pytest.mark.parametrize("path", ["/demo?call_id=abc", "/chat/abc"])
async def test_pages_load_code_from_files_only(client: Client, path: str) -> None:
    resp = await client.get(path)
    html = await resp.text()
    assert resp.status == 200
    assert "script-src 'self';" in resp.headers["Content-Security-Policy"]
    assert 'data-call-id="abc"' in html
    assert "<style" not in html and "style=" not in html and " on" + "click" not in html
    assert html.count("<script") == html.count("<script src=")


@pytest.mark.parametrize("path", ["/demo?call_id=bad%20id", "/chat/bad%20id"])
async def test_pages_refuse_a_bad_call_id(client: Client, path: str) -> None:
    resp = await client.get(path)
    assert resp.status == 400
    assert (await resp.json())["error"] == "bad_request"


async def test_widget_files_are_served(client: Client) -> None:
    for name, kind in (("widget.js", "javascript"), ("widget.css", "text/css")):
        resp = await client.get(f"/static/{name}")
        assert resp.status == 200 and kind in resp.content_type
