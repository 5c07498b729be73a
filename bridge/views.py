"""HTTP and WebSocket handlers. Kept thin: parsing and answers here, logic elsewhere."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import WebSocketError, WSCloseCode, WSMsgType, web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import TypeAdapter, ValidationError

from bridge import airudder, demo_bot, frames, security, widget
from bridge.conversation import Conversation
from bridge.errors import HandshakeRefused
from bridge.hub import StoreUnavailable
from bridge.keys import FORWARDER, HUB, METRICS, SETTINGS, SLOTS, SOCKETS
from bridge.limits import FrameGate
from bridge.sockets import Connection

log = logging.getLogger(__name__)

CALL_ID: TypeAdapter[str] = TypeAdapter(airudder.CallId)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


def json_error(status: int, code: str, detail: Any) -> web.Response:
    return json_response({"error": code, "detail": detail}, status)


def validation_detail(exc: ValidationError) -> list[dict[str, str]]:
    return [
        {"path": airudder.error_path(e["loc"]) or "(body)", "message": e["msg"]}
        for e in exc.errors(include_url=False, include_input=False)
    ]


_HTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
}


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error leaves as JSON ``{"error", "detail"}``; nothing escapes as a bare 500."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _HTTP_CODES.get(exc.status, exc.reason.lower().replace(" ", "_"))
        request.app[METRICS].rejections.labels(code).inc()
        return json_error(exc.status, code, exc.text or exc.reason)
    except HandshakeRefused as exc:
        request.app[METRICS].rejections.labels(exc.code).inc()
        log.info(
            "refused %s: %s",
            request.path,
            exc.code,
            extra={"call_id": request.match_info.get("call_id")},
        )
        return json_error(exc.status, exc.code, exc.detail)
    except StoreUnavailable as exc:
        log.warning("store unavailable on %s %s: %s", request.method, request.path, exc)
        request.app[METRICS].rejections.labels("store_unavailable").inc()
        return json_error(503, "store_unavailable", str(exc) or "the session store is down")
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return json_error(500, "internal_error", "unexpected error; it has been logged")


async def callback(request: web.Request) -> web.Response:
    """The vendor's "callback: bot reply message"."""
    settings, metrics = request.app[SETTINGS], request.app[METRICS]
    body = await request.read()
    secrets = settings.signing_secrets()
    if secrets and not airudder.verify(
        body, request.headers.get("X-AIRudder-Sign"), secrets, settings.signing_scheme
    ):
        metrics.rejections.labels("bad_signature").inc()
        return json_error(401, "bad_signature", "X-AIRudder-Sign is missing or does not match")
    try:
        payload = airudder.parse_callback(body)
    except ValidationError as exc:
        if any(e["type"] == "json_invalid" for e in exc.errors()):
            metrics.rejections.labels("invalid_json").inc()
            return json_error(400, "invalid_json", "the body is not valid JSON")
        metrics.rejections.labels("invalid_payload").inc()
        return json_error(422, "invalid_payload", validation_detail(exc))
    if payload.event != airudder.MESSAGE_SEND:
        log.warning("ignored callback event %r", payload.event, extra={"call_id": payload.call_id})
        metrics.callbacks.labels("other", "ignored").inc()
        return json_response({})
    items = widget.translate_callback(payload)
    await request.app[HUB].append(payload.call_id, items, envelope=airudder.Envelope.of(payload))
    metrics.callbacks.labels(payload.event, "stored").inc()
    return json_response({})


def _query_int(request: web.Request, name: str) -> int | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    if not raw.isdigit() or len(raw) > 18:
        raise web.HTTPBadRequest(text=f"{name} must be a non-negative integer")
    return int(raw)


def valid_call_id(raw: str) -> str:
    """``raw`` if it is a well-formed call_id; a JSON 400 otherwise."""
    try:
        return CALL_ID.validate_python(raw)
    except ValidationError:
        raise web.HTTPBadRequest(
            text="call_id must be 1-128 characters of A-Z a-z 0-9 _ . : @ -"
        ) from None


