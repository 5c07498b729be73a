"""Who may join a session, what abuse costs, and what operators see: over real sockets."""

from __future__ import annotations

import base64
import io
import os
import time
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from aiohttp import WSCloseCode, WSMsgType, WSServerHandshakeError, web
from aiohttp.test_utils import TestClient
from pydantic import ValidationError

from bridge import limits, tokens
from bridge.config import Settings
from bridge.demo import samples
from bridge.limits import FrameGate
from tests.conftest import MakeClient
from tests.helpers import TIMEOUT, frame, messages, post, sample, until, until_ready, verdict

Client = TestClient[Any, Any]
SECRET = "widget-secret"


async def handshake(
    client: Client, path: str, origin: str | None = None
) -> tuple[int, dict[str, Any] | None]:
    """A browser-like WebSocket upgrade request: the status and, if refused, the JSON."""
    headers = {
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode(),
        "Sec-WebSocket-Version": "13",
    }
    if origin is not None:
        headers["Origin"] = origin
    resp = await client.get(path, headers=headers)
    if resp.status == 101:
        resp.close()
        return 101, None
    body = await resp.read()
    return resp.status, orjson.loads(body)


async def metric(client: Client, line_start: str) -> float:
    """The value of one sample on /metrics, 0 when it has not been created yet."""
    return sample(await (await client.get("/metrics")).text(), line_start) or 0.0


def texts(call_id: str, *words: str) -> dict[str, Any]:
    return samples.callback(
        call_id, *(samples.text_message(w, f"m-{w}", 1000 + i) for i, w in enumerate(words))
    )


# --- tokens, in Python ------------------------------------------------------------------


def test_token_admits_its_call_id_until_it_expires() -> None:
    token = tokens.mint("c1", 60, secret=SECRET, now=1000)
    assert tokens.verify(token, "c1", secret=SECRET, now=1059) == 1060
    with pytest.raises(tokens.TokenError) as info:
        tokens.verify(token, "c1", secret=SECRET, now=1060)
    assert info.value.code == "token_expired"
    with pytest.raises(tokens.TokenError) as info:
        tokens.verify(token, "c2", secret=SECRET, now=1000)
    assert info.value.code == "token_wrong_call"


def _replace_char(text: str, at: int) -> str:
    return text[:at] + ("B" if text[at] == "A" else "A") + text[at + 1 :]


@pytest.mark.parametrize(
    "tamper",
    [
        lambda t: _replace_char(t, t.rindex(".") + 1),  # the signature's first character
        lambda t: (
            base64.urlsafe_b64encode(b'{"c":"c1","e":99999999999}').decode().rstrip("=")
            + t[t.index(".") :]
        ),  # claims changed, old signature kept
        lambda t: "not-a-token",
    ],
)
def test_tampered_token_is_invalid(tamper: Any) -> None:
    token = tokens.mint("c1", 60, secret=SECRET)
    with pytest.raises(tokens.TokenError) as info:
        tokens.verify(tamper(token), "c1", secret=SECRET)
    assert info.value.code == "token_invalid"


def test_rotation_first_secret_signs_and_every_listed_one_verifies() -> None:
    old = tokens.mint("c1", 60, secret="old")
    new = tokens.mint("c1", 60, secret=["new", "old"])
    assert tokens.verify(old, "c1", secret=["new", "old"])
    assert tokens.verify(new, "c1", secret="new"), "the first secret of the list signs"
    with pytest.raises(tokens.TokenError):
        tokens.verify(old, "c1", secret="new")  # once the old secret is removed


def test_mint_reads_the_secret_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BRIDGE_WIDGET_SECRET", "from-env,older")
    token = tokens.mint("c1", 60)
    assert tokens.verify(token, "c1", secret="from-env")
    monkeypatch.delenv("BRIDGE_WIDGET_SECRET")
    with pytest.raises(ValueError, match="BRIDGE_WIDGET_SECRET"):
        tokens.mint("c1", 60)


