"""A real nginx (the Debian package) running deploy/nginx/airudder-bridge.conf in front of a
test bridge: unprivileged ports on 127.0.0.1, everything under a temporary prefix."""

from __future__ import annotations

import contextlib
import getpass
import os
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

from tests.servers import ROOT, free_port

SITE = ROOT / "deploy" / "nginx" / "airudder-bridge.conf"
START_TIMEOUT = 15.0


def site_for_test(bridge_port: int, http_port: int, proxy_port: int) -> str:
    """The site file with its listeners and upstream moved to test ports and the TLS lines
    taken out (the test has no certificate); everything else as shipped."""
    text = SITE.read_text()
    replacements = [
        (r"server 127\.0\.0\.1:8080;", f"server 127.0.0.1:{bridge_port};"),
        (r"listen 80;", f"listen 127.0.0.1:{http_port};"),
        (r"listen 443 ssl;", f"listen 127.0.0.1:{proxy_port};"),
        (r"\n\s*listen \[::\]:\d+( ssl)?;", ""),
        (r"\n\s*ssl_[a-z_]+\s[^;]*;", ""),
    ]
    for pattern, replacement in replacements:
        text, count = re.subn(pattern, replacement, text)
        assert count, f"{pattern} is no longer in {SITE.name}: update tests/nginx.py"
    return text


class Nginx:
    def __init__(self, prefix: Path, bridge_port: int) -> None:
        executable = shutil.which("nginx") or "/usr/sbin/nginx"
        if not Path(executable).exists():
            raise RuntimeError("nginx is not installed (Debian: apt-get install nginx)")
        self.executable = executable
        self.prefix = prefix
        self.port = free_port()
        self.http_port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        site = prefix / "site.conf"
        site.write_text(site_for_test(bridge_port, self.http_port, self.port))
        user = f"user {getpass.getuser()};" if os.geteuid() == 0 else ""
        temp = "\n".join(
            f"    {kind}_temp_path {prefix}/{kind};"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        self.config = prefix / "nginx.conf"
        self.config.write_text(
            f"""{user}
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log {prefix}/access.log;
{temp}
    include {site};
}}
"""
        )
        self.process: subprocess.Popen[bytes] | None = None

    def check(self) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.executable, "-t", "-p", str(self.prefix), "-c", str(self.config)],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )

    def start(self) -> None:
        args = ["-p", str(self.prefix), "-c", str(self.config), "-g", "daemon off;"]
        self.process = subprocess.Popen([self.executable, *args])
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"nginx exited: {(self.prefix / 'error.log').read_text()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("nginx did not start")

    def stop(self) -> None:
        """SIGTERM (a fast shutdown), then SIGKILL if it lingers."""
        process, self.process = self.process, None
        if process is None:
            return
        process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(10)
            return
        process.kill()
        process.wait(10)
