"""The application factory: routes, shared objects and their life cycle."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import WSCloseCode, web

from bridge import demo
from bridge.config import Settings
from bridge.delivery.forwarder import Forwarder
from bridge.keys import (
    FANOUT,
    FORWARDER,
    HTTP,
    METRICS,
    SETTINGS,
    SLOTS,
    SOCKETS,
    STORE,
    VERIFIER,
)
from bridge.limits import SocketSlots
from bridge.live.fanout import open_fanout
from bridge.metrics import Metrics
from bridge.store import open_store
from bridge.vendor import signing
from bridge.web import admin, pages, security, views
from bridge.web.errors import error_middleware

log = logging.getLogger(__name__)

UPSTREAM_URL = web.AppKey("upstream_url", str)


def create_app(settings: Settings | None = None) -> web.Application:
    settings = settings or Settings()
    app = web.Application(client_max_size=settings.max_body_bytes, middlewares=[error_middleware])
    app[SETTINGS] = settings
    app[METRICS] = Metrics()
    app[SOCKETS] = set()
    app[SLOTS] = SocketSlots(settings.max_sockets, settings.max_sockets_per_call)
    app[VERIFIER] = signing.Verifier.of(settings)
    security.setup(app)
    views.setup_routes(app)
    admin.setup(app)
    pages.setup(app)
    # With no upstream configured, the demo bot answers people: an upstream like any other.
    demo_bot_url = demo.setup(app)
    app[UPSTREAM_URL] = settings.upstream_url or demo_bot_url or ""
    app.cleanup_ctx.append(_store)
    app.cleanup_ctx.append(_forwarder)
    app.on_shutdown.append(_close_sockets)
    return app


async def _store(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    store = app[STORE] = await open_store(settings)  # first: a refusal to start comes alone
    if not settings.signing_secrets():
        log.warning("BRIDGE_SIGNING_SECRET is not set: callbacks are NOT verified (development)")
    fanout = app[FANOUT] = await open_fanout(settings, store)
    app[METRICS].count_sessions(store.session_count)
    yield
    await fanout.close()
    await store.close()


async def _forwarder(app: web.Application) -> AsyncIterator[None]:
    if not app[SETTINGS].upstream_url:
        log.warning("BRIDGE_UPSTREAM_URL is not set: the built-in demo bot answers people")
    async with aiohttp.ClientSession() as http:
        app[HTTP] = http
        forwarder = app[FORWARDER] = Forwarder(
            app[SETTINGS], app[UPSTREAM_URL], app[STORE], app[FANOUT].publish, app[METRICS], http
        )
        await forwarder.start()
        yield
        await forwarder.close()


async def _close_sockets(app: web.Application) -> None:
    sockets = app[SOCKETS]
    for ws in list(sockets):  # closing removes them from the set
        await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")
