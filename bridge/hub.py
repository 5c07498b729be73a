"""Sessions: per-call_id history, gapless seq, answered choices and live fan-out.

:class:`Hub` is the contract; :class:`MemoryHub` keeps everything in this process and
``bridge.redis_hub.RedisHub`` keeps it in Redis for several processes. Fan-out only ever
*enqueues* onto a socket's bounded :class:`Outbox`; it never awaits a browser.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from bridge.airudder import Envelope
from bridge.frames import DeliveryStatus, MessageFrame, ReadyFrame, StatusFrame
from bridge.widget import ReplyTo, WidgetMessage, frame_parts


class Refused(Exception):
    """A request the session turns down: ``code`` is machine-readable, ``detail`` human."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


class StoreUnavailable(Exception):
    """The store (Redis) cannot be reached: nothing was stored."""


Frame = tuple[int | None, bytes]  # (seq of a message frame, or None for status frames; bytes)


@dataclass(frozen=True)
class Replay:
    frames: list[Frame]
    last_seq: int
    epoch: str
    recovered: bool

    def ready_frame(self, max_text_length: int) -> bytes:
        return ReadyFrame(
            last_seq=self.last_seq,
            epoch=self.epoch,
            recovered=self.recovered,
            max_text_length=max_text_length,
        ).encode()


StopReason = Literal["overflow", "reset"]


class Outbox:
    """One socket's bounded queue of ``(seq, frame, enqueued_at)``.

    ``on_stop(reason)`` runs once when the socket must close so its browser re-syncs:
    ``"overflow"`` (the queue is full) or ``"reset"`` (the store lost the history the
    socket was showing, e.g. Redis restarted without persistence).

    Every open socket holds one, mostly empty: a list and one waiter future cost a few
    hundred bytes where an ``asyncio.Queue`` (four deques) costs over 3 KB.
    """

    def __init__(self, maxsize: int, on_stop: Callable[[StopReason], None]) -> None:
        self.maxsize = maxsize
        self.stopped = False
        self._items: list[tuple[int | None, bytes, float]] = []
        self._waiter: asyncio.Future[None] | None = None
        self._on_stop = on_stop

    def push(self, seq: int | None, frame: bytes) -> None:
        if self.stopped:
            return
        if len(self._items) >= self.maxsize:
            self.stop("overflow")
            return
        self._items.append((seq, frame, time.perf_counter()))
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def get(self) -> tuple[int | None, bytes, float]:
        """The oldest item, waiting for one if there is none."""
        while not self._items:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._items.pop(0)

    def empty(self) -> bool:
        return not self._items

    def stop(self, reason: StopReason) -> None:
        if not self.stopped:
            self.stopped = True
            self._on_stop(reason)


