"""deploy/: the nginx site in front of a real bridge, the systemd unit, the .env example."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import orjson
import pytest

from bridge import tokens
from bridge.config import Settings
from bridge.demo import samples
from tests.helpers import TIMEOUT, messages, until_ready
from tests.nginx import Nginx
from tests.servers import ROOT, Bridge, free_port

SECRET = "deploy-test-widget-secret-32-bytes!"
SHOP = "https://shop.example"
UNIT = ROOT / "deploy" / "systemd" / "airudder-bridge.service"


@pytest.fixture(scope="module")
def proxied(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Bridge, Nginx]]:
    """A bridge with origins and tokens on, behind nginx running the shipped site file."""
    bridge = Bridge(
        free_port(),
        BRIDGE_ALLOWED_ORIGINS=SHOP,
        BRIDGE_WIDGET_SECRET=SECRET,
        BRIDGE_DEMO="false",
    ).start()
    nginx = Nginx(tmp_path_factory.mktemp("nginx"), bridge.port)
    try:
        checked = nginx.check()
        assert checked.returncode == 0, checked.stderr
        nginx.start()
        yield bridge, nginx
    finally:
        nginx.stop()
        bridge.stop()


async def test_widget_socket_through_nginx_replays_and_goes_live(
    proxied: tuple[Bridge, Nginx],
) -> None:
    _, nginx = proxied
    token = tokens.mint("via-nginx", 600, secret=SECRET)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT)) as http:
        body = orjson.dumps(samples.seed_callback("via-nginx"))
        async with http.post(f"{nginx.url}/webhooks/airudder", data=body) as resp:
            assert resp.status == 200
        # The bridge's own page's origin, as a browser on the proxy's host sends it: allowed
        # because nginx passes the Host on (BRIDGE_ALLOWED_ORIGINS lists only the shop).
        ws = await http.ws_connect(
            f"{nginx.url}/ws/via-nginx?token={token}", headers={"Origin": nginx.url}
        )
        replayed, ready = await until_ready(ws)
        assert [m["seq"] for m in replayed] == list(range(1, 8)) and ready["last_seq"] == 7
        more = orjson.dumps(samples.callback("via-nginx", samples.text_message("live", "m9")))
        async with http.post(f"{nginx.url}/webhooks/airudder", data=more) as resp:
            assert resp.status == 200
        assert [m["text"] for m in await messages(ws, 1)] == ["live"]
        await ws.close()
        # An allowed site, too.
        ws = await http.ws_connect(
            f"{nginx.url}/ws/via-nginx?after=7&token={token}", headers={"Origin": SHOP}
        )
        replayed, ready = await until_ready(ws)
        assert [m["seq"] for m in replayed] == [8] and ready["recovered"] is True
        await ws.close()


async def test_origins_and_tokens_through_nginx_as_direct(proxied: tuple[Bridge, Nginx]) -> None:
    bridge, nginx = proxied
    token = tokens.mint("guarded", 600, secret=SECRET)
    other = tokens.mint("someone-else", 600, secret=SECRET)
    cases = [
        ({"Origin": "https://evil.example"}, token, 403, "origin_not_allowed"),
        ({"Origin": SHOP}, "", 401, "token_missing"),
        ({"Origin": SHOP}, other, 403, "token_wrong_call"),
        ({"Origin": SHOP}, "not-a-jwt", 401, "token_invalid"),
    ]
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT)) as http:
        for headers, tok, status, code in cases:
            for base in (bridge.url, nginx.url):
                async with http.get(f"{base}/ws/guarded?token={tok}", headers=headers) as resp:
                    assert (resp.status, (await resp.json())["error"]) == (status, code), base


async def test_pages_limits_and_health_through_nginx(proxied: tuple[Bridge, Nginx]) -> None:
    _, nginx = proxied
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT)) as http:
        async with http.get(f"{nginx.url}/chat/page-1") as resp:
            assert resp.status == 200
            assert f"frame-ancestors 'self' {SHOP}" in resp.headers["Content-Security-Policy"]
        async with http.get(f"{nginx.url}/static/widget.js", headers={"Origin": SHOP}) as resp:
            assert resp.status == 200 and resp.headers["Access-Control-Allow-Origin"] == SHOP
        async with http.get(f"{nginx.url}/metrics") as resp:
            assert resp.status == 200 and "bridge_open_sockets" in await resp.text()
        async with http.get(f"{nginx.url}/readyz") as resp:
            assert resp.status == 200
        # Over the bridge's limit but under nginx's: the bridge's own JSON answer.
        big = io.BytesIO(b"x" * (1024 * 1024 + 10))
        async with http.post(f"{nginx.url}/webhooks/airudder", data=big) as resp:
            assert resp.status == 413 and (await resp.json())["error"] == "body_too_large"
        async with http.get(
            f"http://127.0.0.1:{nginx.http_port}/chat/x", allow_redirects=False
        ) as resp:
            assert resp.status == 301
            assert resp.headers["Location"] == f"https://127.0.0.1:{nginx.http_port}/chat/x"


def test_systemd_unit_verifies(tmp_path: Path) -> None:
    """`systemd-analyze verify` with the unit's ExecStart pointed at this checkout's
    command (it checks that the program exists); any warning fails the test."""
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is not installed (Debian: systemd)"
    program = Path(sys.executable).with_name("airudder-bridge")
    text = UNIT.read_text()
    assert "ExecStart=/opt/airudder-bridge/venv/bin/airudder-bridge serve" in text
    unit = tmp_path / UNIT.name
    unit.write_text(text.replace("/opt/airudder-bridge/venv/bin/airudder-bridge", str(program)))
    done = subprocess.run(
        [analyze, "verify", "--man=no", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0 and not done.stderr.strip(), done.stderr
    for needed in (
        "LimitNOFILE=",
        "StateDirectory=airudder-bridge",
        "EnvironmentFile=",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "RestartPreventExitStatus=2",
    ):
        assert needed in text


def test_env_example_names_every_setting_and_nothing_else() -> None:
    text = (ROOT / "deploy" / ".env.example").read_text()
    named = set(re.findall(r"^#?(BRIDGE_[A-Z_]+)=", text, re.MULTILINE))
    assert named == {f"BRIDGE_{name.upper()}" for name in Settings.model_fields}
