"""The chat widget in real headless Chromium: every kind of message, lists and buttons,
text that looks like HTML, reconnects, the floating launcher on a customer's page, phones."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from playwright.sync_api import Locator, Page, WebSocketRoute, expect

from bridge.demo import samples
from tests.browser.conftest import Bridge, HostSite

CLOSED_PORT_URL = "http://127.0.0.1:9/unreachable"  # port 9 (discard) is closed here: fails at once


def new_call_id() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"


def seed(call_id: str, media: dict[str, str] | None = None) -> dict[str, Any]:
    """The spec's seven-message example, its media URLs replaced by ``media[kind]``."""
    body = samples.seed_callback(call_id)
    for message in body["messages"]:
        content = message["content"]
        if media and content["type"] in media:
            content["media"]["origin_url"] = media[content["type"]]
    return body


def texts(call_id: str, words: list[str]) -> dict[str, Any]:
    return samples.callback(
        call_id, *(samples.text_message(w, uuid.uuid4().hex, 1_800_000_000) for w in words)
    )


def open_chat(page: Page, bridge: Bridge, call_id: str, query: str = "") -> Locator:
    page.goto(f"{bridge.url}/chat/{call_id}{query}")
    chat = page.locator("airudder-chat")
    expect(chat.locator(".state")).to_have_text("Online")
    return chat


def shown_texts(chat: Locator) -> list[str]:
    return chat.locator(".messages .text").all_inner_texts()


def test_every_kind_renders(page: Page, bridge: Bridge, host_site: HostSite) -> None:
    call_id = new_call_id()
    chat = open_chat(page, bridge, call_id)
    wav = f"{host_site.url}/tone.wav"
    bridge.callback(
        seed(
            call_id,
            {
                "image": f"{bridge.url}/static/demo/sample.svg",
                "video": wav,  # an audio-only file plays in a <video> too
                "audio": wav,
                "file": f"{host_site.url}/tone.wav",
            },
        )
    )
    odd = samples.callback(
        call_id,
        {**samples.sample_message("text"), "content": {"type": "x-unknown-test-kind", "lat": 1}},
        samples.text_message("Track it: https://example.com/t?id=1.\nThanks 谢谢 🎉", "m2"),
    )
    bridge.callback(odd)

    expect(chat.get_by_text("hi", exact=True)).to_be_visible()
    image = chat.locator("img.image")
    expect(image).to_be_visible()
    assert image.evaluate("img => img.complete && img.naturalWidth > 0")
    image_link = chat.locator("a.image-link")
    expect(image_link).to_have_attribute("href", f"{bridge.url}/static/demo/sample.svg")
    expect(image_link).to_have_attribute("target", "_blank")
    for kind in ("video", "audio"):
        player = chat.locator(f"{kind}.{kind}")
        expect(player).to_be_visible()
        assert player.evaluate("m => m.controls")
        page.wait_for_function("m => m.readyState >= 1", arg=player.element_handle())
    file_link = chat.get_by_role("link", name="filename Download")
    expect(file_link).to_be_visible()
    expect(file_link).to_have_attribute("href", f"{host_site.url}/tone.wav")
    expect(file_link.locator("svg.icon-file")).to_be_attached()
    expect(chat.get_by_role("button", name="请选择")).to_be_visible()
    expect(chat.get_by_text("请选择你要咨询的业务类(本次通过list展示)")).to_be_visible()
    expect(chat.get_by_text("请选择您的性别(button)👉👉👉")).to_be_visible()
    expect(
        chat.get_by_text("This message (x-unknown-test-kind) cannot be shown here.")
    ).to_be_visible()
    # Text keeps its line break, and only the http(s) URL became a link.
    expect(chat.get_by_text("Thanks 谢谢 🎉")).to_be_visible()
    url = chat.get_by_role("link", name="https://example.com/t?id=1")
    expect(url).to_have_attribute("href", "https://example.com/t?id=1")
    expect(url).to_have_attribute("rel", "noopener noreferrer")
    expect(url).to_have_attribute("target", "_blank")
    # Bot messages sit on the left, with a time, under a date divider.
    bubble = chat.locator(".bubble").filter(has=page.get_by_text("hi", exact=True))
    expect(bubble).to_be_visible()
    box, log = bubble.bounding_box(), chat.locator(".log").bounding_box()
    assert box and log and box["x"] - log["x"] < 40
    expect(chat.locator(".row-msg time").first).to_be_visible()
    expect(chat.locator(".divider").first).to_be_visible()


