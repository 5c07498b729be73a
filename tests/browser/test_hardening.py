"""Hardening in real headless Chromium: the pages' CSP holds with nothing blocked, tokens and
allowed origins decide which page joins a session, framing only by the allowed sites."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from bridge import tokens
from bridge.demo import samples
from tests.browser.conftest import Bridge, HostSite

SECRET = "browser-widget-secret"

# Collects every CSP violation the page reports, shadow DOM included (the event is composed).
CSP_LISTENER = """
window.__csp = [];
document.addEventListener("securitypolicyviolation",
  (e) => window.__csp.push(e.violatedDirective + " " + e.blockedURI), true);
"""


class Sites:
    """Two customer sites on other origins: one in BRIDGE_ALLOWED_ORIGINS, one not."""

    def __init__(self, root: Path) -> None:
        any_local_bridge: Any = SimpleNamespace(url="http://127.0.0.1:*")  # for their CSP
        self.allowed = HostSite(root / "allowed", any_local_bridge)
        self.other = HostSite(root / "other", any_local_bridge)

    def stop(self) -> None:
        self.allowed.stop()
        self.other.stop()


@pytest.fixture(scope="module")
def sites(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sites]:
    root = tmp_path_factory.mktemp("sites")
    (root / "allowed").mkdir()
    (root / "other").mkdir()
    found = Sites(root)
    yield found
    found.stop()


@pytest.fixture(scope="module")
def guarded(bridges: Any, sites: Sites) -> Bridge:
    """A bridge as in production: widget tokens on, one allowed site."""
    bridge: Bridge = bridges(widget_secret=SECRET, allowed_origins=sites.allowed.url)
    return bridge


def new_call_id() -> str:
    return f"h-{uuid.uuid4().hex[:12]}"


def token(call_id: str, ttl: float = 600) -> str:
    return tokens.mint(call_id, ttl, secret=SECRET)


def seed_with_local_media(bridge: Bridge, site: HostSite, call_id: str) -> dict[str, Any]:
    """The seven-message example, its media on hosts that answer (this bridge, a site)."""
    body = samples.seed_callback(call_id)
    for message in body["messages"]:
        content = message["content"]
        if content["type"] == "image":
            content["media"]["origin_url"] = f"{bridge.url}/static/demo/sample.svg"
        elif content["type"] in ("video", "audio", "file"):
            content["media"]["origin_url"] = f"{site.url}/tone.wav"
    return body


def widget_page(site: HostSite, bridge: Bridge, call_id: str, data_token: str) -> str:
    """A customer's page embedding the widget, as docs/security.md shows."""
    return site.page(
        f"{call_id}.html",
        '<!doctype html><html><head><meta charset="utf-8"><title>Shop</title></head><body>'
        '<h1>Shop</h1><div id="help"></div>'
        f'<script src="{bridge.url}/static/widget.js" data-call-id="{call_id}" '
        f'data-token="{data_token}" data-mode="inline" data-target="#help" defer></script>'
        "</body></html>",
    )


def test_full_page_chat_loads_every_kind_with_no_csp_violation(
    page: Page, guarded: Bridge, sites: Sites
) -> None:
    call_id = new_call_id()
    guarded.callback(seed_with_local_media(guarded, sites.allowed, call_id))
    page.add_init_script(CSP_LISTENER)
    response = page.goto(f"{guarded.url}/chat/{call_id}?token={token(call_id)}")
    assert (
        response is not None and "script-src 'self'" in response.headers["content-security-policy"]
    )
    chat = page.locator("airudder-chat")
    expect(chat.locator(".state")).to_have_text("Online")
    expect(chat.locator(".messages .row-msg")).to_have_count(7)
    expect(chat.locator("img").first).to_be_visible()
    chat.get_by_role("button", name="男").click()  # a socket frame out, a message back
    expect(chat.locator(".row-msg.from-user .text")).to_have_text("男")
    assert page.evaluate("window.__csp") == []  # and `problems` saw no CSP console message


def test_the_violation_listener_does_see_inline_script(
    context: BrowserContext, guarded: Bridge
) -> None:
    """The control for the test above: the same listener reports what the CSP blocks."""
    page = context.new_page()  # not watched by `problems`: a violation is the point here
    page.add_init_script(CSP_LISTENER)
    page.goto(f"{guarded.url}/chat/{new_call_id()}")
    page.evaluate(
        "() => { const s = document.createElement('script');"
        " s.textContent = 'window.ran = true'; document.body.append(s); }"
    )
    page.wait_for_function("window.__csp.length > 0")
    assert page.evaluate("window.__csp")[0].startswith("script-src")
    assert page.evaluate("window.ran") is None


