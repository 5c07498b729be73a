"""airudder-bridge: AIRudder chatbot callbacks to a web chat widget over WebSockets.

`airudder-bridge serve` runs the bridge (also `python -m bridge serve`); `airudder-bridge
token CALL_ID` prints a widget token. Each command's --help lists its options."""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import sys
from collections.abc import Callable
from typing import Any

from aiohttp import web

from bridge import __version__, logs, startup, tokens, workers
from bridge import forget as forgetting
from bridge.app import create_app
from bridge.config import Settings, StartupError
from bridge.web import server

log = logging.getLogger(__name__)


def _parser() -> argparse.ArgumentParser:
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog="airudder-bridge", description=__doc__, formatter_class=raw
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command")
    serve = commands.add_parser(
        "serve",
        help="run the bridge (default)",
        description="Run the bridge. Settings come from BRIDGE_* environment variables.",
        epilog=startup.settings_help(),
        formatter_class=raw,
    )
    serve.add_argument("--host", help="address to listen on (BRIDGE_HOST, 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (BRIDGE_PORT, 8080)")
    serve.add_argument("--redis-url", help="use Redis for sessions (BRIDGE_REDIS_URL)")
    serve.add_argument(
        "--workers",
        type=int,
        help="processes sharing the port; needs Redis (BRIDGE_WORKERS, 1)",
    )
    token = commands.add_parser(
        "token",
        help="print a widget token for CALL_ID (signed with BRIDGE_WIDGET_SECRET)",
        description="Print a widget token (a JWT, HS256) for CALL_ID, signed with the first "
        "secret of BRIDGE_WIDGET_SECRET, the only setting it reads.",
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
    secrets = tokens.secrets_from_env()
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
    settings = startup.load(overrides)
    setup_logs(settings)
    startup.warn(settings)
    if args.command not in (None, "serve"):  # pragma: no cover - argparse rejects these
        sys.exit(2)
    refusal = workers.refusal(settings)
    if refusal:
        startup.fail([refusal])
    startup.check_address(settings, reuse_port=settings.workers > 1)
    if settings.workers == 1:
        serve(settings)
        return
    sys.exit(workers.supervise(settings, worker))


def setup_logs(settings: Settings) -> None:
    logs.setup(settings.log_level, settings.log_format, settings.access_log, settings.log_queue)


def new_event_loop(kind: str = "auto") -> asyncio.AbstractEventLoop:
    """uvloop when it is installed (``auto``) or asked for (BRIDGE_EVENT_LOOP): a faster
    event loop for the same code; ``asyncio`` for the standard one."""
    if kind == "asyncio":
        return asyncio.new_event_loop()
    try:
        import uvloop
    except ImportError:
        if kind == "uvloop":
            startup.fail(["BRIDGE_EVENT_LOOP=uvloop: uvloop is not installed"])
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


# Young-generation collections every 20,000 allocations rather than 700: a callback
# allocates a few hundred objects, almost all freed by reference counting, so the default
# ran a collection every few callbacks for nothing (~6% of the CPU per callback).
GC_THRESHOLD = (20_000, 10, 10)


async def _freeze_startup_objects(app: web.Application) -> None:
    """Modules, classes and schemas live as long as the process: set them aside so the
    garbage collector's full passes walk only what requests create."""
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLD)


def serve(settings: Settings, reuse_port: bool = False) -> None:
    settings, plan = server.apply_budget(settings)
    app = create_app(settings)
    app.on_startup.append(_freeze_startup_objects)
    try:
        server.run(
            app,
            settings,
            plan,
            new_event_loop(settings.event_loop),
            _announcer(settings),
            reuse_port=reuse_port,
        )
    except StartupError as exc:  # the operator's to fix: one line, no traceback
        startup.fail([str(exc)])


def _announcer(settings: Settings) -> Callable[[str], None]:
    """The "Running on ..." line, plus where a newcomer should look first."""

    def announce(line: str) -> None:
        log.info("%s", line)  # a log line: JSON in JSON mode
        if settings.demo_enabled():
            wildcard = settings.host in ("0.0.0.0", "::", "")  # noqa: S104 - only compared
            host = "127.0.0.1" if wildcard else settings.host
            log.info("Demo page: http://%s:%s/demo", host, settings.port)

    return announce


def worker(settings: Settings) -> None:
    """One of ``--workers N`` (runs in a spawned process)."""
    # Out of the terminal's process group: Ctrl-C reaches the parent alone, which passes
    # exactly one SIGTERM on (a second signal would interrupt the graceful shutdown).
    os.setpgrp()
    workers.die_with_parent()
    setup_logs(settings)
    try:
        serve(settings, reuse_port=True)
    except BaseException as exc:  # multiprocessing would print it raw: log it, JSON or not
        if not isinstance(exc, SystemExit | KeyboardInterrupt):
            log.critical("worker crashed: %s", exc, exc_info=True)
            logs.stop()
            sys.exit(1)
        raise
