"""What readers prefer, in real headless Chromium: the typing indicator (in every tab, and
its timeout), scroll that keeps the reader's place, the unread count in /chat's title, dark
mode, right-to-left Arabic, formatted bot text, and alt text from media.name."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from types import SimpleNamespace

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.browser.conftest import Bridge, HostSite, pass_through
from tests.browser.test_talk import FlakyUpstream, send
from tests.browser.test_widget import CONTRAST_PROBE, new_call_id, open_chat, seed, texts

# The tab's visibility, settable from the test: Chromium's headless tabs are always visible.
VISIBILITY = """
Object.defineProperty(document, "visibilityState", {
  configurable: true, get: () => window.__visibility || "visible" });
Object.defineProperty(document, "hidden", {
  configurable: true, get: () => window.__visibility === "hidden" });
window.__setVisibility = (v) => {
  window.__visibility = v;
  document.dispatchEvent(new Event("visibilitychange"));
};
"""


@pytest.fixture
def quiet() -> Iterator[FlakyUpstream]:
    """The vendor's API accepting every message and never answering: the bot is thinking."""
    upstream = FlakyUpstream()
    upstream.failing = False
    yield upstream
    upstream.stop()


@pytest.fixture(scope="module")
def any_bridge_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostSite]:
    """A customer's site whose CSP lets in any bridge on 127.0.0.1 (bridges with settings of
    their own run on ports of their own)."""
    site = HostSite(tmp_path_factory.mktemp("any"), SimpleNamespace(url="http://127.0.0.1:*"))
    yield site
    site.stop()


def embed(site: HostSite, bridge: Bridge, name: str, call_id: str, attrs: str = "") -> str:
    (site.root / "help.css").write_text("#help { height: 520px; }")
    return site.page(
        name,
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Shop</title>'
        '<link rel="stylesheet" href="/help.css"></head>'
        '<body><main><h1>Shop</h1><div id="help"></div></main>'
        f'<script src="{bridge.url}/static/widget.js" data-call-id="{call_id}" '
        f'data-mode="inline" data-target="#help" {attrs} defer></script></body></html>',
    )


def typing(chat: Locator) -> Locator:
    return chat.locator(".typing .dots")


def test_typing_shows_in_every_tab_until_the_bot_answers(
    new_page: Callable[[], Page], bridges: Callable[..., Bridge], quiet: FlakyUpstream
) -> None:
    bridge = bridges(upstream_url=quiet.url)
    call_id = new_call_id()
    tab1, tab2 = new_page(), new_page()
    chat1, chat2 = open_chat(tab1, bridge, call_id), open_chat(tab2, bridge, call_id)
    expect(typing(chat1)).to_have_count(0)
    send(chat1, "where is my parcel?")
    for chat in (chat1, chat2):
        expect(typing(chat)).to_be_visible()
        expect(chat.get_by_role("status").filter(has_text="The bot is typing…")).to_have_count(1)
    tab2.reload()  # derived from the session's messages: a reload shows it too
    expect(typing(chat2)).to_be_visible()

    bridge.callback(texts(call_id, ["It is on its way."]))
    for chat in (chat1, chat2):
        expect(chat.get_by_text("It is on its way.", exact=True)).to_be_visible()
        expect(typing(chat)).to_have_count(0)
        expect(chat.locator(".typing")).to_have_text("")


def test_typing_goes_by_itself_after_its_timeout(
    page: Page, bridges: Callable[..., Bridge], quiet: FlakyUpstream, any_bridge_site: HostSite
) -> None:
    bridge = bridges(upstream_url=quiet.url)
    call_id = new_call_id()
    page.goto(embed(any_bridge_site, bridge, "typing.html", call_id, 'data-typing-timeout="3"'))
    chat = page.locator("airudder-chat")
    expect(chat.locator(".state")).to_have_text("Online")
    send(chat, "anyone there?")
    expect(typing(chat)).to_be_visible()
    expect(chat.locator(".delivery")).to_have_text("Sent")
    expect(typing(chat)).to_have_count(0)  # no answer came: gone at its timeout
    assert chat.get_by_text("anyone there?", exact=True).is_visible()


