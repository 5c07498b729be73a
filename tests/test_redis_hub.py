"""What only the Redis store has to prove: surviving pub/sub loss, and expiry in Redis."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import WSCloseCode, WSMsgType
from aiohttp.test_utils import TestClient

from bridge.store.redis_keys import SessionKeys, channel
from tests.conftest import MakeClient
from tests.helpers import TIMEOUT, messages, nothing_more, post, texts, until, until_ready
from tests.servers import RedisServer, free_port

Client = TestClient[Any, Any]


async def test_frames_lost_by_pub_sub_are_filled_in_from_history(
    make_client: MakeClient, redis_url: str, redis_server: RedisServer
) -> None:
    client = await make_client(redis_url=redis_url)
    ws = await client.ws_connect("/ws/lossy")
    _, ready = await until_ready(ws)
    await post(client, texts("lossy", 1, 2))
    assert [m["seq"] for m in await messages(ws, 1)] == [1]
    admin = redis_server.client()
    sent = 2
    for _ in range(10):  # bounded: until two messages were published while nobody listened
        admin.client_kill_filter(_type="pubsub")
        await post(client, texts("lossy", sent, sent + 1))
        await post(client, texts("lossy", sent + 1, sent + 2))
        sent += 2
        if admin.pubsub_numsub(channel("lossy"))[0][1] == 0:
            break
    else:
        raise AssertionError("the listener always re-subscribed before the publish")
    # After re-subscribing the bridge pushes the latest message; the socket sees the gap
    # and fills it from the stream.
    got = await messages(ws, sent - 2)
    assert [m["seq"] for m in got] == list(range(2, sent))
    await post(client, texts("lossy", sent, sent + 1))
    assert [m["seq"] for m in await messages(ws, 1)] == [sent]
    await nothing_more(ws)
    assert ready["epoch"] == (await until_ready(await client.ws_connect("/ws/lossy")))[1]["epoch"]


async def test_idle_sessions_expire_in_redis_and_get_a_new_epoch(
    make_client: MakeClient, redis_url: str, redis_server: RedisServer
) -> None:
    client = await make_client(redis_url=redis_url, session_ttl=0.3)
    await post(client, texts("idle", 1, 3))
    ws = await client.ws_connect("/ws/idle")
    _, ready = await until_ready(ws)
    await ws.close()
    admin = redis_server.client()
    keys = SessionKeys.of("idle")
    await until(lambda: not admin.exists(*(key for key in keys if key != keys.dedup)))
    # The de-duplication keys outlive the session, with an expiry of their own.
    assert admin.zcard(keys.dedup) == 2 and admin.pttl(keys.dedup) > 3_600_000
    ws = await client.ws_connect(f"/ws/idle?after=2&epoch={ready['epoch']}")
    replayed, again = await until_ready(ws)
    assert replayed == [] and again["epoch"] != ready["epoch"] and again["recovered"] is False


async def test_watched_sessions_do_not_expire_in_redis(
    make_client: MakeClient, redis_url: str
) -> None:
    client = await make_client(redis_url=redis_url, session_ttl=0.3, sweep_interval=0.05)
    await post(client, texts("kept", 1, 3))
    ws = await client.ws_connect("/ws/kept")
    _, ready = await until_ready(ws)
    # The wait is the point (not a wait for something): five times the idle expiry passes
    # with a socket open all along.
    await asyncio.sleep(1.5)
    ws = await client.ws_connect(f"/ws/kept?after=1&epoch={ready['epoch']}")
    replayed, again = await until_ready(ws)
    assert [m["seq"] for m in replayed] == [2] and again["recovered"] is True


async def test_sockets_re_sync_when_redis_loses_their_session(
    make_client: MakeClient, redis_url: str, redis_server: RedisServer
) -> None:
    client = await make_client(redis_url=redis_url)
    await post(client, texts("lost", 1, 4))
    ws = await client.ws_connect("/ws/lost")
    _, ready = await until_ready(ws)
    redis_server.client().flushall()  # as a Redis restart without persistence would
    await post(client, texts("lost", 4, 5))  # seq 1 of a new epoch
    closing = await ws.receive(timeout=TIMEOUT)
    assert closing.type is WSMsgType.CLOSE and closing.data == WSCloseCode.TRY_AGAIN_LATER
    ws = await client.ws_connect(f"/ws/lost?after=3&epoch={ready['epoch']}")
    replayed, again = await until_ready(ws)
    assert [(m["seq"], m["text"]) for m in replayed] == [(1, "t4")]
    assert again["epoch"] != ready["epoch"] and again["recovered"] is False


async def test_without_redis_callbacks_get_503_and_nothing_claims_success(
    make_client: MakeClient,
) -> None:
    client = await make_client(redis_url=f"redis://127.0.0.1:{free_port()}/0", redis_timeout=1)
    status, error = await post(client, texts("down", 1, 2))
    assert status == 503 and error["error"] == "store_unavailable" and error["detail"]
    resp = await client.get("/readyz")
    assert resp.status == 503 and (await resp.json())["store"] == "down"
    resp = await client.get("/healthz")
    assert resp.status == 200 and await resp.json() == {"status": "ok", "store": "down"}
    ws = await client.ws_connect("/ws/down")
    closing = await ws.receive(timeout=TIMEOUT)
    assert closing.type is WSMsgType.CLOSE and closing.data == WSCloseCode.TRY_AGAIN_LATER
    metrics = await (await client.get("/metrics")).text()
    assert 'bridge_rejections_total{reason="store_unavailable"} 1.0' in metrics


async def test_sockets_joining_many_conversations_at_once_all_get_their_messages(
    make_client: MakeClient, redis_url: str
) -> None:
    """Two sockets per conversation, all joining at once: the second socket of a
    conversation must wait for the first one's subscription, not trip over it."""
    client = await make_client(redis_url=redis_url)
    call_ids = [f"crowd-{i}" for i in range(25)]
    sockets = await asyncio.gather(
        *(client.ws_connect(f"/ws/{c}") for c in call_ids for _ in range(2))
    )
    readies = await asyncio.gather(*(until_ready(ws) for ws in sockets))
    assert all(replayed == [] for replayed, _ in readies), "nothing stored yet"
    for call_id in call_ids:
        await post(client, texts(call_id, 1, 2))
    for index, ws in enumerate(sockets):
        [got] = await messages(ws, 1)
        assert got["call_id"] == call_ids[index // 2] and got["seq"] == 1
