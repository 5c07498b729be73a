"""The demo: a page that posts the vendor's samples, and a small bot that answers people.

Only the application factory mounts it; no other module imports it."""

from __future__ import annotations

from aiohttp import web

from bridge.demo import bot, pages
from bridge.keys import SETTINGS
from bridge.web.errors import expect


def setup(app: web.Application) -> str | None:
    """Mount what the settings ask for; returns the bot's URL when it is the upstream."""
    settings = app[SETTINGS]
    app[bot.SELF_URL] = bot.self_url(settings.host, settings.port)
    if settings.demo_enabled():  # it signs what anyone asks: not for production
        app.router.add_get("/demo", pages.demo_page, expect_handler=expect)
        app.router.add_post("/demo/send", pages.demo_send, expect_handler=expect)
    if settings.upstream_url:
        return None
    app.cleanup_ctx.append(bot.replies_ctx)
    app.router.add_post("/demo/bot", bot.inbound, expect_handler=expect)
    return f"{app[bot.SELF_URL]}/demo/bot"
