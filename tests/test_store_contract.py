"""The session-store contract, proven for every store: each test runs on memory and Redis.

Over real HTTP and sockets (order, only-your-call_id, replay after ``after=``, epoch and
trim recovery, retried callbacks de-duplicated) and on the hub API itself (answered
choices, statuses replayed, find, envelope, atomic seqs under concurrency).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any
from unittest.mock import ANY

import orjson
import pytest
from aiohttp import WSCloseCode
from aiohttp.test_utils import TestClient

from bridge import widget
from bridge.config import Settings
from bridge.demo import samples
from bridge.frames import DeliveryStatus, MessageFrame
from bridge.live.fanout import Fanout, open_fanout
from bridge.live.outbox import Outbox
from bridge.refusals import Refusal
from bridge.store import Store, open_store
from bridge.vendor import airudder
from bridge.widget import ReplyTo, TextMessage
from tests.conftest import MakeClient
from tests.helpers import (
    SEED_KINDS,
    TIMEOUT,
    frames_until_close,
    messages,
    nothing_more,
    post,
    stalled_socket,
    texts,
    until_ready,
)

Client = TestClient[Any, Any]


@pytest.fixture
def make_client(make_client: MakeClient, store: dict[str, Any]) -> MakeClient:
    async def make(**settings: Any) -> TestClient[Any, Any]:
        return await make_client(**store, **settings)

    return make


class Hub:
    """A store and its fan-out, used together the way the application uses them."""

    def __init__(self, store: Store, fanout: Fanout) -> None:
        self.store, self.fanout = store, fanout
        self.replay, self.find, self.envelope = store.replay, store.find, store.envelope
        self.subscribe, self.unsubscribe = fanout.subscribe, fanout.unsubscribe

    async def append(self, call_id: str, items: Any, **options: Any) -> list[int]:
        appended = await self.store.append(call_id, items, **options)
        self.fanout.publish(call_id, appended.epoch, appended.frames)
        return appended.seqs

    async def set_status(
        self, call_id: str, seq: int, status: DeliveryStatus, detail: str | None = None
    ) -> None:
        epoch, frame = await self.store.set_status(call_id, seq, status, detail)
        self.fanout.publish(call_id, epoch, [(None, frame)])


@pytest.fixture
async def hub(store: dict[str, Any]) -> AsyncIterator[Hub]:
    async with open_hub(Settings(**store, history_limit=5)) as opened:
        yield opened


@pytest.fixture
async def short_lived(store: dict[str, Any]) -> AsyncIterator[Hub]:
    """Idle conversations expire after 0.3 s (swept every 0.05 s)."""
    async with open_hub(Settings(**store, session_ttl=0.3, sweep_interval=0.05)) as opened:
        yield opened


@contextlib.asynccontextmanager
async def open_hub(settings: Settings) -> AsyncIterator[Hub]:
    opened = await open_store(settings)
    fanout = await open_fanout(settings, opened)
    try:
        yield Hub(opened, fanout)
    finally:
        await fanout.close()
        await opened.close()


def seed_items(call_id: str) -> list[tuple[str, widget.Draft]]:
    return widget.translate_callback(airudder.receive(orjson.dumps(samples.seed_callback(call_id))))


def person(call_id: str, text: str, reply_to: ReplyTo | None = None) -> widget.WidgetMessage:
    return TextMessage(
        call_id=call_id, seq=0, id=f"u-{text}", sender="user", ts=1, text=text,
        client_msg_id=f"c-{text}", reply_to=reply_to,
    )  # fmt: skip


async def test_stored_frames_are_exactly_the_encoded_messages(hub: Hub) -> None:
    seqs = await hub.append("enc", seed_items("enc")[:5])
    replay = await hub.replay("enc", None, None)
    assert [seq for seq, _ in replay.frames] == seqs == [1, 2, 3, 4, 5]
    for seq, frame in replay.frames:
        assert seq is not None
        stored = await hub.find("enc", seq)
        assert stored is not None and stored.seq == seq
        assert frame == widget.encode(stored)


async def test_find_by_seq_and_by_id_and_the_envelope(hub: Hub) -> None:
    items = seed_items("find")
    body = airudder.Callback.model_validate(samples.seed_callback("find"))
    await hub.append("find", items[:3], envelope=airudder.Envelope.of(body))
    by_id = await hub.find("find", items[1][1].id)
    assert by_id is not None and by_id.seq == 2 and by_id.kind == "image"
    assert (
        await hub.find("find", 3) == MessageFrame.model_validate_json(items[2][1].frame(3)).message
    )
    assert await hub.find("find", 4) is None and await hub.find("find", "nope") is None
    assert await hub.envelope("find") == airudder.Envelope.of(body)
    assert await hub.envelope("nobody") is None


async def test_concurrent_appends_get_distinct_gapless_seqs(hub: Hub) -> None:
    drafts = [(f"k{i}", person("many", f"p{i}")) for i in range(40)]
    results = await asyncio.gather(*(hub.append("many", [item]) for item in drafts))
    assert sorted(seq for got in results for seq in got) == list(range(1, 41))


async def test_a_retried_append_keeps_its_seqs_and_sends_nothing_again(hub: Hub) -> None:
    outbox = Outbox(100, lambda reason: None)
    await hub.subscribe("again", outbox)
    items = seed_items("again")[:3]
    assert await hub.append("again", items) == [1, 2, 3]
    assert await hub.append("again", items) == [1, 2, 3]
    assert await hub.append("again", [items[2], ("new", person("again", "x"))]) == [3, 4]
    got = [await asyncio.wait_for(outbox.get(), TIMEOUT) for _ in range(4)]
    assert [seq for seq, _, _ in got] == [1, 2, 3, 4]
    await hub.unsubscribe("again", outbox)
    assert outbox.empty()


async def test_a_choice_is_answered_once(hub: Hub) -> None:
    choices = seed_items("pick")[6]
    [seq] = await hub.append("pick", [choices])
    pick = ReplyTo(seq=seq, option_id="opt-a")
    assert await hub.append("pick", [("tap-1", person("pick", "A", pick))], answer=pick) == [2]
    # The same tap retried is not a second answer: it keeps its seq.
    assert await hub.append("pick", [("tap-1", person("pick", "A", pick))], answer=pick) == [2]
    other = ReplyTo(seq=seq, option_id="opt-b")
    with pytest.raises(Refusal) as refused:
        await hub.append("pick", [("tap-2", person("pick", "B", other))], answer=other)
    assert refused.value.code == "already_answered"
    replay = await hub.replay("pick", None, None)
    assert replay.last_seq == 2, "a refused answer stores nothing"


async def test_statuses_are_sent_live_and_replayed_after_history(hub: Hub) -> None:
    [seq] = await hub.append("st", [("p1", person("st", "hello"))])
    outbox = Outbox(100, lambda reason: None)
    await hub.subscribe("st", outbox)
    await hub.set_status("st", seq, "sending")
    await hub.set_status("st", seq, "failed", "upstream said 500")
    live = [await asyncio.wait_for(outbox.get(), TIMEOUT) for _ in range(2)]
    assert [(s, orjson.loads(f)["status"]) for s, f, _ in live] == [
        (None, "sending"),
        (None, "failed"),
    ]
    await hub.unsubscribe("st", outbox)
    replay = await hub.replay("st", None, None)
    assert [s for s, _ in replay.frames] == [1, None]
    assert orjson.loads(replay.frames[1][1]) == {
        "type": "status", "seq": 1, "status": "failed", "detail": "upstream said 500"
    }  # fmt: skip
    # A status may change while a browser is away, whatever seq it names: a recovered
    # reconnect after seq 1 gets no message again, but the latest status of each.
    await hub.set_status("st", seq, "sent")
    resumed = await hub.replay("st", 1, replay.epoch)
    assert resumed.recovered
    assert [(s, orjson.loads(f)["status"]) for s, f in resumed.frames] == [(None, "sent")]


async def test_history_is_bounded_and_the_trim_is_reported(hub: Hub) -> None:
    await hub.append("bound", [(f"k{i}", person("bound", f"p{i}")) for i in range(8)])
    replay = await hub.replay("bound", None, None)
    assert [s for s, _ in replay.frames] == [4, 5, 6, 7, 8] and replay.last_seq == 8
    assert not (await hub.replay("bound", 2, replay.epoch)).recovered
    assert [s for s, _ in (await hub.replay("bound", 3, replay.epoch)).frames] == [4, 5, 6, 7, 8]
    assert (await hub.replay("bound", 3, replay.epoch)).recovered
    assert await hub.find("bound", 3) is None and await hub.find("bound", "u-p2") is None


async def test_seed_example_arrives_in_order_and_only_on_its_call_id(client: Client) -> None:
    mine = await client.ws_connect("/ws/mine")
    other = await client.ws_connect("/ws/other")
    await until_ready(mine)
    await until_ready(other)
    assert await post(client, samples.seed_callback("mine")) == (200, {})
    got = await messages(mine, 7)
    assert [m["kind"] for m in got] == SEED_KINDS
    assert [m["seq"] for m in got] == list(range(1, 8))
    assert {m["call_id"] for m in got} == {"mine"}
    assert got[5]["style"] == "list" and got[6]["style"] == "buttons"
    await nothing_more(other)


async def test_retried_callback_is_acknowledged_but_not_shown_twice(client: Client) -> None:
    body = samples.seed_callback("retry")
    assert (await post(client, body))[0] == 200
    assert (await post(client, body))[0] == 200
    ws = await client.ws_connect("/ws/retry")
    replayed, ready = await until_ready(ws)
    assert len(replayed) == 7 and ready["last_seq"] == 7


async def test_same_msg_id_with_new_content_is_a_new_message(client: Client) -> None:
    await post(client, samples.callback("c", samples.text_message("one", "m1", 10)))
    await post(client, samples.callback("c", samples.text_message("two", "m1", 10)))
    ws = await client.ws_connect("/ws/c")
    replayed, _ = await until_ready(ws)
    assert [m["text"] for m in replayed] == ["one", "two"]


async def test_identical_messages_inside_one_body_both_show(client: Client) -> None:
    msg = samples.text_message("again", "m1", 10)
    await post(client, samples.callback("c", msg, msg))
    await post(client, samples.callback("c", msg, msg))  # the vendor's retry of that body
    ws = await client.ws_connect("/ws/c")
    replayed, _ = await until_ready(ws)
    assert [m["text"] for m in replayed] == ["again", "again"]


async def test_messages_before_any_browser_are_replayed(client: Client) -> None:
    await post(client, samples.seed_callback("early"))
    ws = await client.ws_connect("/ws/early")
    replayed, ready = await until_ready(ws)
    assert [m["seq"] for m in replayed] == list(range(1, 8))
    assert ready["last_seq"] == 7 and ready["recovered"] is False


async def test_every_browser_of_a_session_gets_every_message(client: Client) -> None:
    tabs = [await client.ws_connect("/ws/many") for _ in range(3)]
    for ws in tabs:
        await until_ready(ws)
    await post(client, texts("many", 1, 6))
    for ws in tabs:
        assert [m["text"] for m in await messages(ws, 5)] == [f"t{i}" for i in range(1, 6)]


async def test_reconnect_with_after_gets_exactly_what_was_missed(client: Client) -> None:
    ws = await client.ws_connect("/ws/rc")
    await until_ready(ws)
    await post(client, texts("rc", 1, 4))
    assert [m["seq"] for m in await messages(ws, 3)] == [1, 2, 3]
    await ws.close()
    await post(client, texts("rc", 4, 8))
    epoch = (await until_ready(await client.ws_connect("/ws/rc")))[1]["epoch"]
    ws = await client.ws_connect(f"/ws/rc?after=3&epoch={epoch}")
    replayed, ready = await until_ready(ws)
    assert [m["seq"] for m in replayed] == [4, 5, 6, 7]
    assert ready == {
        "type": "ready",
        "last_seq": 7,
        "epoch": epoch,
        "recovered": True,
        "max_text_length": 4000,  # the setting's default: the widget's input limit
    }
    await post(client, texts("rc", 8, 9))
    assert [m["seq"] for m in await messages(ws, 1)] == [8]
    await nothing_more(ws)


async def test_other_epoch_replays_everything_unrecovered(client: Client) -> None:
    await post(client, texts("ep", 1, 4))
    ws = await client.ws_connect("/ws/ep?after=2&epoch=stale")
    replayed, ready = await until_ready(ws)
    assert [m["seq"] for m in replayed] == [1, 2, 3]
    assert ready["recovered"] is False


async def test_trimmed_history_replays_what_is_kept_unrecovered(make_client: MakeClient) -> None:
    client = await make_client(history_limit=5)
    await post(client, texts("trim", 1, 11))
    ws = await client.ws_connect("/ws/trim")
    replayed, ready = await until_ready(ws)
    assert [m["seq"] for m in replayed] == [6, 7, 8, 9, 10]
    ws = await client.ws_connect(f"/ws/trim?after=2&epoch={ready['epoch']}")
    replayed, ready = await until_ready(ws)
    assert [m["seq"] for m in replayed] == [6, 7, 8, 9, 10] and ready["recovered"] is False
    ws = await client.ws_connect(f"/ws/trim?after=7&epoch={ready['epoch']}")
    replayed, ready = await until_ready(ws)
    assert [m["seq"] for m in replayed] == [8, 9, 10] and ready["recovered"] is True


async def test_overflow_closes_with_1013_and_catch_up_works(make_client: MakeClient) -> None:
    """A browser that stops reading is closed with 1013 once it leaves more than
    BRIDGE_SEND_BUFFER_BYTES unread; what it did get is whole and in order, and it catches
    up from there."""
    client = await make_client(
        send_buffer_bytes=64 << 10, history_limit=1000, history_bytes=16 << 20
    )
    reader, writer = await stalled_socket(client.host, client.port, "/ws/of")
    filler = "x" * 16000  # 300 of them: more than the socket buffers on both ends hold
    for i in range(1, 301):
        await post(client, samples.callback("of", samples.text_message(f"{filler}{i}", f"m{i}")))
    got, code = await frames_until_close(reader)  # reading lets the close frame through
    writer.close()
    ready = next(f for f in got if f["type"] == "ready")
    seqs = [f["message"]["seq"] for f in got if f["type"] == "message"]
    assert code == WSCloseCode.TRY_AGAIN_LATER
    assert seqs == list(range(1, len(seqs) + 1)) and len(seqs) < 300
    last = seqs[-1] if seqs else 0
    ws = await client.ws_connect(f"/ws/of?after={last}&epoch={ready['epoch']}")
    replayed, ready = await until_ready(ws)
    assert [m["seq"] for m in replayed] == list(range(last + 1, 301)) and ready["recovered"]


# -- the queue for the bot ------------------------------------------------------------


async def queue(hub: Hub, call_id: str, *texts: str) -> list[int]:
    """The person says ``texts``, each queued for the bot with the body ``b"body-<text>"``."""
    seqs = []
    for text in texts:
        appended = await hub.store.append(
            call_id, [(f"user:{text}", person(call_id, text))], outgoing=f"body-{text}".encode()
        )
        seqs += appended.seqs
    return seqs


def statuses(entries: list[tuple[int | None, bytes]]) -> list[tuple[int, str]]:
    frames = [orjson.loads(frame) for seq, frame in entries if seq is None]
    return [(f["seq"], f["status"]) for f in frames]


async def test_a_person_message_is_queued_in_the_step_that_stores_it(hub: Hub) -> None:
    appended = await hub.store.append("q", [("user:a", person("q", "a"))], outgoing=b"body-a")
    assert appended.seqs == [1]
    assert [seq for seq, _ in appended.frames] == [1, None]
    assert statuses(appended.frames) == [(1, "sending")]
    job = await hub.store.next_outgoing("q")
    assert job is not None and (job.seq, job.body) == (1, b"body-a")
    [waiting] = await hub.store.waiting()
    assert (waiting.call_id, waiting.count, waiting.ready) == ("q", 1, True)
    again = await hub.store.append("q", [("user:a", person("q", "a"))], outgoing=b"body-a")
    assert again.seqs == [1] and again.frames == [], "a re-sent frame is queued once"
    assert (await hub.store.waiting())[0].count == 1
    replay = await hub.replay("q", None, None)
    assert statuses(replay.frames) == [(1, "sending")]


async def test_sent_leaves_the_queue_in_order(hub: Hub) -> None:
    assert await queue(hub, "order", "a", "b") == [1, 2]
    for seq, body in ((1, b"body-a"), (2, b"body-b")):
        job = await hub.store.next_outgoing("order")
        assert job is not None and (job.seq, job.body) == (seq, body)
        _, entries = await hub.store.settle("order", job, sent=True)
        assert statuses(entries) == [(seq, "sent")]
    assert await hub.store.next_outgoing("order") is None
    assert await hub.store.waiting() == []


async def test_a_give_up_holds_the_rest_until_a_retry_sends_all_in_order(hub: Hub) -> None:
    await queue(hub, "held", "a", "b", "c")
    first = await hub.store.next_outgoing("held")
    assert first is not None
    _, entries = await hub.store.settle("held", first, sent=False, detail="HTTP 500")
    assert statuses(entries) == [(1, "failed"), (2, "failed"), (3, "failed")]
    details = [orjson.loads(f).get("detail") for _, f in entries]
    assert details[0] == "HTTP 500" and all("1" in d for d in details[1:])
    assert await hub.store.next_outgoing("held") is None, "held behind the failed one"
    [waiting] = await hub.store.waiting()
    assert (waiting.count, waiting.ready) == (3, False)
    with pytest.raises(Refusal) as refused:
        await hub.store.retry("held", 99)
    assert refused.value.code == "not_failed"
    _, entries = await hub.store.retry("held", 2)  # any message of the queue retries it all
    assert statuses(entries) == [(1, "sending"), (2, "sending"), (3, "sending")]
    job = await hub.store.next_outgoing("held")
    assert job is not None and job.seq == 1
    with pytest.raises(Refusal):
        await hub.store.retry("held", 1)  # it is on its way again: nothing to retry
    replay = await hub.replay("held", None, None)
    assert statuses(replay.frames) == [(1, "sending"), (2, "sending"), (3, "sending")]


async def test_a_job_of_an_earlier_life_settles_nothing(hub: Hub) -> None:
    """Forgotten mid-delivery, then the person writes again: seq 1 again, another message."""
    await queue(hub, "life", "old")
    old = await hub.store.next_outgoing("life")
    assert old is not None
    await hub.store.forget("life")
    await queue(hub, "life", "new")
    assert await hub.store.settle("life", old, sent=True) == (ANY, [])
    new = await hub.store.next_outgoing("life")
    assert new is not None and (new.seq, new.body) == (1, b"body-new")
    assert new.epoch != old.epoch


async def test_one_owner_at_a_time(hub: Hub) -> None:
    assert await hub.store.claim("own", "a", 5.0)
    assert await hub.store.claim("own", "a", 5.0), "the owner renews"
    assert not await hub.store.claim("own", "b", 5.0)
    await hub.store.release("own", "b")  # not b's to release
    assert not await hub.store.claim("own", "b", 5.0)
    await hub.store.release("own", "a")
    assert await hub.store.claim("own", "b", 5.0)


async def test_queued_messages_outlive_the_idle_expiry(short_lived: Hub) -> None:
    hub = short_lived
    await queue(hub, "slow", "a")
    await post_expiry(hub, "slow")
    job = await hub.store.next_outgoing("slow")
    assert job is not None and job.body == b"body-a"
    _, entries = await hub.store.settle("slow", job, sent=True)
    assert statuses(entries) == [(1, "sent")]


async def test_forget_deletes_a_conversation_everywhere(hub: Hub) -> None:
    await hub.append("gone", seed_items("gone")[:3])
    await queue(hub, "gone", "a")
    before = await hub.replay("gone", None, None)
    assert await hub.store.forget("gone") is True
    assert await hub.store.forget("gone") is False
    after = await hub.replay("gone", None, None)
    assert after.frames == [] and after.last_seq == 0 and after.epoch != before.epoch
    assert await hub.store.next_outgoing("gone") is None
    assert await hub.find("gone", 1) is None and await hub.envelope("gone") is None


async def post_expiry(hub: Hub, call_id: str) -> None:
    """Let the idle expiry (0.3 s, swept every 0.05 s) pass several times over: the
    passing of time is what these tests are about, so this one waits."""
    other = f"{call_id}-idle"
    await hub.append(other, seed_items(other)[:1])
    first = (await hub.replay(other, None, None)).epoch
    for _ in range(100):
        await asyncio.sleep(0.05)
        if (await hub.store.latest(other)) is None:
            break
    else:
        raise AssertionError("an idle conversation never expired")
    assert (await hub.replay(other, None, None)).epoch != first
