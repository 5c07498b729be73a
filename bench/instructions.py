"""Instructions per callback under callgrind: a figure that does not move with the machine's
load, for comparing two versions of the code (the CPU-time bench moves ±15% run to run).

The server runs under ``valgrind --tool=callgrind`` with instrumentation off; after a
warm-up (sockets open, connections and caches warm) it is switched on for ``--callbacks``
signed callbacks (the bench's list message, ``--in-flight`` at once), then off again. The
count is every instruction of the server process in between (all threads; not the kernel's),
divided by the callbacks. Under valgrind a callback takes ~50x longer, so batching per loop
tick differs from the real bench: compare versions with this, report ratios with the bench.

    python -m bench.instructions B0 bridge-sqlite bridge-memory [--sockets 2]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import aiohttp

from bench.load import Callbacks, Receivers, Recorder, Sender, call_ids
from bench.servers import ROOT, command
from tests.servers import free_port, wait_for

START_TIMEOUT = 300.0  # importing pydantic under valgrind takes a while
CALL_IDS = 50


async def _burst(sender: Sender, count: int, in_flight: int) -> None:
    connector = aiohttp.TCPConnector(limit=in_flight)
    async with aiohttp.ClientSession(connector=connector) as session:
        gate = asyncio.Semaphore(in_flight)

        async def one() -> None:
            async with gate:
                ok, _ = await sender._post(session)
                if not ok:
                    raise RuntimeError("a callback was not answered 200")

        await asyncio.gather(*(one() for _ in range(count)))


async def _instrument(pid: int, state: str) -> None:
    control = await asyncio.create_subprocess_exec(
        "callgrind_control",
        "-i",
        state,
        str(pid),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    if await control.wait():
        raise RuntimeError(f"callgrind_control -i {state} {pid} failed")


async def _load(port: int, pid: int, args: argparse.Namespace) -> None:
    ids = call_ids(CALL_IDS)
    receivers = Receivers(port, False, Recorder())
    try:
        if args.sockets:
            await receivers.open(ids, args.sockets)
        sender = Sender(port, Callbacks(ids), receivers.active_per_call)
        await _burst(sender, args.warmup, args.in_flight)
        await _instrument(pid, "on")
        await _burst(sender, args.callbacks, args.in_flight)
        await asyncio.sleep(0.5)  # the last frames leave
        await _instrument(pid, "off")
    finally:
        receivers.close()


def _listening(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
        return True
    return False


def count(system: str, args: argparse.Namespace) -> float:
    """Thousands of instructions per callback of ``system`` (a bench system name)."""
    port = free_port()
    cmd, env = command(system, port, None)
    with tempfile.TemporaryDirectory(prefix="callgrind-") as tmp:
        log = Path(tmp) / "valgrind.log"
        valgrind = [
            "valgrind", "--tool=callgrind", "--instr-atstart=no", f"--log-file={log}",
            f"--callgrind-out-file={tmp}/out.%p",
        ]  # fmt: skip
        proc = subprocess.Popen(
            [*valgrind, *cmd],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_for(lambda: _listening(port), f"{system} under valgrind", proc, START_TIMEOUT)
            asyncio.run(_load(port, proc.pid, args))
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(120)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if "BRIDGE_DATA_DIR" in env:
                shutil.rmtree(env["BRIDGE_DATA_DIR"], ignore_errors=True)
        collected = sum(
            int(line.rsplit(":", 1)[1].replace(",", ""))
            for line in log.read_text().splitlines()
            if "Collected :" in line
        )
    return float(collected / args.callbacks / 1000)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.instructions", description=__doc__)
    parser.add_argument("systems", nargs="+", help="bench systems without Redis, e.g. B0")
    parser.add_argument("--sockets", type=int, default=2, help="per call_id (default 2)")
    parser.add_argument("--callbacks", type=int, default=600, help="measured (default 600)")
    parser.add_argument("--warmup", type=int, default=300, help="callbacks before (300)")
    parser.add_argument("--in-flight", type=int, default=16, help="at once (default 16)")
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        parser.exit(2, "valgrind is not installed (apt-get install valgrind)\n")
    for system in args.systems:
        started = time.monotonic()
        per = count(system, args)
        took = time.monotonic() - started
        print(f"{system:20s} {per:8.1f}k instructions per callback ({took:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
