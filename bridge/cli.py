"""``airudder-bridge serve`` (and ``python -m bridge serve``)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from aiohttp import web

from bridge import logs, tokens
from bridge.app import create_app
from bridge.config import Settings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="airudder-bridge", description=__doc__)
    commands = parser.add_subparsers(dest="command")
    serve = commands.add_parser("serve", help="run the bridge (default)")
    serve.add_argument("--host", help="address to listen on (BRIDGE_HOST, 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (BRIDGE_PORT, 8080)")
    serve.add_argument("--redis-url", help="use Redis for sessions (BRIDGE_REDIS_URL)")
    token = commands.add_parser(
        "token", help="print a widget token for CALL_ID (signed with BRIDGE_WIDGET_SECRET)"
    )
    token.add_argument("call_id", metavar="CALL_ID")
    token.add_argument("--ttl", type=int, default=3600, help="seconds it stays valid (3600)")
    return parser


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
    overrides: dict[str, Any] = {
        k: v for k, v in vars(args).items() if k != "command" and v is not None
    }
    settings = Settings(**overrides)
    logs.setup(settings.log_level, settings.log_format)
    if args.command in (None, "serve"):
        serve(settings)
    else:  # pragma: no cover - argparse rejects unknown commands
        sys.exit(2)


def serve(settings: Settings) -> None:
    web.run_app(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        print=print,
        access_log_class=logs.AccessLogger,
    )
