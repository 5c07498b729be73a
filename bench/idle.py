"""Idle-scale client worker (one of several processes, each under its own file limit):
opens ``--count`` raw sockets, one call_id each, prints ``{"opened": N, "failed": F}``,
then holds them, answering the server's heartbeats, until stdin closes or ``--hold``
seconds pass."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import threading

from bench import rawws
from bench.servers import raise_fd_limit
from bridge.cli import new_event_loop

CONNECTS_IN_FLIGHT = 128


async def hold(args: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    stdin_closed = asyncio.Event()

    def wait_stdin() -> None:
        sys.stdin.read()
        loop.call_soon_threadsafe(stdin_closed.set)

    threading.Thread(target=wait_stdin, daemon=True).start()
    gate = asyncio.Semaphore(CONNECTS_IN_FLIGHT)
    opened: list[rawws.RawSocket] = []
    failed = 0

    async def one(i: int) -> None:
        nonlocal failed
        async with gate:
            try:
                call_id = f"idle-{args.first + i:06d}"
                opened.append(await rawws.connect(args.port, call_id, socketio=args.socketio))
            except (OSError, TimeoutError):
                failed += 1

    await asyncio.gather(*(one(i) for i in range(args.count)))
    print(json.dumps({"opened": len(opened), "failed": failed}), flush=True)
    try:
        await asyncio.wait_for(stdin_closed.wait(), args.hold)
    except TimeoutError:
        pass
    alive = sum(1 for s in opened if not s.closed.done())
    rawws.close_all(opened)
    print(json.dumps({"alive_at_end": alive}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--first", type=int, default=0)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--hold", type=float, default=120.0)
    parser.add_argument("--socketio", action="store_true")
    args = parser.parse_args()
    raise_fd_limit()
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        runner.run(hold(args))


if __name__ == "__main__":
    main()
