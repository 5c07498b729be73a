"""Redis Cluster: three masters with a replica each, conversations on every shard, two
bridge processes. The run of tests/redis_run.py as is, with a master killed midway, and
with slots moved midway; and sharded pub/sub publishes only on the conversation's shard."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import aiohttp
import pytest

from bridge.store.redis_keys import channel
from tests.helpers import until
from tests.redis_run import CONVERSATIONS, Browser, callback, failover_run, post_until_taken
from tests.redis_topologies import ClusterSet, running
from tests.servers import Bridge, RedisServer, free_port


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterSet]:
    with running(ClusterSet(tmp_path_factory.mktemp("cluster"))) as topology:
        yield topology


@pytest.fixture
def cluster_bridges(cluster: ClusterSet) -> Iterator[tuple[Bridge, Bridge]]:
    cluster.settle()
    cluster.flush()
    env = {"BRIDGE_REDIS_URL": cluster.url, "BRIDGE_REDIS_CLUSTER": "true"}
    bridges = [Bridge(free_port(), **env) for _ in "ab"]
    try:
        yield bridges[0].start(), bridges[1].start()
    finally:
        for bridge in bridges:
            bridge.stop()


def owners(cluster: ClusterSet, prefix: str) -> dict[str, RedisServer]:
    return {f"{prefix}{i}": cluster.owner(channel(f"{prefix}{i}")) for i in range(CONVERSATIONS)}


async def test_2000_callbacks_over_three_shards_complete_and_in_order(
    cluster: ClusterSet, cluster_bridges: tuple[Bridge, Bridge], http: aiohttp.ClientSession
) -> None:
    assert set(owners(cluster, "c").values()) == set(cluster.masters()), "every shard has some"
    await failover_run(http, cluster_bridges)


async def test_a_message_is_published_only_on_its_own_shard(
    cluster: ClusterSet, cluster_bridges: tuple[Bridge, Bridge], http: aiohttp.ClientSession
) -> None:
    a, b = cluster_bridges
    browsers = [Browser(http, bridge, f"s{i}") for i in range(CONVERSATIONS) for bridge in (a, b)]
    for browser in browsers:
        browser.start()
    await asyncio.gather(*(browser.ready.wait() for browser in browsers))
    for master in cluster.masters():
        with master.client() as client:
            # One sharded listener per process on every shard it has sockets for.
            assert len(client.client_list(_type="pubsub")) == 2
            client.config_resetstat()
    for i in range(10):
        await post_until_taken(http, (a, b)[i % 2], callback("s0", i))
    owner = cluster.owner(channel("s0"))
    for master in cluster.masters():
        with master.client() as client:
            stats = client.info("commandstats")
            assert "cmdstat_publish" not in stats, "no classic PUBLISH (it reaches every node)"
            spublished = stats.get("cmdstat_spublish", {}).get("calls", 0)
            assert spublished == (10 if master is owner else 0), master.port
    for browser in browsers[:2]:
        await until(lambda browser=browser: len(browser.shown) == 10, "the socket's 10 messages")
    for browser in browsers:
        await browser.stop()


async def test_a_master_killed_midway_loses_no_acknowledged_callback(
    cluster: ClusterSet, cluster_bridges: tuple[Bridge, Bridge], http: aiohttp.ClientSession
) -> None:
    victim = cluster.owner(channel("c0"))
    counts = await failover_run(
        http, cluster_bridges, lambda: asyncio.to_thread(cluster.kill_master_and_rejoin, victim)
    )
    assert cluster.owner(channel("c0")) is not victim, "its replica took over"
    assert counts["resets"] > 0, "the shard's sessions crossed the fail-over under a new epoch"


async def test_slots_moved_midway_lose_no_acknowledged_callback(
    cluster: ClusterSet, cluster_bridges: tuple[Bridge, Bridge], http: aiohttp.ClientSession
) -> None:
    source = cluster.owner(channel("c0"))
    target = next(master for master in cluster.masters() if master is not source)
    # redis-cli moves the source's lowest slots: enough to take one conversation along.
    moving = min(
        (cluster.slot(channel(c)), c) for c, o in owners(cluster, "c").items() if o is source
    )
    slots = cluster.slots_up_to(source, moving[0])
    counts = await failover_run(
        http,
        cluster_bridges,
        lambda: asyncio.to_thread(cluster.reshard, source, target, slots),
    )
    assert cluster.owner(channel(moving[1])) is target, "its slot moved"
    assert counts["resets"] > 0, "a moved conversation goes on under a new epoch"
