"""Redis's wire format (RESP) for the store's batches, and one exchange on a connection.

redis-py packs a command at about 1 µs an argument (an append has some thirty, most of
them bytes already) and wraps a pipeline in bookkeeping of its own; on the Redis store's
hot path that was more CPU than anything else the batch does. Here an argument is
encoded once, with a single formatting operation, and the batch is written as one buffer
on a pooled connection, its replies read back in order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from redis.asyncio.connection import AbstractConnection, ConnectionPool
from redis.exceptions import ResponseError

Arg = bytes | str | int | float


def command(args: Sequence[Arg]) -> bytes:
    """One command, as redis-py's packer writes it. Most arguments are bytes or str
    already: those take no call at all (an append has over twenty)."""
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        if isinstance(arg, bytes):
            data = arg
        elif isinstance(arg, str):
            data = arg.encode()
        else:
            data = _number(arg)
        out.append(b"$%d\r\n%b\r\n" % (len(data), data))
    return b"".join(out)


def _number(arg: int | float) -> bytes:
    if isinstance(arg, bool):  # refused as redis-py refuses it: 1 or "True" is a guess
        raise TypeError("a bool is no Redis argument")
    return b"%d" % arg if isinstance(arg, int) else repr(arg).encode()


async def exchange(pool: ConnectionPool, payload: bytes, count: int) -> list[Any]:
    """Send ``payload`` (``count`` commands) on one connection of ``pool``: each command's
    reply, or the error Redis answered it with. A broken connection is retried as the
    client's retry policy says (safe: every script of the store can run twice)."""
    connection = await pool.get_connection()  # type: ignore[no-untyped-call]
    try:
        replies: list[Any] = await connection.retry.call_with_retry(
            lambda: _send(connection, payload, count),
            lambda error: connection.disconnect(),
        )
        return replies
    finally:
        await pool.release(connection)


async def _send(connection: AbstractConnection, payload: bytes, count: int) -> list[Any]:
    await connection.send_packed_command(payload)
    replies: list[Any] = []
    for _ in range(count):
        try:
            replies.append(await connection.read_response())
        except ResponseError as error:  # read whole: the next reply is still in step
            replies.append(error)
    return replies
