"""The demo page: pick a sample, and it goes through the real ``POST /webhooks/airudder`` of
this same server over HTTP (signed when a secret is configured), so what the demo shows is
exactly what a real callback produces."""

from __future__ import annotations

import secrets
import time
from typing import Any

import aiohttp_jinja2
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bridge.demo import samples
from bridge.demo.bot import post_callback
from bridge.keys import SETTINGS
from bridge.vendor import airudder
from bridge.web.body import read_body
from bridge.web.errors import invalid_body, json_response
from bridge.web.params import valid_call_id

# The bundled picture: the seed's media URLs point at a host that may be unreachable, which
# shows the widget's "could not be loaded" fallback; this one always loads.
LOCAL_IMAGE = "/static/demo/sample.svg"
SAMPLES = (*samples.KINDS, "image_local", "all")
BUTTONS = [
    ("text", "Text"),
    ("image", "Image"),
    ("image_local", "Local image"),
    ("video", "Video"),
    ("audio", "Audio"),
    ("file", "File"),
    ("list", "List"),
    ("button", "Buttons"),
]


async def demo_page(request: web.Request) -> web.Response:
    """``/demo``: without ``?call_id=`` it redirects to a new random one, so a reload keeps
    the session (and shows its history again)."""
    raw = request.query.get("call_id", "").strip()
    if not raw:
        raise web.HTTPFound(f"/demo?call_id=demo-{secrets.token_hex(6)}")
    settings = request.app[SETTINGS]
    context = {
        "call_id": valid_call_id(raw),
        "samples": BUTTONS,
        "signed": bool(settings.signing_secrets()),
        "demo_bot": not settings.upstream_url,
    }
    return aiohttp_jinja2.render_template("demo.html", request, context)


class DemoSend(BaseModel):
    model_config = ConfigDict(extra="forbid")

    call_id: airudder.CallId
    sample: str = Field(pattern="^(" + "|".join(SAMPLES) + ")$")


def demo_callback(call_id: str, sample: str, origin: str) -> dict[str, Any]:
    """The seed's callback (or one message of it) for ``call_id``, with a fresh msg_id and
    time per message: the bridge drops a retried identical body on purpose, and a demo
    click should always show. ``origin`` is the page's, for the bundled image."""
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
        ask = DemoSend.model_validate_json(await read_body(request))
    except ValidationError as exc:
        raise invalid_body(exc, "invalid_request") from None
    origin = f"{request.scheme}://{request.host}"  # as the browser reaches us
    callback = demo_callback(ask.call_id, ask.sample, origin)
    status, answer = await post_callback(request.app, callback)
    return json_response({"request": callback, "status": status, "response": answer})
