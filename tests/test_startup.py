"""Start-up as an operator meets it: bad settings, --help, --version, the token command."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from typing import Any

import orjson
import pytest

from bridge.config import Settings
from tests.servers import ROOT, free_port

BAD = {
    "BRIDGE_PORT": "abc",
    "BRIDGE_LOG_FORMAT": "xml",
    "BRIDGE_LOG_LEVEL": "verbose",
    "BRIDGE_WORKERS": "0",
    "BRIDGE_REDIS_URL": "notaurl",
    "BRIDGE_UPSTREAM_URL": "notaurl",
    "BRIDGE_ALLOWED_ORIGINS": "shop.example,*,https://a;https://b",
    "BRIDGE_MAX_BODY_BYTES": "1",
    "BRIDGE_DEMO": "maybe",
}


def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("BRIDGE_")}
    return subprocess.run(
        [sys.executable, "-m", "bridge", *args],
        cwd=ROOT, env={**clean, **env}, capture_output=True, text=True, timeout=30,
        check=False,
    )  # fmt: skip


def test_every_bad_setting_is_one_line_naming_it_and_exit_2() -> None:
    done = run("serve", **BAD)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == len(BAD), done.stderr
    for name, value in BAD.items():
        (line,) = [line for line in lines if line.startswith(f"airudder-bridge: {name}=")]
        assert repr(value) in line
    origins = next(line for line in lines if "ALLOWED_ORIGINS" in line)
    assert "'shop.example' is not an origin" in origins and "'*': no wildcards" in origins
    assert "'https://a;https://b' is not an origin" in origins


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("--port", "99999"), "--port 99999: Input should be less than or equal to 65535"),
        (("--host", "999.1.1.1"), "--host '999.1.1.1': not a valid IP address (BRIDGE_HOST)"),
        (("--workers", "2"), "--workers 2 needs BRIDGE_REDIS_URL"),
    ],
)
def test_bad_flags_are_one_line(args: tuple[str, ...], expected: str) -> None:
    done = run("serve", *args)
    (line,) = done.stderr.splitlines()
    assert done.returncode == 2 and line.startswith(f"airudder-bridge: {expected}")


def test_secrets_are_not_echoed_and_json_mode_answers_in_json() -> None:
    done = run(
        "serve", BRIDGE_LOG_FORMAT="json", BRIDGE_PORT="-1", BRIDGE_SIGNING_SCHEME="rot13",
        BRIDGE_WIDGET_SECRET="s3cret",
    )  # fmt: skip
    assert done.returncode == 2 and "s3cret" not in done.stderr
    records = [orjson.loads(line) for line in done.stderr.splitlines()]
    assert [r["level"] for r in records] == ["error", "error"]
    messages = " | ".join(r["message"] for r in records)
    assert "BRIDGE_PORT='-1'" in messages and "BRIDGE_SIGNING_SCHEME='rot13'" in messages
    # Checks across settings run once each setting is valid on its own.
    done = run("serve", BRIDGE_LOG_FORMAT="json", BRIDGE_MAX_SOCKETS="100000")
    (record,) = [orjson.loads(line) for line in done.stderr.splitlines()]
    assert record["message"] == (
        "BRIDGE_MAX_SOCKETS (100000) must be lower than BRIDGE_MAX_SESSIONS (100000)"
    )


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_taken_port_is_one_line_after_the_warnings(workers: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run(
            "serve", "--port", str(port), "--workers", workers, BRIDGE_REDIS_URL="redis://x:1",
            BRIDGE_PORTT="1", BRIDGE_WIDGET_SECRET="short",
        )  # fmt: skip
    assert done.returncode == 2 and "Traceback" not in done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 3, done.stderr
    assert "BRIDGE_PORTT is not a setting and is ignored; did you mean BRIDGE_PORT?" in lines[0]
    assert "BRIDGE_WIDGET_SECRET is shorter than 32 bytes" in lines[1]
    assert lines[2] == (
        f"airudder-bridge: cannot listen on 127.0.0.1:{port}: Address already in use "
        "(BRIDGE_HOST, BRIDGE_PORT)"
    )


def test_help_and_version() -> None:
    top = run("--help")
    assert top.returncode == 0 and "serve" in top.stdout and "token" in top.stdout
    assert "``" not in top.stdout, "a raw docstring"
    serve = run("serve", "--help").stdout
    for name in Settings.model_fields:
        assert f"BRIDGE_{name.upper()}" in serve
    assert "BRIDGE_WIDGET_SECRET" in run("token", "--help").stdout
    from bridge import __version__

    assert run("--version").stdout.strip() == f"airudder-bridge {__version__}"


def test_token_refuses_what_the_server_refuses_and_ignores_other_settings() -> None:
    env: dict[str, Any] = {"BRIDGE_WIDGET_SECRET": "k" * 32, "BRIDGE_PORT": "abc"}
    done = run("token", "shop-1", **env)
    assert done.returncode == 0 and done.stdout.count(".") == 2, done.stderr
    bad = run("token", "has space", **env)
    assert bad.returncode != 0 and "Traceback" not in bad.stderr
    assert "call_id must be 1-128 characters" in bad.stderr
    assert free_port()  # (the module's helpers stay importable)
