"""What a process can hold: file descriptors under a low ``ulimit -n``, on both event loops,
and liveness that does not wait on an unresponsive Redis. Real bridge processes."""

from __future__ import annotations

import selectors
import signal
import socket
import time
from pathlib import Path

import aiohttp
import orjson
import pytest

from bridge.demo import samples
from tests.servers import Bridge, RedisServer, free_port

WAIT = 15.0
FILES = 256
FLOOD = 160  # connections that never send a byte


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
async def test_a_low_file_limit_gets_503_not_accept_errors(tmp_path: Path, loop: str) -> None:
    """With ``ulimit -n 256`` the socket cap is lowered (one log line), the 300th socket is
    refused with 503 server_full, and a flood of connections is refused the same way,
    with no accept() error in the log."""
    bridge = Bridge(
        free_port(),
        log=tmp_path / "bridge.log",
        files=FILES,
        BRIDGE_EVENT_LOOP=loop,
        BRIDGE_IDLE_TIMEOUT="2",
        BRIDGE_LOG_LEVEL="WARNING",
    ).start()
    try:
        timeout = aiohttp.ClientTimeout(total=WAIT)
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(timeout=timeout, connector=connector) as http:
            sockets, refused = [], []
            for i in range(299):
                try:
                    sockets.append(await http.ws_connect(f"{bridge.url}/ws/fd-{i % 40}"))
                except aiohttp.WSServerHandshakeError as exc:
                    refused.append(exc.status)
            assert sockets and set(refused) == {503}
            status, answer = await handshake(http, f"{bridge.url}/ws/fd-last")
            assert (status, answer["error"]) == (503, "server_full")
            flood = connect_flood(bridge.port, FLOOD)  # past the limit with the sockets
            status, answer = await handshake(http, f"{bridge.url}/ws/fd-flood")
            assert (status, answer["error"]) == (503, "server_full")
            answers = until_closed(flood)  # each refused, or closed after the idle timeout
            assert any(a.startswith(b"HTTP/1.1 503 ") for a in answers)
            for ws in sockets:
                await ws.close()
        log = bridge.logged()
        assert log.count("BRIDGE_MAX_SOCKETS lowered from 10000 to") == 1
        assert "accept" not in log and "Traceback" not in log, log[-3000:]
    finally:
        bridge.stop()


def connect_flood(port: int, count: int, batch: int = 16) -> list[socket.socket]:
    """``count`` connections, a listen backlog at a time (more would be dropped and
    retried by the kernel a second later)."""
    flood: list[socket.socket] = []
    with selectors.DefaultSelector() as selector:
        for _ in range(0, count, batch):
            for _ in range(batch):
                sock = socket.socket()
                sock.setblocking(False)
                sock.connect_ex(("127.0.0.1", port))
                selector.register(sock, selectors.EVENT_WRITE)
                flood.append(sock)
            deadline = time.monotonic() + WAIT
            while selector.get_map() and time.monotonic() < deadline:
                for key, _ in selector.select(timeout=1):
                    selector.unregister(key.fileobj)
    return flood


def until_closed(flood: list[socket.socket]) -> list[bytes]:
    """What each socket received until the server closed it (bounded by WAIT)."""
    answers = {sock: b"" for sock in flood}
    with selectors.DefaultSelector() as selector:
        for sock in flood:
            selector.register(sock, selectors.EVENT_READ)
        deadline = time.monotonic() + WAIT
        while selector.get_map() and time.monotonic() < deadline:
            for key, _ in selector.select(timeout=1):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                try:
                    chunk = sock.recv(4096)
                except OSError:  # a reset: closed at once past REFUSING
                    chunk = b""
                answers[sock] += chunk
                if not chunk:
                    selector.unregister(sock)
                    sock.close()
    assert all(sock.fileno() == -1 for sock in flood), "the server left connections open"
    return list(answers.values())


async def handshake(http: aiohttp.ClientSession, url: str) -> tuple[int, dict[str, str]]:
    headers = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13"}
    headers["Sec-WebSocket-Key"] = "dGhlIHNhbXBsZSBub25jZQ=="
    async with http.get(url, headers=headers) as resp:
        return resp.status, orjson.loads(await resp.read())


def test_liveness_does_not_wait_on_an_unresponsive_redis(tmp_path: Path) -> None:
    """Redis stopped (SIGSTOP: connections open, no answers): /healthz answers with the
    store ``unknown`` instead of waiting; /readyz and a callback get 503."""
    redis = RedisServer(tmp_path)
    redis.start()
    bridge = Bridge(
        free_port(),
        log=tmp_path / "bridge.log",
        BRIDGE_REDIS_URL=redis.url,
        BRIDGE_REDIS_TIMEOUT="1",
    ).start()
    assert redis.process is not None
    try:
        assert get(bridge, "/healthz") == (200, {"status": "ok", "store": "up"})
        redis.process.send_signal(signal.SIGSTOP)
        assert get(bridge, "/healthz") == (200, {"status": "ok", "store": "unknown"})
        assert get(bridge, "/readyz")[0] == 503
        body = orjson.dumps(samples.seed_callback("edge-redis"))
        status, answer = exchange(bridge, post_request(body))
        assert (status, answer["error"]) == (503, "store_unavailable")
    finally:
        redis.process.send_signal(signal.SIGCONT)
        bridge.stop()
        redis.stop()


def get(bridge: Bridge, path: str) -> tuple[int, dict[str, str]]:
    return exchange(bridge, f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())


def post_request(body: bytes) -> bytes:
    head = "POST /webhooks/airudder HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
    return f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body


def exchange(bridge: Bridge, request: bytes) -> tuple[int, dict[str, str]]:
    with socket.create_connection(("127.0.0.1", bridge.port), timeout=WAIT) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), orjson.loads(body)