def test_the_log_stays_put_while_reading_and_counts_new_messages(
    page: Page, bridge: Bridge
) -> None:
    call_id = new_call_id()
    page.set_viewport_size({"width": 800, "height": 600})
    chat = open_chat(page, bridge, call_id)
    words = [f"line {i}" for i in range(40)]
    bridge.callback(texts(call_id, words))
    expect(chat.get_by_text("line 39", exact=True)).to_be_in_viewport()  # followed: at the end
    log = chat.locator(".log")
    log.evaluate("l => { l.scrollTop = 0; }")  # the reader goes up into the history
    expect(chat.get_by_text("line 0", exact=True)).to_be_in_viewport()
    jump = chat.locator("button.jump")
    expect(jump).to_be_hidden()

    bridge.callback(texts(call_id, ["news 1"]))
    expect(jump).to_have_text("1 new message")
    bridge.callback(texts(call_id, ["news 2", "news 3"]))
    expect(jump).to_have_text("3 new messages")
    assert log.evaluate("l => l.scrollTop") == 0  # not yanked down
    expect(chat.get_by_text("line 0", exact=True)).to_be_in_viewport()

    jump.click()
    expect(chat.get_by_text("news 3", exact=True)).to_be_in_viewport()
    expect(jump).to_be_hidden()
    bridge.callback(texts(call_id, ["news 4"]))  # at the bottom again: it follows
    expect(chat.get_by_text("news 4", exact=True)).to_be_in_viewport()
    expect(jump).to_be_hidden()


def test_the_chat_pages_title_counts_unread_while_the_tab_is_hidden(
    page: Page, bridge: Bridge, host_site: HostSite
) -> None:
    call_id = new_call_id()
    page.add_init_script(VISIBILITY)
    open_chat(page, bridge, call_id)
    expect(page).to_have_title("Chat")
    page.evaluate("__setVisibility('hidden')")
    bridge.callback(texts(call_id, ["one", "two"]))
    expect(page).to_have_title("(2) Chat")
    page.evaluate("__setVisibility('visible')")
    expect(page).to_have_title("Chat")

    # A host page's title is left alone unless it opts in.
    page.goto(embed(host_site, bridge, "title.html", call_id))
    expect(page.locator("airudder-chat .state")).to_have_text("Online")
    page.evaluate("__setVisibility('hidden')")
    bridge.callback(texts(call_id, ["three"]))
    expect(page.locator("airudder-chat").get_by_text("three", exact=True)).to_be_attached()
    expect(page).to_have_title("Shop")
    page.goto(embed(host_site, bridge, "title2.html", call_id, 'data-page-title="true"'))
    expect(page.locator("airudder-chat .state")).to_have_text("Online")
    page.evaluate("__setVisibility('hidden')")
    bridge.callback(texts(call_id, ["four"]))
    expect(page).to_have_title("(1) Shop")


def test_dark_mode_from_the_system_passes_wcag_aa(page: Page, bridge: Bridge) -> None:
    page.emulate_media(color_scheme="dark")
    call_id = new_call_id()
    chat = open_chat(page, bridge, call_id)
    bridge.callback(seed(call_id, {k: "http://127.0.0.1:9/x" for k in ("image", "video", "audio")}))
    bridge.callback(texts(call_id, ["*bold* _italic_ `code` ```block```"]))
    chat.get_by_role("button", name="女").click()
    send(chat, "hello https://example.com/x")
    expect(chat.locator(".delivery-sent")).to_have_count(2)
    expect(chat.get_by_text("The audio could not be loaded.")).to_be_visible()
    background = chat.locator(".log").evaluate("l => getComputedStyle(l).backgroundColor")
    assert background == "rgb(14, 19, 27)", background  # the dark surface
    assert chat.evaluate(CONTRAST_PROBE) == []
    chat.get_by_role("button", name="请选择").click()
    expect(chat.get_by_role("dialog")).to_be_visible()
    assert chat.evaluate(CONTRAST_PROBE) == []


def test_data_theme_overrides_the_system(page: Page, bridge: Bridge, host_site: HostSite) -> None:
    call_id = new_call_id()
    surface = "l => getComputedStyle(l).backgroundColor"
    page.emulate_media(color_scheme="light")
    page.goto(embed(host_site, bridge, "dark.html", call_id, 'data-theme="dark"'))
    log = page.locator("airudder-chat .log")
    expect(log).to_be_visible()  # its stylesheet is in
    assert log.evaluate(surface) == "rgb(14, 19, 27)"
    page.emulate_media(color_scheme="dark")
    page.goto(embed(host_site, bridge, "light.html", call_id, 'data-theme="light"'))
    expect(log).to_be_visible()
    assert log.evaluate(surface) == "rgb(243, 245, 248)"


