"""The SQLite store beyond the contract: what a restart gives back (memory == disk), its
data directory (private, locked, versioned), retention on disk, a failed write, and real
processes killed with SIGKILL."""

from __future__ import annotations

import asyncio
import copy
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from bridge.config import Settings, StartupError
from bridge.demo import samples
from bridge.refusals import Refusal, StoreUnavailable
from bridge.store import open_store, sqlite_file
from bridge.store.sqlite import SqliteStore
from bridge.vendor import airudder
from bridge.widget import ReplyTo
from tests.helpers import TIMEOUT, nothing_more, until_ready
from tests.servers import ROOT, Bridge, free_port
from tests.test_store_contract import person, seed_items

TABLES = tuple(sqlite_file.COLUMNS)  # the sessions' tables and seen


def settings(data_dir: Path, **more: Any) -> Settings:
    return Settings(store="sqlite", data_dir=data_dir, history_limit=5, **more)


async def opened(data_dir: Path, **more: Any) -> SqliteStore:
    store = await open_store(settings(data_dir, **more))
    assert isinstance(store, SqliteStore)
    return store


def state(store: SqliteStore, call_id: str) -> tuple[Any, ...]:
    """Everything a session holds but the sockets' count and its idle clock."""
    s = store._sessions[call_id]
    queue = [(q.seq, q.body, q.queued_at, q.failed) for q in s.queue]
    keys = list(store._seen.keys(call_id).items())
    kept = (s.epoch, s.last_seq, s.base, s.history, s.nbytes, keys, s.answered, s.statuses)
    return copy.deepcopy((*kept, s.envelope, queue))


def rows(data_dir: Path, call_id: str | None = None) -> dict[str, int]:
    """Rows per table (of ``call_id``, or all), read beside the store like any reader."""
    with sqlite3.connect(data_dir / sqlite_file.DB_NAME) as conn:
        where, params = ("WHERE call_id = ?", (call_id,)) if call_id else ("", ())
        return {
            t: conn.execute(f"SELECT count(*) FROM {t} {where}", params).fetchone()[0]
            for t in TABLES
        }


async def fill(store: SqliteStore) -> None:
    """A bit of everything: trimmed history and keys, an answer, an envelope, statuses,
    and two queues for the bot (one held behind a message that gave up)."""
    items = seed_items("full")
    body = airudder.Callback.model_validate(samples.seed_callback("full"))
    await store.append("full", items[:6], envelope=airudder.Envelope.of(body))  # 6 > limit 5
    for text in ("a", "b", "c"):  # 7, 8, 9
        draft = person("full", text)
        await store.append("full", [(f"u:{text}", draft)], outgoing=f"body-{text}".encode())
    for sent in (True, False):  # 7 is sent; 8 gives up, holding 9
        job = await store.next_outgoing("full")
        assert job is not None
        await store.settle("full", job, sent=sent, detail=None if sent else "HTTP 500")
    for i in range(6):  # 10..15
        await store.append("full", [(f"k{i}", person("full", f"p{i}"))])
    await store.set_status("full", 15, "sent")
    [choices] = (await store.append("full", [items[6]])).seqs  # 16
    pick = ReplyTo(seq=choices, option_id="opt-a")
    await store.append("full", [("tap", person("full", "A", pick))], answer=pick)  # 17
    await store.append("other", [("user:x", person("other", "x"))], outgoing=b"body-x")


async def test_a_reopened_store_gives_back_everything(tmp_path: Path) -> None:
    store = await opened(tmp_path)
    await fill(store)
    before = {call_id: state(store, call_id) for call_id in ("full", "other")}
    await store.close()
    store = await opened(tmp_path)
    try:
        assert {call_id: state(store, call_id) for call_id in before} == before
        assert [w.call_id for w in await store.waiting()] == ["full", "other"]
        retried = await store.append("full", [("k5", person("full", "p5"))])
        assert retried.seqs == [15] and retried.frames == [], "de-duplicated after a restart"
        assert store._sessions["full"].answered == {16: "opt-a"}
        with pytest.raises(Refusal):
            pick = ReplyTo(seq=16, option_id="opt-b")
            await store.append("full", [("tap2", person("full", "B", pick))], answer=pick)
    finally:
        await store.close()
    counts = rows(tmp_path, "full")
    assert (counts["messages"], counts["seen"]) == (5, 17), "the history; every key"