def test_media_that_fails_to_load_shows_a_readable_fallback(page: Page, bridge: Bridge) -> None:
    call_id = new_call_id()
    chat = open_chat(page, bridge, call_id)
    media = {k: f"{CLOSED_PORT_URL}.{k}" for k in ("image", "video", "audio")}
    bridge.callback(seed(call_id, media))
    for kind in ("image", "video", "audio"):
        expect(chat.get_by_text(f"The {kind} could not be loaded.")).to_be_visible()
    links = chat.locator(".media-failed").get_by_role("link", name="Open link")
    expect(links).to_have_count(3)
    expect(chat.locator("img, video, audio")).to_have_count(0)
    # The log still fits its width: nothing broke the layout.
    assert chat.locator(".log").evaluate("l => l.scrollWidth <= l.clientWidth")


def test_buttons_appear_in_order_under_their_text(page: Page, bridge: Bridge) -> None:
    call_id = new_call_id()
    chat = open_chat(page, bridge, call_id)
    bridge.callback(samples.callback(call_id, samples.sample_message("button")))
    group = chat.get_by_role("group", name="请选择您的性别(button)👉👉👉")
    expect(group.get_by_role("button")).to_have_text(["男", "女", "其他"])
    for option in group.get_by_role("button").all():
        expect(option).to_be_enabled()


def test_list_opens_and_a_picked_row_becomes_the_persons_message(
    page: Page, bridge: Bridge
) -> None:
    call_id = new_call_id()
    chat = open_chat(page, bridge, call_id)
    bridge.callback(samples.callback(call_id, samples.sample_message("list")))
    opener = chat.get_by_role("button", name="请选择")
    opener.click()
    sheet = chat.get_by_role("dialog", name="请选择")
    expect(sheet).to_be_visible()
    expect(sheet.get_by_role("heading")).to_have_text(["请选择", "查询类", "寄件类"])
    rows = sheet.locator("button.row")
    expect(rows).to_have_text(["物流查询", "网点查询", "大件快递", "小件快递"])
    page.keyboard.press("Escape")
    expect(sheet).to_be_hidden()
    expect(opener).to_be_focused()  # focus returns to where it was

    # Keyboard only: open, move to the second row, pick it.
    page.keyboard.press("Enter")
    expect(sheet).to_be_visible()
    expect(rows.nth(0)).to_be_focused()
    page.keyboard.press("ArrowDown")
    expect(rows.nth(1)).to_be_focused()
    page.keyboard.press("Enter")
    expect(sheet).to_be_hidden()

    pick = chat.locator(".row-msg.from-user", has_text="网点查询")
    expect(pick).to_have_count(1)
    # Measured in one step in the page: the pending bubble is replaced by the server's copy,
    # so a bubble found a moment ago may be detached by now (null: look again, bounded).
    right_side = None
    for _ in range(50):
        right_side = pick.locator(".bubble").evaluate(
            """(bubble) => {
              const log = bubble.closest(".log");
              if (!bubble.isConnected || !log) return null;
              const box = bubble.getBoundingClientRect();
              return box.width > 0 && box.right > log.getBoundingClientRect().right - 40;
            }"""
        )
        if right_side is not None:
            break
        page.wait_for_timeout(50)
    assert right_side, "the person's pick sits on the right"
    expect(chat.get_by_text("Chosen: 网点查询")).to_be_visible()
    opener.click()
    expect(sheet).to_be_visible()
    for row in rows.all():
        expect(row).to_be_disabled()
    expect(sheet.locator("button.row.chosen")).to_have_text("网点查询")
    sheet.get_by_role("button", name="Close").click()
    expect(sheet).to_be_hidden()


