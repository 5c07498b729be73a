"""Forwarding what a person says to the vendor ("user sends message"), in order per call_id,
signed like inbound callbacks, retried with exponential back-off and jitter."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence

import aiohttp

from bridge.config import Settings
from bridge.frames import DeliveryStatus
from bridge.metrics import Metrics
from bridge.refusals import Refusal, StoreUnavailable
from bridge.store import Entry, Store
from bridge.vendor import airudder, signing
from bridge.widget import ChoicesMessage, TextMessage, WidgetMessage

log = logging.getLogger(__name__)

BACKOFF_CAP = 8.0
REMEMBERED = 10_000  # (call_id, seq) pairs remembered as submitted, to forward each once


def default_envelope(call_id: str) -> airudder.Envelope:
    """For a session no callback has named yet: the person is known only by the call_id."""
    return airudder.Envelope(
        channel="web", channel_id="airudder-bridge", user=airudder.User(id=call_id)
    )


def upstream_request(
    message: TextMessage, choices: WidgetMessage | None, envelope: airudder.Envelope
) -> airudder.UpstreamRequest:
    """The vendor-shaped body for one person's message (a pick as WhatsApp's
    ``button_reply``/``list_reply``)."""
    content: airudder.UserText | airudder.UserInteractive
    if message.reply_to is None:
        content = airudder.UserText(text=message.text)
    else:
        option = (
            choices.option(message.reply_to.option_id)
            if isinstance(choices, ChoicesMessage)
            else None
        )
        pick = airudder.ReplyPick(
            id=message.reply_to.option_id,
            title=option.label if option else message.text,
            description=option.description if option else None,
        )
        if isinstance(choices, ChoicesMessage) and choices.style == "list":
            interactive = airudder.PickedInteractive(type="list_reply", list_reply=pick)
        else:
            interactive = airudder.PickedInteractive(type="button_reply", button_reply=pick)
        content = airudder.UserInteractive(interactive=interactive)
    return airudder.UpstreamRequest(
        call_id=message.call_id,
        channel=envelope.channel,
        channel_id=envelope.channel_id,
        user=envelope.user,
        messages=[airudder.UserMessage(msg_id=message.id, timestamp=message.ts, content=content)],
    )


class _Permanent(Exception):
    """The upstream refused the request (4xx): retrying cannot help."""


class Forwarder:
    """One worker per call_id with pending messages, so a session's messages go in order."""

    def __init__(
        self,
        settings: Settings,
        url: str,
        store: Store,
        publish: Callable[[str, str, Sequence[Entry]], None],
        metrics: Metrics,
        http: aiohttp.ClientSession,
    ) -> None:
        self.settings = settings
        self.url = url
        self.store = store
        self.publish = publish  # the fan-out's: status frames reach every socket
        self.metrics = metrics
        self.http = http
        self._pending: dict[str, deque[int]] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._submitted: OrderedDict[tuple[str, int], bool] = OrderedDict()  # value: failed

    async def submit(self, call_id: str, seq: int) -> None:
        """Forward the person's message ``seq`` once; a re-sent frame does not send twice."""
        if (call_id, seq) in self._submitted:
            return
        self._remember(call_id, seq, failed=False)
        await self._status(call_id, seq, "sending")
        self._pending.setdefault(call_id, deque()).append(seq)
        if call_id not in self._workers:
            self._workers[call_id] = asyncio.create_task(self._drain(call_id))

    async def retry(self, call_id: str, seq: int) -> None:
        if not self._submitted.get((call_id, seq)):
            raise Refusal("not_failed", f"message {seq} has not failed here; nothing to retry")
        del self._submitted[(call_id, seq)]
        await self.submit(call_id, seq)

    async def close(self) -> None:
        for task in self._workers.values():
            task.cancel()
        await asyncio.gather(*self._workers.values(), return_exceptions=True)

    def _remember(self, call_id: str, seq: int, failed: bool) -> None:
        self._submitted[(call_id, seq)] = failed
        self._submitted.move_to_end((call_id, seq))
        while len(self._submitted) > REMEMBERED:
            self._submitted.popitem(last=False)

    async def _drain(self, call_id: str) -> None:
        queue = self._pending[call_id]
        try:
            while queue:
                seq = queue.popleft()
                try:
                    await self._forward(call_id, seq)
                except StoreUnavailable as exc:
                    # The message could not be read, or its outcome not recorded: offer a
                    # retry (a re-send carries the same msg_id, so the vendor de-duplicates).
                    self._remember(call_id, seq, failed=True)
                    log.warning("store down while forwarding: %s", exc, extra={"call_id": call_id})
        finally:
            del self._workers[call_id]
            del self._pending[call_id]

    async def _status(
        self, call_id: str, seq: int, status: DeliveryStatus, detail: str | None = None
    ) -> None:
        """Record it, and show it on every socket of the session."""
        epoch, frame = await self.store.set_status(call_id, seq, status, detail)
        self.publish(call_id, epoch, [(None, frame)])

    async def _forward(self, call_id: str, seq: int) -> None:
        message = await self.store.find(call_id, seq)
        if not isinstance(message, TextMessage):
            return  # trimmed away before its turn: nothing left to send
        choices = await self.store.find(call_id, message.reply_to.seq) if message.reply_to else None
        envelope = await self.store.envelope(call_id) or default_envelope(call_id)
        body = upstream_request(message, choices, envelope).model_dump_json(exclude_none=True)
        try:
            await self._post(body.encode(), call_id)
        except Exception as exc:  # every way of failing ends as "failed", never silently
            self.metrics.forwards.labels("failed").inc()
            self._remember(call_id, seq, failed=True)
            log.warning("upstream delivery failed: %s", exc, extra={"call_id": call_id})
            await self._status(call_id, seq, "failed", str(exc)[:200])
            return
        self.metrics.forwards.labels("sent").inc()
        await self._status(call_id, seq, "sent")

    async def _post(self, body: bytes, call_id: str) -> None:
        settings, url = self.settings, self.url
        headers = signing.signed_headers(body, settings)
        deadline = time.monotonic() + settings.upstream_max_seconds
        timeout = aiohttp.ClientTimeout(total=settings.upstream_timeout)
        for attempt in range(1, settings.upstream_attempts + 1):
            try:
                async with self.http.post(url, data=body, headers=headers, timeout=timeout) as resp:
                    if resp.status < 400:
                        return
                    if resp.status < 500:
                        raise _Permanent(f"upstream refused it: HTTP {resp.status}")
                    problem = f"HTTP {resp.status}"
            except (aiohttp.ClientError, TimeoutError) as exc:
                problem = f"{type(exc).__name__}: {exc}"
            delay = min(BACKOFF_CAP, settings.upstream_backoff * 2 ** (attempt - 1))
            delay *= random.uniform(0.5, 1.0)  # jitter: retries of many sessions spread out
            if attempt == settings.upstream_attempts or time.monotonic() + delay > deadline:
                raise RuntimeError(f"gave up after {attempt} attempts ({problem})")
            self.metrics.forwards.labels("retried").inc()
            log.info(
                "upstream attempt %d: %s; retrying", attempt, problem, extra={"call_id": call_id}
            )
            await asyncio.sleep(delay)
