"""The README's JavaScript API example, as written: page code that runs before the
deferred widget.js queues itself (AIRudderChatQueue) or waits for "airudderchat:ready"."""

from __future__ import annotations

import uuid

from playwright.sync_api import Page, expect

from bridge.demo import samples
from tests.browser.conftest import Bridge, HostSite


def test_code_before_the_deferred_script_mounts_through_the_queue(
    page: Page, bridge: Bridge, host_site: HostSite
) -> None:
    call_id = f"queue-{uuid.uuid4().hex[:12]}"
    bridge.callback(samples.callback(call_id, samples.text_message("queued hello", "m1")))
    (host_site.root / "early.js").write_text(
        'document.addEventListener("airudderchat:ready", (event) => {\n'
        "  document.body.dataset.ready = typeof event.detail.mount;\n"
        "});\n"
        "(window.AIRudderChatQueue ||= []).push((AIRudderChat) => {\n"
        f'  AIRudderChat.mount(document.querySelector("#help"), {{callId: "{call_id}", '
        f'server: "{bridge.url}", mode: "inline"}});\n'
        "});\n"
    )
    url = host_site.page(
        "queued.html",
        '<!doctype html><html><head><meta charset="utf-8">'
        f'<script src="{bridge.url}/static/widget.js" defer></script>'
        '<script src="/early.js"></script></head>'
        '<body><div id="help"></div></body></html>',
    )
    page.goto(url)
    chat = page.locator("#help airudder-chat")
    expect(chat.get_by_text("queued hello", exact=True)).to_be_visible()
    expect(page.locator("body")).to_have_attribute("data-ready", "function")
    # Queued after the script has loaded: runs at once.
    page.evaluate(
        "AIRudderChatQueue.push((chat) => { document.body.dataset.late = chat.version; })"
    )
    expect(page.locator("body")).to_have_attribute("data-late", "1")