async def test_a_second_store_on_one_directory_is_refused(tmp_path: Path) -> None:
    store = await opened(tmp_path)
    try:
        with pytest.raises(StartupError, match=str(tmp_path)):
            await opened(tmp_path)
    finally:
        await store.close()
    await (await opened(tmp_path)).close()  # closing released the lock


def set_version(data_dir: Path, version: int) -> None:
    with sqlite3.connect(data_dir / sqlite_file.DB_NAME) as conn:
        conn.execute(f"PRAGMA user_version = {version}")


async def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    await (await opened(tmp_path)).close()
    set_version(tmp_path, sqlite_file.SCHEMA_VERSION + 1)
    with pytest.raises(StartupError, match="newer") as refused:
        await opened(tmp_path)
    assert str(tmp_path) in str(refused.value) and "\n" not in str(refused.value)
    await (await opened(tmp_path / "elsewhere")).close()  # the lock was released


async def test_an_older_schema_is_migrated_at_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sqlite3.connect(tmp_path / sqlite_file.DB_NAME).close()  # an empty file: version 0
    store = await opened(tmp_path)
    await store.append("old", [("k", person("old", "hi"))])
    await store.close()

    def add_column(conn: sqlite3.Connection) -> None:
        conn.execute("ALTER TABLE sessions ADD COLUMN note TEXT")

    later = sqlite_file.SCHEMA_VERSION + 1
    monkeypatch.setattr(sqlite_file, "SCHEMA_VERSION", later)
    monkeypatch.setitem(sqlite_file.MIGRATIONS, later - 1, add_column)
    store = await opened(tmp_path)
    try:
        assert (await store.replay("old", None, None)).last_seq == 1
    finally:
        await store.close()
    with sqlite3.connect(tmp_path / sqlite_file.DB_NAME) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == later
        assert "note" in [c[1] for c in conn.execute("PRAGMA table_info(sessions)")]


async def test_the_directory_and_files_are_private(tmp_path: Path) -> None:
    data_dir = tmp_path / "state" / "bridge"
    store = await opened(data_dir)
    await store.append("p", [("k", person("p", "hi"))])
    try:
        assert data_dir.stat().st_mode & 0o777 == 0o700
        names = {p.name: p.stat().st_mode & 0o777 for p in data_dir.iterdir()}
        assert {"lock", "bridge.sqlite3", "bridge.sqlite3-wal"} <= names.keys()
        assert set(names.values()) == {0o600}
    finally:
        await store.close()


async def test_expiry_and_forget_delete_rows_and_the_file_stays_small(tmp_path: Path) -> None:
    store = await opened(tmp_path, session_ttl=60.0, dedup_total=7)  # seen stays small too
    try:
        await store.append("kept", [("user:a", person("kept", "a"))], outgoing=b"body-a")
        pages = []
        for round_ in range(4):
            for i in range(150):
                await store.append(f"c{round_}-{i}", seed_items(f"c{round_}-{i}"))
            assert store.sweep(time.monotonic() + 61) == 150
            await store._durable()
            with sqlite3.connect(tmp_path / sqlite_file.DB_NAME) as conn:
                pages.append(conn.execute("PRAGMA page_count").fetchone()[0])
        only_kept = {"sessions": 1, "messages": 1, "answered": 0, "statuses": 1, "queue": 1}
        assert rows(tmp_path) == {**only_kept, "seen": 7}, "queued for the bot: kept"
        assert max(pages) <= pages[0] + 2, f"the file grew: {pages} pages"
        assert await store.forget("kept")
        assert set(rows(tmp_path, "kept").values()) == {0}
    finally:
        await store.close()


