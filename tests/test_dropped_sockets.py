"""Browsers whose TCP connection drops while the bridge is pushing to them leave nothing
behind: the socket's teardown runs whatever its send task died of.

A real ``python -m bridge serve`` process on each store, its log (INFO) captured in a file.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from bridge.demo import samples
from tests.helpers import TIMEOUT, sample, stalled_socket, until
from tests.servers import Bridge, RedisServer, free_port

DROPS = 30
CALLBACKS_EACH = 2  # per dropped socket, each with one text message of TEXT_SIZE characters
TEXT_SIZE = 900_000  # far more than the socket buffers on both ends hold: the writes block


Dropping = tuple[Bridge, RedisServer | None]


@pytest.fixture(params=["sqlite", "memory", "redis"])
def dropping(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Dropping]:
    """A bridge on that store with a short idle expiry, and the Redis it uses (if any)."""
    settings = {
        "BRIDGE_LOG_LEVEL": "INFO",  # so that the error paths would show
        "BRIDGE_SESSION_TTL": "1",
        "BRIDGE_SWEEP_INTERVAL": "0.1",
        "BRIDGE_MAX_MESSAGE_BYTES": str(2 * TEXT_SIZE),  # one message of TEXT_SIZE is taken
        "BRIDGE_HISTORY_BYTES": str(4 * TEXT_SIZE),
    }
    redis_server: RedisServer | None = None
    if request.param != "redis":
        settings["BRIDGE_STORE"] = request.param
    else:
        settings["BRIDGE_REDIS_URL"] = request.getfixturevalue("redis_url")  # emptied
        redis_server = request.getfixturevalue("redis_server")
    running = Bridge(free_port(), log=tmp_path / "bridge.log", **settings)
    try:
        yield running.start(), redis_server
    finally:
        running.stop()


async def metric(http: aiohttp.ClientSession, url: str, name: str) -> float:
    async with http.get(f"{url}/metrics") as resp:
        value = sample(await resp.text(), name)
    assert value is not None, f"{name} is not in /metrics"
    return value


def reset(writer: asyncio.StreamWriter) -> None:
    """Drop the connection abruptly: SO_LINGER on with 0 s makes close() send a TCP RST
    (no close frame, no FIN), as when a browser's network goes away."""
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def joined(reader: asyncio.StreamReader) -> None:
    """Read the server's frames until the ready frame: the socket is subscribed, so what is
    posted now is pushed live by its send task (not replayed)."""
    seen = b""
    async with asyncio.timeout(TIMEOUT):
        while b'"type":"ready"' not in seen:
            chunk = await reader.read(4096)
            assert chunk, "the server closed the socket before it was ready"
            seen += chunk


async def left_behind(
    http: aiohttp.ClientSession,
    bridge: Bridge,
    redis_server: RedisServer | None,
    call_ids: list[str],
) -> dict[str, Any]:
    """What of the dropped sockets' sessions is still there: empty once all of it is gone."""
    left: dict[str, Any] = {"open sockets": await metric(http, bridge.url, "bridge_open_sockets")}
    if redis_server is None:  # the count of a store in the process; Redis's keys are below
        left["sessions"] = await metric(http, bridge.url, "bridge_sessions")
    else:
        with redis_server.client() as admin:
            keys = [k for c in call_ids for k in admin.keys(f"bridge:{{{c}}}:*")]
            # The de-duplication keys outlive the session (by design: see docs/security.md).
            left["keys"] = [k for k in keys if not k.endswith(b":keys")]
            left["channels"] = admin.pubsub_channels("bridge:*")
    return {what: value for what, value in left.items() if value}


async def test_sockets_dropped_while_pushed_to_leave_nothing_behind(dropping: Dropping) -> None:
    bridge, redis_server = dropping
    call_ids = [f"drop-{i}" for i in range(DROPS)]
    sockets = [await stalled_socket("127.0.0.1", bridge.port, f"/ws/{c}") for c in call_ids]
    for reader, _ in sockets:
        await joined(reader)
    text = "x" * TEXT_SIZE
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT)) as http:
        for n in range(CALLBACKS_EACH):
            for call_id in call_ids:
                body = orjson.dumps(samples.callback(call_id, samples.text_message(text, f"m{n}")))
                async with http.post(f"{bridge.url}/webhooks/airudder", data=body) as resp:
                    assert resp.status == 200
        # Every socket is being pushed to: its first message has begun to arrive, and it
        # cannot take all of them (its buffers fill long before), so its sends block.
        for reader, _ in sockets:
            assert await asyncio.wait_for(reader.read(1), TIMEOUT), "nothing was pushed"
        for _, writer in sockets:
            reset(writer)

        async def all_gone() -> bool:
            return not await left_behind(http, bridge, redis_server, call_ids)

        # Only the idle expiry (1 s) to wait for; a leaked session never goes.
        with contextlib.suppress(AssertionError):
            await until(all_gone)
        assert await left_behind(http, bridge, redis_server, call_ids) == {}

    # Nothing logged an error: no traceback, no "unhandled error" from the HTTP middleware.
    signs = ("Traceback", "unhandled", " ERROR ", " CRITICAL ")
    assert [line for line in bridge.logged().splitlines() if any(s in line for s in signs)] == []
