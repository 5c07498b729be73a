"""Several bridge processes (real subprocesses) sharing one real Redis.

The vendor's callbacks land on one process while browsers sit on another; processes crash;
Redis goes away and comes back. Nothing acknowledged is lost, nothing shows twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import ClientWebSocketResponse, WSCloseCode, WSMsgType

from bridge.demo import samples
from tests.conftest import StartBridge
from tests.helpers import TIMEOUT, messages, nothing_more, until, until_ready
from tests.servers import Bridge, RedisServer


@pytest.fixture
def durable_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis of its own that fsyncs every write: it can be killed and restarted."""
    server = RedisServer(tmp_path, persistent=True)
    server.start()
    yield server
    server.stop()


def one_text(call_id: str, i: int) -> dict[str, Any]:
    return samples.callback(call_id, samples.text_message(f"t{i}", f"m{i}", 1000 + i))


async def post(http: aiohttp.ClientSession, bridge: Bridge, body: dict[str, Any]) -> int:
    async with http.post(f"{bridge.url}/webhooks/airudder", data=orjson.dumps(body)) as resp:
        if resp.status != 200:
            assert (await resp.json())["error"] == "store_unavailable", await resp.text()
        return resp.status


async def connect(
    http: aiohttp.ClientSession, bridge: Bridge, call_id: str, query: str = ""
) -> ClientWebSocketResponse:
    return await http.ws_connect(f"{bridge.url}/ws/{call_id}{query}")


async def test_500_callbacks_to_two_processes_reach_browsers_on_both_in_order(
    redis_url: str, start_bridge: StartBridge, http: aiohttp.ClientSession
) -> None:
    a, b = start_bridge(redis_url), start_bridge(redis_url)
    on_a, on_b = await connect(http, a, "big"), await connect(http, b, "big")
    _, ready = await until_ready(on_a)
    await until_ready(on_b)
    limit = asyncio.Semaphore(20)

    async def send(i: int) -> int:
        async with limit:
            return await post(http, (a, b)[i % 2], one_text("big", i))

    sending = asyncio.gather(*(send(i) for i in range(500)))
    first_part_on_b = await messages(on_b, 200)
    await on_b.close()  # this browser goes away part-way through
    assert await sending == [200] * 500
    got_a = await messages(on_a, 500)
    assert [m["seq"] for m in got_a] == list(range(1, 501))
    assert sorted(m["text"] for m in got_a) == sorted(f"t{i}" for i in range(500))
    assert first_part_on_b == got_a[:200]
    # The vendor retries some callbacks, each to both processes at once: stored once only.
    retries = [
        post(http, bridge, one_text("big", i)) for i in range(0, 500, 10) for bridge in (a, b)
    ]
    assert await asyncio.gather(*retries) == [200] * 100
    await nothing_more(on_a)

    # B's browser comes back on A and gets exactly what it missed.
    again = await connect(http, a, "big", f"?after=200&epoch={ready['epoch']}")
    replayed, ready_again = await until_ready(again)
    assert replayed == got_a[200:]
    assert ready_again == {**ready, "last_seq": 500, "recovered": True}


async def test_history_survives_killing_every_bridge_process(
    redis_url: str, start_bridge: StartBridge, http: aiohttp.ClientSession
) -> None:
    a, b = start_bridge(redis_url), start_bridge(redis_url)
    for i in range(30):
        assert await post(http, (a, b)[i % 2], one_text("crash", i)) == 200
    _, ready = await until_ready(await connect(http, a, "crash"))
    a.kill()
    b.kill()
    a, b = start_bridge(redis_url, a.port), start_bridge(redis_url, b.port)
    replayed, ready_now = await until_ready(await connect(http, b, "crash"))
    assert [m["text"] for m in replayed] == [f"t{i}" for i in range(30)]
    assert ready_now == ready, "same epoch and last seq: browsers resume as if nothing happened"
    resumed, _ = await until_ready(
        await connect(http, a, "crash", f"?after=25&epoch={ready['epoch']}")
    )
    assert [m["seq"] for m in resumed] == [26, 27, 28, 29, 30]


async def test_redis_outage_refuses_with_503_loses_nothing_and_recovers(
    durable_redis: RedisServer, start_bridge: StartBridge, http: aiohttp.ClientSession
) -> None:
    a, b = start_bridge(durable_redis.url), start_bridge(durable_redis.url)
    browsers = [await connect(http, a, "out"), await connect(http, b, "out")]
    for ws in browsers:
        await until_ready(ws)
    acked: list[int] = []
    refused: list[int] = []
    phase = {"stop": False}

    async def vendor() -> None:
        i = 0
        while not phase["stop"]:
            status = await post(http, (a, b)[i % 2], one_text("out", i))
            (acked if status == 200 else refused).append(i)
            i += 1
            await asyncio.sleep(0.01)  # the vendor's pace, not a wait for anything

    sending = asyncio.create_task(vendor())
    await until(lambda: len(acked) >= 20)
    durable_redis.kill()
    await until(lambda: len(refused) >= 5)
    for bridge in (a, b):
        async with http.get(f"{bridge.url}/readyz") as resp:
            assert resp.status == 503
        async with http.get(f"{bridge.url}/healthz") as resp:
            assert resp.status == 200 and (await resp.json())["store"] == "down"
    late = await connect(http, a, "out")  # a browser arriving now is told to come back
    closing = await late.receive(timeout=TIMEOUT)
    assert closing.type is WSMsgType.CLOSE and closing.data == WSCloseCode.TRY_AGAIN_LATER

    durable_redis.start()
    acked_before = len(acked)
    await until(lambda: len(acked) >= acked_before + 20)
    phase["stop"] = True
    await sending
    for i in refused:  # the vendor retries what got a 503
        assert await post(http, a, one_text("out", i)) == 200

    total = len(acked) + len(refused)
    for ws in browsers:  # open all along, they catch up by themselves
        got = await messages(ws, total)
        assert [m["seq"] for m in got] == list(range(1, total + 1))
        assert sorted(m["text"] for m in got) == sorted(f"t{i}" for i in range(total))
        await nothing_more(ws)
    replayed, _ = await until_ready(await connect(http, b, "out"))
    assert len(replayed) == total, "every acknowledged message stored once"
