"""Property-based tests of the HTTP edge: generated headers, query strings and content
encodings, sent as raw bytes to one real server (tests/test_fuzz.py's harness).

Each example checks: never a 5xx, every refusal in the JSON error format, a refused body
stores nothing and an accepted one is stored whole; at the end, nothing logged at ERROR.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
import zlib
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import orjson
import pytest
from aiohttp import web
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.demo import samples
from bridge.keys import SETTINGS
from bridge.web import server
from tests.helpers import TIMEOUT
from tests.servers import free_port
from tests.test_fuzz import FUZZ, ErrorLog, Harness

MAX_BODY = 64 * 1024
TOKEN_CHARS = st.sampled_from("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCXYZ")
HEADER_NAME = st.text(TOKEN_CHARS, min_size=1, max_size=30) | st.sampled_from(
    ["X-AIRudder-Sign", "Content-Encoding", "Content-Type", "Origin", "Host", "Content-Length",
     "Transfer-Encoding", "Connection", "Upgrade", "Sec-WebSocket-Version", "Expect", "Cookie"]
)  # fmt: skip
HEADER_VALUE = st.binary(max_size=200).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b""))


class EdgeHarness(Harness):
    """The harness's app also served as ``airudder-bridge serve`` serves it (its own
    request handler and connection cap), on a port of its own: raw requests go there."""

    async def _start(self, bridge_settings: dict[str, Any]) -> None:
        await super()._start(bridge_settings)
        runner = self.server.runner
        assert isinstance(runner, web.AppRunner)
        settings = self.app[SETTINGS].model_copy(update={"port": free_port()})
        site = server.CappedSite(runner, settings, server.budget(4096, 100), reuse_port=False)
        await site.start()
        self.port = settings.port


@pytest.fixture(scope="module")
def edge() -> Iterator[EdgeHarness]:
    harness = EdgeHarness(
        store="memory", max_body_bytes=MAX_BODY, body_timeout=TIMEOUT, ws_heartbeat=3600
    )
    handler = ErrorLog(harness.errors)
    logging.getLogger().addHandler(handler)
    try:
        yield harness
        assert harness.run(harness.healthy())
        assert harness.errors == [], "the server logged an error"
    finally:
        logging.getLogger().removeHandler(handler)
        harness.close()


async def exchange(harness: Harness, request: bytes) -> tuple[int, bytes, bytes]:
    """Send raw bytes; the status, the head and the body of the answer."""
    assert isinstance(harness, EdgeHarness)
    reader, writer = await asyncio.open_connection("127.0.0.1", harness.port)
    try:
        writer.write(request)
        answer = await asyncio.wait_for(reader.read(), TIMEOUT)
    finally:
        writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), head, body


def check_answer(status: int, head: bytes, body: bytes) -> None:
    assert status < 500, body
    if status >= 400:
        assert b"application/json" in head.lower(), head
        assert set(orjson.loads(body)) == {"error", "detail"}, body


def request(method: bytes, path: bytes, headers: list[tuple[bytes, bytes]], body: bytes) -> bytes:
    lines = [method + b" " + path + b" HTTP/1.1", b"Host: 127.0.0.1", b"Connection: close"]
    lines += [name + b": " + value for name, value in headers]
    if method == b"POST" and not any(n.lower() == b"content-length" for n, _ in headers):
        lines.append(b"Content-Length: %d" % len(body))
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


@settings(FUZZ, max_examples=300)
@given(
    st.sampled_from(
        [(b"POST", b"/webhooks/airudder"), (b"GET", b"/ws/fz-h"), (b"GET", b"/healthz")]
    ),
    st.lists(st.tuples(HEADER_NAME.map(str.encode), HEADER_VALUE), max_size=4),
)
def test_any_headers(edge: Harness, target: tuple[bytes, bytes], headers: Any) -> None:
    method, path = target
    body = orjson.dumps(samples.seed_callback("fz-headers")) if method == b"POST" else b""
    check_answer(*edge.run(exchange(edge, request(method, path, headers, body))))


QUERY_VALUE = st.text(max_size=30) | st.sampled_from(
    ["\u00b2", "\uff15", "-1", "1e3", "0x10", " 1", "9" * 30]  # superscript 2, full-width 5
)


@settings(FUZZ, max_examples=300)
@given(
    st.text(min_size=1, max_size=20) | st.sampled_from(["..", ".", "a/b", "%2E%2E"]),
    st.dictionaries(st.sampled_from(["after", "epoch", "token", "x"]), QUERY_VALUE, max_size=3),
)
def test_any_query_string(edge: Harness, call_id: str, query: dict[str, str]) -> None:
    qs = "&".join(f"{quote(k)}={quote(v)}" for k, v in query.items())
    path = f"/ws/{quote(call_id, safe='%')}?{qs}".encode()
    for target in (path, path.replace(b"/ws/", b"/chat/", 1)):
        check_answer(*edge.run(exchange(edge, request(b"GET", target, [], b""))))


PACKINGS = ["plain", "gzip", "zlib", "raw", "truncated", "trailing", "junk", "bomb"]
ENCODING = st.sampled_from(["gzip", "x-gzip", "deflate", "identity", "", "GZIP", "br", "zstd"])


def pack(body: bytes, packing: str) -> bytes:
    if packing == "plain":
        return body
    if packing == "bomb":  # inflates past the limit
        return zlib.compress(body + b" " * (MAX_BODY * 4), wbits=31)
    if packing == "junk":
        return b"\x1f\x8b" + body
    packed = zlib.compress(body, wbits={"zlib": 15, "raw": -15}.get(packing, 31))
    return (
        packed[:-5] if packing == "truncated" else packed + (b"x" if packing == "trailing" else b"")
    )


ACCEPTED = {
    "gzip": {"gzip"},
    "x-gzip": {"gzip"},
    "deflate": {"zlib", "raw"},
    "identity": {"plain"},
    "": {"plain"},
}


@settings(FUZZ, max_examples=300)
@given(ENCODING | st.text(max_size=12), st.sampled_from(PACKINGS))
def test_any_content_encoding(edge: Harness, encoding: str, packing: str) -> None:
    call_id = f"fz-{uuid.uuid4().hex}"
    callback = samples.seed_callback(call_id)
    body = pack(orjson.dumps(callback), packing)
    value = encoding.encode("utf-8")
    headers = [(b"Content-Encoding", value.replace(b"\r", b"").replace(b"\n", b""))]
    status, head, answer = edge.run(
        exchange(edge, request(b"POST", b"/webhooks/airudder", headers, body))
    )
    check_answer(status, head, answer)
    stored = edge.run(edge.hub.replay(call_id, None, None)).last_seq
    if packing in ACCEPTED.get(encoding.strip().lower(), set()):
        assert status == 200 and stored == len(callback["messages"]), answer
    else:
        assert status in (400, 413, 415) and stored == 0, (status, answer)
