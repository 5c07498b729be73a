"""Baseline B0: the floor of the stack. A bare aiohttp handler that parses the callback
with orjson and pushes the raw callback text to the sockets of its ``call_id`` (a
``/ws/{call_id}`` that says ``ready`` and then only listens), and answers 200 ``{}``: no
signature, no validation, no store."""

from __future__ import annotations

import argparse

import orjson
from aiohttp import WSMsgType, web

from bridge.cli import new_event_loop

SOCKETS = web.AppKey("sockets", dict[str, set[web.WebSocketResponse]])


async def callback(request: web.Request) -> web.Response:
    body = await request.read()
    payload = orjson.loads(body)
    sockets = request.app[SOCKETS].get(payload["call_id"])
    if sockets:
        frame = b'{"type":"message","raw":' + body + b"}"
        for ws in list(sockets):
            await ws.send_frame(frame, WSMsgType.TEXT)
    return web.Response(body=b"{}", content_type="application/json")


async def websocket(request: web.Request) -> web.WebSocketResponse:
    call_id = request.match_info["call_id"]
    ws = web.WebSocketResponse(compress=False)
    await ws.prepare(request)
    room = request.app[SOCKETS].setdefault(call_id, set())
    room.add(ws)
    try:
        await ws.send_frame(b'{"type":"ready"}', WSMsgType.TEXT)
        async for _ in ws:
            pass
    finally:
        room.discard(ws)
    return ws


async def healthz(request: web.Request) -> web.Response:
    return web.Response(body=b"{}", content_type="application/json")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    app = web.Application()
    app[SOCKETS] = {}
    app.router.add_post("/webhooks/airudder", callback)
    app.router.add_get("/ws/{call_id}", websocket)
    app.router.add_get("/healthz", healthz)
    web.run_app(
        app, host="127.0.0.1", port=args.port, access_log=None, print=None, loop=new_event_loop()
    )


if __name__ == "__main__":
    main()
