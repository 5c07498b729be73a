"""The bridge as an operator runs it: a real process, its CLI, its JSON logs."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from bridge.demo import samples
from tests.helpers import TIMEOUT, until_ready
from tests.servers import ROOT, Bridge, bridge_env, free_port

SECRET = "ops-secret"


def cli_token(call_id: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bridge", "token", call_id, *args],
        cwd=ROOT,
        env=bridge_env(BRIDGE_WIDGET_SECRET=SECRET),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


@pytest.fixture
def bridge(tmp_path: Path) -> Iterator[Bridge]:
    """A bridge with JSON logs at the default level (INFO), its log in a file."""
    running = Bridge(
        free_port(),
        log=tmp_path / "bridge.log",
        BRIDGE_LOG_LEVEL="INFO",
        BRIDGE_LOG_FORMAT="json",
        BRIDGE_WIDGET_SECRET=SECRET,
    )
    try:
        yield running.start()
    finally:
        running.stop()


async def test_cli_token_admits_a_socket_of_the_running_bridge(
    bridge: Bridge,
) -> None:
    url = bridge.url
    minted = cli_token("shop-42", "--ttl", "120")
    assert minted.returncode == 0, minted.stderr
    token = minted.stdout.strip()
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(f"{url}/ws/shop-42?token={token}")
        _, ready = await until_ready(ws)
        assert ready["last_seq"] == 0
        await ws.close()
        async with http.get(f"{url}/ws/other?token={token}") as resp:
            assert resp.status == 403
            assert (await resp.json())["error"] == "token_wrong_call"


def test_cli_token_without_secret_says_so() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bridge", "token", "c1"],
        cwd=ROOT,
        env=bridge_env(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert done.returncode != 0 and "BRIDGE_WIDGET_SECRET is not set" in done.stderr


async def test_json_logs_are_one_object_per_line_with_call_id(
    bridge: Bridge,
) -> None:
    url = bridge.url
    body = samples.callback("logged-call", samples.text_message("x", "m1"), event="call.end")
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{url}/webhooks/airudder", data=orjson.dumps(body)) as resp:
            assert resp.status == 200
        async with http.get(f"{url}/ws/refused-call") as resp:
            assert resp.status == 401
        token = cli_token("joined-call").stdout.strip()
        ws = await http.ws_connect(f"{url}/ws/joined-call?after=0&token={token}")
        await until_ready(ws)
        await ws.close()
    bridge.stop(signal.SIGINT)  # as Ctrl-C does: what it logs on the way out counts too
    lines = bridge.logged().splitlines()
    records: list[dict[str, Any]] = [orjson.loads(line) for line in lines]
    assert all({"ts", "level", "logger", "message"} <= r.keys() for r in records)
    bridge_logs = {
        r["call_id"]: r for r in records if r.get("call_id") and r["logger"].startswith("bridge")
    }
    assert bridge_logs["logged-call"]["level"] == "warning"
    assert "call.end" in bridge_logs["logged-call"]["message"]
    assert bridge_logs["refused-call"]["message"] == "refused /ws/refused-call: token_missing"
    assert any("BRIDGE_SIGNING_SECRET is not set" in r["message"] for r in records)
    access = [r for r in records if r["logger"] == "aiohttp.access"]
    joined = [r for r in access if r.get("call_id") == "joined-call"]
    assert len(joined) == 1 and joined[0]["status"] == 101
    assert "/ws/joined-call?after=0&token=[redacted]" in joined[0]["message"]
    assert not any(token in line for line in lines), "a log line shows a usable token"
