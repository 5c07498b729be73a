"""The fan-out on a Redis Cluster: sharded pub/sub. The store's scripts SPUBLISH a frame on
the conversation's ``live`` channel, which Redis sends only within the shard that owns its
slot (classic PUBLISH goes to every node of the cluster). Each process keeps one
:class:`Listener` per shard master it has sockets for, read by its own task, and
SSUBSCRIBEs each conversation on the master of its slot.

When a shard fails over, or a slot moves to another shard (resharding), the old master's
connection breaks, or it sends SUNSUBSCRIBE for the slot's channels. Then the topology is
read again (with back-off, until every subscribed conversation's master is reachable)
and the conversations whose slot has a new master are subscribed there, each followed
by a catch-up (the latest message pushed again, see redis_fanout).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisClusterException

from bridge.config import Settings
from bridge.live.redis_fanout import PUBSUB_PROTOCOL, RedisFanout
from bridge.live.redis_listener import RECONNECT_DELAYS, Listener
from bridge.store import Store
from bridge.store.redis_base import UNAVAILABLE, client
from bridge.store.redis_keys import channel
from bridge.store.redis_topology import node_client

log = logging.getLogger(__name__)

SETTLED_REFRESH = 30.0  # seconds between topology reads while every listener is connected
UNSETTLED_REFRESH = 1.0  # the longest wait between topology reads while one is not


class ClusterFanout(RedisFanout):
    def __init__(self, settings: Settings, store: Store) -> None:
        super().__init__(settings, store)
        cluster = client(settings, retry=Retry(NoBackoff(), 0))
        assert isinstance(cluster, RedisCluster)
        self.cluster = cluster
        self._shards: dict[str, Listener] = {}  # node name -> its listener
        self._changed = asyncio.Event()

    async def start(self) -> bool:
        with contextlib.suppress(*UNAVAILABLE, RedisClusterException, TimeoutError):
            await asyncio.wait_for(self.cluster.initialize(), self.timeout)
        self._spawn(self._supervise(), "redis shard supervisor")
        return bool(self.cluster.nodes_manager.slots_cache)

    def _route(self, call_id: str) -> Listener:
        try:
            node = self.cluster.get_node_from_key(channel(call_id))
        except UNAVAILABLE:  # a slot without a master: the supervisor routes it later
            node = None
        if node is None:
            self._changed.set()
            return self._any_listener()
        listener = self._shards.get(node.name)
        if listener is None:
            listener = self._listener_on(node)
        return listener

    def _any_listener(self) -> Listener:
        """Somewhere to keep a conversation whose shard has no master right now."""
        if self._shards:
            return next(iter(self._shards.values()))
        return self._listener_on(self.cluster.get_random_node())

    def _listener_on(self, node: ClusterNode) -> Listener:
        redis = node_client(
            self.settings,
            node.host,
            node.port,
            retry=Retry(NoBackoff(), 0),
            protocol=PUBSUB_PROTOCOL,
        )
        listener = self._shards[node.name] = self._new_listener(node.name, redis, True)
        return listener

    def lost(self, listener: Listener) -> None:
        self._changed.set()

    def moved(self, listener: Listener, call_id: str) -> None:
        self._changed.set()

    async def _supervise(self) -> None:
        """Read the topology again when a listener lost its node or a slot moved, and move
        subscriptions to the masters that own their slots now."""
        delay = RECONNECT_DELAYS[0]
        while True:
            unsettled = not all(listener.connected for listener in self._shards.values())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._changed.wait(), delay if unsettled else SETTLED_REFRESH
                )
            self._changed.clear()
            try:
                await self.cluster.nodes_manager.initialize()
                await self._reroute()
            except (*UNAVAILABLE, RedisClusterException) as exc:  # no node answers, for now
                log.debug("cluster topology unavailable: %s", exc)
            except Exception:  # the fan-out must never stop for good
                log.exception("re-routing shard subscriptions failed")
            delay = min(delay * 2, UNSETTLED_REFRESH) if unsettled else RECONNECT_DELAYS[0]

    async def _reroute(self) -> None:
        async with self._routing:
            for call_id, listener in list(self._where.items()):
                target = self._route(call_id)
                if target is listener and call_id in listener.call_ids:
                    continue
                if target is not listener:
                    await listener.remove(call_id)
                self._where[call_id] = target
                await target.add(call_id, catch_up=True)
            masters = {node.name for node in self.cluster.get_primaries()}
            for name, listener in list(self._shards.items()):
                if name not in masters and not listener.call_ids:
                    del self._shards[name]
                    await listener.stop()

    def _listeners(self) -> list[Listener]:
        return list(self._shards.values())

    async def close(self) -> None:
        await super().close()
        await self.cluster.aclose()
