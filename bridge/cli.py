"""``airudder-bridge serve`` (and ``python -m bridge serve``)."""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import sys
from collections.abc import Callable
from typing import Any

from aiohttp import web

from bridge import forget as forgetting
from bridge import logs, tokens, workers
from bridge.app import create_app
from bridge.config import Settings, StartupError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="airudder-bridge", description=__doc__)
    commands = parser.add_subparsers(dest="command")
    serve = commands.add_parser("serve", help="run the bridge (default)")
    serve.add_argument("--host", help="address to listen on (BRIDGE_HOST, 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (BRIDGE_PORT, 8080)")
    serve.add_argument("--redis-url", help="use Redis for sessions (BRIDGE_REDIS_URL)")
    serve.add_argument(
        "--workers",
        type=int,
        help="processes sharing the port; needs Redis (BRIDGE_WORKERS, 1)",
    )
    token = commands.add_parser(
        "token", help="print a widget token for CALL_ID (signed with BRIDGE_WIDGET_SECRET)"
    )
    token.add_argument("call_id", metavar="CALL_ID")
    token.add_argument("--ttl", type=int, default=3600, help="seconds it stays valid (3600)")
    forget = commands.add_parser(
        "forget", help="delete everything kept of CALL_ID (asks the running bridge first)"
    )
    forget.add_argument("call_id", metavar="CALL_ID")
    forget.add_argument("--url", help="the running bridge (default: BRIDGE_HOST:BRIDGE_PORT)")
    return parser


def forget_conversation(args: argparse.Namespace) -> None:
    try:
        print(forgetting.run(Settings(), args.call_id, args.url))
    except (RuntimeError, OSError) as exc:
        sys.exit(f"airudder-bridge forget: {exc}")


def print_token(args: argparse.Namespace) -> None:
    secrets = Settings().widget_secrets()
    if not secrets:
        sys.exit("airudder-bridge token: BRIDGE_WIDGET_SECRET is not set")
    try:
        print(tokens.mint(args.call_id, args.ttl, secret=secrets))
    except ValueError as exc:
        sys.exit(f"airudder-bridge token: {exc}")


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    if args.command == "token":
        print_token(args)
        return
    if args.command == "forget":
        forget_conversation(args)
        return
    overrides: dict[str, Any] = {
        k: v for k, v in vars(args).items() if k != "command" and v is not None
    }
    settings = Settings(**overrides)
    logs.setup(settings.log_level, settings.log_format)
    if args.command not in (None, "serve"):  # pragma: no cover - argparse rejects these
        sys.exit(2)
    if settings.workers == 1:
        serve(settings)
        return
    refusal = workers.refusal(settings)
    if refusal:
        print(f"airudder-bridge: {refusal}", file=sys.stderr)
        sys.exit(2)
    sys.exit(workers.supervise(settings, worker))


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop when it is installed: a faster event loop for the same code."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


async def _freeze_startup_objects(app: web.Application) -> None:
    """Modules, classes and schemas live as long as the process: set them aside so the
    garbage collector's full passes walk only what requests create."""
    gc.freeze()


def serve(settings: Settings, reuse_port: bool = False) -> None:
    app = create_app(settings)
    app.on_startup.append(_freeze_startup_objects)
    try:
        web.run_app(
            app,
            host=settings.host,
            port=settings.port,
            reuse_port=reuse_port,
            print=_announcer(settings),
            access_log_class=logs.AccessLogger,
            loop=new_event_loop(),
        )
    except StartupError as exc:  # the operator's to fix: one line, no traceback
        print(f"airudder-bridge: {exc}", file=sys.stderr)
        sys.exit(2)


def _announcer(settings: Settings) -> Callable[[str], None]:
    """aiohttp's "Running on ..." line, plus where a newcomer should look first."""

    def announce(line: str) -> None:
        print(line)
        if settings.demo_enabled() and "Running on" in line:
            wildcard = settings.host in ("0.0.0.0", "::", "")  # noqa: S104 - only compared
            host = "127.0.0.1" if wildcard else settings.host
            print(f"Demo page: http://{host}:{settings.port}/demo", flush=True)

    return announce


def worker(settings: Settings) -> None:
    """One of ``--workers N`` (runs in a spawned process)."""
    # Out of the terminal's process group: Ctrl-C reaches the parent alone, which passes
    # exactly one SIGTERM on (a second signal would interrupt the graceful shutdown).
    os.setpgrp()
    workers.die_with_parent()
    logs.setup(settings.log_level, settings.log_format)
    serve(settings, reuse_port=True)
