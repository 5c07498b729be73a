"""The store contract, continued (test_store_contract.py's fixtures, every test on SQLite,
memory and Redis): the byte budget of a conversation, the per-message limit, and
de-duplication that outlives the history and the session; the callback's maximum age."""

from __future__ import annotations

import time
from typing import Any

import pytest

from bridge.config import Settings
from bridge.demo import samples
from bridge.refusals import Refusal
from tests.helpers import post, until_ready
from tests.test_store_contract import (  # noqa: F401 - fixtures
    Hub,
    hub,
    make_client,
    open_hub,
    person,
    post_expiry,
    seed_items,
    short_lived,
)

TEXT = 1000  # bytes of text per message: its frame is a little more


def said(call_id: str, n: int, start: int = 0) -> list[tuple[str, Any]]:
    return [(f"k{i}", person(call_id, f"{i:04d}" + "x" * TEXT)) for i in range(start, start + n)]


async def test_history_is_trimmed_by_bytes_and_replay_stays_within(store: dict[str, Any]) -> None:
    settings = Settings(**store, history_bytes=20_000, max_message_bytes=4_000)
    async with open_hub(settings) as opened:
        for start in range(0, 40, 8):
            await opened.append("bytes", said("bytes", 8, start))
        replay = await opened.replay("bytes", None, None)
        sizes = [len(frame) for seq, frame in replay.frames]
        assert sum(sizes) <= 20_000 < sum(sizes) + sizes[0], "as many as fit, no more"
        assert [s for s, _ in replay.frames][-1] == replay.last_seq == 40, "the newest stay"
        first = replay.frames[0][0]
        assert first is not None and not (await opened.replay("bytes", 1, replay.epoch)).recovered
        assert (await opened.replay("bytes", first - 1, replay.epoch)).recovered


async def test_a_message_over_the_limit_is_refused_and_nothing_stored(hub: Hub) -> None:  # noqa: F811
    await hub.store.append("big", said("big", 1))
    too_big = ("huge", person("big", "y" * (Settings().max_message_bytes + 1)))
    with pytest.raises(Refusal) as refused:
        await hub.store.append("big", [*said("big", 2, 1), too_big])
    assert (refused.value.code, refused.value.status) == ("message_too_large", 413)
    assert "messages.2" in refused.value.detail
    replay = await hub.replay("big", None, None)
    assert replay.last_seq == 1, "all of the append or none of it"
    assert await hub.append("big", said("big", 2, 1)) == [2, 3], "its keys unknown"


async def test_a_callback_over_the_limit_is_refused_with_the_message_named(
    make_client: Any,  # noqa: F811 - the fixture
) -> None:
    client = await make_client(max_message_bytes=4096)
    body = samples.callback(
        "cb", samples.text_message("fine", "m1"), samples.text_message("z" * 5000, "m2")
    )
    status, answer = await post(client, body)
    assert status == 413 and answer["error"] == "message_too_large"
    assert answer["detail"].startswith("messages.1:")
    replayed, ready = await until_ready(await client.ws_connect("/ws/cb"))
    assert replayed == [] and ready["last_seq"] == 0


async def test_identities_outlive_the_session(short_lived: Hub) -> None:  # noqa: F811
    opened = short_lived
    items = seed_items("again")
    await opened.append("again", items)
    before = await opened.replay("again", None, None)
    await post_expiry(opened, "again")
    again = await opened.store.append("again", items)
    assert again.frames == [] and again.seqs == [0] * 7, "remembered from an earlier life"
    after = await opened.replay("again", None, None)
    assert after.epoch != before.epoch and after.last_seq == 0
    new = await opened.store.append("again", [("new", person("again", "new"))])
    assert new.seqs == [1]
    assert (await opened.store.append("again", [items[0]])).seqs == [0]
    assert (await opened.store.append("again", [("new", person("again", "new"))])).seqs == [1]


async def test_identities_outlive_1100_newer_messages(hub: Hub) -> None:  # noqa: F811
    """The hub keeps 5 messages of history; the identities, 5,000 by default."""
    first = seed_items("many")[:1]
    await hub.append("many", first)
    for start in range(0, 1100, 100):
        await hub.append("many", said("many", 100, start))
    appended = await hub.store.append("many", first)
    assert appended.frames == [] and appended.seqs == [1], "long gone from the history"
    assert (await hub.replay("many", None, None)).last_seq == 1101


async def test_identities_kept_per_conversation_are_bounded(store: dict[str, Any]) -> None:
    async with open_hub(Settings(**store, history_limit=2, dedup_per_call=3)) as opened:
        await opened.append("few", said("few", 4))
        assert (await opened.store.append("few", said("few", 1, 1))).frames == [], "among the 3"
        again = await opened.store.append("few", said("few", 1))
        assert again.seqs == [5] and again.frames, "the oldest was forgotten: shown again"


async def test_the_total_is_bounded_least_recently_active_first(store: dict[str, Any]) -> None:
    if "redis_url" in store:
        pytest.skip("Redis bounds each conversation, not the total (docs/security.md)")
    async with open_hub(Settings(**store, dedup_total=6)) as opened:
        for call_id in ("a", "b", "c"):
            await opened.append(call_id, said(call_id, 3))
        assert (await opened.store.append("a", said("a", 1))).frames, "a was forgotten first"
        assert (await opened.store.append("c", said("c", 3))).frames == [], "c is remembered"


async def test_max_age_refuses_old_messages(make_client: Any) -> None:  # noqa: F811
    client = await make_client(max_callback_age=600)
    now = int(time.time())
    stale = samples.callback(
        "age", samples.text_message("new", "m1", now), samples.text_message("old", "m2", 1)
    )
    status, answer = await post(client, stale)
    assert (status, answer["error"]) == (422, "message_too_old")
    assert answer["detail"].startswith("messages.1.timestamp:")
    ok = samples.callback("age", samples.text_message("ok", "m3", now))
    assert await post(client, ok) == (200, {})
    replayed, _ = await until_ready(await client.ws_connect("/ws/age"))
    assert [m["text"] for m in replayed] == ["ok"], "nothing of the refused body"
