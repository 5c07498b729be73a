"""People talk back: send/choose frames become user messages and go upstream exactly once."""

from __future__ import annotations

import uuid
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp.test_utils import TestClient

from bridge.config import Settings, SignScheme
from bridge.delivery.forwarder import Forwarder
from bridge.delivery.request import outgoing_body
from bridge.demo import samples
from bridge.live.fanout import LocalFanout
from bridge.metrics import Metrics
from bridge.refusals import StoreUnavailable
from bridge.store.memory import MemoryStore
from bridge.vendor import signing
from bridge.widget import TextMessage
from tests.conftest import MakeClient
from tests.helpers import frame, messages, nothing_more, post, send, until, until_ready
from tests.upstream import Upstream

Client = TestClient[Any, Any]
SECRET = b"shared-secret"


@pytest.fixture
async def bridge(
    make_client: MakeClient, upstream: tuple[Upstream, str], store: dict[str, Any]
) -> Client:
    """On each session store: replies use the whole store contract (find, answers, statuses)."""
    return await make_client(
        **store, upstream_url=upstream[1], signing_secret=SECRET.decode(), upstream_backoff=0.01
    )


def choose(message_id: int | str, option_id: str) -> dict[str, Any]:
    return {
        "type": "choose",
        "client_msg_id": uuid.uuid4().hex,
        "message_id": message_id,
        "option_id": option_id,
    }


async def next_of(ws: Any, kind: str) -> dict[str, Any]:
    while True:
        data = await frame(ws)
        if data["type"] == kind:
            return data


async def say(client: Client, call_id: str, text: str) -> tuple[Any, int]:
    """Join ``call_id``, send ``text``; the socket and the seq the ack gave it."""
    ws = await client.ws_connect(f"/ws/{call_id}")
    await until_ready(ws)
    await ws.send_json(send(text))
    return ws, (await next_of(ws, "ack"))["seq"]


async def wait_status(ws: Any, seq: int, final: str) -> dict[str, Any]:
    while True:
        data = await next_of(ws, "status")
        if data["seq"] == seq and data["status"] in ("sent", "failed"):
            assert data["status"] == final, data
            return data


async def test_text_is_recorded_acked_shown_everywhere_and_forwarded_signed(
    bridge: Client, upstream: tuple[Upstream, str]
) -> None:
    up, _ = upstream
    await post(bridge, samples.seed_callback("c1"), secret=SECRET)
    tab1, tab2 = bridge_tabs = [await bridge.ws_connect("/ws/c1") for _ in range(2)]
    for ws in bridge_tabs:
        await until_ready(ws)
    frame_out = send("你好 👋")
    await tab1.send_json(frame_out)
    ack = await next_of(tab1, "ack")
    assert ack == {"type": "ack", "client_msg_id": frame_out["client_msg_id"], "seq": 8}
    for ws in bridge_tabs:
        (mine,) = await messages(ws, 1)
        assert (mine["from"], mine["text"], mine["seq"]) == ("user", "你好 👋", 8)
    await wait_status(tab2, 8, "sent")
    ((body, sign),) = up.requests
    assert signing.verify(body, sign, [SECRET], SignScheme.HMAC_SHA256_HEX)
    sent = orjson.loads(body)
    assert sent["call_id"] == "c1" and sent["channel"] == "HuaWei"
    assert sent["user"] == {"id": "123", "name": "nick"}, "envelope from the latest callback"
    assert sent["messages"] == [
        {
            "msg_id": frame_out["client_msg_id"],
            "sender_type": "user",
            "timestamp": sent["messages"][0]["timestamp"],
            "content": {"type": "text", "text": "你好 👋"},
        }
    ]


@pytest.mark.parametrize("upstream", [{"fail_first": 3}], indirect=True)
async def test_5xx_is_retried_with_the_same_msg_id_and_delivered_once(
    bridge: Client, upstream: tuple[Upstream, str]
) -> None:
    up, _ = upstream
    ws, seq = await say(bridge, "c2", "hello")
    await wait_status(ws, seq, "sent")
    assert len(up.requests) == 4 and len(up.accepted) == 1
    assert len({orjson.loads(b)["messages"][0]["msg_id"] for b, _ in up.requests}) == 1


