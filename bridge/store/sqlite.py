"""The durable default: every session in memory (the memory store's structures, so reads
cost what they cost there and never touch the disk) and every change in a SQLite file in
the data directory (see :mod:`.sqlite_file`), loaded back at start: memory == disk.

Each mutating call changes memory (no await in between, so it is atomic), records the
rows that change and waits for the group commit holding them (:mod:`.sqlite_writer`): a
callback's HTTP 200 or a person's ``ack`` goes out only once its rows are in the file.

Durability: WAL with ``synchronous=NORMAL``. A commit is in the WAL file (the OS's page
cache) before the call returns, so killing the process (SIGKILL, OOM, a crash) loses
nothing acknowledged. The WAL is fsynced at checkpoints, not at each commit: a power loss
or an OS crash can lose the commits since the last checkpoint (at most ~1000 pages, usually
well under a second of traffic), never corrupts the file. ``synchronous="FULL"`` (an fsync
per commit) closes that window at the cost of a disk flush per group.

A failed write (disk full, I/O error): the calls waiting for it, and those recorded after
it (they built on it), get ``StoreUnavailable`` (503: the vendor retries), and the sessions
they touched are read back from the file, which holds the last commit, while every call
waits: memory never claims what the disk does not hold. If even that read fails, the store
stays unavailable (``ping`` is False) until the process restarts.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Sequence

from bridge.config import Settings
from bridge.frames import DeliveryStatus
from bridge.store import Appended, Entry, Item, Outgoing, sqlite_file
from bridge.store.memory import _Session
from bridge.store.sqlite_file import (
    ANSWER,
    ENVELOPE,
    FAIL,
    MESSAGE,
    QUEUE,
    SEEN,
    SESSION,
    STATUS,
    TOUCH,
    UNMARK,
    UNQUEUE,
    UNSEE,
    UNSEE_ALL,
    UNSHOW,
    VACUUM,
    Op,
)
from bridge.store.sqlite_reads import GatedReads
from bridge.store.sqlite_writer import Writer
from bridge.vendor.airudder import Envelope
from bridge.widget import ReplyTo

log = logging.getLogger(__name__)
INF = float("inf")


class SqliteStore(GatedReads):
    def __init__(self, settings: Settings, synchronous: str = "NORMAL") -> None:
        super().__init__(settings)
        self.directory = settings.data_path()
        self.synchronous = synchronous
        self._writer = Writer(self._failed)
        self._record = self._writer.record
        self._durable = self._writer.durable
        self._stored: set[str] = set()  # call_ids with a sessions row (watch() makes none)

    # -- life cycle ------------------------------------------------------------------------

    async def start(self) -> None:
        sessions, records = sqlite_file.build(
            await self._writer.open(self.directory, self.synchronous)
        )
        self._sessions.update(sessions)
        self._seen.load(records, time.time())
        self._tidy(list(self._sessions))
        await self._durable()
        await super().start()

    def _tidy(self, call_ids: Iterable[str]) -> None:
        """Loaded sessions as the settings want them now: expired ones go, the rest are
        trimmed to the history limit, and no more than max_sessions stay."""
        now = time.monotonic()
        for call_id in call_ids:
            session = self._sessions[call_id]
            if not session.busy() and now - session.touched > self.session_ttl:
                del self._sessions[call_id]
                self._dropped(call_id)
                continue
            first = session.first_seq()
            session.trim(self.history_limit, self.history_bytes)
            if session.first_seq() > first:
                self._record(call_id, *self._trim(call_id, 0, session.first_seq(), 0, 0))
        while len(self._sessions) > self.max_sessions:
            count = len(self._sessions)
            self._evict_one()
            if len(self._sessions) == count:
                break

    async def close(self) -> None:
        await super().close()
        await self._writer.close()

    # -- after a failed write --------------------------------------------------------------

    def _failed(self, call_ids: set[str], problem: BaseException) -> None:
        log.error("the store could not write (%s): those calls were answered 503", problem)
        self._gate = asyncio.create_task(self._reload(sorted(call_ids)), name="store reload")

    async def _reload(self, call_ids: list[str]) -> None:
        """Make memory what the file holds for ``call_ids`` again; calls wait meanwhile."""
        try:
            stored, records = sqlite_file.build(await self._writer.read(call_ids))
        except Exception as exc:
            self._broken = f"the session store cannot be read: {exc}"
            log.error("%s: unavailable until restarted", self._broken)
            return
        finally:
            self._gate = None
        for call_id in call_ids:
            self._seen.forget(call_id)
        self._seen.load(records, time.time())
        for call_id in call_ids:
            self._stored.discard(call_id)
            if call_id in stored:
                self._stored.add(call_id)
            now = self._sessions.pop(call_id, None)
            # Never stored: start over (a new epoch), keeping the sockets' count.
            fresh = _Session(base=self._seen.newest(call_id)) if now and now.watchers else None
            session = stored.get(call_id) or fresh
            if session is not None:
                session.watchers = now.watchers if now else 0
                self._sessions[call_id] = session

    # -- rows ------------------------------------------------------------------------------

    def _row(self, call_id: str, session: _Session) -> Op:
        """The session's row: written whole once, then only its idle clock."""
        if call_id in self._stored:
            return TOUCH, (time.time(), call_id)
        self._stored.add(call_id)
        envelope = session.envelope.model_dump_json().encode() if session.envelope else None
        return SESSION, (call_id, session.epoch, time.time(), envelope)

    @staticmethod
    def _trim(call_id: str, shown: int, first: int, answered: float, status: float) -> list[Op]:
        """The history now starts at ``first`` (it started at ``shown``); the lowest
        answered and status seqs were those."""
        ops: list[Op] = [(UNSHOW, (call_id, shown, first))]
        for table, lowest in (("answered", answered), ("statuses", status)):
            if lowest < first:
                ops.append((UNMARK[table], (call_id, first)))
        return ops

    def _unseen(self, call_id: str, below: int | None) -> None:
        if below is None:
            self._record(call_id, (UNSEE_ALL, (call_id,)))
        else:
            self._record(call_id, (UNSEE, (call_id, below)))

    def _dropped(self, call_id: str) -> None:
        self._stored.discard(call_id)
        self._record(call_id, *sqlite_file.delete([call_id]))

    def sweep(self, now: float | None = None) -> int:
        swept = super().sweep(now)
        if swept:
            self._record(None, VACUUM)
        return swept

    # -- changes: memory first (no await in between), then its rows, then the commit ------

    async def append(
        self,
        call_id: str,
        items: Sequence[Item],
        *,
        envelope: Envelope | None = None,
        answer: ReplyTo | None = None,
        outgoing: bytes | None = None,
    ) -> Appended:
        await self._usable()
        before = self._sessions.get(call_id)
        if before is not None:
            first, had = before.first_seq(), before.envelope
            lowest = (INF, INF)
            if (  # it may trim them
                len(before.history) + len(items) > self.history_limit
                or before.nbytes + len(items) * self.max_message_bytes > self.history_bytes
            ):
                lowest = (min(before.answered, default=INF), min(before.statuses, default=INF))
        appended = await super().append(
            call_id, items, envelope=envelope, answer=answer, outgoing=outgoing
        )
        session = self._sessions[call_id]
        ops: list[Op] = []
        if call_id not in self._stored:
            ops.append(self._row(call_id, session))
        elif envelope is not None and envelope != had:  # every callback has one: mostly equal
            ops.append((ENVELOPE, (envelope.model_dump_json().encode(), call_id)))
        if len(appended.frames):
            ops += self._new_rows(call_id, session, items, appended, answer)
            if before is not None and session.first_seq() > first:
                ops += self._trim(call_id, first, session.first_seq(), *lowest)
        if ops:
            self._record(call_id, *ops)
        await self._durable()  # a retry's 200 waits for the original's commit too
        return appended

    def _new_rows(
        self,
        call_id: str,
        session: _Session,
        items: Sequence[Item],
        appended: Appended,
        answer: ReplyTo | None,
    ) -> list[Op]:
        new = {seq: frame for seq, frame in appended.frames if seq is not None}
        now = time.time()
        messages, seen = [], []
        for (key, draft), seq in zip(items, appended.seqs, strict=True):
            frame = new.pop(seq, None)  # an item twice in one append is stored once
            if frame is not None:
                messages.append((call_id, seq, key, now, draft.id, frame))
                seen.append((call_id, session.base + seq, key, now))
        ops: list[Op] = [(MESSAGE, messages), (SEEN, seen)]
        if session.first_seq() > messages[0][1]:  # more new than the history holds
            ops.append((UNSHOW, (call_id, messages[0][1], session.first_seq())))
        if answer is not None and session.answered.get(answer.seq) == answer.option_id:
            ops.append((ANSWER, (call_id, answer.seq, answer.option_id)))
        if len(appended.frames) > len(messages):  # statuses: queued for the bot
            stored = {row[1] for row in messages}
            for queued in session.queue:
                if queued.seq in stored:
                    ops.append((QUEUE, (call_id, queued.seq, queued.body, queued.queued_at)))
                    ops.append((STATUS, (call_id, queued.seq, session.statuses[queued.seq])))
        return ops

    async def set_status(
        self, call_id: str, seq: int, status: DeliveryStatus, detail: str | None = None
    ) -> tuple[str, bytes]:
        await self._usable()
        epoch, frame = await super().set_status(call_id, seq, status, detail)
        self._record(
            call_id, self._row(call_id, self._sessions[call_id]), (STATUS, (call_id, seq, frame))
        )
        await self._durable()
        return epoch, frame

    async def settle(
        self, call_id: str, job: Outgoing, sent: bool, detail: str | None = None
    ) -> tuple[str, list[Entry]]:
        await self._usable()
        epoch, entries = await super().settle(call_id, job, sent, detail)
        if entries:
            seq = job.seq
            change = (UNQUEUE, (call_id, seq)) if sent else (FAIL, (1, call_id, seq))
            self._record(call_id, change, *self._statuses(call_id, entries))
        await self._durable()
        return epoch, entries

    async def retry(self, call_id: str, seq: int) -> tuple[str, list[Entry]]:
        await self._usable()
        epoch, entries = await super().retry(call_id, seq)
        head = self._sessions[call_id].queue[0].seq
        self._record(call_id, (FAIL, (0, call_id, head)), *self._statuses(call_id, entries))
        await self._durable()
        return epoch, entries

    def _statuses(self, call_id: str, entries: list[Entry]) -> list[Op]:
        session = self._sessions[call_id]
        frames = {frame: seq for seq, frame in session.statuses.items()}
        rows = [(call_id, frames[frame], frame) for _, frame in entries]
        return [self._row(call_id, session), (STATUS, rows)]

    async def forget(self, call_id: str) -> bool:
        await self._usable()
        found = await super().forget(call_id)
        self._record(call_id, (UNSEE_ALL, (call_id,)))
        await self._durable()
        return found

    def unwatch(self, call_id: str) -> None:
        super().unwatch(call_id)
        if call_id in self._sessions:  # the idle time starts now: after a restart too
            self._record(call_id, (TOUCH, (time.time(), call_id)))
