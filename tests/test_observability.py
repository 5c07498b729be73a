"""Logs an operator can trust (never blocking, call_id, JSON everywhere, the access-log
switch) and metrics that are right under --workers."""

from __future__ import annotations

import asyncio
import fcntl
import os
import re
import signal
import subprocess
import sys
from typing import Any

import aiohttp
import orjson

from bridge.demo import samples
from tests.helpers import TIMEOUT
from tests.servers import ROOT, Bridge, free_port, wait_for
from tests.test_workers import socket_on_each_worker

F_SETPIPE_SZ = 1031  # from <linux/fcntl.h>


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BRIDGE_")}
    return {**env, **extra}


def metric(text: str, name: str) -> list[float]:
    return [float(m) for m in re.findall(rf"^{re.escape(name)}(?:{{[^}}]*}})? (\S+)$", text, re.M)]


async def test_a_stalled_stderr_drops_lines_but_never_the_server() -> None:
    """Nobody reads the bridge's stderr (a 4 KiB pipe): requests are still answered, the
    dropped lines are counted, and SIGTERM still stops it."""
    read_end, write_end = os.pipe()
    fcntl.fcntl(write_end, F_SETPIPE_SZ, 4096)
    port = free_port()
    process = subprocess.Popen(  # noqa: ASYNC220 - Popen starts it, nothing waits
        [sys.executable, "-m", "bridge", "serve", "--port", str(port)],
        cwd=ROOT, env=clean_env(BRIDGE_LOG_QUEUE="20"), stderr=write_end,
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    os.close(write_end)
    try:
        probe = Bridge(port)
        await asyncio.to_thread(wait_for, probe._healthy, "the bridge", process)
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT)) as http:
            for _ in range(300):  # ~100 bytes of access log each: far more than the pipe
                async with http.get(f"{probe.url}/healthz") as resp:
                    assert resp.status == 200
            async with http.get(f"{probe.url}/metrics") as resp:
                dropped = metric(await resp.text(), "bridge_log_lines_dropped_total")
        assert dropped and dropped[0] > 0
        process.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(process.wait, 20)
        assert code == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
        os.close(read_end)


async def run_and_stop(env: dict[str, str], requests: list[tuple[str, str, Any]]) -> list[str]:
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "bridge", "serve", "--port", str(port)),
        cwd=ROOT, env=clean_env(**env), stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT)) as http:
        for _ in range(200):
            try:
                async with http.get(f"{url}/healthz"):
                    break
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.05)
        for method, path, body in requests:
            async with http.request(method, url + path, data=body) as resp:
                assert resp.status < 500
    proc.send_signal(signal.SIGINT)
    assert proc.stderr is not None
    err = await asyncio.wait_for(proc.stderr.read(), TIMEOUT)
    await asyncio.wait_for(proc.wait(), TIMEOUT)
    return err.decode().splitlines()


OTHER_EVENT = orjson.dumps(
    samples.callback("text-call", samples.text_message("x", "m1"), event="call.end")
)


async def test_text_lines_carry_call_id_and_the_access_log_has_its_own_switch() -> None:
    requests = [("POST", "/webhooks/airudder", OTHER_EVENT), ("GET", "/chat/page-call", None)]
    lines = await run_and_stop({}, requests)
    ignored = next(line for line in lines if "ignored callback event" in line)
    assert ignored.endswith("call_id=text-call")
    access = [line for line in lines if " aiohttp.access: " in line]
    assert any("POST /webhooks/airudder" in a and a.endswith("call_id=text-call") for a in access)
    assert any("GET /chat/page-call" in a and a.endswith("call_id=page-call") for a in access)

    quiet = await run_and_stop({"BRIDGE_ACCESS_LOG": "false"}, requests)
    assert not [line for line in quiet if "aiohttp.access" in line]
    assert any(" INFO bridge.cli: Running on http://127.0.0.1:" in line for line in quiet)
    assert any("ignored callback event" in line for line in quiet)


def test_a_crash_is_a_json_line_in_json_mode() -> None:
    code = "from bridge import logs; logs.setup('INFO', 'json'); raise RuntimeError('boom')"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=30,
        check=False,
    )  # fmt: skip
    assert done.returncode == 1
    (record,) = [orjson.loads(line) for line in done.stderr.splitlines()]
    assert record["level"] == "critical" and record["message"] == "crashed: boom"
    assert "RuntimeError: boom" in record["exc"]


async def test_metrics_sum_over_workers_and_every_line_is_json(redis_url: str) -> None:
    port = free_port()
    bridge = Bridge(
        port, "--workers", "2", BRIDGE_REDIS_URL=redis_url, BRIDGE_LOG_FORMAT="json",
        BRIDGE_LOG_LEVEL="INFO",
    )  # fmt: skip
    read_end, write_end = os.pipe()
    try:
        # Started as tests.servers.Bridge does, with stderr captured.
        bridge.process = subprocess.Popen(  # noqa: ASYNC220 - nothing waits
            [sys.executable, "-m", "bridge", "serve", "--port", str(port), *bridge.args],
            cwd=ROOT, env=bridge.env, stderr=write_end, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        os.close(write_end)
        await asyncio.to_thread(wait_for, bridge._healthy, "the workers", bridge.process)
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT)) as http:
            by_worker = await socket_on_each_worker(http, bridge, "counted", 2)
            body = orjson.dumps(samples.seed_callback("counted"))
            async with http.post(f"{bridge.url}/webhooks/airudder", data=body) as resp:
                assert resp.status == 200
            for _ in range(6):  # new connections: the kernel spreads them over both workers
                async with http.get(f"{bridge.url}/metrics", headers={"Connection": "close"}) as r:
                    text = await r.text()
                assert metric(text, "bridge_open_sockets") == [2.0], text
                stored = 'bridge_callbacks_total{event="message.send",outcome="stored"}'
                assert metric(text, stored) == [1.0]
                pids = set(re.findall(r'^process_open_fds{pid="(\d+)"}', text, re.M))
                assert pids == {str(pid) for pid in by_worker}
                assert "bridge_sessions" not in text  # Redis: no such per-process figure
            for ws in by_worker.values():
                await ws.close()
        assert bridge.stop() == 0
        with os.fdopen(read_end, "rb") as captured:
            lines = captured.read().decode().splitlines()
        read_end = -1
        records = [orjson.loads(line) for line in lines]  # every line, workers' included
        assert any(r["message"] == f"2 workers on http://127.0.0.1:{port}" for r in records)
        assert sum("Running on" in r["message"] for r in records) == 2
    finally:
        bridge.kill()
        if read_end >= 0:
            os.close(read_end)
