"""Sessions over real sockets: replay, recovery with after=/epoch, slow consumers, shutdown."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiohttp import WSCloseCode, WSMsgType
from aiohttp.test_utils import TestClient

from bridge.demo import samples
from bridge.keys import STORE
from bridge.store.memory import MemoryStore
from tests.conftest import MakeClient
from tests.helpers import (
    TIMEOUT,
    closed_by_server,
    messages,
    post,
    stalled_socket,
    texts,
    until,
    until_ready,
)

Client = TestClient[Any, Any]


async def test_bad_after_is_a_json_400(client: Client) -> None:
    resp = await client.get("/ws/x?after=-1")
    assert resp.status == 400 and (await resp.json())["error"] == "bad_request"
    resp = await client.get("/ws/bad%20id")
    assert resp.status == 400


async def test_stalled_browser_delays_no_callback_and_no_other_browser(
    make_client: MakeClient,
) -> None:
    client = await make_client(send_queue=64)
    reader_of_stalled, writer = await stalled_socket(client.host, client.port, "/ws/slow")
    reader = await client.ws_connect("/ws/slow")
    await until_ready(reader)
    filler = "x" * 16000  # 16 MB in all: more than any socket buffer holds

    async def read_all() -> list[int]:
        return [m["seq"] for m in await messages(reader, 1000)]

    reading = asyncio.create_task(read_all())
    for i in range(1000):
        body = samples.callback("slow", samples.text_message(f"{filler}{i}", f"m{i}", i))
        assert (await post(client, body))[0] == 200
    assert await asyncio.wait_for(reading, TIMEOUT) == list(range(1, 1001))
    # The stalled socket overflowed its queue and was closed; the reader was not.
    assert await closed_by_server(reader_of_stalled)
    writer.close()
    metrics = await (await client.get("/metrics")).text()
    assert "bridge_queue_overflows_total 1.0" in metrics
    assert not reader.closed


async def test_shutdown_closes_sockets_with_1001(client: Client) -> None:
    ws = await client.ws_connect("/ws/bye")
    await until_ready(ws)
    await client.server.close()
    msg = await ws.receive(timeout=TIMEOUT)
    assert msg.type is WSMsgType.CLOSE and msg.data == WSCloseCode.GOING_AWAY


async def test_idle_sessions_expire_and_get_a_new_epoch(make_client: MakeClient) -> None:
    client = await make_client(session_ttl=60)
    await post(client, texts("idle", 1, 3))
    ws = await client.ws_connect("/ws/idle")
    _, ready = await until_ready(ws)
    await ws.close()
    hub = client.app[STORE]
    assert isinstance(hub, MemoryStore)
    assert hub.sweep(now=time.monotonic() + 30) == 0, "not idle long enough yet"
    # The server notices the close shortly.
    await until(lambda: hub.sweep(now=time.monotonic() + 61), "the idle session was swept")
    ws = await client.ws_connect(f"/ws/idle?after=2&epoch={ready['epoch']}")
    replayed, again = await until_ready(ws)
    assert replayed == [] and again["epoch"] != ready["epoch"] and again["recovered"] is False


async def test_watched_sessions_never_expire(make_client: MakeClient) -> None:
    client = await make_client(session_ttl=60)
    await post(client, texts("kept", 1, 3))
    ws = await client.ws_connect("/ws/kept")
    await until_ready(ws)
    hub = client.app[STORE]
    assert isinstance(hub, MemoryStore)
    assert hub.sweep(now=time.monotonic() + 3600) == 0


async def test_a_kept_message_is_found_by_seq_and_by_id(client: Client) -> None:
    await post(client, samples.seed_callback("find"))
    hub = client.app[STORE]
    choices = await hub.find("find", 6)
    assert choices is not None and choices.kind == "choices" and choices.seq == 6
    assert await hub.find("find", choices.id) == choices
    assert await hub.find("find", 99) is None
    assert await hub.find("nobody", 1) is None
