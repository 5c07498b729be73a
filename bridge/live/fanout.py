"""Fan-out: every socket of a call_id gets every frame stored for it, by way of its outbox.

:class:`LocalFanout` reaches the sockets of this process; with the Redis store,
:class:`bridge.live.redis_fanout.RedisFanout` reaches those of every process."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

from bridge.config import Settings
from bridge.live.outbox import Outbox
from bridge.store import Entry, Store


class Fanout(ABC):
    @abstractmethod
    async def subscribe(self, call_id: str, outbox: Outbox) -> None:
        """Frames published from now on reach ``outbox``. Returns once that holds, so a
        replay read next cannot miss a frame stored in between."""

    @abstractmethod
    async def unsubscribe(self, call_id: str, outbox: Outbox) -> None: ...

    @abstractmethod
    def publish(self, call_id: str, epoch: str, frames: Sequence[Entry]) -> None:
        """Hand frames just stored to the call_id's sockets (never waits for one)."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Stop them."""


class LocalFanout(Fanout):
    """Sockets of this process only: with a store no other process writes to."""

    def __init__(self) -> None:
        self._outboxes: dict[str, set[Outbox]] = {}

    async def subscribe(self, call_id: str, outbox: Outbox) -> None:
        self._outboxes.setdefault(call_id, set()).add(outbox)

    async def unsubscribe(self, call_id: str, outbox: Outbox) -> None:
        outboxes = self._outboxes.get(call_id)
        if outboxes is not None:
            outboxes.discard(outbox)
            if not outboxes:
                del self._outboxes[call_id]

    def publish(self, call_id: str, epoch: str, frames: Sequence[Entry]) -> None:
        for outbox in self._outboxes.get(call_id, ()):
            for seq, frame in frames:
                outbox.push(epoch, seq, frame)


async def open_fanout(settings: Settings, store: Store) -> Fanout:
    """The fan-out that matches the store, started: Redis pub/sub when it is on Redis."""
    fanout: Fanout
    if settings.store_kind() == "redis":
        from bridge.live.redis_fanout import RedisFanout

        fanout = await RedisFanout.connect(settings, store)
    else:
        fanout = LocalFanout()
    return fanout
