"""People talk back, in real headless Chromium: the message box, picks across tabs and
reloads, delivery states with retry, the built-in demo bot, and a socket killed mid-way."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from playwright.sync_api import Locator, Page, WebSocketRoute, expect

from bridge.demo import samples
from tests.browser.conftest import Bridge, pass_through
from tests.browser.test_widget import new_call_id, open_chat


def send(chat: Locator, text: str) -> None:
    box = chat.get_by_role("textbox", name="Message")
    box.fill(text)
    box.press("Enter")


def mine(chat: Locator, text: str) -> Locator:
    """The person's own messages with exactly ``text``."""
    return chat.locator(".row-msg.from-user").filter(has=chat.page.get_by_text(text, exact=True))


def test_typed_text_shows_once_as_sent_and_the_bot_answers(page: Page, bridge: Bridge) -> None:
    chat = open_chat(page, bridge, new_call_id())
    box = chat.get_by_role("textbox", name="Message")
    box.fill("first line")
    box.press("Shift+Enter")  # a new line, not a send
    box.press_sequentially("second line 你好 🙂")
    expect(chat.locator(".row-msg.from-user")).to_have_count(0)
    box.press("Enter")
    text = "first line\nsecond line 你好 🙂"
    message = mine(chat, text)
    expect(message.locator(".delivery")).to_have_text("Sent")
    expect(chat.get_by_text(f"You said: {text}")).to_be_visible()
    expect(box).to_have_value("")
    expect(mine(chat, text)).to_have_count(1)
    page.reload()
    expect(chat.get_by_text(f"You said: {text}")).to_be_visible()
    expect(mine(chat, text)).to_have_count(1)
    expect(mine(chat, text).locator(".delivery")).to_have_text("Sent")


def test_a_pick_in_one_tab_answers_the_list_in_every_tab_and_after_reload(
    new_page: Callable[[], Page], bridge: Bridge
) -> None:
    call_id = new_call_id()
    tab1, tab2 = new_page(), new_page()
    chat1, chat2 = open_chat(tab1, bridge, call_id), open_chat(tab2, bridge, call_id)
    bridge.callback(samples.callback(call_id, samples.sample_message("list")))
    # Tab 2 has the list open while tab 1 picks.
    chat2.get_by_role("button", name="请选择").click()
    rows2 = chat2.get_by_role("dialog").locator("button.row")
    expect(rows2.nth(2)).to_be_enabled()
    chat1.get_by_role("button", name="请选择").click()
    chat1.get_by_role("dialog").get_by_role("button", name="大件快递").click()

    for chat in (chat1, chat2):
        expect(mine(chat, "大件快递")).to_have_count(1)
        expect(chat.get_by_text("Chosen: 大件快递")).to_be_visible()
    for row in rows2.all():
        expect(row).to_be_disabled()
    expect(chat2.get_by_role("dialog").locator("button.row.chosen")).to_have_text("大件快递")

    tab1.reload()
    expect(chat1.get_by_text("Chosen: 大件快递")).to_be_visible()
    chat1.get_by_role("button", name="请选择").click()
    rows1 = chat1.get_by_role("dialog").locator("button.row")
    for row in rows1.all():
        expect(row).to_be_disabled()
    expect(chat1.get_by_role("dialog").locator("button.row.chosen")).to_have_text("大件快递")
    expect(mine(chat1, "大件快递")).to_have_count(1)

    # A second pick (here straight over a socket, as a stale tab would) is refused.
    refused = tab1.evaluate(
        """async ([url, seq]) => {
            const ws = new WebSocket(url);
            const frames = [];
            return await new Promise((resolve) => {
                ws.onmessage = (e) => {
                    const f = JSON.parse(e.data);
                    if (f.type === "ready") ws.send(JSON.stringify({type: "choose",
                        client_msg_id: "second-pick-1", message_id: seq,
                        option_id: "59a3d8ba24ec0d29334775623182facf-3-1-list-0-0-"}));
                    if (f.type === "error" || f.type === "ack") { ws.close(); resolve(f); }
                };
            });
        }""",
        [f"{bridge.url.replace('http', 'ws')}/ws/{call_id}", 1],
    )
    assert refused["type"] == "error" and refused["error"]["code"] == "already_answered"
    expect(mine(chat1, "物流查询")).to_have_count(0)


