"""Delivery to the bot on Redis: the queue is in Redis, so any process resumes or retries
any conversation's delivery, one process at a time (a lease per call_id).

First the store itself (what only Redis has: expiry, leases running out, SCAN), then real
bridge processes (``python -m bridge serve``) sharing one real Redis, against a real
local upstream HTTP server.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import ClientWebSocketResponse

from bridge.config import Settings
from bridge.store import Outgoing
from bridge.store.redis import RedisStore
from bridge.store.redis_keys import SessionKeys, lease
from bridge.widget import TextMessage
from tests.conftest import StartBridge
from tests.helpers import TIMEOUT, frame, until_ready
from tests.servers import Bridge, RedisServer
from tests.upstream import Upstream

# -- the store ----------------------------------------------------------------------------


@pytest.fixture
async def store(redis_url: str) -> AsyncIterator[RedisStore]:
    opened = RedisStore(Settings(redis_url=redis_url, session_ttl=60, history_limit=3))
    yield opened
    await opened.close()


async def say(store: RedisStore, call_id: str, text: str) -> int:
    """The person says ``text``: stored and queued for the bot (body ``body-<text>``)."""
    draft = TextMessage(
        call_id=call_id, seq=0, id=f"u-{text}", sender="user", ts=1, text=text,
        client_msg_id=f"c-{text}",
    )  # fmt: skip
    appended = await store.append(
        call_id, [(f"user:{text}", draft)], outgoing=b"body-" + text.encode()
    )
    return appended.seqs[0]


async def job(store: RedisStore, call_id: str, seq: int) -> Outgoing:
    """Message ``seq`` of the conversation as the forwarder would hold it."""
    return Outgoing(seq, b"", 0.0, (await store.replay(call_id, None, None)).epoch)


def expiries(redis_server: RedisServer, call_id: str) -> set[int]:
    """PTTL of each existing key of the session: -1 is "no expiry". Not the de-duplication
    keys': they outlive the session, with an expiry of their own."""
    keys = SessionKeys.of(call_id)
    with redis_server.client() as admin:
        return {admin.pttl(key) for key in keys if key != keys.dedup and admin.exists(key)}


async def test_a_conversation_with_messages_for_the_bot_does_not_expire_until_settled(
    store: RedisStore, redis_server: RedisServer
) -> None:
    seq = await say(store, "kept", "a")
    assert expiries(redis_server, "kept") == {-1}
    await store.replay("kept", None, None)  # other scripts touching it keep it so
    assert expiries(redis_server, "kept") == {-1}
    await store.settle(
        "kept", await job(store, "kept", seq), sent=False, detail="HTTP 500"
    )  # given up: expires again
    assert all(ttl > 0 for ttl in expiries(redis_server, "kept"))
    await store.retry("kept", seq)
    assert expiries(redis_server, "kept") == {-1}
    await store.settle("kept", await job(store, "kept", seq), sent=True)
    assert all(ttl > 0 for ttl in expiries(redis_server, "kept"))


async def test_a_session_starting_over_never_meets_its_old_queue(
    store: RedisStore, redis_server: RedisServer
) -> None:
    assert await say(store, "over", "old") == 1
    with redis_server.client() as admin:
        admin.delete(SessionKeys.of("over").meta)  # as an expiry caught half-way would
    assert await say(store, "over", "new") == 1  # seq 1 again, under a new epoch
    job = await store.next_outgoing("over")
    assert job is not None and job.body == b"body-new"
    assert [w.count for w in await store.waiting()] == [1]


async def test_a_queued_message_keeps_its_status_past_the_history_trim(
    store: RedisStore,
) -> None:
    seq = await say(store, "trim", "a")
    for text in ("b", "c", "d", "e"):  # history_limit 3: seq 1 leaves the history
        await store.settle(
            "trim", await job(store, "trim", await say(store, "trim", text)), sent=True
        )
    replay = await store.replay("trim", None, None)
    shown = [orjson.loads(f) for s, f in replay.frames if s is None]
    assert {"type": "status", "seq": seq, "status": "sending"} in shown
    await store.settle("trim", await job(store, "trim", seq), sent=True)
    replay = await store.replay("trim", None, None)
    assert seq not in [orjson.loads(f)["seq"] for s, f in replay.frames if s is None]


async def test_a_lease_runs_out_and_only_its_holder_renews_or_releases_it(
    store: RedisStore, redis_server: RedisServer
) -> None:
    assert await store.claim("l", "a", 0.2)
    assert not await store.claim("l", "b", 5.0)
    for _ in range(100):  # bounded: the lease runs out after 0.2 s
        if await store.claim("l", "b", 5.0):
            break
        await asyncio.sleep(0.02)
    else:
        raise AssertionError("the lease never ran out")
    await store.release("l", "a")  # late: a's lease is b's by now
    assert not await store.claim("l", "a", 5.0)
    with redis_server.client() as admin:
        assert admin.get(lease("l")) == b"b"
    assert await store.forget("l") is False  # no session, but its lease goes too
    assert await store.claim("l", "a", 5.0)


