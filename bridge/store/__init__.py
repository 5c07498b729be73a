"""The store: per-call_id history with a gapless seq, answered choices, delivery status and
de-duplication. One contract, one module per backend: :mod:`.memory` (this process only)
and :mod:`.redis` (shared by processes and machines). The store only keeps things; live
delivery to sockets is :mod:`bridge.live`'s job."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

from bridge.config import Settings
from bridge.frames import DeliveryStatus, ReadyFrame
from bridge.vendor.airudder import Envelope
from bridge.widget import Draft, ReplyTo, WidgetMessage

# One entry of a session as sockets get it: (seq of a message, or None for a status; the
# encoded frame). "Frame" alone always means the bytes sent on a socket.
Entry = tuple[int | None, bytes]
# (de-duplication key, message): a widget model with seq 0, or already encoded (a Draft).
Item = tuple[str, WidgetMessage | Draft]


@dataclass(frozen=True, slots=True)
class Appended:
    """What one append did: the seq of every item (an item stored before keeps its old
    seq, or 0 if it was stored in an earlier life of the session: its identity outlives the
    session, see :mod:`.seen`) and the frames it newly stored, for live delivery."""

    epoch: str
    seqs: list[int]
    frames: list[Entry]


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A person's message waiting for the bot: the exact body to POST (built when the
    message was acknowledged, so its id never changes) and when it was queued."""

    seq: int
    body: bytes
    queued_at: float  # Unix time
    epoch: str  # the session's life it belongs to: a seq means nothing without it


@dataclass(frozen=True, slots=True)
class Waiting:
    """A conversation with messages for the bot: ``ready`` when its first one may go now
    (not held behind one that gave up)."""

    call_id: str
    count: int
    oldest: float  # Unix time the oldest was queued
    ready: bool


@dataclass(frozen=True, slots=True)
class Replay:
    frames: list[Entry]
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


class Store(ABC):
    """Every method is safe to call concurrently. Writes are atomic: an ``append`` stores all
    of its items or none. A session *is* its epoch: when one is forgotten (idle expiry,
    eviction, a Redis restart without persistence) it starts over with seq 1 under a new
    epoch, so a browser holding the old one knows its history is gone."""

    # Seconds a write may take before the caller gives up (the vendor then retries), for a
    # store that waits on a network; None for one in this process, whose writes never wait
    # on anything a timeout could cut short (a timer per callback costs ~5% of its CPU).
    deadline: float | None = None

    def __init__(self) -> None:
        self._claims: dict[str, str] = {}  # call_id -> owner, for single-process stores

    @abstractmethod
    async def append(
        self,
        call_id: str,
        items: Sequence[Item],
        *,
        envelope: Envelope | None = None,
        answer: ReplyTo | None = None,
        outgoing: bytes | None = None,
    ) -> Appended:
        """Store ``items`` in order. With ``answer``, the choices message it names is marked
        answered in the same step, or ``Refusal("already_answered")`` and nothing stored.

        With ``outgoing`` (a person's message: one item), the item, if new, joins the
        conversation's queue for the bot in the same step, with its status ``sending``
        among the entries to fan out: acknowledged means queued (a transactional outbox)."""

    @abstractmethod
    async def replay(self, call_id: str, after: int | None, epoch: str | None) -> Replay:
        """The frames a socket joining now must get first (see docs/protocol.md, "Recovery")."""

    @abstractmethod
    async def latest(self, call_id: str) -> tuple[str, Entry] | None:
        """The epoch and the last stored message frame, if any."""

    @abstractmethod
    async def find(self, call_id: str, ref: int | str) -> WidgetMessage | None:
        """A kept message by seq or by id."""

    @abstractmethod
    async def set_status(
        self, call_id: str, seq: int, status: DeliveryStatus, detail: str | None = None
    ) -> tuple[str, bytes]:
        """Record the upstream delivery state of a person's message: (epoch, status frame)."""

    @abstractmethod
    async def envelope(self, call_id: str) -> Envelope | None: ...

    # -- the queue for the bot, in order per conversation -------------------------------

    @abstractmethod
    async def next_outgoing(self, call_id: str) -> Outgoing | None:
        """The first queued message, unless it gave up (then the queue is held)."""

    @abstractmethod
    async def settle(
        self, call_id: str, job: Outgoing, sent: bool, detail: str | None = None
    ) -> tuple[str, list[Entry]]:
        """The bot took ``job`` (it leaves the queue) or it gave up (it stays, failed, and
        the ones behind it are held, shown as failed too). Returns the status entries;
        none when the job is no longer queued (forgotten, or of an earlier epoch: the same
        seq in a newer life of the conversation is another message)."""

    @abstractmethod
    async def retry(self, call_id: str, seq: int) -> tuple[str, list[Entry]]:
        """Send a given-up queue again, in order: ``seq`` must be one of its messages, or
        ``Refusal("not_failed")``. Returns the ``sending`` status entries."""

    @abstractmethod
    async def waiting(self) -> list[Waiting]:
        """Every conversation with a queue (after a restart: the work to resume)."""

    async def claim(self, call_id: str, owner: str, ttl: float) -> bool:
        """Become the one process forwarding ``call_id`` for ``ttl`` seconds (renewed by
        claiming again). A store only one process opens grants it to one task at a time."""
        holder = self._claims.get(call_id)
        if holder is not None and holder != owner:
            return False
        self._claims[call_id] = owner
        return True

    async def release(self, call_id: str, owner: str) -> None:
        if self._claims.get(call_id) == owner:
            del self._claims[call_id]

    @abstractmethod
    async def forget(self, call_id: str) -> bool:
        """Delete everything of ``call_id`` (a privacy request): True if there was any."""

    @abstractmethod
    def watch(self, call_id: str) -> None:
        """A socket of this process shows ``call_id``: keep the session while it does."""

    @abstractmethod
    def unwatch(self, call_id: str) -> None: ...

    def session_count(self) -> int | None:
        """Sessions kept, where the backend can tell cheaply."""
        return None

    async def ping(self) -> bool:
        """True when the store is reachable."""
        return True

    async def start(self) -> None:  # noqa: B027 - optional hook
        """Start the backend's own background tasks (expiry, refresh)."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Stop them and release connections."""


async def open_store(settings: Settings) -> Store:
    """The store the settings ask for, started (see ``Settings.store_kind``)."""
    store: Store
    kind = settings.store_kind()
    if kind == "redis":
        from bridge.store.redis import RedisStore  # only deployments on Redis need the client

        store = RedisStore(settings)
    elif kind == "sqlite":
        from bridge.store.sqlite import SqliteStore

        store = SqliteStore(settings)
    else:
        from bridge.store.memory import MemoryStore

        store = MemoryStore(settings)
    await store.start()
    return store
