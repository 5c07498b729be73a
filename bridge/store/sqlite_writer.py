"""The SQLite store's writer: one thread with its own connection, committing in groups.

Callers record their row changes and await :meth:`Writer.durable`; everything recorded
while the previous commit ran (at least everything of one loop tick) goes into the next
transaction. A caller is released only once a commit holding its changes is done.

With ``synchronous=NORMAL`` (the default) a WAL commit is a write to the OS's page cache,
no fsync: cheaper on the event loop (~30 µs for a callback's rows) than the two thread
hand-offs it takes to run it on the thread (~110 µs when callbacks come one at a time).
So those commits run on the loop, with automatic checkpoints off, and the checkpoints
(which fsync) run on the thread, with a connection of their own, every ``CHECKPOINT_EVERY``
commits. With ``FULL`` (an fsync per commit) every commit runs on the thread."""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from bridge.refusals import StoreUnavailable
from bridge.store import sqlite_file
from bridge.store.sqlite_file import DB_NAME, Op, Rows

log = logging.getLogger(__name__)

# Told which conversations a failed commit (and what was recorded after it) changed.
T = TypeVar("T")
CHECKPOINT_EVERY = 256  # commits on the loop between checkpoints (a few pages each)
OnFailure = Callable[[set[str], BaseException], None]


class _Commit(asyncio.Future[None]):
    """One group commit's completion, awaited by every call in the group. A waiter's
    cancellation must not cancel it for the others: ``cancel`` refuses, so a cancelled
    waiter gets its CancelledError once the commit is done (cheaper than a shield each)."""

    def cancel(self, msg: object = None) -> bool:
        return False


class Writer:
    def __init__(self, on_failure: OnFailure) -> None:
        self.on_failure = on_failure
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite store")
        self._lock: int | None = None
        self._conn: sqlite3.Connection | None = None
        self._ops: list[Op] = []  # recorded, not yet handed to the thread
        self._ids: set[str] = set()  # the call_ids they change
        self._pending: _Commit | None = None  # done when _ops are committed
        self._inflight: _Commit | None = None  # the commit running now
        self._inflight_ids: set[str] = set()
        self._on_loop = False  # commits run on the event loop (synchronous=NORMAL)
        self._thread_jobs = 0  # reads and the like using the connection on the thread
        self._checkpointer: sqlite3.Connection | None = None
        self._checkpoint: asyncio.Future[None] | None = None
        self._commits = 0

    async def open(self, directory: Path, synchronous: str) -> Rows:
        """Lock the directory, open (create, migrate) the file: everything in it."""
        self._loop = asyncio.get_running_loop()
        self._lock = sqlite_file.lock_directory(directory)
        try:
            self._conn = await self._run(sqlite_file.connect, directory, synchronous)
            if synchronous.upper() in ("NORMAL", "OFF"):
                self._checkpointer = await self._run(_checkpointer, self._conn, directory)
                self._on_loop = True
            return await self.read(None)
        except BaseException:
            await self.close()
            raise

    async def read(self, call_ids: Sequence[str] | None) -> Rows:
        """The stored sessions (all, or those of ``call_ids``), after pending commits."""
        return await self._run(sqlite_file.read, self._conn, call_ids)

    async def _run(self, fn: Callable[..., T], *args: object) -> T:
        self._thread_jobs += 1
        try:
            return await self._loop.run_in_executor(self._thread, fn, *args)
        finally:
            self._thread_jobs -= 1

    def record(self, call_id: str | None, *ops: Op) -> None:
        self._ops.extend(ops)
        if call_id is not None:
            self._ids.add(call_id)
        if self._pending is None:
            self._pending = _Commit(loop=self._loop)
            if self._inflight is None:
                # Next tick: everything recorded until then shares the commit.
                self._loop.call_soon(self._flush)

    async def durable(self) -> None:
        """Return once everything recorded so far is committed (``StoreUnavailable`` if
        the commit failed)."""
        done = self._pending or self._inflight
        if done is not None:
            await done

    def _flush(self) -> None:
        if self._inflight is not None or self._pending is None:
            return
        self._inflight, self._inflight_ids = self._pending, self._ids
        ops, self._ops, self._ids, self._pending = self._ops, [], set(), None
        assert self._conn is not None, "recorded before open() or after close()"
        if self._on_loop and not self._thread_jobs:
            try:
                sqlite_file.commit(self._conn, ops)
            except Exception as exc:
                self._finish(exc)
            else:
                self._finish(None)
                self._commits += 1
                if self._commits >= CHECKPOINT_EVERY and self._checkpoint is None:
                    self._start_checkpoint()
            return
        work = self._loop.run_in_executor(self._thread, sqlite_file.commit, self._conn, ops)
        work.add_done_callback(self._written)

    def _start_checkpoint(self) -> None:
        self._commits = 0
        done = self._loop.run_in_executor(self._thread, _checkpoint, self._checkpointer)
        done.add_done_callback(self._checkpointed)
        self._checkpoint = done

    def _checkpointed(self, done: asyncio.Future[None]) -> None:
        self._checkpoint = None
        if not done.cancelled() and done.exception() is not None:
            log.warning("the store's checkpoint failed: %s", done.exception())

    def _written(self, work: asyncio.Future[None]) -> None:
        self._finish(work.exception())

    def _finish(self, problem: BaseException | None) -> None:
        done, ids = self._inflight, self._inflight_ids
        self._inflight, self._inflight_ids = None, set()
        assert done is not None
        if problem is None:
            done.set_result(None)
            self._flush()  # what was recorded meanwhile
            return
        # What was recorded since built on the failed commit: it fails with it.
        waiters = [done, *([self._pending] if self._pending else [])]
        ids |= self._ids
        self._ops, self._ids, self._pending = [], set(), None
        for waiter in waiters:
            waiter.set_exception(StoreUnavailable(f"the session store cannot write: {problem}"))
            waiter.exception()  # the waiting calls get it; nobody waiting is fine too
        self.on_failure(ids, problem)

    async def close(self) -> None:
        """Commit what is recorded, checkpoint, close the file and unlock the directory."""
        if self._conn is not None:
            while self._pending is not None or self._inflight is not None:
                try:
                    await self.durable()
                except StoreUnavailable:
                    break  # logged by on_failure; nothing more can be written
            if self._checkpoint is not None:
                await asyncio.wait([self._checkpoint])
            if self._checkpointer is not None:
                await self._run(self._checkpointer.close)
                self._checkpointer = None
            await self._run(sqlite_file.close, self._conn)
            self._conn = None
        self._thread.shutdown(wait=False)  # idle by now: nothing left to wait for
        if self._lock is not None:
            os.close(self._lock)  # releases the directory lock
            self._lock = None


def _checkpointer(conn: sqlite3.Connection, directory: Path) -> sqlite3.Connection:
    """Automatic checkpoints off on ``conn`` (they would fsync on the loop); a connection
    of its own for :func:`_checkpoint`, so a checkpoint never holds the writer's."""
    conn.execute("PRAGMA wal_autocheckpoint = 0")
    return sqlite3.connect(directory / DB_NAME, isolation_level=None, check_same_thread=False)


def _checkpoint(conn: sqlite3.Connection | None) -> None:
    """Copy the WAL into the database file (PASSIVE: never waits for the writer)."""
    assert conn is not None
    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
