"""``serve --workers N``: N bridge processes sharing one port (SO_REUSEPORT).

The kernel spreads connections over the workers, so a vendor callback and the browser
of its conversation often land on different processes: sessions must live in Redis.
The parent only supervises: it restarts a worker that dies, and passes SIGTERM/SIGINT on.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import time
from collections.abc import Callable
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from types import FrameType

from bridge.config import Settings

log = logging.getLogger(__name__)

STOP_TIMEOUT = 15.0  # seconds a worker gets to close its sockets before it is killed
CRASH_LOOP = 5.0  # a worker that dies sooner than this after its start will not be restarted

Worker = Callable[[Settings], None]


def refusal(settings: Settings) -> str | None:
    """Why these settings cannot run several workers, or None."""
    if settings.workers > 1 and not settings.redis_url:
        return (
            f"--workers {settings.workers} needs BRIDGE_REDIS_URL (or --redis-url): "
            "sessions kept in one process's memory cannot be shared with the others"
        )
    if settings.workers > 1 and settings.port == 0:
        return "--workers needs a fixed --port: with port 0 every worker would get its own"
    return None


def supervise(settings: Settings, worker: Worker) -> int:
    """Run ``worker(settings)`` in ``settings.workers`` processes until a signal; the exit
    code is 0 after a signal, 1 when a worker keeps crashing at start."""
    context = multiprocessing.get_context("spawn")  # a fresh interpreter: no inherited loop
    stopping = False

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    def start(number: int) -> tuple[BaseProcess, float]:
        process = context.Process(target=worker, args=(settings,), name=f"worker-{number}")
        process.start()
        return process, time.monotonic()

    workers = [start(n) for n in range(settings.workers)]
    print(
        f"======== {settings.workers} workers on http://{settings.host}:{settings.port} ========",
        flush=True,
    )
    code = 0
    while not stopping:
        wait([process.sentinel for process, _ in workers], timeout=0.5)
        for number, (process, started) in enumerate(workers):
            if process.is_alive() or stopping:
                continue
            if time.monotonic() - started < CRASH_LOOP:
                log.error("worker %d exited with %s at start; stopping", number, process.exitcode)
                stopping, code = True, 1
                break
            log.warning("worker %d exited with %s; restarting it", number, process.exitcode)
            workers[number] = start(number)
    for process, _ in workers:
        if process.is_alive():
            process.terminate()  # SIGTERM: aiohttp closes sockets with 1001 and exits
    deadline = time.monotonic() + STOP_TIMEOUT
    for process, _ in workers:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            process.kill()
            process.join()
    return code
