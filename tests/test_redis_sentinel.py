"""Redis behind Sentinel: the master is killed mid-run and a replica promoted; the bridge
follows by itself and no acknowledged callback is lost (see tests/redis_run.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.redis_run import failover_run
from tests.redis_topologies import SentinelSet, running
from tests.servers import Bridge, free_port


@pytest.fixture
def sentinels(tmp_path: Path) -> Iterator[SentinelSet]:
    with running(SentinelSet(tmp_path)) as topology:
        yield topology


@pytest.fixture
def sentinel_bridges(sentinels: SentinelSet) -> Iterator[tuple[Bridge, Bridge]]:
    bridges = [Bridge(free_port(), BRIDGE_REDIS_SENTINELS=sentinels.addresses) for _ in "ab"]
    try:
        yield bridges[0].start(), bridges[1].start()
    finally:
        for bridge in bridges:
            bridge.stop()


async def test_master_killed_midway_no_acknowledged_callback_is_lost(
    sentinels: SentinelSet,
    sentinel_bridges: tuple[Bridge, Bridge],
    http: aiohttp.ClientSession,
) -> None:
    first = sentinels.master()
    counts = await failover_run(
        http, sentinel_bridges, lambda: asyncio.to_thread(sentinels.kill_master_and_rejoin)
    )
    assert sentinels.master() is not first, "the replica was promoted"
    assert counts["refused"] > 0, "the switch was noticed (503s while it lasted)"
    assert counts["resets"] > 0, "sessions crossed the fail-over under a new epoch"
