"""``airudder-bridge forget CALL_ID``: asks the running bridge (signed), and with no bridge
running opens the SQLite file itself."""

from __future__ import annotations

import subprocess
import sys

import aiohttp
import orjson

from bridge.config import Settings
from bridge.demo import samples
from bridge.vendor import signing
from tests.helpers import until_ready
from tests.servers import ROOT, Bridge, free_port

SECRET = "forget-me-secret"


def forget(bridge: Bridge, call_id: str) -> subprocess.CompletedProcess[str]:
    env = {**bridge.env, "BRIDGE_PORT": str(bridge.port)}
    command = [sys.executable, "-m", "bridge", "forget", call_id]
    return subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)


async def last_seq(http: aiohttp.ClientSession, bridge: Bridge, call_id: str) -> int:
    async with http.ws_connect(f"{bridge.url}/ws/{call_id}") as ws:
        _, ready = await until_ready(ws)
        return int(ready["last_seq"])


async def test_forget_asks_the_running_bridge_then_opens_the_file_itself() -> None:
    bridge = Bridge(free_port(), BRIDGE_SIGNING_SECRET=SECRET).start()
    try:
        async with aiohttp.ClientSession() as http:
            for call_id in ("gone", "later"):
                body = orjson.dumps(samples.seed_callback(call_id))
                headers = signing.signed_headers(body, Settings(signing_secret=SECRET))
                url = f"{bridge.url}/webhooks/airudder"
                async with http.post(url, data=body, headers=headers) as resp:
                    assert resp.status == 200
            done = forget(bridge, "gone")  # the bridge runs: it is asked, over HTTP
            assert (done.returncode, done.stdout.strip()) == (0, "forgot gone"), done.stderr
            assert await last_seq(http, bridge, "gone") == 0
            assert await last_seq(http, bridge, "later") == 7
    finally:
        bridge.stop()
    done = forget(bridge, "later")  # nobody answers: the SQLite file is opened directly
    assert (done.returncode, done.stdout.strip()) == (0, "forgot later"), done.stderr
    bridge.start()
    try:
        async with aiohttp.ClientSession() as http:
            assert await last_seq(http, bridge, "later") == 0
    finally:
        bridge.stop()
