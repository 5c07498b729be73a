"""The built package: wheel and sdist complete, and the wheel run from another directory.

The wheel and sdist are built with hatchling (no network), the wheel is installed into a
fresh venv (its dependencies are taken from this venv through a .pth file rather than
downloaded again), and ``airudder-bridge serve`` runs from an unrelated directory against
Redis (the Lua scripts), the pages, the widget's files and the webhook.
"""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import tarfile
import venv
import zipfile
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import orjson
import pytest

from bridge import __version__
from tests.helpers import TIMEOUT, until_ready
from tests.servers import ROOT, Bridge, free_port, wait_for


def tracked(*folders: str) -> set[str]:
    done = subprocess.run(
        ["git", "ls-files", *folders], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return {line for line in done.stdout.splitlines() if "__pycache__" not in line}


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    hatchling = Path(sys.executable).with_name("hatchling")
    subprocess.run(
        [str(hatchling), "build", "-d", str(out)], cwd=ROOT, check=True, capture_output=True,
        timeout=120,
    )  # fmt: skip
    return out


def test_wheel_and_sdist_hold_every_file(dist: Path) -> None:
    (wheel,) = dist.glob("*.whl")
    (sdist,) = dist.glob("*.tar.gz")
    in_wheel = set(zipfile.ZipFile(wheel).namelist())
    expected = tracked("bridge") | {f"bridge/{name}" for name in tracked("templates", "static")}
    assert expected <= in_wheel, sorted(expected - in_wheel)
    assert {"bridge/store/lua/append.lua", "bridge/demo/seed_callback.json"} <= in_wheel
    with tarfile.open(sdist) as archive:
        top = f"airudder_bridge-{__version__}/"
        in_sdist = {name.removeprefix(top) for name in archive.getnames()}
    wanted = tracked("bridge", "templates", "static", "deploy", "tests", "scripts", "docs")
    assert wanted | {"pyproject.toml", "README.md", "LICENSE"} <= in_sdist


class InstalledBridge(Bridge):
    """The installed ``airudder-bridge serve``, started in ``cwd``."""

    def __init__(self, bin_dir: Path, cwd: Path, **env: str) -> None:
        super().__init__(free_port(), **env)
        self.bin_dir, self.cwd = bin_dir, cwd

    def start(self) -> InstalledBridge:
        command = [str(self.bin_dir / "airudder-bridge"), "serve", "--port", str(self.port)]
        self.process = subprocess.Popen(command, cwd=self.cwd, env=self.env)
        try:
            wait_for(self._healthy, "the installed bridge", self.process)
        except RuntimeError:
            self.kill()
            raise
        return self


@pytest.fixture(scope="module")
def installed(dist: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh venv with the wheel installed; its bin/ directory."""
    home = tmp_path_factory.mktemp("wheel-venv")
    venv.create(home, with_pip=False)
    python = home / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    # The dependencies from this venv; the project itself only from the wheel.
    Path(site, "deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    (wheel,) = dist.glob("*.whl")
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
         "--no-index", "--quiet", str(wheel)],
        check=True, timeout=120,
    )  # fmt: skip
    yield home / "bin"


def test_the_installed_wheel_is_the_one_imported(installed: Path, tmp_path: Path) -> None:
    where = subprocess.run(
        [str(installed / "python"), "-c", "import bridge; print(bridge.__file__)"],
        cwd=tmp_path, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert where.startswith(str(installed.parent)), f"bridge imported from {where}"
    version = subprocess.run(
        [str(installed / "airudder-bridge"), "--version"],
        cwd=tmp_path, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert version.strip() == f"airudder-bridge {__version__}"


async def test_the_installed_wheel_serves_from_another_directory(
    installed: Path, tmp_path: Path, redis_url: str
) -> None:
    bridge = InstalledBridge(installed, tmp_path, BRIDGE_REDIS_URL=redis_url)
    bridge.start()
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT)) as http:
            for path in ("/chat/pkg-1", "/static/widget.js", "/static/widget/ui.js",
                         "/static/widget.css", "/demo?call_id=pkg-1"):  # fmt: skip
                async with http.get(bridge.url + path) as resp:
                    assert resp.status == 200, path
            async with http.post(
                f"{bridge.url}/demo/send", json={"call_id": "pkg-1", "sample": "all"}
            ) as resp:  # the seed callback (a data file), through the webhook
                assert resp.status == 200 and (await resp.json())["status"] == 200
            ws = await http.ws_connect(f"{bridge.url}/ws/pkg-1")
            replayed, _ = await until_ready(ws)  # from Redis: the Lua scripts
            assert len(replayed) == 7
            await ws.close()
            body = orjson.dumps({"event": "message.send"})
            async with http.post(f"{bridge.url}/webhooks/airudder", data=body) as resp:
                assert resp.status == 422
    finally:
        bridge.stop()
