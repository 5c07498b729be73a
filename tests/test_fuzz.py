"""Property-based tests: generated callback bodies and client frames against a real server.

One server runs for the whole module in a thread of its own (Hypothesis drives plain
functions; they hand coroutines to the server's loop). Bystander sockets stay open the
whole time. Each example checks: no 5xx, a JSON error for a refusal, nothing stored for a
refused body or frame and everything for an accepted one, and no other socket closed.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import threading
import uuid
from collections import Counter
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import aiohttp
import orjson
import pytest
from aiohttp import ClientWebSocketResponse, WSCloseCode, WSMsgType, web
from aiohttp.test_utils import TestServer
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from bridge import tokens, widget
from bridge.app import create_app
from bridge.config import Settings
from bridge.demo import samples
from bridge.keys import STORE
from bridge.limits import FrameGate
from bridge.store.memory import MemoryStore
from bridge.web import server
from tests.helpers import TIMEOUT, until_ready, verdict

T = TypeVar("T")

FUZZ = settings(
    deadline=None,
    derandomize=True,  # the same examples on every run: CI stays stable
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
MAX_BODY = 256 * 1024
MAX_FRAME = 16 * 1024
WATCHED = "fz-watched"


class Bystander:
    """A socket that only reads: it must see every message of its session and stay open."""

    def __init__(self, ws: ClientWebSocketResponse) -> None:
        self.ws = ws
        self.seqs: list[int] = []
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for msg in self.ws:
            data = orjson.loads(msg.data)
            if data["type"] == "message":
                self.seqs.append(data["message"]["seq"])

    @property
    def open(self) -> bool:
        return not self.ws.closed and not self.task.done()


class Harness:
    """The bridge on 127.0.0.1 in a background event loop, with a client session."""

    def __init__(self, **bridge_settings: Any) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.errors: list[logging.LogRecord] = []
        self.bodies = 0
        self.frames = 0
        self.outcomes: Counter[str] = Counter()  # printed with pytest -s: what the fuzz hit
        self.run(self._start(bridge_settings))

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(TIMEOUT * 3)

    async def _start(self, bridge_settings: dict[str, Any]) -> None:
        # The vendor's "user sends message" API: accepts everything, so forwarding is quiet
        # (the built-in demo bot would answer, storing messages no frame asked for).
        async def accept(request: web.Request) -> web.Response:
            return web.json_response({})

        self.upstream = TestServer(web.Application(), host="127.0.0.1")
        self.upstream.app.router.add_post("/", accept)
        await self.upstream.start_server()
        bridge_settings["upstream_url"] = str(self.upstream.make_url("/"))
        settings = Settings(**bridge_settings)
        self.app = create_app(settings)
        self.server = TestServer(self.app, host="127.0.0.1")
        # As the real server is run: bodies not inflated by aiohttp, the same timeouts.
        await self.server.start_server(**server.handler_args(settings))
        self.http = aiohttp.ClientSession()
        self.bystanders = [
            Bystander(await self.connect(call_id)) for call_id in (WATCHED, WATCHED, "fz-other")
        ]

    async def connect(self, call_id: str, **kwargs: Any) -> ClientWebSocketResponse:
        ws = await self.http.ws_connect(self.server.make_url(f"/ws/{call_id}"), **kwargs)
        await until_ready(ws)  # through the replay to "ready"
        return ws

    @property
    def hub(self) -> MemoryStore:
        hub = self.app[STORE]
        assert isinstance(hub, MemoryStore)
        return hub

    def stored(self) -> int:
        """Messages ever stored, all sessions together (seq has no gaps)."""
        return sum(s.last_seq for s in self.hub._sessions.values())

    async def post(self, body: bytes) -> tuple[int, Any]:
        self.bodies += 1
        async with self.http.post(
            self.server.make_url("/webhooks/airudder"),
            data=io.BytesIO(body),  # aiohttp warns about big bytes bodies
            headers={"Content-Type": "application/json"},
        ) as resp:
            return resp.status, orjson.loads(await resp.read())

    async def healthy(self) -> bool:
        async with self.http.get(self.server.make_url("/healthz")) as resp:
            return resp.status == 200

    def close(self) -> None:
        async def stop() -> None:
            for bystander in self.bystanders:
                await bystander.ws.close()
                await bystander.task
            await self.http.close()
            await self.server.close()
            await self.upstream.close()

        self.run(stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(TIMEOUT)
        self.loop.close()


class ErrorLog(logging.Handler):
    def __init__(self, sink: list[logging.LogRecord]) -> None:
        super().__init__(logging.ERROR)
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        self.sink.append(record)


@pytest.fixture(scope="module")
def harness() -> Iterator[Harness]:
    bridge = Harness(
        store="memory",  # its contents are checked (hub); never the user's own data dir
        max_body_bytes=MAX_BODY,
        ws_max_msg_size=MAX_FRAME,
        ws_heartbeat=3600,  # the frame fuzzer answers no pings of its own
        frames_per_second=1e6,  # the rate limit has its own tests
        frame_burst=1_000_000,
    )
    handler = ErrorLog(bridge.errors)
    logging.getLogger().addHandler(handler)
    try:
        yield bridge
        # Whatever was thrown, the process is healthy and nobody else was disconnected.
        assert bridge.run(bridge.healthy())
        assert all(b.open for b in bridge.bystanders), "a bystander socket was closed"
        for bystander in bridge.bystanders:
            assert bystander.seqs == list(range(1, len(bystander.seqs) + 1)), "gap or repeat"
        assert bridge.errors == [], "the server logged an error"
    finally:
        logging.getLogger().removeHandler(handler)
        bridge.close()
        print("fuzz outcomes:", dict(bridge.outcomes.most_common()))


# --- callback bodies -------------------------------------------------------------------

json_leaf = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=40)
)
json_value = st.recursive(
    json_leaf,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)


def huge_text(data: st.DataObject) -> str:
    """Drawn as (character, size) so a failing example prints short."""
    char = data.draw(st.characters(blacklist_categories=("Cs",)), label="char")
    size = data.draw(st.sampled_from([1_000, 20_000, 120_000, MAX_BODY + 10]), label="size")
    return char * size


def encode(body: Any) -> bytes:
    """JSON text as a sender might produce it: Python's encoder writes NaN and big ints."""
    return json.dumps(body, ensure_ascii=False).encode("utf-8", "surrogatepass")