async def test_idle_sessions_in_the_file_are_deleted_at_start(tmp_path: Path) -> None:
    store = await opened(tmp_path)
    await store.append("old", seed_items("old"))
    await store.append("new", seed_items("new"))
    await store.close()
    with sqlite3.connect(tmp_path / sqlite_file.DB_NAME) as conn:
        for table, column in (("sessions", "touched"), ("messages", "at")):
            conn.execute(f"UPDATE {table} SET {column} = {column} - 7200 WHERE call_id = 'old'")
    store = await opened(tmp_path)
    try:
        assert "old" not in store._sessions and "new" in store._sessions
        gone = dict.fromkeys(sqlite_file.TABLES, 0)
        assert rows(tmp_path, "old") == {**gone, "seen": 7}, "its keys outlive it"
    finally:
        await store.close()


async def test_a_failed_write_is_refused_and_memory_keeps_what_the_file_holds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = await opened(tmp_path)
    try:
        await store.append("w", [("k1", person("w", "one"))])
        before = state(store, "w")
        commit = sqlite_file.commit

        def disk_full(conn: sqlite3.Connection, ops: Any) -> None:
            raise sqlite3.OperationalError("database or disk is full")

        monkeypatch.setattr(sqlite_file, "commit", disk_full)
        results = await asyncio.gather(
            store.append("w", [("k2", person("w", "two"))]),
            store.append("w", [("k3", person("w", "three"))]),
            return_exceptions=True,
        )
        assert all(isinstance(r, StoreUnavailable) for r in results), results
        monkeypatch.setattr(sqlite_file, "commit", commit)
        assert (await store.replay("w", None, None)).last_seq == 1
        assert state(store, "w") == before
        assert (await store.append("w", [("k2", person("w", "two"))])).seqs == [2]
        assert await store.ping()
    finally:
        await store.close()


# -- real processes -------------------------------------------------------------------


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT)) as session:
        yield session


def one_text(call_id: str, i: int) -> bytes:
    return orjson.dumps(samples.callback(call_id, samples.text_message(f"t{i}", f"m{i}", i)))


async def test_acknowledged_callbacks_survive_sigkill(http: aiohttp.ClientSession) -> None:
    bridge = Bridge(free_port()).start()  # default settings: the SQLite store
    try:
        url = f"{bridge.url}/webhooks/airudder"

        async def post(i: int) -> int:
            async with http.post(url, data=one_text("k", i)) as resp:
                return resp.status

        assert await asyncio.gather(*(post(i) for i in range(1, 41))) == [200] * 40
        ws = await http.ws_connect(f"{bridge.url}/ws/k")
        before, ready = await until_ready(ws)
        await ws.close()
        bridge.kill()
        bridge.start()
        ws = await http.ws_connect(f"{bridge.url}/ws/k")
        after, again = await until_ready(ws)
        assert [m["seq"] for m in after] == list(range(1, 41)) and after == before
        assert again["epoch"] == ready["epoch"] and again["last_seq"] == 40
        assert await post(7) == 200  # acknowledged before the crash: not shown twice
        await nothing_more(ws)
        ws = await http.ws_connect(f"{bridge.url}/ws/k?after=40&epoch={ready['epoch']}")
        replayed, resumed = await until_ready(ws)
        assert replayed == [] and resumed["recovered"] is True and resumed["last_seq"] == 40
        await nothing_more(ws)
    finally:
        bridge.stop()


def test_a_second_process_on_one_data_directory_refuses_in_one_line() -> None:
    first = Bridge(free_port()).start()
    try:
        command = [sys.executable, "-m", "bridge", "serve", "--port", str(free_port())]
        second = subprocess.run(
            command, cwd=ROOT, env=first.env, capture_output=True, timeout=TIMEOUT, check=False
        )
        assert second.returncode == 2
        lines = second.stderr.decode().splitlines()
        assert len(lines) == 1 and lines[0].startswith("airudder-bridge: "), lines
        assert first.env["BRIDGE_DATA_DIR"] in lines[0]
    finally:
        first.stop()
