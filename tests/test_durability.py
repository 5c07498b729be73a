"""Nothing acknowledged is lost: real bridge processes on the default (SQLite) store,
killed with SIGKILL and started again on the same data directory."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import aiohttp
import orjson
import pytest

from tests.helpers import frame, until, until_ready
from tests.servers import Bridge, free_port
from tests.upstream import Upstream


@pytest.fixture
def bridge_for(upstream: tuple[Upstream, str]) -> Iterator[Bridge]:
    bridge = Bridge(
        free_port(),
        BRIDGE_UPSTREAM_URL=upstream[1],
        BRIDGE_UPSTREAM_BACKOFF="0.2",
        BRIDGE_UPSTREAM_ATTEMPTS="50",
        BRIDGE_UPSTREAM_MAX_SECONDS="60",
    )
    yield bridge
    bridge.stop()


async def say(http: aiohttp.ClientSession, bridge: Bridge, call_id: str, text: str) -> int:
    """Send ``text`` on a socket and return the seq its ack gave."""
    async with http.ws_connect(f"{bridge.url}/ws/{call_id}") as ws:
        await until_ready(ws)
        await ws.send_json({"type": "send", "client_msg_id": uuid.uuid4().hex, "text": text})
        while (data := await frame(ws))["type"] != "ack":
            pass
        return int(data["seq"])


async def status_on_join(http: aiohttp.ClientSession, bridge: Bridge, call_id: str) -> Any:
    """The statuses a browser joining now is shown, by seq."""
    async with http.ws_connect(f"{bridge.url}/ws/{call_id}") as ws:
        statuses = {}
        while (data := await frame(ws))["type"] != "ready":
            if data["type"] == "status":
                statuses[data["seq"]] = data["status"]
        return statuses


def msg_ids(up: Upstream) -> list[str]:
    return [orjson.loads(body)["messages"][0]["msg_id"] for body, _ in up.requests]


async def test_a_message_acknowledged_while_the_bot_is_down_survives_sigkill(
    upstream: tuple[Upstream, str], bridge_for: Bridge
) -> None:
    up, _ = upstream
    up.healthy, up.fail_status = False, 503
    bridge = bridge_for.start()
    async with aiohttp.ClientSession() as http:
        seq = await say(http, bridge, "down", "are you there?")
        await until(lambda: up.requests)  # it is being tried
        bridge.kill()
        up.healthy = True
        bridge.start()
        await until(lambda: up.accepted)
        assert up.texts() == ["are you there?"]
        statuses = await status_on_join(http, bridge, "down")
        assert statuses[seq] == "sent"
    assert len(up.accepted) == 1, "delivered exactly once"
    assert len(set(msg_ids(up))) == 1, "every attempt carried the same msg_id"


async def test_killed_after_the_bot_answered_posts_once_more_with_the_same_id(
    upstream: tuple[Upstream, str], bridge_for: Bridge
) -> None:
    up, _ = upstream
    bridge = bridge_for.start()
    up.before_answer = bridge.kill  # the bot has it; the bridge dies before storing "sent"
    async with aiohttp.ClientSession() as http:
        seq = await say(http, bridge, "twice", "hello")
        await until(lambda: bridge.process is None)
        up.before_answer = None
        bridge.start()
        await until(lambda: len(up.accepted) == 2)
        statuses = await status_on_join(http, bridge, "twice")
        assert statuses[seq] == "sent"
    ids = msg_ids(up)
    assert len(ids) == 2 and ids[0] == ids[1], "once more, with the same id, and no more"
