"""Baselines B1 and B2: python-socketio's ``AsyncServer`` on aiohttp, what most Python
developers would pick for "rooms over WebSocket". A browser joins the room named by the
``call_id`` query parameter; the callback POST is parsed with orjson and its messages are
emitted to that room. B2 is the same with ``AsyncRedisManager`` (``--redis-url``)."""

from __future__ import annotations

import argparse
from typing import Any
from urllib.parse import parse_qs

import orjson
import socketio  # type: ignore[import-untyped]
from aiohttp import web

from bridge.cli import new_event_loop


def create_app(redis_url: str | None) -> web.Application:
    manager = socketio.AsyncRedisManager(redis_url) if redis_url else None
    # Defaults otherwise (stdlib json, ping every 25 s): what a newcomer gets.
    sio = socketio.AsyncServer(
        async_mode="aiohttp", client_manager=manager, transports=["websocket"]
    )

    @sio.event  # type: ignore[untyped-decorator]
    async def connect(sid: str, environ: dict[str, Any], auth: Any) -> None:
        call_id = parse_qs(environ.get("QUERY_STRING", "")).get("call_id", [""])[0]
        await sio.enter_room(sid, call_id)

    async def callback(request: web.Request) -> web.Response:
        payload = orjson.loads(await request.read())
        await sio.emit("message", payload["messages"], to=payload["call_id"])
        return web.Response(body=b"{}", content_type="application/json")

    async def healthz(request: web.Request) -> web.Response:
        return web.Response(body=b"{}", content_type="application/json")

    app = web.Application()
    sio.attach(app)
    app.router.add_post("/webhooks/airudder", callback)
    app.router.add_get("/healthz", healthz)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis-url")
    args = parser.parse_args()
    web.run_app(
        create_app(args.redis_url),
        host="127.0.0.1",
        port=args.port,
        access_log=None,
        print=None,
        loop=new_event_loop(),
    )


if __name__ == "__main__":
    main()
