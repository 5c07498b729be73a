"""``python -m bench.topologies``: callbacks per second of the bridge on one Redis, on
Redis behind Sentinel (a master, a replica, three sentinels) and on a 3-shard Redis Cluster
(a replica per master), side by side; with and without ``WAIT`` for a replica; and what
one acknowledged append costs alone (the WAIT round trip). Writes
``bench/results/topologies.json``. Every Redis runs on 127.0.0.1 with
``min-replicas-to-write 1`` where it has replicas (tests/redis_topologies.py).

The bridge runs as ``--workers N`` processes on one port (the load generator posts to that
port; Linux spreads the connections), 0 sockets, the ingest workload of ``bench.run``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from bench.load import Callbacks, Recorder, Sender, call_ids
from bench.servers import BRIDGE, BRIDGE_ENV, ROOT, start
from bridge import widget
from bridge.config import Settings
from bridge.demo import samples
from bridge.store.redis import RedisStore
from bridge.vendor import airudder
from tests.redis_topologies import ClusterSet, SentinelSet, running
from tests.servers import RedisServer, free_port

RESULTS = ROOT / "bench" / "results" / "topologies.json"
# name -> (topology, BRIDGE_REDIS_WAIT or None for the default)
SETUPS = {
    "redis": ("single", None),
    "sentinel, no WAIT": ("sentinel", "0"),
    "sentinel": ("sentinel", None),
    "cluster, no WAIT": ("cluster", "0"),
    "cluster": ("cluster", None),
}


@contextlib.contextmanager
def topology(kind: str) -> Iterator[dict[str, str]]:
    """The Redis of ``kind`` started; yields the bridge's settings for it."""
    with tempfile.TemporaryDirectory(prefix="bench-redis-") as directory:
        if kind == "single":
            server = RedisServer(Path(directory))
            server.start()
            try:
                yield {"BRIDGE_REDIS_URL": server.url}
            finally:
                server.stop()
        elif kind == "sentinel":
            with running(SentinelSet(Path(directory))) as sentinels:
                yield {"BRIDGE_REDIS_SENTINELS": sentinels.addresses}
        else:
            with running(ClusterSet(Path(directory))) as cluster:
                yield {"BRIDGE_REDIS_URL": cluster.url, "BRIDGE_REDIS_CLUSTER": "true"}


async def ingest(port: int, seconds: float, concurrency: int) -> dict[str, float]:
    sender = Sender(port, Callbacks(call_ids(1000)), [])
    result = await sender.max_rate(concurrency, 1.0, seconds, Recorder())
    return {"callbacks_per_s": round(result.rate, 1), "errors": result.errors}


async def append_cost(env: dict[str, str], wait: str | None, count: int) -> float:
    """µs per acknowledged append, one at a time, from this process (no HTTP)."""
    settings = Settings(
        redis_url=env.get("BRIDGE_REDIS_URL"),
        redis_sentinels=env.get("BRIDGE_REDIS_SENTINELS", ""),
        redis_cluster=env.get("BRIDGE_REDIS_CLUSTER") == "true",
        redis_wait=None if wait is None else int(wait),
    )
    store = RedisStore(settings)
    received = airudder.receive(orjson.dumps(samples.seed_callback("bench")))
    _, message = widget.translate_callback(received)[5]  # the list message, as store_cpu
    try:
        for i in range(200):  # connections, scripts
            await store.append(f"cost-{i % 50}", [(f"warm{i}", message)])
        started = time.perf_counter()
        for i in range(count):
            await store.append(f"cost-{i % 50}", [(f"n{i}", message)])
        return round(1e6 * (time.perf_counter() - started) / count, 1)
    finally:
        await store.close()


def run(workers: int, seconds: float, concurrency: int, names: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "workers": workers,
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "setups": {},
    }
    for name in names:
        kind, wait = SETUPS[name]
        with topology(kind) as env:
            port = free_port()
            bridge_env = {**BRIDGE_ENV, **env, **({"BRIDGE_REDIS_WAIT": wait} if wait else {})}
            cmd = [*BRIDGE, str(port), "--workers", str(workers)]
            process = start(f"topology-{kind}", cmd, port, set(range(64)), bridge_env)
            try:
                figures = asyncio.run(ingest(port, seconds, concurrency))
            finally:
                process.stop()
            figures["append_us"] = asyncio.run(append_cost(env, wait, 2000))
        out["setups"][name] = figures
        print(f"{name:20} {figures}", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--concurrency", type=int, default=48)
    parser.add_argument("--setups", nargs="+", choices=list(SETUPS), default=list(SETUPS))
    args = parser.parse_args()
    out = run(args.workers, args.seconds, args.concurrency, args.setups)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
