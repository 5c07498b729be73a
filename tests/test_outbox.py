"""The outbox's hold: a socket's own frame (the sender's ack) goes before what fan-out
pushed meanwhile (on Redis, the acknowledged message's copy can come back first)."""

from __future__ import annotations

import asyncio
from unittest.mock import ANY

from bridge.live.outbox import Outbox
from tests.helpers import TIMEOUT


async def test_a_held_outbox_keeps_pushed_frames_until_released() -> None:
    written: list[bytes] = []

    def write_now(seq: int | None, frame: bytes) -> bool:
        written.append(frame)
        return True

    outbox = Outbox(10, lambda reason: None, write_now)
    pump = asyncio.create_task(outbox.get())
    await asyncio.sleep(0)  # one loop step: the pump now waits on the empty queue
    outbox.hold()
    outbox.push("e", 1, b"m1")
    await asyncio.sleep(0)
    assert written == [] and not pump.done()
    outbox.release()
    assert await asyncio.wait_for(pump, TIMEOUT) == (1, b"m1", ANY)
    pump = asyncio.create_task(outbox.get())
    await asyncio.sleep(0)
    outbox.push("e", 2, b"m2")  # not held, the pump idle: straight to the socket
    assert written == [b"m2"]
    pump.cancel()
