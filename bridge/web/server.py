"""Serving the app on a port, within what the process can hold.

What ``web.run_app`` does, plus the edge's protections:

- the file-descriptor budget: the soft ``RLIMIT_NOFILE`` is raised to the hard limit, and
  connections are capped below it with room for the listen backlog, the store, Redis and
  the bot; ``BRIDGE_MAX_SOCKETS`` is lowered below that cap (one log line says so);
- a connection past the cap is answered ``503 server_full`` at once and closed, so
  ``accept()`` never runs out of descriptors (which asyncio would log on every attempt);
- bodies are not inflated by aiohttp (``auto_decompress`` off: ``bridge.web.body`` does it,
  bounded), a connection waiting for a request's headers, idle ones included, is closed
  after ``BRIDGE_IDLE_TIMEOUT``, and the rest of a refused body is discarded for at most
  ``LINGER`` seconds;
- a request aiohttp cannot parse gets a JSON 400 and a debug log line, not a traceback.
"""

from __future__ import annotations

import asyncio
import logging
import resource
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, cast

import orjson
from aiohttp import web

from bridge import logs
from bridge.config import Settings
from bridge.keys import METRICS
from bridge.web.errors import json_error

log = logging.getLogger(__name__)

MIN_BACKLOG = 32  # smaller, and a burst of connects waits for the kernel's SYN retries
RESERVED_FILES = 64  # for the logs, the store, Redis and the bot's connections
REFUSING = 32  # refused connections waiting for their request; past this, closed at once
REFUSE_WAIT = 0.5  # seconds a refused connection may take to send its request
LINGER = 2.0  # seconds the rest of a refused body is read (so the client sees the answer)
FULL_DETAIL = "too many open connections, try again later"
FULL = orjson.dumps({"error": "server_full", "detail": FULL_DETAIL})
FULL_RESPONSE = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
    b"Content-Length: %d\r\nConnection: close\r\nRetry-After: 1\r\n\r\n%s" % (len(FULL), FULL)
)


def handler_args(settings: Settings) -> dict[str, Any]:
    """For aiohttp's request handler (also the tests' servers)."""
    return {
        "auto_decompress": False,
        "keepalive_timeout": settings.idle_timeout,
        "lingering_time": LINGER,
    }


@dataclass(frozen=True)
class Budget:
    files: int  # the soft RLIMIT_NOFILE, raised
    backlog: int  # the listen queue, also what the loop may accept at once
    connections: int  # at most this many open at once; the next ones get 503 at once
    sockets: int  # BRIDGE_MAX_SOCKETS, lowered to leave room for plain HTTP


def raise_file_limit() -> int:
    """Raise the soft limit on open files to the hard one; the soft limit now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    unlimited = resource.RLIM_INFINITY
    target = 1 << 20 if hard == unlimited else hard
    if soft != unlimited and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            log.warning("could not raise the open-file limit from %d to %d", soft, target)
    return target if soft == unlimited else soft


def budget(files: int, max_sockets: int) -> Budget:
    """Connections and sockets ``files`` descriptors can hold. Besides the connections:
    ``RESERVED_FILES``, the refused ones waiting, and what the loop accepts before it can
    refuse (up to a backlog per pass, each open for about three passes)."""
    backlog = max(MIN_BACKLOG, min(128, files // 32))
    reserve = min(RESERVED_FILES + REFUSING + 3 * backlog, files * 3 // 4)
    connections = files - reserve
    http_room = max(16, connections // 10)  # callbacks and probes while sockets are full
    sockets = max(1, min(max_sockets, connections - http_room))
    return Budget(files, backlog, connections, sockets)


def apply_budget(settings: Settings) -> tuple[Settings, Budget]:
    """``settings`` with ``max_sockets`` within this process's file limit."""
    plan = budget(raise_file_limit(), settings.max_sockets)
    if plan.sockets < settings.max_sockets:
        log.warning(
            "BRIDGE_MAX_SOCKETS lowered from %d to %d: this process may open %d files "
            "(raise `ulimit -n` / LimitNOFILE for more); connections past %d get 503",
            settings.max_sockets,
            plan.sockets,
            plan.files,
            plan.connections,
        )
        settings = settings.model_copy(update={"max_sockets": plan.sockets})
    return settings, plan


