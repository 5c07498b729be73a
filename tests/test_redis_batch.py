"""Appends made at once share a round trip to Redis (bridge/store/redis_batch.py), and
each still gets its own answer. Counted on Redis's side (``INFO``), never timed."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.asyncio.connection import Connection

from bridge.config import Settings
from bridge.refusals import Refusal, StoreUnavailable
from bridge.store import open_store, redis_wire
from bridge.store.redis import RedisStore
from bridge.store.redis_keys import SessionKeys
from bridge.widget import ReplyTo, TextMessage, WidgetMessage
from tests.redis_topologies import FAST_SYNC, until
from tests.servers import RedisServer

APPENDS = 30


def person(call_id: str, text: str, reply_to: ReplyTo | None = None) -> WidgetMessage:
    return TextMessage(
        call_id=call_id, seq=0, id=f"u-{text}", sender="user", ts=1, text=text,
        client_msg_id=f"c-{text}", reply_to=reply_to,
    )  # fmt: skip


@contextlib.asynccontextmanager
async def opened(url: str, **settings: Any) -> AsyncIterator[RedisStore]:
    store = await open_store(Settings(redis_url=url, **settings))
    assert isinstance(store, RedisStore)
    try:
        yield store
    finally:
        await store.close()


def stats(admin: redis.Redis) -> tuple[int, dict[str, int]]:
    """Redis's reads from client sockets so far (one per round trip: a pipeline is read
    at once), and the calls of each command."""
    reads = int(admin.info("stats")["total_reads_processed"])
    calls = {name[len("cmdstat_") :]: int(stat["calls"]) for name, stat in _commands(admin)}
    return reads, calls


def _commands(admin: redis.Redis) -> Iterator[tuple[str, dict[str, Any]]]:
    yield from admin.info("commandstats").items()


async def test_appends_made_at_once_share_one_round_trip(
    redis_url: str, redis_server: RedisServer
) -> None:
    admin = redis_server.client()
    async with opened(redis_url) as store:
        await store.append("warm", [("w", person("warm", "w"))])  # the connection, opened
        reads, calls = stats(admin)
        results = await asyncio.gather(
            *(store.append(f"b{i}", [(f"k{i}", person(f"b{i}", f"p{i}"))]) for i in range(APPENDS))
        )
        reads_after, calls_after = stats(admin)
    assert [got.seqs for got in results] == [[1]] * APPENDS
    assert calls_after["evalsha"] - calls.get("evalsha", 0) == APPENDS  # every one ran
    # One by one, each append is a read of its own (on a connection of its own). Batched,
    # the pipeline comes in a read or a few (a large write is read in 16 KB pieces); the
    # INFO above is one more.
    assert reads_after - reads - 1 <= APPENDS // 5


async def test_a_refusal_or_an_error_in_a_batch_fails_only_its_own_append(
    redis_url: str, redis_server: RedisServer
) -> None:
    admin = redis_server.client()
    async with opened(redis_url) as store:
        [seq] = (await store.append("pick", [("choices", person("pick", "q"))])).seqs
        first = ReplyTo(seq=seq, option_id="a")
        await store.append("pick", [("tap-a", person("pick", "A", first))], answer=first)
        # A key of the wrong type: the script fails in Redis for that conversation only.
        admin.set(SessionKeys.of("broken").meta, "not a hash")
        second = ReplyTo(seq=seq, option_id="b")
        sent = store._batch.round_trips
        results = await asyncio.gather(
            store.append("pick", [("tap-b", person("pick", "B", second))], answer=second),
            *(store.append(f"ok{i}", [(f"k{i}", person(f"ok{i}", f"p{i}"))]) for i in range(5)),
            store.append("broken", [("k", person("broken", "x"))]),
            return_exceptions=True,
        )
        assert store._batch.round_trips - sent == 1, "the seven went together"
        refused, *fine, failed = results
        assert isinstance(refused, Refusal) and refused.code == "already_answered"
        assert [got.seqs for got in fine] == [[1]] * 5  # type: ignore[union-attr]
        assert isinstance(failed, redis.exceptions.ResponseError) and "WRONGTYPE" in str(failed)
        replay = await store.replay("pick", None, None)
        assert replay.last_seq == 2, "the refused answer stored nothing"


async def test_a_batch_loads_scripts_redis_lost(redis_url: str, redis_server: RedisServer) -> None:
    admin = redis_server.client()
    async with opened(redis_url) as store:
        await store.append("warm", [("w", person("warm", "w"))])
        admin.script_flush()  # as a promoted replica, or a restarted Redis, has none
        results = await asyncio.gather(
            *(store.append(f"n{i}", [(f"k{i}", person(f"n{i}", f"p{i}"))]) for i in range(5))
        )
    assert [got.seqs for got in results] == [[1]] * 5


async def test_a_batch_waits_once_for_a_replica(tmp_path: Path) -> None:
    (tmp_path / "master").mkdir()
    (tmp_path / "replica").mkdir()
    master = RedisServer(tmp_path / "master", False, *FAST_SYNC)
    replica = RedisServer(tmp_path / "replica", False, "--replicaof", "127.0.0.1", str(master.port))
    try:
        master.start()
        replica.start()
        admin = master.client()
        until(lambda: admin.info("replication")["connected_slaves"] == 1, "a replica")
        async with opened(master.url, redis_wait=5000) as store:
            await store.append("warm", [("w", person("warm", "w"))])
            _, calls = stats(admin)
            results = await asyncio.gather(
                *(store.append(f"r{i}", [(f"k{i}", person(f"r{i}", f"p{i}"))]) for i in range(10))
            )
            _, calls_after = stats(admin)
        assert [got.seqs for got in results] == [[1]] * 10
        assert calls_after["wait"] - calls["wait"] == 1
    finally:
        replica.stop()
        master.stop()


async def test_without_a_replica_no_append_of_the_batch_is_acknowledged(
    redis_url: str, redis_server: RedisServer
) -> None:
    async with opened(redis_url, redis_wait=20) as store:
        results = await asyncio.gather(
            *(store.append(f"w{i}", [(f"k{i}", person(f"w{i}", f"p{i}"))]) for i in range(5)),
            return_exceptions=True,
        )
    assert all(isinstance(got, StoreUnavailable) for got in results)


def test_the_wire_format_is_the_one_redis_py_writes() -> None:
    args = ("EVALSHA", "f" * 40, 2, "bridge:{a}:meta", "é", b"\x00\r\n", 0, -7, 1.5, "", b"")
    assert redis_wire.command(args) == b"".join(Connection().pack_command(*args))
    with pytest.raises(TypeError):
        redis_wire.command(("SET", "k", True))