async def test_waiting_names_each_conversation_once_across_scan_steps(store: RedisStore) -> None:
    call_ids = [f"w{i}" for i in range(700)]  # more than one SCAN step
    for call_id in call_ids:
        await say(store, call_id, "x")
    await store.append("no-queue", [("k", TextMessage(
        call_id="no-queue", seq=0, id="m", sender="bot", ts=1, text="hi"))])  # fmt: skip
    waiting = await store.waiting()
    assert sorted(w.call_id for w in waiting) == sorted(call_ids)
    assert all(w.count == 1 and w.ready for w in waiting)


# -- processes ----------------------------------------------------------------------------


# Short timeouts keep the tests short. A lease lasts the upstream timeout + 10 s.
QUICK = {
    "BRIDGE_UPSTREAM_TIMEOUT": "1",
    "BRIDGE_UPSTREAM_BACKOFF": "0.05",
    "BRIDGE_UPSTREAM_ATTEMPTS": "2",
    "BRIDGE_DELIVERY_SWEEP": "0.2",
}


@pytest.fixture
def forwarding(
    start_bridge: StartBridge, redis_url: str, upstream: tuple[Upstream, str]
) -> Callable[[], Bridge]:
    """Start a bridge process on the shared Redis that forwards to the upstream."""
    return lambda: start_bridge(redis_url, BRIDGE_UPSTREAM_URL=upstream[1], **QUICK)


async def join(http: aiohttp.ClientSession, bridge: Bridge, call_id: str) -> Any:
    ws = await http.ws_connect(f"{bridge.url}/ws/{call_id}")
    await until_ready(ws)
    return ws


async def send(ws: ClientWebSocketResponse, text: str) -> int:
    await ws.send_json({"type": "send", "client_msg_id": uuid.uuid4().hex, "text": text})
    while (data := await frame(ws))["type"] != "ack":
        pass
    seq: int = data["seq"]
    return seq


async def final_status(ws: ClientWebSocketResponse, seq: int) -> dict[str, Any]:
    """The next ``sent`` or ``failed`` status of ``seq`` on this socket."""
    while True:
        data = await frame(ws)
        if data["type"] == "status" and data["seq"] == seq and data["status"] != "sending":
            return data


async def within(seconds: float, check: Callable[[], bool]) -> None:
    async with asyncio.timeout(seconds):
        while not check():  # noqa: ASYNC110 - the state polled is another server's
            await asyncio.sleep(0.05)


async def test_a_message_failed_on_one_process_retried_through_another_goes_once(
    forwarding: Callable[[], Bridge], upstream: tuple[Upstream, str], http: aiohttp.ClientSession
) -> None:
    up, _ = upstream
    up.healthy = False
    a, b = forwarding(), forwarding()
    on_a, on_b = await join(http, a, "r"), await join(http, b, "r")
    seq = await send(on_a, "hello")
    for ws in (on_a, on_b):
        failed = await final_status(ws, seq)
        assert failed["status"] == "failed" and "2 attempts" in failed["detail"]
    assert len(up.requests) == 2 and up.accepted == []

    up.healthy = True
    await on_b.send_json({"type": "retry", "seq": seq})
    for ws in (on_a, on_b):  # every tab, on either process
        assert (await final_status(ws, seq))["status"] == "sent"
    # Both processes' sweeps run several times over: nobody sends it again.
    await asyncio.sleep(5 * 0.2)
    assert len(up.accepted) == 1 and len(up.requests) == 3
    assert len({orjson.loads(body)["messages"][0]["msg_id"] for body, _ in up.requests}) == 1


async def test_a_killed_forwarder_s_conversation_is_delivered_by_another_process(
    forwarding: Callable[[], Bridge], upstream: tuple[Upstream, str], http: aiohttp.ClientSession
) -> None:
    up, _ = upstream
    up.first_delay = 3.0  # the bot takes A's request, answers late: A is killed meanwhile
    a, b = forwarding(), forwarding()
    on_a, on_b = await join(http, a, "k"), await join(http, b, "k")
    seq = await send(on_a, "hello")
    await within(TIMEOUT, lambda: len(up.requests) == 1)
    a.kill()
    assert len(up.requests) == 1, "killed before its own timeout: the next request is B's"
    await on_a.close()
    # B's sweep finds the queue at once, but A's lease (1 s timeout + 10 s) must run out.
    await within(30.0, lambda: len(up.requests) >= 2)
    assert (await final_status(on_b, seq))["status"] == "sent"
    msg_ids = {orjson.loads(body)["messages"][0]["msg_id"] for body, _ in up.requests}
    assert len(msg_ids) == 1, "the same msg_id: the bot can tell it is the same message"
    # At-least-once: the bot took it twice, A's request (A died before the answer) and B's.
    assert len(up.accepted) == len(up.requests) == 2
