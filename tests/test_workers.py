"""``airudder-bridge serve --workers N``: processes sharing one port, sessions in Redis."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp
import orjson
from aiohttp import ClientWebSocketResponse

from bridge.demo import samples
from tests.helpers import TIMEOUT, messages, until, until_ready
from tests.servers import ROOT, Bridge, free_port


def children(pid: int) -> set[int]:
    return {
        int(child)
        for task in Path(f"/proc/{pid}/task").iterdir()
        for child in (task / "children").read_text().split()
    }


def worker_pids(bridge: Bridge) -> set[int]:
    """The supervisor's children that listen on the bridge's port."""
    assert bridge.process is not None
    listening = {
        line.split()[9]
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]
        if line.split()[3] == "0A" and int(line.split()[1].split(":")[1], 16) == bridge.port
    }
    return {pid for pid in children(bridge.process.pid) if socket_inodes(pid) & listening}


def socket_inodes(pid: int) -> set[str]:
    inodes = set()
    with contextlib.suppress(FileNotFoundError):
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(FileNotFoundError):
                link = os.readlink(fd)
                if link.startswith("socket:["):
                    inodes.add(link[len("socket:[") : -1])
    return inodes


def running(pids: set[int]) -> set[int]:
    return {pid for pid in pids if Path(f"/proc/{pid}").exists()}


def owner_of(connection: ClientWebSocketResponse, server_port: int, pids: set[int]) -> int:
    """The process holding the server end of ``connection`` (from /proc: the TCP socket
    whose ports mirror ours, then the process with a descriptor on that socket)."""
    client_port = connection.get_extra_info("sockname")[1]
    inode = None
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote = (int(address.split(":")[1], 16) for address in fields[1:3])
        if (local, remote) == (server_port, client_port):
            inode = fields[9]
    assert inode is not None, "the server end of the connection is not in /proc/net/tcp"
    for pid in pids:
        if inode in socket_inodes(pid):
            return pid
    raise AssertionError("no worker holds the connection")


async def socket_on_each_worker(
    http: aiohttp.ClientSession, bridge: Bridge, call_id: str, workers: int
) -> dict[int, ClientWebSocketResponse]:
    """A ready socket on ``call_id`` held by each worker, by pid. The kernel picks a worker
    per connection: connect until each has one."""
    assert bridge.process is not None
    by_worker: dict[int, ClientWebSocketResponse] = {}
    for _ in range(100):
        ws = await http.ws_connect(f"{bridge.url}/ws/{call_id}")
        await until_ready(ws)
        owner = owner_of(ws, bridge.port, children(bridge.process.pid))
        if owner in by_worker:
            await ws.close()
            await asyncio.sleep(0.05)
        else:
            by_worker[owner] = ws
        if len(by_worker) == workers:
            return by_worker
    raise AssertionError("every connection went to the same worker")


def test_several_workers_need_redis_and_say_so() -> None:
    env = {k: v for k, v in os.environ.items() if k != "BRIDGE_REDIS_URL"}
    done = subprocess.run(
        [sys.executable, "-m", "bridge", "serve", "--workers", "2", "--port", str(free_port())],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "--workers 2 needs BRIDGE_REDIS_URL" in done.stderr


async def test_two_workers_share_the_port_and_deliver_across_workers(redis_url: str) -> None:
    port = free_port()
    bridge = Bridge(port, "--workers", "2", BRIDGE_REDIS_URL=redis_url)
    try:
        bridge.start()
        assert bridge.process is not None
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT)) as http:
            async with http.get(f"{bridge.url}/healthz") as resp:
                assert resp.status == 200 and await resp.json() == {"status": "ok", "store": "up"}
            async with http.get(f"{bridge.url}/demo") as resp:
                assert resp.status == 200 and "text/html" in resp.headers["Content-Type"]
            by_worker = await socket_on_each_worker(http, bridge, "shared", 2)
            # The callback lands on one worker; the socket on the other gets it through Redis.
            body = orjson.dumps(samples.seed_callback("shared"))
            async with http.post(f"{bridge.url}/webhooks/airudder", data=body) as resp:
                assert resp.status == 200
            for ws in by_worker.values():
                assert [m["seq"] for m in await messages(ws, 7)] == list(range(1, 8))
                await ws.close()
            # A worker that dies is replaced, and the port keeps serving.
            dead = next(iter(by_worker))
            os.kill(dead, signal.SIGKILL)
            replaced = await until(lambda: worker_pids(bridge) - set(by_worker))
            async with http.get(f"{bridge.url}/healthz") as resp:
                assert resp.status == 200
        assert bridge.stop() == 0, "SIGTERM stops the workers and the supervisor cleanly"
        assert not running(set(by_worker) | replaced)
    finally:
        bridge.kill()


async def test_workers_do_not_outlive_a_killed_supervisor(redis_url: str) -> None:
    bridge = Bridge(free_port(), "--workers", "2", BRIDGE_REDIS_URL=redis_url)
    try:
        bridge.start()
        workers = await until(
            lambda: worker_pids(bridge) if len(worker_pids(bridge)) == 2 else set()
        )
        bridge.kill()
        await until(lambda: not running(workers))
    finally:
        bridge.kill()
