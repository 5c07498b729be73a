"""A small bot built in for the demo: with no ``BRIDGE_UPSTREAM_URL`` the person's messages
are forwarded here like to any upstream, and it answers the way the vendor does, through
the real ``POST /webhooks/airudder`` of this same server. So a fresh machine shows the
whole loop."""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
from aiohttp import web
from pydantic import ValidationError

from bridge.demo import samples
from bridge.keys import HTTP, SETTINGS
from bridge.vendor import airudder, signing
from bridge.web.body import read_signed
from bridge.web.errors import invalid_body

log = logging.getLogger(__name__)

MENU_WORDS = ("menu", "list", "菜单", "业务", "列表")
CHOICE_WORDS = ("button", "choice", "choose", "gender", "按钮", "选择", "性别")
HELP = "Type “menu” for a list, or “buttons” for quick replies. 输入“菜单”或“按钮”试试。"
THINKING = 0.3  # a bot takes a moment; the person sees their message first

# This server's own address, for calling its own webhook (worked out once at start).
SELF_URL = web.AppKey("demo_self_url", str)
REPLIES = web.AppKey("demo_replies", set[asyncio.Task[None]])


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
    """The bot's upstream endpoint: answer 200 at once, as a real bot would, and reply a
    moment later with a callback."""
    body = await read_signed(request)
    try:
        said = airudder.UpstreamRequest.model_validate_json(body)
    except ValidationError as exc:
        raise invalid_body(exc, "invalid_request") from None
    callback = samples.callback(said.call_id, *replies(said))
    callback.update(channel=said.channel, channel_id=said.channel_id, user=said.user.model_dump())
    task = asyncio.create_task(_reply(request.app, callback))
    request.app[REPLIES].add(task)
    task.add_done_callback(request.app[REPLIES].discard)
    return web.json_response({})


async def _reply(app: web.Application, callback: dict[str, Any]) -> None:
    await asyncio.sleep(THINKING)
    try:
        status, _ = await post_callback(app, callback)
        if status != 200:
            log.warning("demo bot reply refused: HTTP %s", status)
    except aiohttp.ClientError as exc:
        log.warning("demo bot could not reply: %s", exc)


async def post_callback(app: web.Application, callback: dict[str, Any]) -> tuple[int, Any]:
    """POST ``callback`` to this server's own webhook as the vendor would: over HTTP, signed
    with the first configured secret. Returns the status and the decoded JSON answer."""
    body = orjson.dumps(callback)
    headers = signing.signed_headers(body, app[SETTINGS])
    url = f"{app[SELF_URL]}/webhooks/airudder"
    async with app[HTTP].post(url, data=body, headers=headers) as resp:
        return resp.status, await resp.json(content_type=None)


def self_url(host: str, port: int) -> str:
    """How this server reaches itself: a wildcard bind answers on the loopback address."""
    if host in ("", "0.0.0.0"):  # noqa: S104 - compared, not bound
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


async def replies_ctx(app: web.Application) -> AsyncIterator[None]:
    """Replies still waiting when the server stops are dropped, not left running."""
    app[REPLIES] = set()
    yield
    for task in app[REPLIES]:
        task.cancel()
    await asyncio.gather(*app[REPLIES], return_exceptions=True)
