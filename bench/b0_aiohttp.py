"""Baseline B0: the floor of the stack. A bare aiohttp handler that parses the callback
with orjson and answers 200 ``{}``: no signature, no validation, no sockets."""

from __future__ import annotations

import argparse

import orjson
from aiohttp import web

from bridge.cli import new_event_loop


async def callback(request: web.Request) -> web.Response:
    orjson.loads(await request.read())
    return web.Response(body=b"{}", content_type="application/json")


async def healthz(request: web.Request) -> web.Response:
    return web.Response(body=b"{}", content_type="application/json")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    app = web.Application()
    app.router.add_post("/webhooks/airudder", callback)
    app.router.add_get("/healthz", healthz)
    web.run_app(
        app, host="127.0.0.1", port=args.port, access_log=None, print=None, loop=new_event_loop()
    )


if __name__ == "__main__":
    main()