def test_arabic_is_right_to_left(page: Page, bridge: Bridge) -> None:
    call_id = new_call_id()
    page.goto(f"{bridge.url}/chat/{call_id}?lang=ar")
    chat = page.locator("airudder-chat")
    expect(chat.locator(".state")).to_have_text("متصل")
    expect(chat.get_by_role("textbox", name="رسالة")).to_have_attribute(
        "placeholder", "اكتب رسالة…"
    )
    bridge.callback(texts(call_id, ["مرحبًا! كيف يمكنني مساعدتك؟", "Order 42 is ready"]))
    arabic = chat.get_by_text("مرحبًا! كيف يمكنني مساعدتك؟", exact=True)
    expect(arabic).to_be_visible()
    expect(arabic).to_have_attribute("dir", "auto")
    assert arabic.evaluate("p => getComputedStyle(p).direction") == "rtl"
    english = chat.get_by_text("Order 42 is ready", exact=True)
    assert english.evaluate("p => getComputedStyle(p).direction") == "ltr"  # its own direction
    # The layout mirrors: the bot's bubbles sit on the right, the person's on the left.
    box = chat.get_by_role("textbox", name="رسالة")
    box.fill("شكرا")
    box.press("Enter")
    log = chat.locator(".log").bounding_box()
    bot = chat.locator(".from-bot .bubble").first.bounding_box()
    expect(chat.locator(".from-user .delivery")).to_have_text("تم الإرسال")
    user = chat.locator(".from-user .bubble").first.bounding_box()
    assert log and bot and user
    assert bot["x"] + bot["width"] > log["x"] + log["width"] - 40
    assert user["x"] - log["x"] < 40


FORMATTED = (
    "*Bold* and _italic_ and ~gone~ and `a_b*c` and *<img src=x onerror=alert(1)>* "
    "see https://example.com/a_b_c_d and snake_case_stays\n"
    "```<script>window.__pwned = 1</script>\n*not bold*```"
)


def test_bot_text_is_formatted_as_nodes_and_html_stays_text(
    page: Page, bridge: Bridge, host_site: HostSite
) -> None:
    call_id = new_call_id()
    chat = open_chat(page, bridge, call_id)
    bridge.callback(texts(call_id, [FORMATTED]))
    text = chat.locator(".from-bot .text")
    expect(text.locator("strong").first).to_have_text("Bold")
    expect(text.locator("em")).to_have_text("italic")
    expect(text.locator("s")).to_have_text("gone")
    expect(text.locator("code.code")).to_have_text("a_b*c")
    expect(text.locator("strong").nth(1)).to_have_text("<img src=x onerror=alert(1)>")
    block = text.locator("code.code-block")
    expect(block).to_have_text("<script>window.__pwned = 1</script>\n*not bold*")
    link = text.get_by_role("link", name="https://example.com/a_b_c_d")
    expect(link).to_have_attribute("href", "https://example.com/a_b_c_d")
    expect(text).to_contain_text("snake_case_stays")
    expect(chat.locator(".messages img, .messages script")).to_have_count(0)
    assert page.evaluate("window.__pwned") is None
    # The person's own words are never formatted.
    send(chat, "*mine*")
    expect(chat.locator(".from-user .text")).to_have_text("*mine*")

    # data-format="off": the bot's text as it came, links still links.
    page.goto(embed(host_site, bridge, "plain-text.html", call_id, 'data-format="off"'))
    # The first bot message: the demo bot's answer to "*mine*" follows it.
    plain = page.locator("airudder-chat .from-bot .text").first
    expect(plain).to_contain_text("*Bold* and _italic_ and ~gone~")
    expect(plain.locator("strong, em, s, code")).to_have_count(0)
    expect(plain.get_by_role("link", name="https://example.com/a_b_c_d")).to_be_visible()


def test_media_take_their_alt_text_from_media_name(
    page: Page, bridge: Bridge, host_site: HostSite
) -> None:
    """The server will carry the vendor's media.name as `name`; injected here as it will be."""
    call_id = new_call_id()
    routes = pass_through(page, call_id)
    chat = open_chat(page, bridge, call_id)
    base = {"v": 1, "call_id": call_id, "from": "bot", "ts": int(time.time())}
    sample = f"{bridge.url}/static/demo/sample.svg"
    frames = [
        {"seq": 1, "id": "i1", "kind": "image", "url": sample, "name": "A parcel at the door"},
        {"seq": 2, "id": "i2", "kind": "image", "url": sample},
        {
            "seq": 3,
            "id": "v1",
            "kind": "video",
            "url": f"{host_site.url}/tone.wav",
            "name": "How to pack",
        },
        {"seq": 4, "id": "i3", "kind": "image", "url": "http://127.0.0.1:9/x", "name": "Label"},
    ]
    for message in frames:
        routes[-1].send(json.dumps({"type": "message", "message": {**base, **message}}))
    expect(chat.get_by_role("img", name="A parcel at the door")).to_be_visible()
    expect(
        chat.get_by_role("link", name="Open image in a new tab: A parcel at the door")
    ).to_be_visible()
    expect(chat.get_by_role("img", name="Image", exact=True)).to_be_visible()  # no name
    expect(chat.locator("video")).to_have_attribute("aria-label", "How to pack")
    failed = chat.locator(".media-failed").filter(has_text="The image could not be loaded.")
    expect(failed).to_contain_text("Label: The image could not be loaded.")
