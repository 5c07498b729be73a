"""The pages people open: the full-page chat, and the widget's static files."""

from __future__ import annotations

import aiohttp_jinja2
import jinja2
from aiohttp import web

from bridge.keys import SETTINGS
from bridge.web.errors import expect
from bridge.web.params import valid_call_id


def setup(app: web.Application) -> None:
    settings = app[SETTINGS]
    aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(settings.templates_dir),
        autoescape=jinja2.select_autoescape(("html",)),
    )
    app.router.add_static("/static/", settings.static_dir, name="static", expect_handler=expect)
    app.router.add_get("/chat/{call_id}", chat_page, expect_handler=expect)


async def chat_page(request: web.Request) -> web.Response:
    """``/chat/{call_id}``: the widget filling the whole page (phones, iframes). Its
    Content-Security-Policy (no inline code) is added by bridge.web.security."""
    call_id = valid_call_id(request.match_info["call_id"])
    context = {
        "call_id": call_id,
        "lang": request.query.get("lang", ""),
        "title": request.query.get("title", ""),
        "token": request.query.get("token", ""),
    }
    return aiohttp_jinja2.render_template("chat.html", request, context)
