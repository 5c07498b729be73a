"""``POST /admin/forget``: delete one conversation everywhere (a privacy request).

The body ``{"call_id": ..., "ts": unix seconds}`` is signed like a callback, with the
signing secret; a request older than ``MAX_AGE`` is refused so a captured one cannot be
replayed later. Without a signing secret the endpoint answers 403: nobody could be told
apart from anybody. ``airudder-bridge forget CALL_ID`` is its client."""

from __future__ import annotations

import logging
import time

import orjson
from aiohttp import web
from pydantic import BaseModel, ConfigDict, ValidationError

from bridge.keys import SETTINGS, STORE
from bridge.refusals import Refusal
from bridge.vendor import airudder
from bridge.web.body import read_signed
from bridge.web.errors import expect, invalid_body, json_response

log = logging.getLogger(__name__)

PATH = "/admin/forget"
MAX_AGE = 300.0  # seconds a signed request stays valid, either way (clock skew)


class ForgetRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    call_id: airudder.CallId
    ts: float


def request_body(call_id: str, now: float | None = None) -> bytes:
    return orjson.dumps({"call_id": call_id, "ts": time.time() if now is None else now})


async def forget(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    if not settings.signing_secrets():
        raise Refusal("admin_disabled", "set BRIDGE_SIGNING_SECRET to use /admin", status=403)
    body = await read_signed(request)
    try:
        ask = ForgetRequest.model_validate_json(body)
    except ValidationError as exc:
        raise invalid_body(exc, "invalid_request") from None
    if abs(time.time() - ask.ts) > MAX_AGE:
        raise Refusal("stale_request", f"ts is more than {MAX_AGE:g} s away from now", status=401)
    forgotten = await request.app[STORE].forget(ask.call_id)
    log.warning("forgot conversation on request", extra={"call_id": ask.call_id})
    return json_response({"call_id": ask.call_id, "forgotten": forgotten})


def setup(app: web.Application) -> None:
    app.router.add_post(PATH, forget, expect_handler=expect)