def paths(node: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    children = (
        node.items()
        if isinstance(node, dict)
        else enumerate(node)
        if isinstance(node, list)
        else ()
    )
    for key, child in children:
        yield from paths(child, (*prefix, key))


def mutate(body: Any, data: st.DataObject) -> Any:
    """One random change to one random place of ``body`` (in place where it can)."""
    path = data.draw(st.sampled_from(list(paths(body))))
    op = data.draw(
        st.sampled_from(["delete", "replace", "number", "extra", "empty", "nest", "huge", "text"])
    )
    if not path:
        return data.draw(json_value) if op == "replace" else body
    parent = body
    for key in path[:-1]:
        parent = parent[key]
    key = path[-1]
    if op == "delete":
        del parent[key]
    elif op == "replace":
        parent[key] = data.draw(json_value)
    elif op == "number":
        parent[key] = data.draw(st.integers(-(2**64), 2**64) | st.floats())
    elif op == "extra" and isinstance(parent[key], dict):
        parent[key][data.draw(st.text(max_size=12))] = data.draw(json_value)
    elif op == "empty":
        parent[key] = data.draw(st.sampled_from([[], {}, ""]))
    elif op == "nest":
        for _ in range(data.draw(st.integers(1, 300))):
            parent[key] = [parent[key]]
    elif op == "huge":
        parent[key] = huge_text(data)
    elif op == "text":  # still valid where a string belongs: markup, emoji, control chars
        parent[key] = data.draw(st.text(max_size=200))
    return body


def seed_mutation(data: st.DataObject) -> Any:
    """The vendor's example, changed in 0-4 places (built from draws, so that a failing
    example prints as its short list of draws, not as megabytes of body)."""
    body: Any = samples.seed_callback()
    if data.draw(st.booleans(), label="new message list"):
        kept = data.draw(st.lists(st.integers(0, 6), max_size=120))
        body["messages"] = [samples.seed_callback()["messages"][i] for i in kept]
    for _ in range(data.draw(st.integers(0, 4), label="mutations")):
        body = mutate(body, data)
    return body


def raw_body(data: st.DataObject) -> bytes:
    """Bytes that are not the JSON of one object: invalid UTF-8, duplicate keys, nesting."""
    draw = data.draw
    seed = orjson.dumps(samples.seed_callback())
    kind = draw(st.sampled_from(["bytes", "splice", "duplicate", "deep", "json"]))
    if kind == "bytes":
        return draw(st.binary(max_size=2000))
    if kind == "splice":  # invalid UTF-8 (or anything) inside otherwise valid JSON
        at = draw(st.integers(0, len(seed)))
        junk = draw(
            st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\x00"])
            | st.binary(min_size=1, max_size=8)
        )
        return seed[:at] + junk + seed[at:]
    if kind == "duplicate":  # the same key twice: which one wins must not matter
        key = draw(st.sampled_from(["event", "call_id", "user", "messages", "channel"]))
        value = encode(draw(json_value | st.just(samples.seed_callback()[key])))
        return b'{"%s":%s,' % (key.encode(), value) + seed[1:]
    if kind == "deep":
        depth = draw(st.integers(1, 20_000))
        opener, closer = draw(st.sampled_from([(b"[", b"]"), (b'{"a":', b"}")]))
        return opener * depth + b"1" + closer * depth
    return encode(draw(json_value))


def check_body(harness: Harness, body: bytes, parsed: Any, fresh: bool) -> None:
    if fresh and isinstance(parsed, dict) and "call_id" in parsed:
        parsed["call_id"] = f"fz-{uuid.uuid4().hex}"  # a session of its own: growth is exact
        body = encode(parsed)
    before = harness.stored()
    status, answer = harness.run(harness.post(body))
    grown = harness.stored() - before
    outcome = f"HTTP {status} {answer.get('error', '') if isinstance(answer, dict) else ''}"
    event(outcome)
    harness.outcomes[outcome] += 1
    assert status < 500, answer
    if status != 200:
        assert status in (400, 413, 422) and set(answer) == {"error", "detail"}, answer
        assert grown == 0, "a refused body stored something"
        return
    assert answer == {}
    assert isinstance(parsed, dict) or parsed is None
    if fresh and parsed is not None and parsed.get("event") == "message.send":
        assert grown == len(parsed["messages"]), "an accepted body is stored whole"
        replay = harness.run(harness.hub.replay(parsed["call_id"], None, None))
        for _, frame in replay.frames:  # every stored message is a valid widget message
            widget.WIDGET_MESSAGE.validate_python(orjson.loads(frame)["message"])
    elif parsed is not None and parsed.get("event") != "message.send":
        assert grown == 0, "an ignored event stored something"


def test_mutated_seed_bodies(harness: Harness) -> None:
    start = harness.bodies

    @settings(FUZZ, max_examples=1100)
    @given(st.data(), st.booleans(), st.booleans())
    def check(data: st.DataObject, fresh: bool, watched: bool) -> None:
        parsed = seed_mutation(data)
        if watched and not fresh and isinstance(parsed, dict) and "call_id" in parsed:
            parsed["call_id"] = WATCHED  # the bystanders' session takes some of them
        check_body(harness, encode(parsed), parsed, fresh)

    check()
    assert harness.bodies - start >= 1000


def test_raw_and_arbitrary_bodies(harness: Harness) -> None:
    start = harness.bodies

    @settings(FUZZ, max_examples=1000)
    @given(st.data())
    def check(data: st.DataObject) -> None:
        check_body(harness, raw_body(data), None, fresh=False)

    check()
    assert harness.bodies - start >= 900


# --- client frames ---------------------------------------------------------------------

FRAMES_CALL = "fz-frames"
SEED = samples.seed_callback()
OPTION_IDS = [  # the seed's real choices, so some picks are valid
    row["id"]
    for s in SEED["messages"][5]["content"]["interactive"]["action"]["sections"]
    for row in s["rows"]
] + [b["reply"]["id"] for b in SEED["messages"][6]["content"]["interactive"]["action"]["buttons"]]

anything = json_value | st.text(max_size=5000)
good_id = st.from_regex(r"[A-Za-z0-9_-]{8,64}", fullmatch=True)
# Per field: (what a working widget sends, what a broken or hostile one might send instead).
FIELDS: dict[str, dict[str, tuple[st.SearchStrategy[Any], st.SearchStrategy[Any]]]] = {
    "send": {
        "client_msg_id": (good_id, st.text(max_size=80) | anything),
        "text": (
            st.text(max_size=300) | st.integers(3990, 4010).map("x".__mul__),
            anything,
        ),
    },
    "choose": {
        "client_msg_id": (good_id, st.text(max_size=80) | anything),
        "message_id": (st.sampled_from([6, 7, 1, 99]), st.integers() | anything),
        "option_id": (st.sampled_from(OPTION_IDS), st.text(max_size=300) | anything),
    },
    "retry": {"seq": (st.integers(1, 20), st.integers() | anything)},
}


def client_fields(kind: str, data: st.DataObject) -> dict[str, Any]:
    """A well-formed frame of ``kind`` with 0-2 fields dropped or broken, sometimes an
    extra field or another type: most frames are near misses, some are valid."""
    fields = FIELDS[kind]
    frame: dict[str, Any] = {"type": kind}
    frame |= {name: data.draw(good) for name, (good, _) in fields.items()}
    for name in data.draw(st.lists(st.sampled_from(sorted(fields)), max_size=2, unique=True)):
        if data.draw(st.booleans()):
            del frame[name]
        else:
            frame[name] = data.draw(fields[name][1])
    if data.draw(st.integers(0, 5)) == 0:
        frame[data.draw(st.text(max_size=10))] = data.draw(json_value)
    if data.draw(st.integers(0, 7)) == 0:
        frame["type"] = data.draw(st.sampled_from(["SEND", "send ", "", "ack", "ready"]) | anything)
    return frame


def client_frame(data: st.DataObject) -> tuple[str, str | bytes]:
    """(kind, frame): what a broken, hostile or just unusual browser sends."""
    kind = data.draw(
        st.sampled_from(
            ["send", "choose", "retry", "json", "garbage", "binary", "huge", "bad-utf8"]
        ),
        label="kind",
    )
    if kind in FIELDS:
        return kind, json.dumps(client_fields(kind, data))  # ASCII: lone surrogates escaped
    if kind == "json":
        return kind, json.dumps(data.draw(json_value))
    if kind == "garbage":
        return kind, data.draw(st.text(alphabet=st.characters(blacklist_categories=("Cs",))))
    if kind == "binary":
        return kind, data.draw(st.binary(max_size=3000))
    if kind == "bad-utf8":  # sent as a text frame, which must be UTF-8
        junk = data.draw(st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80"]))
        return kind, b'{"type":"send","text":"' + junk * data.draw(st.integers(1, 9)) + b'"}'
    size = data.draw(
        st.integers(MAX_FRAME - 100, MAX_FRAME + 100) | st.sampled_from([200_000]), label="size"
    )
    return kind, orjson.dumps({"type": "send", "client_msg_id": "big", "text": "y" * size}).decode()


class FrameFuzzer:
    """One socket that takes the frames; reconnected when the server rightly closes it."""

    def __init__(self, harness: Harness) -> None:
        self.harness = harness
        self.ws: ClientWebSocketResponse | None = None

    async def exchange(
        self, kind: str, frame: str | bytes
    ) -> tuple[list[dict[str, Any]], int | None]:
        """Send one frame, then a ping: everything before the pong answers that frame (the
        server reads frames in order). The replies, and the close code if it closed."""
        if self.ws is None or self.ws.closed:
            self.ws = await self.harness.connect(FRAMES_CALL, autoping=False, max_msg_size=0)
        ws = self.ws
        self.harness.frames += 1
        if kind == "bad-utf8":
            assert isinstance(frame, bytes)
            await ws.send_frame(frame, WSMsgType.TEXT)
        elif isinstance(frame, bytes):
            await ws.send_bytes(frame)
        else:
            await ws.send_str(frame)
        await ws.ping()
        replies: list[dict[str, Any]] = []
        while True:
            msg = await ws.receive(timeout=TIMEOUT)
            if msg.type is WSMsgType.PONG:
                return replies, None
            if msg.type is WSMsgType.PING:
                await ws.pong(msg.data)
            elif msg.type is WSMsgType.TEXT:
                replies.append(orjson.loads(msg.data))
            else:
                assert msg.type is WSMsgType.CLOSE, msg
                return replies, msg.data

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()


SERVER_FRAME_TYPES = {"message", "ack", "error", "status"}


def test_client_frames(harness: Harness) -> None:
    harness.run(harness.post(orjson.dumps(samples.seed_callback(FRAMES_CALL))))
    fuzzer = FrameFuzzer(harness)
    start = harness.frames

    @settings(FUZZ, max_examples=1200)
    @given(st.data())
    def check(data: st.DataObject) -> None:
        kind, frame = client_frame(data)
        session_before = harness.run(harness.hub.replay(FRAMES_CALL, None, None)).last_seq
        replies, closed = harness.run(fuzzer.exchange(kind, frame))
        session_after = harness.run(harness.hub.replay(FRAMES_CALL, None, None)).last_seq
        answers = sorted({f"{r.get('type')}:{r.get('error', {}).get('code', '')}" for r in replies})
        outcome = f"{kind} -> {', '.join(answers)}{f' closed {closed}' if closed else ''}"
        event(outcome)
        harness.outcomes[outcome] += 1
        assert all(r.get("type") in SERVER_FRAME_TYPES for r in replies), replies
        for reply in replies:
            if reply["type"] == "error":
                assert reply["error"]["code"] != "internal_error", reply
                assert reply["error"]["detail"], reply
        # A re-sent client_msg_id is acknowledged with its first seq and stored once.
        fresh = [r["seq"] for r in replies if r["type"] == "ack" and r["seq"] > session_before]
        assert fresh == list(range(session_before + 1, session_after + 1)), (
            "stored exactly what was acknowledged"
        )
        if closed is not None:
            expected = {"huge": WSCloseCode.MESSAGE_TOO_BIG, "bad-utf8": WSCloseCode.INVALID_TEXT}
            assert closed == expected.get(kind), f"{kind} closed the socket with {closed}"
        assert all(b.open for b in harness.bystanders), "another socket was closed"

    try:
        check()
    finally:
        harness.run(fuzzer.close())
    assert harness.frames - start >= 1000


# --- widget tokens -------------------------------------------------------------------

TOKEN_SECRET = "fuzz-widget-secret"
VALID_TOKEN = tokens.mint("fz-token", 600, secret=TOKEN_SECRET)


@settings(FUZZ, max_examples=500)
@given(
    st.text(max_size=300)
    | st.builds(
        lambda at, junk: VALID_TOKEN[:at] + junk + VALID_TOKEN[at + len(junk) :],
        st.integers(0, len(VALID_TOKEN)),
        st.text(min_size=1, max_size=4),
    )
)
def test_any_other_token_is_refused_with_a_reason(token: str) -> None:
    """Garbage and edits of a valid token: a TokenError, never another exception. (An edit
    of base64's unused low bits decodes to the very same token: that one may pass.)"""
    try:
        expires = tokens.verify(token, "fz-token", secret=TOKEN_SECRET)
    except tokens.TokenError as exc:
        assert exc.code in {"token_missing", "token_invalid"}
    else:
        assert expires == tokens.verify(VALID_TOKEN, "fz-token", secret=TOKEN_SECRET)


# --- the frame rate limit --------------------------------------------------------------


@settings(FUZZ, max_examples=300)
@given(
    st.lists(st.floats(0, 2, allow_nan=False), min_size=1, max_size=200),
    st.floats(0.5, 20),
    st.integers(1, 10),
)
def test_rate_limit_never_lets_more_through_than_burst_plus_rate(
    gaps: list[float], rate: float, burst: int
) -> None:
    """Whatever the timing, any stretch of time admits at most burst + rate x its length."""
    now = [0.0]
    limit = Settings(frames_per_second=rate, frame_burst=burst, frame_abuse_limit=10**6)
    gate = FrameGate(limit, None, clock=lambda: now[0])
    admitted: list[float] = []
    for gap in gaps:
        now[0] += gap
        if verdict(gate) is None:
            admitted.append(now[0])
    for i, start in enumerate(admitted):
        for j in range(i, len(admitted)):
            assert j - i + 1 <= burst + rate * (admitted[j] - start) + 1e-6


@settings(FUZZ, max_examples=200)
@given(st.lists(st.floats(0, 5, allow_nan=False), max_size=100), st.floats(0.5, 20))
def test_a_client_within_the_rate_is_never_refused(extra: list[float], rate: float) -> None:
    now = [0.0]
    gate = FrameGate(Settings(frames_per_second=rate, frame_burst=1), None, clock=lambda: now[0])
    for pause in extra:
        now[0] += 1 / rate + pause
        assert verdict(gate) is None
