"""All sessions in this process: for tests and ephemeral use, and the reference for the
contract. Its sweep (idle expiry) is its own background task."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field

from bridge.config import Settings
from bridge.frames import DeliveryStatus, MessageFrame, StatusFrame
from bridge.refusals import Refusal
from bridge.store import Appended, Entry, Item, Outgoing, Replay, Store, Waiting
from bridge.store.seen import Seen, encoded
from bridge.vendor.airudder import Envelope
from bridge.widget import ReplyTo, WidgetMessage


@dataclass(slots=True)
class _Queued:
    """A person's message in the conversation's queue for the bot."""

    seq: int
    body: bytes
    queued_at: float
    failed: bool = False


@dataclass(slots=True)  # one per call_id, most of them idle: no __dict__ each
class _Session:
    epoch: str = field(default_factory=lambda: secrets.token_hex(8))
    last_seq: int = 0
    # (seq, id, message frame): only the encoded frame is kept, so thousands of kept
    # messages cost little memory and nothing to the garbage collector; find() decodes.
    # A list, not a deque: an empty deque allocates a 64-slot block (~0.7 KB).
    history: list[tuple[int, str, bytes]] = field(default_factory=list)
    nbytes: int = 0  # of the history's frames
    base: int = 0  # a message's de-duplication key has ordinal base + seq (see .seen)
    answered: dict[int, str] = field(default_factory=dict)
    statuses: dict[int, bytes] = field(default_factory=dict)
    envelope: Envelope | None = None
    queue: list[_Queued] = field(default_factory=list)
    watchers: int = 0
    touched: float = field(default_factory=time.monotonic)

    def busy(self) -> bool:
        """Watched, or with messages on their way to the bot: not to be forgotten."""
        return bool(self.watchers or (self.queue and not self.queue[0].failed))

    def status(self, seq: int, status: DeliveryStatus, detail: str | None = None) -> Entry:
        frame = self.statuses[seq] = StatusFrame(seq=seq, status=status, detail=detail).encode()
        return None, frame

    def first_seq(self) -> int:
        return self.history[0][0] if self.history else self.last_seq + 1

    def trim(self, limit: int, budget: int) -> None:
        """At most ``limit`` messages and ``budget`` bytes of frames (the newest always)."""
        if len(self.history) <= limit and self.nbytes <= budget:
            return  # nothing falls out, so no answered or status entry falls out either
        drop = max(0, len(self.history) - limit)
        nbytes = self.nbytes - sum(len(frame) for _, _, frame in self.history[:drop])
        while nbytes > budget and drop < len(self.history) - 1:
            nbytes -= len(self.history[drop][2])
            drop += 1
        if drop:
            del self.history[:drop]
            self.nbytes = nbytes
        oldest = self.first_seq()
        queued = {q.seq for q in self.queue}
        for table in (self.answered, self.statuses):
            for seq in [s for s in table if s < oldest and s not in queued]:
                del table[seq]


class MemoryStore(Store):
    def __init__(self, settings: Settings) -> None:
        super().__init__()
        self.history_limit = settings.history_limit
        self.history_bytes = settings.history_bytes
        self.max_message_bytes = settings.max_message_bytes
        self._seen = Seen(
            settings.dedup_retention, settings.dedup_per_call, settings.dedup_total, self._unseen
        )
        self.session_ttl = settings.session_ttl
        self.sweep_interval = settings.sweep_interval
        self.max_sessions = settings.max_sessions
        # Least recently touched first: eviction and the sweep read from the front.
        self._sessions: OrderedDict[str, _Session] = OrderedDict()
        self._sweeper: asyncio.Task[None] | None = None

    def _session(self, call_id: str) -> _Session:
        session = self._sessions.get(call_id)
        if session is None:
            if len(self._sessions) >= self.max_sessions:
                self._evict_one()
            session = self._sessions[call_id] = _Session(base=self._seen.newest(call_id))
        else:
            self._sessions.move_to_end(call_id)
        session.touched = time.monotonic()
        return session

    def _evict_one(self) -> None:
        """Full: forget the longest-idle session nobody watches. Settings keep fewer sockets
        than sessions, so there is one; if not, the store grows past the bound rather than
        refuse the vendor's callback."""
        for call_id, session in self._sessions.items():
            if not session.busy():
                del self._sessions[call_id]
                self._dropped(call_id)
                return

    def _dropped(self, call_id: str) -> None:
        """Hook: ``call_id`` left memory (evicted, expired or forgotten). A store that keeps
        sessions elsewhere too (SQLite) deletes them there."""

    def _unseen(self, call_id: str, below: int | None) -> None:
        """Hook: ``call_id``'s de-duplication keys below ordinal ``below`` (None: all) are
        forgotten (bounds, retention)."""

    def session_count(self) -> int:
        return len(self._sessions)

    async def append(
        self,
        call_id: str,
        items: Sequence[Item],
        *,
        envelope: Envelope | None = None,
        answer: ReplyTo | None = None,
        outgoing: bytes | None = None,
    ) -> Appended:
        parts = encoded(items, self.max_message_bytes)  # or refused: nothing changed
        session = self._session(call_id)
        keys = self._seen.keys(call_id)
        fresh = [key for key, _ in items if key not in keys]
        if answer is not None and fresh and answer.seq in session.answered:
            raise Refusal("already_answered", f"message {answer.seq} was answered already")
        if envelope is not None:
            session.envelope = envelope
        if answer is not None and fresh:
            session.answered[answer.seq] = answer.option_id
        seqs: list[int] = []
        frames: list[Entry] = []
        new: dict[str, int] = {}
        base = session.base
        for (key, _), draft in zip(items, parts, strict=True):
            ordinal = keys.get(key) or new.get(key)
            if ordinal is not None:  # acknowledged before; 0: in an earlier life
                seqs.append(ordinal - base if ordinal > base else 0)
                continue
            seq = session.last_seq = session.last_seq + 1
            frame = draft.frame(seq)
            session.history.append((seq, draft.id, frame))
            session.nbytes += len(frame)
            new[key] = base + seq
            seqs.append(seq)
            frames.append((seq, frame))
            if outgoing is not None:
                session.queue.append(_Queued(seq, outgoing, time.time()))
                frames.append(session.status(seq, "sending"))
        if new:
            self._seen.add(call_id, new, time.time())
        session.trim(self.history_limit, self.history_bytes)
        return Appended(session.epoch, seqs, frames)

    async def replay(self, call_id: str, after: int | None, epoch: str | None) -> Replay:
        session = self._session(call_id)
        recovered = (
            after is not None
            and (epoch is None or epoch == session.epoch)
            and session.first_seq() <= after + 1
            and after <= session.last_seq
        )
        start = after if recovered and after is not None else 0
        frames: list[Entry] = [(seq, frame) for seq, _, frame in session.history if seq > start]
        frames += [(None, f) for _, f in sorted(session.statuses.items())]
        return Replay(frames, session.last_seq, session.epoch, recovered)

    async def latest(self, call_id: str) -> tuple[str, Entry] | None:
        session = self._sessions.get(call_id)
        if session is None or not session.history:
            return None
        seq, _, frame = session.history[-1]
        return session.epoch, (seq, frame)

    async def find(self, call_id: str, ref: int | str) -> WidgetMessage | None:
        session = self._sessions.get(call_id)
        if session is None:
            return None
        for seq, message_id, frame in session.history:
            if seq == ref or message_id == ref:
                return MessageFrame.model_validate_json(frame).message
        return None

    async def set_status(
        self, call_id: str, seq: int, status: DeliveryStatus, detail: str | None = None
    ) -> tuple[str, bytes]:
        session = self._session(call_id)
        _, frame = session.status(seq, status, detail)
        return session.epoch, frame

    async def envelope(self, call_id: str) -> Envelope | None:
        session = self._sessions.get(call_id)
        return session.envelope if session else None

    async def next_outgoing(self, call_id: str) -> Outgoing | None:
        session = self._sessions.get(call_id)
        if session is None or not session.queue or session.queue[0].failed:
            return None
        head = session.queue[0]
        return Outgoing(head.seq, head.body, head.queued_at, session.epoch)

    async def settle(
        self, call_id: str, job: Outgoing, sent: bool, detail: str | None = None
    ) -> tuple[str, list[Entry]]:
        session = self._session(call_id)
        seq = job.seq
        queued = next((q for q in session.queue if q.seq == seq), None)
        if queued is None or job.epoch != session.epoch:
            return session.epoch, []
        if sent:
            session.queue.remove(queued)
            return session.epoch, [session.status(seq, "sent")]
        queued.failed = True
        held = f"held until message {seq} is sent"
        return session.epoch, [
            session.status(q.seq, "failed", detail if q is queued else held) for q in session.queue
        ]

    async def retry(self, call_id: str, seq: int) -> tuple[str, list[Entry]]:
        session = self._sessions.get(call_id)
        queue = session.queue if session else []
        if session is None or not (queue and queue[0].failed and any(q.seq == seq for q in queue)):
            raise Refusal("not_failed", f"message {seq} is not waiting for a retry")
        queue[0].failed = False
        return session.epoch, [session.status(q.seq, "sending") for q in queue]

    async def waiting(self) -> list[Waiting]:
        return [
            Waiting(call_id, len(s.queue), s.queue[0].queued_at, not s.queue[0].failed)
            for call_id, s in self._sessions.items()
            if s.queue
        ]

    async def forget(self, call_id: str) -> bool:
        found = self._sessions.pop(call_id, None) is not None
        self._seen.forget(call_id)  # a privacy request: its identities go too
        self._dropped(call_id)
        return found

    def watch(self, call_id: str) -> None:
        self._session(call_id).watchers += 1

    def unwatch(self, call_id: str) -> None:
        session = self._sessions.get(call_id)
        if session is not None:
            session.watchers -= 1
            session.touched = time.monotonic()  # the idle time starts when the last one goes
            self._sessions.move_to_end(call_id)

    def sweep(self, now: float | None = None) -> int:
        """Forget sessions nobody watches that have been idle longer than the TTL."""
        now = time.monotonic() if now is None else now
        idle = [
            call_id
            for call_id, s in self._sessions.items()
            if not s.busy() and now - s.touched > self.session_ttl
        ]
        for call_id in idle:
            del self._sessions[call_id]
            self._dropped(call_id)
        self._seen.expire(time.time())  # de-duplication outlives the session, to a point
        return len(idle)

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self.sweep_interval)
            self.sweep()

    async def start(self) -> None:
        self._sweeper = asyncio.create_task(self._sweep_forever(), name="memory store sweep")

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
