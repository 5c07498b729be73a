"""The application factory: routes, shared objects and their life cycle."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import WSCloseCode, web

from bridge import demo_bot, pages, security, views
from bridge.config import Settings
from bridge.hub import Hub, MemoryHub
from bridge.keys import BACKGROUND, FORWARDER, HTTP, HUB, METRICS, SETTINGS, SLOTS, SOCKETS
from bridge.limits import SocketSlots
from bridge.metrics import Metrics
from bridge.upstream import Forwarder

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> web.Application:
    settings = settings or Settings()
    app = web.Application(
        client_max_size=settings.max_body_bytes, middlewares=[views.error_middleware]
    )
    app[SETTINGS] = settings
    app[METRICS] = Metrics()
    app[SOCKETS] = set()
    app[SLOTS] = SocketSlots(settings.max_sockets, settings.max_sockets_per_call)
    app[BACKGROUND] = set()
    security.setup(app)
    app.cleanup_ctx.append(_hub)
    app.cleanup_ctx.append(_forwarder)
    app.on_shutdown.append(_close_sockets)
    views.setup_routes(app)
    pages.setup(app)
    if not settings.upstream_url:
        app.router.add_post("/demo/bot", demo_bot.inbound)
    return app


async def _hub(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    if not settings.signing_secrets():
        log.warning("BRIDGE_SIGNING_SECRET is not set: callbacks are NOT verified (development)")
    hub = app[HUB] = await open_hub(settings)
    sweeper = None
    if isinstance(hub, MemoryHub):
        memory = hub
        app[METRICS].sessions.set_function(lambda: memory.session_count)  # read when scraped
        sweeper = asyncio.create_task(_sweep(app))
    yield
    if sweeper is not None:
        sweeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sweeper
    await hub.close()


async def open_hub(settings: Settings) -> Hub:
    """The session store the settings ask for: Redis when ``redis_url`` is set."""
    if settings.redis_url:
        from bridge.redis_hub import RedisHub  # only deployments on Redis need the client

        return await RedisHub.connect(settings)
    return MemoryHub(settings.history_limit, settings.session_ttl, settings.max_sessions)


async def _forwarder(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    if not settings.upstream_url:
        log.warning("BRIDGE_UPSTREAM_URL is not set: the built-in demo bot answers people")
    async with aiohttp.ClientSession() as http:
        app[HTTP] = http
        app[FORWARDER] = Forwarder(settings, app[HUB], app[METRICS], http)
        yield
        await app[FORWARDER].close()
        tasks = app[BACKGROUND]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _sweep(app: web.Application) -> None:
    hub = app[HUB]
    assert isinstance(hub, MemoryHub)
    while True:
        await asyncio.sleep(app[SETTINGS].sweep_interval)
        hub.sweep()


async def _close_sockets(app: web.Application) -> None:
    sockets = app[SOCKETS]
    for ws in list(sockets):  # closing removes them from the set
        await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")
