"""Hostile input against a real bridge process: what it costs and what it answers.

Every attack here is unauthenticated (the bridge has a signing and a widget secret), and
every check is of work done (CPU seconds from /proc, bytes, answers, the log), never of
time: timeouts only bound the waits.
"""

from __future__ import annotations

import functools
import json
import socket
import struct
import threading
import zlib
from collections.abc import Iterator
from typing import Any

import aiohttp
import orjson
import pytest

from bridge import tokens
from bridge.config import SignScheme
from bridge.demo import samples
from bridge.vendor import signing
from tests.servers import Bridge, free_port

SIGNING = "edge-signing-secret"
WIDGET = "edge-widget-secret-of-32-bytes-at-least"
MiB = 1 << 20
WAIT = 15.0  # bounds every read: a server that does not answer fails, it does not hang


def raw(port: int, request: bytes, *, reset: bool = False) -> tuple[int, dict[str, str], bytes]:
    """Send ``request`` as is; the status, headers and body of the answer (0 for none)."""
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as sock:
        sock.sendall(request)
        if reset:  # SO_LINGER 0: close with a reset, mid-body
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return 0, {}, b""
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, body


def post(body: bytes, *headers: bytes, path: bytes = b"/webhooks/airudder") -> bytes:
    lines = [b"POST " + path + b" HTTP/1.1", b"Host: 127.0.0.1", b"Connection: close"]
    lines += [b"Content-Type: application/json", b"Content-Length: %d" % len(body), *headers]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def get(path: bytes, *headers: bytes) -> bytes:
    lines = [b"GET " + path + b" HTTP/1.1", b"Host: 127.0.0.1", b"Connection: close", *headers]
    return b"\r\n".join(lines) + b"\r\n\r\n"


@functools.cache
def bomb(megabytes: int, gzip: bool = True) -> bytes:
    """A valid gzip (or zlib) stream of ``megabytes`` MiB of zeros, about 1/1000 of that
    in size, made without compressing it all: after a full flush every MiB of zeros
    compresses to the very same bytes."""
    deflate = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    block = deflate.compress(bytes(MiB)) + deflate.flush(zlib.Z_FULL_FLUSH)
    final = b"\x03\x00"  # an empty last block
    check = 0 if gzip else 1
    for _ in range(megabytes):
        check = (zlib.crc32 if gzip else zlib.adler32)(bytes(MiB), check)
    if gzip:
        head, tail = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff", struct.pack("<II", check, 0)
    else:
        head, tail = b"\x78\xda", struct.pack(">I", check)
    return head + block * megabytes + final + tail


def signed(body: bytes) -> bytes:
    digest = signing.sign(body, SIGNING.encode(), SignScheme.HMAC_SHA256_HEX)
    return b"X-AIRudder-Sign: " + digest.encode()


@pytest.fixture(scope="module")
def bridge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bridge]:
    """One bridge for the module; at the end, its log must hold no error and no traceback."""
    process = Bridge(
        free_port(),
        log=tmp_path_factory.mktemp("edge") / "bridge.log",
        BRIDGE_SIGNING_SECRET=SIGNING,
        BRIDGE_WIDGET_SECRET=WIDGET,
        BRIDGE_ALLOWED_ORIGINS="https://shop.example",
        BRIDGE_BODY_TIMEOUT="1",
        BRIDGE_IDLE_TIMEOUT="1",
        BRIDGE_LOG_LEVEL="INFO",
    ).start()
    yield process
    process.stop()
    assert_quiet(process.logged())


def assert_quiet(log: str) -> None:
    assert "Traceback" not in log, log[-3000:]
    assert " ERROR " not in log and " CRITICAL " not in log, log[-3000:]


def test_compression_bombs_cost_the_server_almost_nothing(bridge: Bridge) -> None:
    """Eight 1 GB bombs at once (under 1 MiB each, so the server reads them whole and
    inflates): each is refused with 413 once 1 MiB is inflated."""
    bombs = [bomb(953, gzip=i % 2 == 0) for i in range(8)]
    assert all(len(b) < MiB for b in bombs)
    answers: list[tuple[int, dict[str, str], bytes]] = []
    before = bridge.cpu_seconds()
    threads = [
        threading.Thread(target=lambda b=b: answers.append(attack(bridge, b))) for b in bombs
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT * 2)
    spent = bridge.cpu_seconds() - before
    assert [a[0] for a in answers] == [413] * 8
    assert {orjson.loads(a[2])["error"] for a in answers} == {"body_too_large"}
    print(f"eight 1 GB bombs cost the server {spent:.3f} CPU seconds")
    assert spent < 0.25  # inflating one of them whole costs about a second


def attack(bridge: Bridge, body: bytes) -> tuple[int, dict[str, str], bytes]:
    encoding = b"gzip" if body[:2] == b"\x1f\x8b" else b"deflate"
    return raw(bridge.port, post(body, b"Content-Encoding: " + encoding))


def test_a_compressed_callback_is_taken(bridge: Bridge) -> None:
    body = orjson.dumps(samples.seed_callback("edge-gzip"))
    for packed, encoding in [
        (zlib.compress(body, wbits=31), b"gzip"),
        (zlib.compress(body), b"deflate"),
    ]:
        request = post(packed, b"Content-Encoding: " + encoding, signed(body))
        status, _, answer = raw(bridge.port, request)
        assert (status, answer) == (200, b"{}")


