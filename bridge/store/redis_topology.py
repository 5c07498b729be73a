"""Which Redis the bridge talks to: one server (``BRIDGE_REDIS_URL``), the master that
Sentinel names (``BRIDGE_REDIS_SENTINELS`` + ``BRIDGE_REDIS_MASTER``: redis-py asks the
sentinels for the master's address on every new connection, so it follows a promotion by
itself), or a Redis Cluster (``BRIDGE_REDIS_CLUSTER``: redis-py's cluster client, which
routes each command to the master of its key's slot). See docs/redis.md.

Every script touches one conversation's keys (one ``{call_id}`` slot), so the three
speak the same scripts; what differs is prepended to them by :func:`prelude`.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import parse_url
from redis.asyncio.sentinel import Sentinel

from bridge.config import Settings

Client = Redis | RedisCluster


def _credentials(settings: Settings) -> dict[str, Any]:
    """Username, password and database of ``BRIDGE_REDIS_URL`` (with Sentinel its host is
    not used: the sentinels name the master)."""
    if not settings.redis_url:
        return {}
    parsed = parse_url(settings.redis_url)
    return {k: v for k, v in parsed.items() if k in ("username", "password", "db")}


def client(settings: Settings, **options: Any) -> Client:
    """A client of the configured Redis; ``options`` go to its connections."""
    options["socket_connect_timeout"] = settings.redis_timeout
    mode = settings.redis_mode()
    if mode == "sentinel":
        sentinel = Sentinel(  # type: ignore[no-untyped-call]
            settings.sentinel_addresses(),
            sentinel_kwargs={
                "socket_timeout": settings.redis_timeout,
                "socket_connect_timeout": settings.redis_timeout,
            },
        )
        master: Redis = sentinel.master_for(
            settings.redis_master, **_credentials(settings), **options
        )
        return master
    assert settings.redis_url, "the Redis store needs settings.redis_url"
    if mode == "cluster":
        # A shard without a master (during its fail-over) must not stop the others.
        return RedisCluster.from_url(settings.redis_url, require_full_coverage=False, **options)
    return Redis.from_url(settings.redis_url, **options)


def node_client(settings: Settings, host: str, port: int | str, **options: Any) -> Redis:
    """A plain client of one cluster node (the fan-out's listener of that shard)."""
    creds = _credentials(settings)
    creds.pop("db", None)
    return Redis(
        host=host, port=int(port), socket_connect_timeout=settings.redis_timeout, **creds, **options
    )


def prelude(redis: Client, fenced: bool) -> str:
    """What the scripts' shared head needs to know of the deployment: the command that
    announces a frame (SPUBLISH on a cluster, so the message goes to the conversation's
    shard only) and whether a session is fenced to the master that wrote it (Sentinel
    and Cluster: a promoted replica may have lost the last writes; see session.lua)."""
    publish = "SPUBLISH" if isinstance(redis, RedisCluster) else "PUBLISH"
    return f"local PUBLISH, FENCED = '{publish}', {'true' if fenced else 'false'}\n"