# --- tokens at the handshake ------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "status", "code"),
    [
        ("", 401, "token_missing"),
        ("?token=garbage", 401, "token_invalid"),
        ("?token={other_secret}", 401, "token_invalid"),
        ("?token={expired}", 401, "token_expired"),
        ("?token={other_call}", 403, "token_wrong_call"),
    ],
)
async def test_bad_token_is_refused_before_the_upgrade(
    make_client: MakeClient, query: str, status: int, code: str
) -> None:
    client = await make_client(widget_secret=SECRET)
    await post(client, texts("private", "confidential"))
    query = query.format(
        other_secret=tokens.mint("private", 60, secret="not-ours"),
        expired=tokens.mint("private", 60, secret=SECRET, now=time.time() - 61),
        other_call=tokens.mint("someone-else", 60, secret=SECRET),
    )
    got_status, error = await handshake(client, f"/ws/private{query}")
    assert error is not None and (got_status, error["error"]) == (status, code)
    assert error["detail"] and "confidential" not in orjson.dumps(error).decode()
    with pytest.raises(WSServerHandshakeError) as info:
        await client.ws_connect(f"/ws/private{query}")
    assert info.value.status == status, "the browser gets no socket, so no frame"
    assert await metric(client, f'bridge_rejections_total{{reason="{code}"}}') == 2


async def test_valid_token_joins_and_a_renewed_one_resumes_without_loss(
    make_client: MakeClient,
) -> None:
    client = await make_client(widget_secret=f"{SECRET},previous")
    await post(client, texts("renew", "one", "two"))
    first = tokens.mint("renew", 60, secret="previous")  # minted before a rotation
    ws = await client.ws_connect(f"/ws/renew?token={first}")
    replayed, ready = await until_ready(ws)
    assert [m["text"] for m in replayed] == ["one", "two"]
    await ws.close()
    await post(client, texts("renew", "three", "four"))  # while the widget reconnects
    renewed = tokens.mint("renew", 60, secret=SECRET)
    ws = await client.ws_connect(
        f"/ws/renew?after={ready['last_seq']}&epoch={ready['epoch']}&token={renewed}"
    )
    replayed, again = await until_ready(ws)
    assert [m["text"] for m in replayed] == ["three", "four"] and again["recovered"] is True
    await post(client, texts("renew", "five"))
    assert [m["text"] for m in await messages(ws, 1)] == ["five"]


async def test_without_widget_secret_sockets_are_open(client: Client) -> None:
    await post(client, texts("open", "hello"))
    ws = await client.ws_connect("/ws/open")  # no token at all
    replayed, ready = await until_ready(ws)
    assert [m["text"] for m in replayed] == ["hello"] and ready["last_seq"] == 1


