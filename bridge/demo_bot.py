"""A small bot built in for the demo: with no ``BRIDGE_UPSTREAM_URL`` the person's messages
are forwarded here, and it answers the way the vendor does, through the real
``POST /webhooks/airudder`` of this same server. So a fresh machine shows the whole loop."""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from typing import Any

import aiohttp
import orjson
from aiohttp import web
from pydantic import ValidationError

from bridge import airudder, samples
from bridge.keys import BACKGROUND, HTTP, SETTINGS

log = logging.getLogger(__name__)

MENU_WORDS = ("menu", "list", "菜单", "业务", "列表")
CHOICE_WORDS = ("button", "choice", "choose", "gender", "按钮", "选择", "性别")
HELP = "Type “menu” for a list, or “buttons” for quick replies. 输入“菜单”或“按钮”试试。"


def replies(request: airudder.UpstreamRequest) -> list[dict[str, Any]]:
    """The bot's answer, as vendor messages, to what the person said."""
    content = request.messages[0].content
    msg_id = secrets.token_hex(16)
    if isinstance(content, airudder.UserInteractive):
        pick = content.interactive.button_reply or content.interactive.list_reply
        title = pick.title if pick else "?"
        return [samples.text_message(f"You picked “{title}”. 您选择了“{title}”。", msg_id)]
    text = content.text.strip().lower()
    if any(word in text for word in MENU_WORDS):
        return [_fresh(samples.sample_message("list"), msg_id)]
    if any(word in text for word in CHOICE_WORDS):
        return [_fresh(samples.sample_message("button"), msg_id)]
    return [
        samples.text_message(f"You said: {content.text}", msg_id),
        samples.text_message(HELP, secrets.token_hex(16)),
    ]


def _fresh(message: dict[str, Any], msg_id: str) -> dict[str, Any]:
    """A new msg_id and time, so the bridge's retry de-duplication sees a new message."""
    return {**message, "msg_id": msg_id, "timestamp": int(time.time())}


async def inbound(request: web.Request) -> web.Response:
    """Where the forwarder posts when no upstream is configured: answer 200 at once, as a
    real bot would, and reply a moment later with a callback."""
    settings = request.app[SETTINGS]
    body = await request.read()
    keys = settings.signing_secrets()
    if keys and not airudder.verify(
        body, request.headers.get("X-AIRudder-Sign"), keys, settings.signing_scheme
    ):
        raise web.HTTPUnauthorized(text="X-AIRudder-Sign is missing or does not match")
    try:
        said = airudder.UpstreamRequest.model_validate_json(body)
    except ValidationError as exc:
        raise web.HTTPUnprocessableEntity(text=str(exc.errors()[0]["msg"])) from None
    callback = samples.callback(said.call_id, *replies(said))
    callback.update(channel=said.channel, channel_id=said.channel_id, user=said.user.model_dump())
    task = asyncio.create_task(_reply(request.app, origin_of(request), callback))
    request.app[BACKGROUND].add(task)
    task.add_done_callback(request.app[BACKGROUND].discard)
    return web.json_response({})


async def _reply(app: web.Application, origin: str, callback: dict[str, Any]) -> None:
    await asyncio.sleep(0.3)  # a bot takes a moment; the person sees their message first
    try:
        status, _ = await post_callback(app, origin, callback)
        if status != 200:
            log.warning("demo bot reply refused: HTTP %s", status)
    except aiohttp.ClientError as exc:
        log.warning("demo bot could not reply: %s", exc)


async def post_callback(
    app: web.Application, origin: str, callback: dict[str, Any]
) -> tuple[int, Any]:
    """POST ``callback`` to this server's own webhook as the vendor would: over HTTP, signed
    with the first configured secret. Returns the status and the decoded JSON answer."""
    settings = app[SETTINGS]
    body = orjson.dumps(callback)
    headers = {"Content-Type": "application/json"}
    keys = settings.signing_secrets()
    if keys:
        headers["X-AIRudder-Sign"] = airudder.sign(body, keys[0], settings.signing_scheme)
    async with app[HTTP].post(f"{origin}/webhooks/airudder", data=body, headers=headers) as resp:
        return resp.status, await resp.json(content_type=None)


def origin_of(request: web.Request) -> str:
    """This server's own address as seen on ``request``'s connection (so a server bound to
    0.0.0.0 or a random test port can call itself)."""
    sockname = request.transport.get_extra_info("sockname") if request.transport else None
    if not sockname:
        return f"http://{request.host}"
    host, port = sockname[0], sockname[1]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
