"""Real servers for tests: a ``redis-server`` and bridge processes, on 127.0.0.1.

Everything here waits boundedly and stops what it started.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT = 15.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_for(check: object, what: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}")
        if check():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not start within {START_TIMEOUT}s")


class RedisServer:
    """``redis-server`` on a free port with its files in ``directory``. With ``persistent``
    every write is fsynced to an append-only file, so a restart keeps all of it."""

    def __init__(self, directory: Path, persistent: bool = False) -> None:
        executable = shutil.which("redis-server")
        if executable is None:
            raise RuntimeError(
                "redis-server is not installed (Debian: apt-get install redis-server)"
            )
        self.executable = executable
        self.directory = directory
        self.persistent = persistent
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
        ]  # fmt: skip
        self.process = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=self.directory
        )
        try:
            _wait_for(self.ping, f"redis-server on port {self.port}", self.process)
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
    """``python -m bridge serve`` in a child process, ready once ``/healthz`` answers."""

    def __init__(self, port: int, *args: str, **env: str) -> None:
        self.port = port
        self.args = args
        # A data directory of its own (the SQLite store locks it), kept across restarts.
        data_dir = tempfile.mkdtemp(prefix="bridge-data-")
        self.env = {**os.environ, "BRIDGE_LOG_LEVEL": "WARNING", "BRIDGE_DATA_DIR": data_dir, **env}
        self.process: subprocess.Popen[bytes] | None = None
        self.url = f"http://127.0.0.1:{port}"

    def start(self) -> Bridge:
        command = [sys.executable, "-m", "bridge", "serve", "--port", str(self.port), *self.args]
        self.process = subprocess.Popen(command, cwd=ROOT, env=self.env)
        try:
            _wait_for(self._healthy, f"bridge on port {self.port}", self.process)
        except RuntimeError:
            self.kill()
            raise
        return self

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