async def test_frames_after_the_token_expired_are_refused_but_reading_goes_on(
    make_client: MakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [time.time()]  # the server's clock for frames, moved by the test
    monkeypatch.setattr(
        limits, "time", SimpleNamespace(time=lambda: now[0], monotonic=time.monotonic)
    )
    client = await make_client(widget_secret=SECRET)
    ws = await client.ws_connect(f"/ws/exp?token={tokens.mint('exp', 60, secret=SECRET)}")
    await until_ready(ws)
    await ws.send_json({"type": "send", "client_msg_id": "before-expiry", "text": "hi"})
    assert (await frame(ws))["type"] == "ack"
    now[0] += 61
    await ws.send_json({"type": "send", "client_msg_id": "after-expiry", "text": "hi"})
    while (got := await frame(ws))["type"] != "error":
        assert got["type"] in ("message", "status")  # of the first send
    assert got["client_msg_id"] == "after-expiry"
    assert got["error"]["code"] == "token_expired"
    await post(client, texts("exp", "still-delivered"))
    assert [m["text"] for m in await messages(ws, 1)] == ["still-delivered"]


# --- origins, headers, CORS ------------------------------------------------------------


async def test_socket_from_a_site_not_allowed_is_refused(make_client: MakeClient) -> None:
    client = await make_client(allowed_origins="https://shop.example, https://b.example/")
    await post(client, texts("o", "secret-text"))
    status, error = await handshake(client, "/ws/o", origin="https://evil.example")
    assert error is not None and (status, error["error"]) == (403, "origin_not_allowed")
    assert "secret-text" not in orjson.dumps(error).decode()
    status, _ = await handshake(client, "/ws/o", origin="null")  # sandboxed frame, file://
    assert status == 403
    for origin in (
        "https://shop.example",
        "https://B.example",
        f"http://{client.host}:{client.port}",
    ):
        assert (await handshake(client, "/ws/o", origin=origin))[0] == 101, origin
    ws = await client.ws_connect("/ws/o", origin="https://shop.example")
    replayed, _ = await until_ready(ws)
    assert [m["text"] for m in replayed] == ["secret-text"]


async def test_pages_carry_csp_and_assets_carry_cors(make_client: MakeClient) -> None:
    client = await make_client(allowed_origins="https://shop.example")
    for page in ("/chat/abc", "/demo?call_id=abc"):
        resp = await client.get(page)
        assert resp.status == 200 and resp.content_type == "text/html"
        csp = resp.headers["Content-Security-Policy"]
        directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
        assert directives["script-src"] == "'self'", "no inline script"
        assert directives["frame-ancestors"] == "'self' https://shop.example"
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        assert resp.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
    assert "Content-Security-Policy" not in (await client.get("/healthz")).headers

    resp = await client.get("/static/widget.js", headers={"Origin": "https://shop.example"})
    assert resp.status == 200
    assert resp.headers["Access-Control-Allow-Origin"] == "https://shop.example"
    assert resp.headers["Vary"] == "Origin"
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    resp = await client.get("/static/widget.js", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in resp.headers


async def test_without_allowed_origins_assets_and_pages_are_open_to_any_site(
    client: Client,
) -> None:
    resp = await client.get("/static/widget.css", headers={"Origin": "https://any.example"})
    assert resp.headers["Access-Control-Allow-Origin"] == "*"
    csp = (await client.get("/chat/abc")).headers["Content-Security-Policy"]
    assert "frame-ancestors *" in csp


@pytest.mark.parametrize(
    "settings", [{"signing_secret": "s"}, {"widget_secret": SECRET}, {"demo": False}]
)
async def test_demo_is_off_once_a_secret_is_set(
    make_client: MakeClient, settings: dict[str, Any]
) -> None:
    client = await make_client(**settings)
    assert (await client.get("/demo?call_id=abc")).status == 404
    resp = await client.post("/demo/send", json={"call_id": "victim", "sample": "list"})
    assert resp.status in (404, 405)
    ws_token = tokens.mint("victim", 60, secret=SECRET)
    ws = await client.ws_connect(f"/ws/victim?token={ws_token}")
    replayed, _ = await until_ready(ws)
    assert replayed == [], "nothing was posted into the session"
    assert (await client.get("/chat/abc")).status == 200, "the chat page stays"


# --- limits ----------------------------------------------------------------------------


async def test_sockets_per_call_id_are_bounded(make_client: MakeClient) -> None:
    client = await make_client(max_sockets_per_call=2)
    await post(client, texts("crowd", "hello"))
    tabs = [await client.ws_connect("/ws/crowd") for _ in range(2)]
    for ws in tabs:
        await until_ready(ws)
    status, error = await handshake(client, "/ws/crowd")
    assert error is not None and (status, error["error"]) == (429, "too_many_sockets")
    assert "hello" not in orjson.dumps(error).decode()
    assert (await handshake(client, "/ws/elsewhere"))[0] == 101, "other call_ids are not affected"
    await tabs[0].close()

    async def admitted() -> bool:
        return (await handshake(client, "/ws/crowd"))[0] == 101

    # The server releases the slot once it sees the close.
    await until(admitted, "the closed socket's slot was released")
    assert not tabs[1].closed


async def test_total_sockets_are_bounded(make_client: MakeClient) -> None:
    client = await make_client(max_sockets=2)
    tabs = [await client.ws_connect(f"/ws/s{i}") for i in range(2)]
    for ws in tabs:
        await until_ready(ws)
    status, error = await handshake(client, "/ws/s9")
    assert error is not None and (status, error["error"]) == (503, "server_full")
    assert await metric(client, "bridge_open_sockets") == 2
    assert (await client.get("/healthz")).status == 200


async def test_oversized_frame_closes_that_socket_with_1009(make_client: MakeClient) -> None:
    # The limit is the larger of the setting and what the longest text takes escaped.
    client = await make_client(ws_max_msg_size=1024, max_text_length=50)
    big = await client.ws_connect("/ws/big")
    other = await client.ws_connect("/ws/big")
    await until_ready(big)
    await until_ready(other)
    await big.send_str("x" * 2000)
    msg = await big.receive(timeout=TIMEOUT)
    assert msg.type is WSMsgType.CLOSE and msg.data == WSCloseCode.MESSAGE_TOO_BIG
    await post(client, texts("big", "still-here"))
    assert [m["text"] for m in await messages(other, 1)] == ["still-here"]
    assert await metric(client, 'bridge_rejections_total{reason="frame_too_large"}') == 1


async def test_flooding_client_is_rate_limited_then_closed_with_1008(
    make_client: MakeClient,
) -> None:
    # A refill slow enough that no frame is earned back during the test.
    client = await make_client(frames_per_second=0.001, frame_burst=3, frame_abuse_limit=4)
    flood = await client.ws_connect("/ws/flood")
    calm = await client.ws_connect("/ws/flood")
    await until_ready(flood)
    await until_ready(calm)
    answers = []
    for i in range(3 + 3):
        await flood.send_str(orjson.dumps({"type": "send", "client_msg_id": f"c{i}"}).decode())
        answers.append(await frame(flood))
    codes = [a["error"]["code"] for a in answers if a["type"] == "error"]
    assert codes[3:] == ["rate_limited"] * 3, "the burst passes, then each frame is refused"
    assert answers[3]["client_msg_id"] == "c3", "the refusal names the refused frame"
    await flood.send_str("{}")  # the 4th refusal in a row
    msg = await flood.receive(timeout=TIMEOUT)
    assert msg.type is WSMsgType.CLOSE and msg.data == WSCloseCode.POLICY_VIOLATION
    assert msg.extra == "too many frames, closing"
    await post(client, texts("flood", "calm-gets-this"))
    assert [m["text"] for m in await messages(calm, 1)] == ["calm-gets-this"]
    assert await metric(client, 'bridge_rejections_total{reason="rate_limited"}') == 4


def test_rate_limit_forgives_a_client_that_pauses() -> None:
    now = [0.0]
    settings = Settings(frames_per_second=1, frame_burst=2, frame_abuse_limit=3)
    gate = FrameGate(settings, None, clock=lambda: now[0])
    assert [verdict(gate) for _ in range(2)] == [None, None]
    assert [v and v.code for v in (verdict(gate), verdict(gate))] == ["rate_limited"] * 2
    now[0] += 2.0  # long enough to refill the whole burst
    assert [verdict(gate) for _ in range(2)] == [None, None]
    assert [v and v.close for v in (verdict(gate), verdict(gate))] == [False, False]
    last = verdict(gate)
    assert last is not None and last.close, "three refusals without a pause"


async def test_full_store_evicts_the_longest_idle_unwatched_session(
    make_client: MakeClient,
) -> None:
    client = await make_client(max_sessions=3, max_sockets=2)
    for call_id in ("a", "b", "c"):
        await post(client, texts(call_id, f"{call_id}-1"))
    watched = await client.ws_connect("/ws/a")  # "a" is the oldest, but someone watches it
    await until_ready(watched)
    await post(client, texts("d", "d-1"))  # full: "b" goes
    assert await metric(client, "bridge_sessions") == 3
    for call_id in ("c", "d"):
        ws = await client.ws_connect(f"/ws/{call_id}")
        replayed, _ = await until_ready(ws)
        assert [m["text"] for m in replayed] == [f"{call_id}-1"]
        await ws.close()
    ws = await client.ws_connect("/ws/b")
    replayed, ready = await until_ready(ws)
    assert replayed == [] and ready["recovered"] is False
    await post(client, texts("a", "a-2"))
    assert [m["text"] for m in await messages(watched, 1)] == ["a-2"], "a was kept"


def test_settings_keep_room_to_evict() -> None:
    with pytest.raises(ValidationError, match=r"BRIDGE_MAX_SOCKETS \(10\) must be lower"):
        Settings(max_sessions=10, max_sockets=10)


# --- observability ---------------------------------------------------------------------


async def test_metrics_move_as_a_session_is_used(make_client: MakeClient) -> None:
    client = await make_client(widget_secret=SECRET)
    token = tokens.mint("m", 60, secret=SECRET)
    ws = await client.ws_connect(f"/ws/m?token={token}")
    await until_ready(ws)
    assert await metric(client, "bridge_open_sockets") == 1
    assert await metric(client, "bridge_sessions") == 1
    await post(client, texts("m", "live-1", "live-2"))
    await messages(ws, 2)
    await post(client, b"{broken")
    await client.post("/webhooks/airudder", data=io.BytesIO(b"x" * (1024 * 1024 + 100)))
    await post(client, samples.callback("m", samples.text_message("x", "y"), event="other"))
    await handshake(client, "/ws/m")
    later = await client.ws_connect(f"/ws/m?token={token}")
    await until_ready(later)  # two replayed messages

    expected = {
        'bridge_callbacks_total{event="message.send",outcome="stored"}': 1,
        'bridge_callbacks_total{event="other",outcome="ignored"}': 1,
        'bridge_rejections_total{reason="invalid_json"}': 1,
        'bridge_rejections_total{reason="body_too_large"}': 1,
        'bridge_rejections_total{reason="token_missing"}': 1,
        "bridge_messages_delivered_total": 4,
        # Both live frames went straight onto the idle socket: neither waited in its queue.
        "bridge_send_queue_wait_seconds_count": 0,
        "bridge_open_sockets": 2,
    }
    assert {k: await metric(client, k) for k in expected} == expected
    await ws.close()
    await later.close()

    async def none_open() -> bool:
        return await metric(client, "bridge_open_sockets") == 0

    await until(none_open, "open sockets went back to 0")


async def test_upstream_forwards_are_counted_by_outcome(
    make_client: MakeClient, aiohttp_server: Any
) -> None:
    answers = [200, 422]  # the vendor takes the first message and refuses the second

    async def vendor(request: web.Request) -> web.Response:
        return web.json_response({}, status=answers.pop(0))

    upstream = web.Application()
    upstream.router.add_post("/", vendor)
    server = await aiohttp_server(upstream)
    client = await make_client(upstream_url=str(server.make_url("/")))
    ws = await client.ws_connect("/ws/fw")
    await until_ready(ws)
    statuses = []
    for i in range(2):
        await ws.send_json({"type": "send", "client_msg_id": f"fw-msg-{i}", "text": "hi"})
        while (got := await frame(ws))["type"] != "status" or got["status"] == "sending":
            pass
        statuses.append(got["status"])
    assert statuses == ["sent", "failed"]
    assert await metric(client, 'bridge_upstream_forwards_total{outcome="sent"}') == 1
    assert await metric(client, 'bridge_upstream_forwards_total{outcome="failed"}') == 1