class Hub(ABC):
    """What the web layer needs from a session store. Every method is safe to call
    concurrently; ``append`` is atomic: all of its messages are stored, or none."""

    @abstractmethod
    async def append(
        self,
        call_id: str,
        items: Sequence[tuple[str, WidgetMessage]],
        *,
        envelope: Envelope | None = None,
        answer: ReplyTo | None = None,
    ) -> list[int]:
        """Store ``(dedup_key, message)`` items in order and fan them out.

        Returns each item's seq; an item whose key was stored before keeps its old seq and
        is neither stored nor sent again. With ``answer``, the choices message it names is
        marked answered in the same step, or :class:`Refused` is raised and nothing stored.
        """

    @abstractmethod
    async def replay(self, call_id: str, after: int | None, epoch: str | None) -> Replay:
        """The frames a socket joining now must get first (see README, "Recovery")."""

    @abstractmethod
    async def subscribe(self, call_id: str, outbox: Outbox) -> None: ...

    @abstractmethod
    async def unsubscribe(self, call_id: str, outbox: Outbox) -> None: ...

    @abstractmethod
    async def find(self, call_id: str, ref: int | str) -> WidgetMessage | None:
        """A kept message by seq or by id."""

    @abstractmethod
    async def set_status(
        self, call_id: str, seq: int, status: DeliveryStatus, detail: str | None = None
    ) -> None:
        """Record and fan out the upstream delivery state of a person's message."""

    @abstractmethod
    async def envelope(self, call_id: str) -> Envelope | None: ...

    async def ping(self) -> bool:
        """True when the store is reachable."""
        return True

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources (connections, tasks)."""


@dataclass(slots=True)  # one per call_id, most of them idle: no __dict__ each
class _Session:
    epoch: str = field(default_factory=lambda: secrets.token_hex(8))
    last_seq: int = 0
    # (seq, id, message frame): only the encoded frame is kept, so thousands of kept
    # messages cost little memory and nothing to the garbage collector; find() decodes.
    # A list, not a deque: an empty deque allocates a 64-slot block (~0.7 KB).
    history: list[tuple[int, str, bytes]] = field(default_factory=list)
    keys: OrderedDict[str, int] = field(default_factory=OrderedDict)
    answered: dict[int, str] = field(default_factory=dict)
    statuses: dict[int, bytes] = field(default_factory=dict)
    envelope: Envelope | None = None
    outboxes: set[Outbox] = field(default_factory=set)
    touched: float = field(default_factory=time.monotonic)

    def first_seq(self) -> int:
        return self.history[0][0] if self.history else self.last_seq + 1

    def trim(self, limit: int) -> None:
        if len(self.history) > limit:
            del self.history[: len(self.history) - limit]
        oldest = self.first_seq()
        for table in (self.answered, self.statuses):
            for seq in [s for s in table if s < oldest]:
                del table[seq]
        # Retries come soon after the original: remembering 2x the history is plenty.
        while len(self.keys) > 2 * limit:
            self.keys.popitem(last=False)


class MemoryHub(Hub):
    """All sessions in this process: the default, and the reference for the contract."""

    def __init__(
        self, history_limit: int, session_ttl: float, max_sessions: int | None = None
    ) -> None:
        self.history_limit = history_limit
        self.session_ttl = session_ttl
        self.max_sessions = max_sessions
        # Least recently touched first: eviction and the sweep read from the front.
        self._sessions: OrderedDict[str, _Session] = OrderedDict()

    def _session(self, call_id: str) -> _Session:
        session = self._sessions.get(call_id)
        if session is None:
            if self.max_sessions is not None and len(self._sessions) >= self.max_sessions:
                self._evict_one()
            session = self._sessions[call_id] = _Session()
        else:
            self._sessions.move_to_end(call_id)
        session.touched = time.monotonic()
        return session

    def _evict_one(self) -> None:
        """Full: forget the longest-idle session nobody watches. Settings keep fewer sockets
        than sessions, so there is one; if not, the store grows past the bound rather than
        refuse the vendor's callback."""
        for call_id, session in self._sessions.items():
            if not session.outboxes:
                del self._sessions[call_id]
                return

    @property
    def session_count(self) -> int:
        return len(self._sessions)

    async def append(
        self,
        call_id: str,
        items: Sequence[tuple[str, WidgetMessage]],
        *,
        envelope: Envelope | None = None,
        answer: ReplyTo | None = None,
    ) -> list[int]:
        session = self._session(call_id)
        fresh = [key for key, _ in items if key not in session.keys]
        if answer is not None and fresh and answer.seq in session.answered:
            raise Refused("already_answered", f"message {answer.seq} was answered already")
        if envelope is not None:
            session.envelope = envelope
        if answer is not None and fresh:
            session.answered[answer.seq] = answer.option_id
        seqs = []
        for key, draft in items:
            if key in session.keys:
                seqs.append(session.keys[key])
                continue
            seq = session.last_seq = session.last_seq + 1
            head, tail = frame_parts(draft)
            frame = head + b"%d" % seq + tail
            session.history.append((seq, draft.id, frame))
            session.keys[key] = seq
            seqs.append(seq)
            for outbox in session.outboxes:
                outbox.push(seq, frame)
        session.trim(self.history_limit)
        return seqs

    async def replay(self, call_id: str, after: int | None, epoch: str | None) -> Replay:
        session = self._session(call_id)
        recovered = (
            after is not None
            and (epoch is None or epoch == session.epoch)
            and session.first_seq() <= after + 1
            and after <= session.last_seq
        )
        start = after if recovered and after is not None else 0
        frames: list[Frame] = [(seq, frame) for seq, _, frame in session.history if seq > start]
        frames += [(None, f) for seq, f in sorted(session.statuses.items()) if seq > start]
        return Replay(frames, session.last_seq, session.epoch, recovered)

    async def subscribe(self, call_id: str, outbox: Outbox) -> None:
        self._session(call_id).outboxes.add(outbox)

    async def unsubscribe(self, call_id: str, outbox: Outbox) -> None:
        session = self._sessions.get(call_id)
        if session is not None:
            session.outboxes.discard(outbox)
            session.touched = time.monotonic()
            self._sessions.move_to_end(call_id)

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
    ) -> None:
        session = self._session(call_id)
        frame = StatusFrame(seq=seq, status=status, detail=detail).encode()
        session.statuses[seq] = frame
        for outbox in session.outboxes:
            outbox.push(None, frame)

    async def envelope(self, call_id: str) -> Envelope | None:
        session = self._sessions.get(call_id)
        return session.envelope if session else None

    def sweep(self, now: float | None = None) -> int:
        """Forget sessions nobody watches that have been idle longer than the TTL."""
        now = time.monotonic() if now is None else now
        idle = [
            call_id
            for call_id, s in self._sessions.items()
            if not s.outboxes and now - s.touched > self.session_ttl
        ]
        for call_id in idle:
            del self._sessions[call_id]
        return len(idle)