class Handler(web.RequestHandler):
    """aiohttp's, answering a request it could not parse in the JSON error format."""

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if status >= 500 or request.writer.output_size > 0:
            return super().handle_error(request, status, exc, message)
        log.debug("unparsable request from %s: %s", request.remote, message or exc)
        code = "bad_request" if status == 400 else HTTPStatus(status).phrase.lower()
        response = json_error(status, code.replace(" ", "_"), message or HTTPStatus(status).phrase)
        response.force_close()
        return response


class Refuse(asyncio.Protocol):
    """A connection past the cap: 503 ``server_full`` before its request is even read.

    It is closed once its request arrives (closing with the request unread would reset the
    connection, and the client might lose the answer), or after ``REFUSE_WAIT``; while
    ``REFUSING`` others wait so, the next are closed at once."""

    waiting = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are no subclass
        self.transport.write(FULL_RESPONSE)
        if Refuse.waiting >= REFUSING:
            self.transport.abort()
            self.timer: asyncio.TimerHandle | None = None
            return
        Refuse.waiting += 1
        self.timer = asyncio.get_running_loop().call_later(REFUSE_WAIT, self.transport.abort)

    def data_received(self, data: bytes) -> None:
        self.transport.close()

    def eof_received(self) -> bool:
        return False  # close

    def connection_lost(self, exc: Exception | None) -> None:
        if self.timer is not None:
            self.timer.cancel()
            Refuse.waiting -= 1


class CappedSite(web.BaseSite):
    """A TCP site whose connections past the budget are refused as they are accepted."""

    def __init__(
        self, runner: web.AppRunner, settings: Settings, plan: Budget, reuse_port: bool
    ) -> None:
        super().__init__(runner, backlog=plan.backlog)
        self.runner = runner
        self.settings = settings
        self.plan = plan
        self.reuse_port = reuse_port

    @property
    def name(self) -> str:
        return f"http://{self.settings.host or '0.0.0.0'}:{self.settings.port}"  # noqa: S104

    async def start(self) -> None:
        await super().start()
        loop = asyncio.get_running_loop()
        server = self.runner.server
        assert server is not None
        refused = self.runner.app[METRICS].rejections.labels("server_full")
        options = {"access_log_class": logs.AccessLogger, **handler_args(self.settings)}

        def connection() -> asyncio.BaseProtocol:
            if len(server.connections) >= self.plan.connections:
                refused.inc()
                return Refuse()
            return Handler(server, loop=loop, **options)

        self._server = await loop.create_server(
            connection,
            self.settings.host or None,
            self.settings.port,
            backlog=self.plan.backlog,
            reuse_address=True,
            reuse_port=self.reuse_port or None,
        )


def run(
    app: web.Application,
    settings: Settings,
    plan: Budget,
    loop: asyncio.AbstractEventLoop,
    announce: Callable[[str], None],
    reuse_port: bool = False,
) -> None:
    """Serve ``app`` until SIGINT or SIGTERM, then shut down gracefully (as run_app)."""
    runner = web.AppRunner(app, handle_signals=True, access_log_class=logs.AccessLogger)

    async def main() -> None:
        await runner.setup()
        try:
            site = CappedSite(runner, settings, plan, reuse_port)
            await site.start()
            announce(f"Running on {site.name}")
            await asyncio.Event().wait()  # until a signal cancels this task
        finally:
            await runner.cleanup()

    asyncio.set_event_loop(loop)
    task = loop.create_task(main())
    try:
        loop.run_until_complete(task)
    except (web.GracefulExit, KeyboardInterrupt):
        pass
    finally:
        if not task.done():
            task.cancel()
            try:
                loop.run_until_complete(task)
            except (asyncio.CancelledError, web.GracefulExit, KeyboardInterrupt):
                pass
        _cancel_all(loop)
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


def _cancel_all(loop: asyncio.AbstractEventLoop) -> None:
    tasks = asyncio.all_tasks(loop)
    for task in tasks:
        task.cancel()
    if tasks:
        loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