async def websocket(request: web.Request) -> web.StreamResponse:
    """``/ws/{call_id}?after=SEQ&epoch=E&token=T``: replay, ``ready``, then live messages.

    Origin, token and socket limits are checked before the upgrade: a refused client gets
    a JSON answer and no frame of the session."""
    settings = request.app[SETTINGS]
    call_id = valid_call_id(request.match_info["call_id"])
    after = _query_int(request, "after")
    epoch = request.query.get("epoch") or None
    token_expires = security.admit(request, call_id)
    with request.app[SLOTS].take(call_id):
        ws = web.WebSocketResponse(
            heartbeat=settings.ws_heartbeat, compress=False, max_msg_size=settings.ws_max_msg_size
        )
        await ws.prepare(request)
        await _serve_socket(request, ws, call_id, after, epoch, FrameGate(settings, token_expires))
    return ws


async def _serve_socket(
    request: web.Request,
    ws: web.WebSocketResponse,
    call_id: str,
    after: int | None,
    epoch: str | None,
    gate: FrameGate,
) -> None:
    metrics = request.app[METRICS]
    settings = request.app[SETTINGS]
    conn = Connection(request, ws, call_id, request.app[HUB], metrics, settings.send_queue)
    request.app[SOCKETS].add(ws)
    metrics.sockets.inc()
    person = Conversation(
        conn, request.app[HUB], request.app[FORWARDER], settings, demo_bot.origin_of(request)
    )
    try:
        await conn.start(after, epoch)
        async for msg in ws:
            if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                if msg.type is WSMsgType.ERROR and _too_big(msg.data):  # aiohttp sent 1009
                    metrics.rejections.labels("frame_too_large").inc()
                continue
            refusal = gate.check()
            if refusal is not None:
                metrics.rejections.labels(refusal.code).inc()
                if refusal.close:
                    log.info("closing a socket: %s", refusal.detail, extra={"call_id": call_id})
                    await conn.close(WSCloseCode.POLICY_VIOLATION, refusal.detail)
                    break
                await conn.send(
                    frames.error(refusal.code, refusal.detail, _client_msg_id(msg.data))
                )
            elif msg.type is WSMsgType.TEXT:
                await person.receive(msg.data)
            else:
                await conn.send(frames.error("invalid_frame", "frames are JSON text"))
    finally:
        metrics.sockets.dec()
        request.app[SOCKETS].discard(ws)
        await conn.stop()


def _too_big(error: object) -> bool:
    return isinstance(error, WebSocketError) and error.code == WSCloseCode.MESSAGE_TOO_BIG


def _client_msg_id(data: str | bytes) -> str | None:
    """The client_msg_id of a frame refused unread, so the widget knows which one it was."""
    try:
        value = orjson.loads(data).get("client_msg_id")
    except (orjson.JSONDecodeError, AttributeError):
        return None
    return value if isinstance(value, str) else None


async def widget_schema(request: web.Request) -> web.Response:
    return json_response(widget.json_schema())


async def healthz(request: web.Request) -> web.Response:
    """The process is alive: always 200, so a supervisor never restarts a bridge for a Redis
    outage it recovers from by itself. ``store`` tells a person whether the session store
    answers; load balancers should use /readyz."""
    store = "up" if await request.app[HUB].ping() else "down"
    return json_response({"status": "ok", "store": store})


async def readyz(request: web.Request) -> web.Response:
    """The store is reachable: 503 tells a load balancer to send traffic elsewhere."""
    if await request.app[HUB].ping():
        return json_response({"status": "ok", "store": "up"})
    return json_response({"status": "unavailable", "store": "down"}, 503)


async def metrics(request: web.Request) -> web.Response:
    return web.Response(
        body=generate_latest(request.app[METRICS].registry),
        headers={"Content-Type": CONTENT_TYPE_LATEST},
    )


def setup_routes(app: web.Application) -> None:
    app.router.add_post("/webhooks/airudder", callback)
    app.router.add_get("/ws/{call_id}", websocket)
    app.router.add_get("/schema/widget-message.json", widget_schema)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
