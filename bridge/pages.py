"""The pages people open: the full-page chat, the demo page, and the widget's static files.

The demo sends the vendor's sample callbacks through the real ``POST /webhooks/airudder``
of this same server over HTTP (signed when a secret is configured), so what the demo shows
is exactly what a real callback produces.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

import aiohttp_jinja2
import jinja2
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bridge import airudder, samples
from bridge.demo_bot import origin_of, post_callback
from bridge.keys import SETTINGS
from bridge.views import json_error, json_response, valid_call_id, validation_detail

# The bundled picture: the seed's media URLs point at a host that may be unreachable, which
# shows the widget's "could not be loaded" fallback; this one always loads.
LOCAL_IMAGE = "/static/demo/sample.svg"
SAMPLES = (*samples.KINDS, "image_local", "all")


def setup(app: web.Application) -> None:
    settings = app[SETTINGS]
    aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(settings.templates_dir),
        autoescape=jinja2.select_autoescape(("html",)),
    )
    app.router.add_static("/static/", settings.static_dir, name="static")
    app.router.add_get("/chat/{call_id}", chat_page)
    if settings.demo_enabled():  # it signs what anyone asks: not for production
        app.router.add_get("/demo", demo_page)
        app.router.add_post("/demo/send", demo_send)


def _page(template: str, request: web.Request, context: dict[str, Any]) -> web.Response:
    # Its Content-Security-Policy (no inline code) is added by bridge.security, as for
    # every HTML response.
    return aiohttp_jinja2.render_template(template, request, context)


async def chat_page(request: web.Request) -> web.Response:
    """``/chat/{call_id}``: the widget filling the whole page (phones, iframes)."""
    call_id = valid_call_id(request.match_info["call_id"])
    context = {
        "call_id": call_id,
        "lang": request.query.get("lang", ""),
        "title": request.query.get("title", ""),
        "token": request.query.get("token", ""),
    }
    return _page("chat.html", request, context)


async def demo_page(request: web.Request) -> web.Response:
    """``/demo``: without ``?call_id=`` it redirects to a new random one, so a reload keeps
    the session (and shows its history again)."""
    raw = request.query.get("call_id", "").strip()
    if not raw:
        raise web.HTTPFound(f"/demo?call_id=demo-{secrets.token_hex(6)}")
    call_id = valid_call_id(raw)
    context = {
        "call_id": call_id,
        "samples": [
            ("text", "Text"),
            ("image", "Image"),
            ("image_local", "Local image"),
            ("video", "Video"),
            ("audio", "Audio"),
            ("file", "File"),
            ("list", "List"),
            ("button", "Buttons"),
        ],
        "signed": bool(request.app[SETTINGS].signing_secrets()),
        "demo_bot": not request.app[SETTINGS].upstream_url,
    }
    return _page("demo.html", request, context)


class DemoSend(BaseModel):
    model_config = ConfigDict(extra="forbid")

    call_id: airudder.CallId
    sample: str = Field(pattern="^(" + "|".join(SAMPLES) + ")$")


def demo_callback(call_id: str, sample: str, origin: str) -> dict[str, Any]:
    """The seed's callback (or one message of it) for ``call_id``, with a fresh msg_id and
    time per message: the bridge drops a retried identical body on purpose, and a demo
    click should always show."""
    if sample == "all":
        messages = samples.seed_callback()["messages"]
    elif sample == "image_local":
        message = samples.sample_message("image")
        message["content"]["media"]["origin_url"] = origin + LOCAL_IMAGE
        messages = [message]
    else:
        messages = [samples.sample_message(sample)]
    now = int(time.time())
    fresh = [{**m, "msg_id": secrets.token_hex(16), "timestamp": now} for m in messages]
    return samples.callback(call_id, *fresh)


async def demo_send(request: web.Request) -> web.Response:
    """``POST /demo/send {"call_id", "sample"}``: post a sample callback to this server's own
    webhook over real HTTP, and show what was sent and what came back."""
    try:
        ask = DemoSend.model_validate_json(await request.read())
    except ValidationError as exc:
        if any(e["type"] == "json_invalid" for e in exc.errors()):
            return json_error(400, "invalid_json", "the body is not valid JSON")
        return json_error(422, "invalid_request", validation_detail(exc))
    origin = origin_of(request)
    callback = demo_callback(ask.call_id, ask.sample, origin)
    status, answer = await post_callback(request.app, origin, callback)
    return json_response({"request": callback, "status": status, "response": answer})