def test_widget_on_the_allowed_site_joins_with_its_token_and_renews_it(
    page: Page, guarded: Bridge, sites: Sites
) -> None:
    call_id = new_call_id()
    guarded.callback(samples.callback(call_id, samples.text_message("welcome", "m1")))
    expired = tokens.mint(call_id, 60, secret=SECRET, now=0)
    page.goto(widget_page(sites.allowed, guarded, call_id, expired))
    chat = page.locator("#help airudder-chat")
    expect(chat.locator(".state")).to_have_text("Reconnecting…")  # refused: nothing shown
    expect(chat.locator(".messages .row-msg")).to_have_count(0)

    sockets: list[str] = []
    page.on("websocket", lambda ws: sockets.append(ws.url))
    page.evaluate(f"AIRudderChat.setToken('{token(call_id)}')")  # the site's renewal
    expect(chat.locator(".state")).to_have_text("Online")
    expect(chat.get_by_text("welcome", exact=True)).to_be_visible()
    guarded.callback(samples.callback(call_id, samples.text_message("second", "m2")))
    expect(chat.get_by_text("second", exact=True)).to_be_visible()

    page.evaluate(f"AIRudderChat.setToken('{token(call_id, 1200)}')")  # renewed again
    expect(chat.locator(".state")).to_have_text("Online")
    guarded.callback(samples.callback(call_id, samples.text_message("third", "m3")))
    expect(chat.locator(".messages .text")).to_have_text(["welcome", "second", "third"])
    assert "after=2" in sockets[-1], "the renewed socket resumes after what was shown"


def test_widget_on_another_site_is_refused_even_with_a_valid_token(
    page: Page, guarded: Bridge, sites: Sites
) -> None:
    call_id = new_call_id()
    guarded.callback(samples.callback(call_id, samples.text_message("private", "m1")))
    same_token = token(call_id)
    sockets: list[str] = []
    page.on("websocket", lambda ws: sockets.append(ws.url))
    # The widget's modules come with CORS for the allowed sites only: here it never starts.
    with page.expect_console_message(lambda m: "AIRudderChat" in m.text):
        page.goto(widget_page(sites.other, guarded, call_id, same_token))
    expect(page.locator("airudder-chat")).to_have_count(0)
    assert sockets == []
    # A socket the page opens by itself with the same token is refused before any frame.
    url = f"{guarded.url.replace('http', 'ws')}/ws/{call_id}?token={same_token}"
    frames = page.evaluate(
        """(url) => new Promise((resolve) => {
            const frames = [];
            const ws = new WebSocket(url);
            ws.onmessage = (e) => frames.push(e.data);
            ws.onclose = () => resolve(frames);
        })""",
        url,
    )
    assert frames == []
    # The token was fine: on the allowed site the same one joins.
    page.goto(widget_page(sites.allowed, guarded, call_id, same_token))
    chat = page.locator("#help airudder-chat")
    expect(chat.get_by_text("private", exact=True)).to_be_visible()


@pytest.mark.parametrize("allowed", [True, False])
def test_full_page_chat_may_be_framed_only_by_the_allowed_site(
    context: BrowserContext, guarded: Bridge, sites: Sites, allowed: bool
) -> None:
    call_id = new_call_id()
    guarded.callback(samples.callback(call_id, samples.text_message("framed hello", "m1")))
    site = sites.allowed if allowed else sites.other
    url = site.page(
        f"frame-{call_id}.html",
        '<!doctype html><html><head><meta charset="utf-8"></head><body>'
        f'<iframe src="{guarded.url}/chat/{call_id}?token={token(call_id)}" title="Chat">'
        "</iframe></body></html>",
    )
    page = context.new_page()  # framing refused is reported on the console: expected here
    chat = page.frame_locator("iframe[title=Chat]").locator("airudder-chat")
    if allowed:
        page.goto(url)
        expect(chat.get_by_text("framed hello", exact=True)).to_be_visible()
        return
    with page.expect_console_message(lambda m: "frame-ancestors" in m.text):
        page.goto(url)
    expect(chat).to_have_count(0)
