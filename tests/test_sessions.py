"""Sessions over real sockets: replay, recovery with after=/epoch, slow consumers, shutdown."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiohttp import WSCloseCode, WSMsgType
from aiohttp.test_utils import TestClient

from bridge import samples
from bridge.hub import MemoryHub
from bridge.keys import HUB
from tests.conftest import MakeClient
from tests.helpers import (
    TIMEOUT,
    closed_by_server,
    messages,
    nothing_more,
    post,
    stalled_socket,
    until_ready,
)

Client = TestClient[Any, Any]


def texts(call_id: str, start: int, stop: int) -> dict[str, Any]:
    return samples.callback(
        call_id, *(samples.text_message(f"t{i}", f"m{i}", 1000 + i) for i in range(start, stop))
    )


async def test_messages_before_any_browser_are_replayed(client: Client) -> None:
    await post(client, samples.seed_callback("early"))
    ws = await client.ws_connect("/ws/early")
    replayed, ready = await until_ready(ws)
    assert [m["seq"] for m in replayed] == list(range(1, 8))
    assert ready["last_seq"] == 7 and ready["recovered"] is False


async def test_every_browser_of_a_session_gets_every_message(client: Client) -> None:
    tabs = [await client.ws_connect("/ws/many") for _ in range(3)]
    for ws in tabs:
        await until_ready(ws)
    await post(client, texts("many", 1, 6))
    for ws in tabs:
        assert [m["text"] for m in await messages(ws, 5)] == [f"t{i}" for i in range(1, 6)]


async def test_reconnect_with_after_gets_exactly_what_was_missed(client: Client) -> None:
    ws = await client.ws_connect("/ws/rc")
    await until_ready(ws)
    await post(client, texts("rc", 1, 4))
    seen = await messages(ws, 3)
    _, ready = seen, None
    await ws.close()
    await post(client, texts("rc", 4, 8))
    epoch = (await until_ready(await client.ws_connect("/ws/rc")))[1]["epoch"]
    ws = await client.ws_connect(f"/ws/rc?after=3&epoch={epoch}")
    replayed, ready = await until_ready(ws)
    assert [m["seq"] for m in replayed] == [4, 5, 6, 7]
    assert ready == {"type": "ready", "last_seq": 7, "epoch": epoch, "recovered": True}
    await post(client, texts("rc", 8, 9))
    assert [m["seq"] for m in await messages(ws, 1)] == [8]
    await nothing_more(ws)


async def test_other_epoch_replays_everything_unrecovered(client: Client) -> None:
    await post(client, texts("ep", 1, 4))
    ws = await client.ws_connect("/ws/ep?after=2&epoch=stale")
    replayed, ready = await until_ready(ws)
    assert [m["seq"] for m in replayed] == [1, 2, 3]
    assert ready["recovered"] is False


async def test_trimmed_history_replays_what_is_kept_unrecovered(make_client: MakeClient) -> None:
    client = await make_client(history_limit=5)
    await post(client, texts("trim", 1, 11))
    ws = await client.ws_connect("/ws/trim")
    replayed, ready = await until_ready(ws)
    assert [m["seq"] for m in replayed] == [6, 7, 8, 9, 10]
    ws = await client.ws_connect(f"/ws/trim?after=2&epoch={ready['epoch']}")
    replayed, ready = await until_ready(ws)
    assert [m["seq"] for m in replayed] == [6, 7, 8, 9, 10] and ready["recovered"] is False
    ws = await client.ws_connect(f"/ws/trim?after=7&epoch={ready['epoch']}")
    replayed, ready = await until_ready(ws)
    assert [m["seq"] for m in replayed] == [8, 9, 10] and ready["recovered"] is True


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


async def test_overflow_closes_with_1013_and_catch_up_works(make_client: MakeClient) -> None:
    client = await make_client(send_queue=2)
    ws = await client.ws_connect("/ws/of")
    _, ready = await until_ready(ws)
    await post(client, samples.seed_callback("of"))  # 7 at once into a queue of 2
    seqs = []
    while True:
        msg = await ws.receive(timeout=TIMEOUT)
        if msg.type is not WSMsgType.TEXT:
            break
        seqs.append(msg.json()["message"]["seq"])
    assert msg.type is WSMsgType.CLOSE and msg.data == WSCloseCode.TRY_AGAIN_LATER
    assert len(seqs) < 7
    last = seqs[-1] if seqs else 0
    ws = await client.ws_connect(f"/ws/of?after={last}&epoch={ready['epoch']}")
    replayed, ready = await until_ready(ws)
    assert [m["seq"] for m in replayed] == list(range(last + 1, 8)) and ready["recovered"]


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
    hub = client.app[HUB]
    assert isinstance(hub, MemoryHub)
    assert hub.sweep(now=time.monotonic() + 30) == 0, "not idle long enough yet"
    for _ in range(100):  # the server notices the close shortly
        if hub.sweep(now=time.monotonic() + 61):
            break
        await asyncio.sleep(0.02)
    else:
        raise AssertionError("the idle session was not swept")
    ws = await client.ws_connect(f"/ws/idle?after=2&epoch={ready['epoch']}")
    replayed, again = await until_ready(ws)
    assert replayed == [] and again["epoch"] != ready["epoch"] and again["recovered"] is False


async def test_watched_sessions_never_expire(make_client: MakeClient) -> None:
    client = await make_client(session_ttl=60)
    await post(client, texts("kept", 1, 3))
    ws = await client.ws_connect("/ws/kept")
    await until_ready(ws)
    hub = client.app[HUB]
    assert isinstance(hub, MemoryHub)
    assert hub.sweep(now=time.monotonic() + 3600) == 0


async def test_a_kept_message_is_found_by_seq_and_by_id(client: Client) -> None:
    await post(client, samples.seed_callback("find"))
    hub = client.app[HUB]
    choices = await hub.find("find", 6)
    assert choices is not None and choices.kind == "choices" and choices.seq == 6
    assert await hub.find("find", choices.id) == choices
    assert await hub.find("find", 99) is None
    assert await hub.find("nobody", 1) is None
