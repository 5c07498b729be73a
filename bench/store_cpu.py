"""Server CPU per callback spent in the store: ``python -m bench.store_cpu``.

Appends the seed callback's list message N times through the store API (100 call_ids,
the default history limit, so trims happen as in production), ``concurrency`` at a time
(1: every append waits for its own commit; more: calls of one loop tick share a commit,
or on Redis a round trip),
and divides the process's CPU time (all threads: the SQLite writer's too) by N.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import orjson

from bridge import widget
from bridge.config import Settings
from bridge.demo import samples
from bridge.store import Store, open_store
from bridge.store.sqlite import SqliteStore
from bridge.vendor import airudder


async def run(store: Store, n: int, concurrency: int, tag: str) -> float:
    received = airudder.receive(orjson.dumps(samples.seed_callback("bench")))
    _, message = widget.translate_callback(received)[5]  # the list message
    started = time.process_time()
    for start in range(0, n, concurrency):
        await asyncio.gather(
            *(
                store.append(f"call-{i % 100}", [(f"{tag}{i}", message)])
                for i in range(start, min(n, start + concurrency))
            )
        )
    return (time.process_time() - started) / n * 1e6


async def measure(
    kind: str, n: int, concurrency: int, synchronous: str, redis_url: str | None = None
) -> float:
    with tempfile.TemporaryDirectory() as data_dir:
        settings = Settings(store=kind, data_dir=Path(data_dir), redis_url=redis_url)  # type: ignore[arg-type]
        if kind == "sqlite":
            store: Store = SqliteStore(settings, synchronous=synchronous)
            await store.start()
        else:
            store = await open_store(settings)
        try:
            await run(store, 500, concurrency, "warm")  # caches, statements, pages
            # The least of three: other processes on the machine only ever add time.
            return min([await run(store, n, concurrency, f"r{r}-") for r in range(3)])
        finally:
            await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=5000)
    parser.add_argument(
        "--redis-url",
        help="measure the Redis store on this (throw-away: it is written to) Redis instead",
    )
    args = parser.parse_args()
    if args.redis_url:
        for concurrency in (1, 10, 50):
            redis = asyncio.run(measure("redis", args.n, concurrency, "", args.redis_url))
            print(f"concurrency {concurrency:3}: redis {redis:6.1f} us per callback")
        return
    for concurrency in (1, 10, 50):
        memory = asyncio.run(measure("memory", args.n, concurrency, ""))
        for sync in ("NORMAL", "FULL"):
            sqlite = asyncio.run(measure("sqlite", args.n, concurrency, sync))
            print(
                f"concurrency {concurrency:3}: memory {memory:6.1f} us, sqlite ({sync:6}) "
                f"{sqlite:6.1f} us per callback: +{sqlite - memory:5.1f} us"
            )


if __name__ == "__main__":
    main()