@pytest.mark.parametrize("upstream", [{"fail_first": 1, "fail_status": 422}], indirect=True)
async def test_4xx_is_not_retried_and_shows_failed_until_retried(
    bridge: Client, upstream: tuple[Upstream, str]
) -> None:
    up, _ = upstream
    ws, seq = await say(bridge, "c3", "hello")
    failed = await wait_status(ws, seq, "failed")
    assert "422" in failed["detail"] and len(up.requests) == 1
    # a reload shows the failure too: statuses follow the replayed messages
    replayed = await bridge.ws_connect("/ws/c3")
    frames_seen = []
    while (data := await frame(replayed))["type"] != "ready":
        frames_seen.append(data)
    assert {
        "type": "status",
        "seq": seq,
        "status": "failed",
        "detail": failed["detail"],
    } in frames_seen
    await ws.send_json({"type": "retry", "seq": seq})
    await wait_status(ws, seq, "sent")
    assert len(up.accepted) == 1
    await ws.send_json({"type": "retry", "seq": seq})
    refused = await next_of(ws, "error")
    assert refused["error"]["code"] == "not_failed"
    assert refused["seq"] == seq  # the widget knows which Retry to take back


@pytest.mark.parametrize("upstream", [{"fail_first": 100}], indirect=True)
async def test_retries_are_bounded_and_end_failed(
    make_client: MakeClient, upstream: tuple[Upstream, str]
) -> None:
    up, url = upstream
    client = await make_client(upstream_url=url, upstream_backoff=0.01, upstream_attempts=3)
    ws, seq = await say(client, "c4", "hello")
    assert "3 attempts" in (await wait_status(ws, seq, "failed"))["detail"]
    assert len(up.requests) == 3


@pytest.mark.parametrize("upstream", [{"delay": 0.02}], indirect=True)
async def test_forwarding_keeps_order_per_call_id(
    bridge: Client, upstream: tuple[Upstream, str]
) -> None:
    up, _ = upstream
    ws = await bridge.ws_connect("/ws/c5")
    await until_ready(ws)
    for i in range(10):
        await ws.send_json(send(f"n{i}"))
    for _ in range(10):
        await next_of(ws, "ack")
    await until(lambda: len(up.accepted) == 10, "the slow upstream took all ten")
    assert [a["messages"][0]["content"]["text"] for a in up.accepted] == [
        f"n{i}" for i in range(10)
    ]


async def test_resent_frame_is_recorded_and_forwarded_once(
    bridge: Client, upstream: tuple[Upstream, str]
) -> None:
    up, _ = upstream
    ws = await bridge.ws_connect("/ws/c6")
    await until_ready(ws)
    out = send("only once")
    await ws.send_json(out)
    first = await next_of(ws, "ack")
    await ws.send_json(out)  # the ack was lost, say, and the widget sends it again
    # The second ack and the delivery status race (the status can even come first).
    acks, final = [], None
    while not acks or final is None:
        data = await frame(ws)
        if data["type"] == "ack":
            acks.append(data)
        elif data["type"] == "status" and data["status"] in ("sent", "failed"):
            final = data["status"]
    assert acks == [first] and final == "sent"
    other = await bridge.ws_connect("/ws/c6")
    replayed, _ = await until_ready(other)
    assert [m["text"] for m in replayed] == ["only once"]
    assert len(up.accepted) == 1


@pytest.mark.parametrize(
    ("bad", "code"),
    [
        (send("   "), "empty_text"),
        (send("x" * 4001), "text_too_long"),
        ({"type": "send", "text": "no id"}, "invalid_frame"),
        ({"type": "shout"}, "invalid_frame"),
        (choose(99, "x"), "unknown_message"),
        (choose(1, "x"), "unknown_message"),  # seq 1 is a text, not choices
        (choose(6, "nope"), "unknown_option"),
    ],
)
async def test_refused_frames_get_an_error_and_record_nothing(
    bridge: Client, bad: dict[str, Any], code: str
) -> None:
    await post(bridge, samples.seed_callback("c7"), secret=SECRET)
    ws = await bridge.ws_connect("/ws/c7")
    await until_ready(ws)
    await ws.send_json(bad)
    error = await next_of(ws, "error")
    assert error["error"]["code"] == code and error["error"]["detail"]
    await nothing_more(ws)
    _, ready = await until_ready(await bridge.ws_connect("/ws/c7"))
    assert ready["last_seq"] == 7


async def test_garbage_frame_is_refused_and_socket_stays_usable(bridge: Client) -> None:
    ws = await bridge.ws_connect("/ws/c8")
    await until_ready(ws)
    await ws.send_str("{not json")
    assert (await next_of(ws, "error"))["error"]["code"] == "invalid_frame"
    await ws.send_bytes(b"\x00\x01")
    assert (await next_of(ws, "error"))["error"]["code"] == "invalid_frame"
    await ws.send_json(send("still here"))
    assert (await next_of(ws, "ack"))["seq"] == 1


