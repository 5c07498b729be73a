"""What the Redis store's modules share: the connection, its failures, the scripts."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from importlib import resources
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import OutOfMemoryError, ReadOnlyError
from redis.exceptions import TimeoutError as RedisTimeoutError

from bridge.config import Settings
from bridge.frames import DeliveryStatus, StatusFrame
from bridge.refusals import StoreUnavailable

# Redis is down, loading, full or a read-only replica after a fail-over: try again later.
UNAVAILABLE = (RedisConnectionError, RedisTimeoutError, OSError, OutOfMemoryError, ReadOnlyError)


def script(name: str, session: bool = True) -> str:
    """The source of ``lua/<name>.lua``; a session script (its KEYS are a SessionKeys)
    starts with the shared head, ``session.lua``."""
    lua = resources.files("bridge.store") / "lua"
    head = (lua / "session.lua").read_text() if session else ""
    return head + (lua / f"{name}.lua").read_text()


@contextlib.contextmanager
def available() -> Iterator[None]:
    """Redis not answering becomes :class:`StoreUnavailable` (a 503 for the vendor)."""
    try:
        yield
    except UNAVAILABLE as exc:
        raise StoreUnavailable(f"Redis is unavailable: {exc}") from exc


def new_epoch() -> str:
    return secrets.token_hex(8)


def client(settings: Settings, **options: Any) -> Redis:
    assert settings.redis_url, "the Redis store needs settings.redis_url"
    return Redis.from_url(
        settings.redis_url, socket_connect_timeout=settings.redis_timeout, **options
    )


def status_parts(status: DeliveryStatus, detail: str | None = None) -> tuple[bytes, bytes]:
    """A status frame split around its seq, for a script that knows the seq: head + seq +
    tail is exactly ``StatusFrame(seq=seq, ...).encode()`` (the seq precedes the detail,
    the only free text)."""
    head, marker, tail = (
        StatusFrame(seq=0, status=status, detail=detail).encode().partition(b'"seq":0')
    )
    assert marker, "a status frame has a seq field"
    return head + b'"seq":', tail
