"""The SQLite store's reads: memory's, once memory agrees with the file again after a failed
write (see :mod:`.sqlite`), or ``StoreUnavailable`` if it cannot."""

from __future__ import annotations

import asyncio

from bridge.config import Settings
from bridge.refusals import StoreUnavailable
from bridge.store import Entry, Outgoing, Replay, Waiting
from bridge.store.memory import MemoryStore
from bridge.vendor.airudder import Envelope
from bridge.widget import WidgetMessage


class GatedReads(MemoryStore):
    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self._gate: asyncio.Task[None] | None = None  # sessions reloading after a failure
        self._broken: str | None = None

    async def ping(self) -> bool:
        return self._broken is None

    async def _usable(self) -> None:
        if self._gate is not None:
            await asyncio.shield(self._gate)
        if self._broken is not None:
            raise StoreUnavailable(self._broken)

    # -- reads: memory's, once it agrees with the file -----------------------------------

    async def replay(self, call_id: str, after: int | None, epoch: str | None) -> Replay:
        await self._usable()
        return await super().replay(call_id, after, epoch)

    async def latest(self, call_id: str) -> tuple[str, Entry] | None:
        await self._usable()
        return await super().latest(call_id)

    async def find(self, call_id: str, ref: int | str) -> WidgetMessage | None:
        await self._usable()
        return await super().find(call_id, ref)

    async def envelope(self, call_id: str) -> Envelope | None:
        await self._usable()
        return await super().envelope(call_id)

    async def next_outgoing(self, call_id: str) -> Outgoing | None:
        await self._usable()
        return await super().next_outgoing(call_id)

    async def waiting(self) -> list[Waiting]:
        await self._usable()
        return await super().waiting()
