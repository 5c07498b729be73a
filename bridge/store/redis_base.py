"""What the Redis store's modules share: the connection, its failures, the scripts."""

from __future__ import annotations

import contextlib
import functools
import secrets
from collections.abc import Iterator, Mapping
from importlib import resources
from typing import Any

from redis.asyncio.cluster import RedisCluster
from redis.asyncio.sentinel import SentinelConnectionPool
from redis.commands.core import AsyncScript
from redis.exceptions import (
    AskError,
    ClusterError,
    OutOfMemoryError,
    ReadOnlyError,
    ResponseError,
    SlotNotCoveredError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from bridge.config import Settings
from bridge.frames import DeliveryStatus, StatusFrame
from bridge.refusals import StoreUnavailable
from bridge.store import redis_topology
from bridge.store.redis_topology import Client

# Redis is down, loading, full or a read-only replica after a fail-over, a cluster's shard
# has no master (yet), or moves: try again later.
UNAVAILABLE = (
    RedisConnectionError,
    RedisTimeoutError,
    OSError,
    OutOfMemoryError,
    ReadOnlyError,
    ClusterError,  # CLUSTERDOWN, MASTERDOWN
    SlotNotCoveredError,
    AskError,  # MOVED too: a slot moved under a pipeline that may not follow it
    TryAgainError,
)
# Refusals of a master without enough replicas (min-replicas-to-write), or still loading.
_TRANSIENT = ("NOREPLICAS", "LOADING")


def script(name: str, session: bool = True) -> str:
    """The source of ``lua/<name>.lua``; a session script (its KEYS are a SessionKeys,
    then its ``live`` channel) starts with the shared head, ``session.lua``."""
    lua = resources.files("bridge.store") / "lua"
    head = (lua / "session.lua").read_text() if session else ""
    return head + (lua / f"{name}.lua").read_text()


def register(
    redis: Client,
    name: str,
    session: bool = True,
    constants: Mapping[str, int | bytes] | None = None,
) -> AsyncScript:
    """``lua/<name>.lua`` for this deployment (see :func:`redis_topology.prelude`), with
    ``constants`` (settings that never change while the process runs) as Lua locals
    before it: arguments a call does not have to send (a script is loaded once)."""
    fenced = isinstance(redis, RedisCluster) or isinstance(
        getattr(redis, "connection_pool", None), SentinelConnectionPool
    )
    values = "".join(f"local {key} = {_lua(value)}\n" for key, value in (constants or {}).items())
    return redis.register_script(
        redis_topology.prelude(redis, fenced) + values + script(name, session)
    )


def _lua(value: int | bytes) -> str:
    """A Lua literal: the number, or the bytes as a string (decimal escapes: any byte)."""
    if isinstance(value, int):
        return str(value)
    printable = (chr(b) if 32 <= b < 127 and b not in b'"\\' else f"\\{b:03d}" for b in value)
    return '"' + "".join(printable) + '"'


@contextlib.contextmanager
def available() -> Iterator[None]:
    """Redis not answering becomes :class:`StoreUnavailable` (a 503 for the vendor)."""
    try:
        yield
    except UNAVAILABLE as exc:
        raise StoreUnavailable(f"Redis is unavailable: {exc}") from exc
    except ResponseError as exc:
        if str(exc).split(" ", 1)[0] not in _TRANSIENT:
            raise
        raise StoreUnavailable(f"Redis is unavailable: {exc}") from exc


def new_epoch() -> str:
    return secrets.token_hex(8)


def client(settings: Settings, **options: Any) -> Client:
    return redis_topology.client(settings, **options)


@functools.lru_cache(maxsize=64)  # mostly the same few: "sending" is on every person's message
def status_parts(status: DeliveryStatus, detail: str | None = None) -> tuple[bytes, bytes]:
    """A status frame split around its seq, for a script that knows the seq: head + seq +
    tail is exactly ``StatusFrame(seq=seq, ...).encode()`` (the seq precedes the detail,
    the only free text)."""
    head, marker, tail = (
        StatusFrame(seq=0, status=status, detail=detail).encode().partition(b'"seq":0')
    )
    assert marker, "a status frame has a seq field"
    return head + b'"seq":', tail
