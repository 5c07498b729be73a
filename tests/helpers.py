"""Shared test helpers: posting callbacks and reading socket frames with timeouts."""

from __future__ import annotations

import asyncio
import base64
import inspect
import os
import socket
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, overload

import orjson
from aiohttp import ClientWebSocketResponse, WSMsgType
from aiohttp.test_utils import TestClient

from bridge import widget
from bridge.config import SignScheme
from bridge.demo import samples
from bridge.frames import MessageFrame
from bridge.limits import FrameGate
from bridge.refusals import Refusal
from bridge.vendor import airudder, signing
from bridge.widget import WidgetMessage

TIMEOUT = 10.0
# The kinds of the spec's seven-message example, in order.
SEED_KINDS = ["text", "image", "video", "audio", "file", "choices", "choices"]
T = TypeVar("T")


def texts(call_id: str, start: int, stop: int) -> dict[str, Any]:
    """A callback with text messages t<start>..t<stop-1>."""
    return samples.callback(
        call_id, *(samples.text_message(f"t{i}", f"m{i}", 1000 + i) for i in range(start, stop))
    )


async def post(
    client: TestClient[Any, Any],
    body: dict[str, Any] | bytes,
    secret: bytes | None = None,
    scheme: SignScheme = SignScheme.HMAC_SHA256_HEX,
) -> tuple[int, Any]:
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers["X-AIRudder-Sign"] = signing.sign(data, secret, scheme)
    resp = await client.post("/webhooks/airudder", data=data, headers=headers)
    return resp.status, await resp.json()


async def frame(ws: ClientWebSocketResponse) -> dict[str, Any]:
    msg = await ws.receive(timeout=TIMEOUT)
    assert msg.type is WSMsgType.TEXT, f"expected a text frame, got {msg.type} {msg.data!r}"
    data: dict[str, Any] = orjson.loads(msg.data)
    return data


async def until_ready(ws: ClientWebSocketResponse) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The replayed messages and the ready frame."""
    messages: list[dict[str, Any]] = []
    while True:
        data = await frame(ws)
        if data["type"] == "ready":
            return messages, data
        if data["type"] == "message":
            messages.append(data["message"])


async def messages(ws: ClientWebSocketResponse, count: int) -> list[dict[str, Any]]:
    """The next ``count`` message frames (other frame types skipped)."""
    out: list[dict[str, Any]] = []
    while len(out) < count:
        data = await frame(ws)
        if data["type"] == "message":
            out.append(data["message"])
    return out


async def nothing_more(ws: ClientWebSocketResponse, wait: float = 0.3) -> None:
    """Assert that no frame arrives within ``wait`` seconds."""
    try:
        msg = await ws.receive(timeout=wait)
    except TimeoutError:
        return
    raise AssertionError(f"unexpected frame: {msg.type} {msg.data!r}")


@overload
async def until(check: Callable[[], Awaitable[T]], what: str = ...) -> T: ...
@overload
async def until(check: Callable[[], T], what: str = ...) -> T: ...


async def until(check: Callable[[], Any], what: str = "the condition") -> Any:
    """The first truthy result of ``check`` (a function or a coroutine function), polled
    for at most TIMEOUT seconds; after that the test fails saying ``what`` did not hold."""
    result = None
    try:
        async with asyncio.timeout(TIMEOUT):
            while True:
                answer = check()
                result = await answer if inspect.isawaitable(answer) else answer
                if result:
                    return result
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"{what} did not hold within {TIMEOUT}s (last: {result!r})") from None


async def stalled_socket(
    host: str, port: int, path: str
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A WebSocket client that completes the handshake and then never reads: a tiny
    receive buffer makes the server's writes back up almost at once. (The stream reads
    ahead up to 128 KB, then stops. The small segment size keeps the server's send buffer
    small too: on loopback it would grow to megabytes.)"""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, 536)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (host, port))
    reader, writer = await asyncio.open_connection(sock=sock, limit=2**16)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TIMEOUT)
    assert head.startswith(b"HTTP/1.1 101"), head
    return reader, writer


async def closed_by_server(reader: asyncio.StreamReader) -> bool:
    """Whether the server closes the connection (end of stream or reset) within TIMEOUT
    seconds; what it sent until then is read and dropped."""
    try:
        async with asyncio.timeout(TIMEOUT):
            while await reader.read(2**16):
                pass
    except ConnectionError:
        return True
    except TimeoutError:
        return False
    return True


async def frames_until_close(
    reader: asyncio.StreamReader,
) -> tuple[list[dict[str, Any]], int | None]:
    """Read a raw WebSocket connection (``stalled_socket``) to its end: the text frames the
    server sent, decoded, and the code of its close frame (None when it sent none)."""
    data = b""
    async with asyncio.timeout(TIMEOUT):
        while chunk := await reader.read(2**16):
            data += chunk
    texts: list[dict[str, Any]] = []
    at = 0
    while at + 2 <= len(data):
        opcode, length = data[at] & 0x0F, data[at + 1] & 0x7F
        at += 2
        if length == 126:
            length, at = int.from_bytes(data[at : at + 2]), at + 2
        elif length == 127:
            length, at = int.from_bytes(data[at : at + 8]), at + 8
        payload, at = data[at : at + length], at + length
        if opcode == 0x1:
            texts.append(orjson.loads(payload))
        elif opcode == 0x8:
            return texts, int.from_bytes(payload[:2])
    return texts, None


def translated(body: dict[str, Any] | bytes) -> list[WidgetMessage]:
    """A callback body's messages as the bridge translates them, read back from their
    frames through the widget models (so each is also checked against the schema)."""
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    items = widget.translate_callback(airudder.receive(raw))
    return [MessageFrame.model_validate_json(draft.frame(0)).message for _, draft in items]


def sample(metrics: str, name: str) -> float | None:
    """The value of one sample (``name`` with its labels) in a /metrics text, None when it
    is not there."""
    for line in metrics.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


def verdict(gate: FrameGate) -> Refusal | None:
    """What the gate says of one more frame now: None lets it through."""
    try:
        gate.check()
    except Refusal as refusal:
        return refusal
    return None


def send(text: str, client_msg_id: str | None = None) -> dict[str, Any]:
    """A ``send`` frame, as the widget makes it."""
    return {"type": "send", "client_msg_id": client_msg_id or uuid.uuid4().hex, "text": text}
