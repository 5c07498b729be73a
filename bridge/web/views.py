"""HTTP handlers, kept thin: the webhook, the socket handshake, health and metrics."""

from __future__ import annotations

import asyncio
import logging
import time

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import ValidationError

from bridge import logs, widget
from bridge.keys import FANOUT, METRICS, SETTINGS, SLOTS, STORE
from bridge.limits import FrameGate
from bridge.live.socket import Socket
from bridge.refusals import Refusal, StoreUnavailable
from bridge.vendor import airudder
from bridge.web import security
from bridge.web.body import read_signed
from bridge.web.errors import expect, invalid_body, json_response
from bridge.web.params import query_int, valid_call_id

log = logging.getLogger(__name__)

HEALTH_WAIT = 0.25  # seconds /healthz waits for the store's answer


async def callback(request: web.Request) -> web.Response:
    """The vendor's "callback: bot reply message"."""
    settings, metrics = request.app[SETTINGS], request.app[METRICS]
    body = await read_signed(request)
    try:
        received = airudder.receive(body)
    except ValidationError as exc:
        raise invalid_body(exc, "invalid_payload") from None
    payload = received.callback
    request[logs.CALL_ID] = payload.call_id  # for the access log
    if payload.event != airudder.MESSAGE_SEND:
        log.warning("ignored callback event %r", payload.event, extra={"call_id": payload.call_id})
        metrics.ignored.inc()
        return json_response({})
    if settings.max_callback_age is not None:
        _not_too_old(payload, settings.max_callback_age)
    items = widget.translate_callback(received)
    envelope = airudder.Envelope.of(payload)
    store = request.app[STORE]
    appending = store.append(payload.call_id, items, envelope=envelope)
    if store.deadline is None:
        appended = await appending
    else:
        try:  # one store timeout, whatever the store retries inside it: then the vendor retries
            async with asyncio.timeout(store.deadline):
                appended = await appending
        except TimeoutError:
            raise StoreUnavailable("the session store did not answer in time") from None
    request.app[FANOUT].publish(payload.call_id, appended.epoch, appended.frames)
    metrics.stored.inc()
    return json_response({})


def _not_too_old(payload: airudder.Callback, max_age: float) -> None:
    """Refuse (422, not retried) a body with a message stamped more than ``max_age`` seconds
    ago: a captured body replayed after its identities were forgotten (docs/security.md)."""
    oldest = time.time() - max_age
    for index, message in enumerate(payload.messages):
        if message.timestamp < oldest:
            raise Refusal(
                "message_too_old",
                f"messages.{index}.timestamp: {message.timestamp} is more than "
                f"BRIDGE_MAX_CALLBACK_AGE ({max_age:g} s) ago; nothing was stored",
                status=422,
            )


async def websocket(request: web.Request) -> web.StreamResponse:
    """``/ws/{call_id}?after=SEQ&epoch=E&token=T``: replay, ``ready``, then live messages.

    Origin, token and socket limits are checked before the upgrade: a refused client gets
    a JSON answer and no frame of the session."""
    call_id = valid_call_id(request.match_info["call_id"])
    if not all(value.isascii() for value in request.headers.values()):
        # aiohttp's own refusal of a bad handshake echoes the header, and fails on non-ASCII
        raise Refusal("bad_request", "request headers must be ASCII for a WebSocket")
    after = query_int(request, "after")
    epoch = request.query.get("epoch") or None
    token_expires = security.admit(request, call_id)
    with request.app[SLOTS].take(call_id):
        socket = Socket(request, call_id, FrameGate(request.app[SETTINGS], token_expires))
        await socket.serve(after, epoch)
    return socket.ws


async def widget_schema(request: web.Request) -> web.Response:
    return json_response(widget.json_schema())


async def healthz(request: web.Request) -> web.Response:
    """The process is alive: always 200, at once, so a supervisor never restarts a bridge
    for a Redis outage it recovers from by itself (a liveness probe's timeout is often 1 s).
    ``store`` tells a person whether the session store answered within ``HEALTH_WAIT``
    (``unknown`` when it did not); load balancers should use /readyz."""
    try:
        async with asyncio.timeout(HEALTH_WAIT):
            store = "up" if await request.app[STORE].ping() else "down"
    except TimeoutError:
        store = "unknown"
    return json_response({"status": "ok", "store": store})


async def readyz(request: web.Request) -> web.Response:
    """The store is reachable: 503 tells a load balancer to send traffic elsewhere."""
    if await request.app[STORE].ping():
        return json_response({"status": "ok", "store": "up"})
    return json_response({"status": "unavailable", "store": "down"}, 503)


async def metrics(request: web.Request) -> web.Response:
    return web.Response(
        body=request.app[METRICS].exposition(),
        headers={"Content-Type": CONTENT_TYPE_LATEST},
    )


def setup_routes(app: web.Application) -> None:
    app.router.add_post("/webhooks/airudder", callback, expect_handler=expect)
    app.router.add_get("/ws/{call_id}", websocket, expect_handler=expect)
    app.router.add_get("/schema/widget-message.json", widget_schema, expect_handler=expect)
    app.router.add_get("/healthz", healthz, expect_handler=expect)
    app.router.add_get("/readyz", readyz, expect_handler=expect)
    app.router.add_get("/metrics", metrics, expect_handler=expect)
