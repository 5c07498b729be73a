from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from bridge.app import create_app
from bridge.config import Settings
from tests.helpers import TIMEOUT
from tests.servers import Bridge, RedisServer, free_port

# Nothing a test starts may touch the user's own state directory (the SQLite store's
# default home): every bridge, in-process or not, without a data directory of its own,
# lands in this throwaway one.
os.environ["XDG_STATE_HOME"] = tempfile.mkdtemp(prefix="bridge-tests-state-")

pytest_plugins = ["tests.upstream"]  # the `upstream` fixture: a bot on 127.0.0.1

MakeClient = Callable[..., Awaitable[TestClient[Any, Any]]]
StartBridge = Callable[..., Bridge]


@pytest.fixture
def make_client(aiohttp_client: Any, tmp_path_factory: pytest.TempPathFactory) -> MakeClient:
    """A real server on 127.0.0.1 with the given settings, and a client for it. Each one
    gets a data directory of its own (the SQLite store locks it)."""

    async def make(**settings: Any) -> TestClient[Any, Any]:
        # The port is chosen first so that the app knows its own address (the demo bot).
        port = free_port()
        data_dir = tmp_path_factory.mktemp("data")
        app = create_app(Settings(**{"port": port, "data_dir": data_dir, **settings}))
        client: TestClient[Any, Any] = await aiohttp_client(app, server_kwargs={"port": port})
        return client

    return make


@pytest.fixture
async def client(make_client: MakeClient) -> TestClient[Any, Any]:
    return await make_client()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One real redis-server for the whole run (no persistence). Missing redis-server is an
    error, not a skip: CI installs it."""
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The shared Redis, emptied for this test."""
    redis_server.flush()
    return redis_server.url


@pytest.fixture(params=["sqlite", "memory", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    """Settings selecting a session store: a test using this runs once on each."""
    if request.param == "redis":
        return {"redis_url": request.getfixturevalue("redis_url")}
    return {"store": request.param, "data_dir": tmp_path / "data"}


@pytest.fixture
def start_bridge() -> Iterator[StartBridge]:
    """Bridge processes on one Redis (``env``: more settings), stopped after the test."""
    started: list[Bridge] = []

    def start(redis_url: str, port: int | None = None, *args: str, **env: str) -> Bridge:
        bridge = Bridge(port or free_port(), *args, BRIDGE_REDIS_URL=redis_url, **env)
        started.append(bridge)
        return bridge.start()

    yield start
    for bridge in started:
        bridge.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT)) as session:
        yield session
