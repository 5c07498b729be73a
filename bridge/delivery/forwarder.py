"""Delivery to the bot, driven by the store: each conversation's queue (a transactional
outbox, written in the same step that acknowledges the person's message) goes out in
order, one message at a time, signed like inbound callbacks, retried with back-off.

One process forwards a conversation at a time: it claims the conversation in the store
(a lease on Redis, renewed before every attempt; a dead process's lease runs out). Work
found in the store (after a restart, or left by another process) is picked up by a
periodic sweep. Delivery is at-least-once: a process killed after the bot answered but
before ``sent`` was stored posts the same body again, with the same ``msg_id``.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import os
import random
import secrets
import socket
import time
from collections.abc import Callable, Sequence

import aiohttp

from bridge.config import Settings
from bridge.metrics import Metrics
from bridge.refusals import StoreUnavailable
from bridge.store import Entry, Outgoing, Store
from bridge.vendor import signing

log = logging.getLogger(__name__)

BACKOFF_CAP = 8.0
RETRY_STATUSES = frozenset({408, 425, 429})  # 4xx that say "later", not "never"

Publish = Callable[[str, str, Sequence[Entry]], None]


class _LeaseLost(Exception):
    """Another process took the conversation over (ours ran out): stop, settle nothing."""


class Forwarder:
    def __init__(
        self,
        settings: Settings,
        url: str,
        store: Store,
        publish: Publish,
        metrics: Metrics,
        http: aiohttp.ClientSession,
    ) -> None:
        self.settings = settings
        self.url = url
        self.store = store
        self.publish = publish  # the fan-out's: status frames reach every socket
        self.metrics = metrics
        self.http = http
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        # Longer than one attempt may take, so a live owner never loses it mid-attempt.
        self.lease = settings.upstream_timeout + 10.0
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._again: set[str] = set()  # kicked while draining: look once more before ending
        self._sweeper: asyncio.Task[None] | None = None

    def kick(self, call_id: str) -> None:
        """Something may be queued for ``call_id``: make sure a task here looks."""
        if call_id in self._tasks:
            self._again.add(call_id)
            return
        self._tasks[call_id] = asyncio.create_task(self._drain(call_id), name=f"forward {call_id}")

    async def retry(self, call_id: str, seq: int) -> None:
        """Send a given-up queue again (from any process): ``Refusal`` if ``seq`` is not in one."""
        epoch, entries = await self.store.retry(call_id, seq)
        self.publish(call_id, epoch, entries)
        self.kick(call_id)

    async def start(self) -> None:
        self._sweeper = asyncio.create_task(self._sweep(), name="forward sweep")

    async def close(self) -> None:
        tasks = [*self._tasks.values(), *([self._sweeper] if self._sweeper else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _sweep(self) -> None:
        """Resume what the store holds (at start: what a restart interrupted), and keep the
        queue metrics true."""
        while True:
            try:
                waiting = await self.store.waiting()
            except StoreUnavailable as exc:
                log.warning("cannot look for queued messages: %s", exc)
            else:
                now = time.time()
                self.metrics.upstream_waiting.set(sum(w.count for w in waiting))
                oldest = min((w.oldest for w in waiting), default=now)
                self.metrics.upstream_oldest.set(now - oldest)
                for conversation in waiting:
                    if conversation.ready:
                        self.kick(conversation.call_id)
            await asyncio.sleep(self.settings.delivery_sweep)

    async def _drain(self, call_id: str) -> None:
        try:
            while True:
                self._again.discard(call_id)
                await self._drain_once(call_id)
                # No await between this check and leaving: a kick cannot fall in between.
                if call_id not in self._again:
                    return
        except StoreUnavailable as exc:  # the sweep resumes once the store is back
            log.warning("store down while forwarding: %s", exc, extra={"call_id": call_id})
        except _LeaseLost:
            log.info("another process took over forwarding", extra={"call_id": call_id})
        except Exception:  # never silently: the sweep tries again
            log.exception("forwarding failed", extra={"call_id": call_id})
        finally:
            del self._tasks[call_id]

    async def _drain_once(self, call_id: str) -> None:
        if not await self.store.claim(call_id, self.owner, self.lease):
            return  # another process forwards it; its sweep or ours picks up the rest
        try:
            while (job := await self.store.next_outgoing(call_id)) is not None:
                problem = await self._deliver(call_id, job)
                self.metrics.forwards.labels("failed" if problem else "sent").inc()
                if problem:
                    log.warning(
                        "upstream delivery gave up: %s", problem, extra={"call_id": call_id}
                    )
                epoch, entries = await self.store.settle(call_id, job, problem is None, problem)
                self.publish(call_id, epoch, entries)
        finally:
            await self.store.release(call_id, self.owner)

    async def _deliver(self, call_id: str, job: Outgoing) -> str | None:
        """POST until the bot takes it: None, or why it gave up."""
        settings = self.settings
        headers = signing.signed_headers(job.body, settings)
        deadline = time.monotonic() + settings.upstream_max_seconds
        timeout = aiohttp.ClientTimeout(total=settings.upstream_timeout)
        for attempt in range(1, settings.upstream_attempts + 1):
            if not await self.store.claim(call_id, self.owner, self.lease):
                raise _LeaseLost
            wait: float | None = None
            try:
                async with self.http.post(
                    self.url, data=job.body, headers=headers, timeout=timeout
                ) as resp:
                    if resp.status < 400:
                        return None
                    problem = f"HTTP {resp.status}"
                    if resp.status < 500 and resp.status not in RETRY_STATUSES:
                        return f"upstream refused it: {problem}"
                    wait = retry_after(resp.headers.get("Retry-After"))
            except (aiohttp.ClientError, TimeoutError) as exc:
                problem = f"{type(exc).__name__}: {exc}"
            delay = min(BACKOFF_CAP, settings.upstream_backoff * 2 ** (attempt - 1))
            delay *= random.uniform(0.5, 1.0)  # jitter: retries of many sessions spread out
            if wait is not None:
                delay = max(delay, wait)  # the bot said when: never sooner
            if attempt == settings.upstream_attempts or time.monotonic() + delay > deadline:
                return f"gave up after {attempt} attempts ({problem})"
            self.metrics.forwards.labels("retried").inc()
            log.info(
                "upstream attempt %d: %s; retrying", attempt, problem, extra={"call_id": call_id}
            )
            await asyncio.sleep(delay)
        raise AssertionError("unreachable: the last attempt returns")


def retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