SEED = orjson.dumps(samples.seed_callback("edge"))
CHUNKED = b"POST /webhooks/airudder HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
TOO_LARGE = b"POST /webhooks/airudder HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\n\r\n"
GZIP_CUT = zlib.compress(SEED, wbits=31)[:-9]
FTP_ORIGIN = get(b"/ws/x", b"Origin: ftp://127.0.0.1")
TLS_HELLO = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n"
HOSTILE: list[tuple[str, bytes, int, str]] = [
    ("\\xff in the signature", post(SEED, b"X-AIRudder-Sign: \xff"), 401, "bad_signature"),
    ("superscript two as after", get(b"/ws/x?after=%C2%B2"), 400, "bad_request"),
    ("full-width 5 as after", get(b"/ws/x?after=%EF%BC%95"), 400, "bad_request"),
    ("gzip that is not", post(SEED, b"Content-Encoding: gzip"), 400, "bad_encoding"),
    ("truncated gzip", post(GZIP_CUT, b"Content-Encoding: gzip"), 400, "bad_encoding"),
    ("brotli", post(SEED, b"Content-Encoding: br"), 415, "unsupported_encoding"),
    ("two encodings", post(SEED, b"Content-Encoding: gzip, gzip"), 415, "unsupported_encoding"),
    ("not HTTP", b"BLAH\r\n\r\n", 400, "bad_request"),
    ("a TLS hello", TLS_HELLO, 400, "bad_request"),
    ("broken chunks", CHUNKED + b"zz\r\nab\r\n0\r\n\r\n", 400, "bad_request"),
    ("ftp origin of the bridge's host", FTP_ORIGIN, 403, "origin_not_allowed"),
    ("call_id ..", get(b"/ws/.."), 400, "bad_request"),
    ("call_id .", get(b"/ws/%2E"), 400, "bad_request"),
    ("a body too large", TOO_LARGE, 413, "body_too_large"),
    ("an Expect that is not UTF-8", post(SEED, b"Expect: \xb4"), 417, "expectation_failed"),
    ("an Upgrade that is not ASCII", get(b"/ws/x", b"Upgrade: \x80"), 400, "bad_request"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("request_bytes", "status", "code"), [h[1:] for h in HOSTILE], ids=[h[0] for h in HOSTILE]
)
def test_hostile_input_gets_a_json_4xx(
    bridge: Bridge, request_bytes: bytes, status: int, code: str
) -> None:
    got, headers, body = raw(bridge.port, request_bytes)
    assert (got, headers.get("content-type", "").split(";")[0]) == (status, "application/json")
    assert orjson.loads(body)["error"] == code


def test_upper_case_sha256_prefix_is_accepted(bridge: Bridge) -> None:
    digest = signing.sign(SEED, SIGNING.encode(), SignScheme.HMAC_SHA256_HEX)
    header = b"X-AIRudder-Sign: SHA256=" + digest.upper().encode()
    status, _, body = raw(bridge.port, post(SEED, header))
    assert (status, body) == (200, b"{}")


def test_a_client_resetting_mid_body_is_no_error(bridge: Bridge) -> None:
    raw(bridge.port, post(SEED)[:-100], reset=True)
    assert raw(bridge.port, get(b"/healthz"))[0] == 200


def test_stalled_bodies_and_headers_are_closed(bridge: Bridge) -> None:
    """50 bodies stalled after one byte get 408 and are closed; so are ten connections
    whose headers never end (BRIDGE_BODY_TIMEOUT, BRIDGE_IDLE_TIMEOUT: 1 s here)."""
    start = b"POST /webhooks/airudder HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n{"
    bodies = [connect(bridge) for _ in range(50)]
    heads = [connect(bridge) for _ in range(10)]
    for sock in bodies:
        sock.sendall(start)
    for sock in heads:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    answers = [read_to_end(sock) for sock in bodies + heads]  # EOF: the server closed it
    assert all(a.startswith(b"HTTP/1.1 408 ") and b'"body_timeout"' in a for a in answers[:50])
    assert answers[50:] == [b""] * 10


def connect(bridge: Bridge) -> socket.socket:
    return socket.create_connection(("127.0.0.1", bridge.port), timeout=WAIT)


def read_to_end(sock: socket.socket) -> bytes:
    with sock:
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
        return answer


async def test_a_text_within_the_limit_is_never_too_big_a_frame(bridge: Bridge) -> None:
    """Escaped, 3,999 astral characters take 48 kB: within the length, so taken; 4,001
    are refused as text_too_long, not with a 1009 close."""
    token = tokens.mint("edge-text", 600, secret=WIDGET)
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(f"{bridge.url}/ws/edge-text?token={token}")
        replies: list[dict[str, Any]] = []
        for n, msg_id in [(3999, "fits"), (4001, "toolong")]:
            frame = {"type": "send", "client_msg_id": f"edge-{msg_id}", "text": "😀" * n}
            await ws.send_str(json.dumps(frame))  # ASCII: each one escaped as a surrogate pair
            while True:
                reply = orjson.loads((await ws.receive(timeout=WAIT)).data)
                if reply["type"] in ("ack", "error"):
                    replies.append(reply)
                    break
        await ws.close()
    assert [r["type"] for r in replies] == ["ack", "error"]
    assert replies[1]["error"]["code"] == "text_too_long"