def test_text_that_looks_like_html_is_shown_literally(
    page: Page, bridge: Bridge, host_site: HostSite
) -> None:
    call_id = new_call_id()
    chat = open_chat(page, bridge, call_id)
    attacks = [
        "<img src=x onerror=alert(1)>",
        "<script>window.__pwned = 1</script>",
        '<a href="javascript:alert(2)">click</a> javascript:alert(3)',
    ]
    bridge.callback(texts(call_id, attacks))
    for attack in attacks:
        expect(chat.get_by_text(attack, exact=True)).to_be_visible()
    expect(chat.locator(".messages img, .messages script")).to_have_count(0)
    expect(chat.locator(".messages a")).to_have_count(0)  # no http(s) URL, so no link
    assert page.evaluate("window.__pwned") is None
    # (the `problems` fixture fails the test if any dialog opened or any script errored)


def dropping_after(page: Page, call_id: str, frames: int) -> list[str]:
    """Route the page's sockets of ``call_id`` to the real server, but close each one
    (1013, both ways) once ``frames`` live message frames went through (after ``ready``: a
    replay is never cut short by the server either); returns their URLs."""
    urls: list[str] = []

    def route(ws: WebSocketRoute) -> None:
        server = ws.connect_to_server()
        urls.append(ws.url)
        passed = -1  # until ready

        def to_page(frame: str | bytes) -> None:
            nonlocal passed
            if passed >= frames:
                return
            ws.send(frame)
            if isinstance(frame, str) and frame.startswith('{"type":"ready"'):
                passed = 0
            elif passed >= 0 and isinstance(frame, str) and '"type":"message"' in frame[:20]:
                passed += 1
                if passed == frames:
                    ws.close(code=1013, reason="send queue overflow, reconnect with after=")
                    server.close(code=1001, reason="test proxy")

        server.on_message(to_page)

    page.route_web_socket(lambda url: f"/ws/{call_id}" in url, route)
    return urls


def test_a_dropped_socket_recovers_and_shows_every_message_exactly_once(
    page: Page, bridge: Bridge
) -> None:
    # Every socket is closed with 1013 after its third message frame, as a server closes
    # one whose reader fell behind: mid-callback, again and again.
    call_id = new_call_id()
    sockets = dropping_after(page, call_id, 3)
    chat = open_chat(page, bridge, call_id)
    expected = []
    for batch in range(5):
        words = [f"b{batch}-m{i}" for i in range(5)]
        expected += words
        bridge.callback(texts(call_id, words))
        expect(chat.get_by_text(words[-1], exact=True)).to_be_visible()
    expect(chat.locator(".state")).to_have_text("Online")
    assert shown_texts(chat) == expected
    assert len(sockets) >= 5, "the server did not drop the socket: the test proved nothing"
    assert all("after=" in url and "epoch=" in url for url in sockets[2:]), sockets

    page.reload()  # the same session shows its history again, once
    expect(chat.get_by_text(expected[-1], exact=True)).to_be_visible()
    expect(chat.locator(".state")).to_have_text("Online")
    assert shown_texts(chat) == expected


