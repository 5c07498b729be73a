"""A minimal WebSocket client as an asyncio protocol, for the many sockets of the idle
test and for stalled sockets: thousands of aiohttp clients would cost the load generator
more than the server under test.

It speaks just enough: the HTTP upgrade, unmasked server frames in, masked client frames
out, pong to the server's pings (a WebSocket ping for the bridge, Engine.IO's ``2`` for
python-socketio), and for Socket.IO the namespace connect ``40``. Message frames (the
bridge's ``{"type":"message"...}``, Socket.IO's ``42[...]`` events) go to ``on_message``;
everything else is dropped. ``stall=True`` stops reading once subscribed, with a tiny
receive buffer, so the server's writes back up: a browser tab that froze.
"""

from __future__ import annotations

import asyncio
import base64
import os
import socket
from collections.abc import Callable
from typing import cast

OP_TEXT, OP_CLOSE, OP_PING, OP_PONG = 0x1, 0x8, 0x9, 0xA
STALLED_RCVBUF = 4096
CONNECT_TIMEOUT = 30.0


def client_frame(opcode: int, payload: bytes) -> bytes:
    """A masked frame (clients must mask; an all-zero mask is valid and costs nothing)."""
    n = len(payload)
    if n < 126:
        head = bytes([0x80 | opcode, 0x80 | n])
    elif n < 65536:
        head = bytes([0x80 | opcode, 0x80 | 126]) + n.to_bytes(2, "big")
    else:
        head = bytes([0x80 | opcode, 0x80 | 127]) + n.to_bytes(8, "big")
    return head + b"\0\0\0\0" + payload


def path_for(socketio: bool, call_id: str) -> str:
    if socketio:
        return f"/socket.io/?EIO=4&transport=websocket&call_id={call_id}"
    return f"/ws/{call_id}"


OnMessage = Callable[[bytes], None]


class RawSocket(asyncio.Protocol):
    def __init__(
        self,
        host: str,
        port: int,
        path: str,
        socketio: bool,
        stall: bool,
        on_message: OnMessage | None,
    ) -> None:
        self.request = (
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
        self.socketio = socketio
        self.stall = stall
        self.on_message = on_message
        self.subscribed = asyncio.get_running_loop().create_future()
        self.closed = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None
        self._buffer = b""
        self._upgraded = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        stream = cast(asyncio.Transport, transport)  # uvloop's transports are no subclass
        self.transport = stream
        stream.write(self.request)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.subscribed.done():
            self.subscribed.set_exception(ConnectionError("closed before subscribing"))
        if not self.closed.done():
            self.closed.set_result(None)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if not self._upgraded:
            head, sep, rest = self._buffer.partition(b"\r\n\r\n")
            if not sep:
                return
            if not head.startswith(b"HTTP/1.1 101"):
                self._fail(f"upgrade refused: {head[:80]!r}")
                return
            self._upgraded = True
            self._buffer = rest
        while (frame := self._next_frame()) is not None:
            self._on_frame(*frame)

    def _next_frame(self) -> tuple[int, bytes] | None:
        buf = self._buffer
        if len(buf) < 2:
            return None
        opcode, n, start = buf[0] & 0x0F, buf[1] & 0x7F, 2
        if n == 126:
            if len(buf) < 4:
                return None
            n, start = int.from_bytes(buf[2:4], "big"), 4
        elif n == 127:
            if len(buf) < 10:
                return None
            n, start = int.from_bytes(buf[2:10], "big"), 10
        if len(buf) < start + n:
            return None
        self._buffer = buf[start + n :]
        return opcode, buf[start : start + n]

    def _on_frame(self, opcode: int, payload: bytes) -> None:
        assert self.transport is not None
        if opcode == OP_PING:
            self.transport.write(client_frame(OP_PONG, payload))
        elif opcode == OP_CLOSE:
            self.transport.close()
        elif opcode == OP_TEXT:
            if self.socketio:
                if payload.startswith(b"42"):
                    if self.on_message is not None:
                        self.on_message(payload)
                elif payload == b"2":  # Engine.IO ping from the server
                    self.transport.write(client_frame(OP_TEXT, b"3"))
                elif payload.startswith(b"0{"):  # Engine.IO open: join namespace "/"
                    self.transport.write(client_frame(OP_TEXT, b"40"))
                elif payload.startswith(b"40"):
                    self._subscribed()
            elif payload.startswith(b'{"type":"message"'):
                if self.on_message is not None:
                    self.on_message(payload)
            elif payload.startswith(b'{"type":"ready"'):
                self._subscribed()

    def _subscribed(self) -> None:
        if not self.subscribed.done():
            self.subscribed.set_result(None)
        if self.stall and self.transport is not None:
            self.transport.pause_reading()

    def _fail(self, reason: str) -> None:
        if not self.subscribed.done():
            self.subscribed.set_exception(ConnectionError(reason))
        if self.transport is not None:
            self.transport.close()


async def connect(
    port: int,
    call_id: str,
    *,
    socketio: bool,
    stall: bool = False,
    on_message: OnMessage | None = None,
) -> RawSocket:
    """An open socket subscribed to ``call_id`` (joined to its room, for Socket.IO)."""
    loop = asyncio.get_running_loop()
    host = "127.0.0.1"
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if stall:  # before connect(), so the advertised window is small from the start
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, STALLED_RCVBUF)
    sock.setblocking(False)
    try:
        async with asyncio.timeout(CONNECT_TIMEOUT):
            await loop.sock_connect(sock, (host, port))
            _, protocol = await loop.create_connection(
                lambda: RawSocket(
                    host, port, path_for(socketio, call_id), socketio, stall, on_message
                ),
                sock=sock,
            )
            await protocol.subscribed
    except BaseException:
        sock.close()
        raise
    return protocol


def close_all(sockets: list[RawSocket]) -> None:
    for s in sockets:
        if s.transport is not None:
            s.transport.abort()