def test_buttons_are_answered_with_the_chosen_one_marked(page: Page, bridge: Bridge) -> None:
    call_id = new_call_id()
    chat = open_chat(page, bridge, call_id)
    bridge.callback(samples.callback(call_id, samples.sample_message("button")))
    chat.get_by_role("button", name="女").click()
    expect(mine(chat, "女")).to_have_count(1)
    group = chat.get_by_role("group", name="请选择您的性别(button)👉👉👉")
    expect(group.get_by_role("button")).to_have_text(["男", "女", "其他"])
    for option in group.get_by_role("button").all():
        expect(option).to_be_disabled()
    expect(group.get_by_role("button", name="女")).to_have_attribute("aria-pressed", "true")
    expect(group.get_by_role("button", name="男")).to_have_attribute("aria-pressed", "false")
    expect(chat.get_by_text("You picked “女”", exact=False)).to_be_visible()


def test_demo_bot_menu_then_pick_shows_its_confirmation(page: Page, bridge: Bridge) -> None:
    chat = open_chat(page, bridge, new_call_id())
    send(chat, "menu")
    opener = chat.get_by_role("button", name="请选择")
    opener.click()
    chat.get_by_role("dialog").get_by_role("button", name="网点查询").click()
    expect(chat.get_by_text("You picked “网点查询”", exact=False)).to_be_visible()
    expect(mine(chat, "网点查询")).to_have_count(1)


def test_a_killed_socket_keeps_the_box_and_sends_what_was_typed_in_order_once(
    page: Page, bridge: Bridge
) -> None:
    """The socket is cut in the middle of the conversation (both ends closed, as when a
    network drops); callbacks keep coming; new connections fail for a while. Three messages
    typed meanwhile wait, visibly, and arrive after the reconnect in order, each once."""
    call_id = new_call_id()
    network = {"up": True}
    live: list[WebSocketRoute] = []
    sent: list[dict[str, Any]] = []

    def route(ws: WebSocketRoute) -> None:
        if not network["up"]:
            ws.close(code=4000, reason="network down")
            return
        server = ws.connect_to_server()

        def from_page(frame: str | bytes) -> None:
            sent.append(json.loads(frame))
            server.send(frame)

        ws.on_message(from_page)
        live.append(ws)

    page.route_web_socket(lambda url: f"/ws/{call_id}" in url, route)
    chat = open_chat(page, bridge, call_id)
    bridge.callback(samples.callback(call_id, samples.text_message("before", "m1")))
    expect(chat.get_by_text("before", exact=True)).to_be_visible()

    network["up"] = False
    live[-1].close(code=4000, reason="cut")
    box = chat.get_by_role("textbox", name="Message")
    expect(chat.locator(".composer-reason")).to_contain_text("Reconnecting")
    expect(chat.locator(".state")).not_to_have_text("Online")
    expect(box).to_be_enabled()  # the box is never disabled for a lost connection
    words = ["offline one", "offline two", "offline three"]
    for word in words:
        send(chat, word)
        expect(mine(chat, word).locator(".delivery")).to_have_text("Waiting for connection")
    bridge.callback(samples.callback(call_id, samples.text_message("during", "m2")))

    network["up"] = True
    for word in words:
        expect(mine(chat, word).locator(".delivery")).to_have_text("Sent")
        expect(chat.get_by_text(f"You said: {word}")).to_be_visible()
    expect(chat.locator(".is-pending")).to_have_count(0)
    bridge.callback(samples.callback(call_id, samples.text_message("after", "m3")))
    expect(chat.get_by_text("after", exact=True)).to_be_visible()
    mine_texts = chat.locator(".row-msg.from-user:not(.is-pending) .text").all_inner_texts()
    assert mine_texts == words
    seqs = [int(mine(chat, w).get_attribute("data-seq") or "0") for w in words]
    assert seqs == sorted(seqs) and 0 not in seqs
    frames = [f for f in sent if f.get("type") == "send"]
    assert [f["text"] for f in frames] == words  # went out once the socket was back, in order
    page.reload()  # the server recorded each once
    expect(chat.get_by_text("after", exact=True)).to_be_visible()
    assert chat.locator(".row-msg.from-user .text").all_inner_texts() == words
    bot = chat.locator(".row-msg.from-bot .text").all_inner_texts()
    assert bot[:2] == ["before", "during"] and bot[-1] == "after"
    assert [t for t in bot if t.startswith("You said:")] == [f"You said: {w}" for w in words]


