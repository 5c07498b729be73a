"""A write that is acknowledged only once a replica has it.

Redis replicates asynchronously: a script's effects reach the replicas a moment after its
reply, so a master that dies in between takes an acknowledged write with it. Redis
refuses ``WAIT`` inside a script, so the script and ``WAIT 1 <ms>`` go together in one
pipeline, on one connection to the master that owns the conversation (``WAIT`` counts
the replicas that have everything *this connection* wrote). One round trip; the cost is
the replica's acknowledgement. Fewer than one replica in time: :class:`StoreUnavailable`
(a 503; the write may be there, and the vendor's retry is de-duplicated).

On a cluster the commands go to one node as one batch: the master of the key's slot, or
during a migration the node an ``ASK`` points to (after ``ASKING``). Not through the
cluster pipeline: it follows a redirection command by command (a ``WAIT`` left on the old
node would count a replica that never saw the write), and on a broken connection it
closes the whole client, under every other request in flight. A node that does not
answer makes the slot map be read again (one read at a time) and this write a 503.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any

from redis.asyncio.cluster import ClusterNode, PipelineCommand, RedisCluster
from redis.commands.core import AsyncScript
from redis.exceptions import AskError, MovedError, NoScriptError, TryAgainError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from bridge.refusals import StoreUnavailable
from bridge.store.redis_topology import Client

ATTEMPTS = 4  # NOSCRIPT on a promoted replica, a slot that moved or is moving
TRY_AGAIN = 0.02  # seconds before trying a slot in migration again
_refreshing: dict[int, asyncio.Task[None]] = {}  # id(cluster client) -> its slot map read


async def run_replicated(
    redis: Client, program: AsyncScript, keys: Sequence[str], args: Sequence[Any], wait_ms: int
) -> Any:
    """``program``'s reply, once a replica confirmed its writes within ``wait_ms``."""
    ask: ClusterNode | None = None
    for _ in range(ATTEMPTS):
        try:
            if isinstance(redis, RedisCluster):
                reply, replicas = await _on_node(redis, program, keys, args, wait_ms, ask)
            else:
                async with redis.pipeline(transaction=False) as pipe:
                    pipe.evalsha(program.sha, len(keys), *keys, *args)
                    pipe.execute_command("WAIT", 1, wait_ms)
                    reply, replicas = await pipe.execute()
        except NoScriptError:  # a promoted replica, a new node: scripts are not replicated
            await redis.script_load(program.script)
            continue
        except MovedError:
            assert isinstance(redis, RedisCluster)
            ask = None
            await _refresh(redis)
            continue
        except AskError as exc:
            assert isinstance(redis, RedisCluster)
            ask = redis.get_node(host=exc.host, port=exc.port)
            continue
        except TryAgainError:  # the conversation's keys are half moved: a moment
            await asyncio.sleep(TRY_AGAIN)
            continue
        if int(replicas) < 1:
            raise StoreUnavailable(f"no replica confirmed the write within {wait_ms} ms")
        return reply
    raise StoreUnavailable("the conversation's slot kept moving")


async def _on_node(
    redis: RedisCluster,
    program: AsyncScript,
    keys: Sequence[str],
    args: Sequence[Any],
    wait_ms: int,
    ask: ClusterNode | None,
) -> tuple[Any, Any]:
    await redis.initialize()  # the slot map, read once (the client starts without it)
    node = ask or redis.get_node_from_key(keys[0])
    if node is None:
        raise StoreUnavailable("no master for the conversation's slot")
    commands: list[tuple[Any, ...]] = [("ASKING",)] if ask is not None else []
    commands += [("EVALSHA", program.sha, len(keys), *keys, *args), ("WAIT", 1, wait_ms)]
    batch = [PipelineCommand(i, *command) for i, command in enumerate(commands)]
    try:
        await node.execute_pipeline(batch)
    except (RedisConnectionError, RedisTimeoutError, OSError):
        _spawn_refresh(redis)  # the master may have failed over: find its successor
        raise
    for command in batch:
        if isinstance(command.result, Exception):
            raise command.result
    return batch[-2].result, batch[-1].result


def _spawn_refresh(redis: RedisCluster) -> None:
    if id(redis) not in _refreshing:
        task = asyncio.create_task(_refresh(redis))
        _refreshing[id(redis)] = task
        task.add_done_callback(lambda _: _refreshing.pop(id(redis), None))


async def _refresh(redis: RedisCluster) -> None:
    """Read the slot map again (a failing read is left for the next write to retry)."""
    with contextlib.suppress(Exception):  # no node answers now: the next write tries again
        await redis.nodes_manager.initialize()