HOST_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Shop</title>
<link rel="stylesheet" href="/site.css"></head>
<body><h1>Parcel Shop</h1><p class="intro">Welcome to our shop.</p>
<button class="buy">Buy now</button><div class="box">Box</div>
{widget}
</body></html>
"""
HOST_CSS = """
* { box-sizing: content-box; }
body { font-family: Georgia, serif; font-size: 18px; color: rgb(40, 40, 90); margin: 12px; }
h1 { color: rgb(150, 20, 20); font-size: 30px; }
p, div { color: rgb(0, 100, 0); line-height: 2; }
button { background: rgb(255, 0, 0); color: rgb(255, 255, 255); border-radius: 0; }
.box { border: 3px solid rgb(0, 0, 255); padding: 9px; }
"""
STYLE_PROBE = """() => [...document.querySelectorAll('body, h1, p, button.buy, .box')].map(e => {
    const s = getComputedStyle(e);
    return [e.tagName, s.fontFamily, s.fontSize, s.color, s.backgroundColor, s.lineHeight,
            s.borderTopWidth, s.padding, s.margin, s.boxSizing, e.getBoundingClientRect().width];
})"""


def test_floating_widget_on_a_host_page(page: Page, bridge: Bridge, host_site: HostSite) -> None:
    call_id = new_call_id()
    (host_site.root / "site.css").write_text(HOST_CSS)
    plain = host_site.page("plain.html", HOST_PAGE.format(widget=""))
    tag = (
        f'<script src="{bridge.url}/static/widget.js" data-call-id="{call_id}" '
        'data-title="Shop help" defer></script>'
    )
    embedded = host_site.page("embedded.html", HOST_PAGE.format(widget=tag))

    page.goto(plain)
    before = page.evaluate(STYLE_PROBE)
    page.goto(embedded)
    launcher = page.get_by_role("button", name="Open chat")
    expect(launcher).to_be_visible()
    assert page.evaluate(STYLE_PROBE) == before
    assert page.evaluate("Object.keys(window).filter(k => /airudder/i.test(k))") == [
        "AIRudderChat",
        "AIRudderChatQueue",
    ]
    # The host page's `button { background: red }` does not reach into the widget.
    assert launcher.evaluate("b => getComputedStyle(b).backgroundColor") != "rgb(255, 0, 0)"

    bridge.callback(texts(call_id, ["one", "two"]))
    badge = page.locator("airudder-chat .badge")
    expect(badge).to_have_text("2")
    expect(launcher).to_have_attribute("aria-label", "Open chat (2 unread messages)")
    launcher.click()
    chat = page.get_by_role("region", name="Shop help")
    expect(chat.get_by_text("two", exact=True)).to_be_visible()
    expect(badge).to_be_hidden()
    page.keyboard.press("Escape")
    expect(chat).to_be_hidden()
    bridge.callback(texts(call_id, ["three"]))
    expect(badge).to_have_text("1")
    page.reload()  # what was read stays read; only "three" is new
    expect(page.locator("airudder-chat .badge")).to_have_text("1")
    assert page.evaluate(STYLE_PROBE) == before
    page.evaluate("AIRudderChat.open()")
    expect(chat.get_by_text("three", exact=True)).to_be_visible()
    expect(page.locator("airudder-chat .badge")).to_be_hidden()


def test_phone_width_has_no_horizontal_scroll(new_page: Callable[[], Page], bridge: Bridge) -> None:
    call_id = new_call_id()
    bridge.callback(seed(call_id))
    bridge.callback(texts(call_id, ["x" * 300, "https://example.com/" + "a" * 200]))
    page = new_page()
    page.set_viewport_size({"width": 360, "height": 740})
    for url in (f"{bridge.url}/chat/{call_id}", f"{bridge.url}/demo?call_id={call_id}"):
        page.goto(url)
        chat = page.locator("airudder-chat")
        expect(chat.get_by_role("button", name="其他")).to_be_visible()
        assert page.evaluate(
            "document.documentElement.scrollWidth <= document.documentElement.clientWidth"
        ), url
        assert chat.locator(".log").evaluate("l => l.scrollWidth <= l.clientWidth"), url
    chat.get_by_role("button", name="请选择").click()
    sheet = chat.get_by_role("dialog")
    expect(sheet).to_be_visible()
    box = sheet.bounding_box()
    assert box and box["x"] >= 0 and box["x"] + box["width"] <= 360


def test_chinese_interface_from_the_language_setting(page: Page, bridge: Bridge) -> None:
    call_id = new_call_id()
    page.goto(f"{bridge.url}/chat/{call_id}?lang=zh")
    chat = page.locator("airudder-chat")
    expect(chat.locator(".state")).to_have_text("在线")
    expect(chat.get_by_role("textbox", name="消息")).to_have_attribute("placeholder", "输入消息…")
    expect(chat.get_by_role("button", name="发送")).to_be_visible()


def test_a_list_without_a_button_label_gets_a_default_one_and_rows_show_descriptions(
    page: Page, bridge: Bridge
) -> None:
    call_id = new_call_id()
    chat = open_chat(page, bridge, call_id)
    body = samples.callback(call_id, samples.sample_message("list"))
    action = body["messages"][0]["content"]["interactive"]["action"]
    del action["button"]
    action["sections"][0]["rows"][0]["description"] = "Where is my parcel? 包裹到哪了"
    bridge.callback(body)
    chat.get_by_role("button", name="Choose").click()
    rows = chat.get_by_role("dialog", name="Choose").locator("button.row")
    expect(rows).to_have_count(4)
    expect(rows.nth(0).locator(".option-desc")).to_have_text("Where is my parcel? 包裹到哪了")


def test_mounted_from_javascript_and_a_new_token_reconnects_after_the_last_message(
    page: Page, bridge: Bridge, host_site: HostSite
) -> None:
    call_id = new_call_id()
    (host_site.root / "mount.js").write_text(
        f'AIRudderChat.mount(document.getElementById("help"), {{callId: "{call_id}", '
        f'server: "{bridge.url}", mode: "inline", lang: "zh", title: "帮助"}});'
    )
    url = host_site.page(
        "mounted.html",
        '<!doctype html><html><head><meta charset="utf-8"></head><body>'
        '<div id="help" class="help"></div>'
        f'<script src="{bridge.url}/static/widget.js"></script>'
        '<script src="/mount.js"></script></body></html>',
    )
    sockets: list[str] = []
    page.on("websocket", lambda ws: sockets.append(ws.url))
    bridge.callback(texts(call_id, ["你好", "再见"]))
    page.goto(url)
    chat = page.locator("#help airudder-chat")
    expect(chat.get_by_role("region", name="帮助")).to_be_visible()
    expect(chat.get_by_text("再见", exact=True)).to_be_visible()
    expect(chat.locator(".state")).to_have_text("在线")

    page.evaluate("AIRudderChat.setToken('fresh-token')")
    expect(chat.locator(".state")).to_have_text("在线")
    assert len(sockets) == 2
    assert "token=fresh-token" in sockets[1] and "after=2" in sockets[1]
    assert shown_texts(chat) == ["你好", "再见"]


def test_full_page_chat_works_inside_an_iframe(
    page: Page, bridge: Bridge, host_site: HostSite
) -> None:
    call_id = new_call_id()
    bridge.callback(samples.callback(call_id, samples.sample_message("button")))
    url = host_site.page(
        "framed.html",
        '<!doctype html><html><head><meta charset="utf-8"></head><body><h1>Help</h1>'
        f'<iframe src="{bridge.url}/chat/{call_id}" title="Chat" width="360" height="560">'
        "</iframe></body></html>",
    )
    page.goto(url)
    chat = page.frame_locator("iframe[title=Chat]").locator("airudder-chat")
    expect(chat.get_by_role("button", name="女")).to_be_visible()
    chat.get_by_role("button", name="女").click()
    expect(chat.locator(".row-msg.from-user .text")).to_have_text("女")
    expect(chat.get_by_role("button", name="男")).to_be_disabled()


CONTRAST_PROBE = """host => {
    const rgb = c => c.match(/[\\d.]+/g).map(Number);
    const channel = v => (v /= 255) <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
    const lum = ([r, g, b]) => 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b);
    const background = el => {  // the nearest painted background, across the shadow boundary
        for (let e = el; e; e = e.parentElement || e.getRootNode().host) {
            const c = rgb(getComputedStyle(e).backgroundColor);
            if (c.length < 4 || c[3] > 0) return c;
        }
        return [255, 255, 255];
    };
    const failures = [];
    for (const el of host.shadowRoot.querySelectorAll("*")) {
        const ownText = [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
        if (!ownText || !el.checkVisibility() || el.closest(".sr-only, :disabled")) continue;
        const style = getComputedStyle(el);
        const [a, b] = [lum(rgb(style.color)), lum(background(el))];
        const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
        const size = parseFloat(style.fontSize);
        const large = size >= 24 || (size >= 18.66 && Number(style.fontWeight) >= 700);
        if (ratio < (large ? 3 : 4.5)) failures.push([el.className, el.textContent, ratio]);
    }
    return failures;
}"""


def test_text_contrast_passes_wcag_aa(page: Page, bridge: Bridge) -> None:
    call_id = new_call_id()
    chat = open_chat(page, bridge, call_id)
    bridge.callback(seed(call_id, {k: CLOSED_PORT_URL for k in ("image", "video", "audio")}))
    chat.get_by_role("button", name="女").click()
    box = chat.get_by_role("textbox", name="Message")
    box.fill("hello https://example.com/x")
    box.press("Enter")
    expect(chat.locator(".delivery-sent")).to_have_count(2)
    expect(chat.get_by_text("The audio could not be loaded.")).to_be_visible()
    expect(chat.locator(".divider").first).to_be_visible()
    assert chat.evaluate(CONTRAST_PROBE) == []
    chat.get_by_role("button", name="请选择").click()
    expect(chat.get_by_role("dialog")).to_be_visible()
    assert chat.evaluate(CONTRAST_PROBE) == []
