"""``serve --workers N``: N bridge processes sharing one port (SO_REUSEPORT).

The kernel spreads connections over the workers, so a vendor callback and the browser
of its conversation often land on different processes: sessions must live in Redis.
The parent only supervises: it restarts a worker that dies, and passes SIGTERM/SIGINT on.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import shutil
import signal
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from types import FrameType

from prometheus_client import multiprocess

from bridge.config import Settings
from bridge.metrics import MULTIPROC_DIR

log = logging.getLogger(__name__)

STOP_TIMEOUT = 15.0  # seconds a worker gets to close its sockets before it is killed
PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
RESTART_LIMIT = (5, 60.0)  # more restarts than this within that many seconds: give up

Worker = Callable[[Settings], None]


def die_with_parent() -> None:
    """In a worker: get SIGTERM when the supervisor dies, even by SIGKILL, so that no
    orphaned worker keeps serving the port (Linux; elsewhere a no-op)."""
    parent = multiprocessing.parent_process()
    if sys.platform != "linux" or parent is None:
        return
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent.pid:  # it died before the line above
        os.kill(os.getpid(), signal.SIGTERM)


def refusal(settings: Settings) -> str | None:
    """Why these settings cannot run several workers, or None."""
    if settings.workers > 1 and settings.store_kind() != "redis":
        return (
            f"--workers {settings.workers} needs BRIDGE_REDIS_URL (or --redis-url): "
            "sessions in one process (memory, or the SQLite file it locks) cannot be shared"
        )
    if settings.workers > 1 and settings.port == 0:
        return "--workers needs a fixed --port: with port 0 every worker would get its own"
    return None


def supervise(settings: Settings, worker: Worker) -> int:
    """Run ``worker(settings)`` in ``settings.workers`` processes until a signal; the exit
    code is 0 after a signal, 1 when workers keep dying (a port in use, a bad setting)."""
    context = multiprocessing.get_context("spawn")  # a fresh interpreter: no inherited loop
    stopping = False

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    def start(number: int) -> BaseProcess:
        process = context.Process(target=worker, args=(settings,), name=f"worker-{number}")
        process.start()
        return process

    # Every worker's metrics in files here, summed by whichever answers /metrics.
    metrics_dir = os.environ[MULTIPROC_DIR] = tempfile.mkdtemp(prefix="airudder-bridge-metrics-")
    workers = [start(n) for n in range(settings.workers)]
    restarts: deque[float] = deque(maxlen=RESTART_LIMIT[0])
    log.info("%d workers on http://%s:%s", settings.workers, settings.host, settings.port)
    code = 0
    while not stopping:
        wait([process.sentinel for process in workers], timeout=0.5)
        for number, process in enumerate(workers):
            if process.is_alive() or stopping:
                continue
            now = time.monotonic()
            if len(restarts) == restarts.maxlen and now - restarts[0] < RESTART_LIMIT[1]:
                log.error("workers keep exiting (the last with %s); stopping", process.exitcode)
                stopping, code = True, 1
                break
            log.warning("worker %d exited with %s; restarting it", number, process.exitcode)
            restarts.append(now)
            if process.pid is not None:
                multiprocess.mark_process_dead(process.pid, metrics_dir)  # type: ignore[no-untyped-call]
            workers[number] = start(number)
    for process in workers:
        if process.is_alive():
            process.terminate()  # SIGTERM: aiohttp closes sockets with 1001 and exits
    deadline = time.monotonic() + STOP_TIMEOUT
    for process in workers:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            process.kill()
            process.join()
    shutil.rmtree(metrics_dir, ignore_errors=True)
    return code
