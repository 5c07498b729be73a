"""The fail-over run: callbacks for many conversations posted to two bridge processes while
browsers on both watch every conversation, and something happens to Redis midway.

The vendor here posts each conversation's callbacks one after the other and retries a
callback until it is answered 200 (a 503 while Redis switches; bounded), so every callback
ends up acknowledged, in order. A browser does what the widget does: it keeps what it was
shown by seq, reconnects with ``after=<last seq>&epoch=`` whenever its socket closes, and
replaces everything with the replay when the server says ``recovered: false``. At the end
every browser must show every conversation's callbacks exactly once, in the order sent.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import orjson

from bridge.demo import samples
from tests.servers import Bridge

CONVERSATIONS = 20
PER_CONVERSATION = 100  # 2,000 callbacks
POST_ATTEMPTS = 600  # per callback, 0.05 s apart: 30 s of 503s at most
RECONNECT_ATTEMPTS = 600  # per socket outage, 0.05 s apart
AFTERWARDS = 10  # each conversation's last callbacks wait until what happens midway is over
FINISH_TIMEOUT = 60.0  # seconds for the browsers to show everything after the last 200


def callback(call_id: str, i: int) -> bytes:
    message = samples.text_message(f"{call_id}-{i}", f"{call_id}-m{i}", 1000 + i)
    return orjson.dumps(samples.callback(call_id, message))


class Browser:
    """One socket on one conversation, reconnecting like the widget."""

    def __init__(self, http: aiohttp.ClientSession, bridge: Bridge, call_id: str) -> None:
        self.http = http
        self.url = f"{bridge.url.replace('http', 'ws')}/ws/{call_id}"
        self.shown: dict[int, str] = {}  # seq -> text
        self.epoch: str | None = None
        self.resets = 0  # replays with recovered: false after the first
        self.reconnects = 0
        self.ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def texts(self) -> list[str]:
        return [self.shown[seq] for seq in sorted(self.shown)]

    async def _run(self) -> None:
        failures = 0
        while failures < RECONNECT_ATTEMPTS:
            query = ""
            if self.epoch is not None:
                last = max(self.shown, default=0)
                query = f"?after={last}&epoch={self.epoch}"
            try:
                async with self.http.ws_connect(self.url + query, heartbeat=None) as ws:
                    await self._read(ws)
                failures = 0
            except (aiohttp.ClientError, ConnectionError, TimeoutError):
                failures += 1
            self.reconnects += 1
            await asyncio.sleep(0.05)
        raise AssertionError(f"{self.url} could not reconnect")

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        replayed: dict[int, str] = {}
        live = False
        async for msg in ws:
            if msg.type is not aiohttp.WSMsgType.TEXT:
                break
            frame = orjson.loads(msg.data)
            if frame["type"] == "message":
                message = frame["message"]
                if live:
                    seq = message["seq"]
                    assert seq == max(self.shown, default=0) + 1, (seq, sorted(self.shown)[-3:])
                    self.shown[seq] = message["text"]
                else:
                    replayed[message["seq"]] = message["text"]
            elif frame["type"] == "ready":
                if not frame["recovered"]:
                    if self.epoch is not None:
                        self.resets += 1
                    self.shown = {}
                self.shown.update(replayed)
                self.epoch = frame["epoch"]
                live = True
                self.ready.set()


async def post_until_taken(http: aiohttp.ClientSession, bridge: Bridge, body: bytes) -> int:
    """Post like the vendor: again after a 503 or a dropped connection. The number of
    refusals before the 200."""
    for attempt in range(POST_ATTEMPTS):
        try:
            async with http.post(f"{bridge.url}/webhooks/airudder", data=body) as resp:
                if resp.status == 200:
                    return attempt
                assert resp.status == 503, await resp.text()
        except (aiohttp.ClientError, ConnectionError, TimeoutError):
            pass
        await asyncio.sleep(0.05)
    raise AssertionError("a callback was refused for too long")


async def failover_run(
    http: aiohttp.ClientSession,
    bridges: tuple[Bridge, Bridge],
    midway: Callable[[], Awaitable[Any]] | None = None,
    prefix: str = "c",
) -> dict[str, int]:
    """The run; ``midway`` happens once half of the callbacks were taken, while they go on,
    and the last AFTERWARDS of each conversation wait until it is over. Returns counts
    (refusals, socket reconnects, resets) for the test to report."""
    call_ids = [f"{prefix}{i}" for i in range(CONVERSATIONS)]
    browsers = [Browser(http, bridge, c) for c in call_ids for bridge in bridges]
    for browser in browsers:
        browser.start()
    await asyncio.gather(*(b.ready.wait() for b in browsers))
    taken = 0
    refused = 0
    half = asyncio.Event()
    over = asyncio.Event()  # what happens midway is over

    async def vendor(call_id: str, offset: int) -> None:
        nonlocal taken, refused
        for i in range(PER_CONVERSATION):
            if i == PER_CONVERSATION - AFTERWARDS:
                await over.wait()
            bridge = bridges[(i + offset) % 2]
            refused += await post_until_taken(http, bridge, callback(call_id, i))
            taken += 1
            if taken >= CONVERSATIONS * PER_CONVERSATION // 2:
                half.set()

    async def disrupt() -> None:
        await half.wait()
        if midway is not None:
            await midway()
        over.set()

    expected = {c: [f"{c}-{i}" for i in range(PER_CONVERSATION)] for c in call_ids}

    def wrong() -> list[Browser]:
        return [b for b in browsers if b.texts() != expected[b.url.rsplit("/", 1)[1]]]

    try:
        await asyncio.gather(disrupt(), *(vendor(c, n) for n, c in enumerate(call_ids)))
        for _ in range(int(FINISH_TIMEOUT / 0.1)):
            if not wrong():
                break
            await asyncio.sleep(0.1)
        if wrong():
            sample = wrong()[0]
            raise AssertionError(
                f"{len(wrong())} browsers are not showing every callback once in order, e.g. "
                f"{sample.url}: {len(sample.shown)} shown, first {sample.texts()[:3]}"
            )
    finally:
        for browser in browsers:
            await browser.stop()
    return {
        "refused": refused,
        "reconnects": sum(b.reconnects for b in browsers),
        "resets": sum(b.resets for b in browsers),
    }
