"""Delivery to the bot, driven by the store: order after a give-up, Retry-After, seq reuse
after expiry, the admin endpoint that forgets a conversation."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient

from bridge.config import Settings
from bridge.delivery.forwarder import retry_after
from bridge.demo import samples
from bridge.vendor import signing
from bridge.web import admin
from tests.conftest import MakeClient
from tests.helpers import frame, post, send, until_ready
from tests.upstream import Upstream

Client = TestClient[Any, Any]
SECRET = "shared-secret"


async def statuses_until(ws: Any, want: dict[int, str]) -> dict[int, str]:
    """Read frames until every seq in ``want`` has shown that status (latest wins)."""
    seen: dict[int, str] = {}
    while any(seen.get(seq) != status for seq, status in want.items()):
        data = await frame(ws)
        if data["type"] == "status":
            seen[data["seq"]] = data["status"]
    return seen


async def rejoin_after_expiry(client: Client, call_id: str, epoch: str) -> Any:
    """A socket joined once the conversation has expired (a new epoch). The idle expiry
    (0.3 s) passing is what the callers test, so this waits; each look touches the
    conversation, so it looks seldom."""
    for _ in range(20):
        await asyncio.sleep(0.6)
        ws = await client.ws_connect(f"/ws/{call_id}")
        _, ready = await until_ready(ws)
        if ready["epoch"] != epoch:
            return ws
        await ws.close()
    raise AssertionError(f"{call_id} never expired")


@pytest.fixture
async def bridge(
    make_client: MakeClient, upstream: tuple[Upstream, str], store: dict[str, Any]
) -> Client:
    return await make_client(
        **store, upstream_url=upstream[1], upstream_backoff=0.01, upstream_attempts=2
    )


async def test_a_give_up_holds_the_rest_and_a_retry_sends_all_in_order(
    bridge: Client, upstream: tuple[Upstream, str]
) -> None:
    up, _ = upstream
    up.healthy = False
    ws = await bridge.ws_connect("/ws/order")
    await until_ready(ws)
    for text in ("one", "two", "three"):
        await ws.send_json(send(text))
    await statuses_until(ws, {1: "failed", 2: "failed", 3: "failed"})
    assert up.accepted == [] and {
        orjson.loads(b)["messages"][0]["content"]["text"] for b, _ in up.requests
    } == {"one"}, "nothing behind the failed one went out"
    up.healthy = True
    await ws.send_json({"type": "retry", "seq": 2})
    await statuses_until(ws, {1: "sent", 2: "sent", 3: "sent"})
    assert up.texts() == ["one", "two", "three"]


@pytest.mark.parametrize(
    "upstream", [{"fail_first": 1, "fail_status": 429, "retry_after": "1"}], indirect=True
)
async def test_429_waits_as_long_as_retry_after_says(
    bridge: Client, upstream: tuple[Upstream, str]
) -> None:
    up, _ = upstream
    ws = await bridge.ws_connect("/ws/later")
    await until_ready(ws)
    await ws.send_json(send("patience"))
    await statuses_until(ws, {1: "sent"})
    assert up.texts() == ["patience"] and len(up.times) == 2
    # A lower bound only: a slow machine makes the gap longer, never shorter.
    assert up.times[1] - up.times[0] >= 1.0, "retried sooner than Retry-After allowed"


def test_retry_after_reads_seconds_and_dates() -> None:
    assert retry_after("3") == 3.0
    assert retry_after(None) is None and retry_after("soon") is None and retry_after("³") is None
    in_ten = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 10))
    assert 8.0 < (retry_after(in_ten) or 0) <= 10.0


async def test_after_the_idle_expiry_a_new_message_is_forwarded(
    make_client: MakeClient, upstream: tuple[Upstream, str], store: dict[str, Any]
) -> None:
    """Seq 1 again under a new epoch is a new message: the old delivery of seq 1 never
    shadows it."""
    up, url = upstream
    client = await make_client(
        **store, upstream_url=url, session_ttl=0.3, sweep_interval=0.05, upstream_backoff=0.01
    )
    ws = await client.ws_connect("/ws/again")
    _, first = await until_ready(ws)
    await ws.send_json(send("before"))
    await statuses_until(ws, {1: "sent"})
    await ws.close()
    ws = await rejoin_after_expiry(client, "again", first["epoch"])
    await ws.send_json(send("after"))
    await statuses_until(ws, {1: "sent"})
    assert up.texts() == ["before", "after"]


async def test_a_message_resent_after_the_conversation_started_over_is_not_sent_twice(
    make_client: MakeClient, upstream: tuple[Upstream, str], store: dict[str, Any]
) -> None:
    """Its identity outlives the conversation's idle expiry (de-duplication retention): the
    bot had it already, so it is refused by name, not recorded and forwarded again."""
    up, url = upstream
    client = await make_client(
        **store, upstream_url=url, session_ttl=0.3, sweep_interval=0.05, upstream_backoff=0.01
    )
    ws = await client.ws_connect("/ws/restart")
    _, first = await until_ready(ws)
    out = send("only once")
    await ws.send_json(out)
    await statuses_until(ws, {1: "sent"})
    await ws.close()
    ws = await rejoin_after_expiry(client, "restart", first["epoch"])
    await ws.send_json(out)  # the widget re-sends what it never saw acknowledged
    while (data := await frame(ws))["type"] != "error":
        assert data["type"] != "ack", data
    assert data["client_msg_id"] == out["client_msg_id"]
    assert data["error"]["code"] == "already_sent"
    assert up.texts() == ["only once"]


async def forget(client: Client, call_id: str, secret: str | None, **body: Any) -> Any:
    raw = orjson.dumps({"call_id": call_id, "ts": time.time(), **body})
    settings = Settings(signing_secret=secret) if secret else Settings()
    resp = await client.post(admin.PATH, data=raw, headers=signing.signed_headers(raw, settings))
    return resp.status, await resp.json()


async def test_admin_forget_deletes_a_conversation_when_signed(
    make_client: MakeClient, store: dict[str, Any]
) -> None:
    client = await make_client(**store, signing_secret=SECRET)
    await post(client, samples.seed_callback("private"), secret=SECRET.encode())
    _, before = await until_ready(await client.ws_connect("/ws/private"))
    assert before["last_seq"] == 7
    assert (await forget(client, "private", "wrong"))[0] == 401
    status, answer = await forget(client, "private", SECRET, ts=time.time() - 3600)
    assert (status, answer["error"]) == (401, "stale_request")
    assert await forget(client, "private", SECRET) == (
        200,
        {"call_id": "private", "forgotten": True},
    )
    replayed, after = await until_ready(await client.ws_connect("/ws/private"))
    assert replayed == [] and after["last_seq"] == 0 and after["epoch"] != before["epoch"]
    assert (await forget(client, "never-seen", SECRET))[1]["forgotten"] is False


async def test_admin_forget_is_off_without_a_signing_secret(client: Client) -> None:
    status, answer = await forget(client, "x", None)
    assert (status, answer["error"]) == (403, "admin_disabled")
