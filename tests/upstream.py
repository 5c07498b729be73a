"""A real HTTP server on 127.0.0.1 playing the vendor's "user sends message" API."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer


class Upstream:
    """Answers ``fail_status`` to the first ``fail_first`` requests (with ``Retry-After``
    when given) and to every request while ``healthy`` is false; 200 otherwise."""

    def __init__(
        self,
        fail_first: int = 0,
        fail_status: int = 500,
        delay: float = 0.0,
        retry_after: str | None = None,
        first_delay: float = 0.0,
    ) -> None:
        self.fail_first = fail_first
        self.fail_status = fail_status
        self.delay = delay
        self.retry_after = retry_after
        self.first_delay = first_delay  # the bot takes the first at once, answers this late
        self.healthy = True
        self.before_answer: Callable[[], None] | None = None  # e.g. kill the bridge first
        self.requests: list[tuple[bytes, str | None]] = []
        self.times: list[float] = []  # time.monotonic() of each request
        self.accepted: list[dict[str, Any]] = []

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.requests.append((body, request.headers.get("X-AIRudder-Sign")))
        self.times.append(time.monotonic())
        await asyncio.sleep(self.delay)
        if self.before_answer is not None:
            self.before_answer()
        if len(self.requests) <= self.fail_first or not self.healthy:
            headers = {"Retry-After": self.retry_after} if self.retry_after else {}
            return web.json_response(
                {"error": "try later"}, status=self.fail_status, headers=headers
            )
        self.accepted.append(orjson.loads(body))
        if len(self.requests) == 1:
            await asyncio.sleep(self.first_delay)
        return web.json_response({})

    def texts(self) -> list[str]:
        """What the bot took, in order."""
        return [a["messages"][0]["content"]["text"] for a in self.accepted]


@pytest.fixture
async def upstream(aiohttp_server: Any, request: pytest.FixtureRequest) -> tuple[Upstream, str]:
    up = Upstream(**getattr(request, "param", {}))
    app = web.Application()
    app.router.add_post("/messages", up.handle)
    server: TestServer = await aiohttp_server(app)
    return up, str(server.make_url("/messages"))
