"""An accessibility audit in real headless Chromium: axe-core (npm, pinned in package.json)
on /chat (every kind of message, the list sheet open, light and dark, a phone and a desktop)
and /demo, into the widget's open shadow root; a violation of serious or critical impact
fails the test. The pages' CSP allows no injected script, so the audit's browser context
bypasses CSP (only here: every other test runs under the real policy)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from bridge.demo import samples
from tests.browser.conftest import TIMEOUT, Bridge, HostSite
from tests.browser.test_widget import new_call_id, seed, texts

AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]
FAILING = {"serious", "critical"}
PHONE = {"width": 360, "height": 740}
DESKTOP = {"width": 1100, "height": 800}


@pytest.fixture
def audit_context(browser: Browser) -> Iterator[BrowserContext]:
    if not AXE.exists():
        pytest.fail("axe-core is missing: run `npm ci` (it is pinned in package.json)")
    context = browser.new_context(locale="en-US", viewport=DESKTOP, bypass_csp=True)
    context.set_default_timeout(TIMEOUT * 1000)
    yield context
    context.close()


def audit(page: Page) -> list[dict[str, Any]]:
    """axe's violations on the page as it is now (open shadow roots included)."""
    if not page.evaluate("typeof window.axe === 'object'"):
        page.add_script_tag(path=str(AXE))
    result: dict[str, Any] = page.evaluate(
        """async (tags) => await axe.run(document, {
            runOnly: {type: "tag", values: tags}, resultTypes: ["violations"]})""",
        TAGS,
    )
    return [
        {
            "id": v["id"],
            "impact": v["impact"],
            "help": v["help"],
            "targets": [n["target"] for n in v["nodes"]][:5],
        }
        for v in result["violations"]
    ]


def serious(violations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [v for v in violations if v["impact"] in FAILING]


def every_kind(bridge: Bridge, host_site: HostSite, call_id: str) -> None:
    wav = f"{host_site.url}/tone.wav"
    local = {"image": f"{bridge.url}/static/demo/sample.svg", "video": wav, "audio": wav}
    bridge.callback(seed(call_id, {**local, "file": wav}))
    odd = {**samples.sample_message("text"), "content": {"type": "location", "lat": 1}}
    bridge.callback(samples.callback(call_id, odd))
    bridge.callback(texts(call_id, ["*Bold* _italic_ `code` https://example.com/x"]))
    bridge.callback(seed(call_id, {k: "http://127.0.0.1:9/x" for k in ("image", "video")}))


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("size", ["phone", "desktop"])
def test_chat_page_has_no_serious_violations(
    audit_context: BrowserContext, bridge: Bridge, host_site: HostSite, scheme: str, size: str
) -> None:
    page = audit_context.new_page()
    page.set_viewport_size(PHONE if size == "phone" else DESKTOP)
    page.emulate_media(color_scheme=scheme)  # type: ignore[arg-type]
    call_id = new_call_id()
    every_kind(bridge, host_site, call_id)
    page.goto(f"{bridge.url}/chat/{call_id}")
    chat = page.locator("airudder-chat")
    expect(chat.locator(".state")).to_have_text("Online")
    chat.get_by_role("button", name="女").first.click()  # a pick: a person's message, answered
    expect(chat.locator(".delivery-sent")).to_have_count(1)
    expect(chat.get_by_text("The video could not be loaded.")).to_be_visible()
    expect(chat.get_by_role("link", name="filename Download").first).to_be_visible()
    found = audit(page)
    print(f"/chat {scheme} {size}:", json.dumps(found, ensure_ascii=False))
    assert serious(found) == []

    chat.get_by_role("button", name="请选择").first.click()
    expect(chat.get_by_role("dialog")).to_be_visible()
    found = audit(page)
    print(f"/chat {scheme} {size}, list open:", json.dumps(found, ensure_ascii=False))
    assert serious(found) == []


def test_demo_page_has_no_serious_violations(
    audit_context: BrowserContext, bridge: Bridge, host_site: HostSite
) -> None:
    page = audit_context.new_page()
    call_id = new_call_id()
    every_kind(bridge, host_site, call_id)
    page.goto(f"{bridge.url}/demo?call_id={call_id}")
    chat = page.locator("airudder-chat")
    expect(chat.locator(".state")).to_have_text("Online")
    expect(chat.get_by_role("link", name="filename Download").first).to_be_visible()
    found = audit(page)
    print("/demo:", json.dumps(found, ensure_ascii=False))
    assert serious(found) == []


def test_the_audit_sees_into_the_widgets_shadow_root(
    audit_context: BrowserContext, bridge: Bridge
) -> None:
    """A control without a name, planted inside the shadow root, is found: the audit above
    would not pass by looking only at the page around the widget."""
    page = audit_context.new_page()
    page.goto(f"{bridge.url}/chat/{new_call_id()}")
    chat = page.locator("airudder-chat")
    expect(chat.locator(".state")).to_have_text("Online")
    chat.evaluate(
        """host => host.shadowRoot.querySelector(".composer-row")
            .appendChild(document.createElement("button"))"""
    )
    found = audit(page)
    assert [v["id"] for v in serious(found)] == ["button-name"], found
