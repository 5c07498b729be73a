"""Real things for the browser tests: the bridge as a subprocess (``python -m bridge serve``)
on 127.0.0.1, a plain host web site on another port (another origin, as on a customer's
site), and Debian's headless Chromium driven by Playwright, launched once per test module."""

from __future__ import annotations

import threading
import wave
from collections.abc import Callable, Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    WebSocketRoute,
    sync_playwright,
)

from tests.servers import Bridge, free_port

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT = 15.0  # seconds; every wait in these tests is bounded by it


@pytest.fixture(scope="session")
def bridges() -> Iterator[Callable[..., Bridge]]:
    """``bridges(**env)``: a running bridge with those ``BRIDGE_*`` settings, started once per
    distinct setting and shared; every test uses its own call_id, so they do not meet."""
    running: dict[tuple[tuple[str, str], ...], Bridge] = {}

    def get(**env: str) -> Bridge:
        key = tuple(sorted(env.items()))
        if key not in running:
            settings = {f"BRIDGE_{k.upper()}": v for k, v in env.items()}
            running[key] = Bridge(free_port(), **settings).start()
        return running[key]

    yield get
    for bridge in running.values():
        bridge.stop()


@pytest.fixture(scope="session")
def bridge(bridges: Callable[..., Bridge]) -> Bridge:
    return bridges()


class _Handler(SimpleHTTPRequestHandler):
    """Static files, each page with its own strict CSP (no inline code allowed)."""

    csp = ""

    def end_headers(self) -> None:
        if self.path.endswith(".html"):
            self.send_header("Content-Security-Policy", self.csp)
        super().end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _tone(path: Path) -> None:
    """A short, real WAV file for the audio and video elements to load."""
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(1)
        w.setframerate(8000)
        w.writeframes(bytes(128 + (20 if (i // 10) % 2 else -20) for i in range(4000)))


class HostSite:
    """A customer's plain web site on another origin, serving files written into ``root``."""

    def __init__(self, root: Path, bridge: Bridge) -> None:
        self.root = root
        ws = bridge.url.replace("http://", "ws://")
        handler = type(
            "Handler",
            (_Handler,),
            {
                "csp": f"default-src 'self'; script-src 'self' {bridge.url}; "
                f"style-src 'self' {bridge.url}; connect-src {ws}; img-src 'self' {bridge.url}; "
                f"media-src 'self'; frame-src {bridge.url}",
            },
        )
        _tone(root / "tone.wav")
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(root)))
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def page(self, name: str, html: str) -> str:
        (self.root / name).write_text(html, encoding="utf-8")
        return f"{self.url}/{name}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="session")
def host_site(tmp_path_factory: pytest.TempPathFactory, bridge: Bridge) -> Iterator[HostSite]:
    site = HostSite(tmp_path_factory.mktemp("host"), bridge)
    yield site
    site.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # Per module, not per session: sync Playwright runs an event loop of its own while it is
    # open, and the async (pytest-asyncio) tests in other modules need theirs.
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    context = browser.new_context(locale="en-US", viewport={"width": 1100, "height": 800})
    context.set_default_timeout(TIMEOUT * 1000)
    yield context
    context.close()


class Problems:
    """Script errors, CSP violations and dialogs seen by a page: each one fails the test."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def watch(self, page: Page) -> Page:
        page.on("pageerror", lambda exc: self.seen.append(f"page error: {exc}"))
        page.on("console", self._console)
        page.on("dialog", self._dialog)
        return page

    def _console(self, message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            self.seen.append(f"CSP violation: {message.text}")

    def _dialog(self, dialog: Any) -> None:
        self.seen.append(f"a dialog opened: {dialog.message}")
        dialog.dismiss()


@pytest.fixture
def problems() -> Iterator[Problems]:
    found = Problems()
    yield found
    assert found.seen == []


@pytest.fixture
def new_page(context: BrowserContext, problems: Problems) -> Callable[[], Page]:
    """Pages (tabs) of one browser profile, each watched for problems."""
    return lambda: problems.watch(context.new_page())


@pytest.fixture
def page(new_page: Callable[[], Page]) -> Page:
    return new_page()


def pass_through(page: Page, call_id: str) -> list[WebSocketRoute]:
    """Route the page's sockets of ``call_id`` to the real server, unchanged, and keep the
    routes, so a test can put a frame of its own in (``route.send``)."""
    routes: list[WebSocketRoute] = []

    def route(ws: WebSocketRoute) -> None:
        ws.connect_to_server()
        routes.append(ws)

    page.route_web_socket(lambda url: f"/ws/{call_id}" in url, route)
    return routes
