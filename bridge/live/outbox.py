"""One socket's way in from fan-out: written at once when that is safe, else a bounded
queue its pump drains. Fan-out never awaits a browser either way."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Literal

StopReason = Literal["overflow", "reset"]
# Writes ``(seq, frame)`` to the socket now, or returns False when it must wait its turn in
# the queue (the pump then sends it). It never awaits.
WriteNow = Callable[[int | None, bytes], bool]


class Outbox:
    """A queue of ``(seq, frame, enqueued_at)``, seq None for a status frame.

    ``on_stop(reason)`` runs once when the socket must close so its browser re-syncs:
    ``"overflow"`` (the queue is full) or ``"reset"`` (the store lost the history the
    socket was showing, e.g. Redis restarted without persistence). ``epoch`` is the one
    the socket replayed; frames of another epoch mean that reset.

    With ``write_now``, a frame skips the queue while the pump waits on an empty one (so
    nothing it holds or is sending can be overtaken): no task wakes per socket per frame,
    which is most of what fan-out cost. ``write_now`` bounds what a slow reader can hold.

    Every open socket holds one, mostly empty: a list and one waiter future cost a few
    hundred bytes where an ``asyncio.Queue`` (four deques) costs over 3 KB.
    """

    __slots__ = (
        "_held", "_items", "_on_stop", "_waiter", "_write_now", "epoch", "maxsize", "stopped",
    )  # fmt: skip

    def __init__(
        self,
        maxsize: int,
        on_stop: Callable[[StopReason], None],
        write_now: WriteNow | None = None,
    ) -> None:
        self.maxsize = maxsize
        self.stopped = False
        self.epoch: str | None = None  # None until the socket's replay: accept any
        self._items: list[tuple[int | None, bytes, float]] = []
        self._waiter: asyncio.Future[None] | None = None
        self._on_stop = on_stop
        self._write_now = write_now
        self._held = 0  # hold() calls not released yet: nothing leaves the queue

    def push(self, epoch: str, seq: int | None, frame: bytes) -> None:
        if self.stopped:
            return
        if self.epoch is not None and epoch != self.epoch:
            self.stop("reset")
            return
        waiting = not self._held and self._waiter is not None and not self._waiter.done()
        if waiting and self._write_now is not None and self._write_now(seq, frame):
            return  # the pump is idle on an empty queue: nothing to overtake
        if len(self._items) >= self.maxsize:
            self.stop("overflow")
            return
        self._items.append((seq, frame, time.perf_counter()))
        self._wake()

    def hold(self) -> None:
        """Keep what fan-out pushes from now on queued until :meth:`release`: the socket
        sends a frame of its own that must go first (the sender's ack before the message
        it acknowledges, whose fan-out copy may come back before the store's answer)."""
        self._held += 1

    def release(self) -> None:
        self._held -= 1
        self._wake()

    def _wake(self) -> None:
        if not self._held and self._items and self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def get(self) -> tuple[int | None, bytes, float]:
        """The oldest item, waiting for one if there is none (or while held)."""
        while not self._items or self._held:
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
