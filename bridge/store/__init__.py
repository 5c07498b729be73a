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
from bridge.widget import ReplyTo, WidgetMessage

# One entry of a session as sockets get it: (seq of a message, or None for a status; the
# encoded frame). "Frame" alone always means the bytes sent on a socket.
Entry = tuple[int | None, bytes]
Item = tuple[str, WidgetMessage]  # (de-duplication key, message with seq 0)


@dataclass(frozen=True, slots=True)
class Appended:
    """What one append did: the seq of every item (an item stored before keeps its old
    seq) and the frames it newly stored, for live delivery."""

    epoch: str
    seqs: list[int]
    frames: list[Entry]


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

    @abstractmethod
    async def append(
        self,
        call_id: str,
        items: Sequence[Item],
        *,
        envelope: Envelope | None = None,
        answer: ReplyTo | None = None,
    ) -> Appended:
        """Store ``items`` in order. With ``answer``, the choices message it names is marked
        answered in the same step, or ``Refusal("already_answered")`` and nothing stored."""

    @abstractmethod
    async def replay(self, call_id: str, after: int | None, epoch: str | None) -> Replay:
        """The frames a socket joining now must get first (see README, "Recovery")."""

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
    """The store the settings ask for, started: Redis when ``redis_url`` is set."""
    store: Store
    if settings.redis_url:
        from bridge.store.redis import RedisStore  # only deployments on Redis need the client

        store = RedisStore(settings)
    else:
        from bridge.store.memory import MemoryStore

        store = MemoryStore(settings)
    await store.start()
    return store
