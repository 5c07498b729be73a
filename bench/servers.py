"""Starting and stopping the servers under test, each a subprocess on 127.0.0.1, and
reading their memory and CPU from /proc."""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

# One copy of these, shared with the tests (bench depends on tests.servers, never the reverse).
from tests.servers import free_port, wait_for

ROOT = Path(__file__).resolve().parent.parent
LOGS = ROOT / "bench" / "results" / "logs"
SECRET = "bench-secret"  # BRIDGE_SIGNING_SECRET of the bridge under test
START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0
CLK_TCK = os.sysconf("SC_CLK_TCK")


def raise_fd_limit() -> int:
    """Soft RLIMIT_NOFILE up to the hard one (children inherit it); returns the limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def cpus() -> tuple[set[int], set[int]]:
    """(server cores, load generator cores): disjoint when the machine has two or more."""
    available = sorted(os.sched_getaffinity(0))
    if len(available) < 2:
        return set(available), set(available)
    half = len(available) // 2
    return set(available[:half]), set(available[half:])


def _wait_port(port: int, proc: subprocess.Popen[bytes], what: str) -> None:
    def listening() -> bool:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return True
        return False

    try:
        wait_for(listening, f"{what} on port {port}", proc, START_TIMEOUT)
    except RuntimeError as exc:
        raise RuntimeError(f"{exc}; see {LOGS}") from None


def _descendants(pid: int) -> list[int]:
    """``pid``'s children, theirs, and so on (``serve --workers``: the workers, and what
    multiprocessing starts beside them)."""
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            with contextlib.suppress(OSError):
                children = [int(c) for c in (task / "children").read_text().split()]
                found += children
                todo += children
    return found


def _cpu_seconds(pid: int) -> float:
    # Fields after the ")" that ends the command name: utime is the 12th, stime 13th.
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:  # it ended in between
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


@dataclass
class Process:
    name: str
    proc: subprocess.Popen[bytes]
    port: int
    redis_url: str | None = None  # the Redis it uses, if any

    @property
    def pid(self) -> int:
        return self.proc.pid

    def rss_kb(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError(f"{self.name} has no VmRSS (exit code {self.proc.poll()})")

    def cpu_seconds(self) -> float:
        """The server's CPU time: the process and every process under it (the workers of
        a supervisor; they live as long as the run, so none is missed by ending early)."""
        if self.proc.poll() is not None:
            raise RuntimeError(f"{self.name} exited with code {self.proc.returncode}")
        return sum(_cpu_seconds(pid) for pid in (self.pid, *_descendants(self.pid)))

    def stop(self, sig: int = signal.SIGINT) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(STOP_TIMEOUT)


def start(
    name: str, cmd: list[str], port: int, cores: set[int], env: dict[str, str] | None = None
) -> Process:
    LOGS.mkdir(parents=True, exist_ok=True)
    log = (LOGS / f"{name}.log").open("ab")
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    with contextlib.suppress(OSError):
        os.sched_setaffinity(proc.pid, cores)
    process = Process(name, proc, port)
    try:
        _wait_port(port, proc, name)
    except BaseException:
        process.stop(signal.SIGKILL)
        raise
    return process


@contextlib.contextmanager
def redis_server(cores: set[int]) -> Iterator[str]:
    """A throw-away redis-server (no persistence) on a free port: yields its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed")
    port = free_port()
    cmd = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    process = start("redis-server", cmd, port, cores)
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.stop(signal.SIGTERM)


# The systems under test: name -> how to start it on a port (with a Redis URL if it needs one).
BRIDGE = [sys.executable, "-m", "bridge", "serve", "--port"]
BRIDGE_ENV = {
    "BRIDGE_SIGNING_SECRET": SECRET,
    # As shipped: log level INFO with the access log on, to stderr, which start() sends to
    # a file (as an operator sends it to journald).
    # The idle-scale workload holds 19,500 sockets; the default bound is 10,000.
    "BRIDGE_MAX_SOCKETS": "20000",
}


def command(system: str, port: int, redis_url: str | None) -> tuple[list[str], dict[str, str]]:
    if system.startswith(PROFILED):  # the bridge under pyinstrument
        bridge = system.removeprefix(PROFILED)
        cmd, env = command(bridge, port, redis_url)
        out = str(ROOT / "bench" / "results" / f"profile-{bridge}.txt")
        profiler = [sys.executable, "-m", "pyinstrument", "-r", "text", "-o", out]
        return [*profiler, *cmd[1:]], env  # cmd[0] is the interpreter
    if system in ("bridge-sqlite", "bridge-quiet"):  # the default store, its own directory
        data_dir = tempfile.mkdtemp(prefix="bench-data-")
        env = {**BRIDGE_ENV, "BRIDGE_DATA_DIR": data_dir}
        if system == "bridge-quiet":  # tuned: no access log, no INFO lines
            env["BRIDGE_LOG_LEVEL"] = "WARNING"
        return [*BRIDGE, str(port)], env
    if system == "bridge-memory":
        return [*BRIDGE, str(port)], {**BRIDGE_ENV, "BRIDGE_STORE": "memory"}
    if system == "bridge-redis":
        assert redis_url
        return [*BRIDGE, str(port), "--redis-url", redis_url], BRIDGE_ENV
    if system == "bridge-redis-2w":  # two workers on the one server core
        assert redis_url
        return [*BRIDGE, str(port), "--redis-url", redis_url, "--workers", "2"], BRIDGE_ENV
    if system == "B0":
        return [sys.executable, "-m", "bench.b0_aiohttp", "--port", str(port)], {}
    if system == "B1":
        return [sys.executable, "-m", "bench.b1_socketio", "--port", str(port)], {}
    if system == "B2":
        assert redis_url
        cmd = [sys.executable, "-m", "bench.b1_socketio", "--port", str(port)]
        return [*cmd, "--redis-url", redis_url], {}
    raise ValueError(system)


PROFILED = "profiled-"
NEEDS_REDIS = {
    "bridge-redis",
    "bridge-redis-2w",
    "B2",
    f"{PROFILED}bridge-redis",
    f"{PROFILED}bridge-redis-2w",
}
SOCKETIO = {"B1", "B2"}


@contextlib.contextmanager
def system_under_test(system: str, cores: set[int]) -> Iterator[Process]:
    """The server ``system`` on a free port (with its own Redis if it needs one)."""
    with contextlib.ExitStack() as stack:
        redis_url = stack.enter_context(redis_server(cores)) if system in NEEDS_REDIS else None
        port = free_port()
        cmd, env = command(system, port, redis_url)
        if "BRIDGE_DATA_DIR" in env:  # its own SQLite file: gone with the run (after stop)
            stack.callback(shutil.rmtree, env["BRIDGE_DATA_DIR"], ignore_errors=True)
        process = start(system, cmd, port, cores, env)
        process.redis_url = redis_url
        stack.callback(process.stop)
        yield process