async def test_a_choice_is_answered_once_for_every_tab_and_forwarded_as_list_reply(
    bridge: Client, upstream: tuple[Upstream, str]
) -> None:
    up, _ = upstream
    await post(bridge, samples.seed_callback("c9"), secret=SECRET)
    tab1, tab2 = [await bridge.ws_connect("/ws/c9") for _ in range(2)]
    replayed, _ = await until_ready(tab1)
    await until_ready(tab2)
    the_list = replayed[5]
    row = the_list["sections"][1]["options"][0]
    await tab1.send_json(choose(the_list["seq"], row["id"]))
    seq = (await next_of(tab1, "ack"))["seq"]
    (pick,) = await messages(tab2, 1)
    assert pick["from"] == "user" and pick["text"] == "大件快递"
    assert pick["reply_to"] == {"seq": the_list["seq"], "option_id": row["id"]}
    await tab2.send_json(choose(the_list["id"], the_list["sections"][0]["options"][0]["id"]))
    assert (await next_of(tab2, "error"))["error"]["code"] == "already_answered"
    await wait_status(tab1, seq, "sent")
    content = up.accepted[0]["messages"][0]["content"]
    assert content == {
        "type": "interactive",
        "interactive": {"type": "list_reply", "list_reply": {"id": row["id"], "title": "大件快递"}},
    }
    # a reload shows the answer: the reply is in the history, pointing at the list
    replayed, _ = await until_ready(await bridge.ws_connect("/ws/c9"))
    assert [m.get("reply_to") for m in replayed if m["from"] == "user"] == [pick["reply_to"]]


async def test_button_pick_is_forwarded_as_button_reply(
    bridge: Client, upstream: tuple[Upstream, str]
) -> None:
    up, _ = upstream
    await post(bridge, samples.seed_callback("c10"), secret=SECRET)
    ws = await bridge.ws_connect("/ws/c10")
    replayed, _ = await until_ready(ws)
    buttons = replayed[6]
    await ws.send_json(choose(buttons["seq"], buttons["sections"][0]["options"][2]["id"]))
    await wait_status(ws, (await next_of(ws, "ack"))["seq"], "sent")
    interactive = up.accepted[0]["messages"][0]["content"]["interactive"]
    assert interactive["type"] == "button_reply"
    assert interactive["button_reply"]["title"] == "其他"


async def test_demo_bot_answers_through_the_real_callback_path(make_client: MakeClient) -> None:
    client = await make_client(signing_secret="demo", upstream_backoff=0.01)
    ws = await client.ws_connect("/ws/demo")
    await until_ready(ws)
    await ws.send_json(send("menu please"))
    mine, bot = await messages(ws, 2)
    assert mine["text"] == "menu please"
    assert bot["from"] == "bot" and bot["kind"] == "choices" and bot["style"] == "list"
    row = bot["sections"][0]["options"][1]
    await ws.send_json(choose(bot["seq"], row["id"]))
    pick, confirmation = await messages(ws, 2)
    assert pick["reply_to"]["option_id"] == row["id"]
    assert confirmation["from"] == "bot" and "网点查询" in confirmation["text"]
    await ws.send_json(send("buttons"))
    _, buttons = await messages(ws, 2)
    assert [o["label"] for o in buttons["sections"][0]["options"]] == ["男", "女", "其他"]


class FlakyStore(MemoryStore):
    """The memory store, but the next read of the queue fails as an unreachable Redis would."""

    down = False

    async def next_outgoing(self, call_id: str) -> Any:
        if self.down:
            self.down = False
            raise StoreUnavailable("redis is down")
        return await super().next_outgoing(call_id)


async def test_store_outage_while_forwarding_is_resumed_from_the_store(
    upstream: tuple[Upstream, str],
) -> None:
    up, url = upstream
    settings = Settings(upstream_url=url, upstream_backoff=0.01, delivery_sweep=0.05)
    store = FlakyStore(settings)
    async with aiohttp.ClientSession() as http:
        forwarder = Forwarder(settings, url, store, LocalFanout().publish, Metrics(), http)
        draft = TextMessage(call_id="c", seq=0, id="m-000001", sender="user", ts=1, text="a")
        body = outgoing_body(draft, None, None)
        await store.append("c", [("k1", draft)], outgoing=body)
        store.down = True
        forwarder.kick("c")
        await until(lambda: not forwarder._tasks, "it gave up on the outage")
        assert up.requests == []
        await forwarder.start()
        await until(lambda: up.accepted, "the sweep found the message still queued")
        assert up.accepted[0]["messages"][0]["content"]["text"] == "a"
        assert await store.next_outgoing("c") is None
        await forwarder.close()
