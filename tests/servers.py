"""Real servers for tests: a ``redis-server`` and bridge processes, on 127.0.0.1.

Everything here waits boundedly and stops what it started. The benchmarks (``bench/``)
use ``free_port`` and ``wait_for`` from here too: one copy of each, in the package that
already holds the project's real-server helpers (nothing here imports from ``bench``).
"""

from __future__ import annotations

import os
import random
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import orjson
import redis

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT = 15.0


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


_GIVEN: set[int] = set()  # this process's picks: at most a few hundred per run


def free_port() -> int:
    """A port free now, below the kernel's ephemeral range: a port the kernel handed out
    (bind to 0) could be taken by some client connection's own end before the server that
    was meant to get it binds it ("Address already in use", seen with many sockets open)."""
    low = _ephemeral_low()
    for _ in range(200):
        port = random.randrange(max(1024, low - 12000), low)
        if port in _GIVEN:  # handed out already, maybe not bound yet (a cluster's six)
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            _GIVEN.add(port)
            return port
    with socket.socket() as sock:  # that range is all taken: the kernel's choice
        sock.bind(("127.0.0.1", 0))
        chosen: int = sock.getsockname()[1]
        return chosen


def wait_for(
    check: Callable[[], bool],
    what: str,
    process: subprocess.Popen[bytes],
    timeout: float = START_TIMEOUT,
) -> None:
    """Poll ``check`` until it holds; fail at once if ``process`` exits, or after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}")
        if check():
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not start within {timeout}s")


def bridge_env(**extra: str) -> dict[str, str]:
    """This environment without any ``BRIDGE_*`` setting of the person running the tests,
    plus ``extra``: a bridge started by a test has only the settings the test gives it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BRIDGE_")}
    return {**env, **extra}


def http_json(url: str, body: Any = None, timeout: float = START_TIMEOUT) -> tuple[int, Any]:
    """GET (or POST ``body`` as JSON) and return the status and decoded answer."""
    data = None if body is None else orjson.dumps(body)
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return resp.status, orjson.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, orjson.loads(exc.read() or b"null")


class RedisServer:
    """``redis-server`` on a free port with its files in ``directory``. With ``persistent``
    every write is fsynced to an append-only file, so a restart keeps all of it. ``extra``:
    more of its options (``--replicaof``, ``--cluster-enabled``, ...)."""

    def __init__(self, directory: Path, persistent: bool = False, *extra: str) -> None:
        executable = shutil.which("redis-server")
        if executable is None:
            raise RuntimeError(
                "redis-server is not installed (Debian: apt-get install redis-server)"
            )
        self.executable = executable
        self.directory = directory
        self.persistent = persistent
        self.extra = list(extra)
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        persistence = ["--appendonly", "yes", "--appendfsync", "always"]
        args = [
            self.executable,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--dir", str(self.directory),
            *(persistence if self.persistent else ["--appendonly", "no"]),
            *self.extra,
        ]  # fmt: skip
        self.process = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=self.directory
        )
        try:
            wait_for(self.ping, f"redis-server on port {self.port}", self.process)
        except RuntimeError:
            self.kill()
            raise

    def ping(self) -> bool:
        try:
            with redis.Redis(port=self.port, socket_timeout=1) as client:
                return bool(client.ping())
        except redis.exceptions.RedisError:  # the connection errors, and LOADING
            return False

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=5)

    def flush(self) -> None:
        with self.client() as client:
            client.flushall()

    def kill(self) -> None:
        """SIGKILL, as in a crash: only what was fsynced survives."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
            self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
            self.process = None


class Bridge:
    """``python -m bridge serve`` in a child process, ready once ``/healthz`` answers.

    ``env`` are its ``BRIDGE_*`` settings (log level WARNING unless given); with ``log``
    its stderr (the log) goes to that file, else to the test's own stderr."""

    def __init__(
        self, port: int, *args: str, log: Path | None = None, files: int | None = None, **env: str
    ) -> None:
        self.port = port
        self.files = files  # its RLIMIT_NOFILE, soft and hard (ulimit -n)
        self.args = args
        # A data directory of its own (the SQLite store locks it), kept across restarts.
        data_dir = tempfile.mkdtemp(prefix="bridge-data-")
        self.env = bridge_env(**{"BRIDGE_LOG_LEVEL": "WARNING", "BRIDGE_DATA_DIR": data_dir, **env})
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None
        self.url = f"http://127.0.0.1:{port}"

    def start(self) -> Bridge:
        command = [sys.executable, "-m", "bridge", "serve", "--port", str(self.port), *self.args]
        stderr: IO[bytes] | None = None if self.log is None else self.log.open("ab")
        try:
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=self.env, stderr=stderr, preexec_fn=self._limit_files
            )
        finally:
            if stderr is not None:
                stderr.close()  # the child has its own copy
        try:
            wait_for(self._healthy, f"bridge on port {self.port}", self.process)
        except RuntimeError:
            self.kill()
            raise
        return self

    def _limit_files(self) -> None:
        if self.files is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (self.files, self.files))

    def cpu_seconds(self) -> float:
        """User and system CPU time the process has used so far (from /proc)."""
        assert self.process is not None
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def logged(self) -> str:
        """What it has logged so far (with ``log`` set)."""
        assert self.log is not None, "started without log="
        return self.log.read_text(errors="replace")

    def callback(self, body: dict[str, Any]) -> None:
        """Post ``body`` to the webhook as the vendor would (unsigned); it must be taken."""
        status, answer = http_json(f"{self.url}/webhooks/airudder", body)
        assert status == 200, answer

    def _healthy(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                return sock.recv(32).startswith(b"HTTP/1.1 200")
        except OSError:
            return False

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as in a crash."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
            self.process = None

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.process is None:
            return 0
        self.process.send_signal(sig)
        try:
            code = self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait(10)
        self.process = None
        return code
