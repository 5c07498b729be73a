"""The byte budget and replayed callbacks against a real bridge process on the default store
(SQLite): its memory read from /proc, its answers over HTTP and a WebSocket."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import orjson
import pytest

from bridge.config import SignScheme
from bridge.demo import samples
from bridge.vendor import signing
from tests.helpers import messages, until_ready
from tests.servers import Bridge, free_port

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")

SECRET = b"budget-secret"
HISTORY_BYTES = 2 << 20  # the default


@pytest.fixture
def bridge() -> Iterator[Bridge]:
    """A bridge taking 1 MB messages: in 2 MB bodies, up to 1.5 MB each (of a budget of
    2 MiB), so that only the byte budget bounds what a conversation keeps."""
    running = Bridge(
        free_port(),
        BRIDGE_SIGNING_SECRET=SECRET.decode(),
        BRIDGE_MAX_BODY_BYTES=str(2 << 20),
        BRIDGE_MAX_MESSAGE_BYTES="1500000",
    ).start()
    try:
        yield running
    finally:
        running.stop()


def rss_mb(bridge: Bridge) -> float:
    assert bridge.process is not None
    for line in Path(f"/proc/{bridge.process.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


async def send(http: aiohttp.ClientSession, bridge: Bridge, body: bytes) -> int:
    sign = signing.sign(body, SECRET, SignScheme.HMAC_SHA256_HEX)
    headers = {"Content-Type": "application/json", signing.HEADER: sign}
    async with http.post(f"{bridge.url}/webhooks/airudder", data=body, headers=headers) as resp:
        await resp.read()
        return resp.status


def megabyte(call_id: str, n: int) -> bytes:
    """A callback of one message of 1 MB of text."""
    text = f"{n:06d}" + "x" * 999_994
    return orjson.dumps(samples.callback(call_id, samples.text_message(text, f"m{n}")))


async def test_300_megabyte_callbacks_stay_within_the_byte_budget(
    bridge: Bridge, http: aiohttp.ClientSession
) -> None:
    for n in range(20):  # warm: allocator arenas, SQLite's page cache, a full history
        assert await send(http, bridge, megabyte("big", n)) == 200
    warm = rss_mb(bridge)
    for n in range(20, 300):
        assert await send(http, bridge, megabyte("big", n)) == 200
    grown = rss_mb(bridge) - warm
    # Kept by count alone (500 messages) this grew by ~280 MB; the history is 2 MiB.
    assert grown < 32, f"RSS grew by {grown:.0f} MB after the warm-up ({warm:.0f} MB)"
    async with http.ws_connect(f"{bridge.url.replace('http', 'ws')}/ws/big") as ws:
        replayed, ready = await until_ready(ws)
    sizes = [len(orjson.dumps({"type": "message", "message": m})) for m in replayed]
    assert ready["last_seq"] == 300 and [m["seq"] for m in replayed] == [299, 300]
    assert sum(sizes) <= HISTORY_BYTES, "the replay is within the budget"


async def test_a_signed_callback_replayed_after_1100_newer_is_not_delivered_again(
    bridge: Bridge, http: aiohttp.ClientSession
) -> None:
    captured = orjson.dumps(samples.callback("rp", samples.text_message("captured", "m0")))
    assert await send(http, bridge, captured) == 200
    for n in range(1, 1101):
        newer = samples.callback("rp", samples.text_message(f"newer {n}", f"m{n}"))
        assert await send(http, bridge, orjson.dumps(newer)) == 200
    async with http.ws_connect(f"{bridge.url.replace('http', 'ws')}/ws/rp") as ws:
        replayed, ready = await until_ready(ws)
        assert ready["last_seq"] == 1101 and "captured" not in {m["text"] for m in replayed}
        assert await send(http, bridge, captured) == 200, "acknowledged: the vendor stops"
        marker = samples.callback("rp", samples.text_message("marker", "m-last"))
        assert await send(http, bridge, orjson.dumps(marker)) == 200
        # Frames of one call_id arrive in order: the next one is the marker, not a replay.
        [next_one] = await messages(ws, 1)
        assert (next_one["text"], next_one["seq"]) == ("marker", 1102)