class FlakyUpstream:
    """The vendor's "user sends message" API on 127.0.0.1: refuses with 500 until told not to."""

    def __init__(self) -> None:
        self.failing = True
        self.bodies: list[dict[str, Any]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                owner.bodies.append(json.loads(self.rfile.read(length)))
                status = 500 if owner.failing else 200
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/messages"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def flaky() -> Iterator[FlakyUpstream]:
    upstream = FlakyUpstream()
    yield upstream
    upstream.stop()


def test_failed_delivery_offers_a_retry_that_can_succeed(
    page: Page, bridges: Callable[..., Bridge], flaky: FlakyUpstream
) -> None:
    bridge = bridges(upstream_url=flaky.url, upstream_attempts="1")
    chat = open_chat(page, bridge, new_call_id())
    text = f"order {uuid.uuid4().hex[:6]}"
    send(chat, text)
    delivery = mine(chat, text).locator(".delivery")
    expect(delivery).to_have_text("Not delivered")
    page.reload()  # the state is the server's: a reload shows it too
    expect(delivery).to_have_text("Not delivered")
    flaky.failing = False
    mine(chat, text).get_by_role("button", name="Retry").click()
    expect(delivery).to_have_text("Sent")
    expect(mine(chat, text).get_by_role("button", name="Retry")).to_have_count(0)
    assert [b["messages"][0]["content"]["text"] for b in flaky.bodies] == [text, text]
    expect(mine(chat, text)).to_have_count(1)


def test_a_pick_refused_by_the_server_is_shown_and_the_state_stays_right(
    new_page: Callable[[], Page], bridge: Bridge
) -> None:
    """Tab 2 is on a slow network: it has not heard of tab 1's pick yet, so it picks too.
    The server refuses; tab 2 says so, then shows tab 1's pick when it arrives."""
    call_id = new_call_id()
    tab1, tab2 = new_page(), new_page()
    held: list[str | bytes] = []
    slow = {"on": False}
    routes: list[WebSocketRoute] = []

    def route(ws: WebSocketRoute) -> None:
        server = ws.connect_to_server()

        def from_server(frame: str | bytes) -> None:
            if slow["on"] and '"type":"message"' in str(frame):
                held.append(frame)
            else:
                ws.send(frame)

        server.on_message(from_server)
        routes.append(ws)

    tab2.route_web_socket(lambda url: f"/ws/{call_id}" in url, route)
    chat1, chat2 = open_chat(tab1, bridge, call_id), open_chat(tab2, bridge, call_id)
    bridge.callback(samples.callback(call_id, samples.sample_message("button")))
    expect(chat2.get_by_role("button", name="其他")).to_be_enabled()

    slow["on"] = True
    chat1.get_by_role("button", name="男").click()
    expect(mine(chat1, "男")).to_have_count(1)
    chat2.get_by_role("button", name="其他").click()
    expect(chat2.get_by_role("alert")).to_contain_text("Not accepted")
    expect(mine(chat2, "其他")).to_have_count(0)

    slow["on"] = False
    for frame in held:
        routes[-1].send(frame)
    expect(mine(chat2, "男")).to_have_count(1)
    group = chat2.get_by_role("group", name="请选择您的性别(button)👉👉👉")
    for option in group.get_by_role("button").all():
        expect(option).to_be_disabled()
    expect(group.get_by_role("button", name="男")).to_have_attribute("aria-pressed", "true")


def test_a_retry_the_server_refuses_does_not_stay_sending(page: Page, bridge: Bridge) -> None:
    """The widget believes a delivered message failed (a status frame put in on the way, as a
    stale view would have it); its Retry reaches the real server, which refuses: not_failed."""
    call_id = new_call_id()
    routes = pass_through(page, call_id)
    chat = open_chat(page, bridge, call_id)
    send(chat, "hello")
    message = mine(chat, "hello")
    expect(message.locator(".delivery")).to_have_text("Sent")
    seq = int(message.get_attribute("data-seq") or "0")
    routes[-1].send(json.dumps({"type": "status", "seq": seq, "status": "failed"}))
    expect(message.locator(".delivery")).to_have_text("Not delivered")

    message.get_by_role("button", name="Retry").click()
    expect(chat.get_by_role("alert")).to_contain_text("Nothing to retry")
    expect(message.locator(".delivery")).to_have_text("Not delivered")
    expect(message.get_by_role("button", name="Retry")).to_have_count(0)
    # The server's next word on it stands again: a reload shows what the server has.
    page.reload()
    expect(mine(chat, "hello").locator(".delivery")).to_have_text("Sent")


def test_the_box_takes_the_servers_text_limit(page: Page, bridges: Callable[..., Bridge]) -> None:
    bridge = bridges(max_text_length="12")
    chat = open_chat(page, bridge, new_call_id())
    box = chat.get_by_role("textbox", name="Message")
    expect(box).to_have_attribute("maxlength", "12")
    box.press_sequentially("1234567890abcdef")
    expect(box).to_have_value("1234567890ab")
