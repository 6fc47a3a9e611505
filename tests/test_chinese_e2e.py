"""A Chinese customer end to end (issue 16): the real stack serving the Chinese demo knowledge base
(data/faq.zh.yml, so the knowledge base picks multilingual-e5-small by itself), real Rasa trained on
data/nlu.yml's Chinese examples, the real action server; the widget in headless Chromium on a
zh-CN host page, python-telegram-bot against the local fake Bot API, and the REST channel.

What is checked: answers from the Chinese FAQ, replies in the language of each message (a mixed
conversation), "转人工" reaching the queue with the notice in Chinese, the agent's reply shown, an
angry Chinese customer escalated on mood, and the editor importing Chinese files (BOM, GB18030).
"""
from __future__ import annotations

import itertools
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
import yaml
from playwright.sync_api import Browser, Page, expect

from server.cli import prepare
from server.processes import Supervisor
from core.settings import ROOT
from knowledge.models import E5
from tests.conftest import Stack, free_port, stack_settings, wait_until
from tests.fakes.telegram_api import FakeTelegramServer

ZH_FAQ = ROOT / "data" / "faq.zh.yml"
TRACK_ZH = "我的包裹现在到哪儿了？"  # not a text of faq.zh.yml: the encoder must generalise
_chats = itertools.count(9601)

expect.set_options(timeout=30_000)


def zh_answer(faq_id: str) -> str:
    entries = yaml.safe_load(ZH_FAQ.read_text(encoding="utf-8"))["faqs"]
    return next(e for e in entries if e["id"] == faq_id)["answer"].strip()


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeTelegramServer]:
    with FakeTelegramServer() as server:
        yield server


@pytest.fixture(scope="module")
def zh(tmp_path_factory: pytest.TempPathFactory, fake: FakeTelegramServer) -> Iterator[Stack]:
    """A whole Tandem seeded with the Chinese demo FAQ, Telegram long-polling the fake Bot API."""
    settings = stack_settings(
        tmp_path_factory.mktemp("tandem-zh"), faq_file=ZH_FAQ,
        telegram_token=fake.token, telegram_api_url=f"{fake.url}/bot", telegram_mode="polling",
    )
    model = prepare(settings)
    supervisor = Supervisor(settings, model=model)
    supervisor.start()
    client = httpx.Client(base_url=settings.web_url, timeout=60)
    try:
        wait_until(lambda: client.get("/telegram/status").json().get("running"), timeout=60, interval=0.2)
        stack = Stack(settings, supervisor, client)
        editor = {"Authorization": f"Bearer {client.post('/api/editor/login', json={'username': 'editor', 'password': 'editor'}).json()['token']}"}

        def calibrated() -> bool:
            state = client.get("/api/editor/calibration", headers=editor).json()
            return bool(state.get("calibration")) and not state.get("pending")

        wait_until(calibrated, timeout=120, interval=1.0)  # the E5 thresholds, computed once after start
        yield stack
    finally:
        client.close()
        supervisor.stop()


def editor_headers(stack: Stack) -> dict[str, str]:
    login = stack.http.post("/api/editor/login", json={"username": "editor", "password": "editor"})
    assert login.status_code == 200, login.text
    return {"Authorization": f"Bearer {login.json()['token']}"}


def bot_texts(reply: dict[str, Any]) -> list[str]:
    return [m["text"] for m in reply["replies"] if m["sender"] == "bot"]


# -- REST -----------------------------------------------------------------------------------------
def test_the_chinese_knowledge_base_runs_on_the_multilingual_encoder(zh: Stack) -> None:
    state = zh.http.get("/api/editor/calibration", headers=editor_headers(zh)).json()
    assert state["calibration"]["encoder"] == E5
    assert state["calibration"]["usable"] and state["thresholds"]["source"].startswith("calibration")


def test_chinese_question_answered_and_each_message_in_its_language(zh: Stack) -> None:
    customer = zh.new_conversation()
    hello = customer.say("你好")
    assert bot_texts(hello) == [zh.settings.business.text("greeting", "zh")]
    assert "北风优品" in bot_texts(hello)[0]

    reply = customer.say(TRACK_ZH)
    answers = [m for m in reply["replies"] if m.get("faq_id")]
    assert answers and answers[0]["faq_id"] == "orders-track-order", reply
    assert answers[0]["text"] == zh_answer("orders-track-order")

    # The customer switches to English and back: each reply in the language of its message.
    thanks = customer.say("thanks!")
    assert bot_texts(thanks) == [zh.settings.business.text("welcome")]
    again = customer.say("谢谢！")
    assert bot_texts(again) == [zh.settings.business.text("welcome", "zh")]


def test_zhuan_rengong_reaches_the_queue_and_the_agent_reply_arrives(zh: Stack) -> None:
    customer = zh.new_conversation()
    reply = customer.say("转人工")
    kinds = [m.get("kind") for m in reply["replies"]]
    assert "queued" in kinds, reply
    queued = next(m for m in reply["replies"] if m.get("kind") == "queued")
    assert "队列" in queued["text"] and [b["title"] for b in queued["buttons"]][0] in ("回到智能助手", "留言")
    assert zh.settings.business.text("handoff", "zh") in bot_texts(reply)
    agent = zh.login("agent")
    case = agent.case_for(customer.conversation_id)
    assert case["reason"] == "customer_request"
    assert agent.post(f"/cases/{case['id']}/claim").status_code == 200
    assert agent.post(f"/cases/{case['id']}/messages", {"text": "您好，我是客服小王，请问有什么可以帮您？"}).status_code == 201
    shown = customer.messages()
    assert any(m["sender"] == "system" and "已加入对话" in m["text"] for m in shown), shown
    assert any(m["sender"] == "agent" and m["text"] == "您好，我是客服小王，请问有什么可以帮您？" for m in shown)


def test_angry_chinese_customer_is_escalated_on_mood(zh: Stack) -> None:
    customer = zh.new_conversation()
    reply = customer.say("你们太差了！！！骗子，赶紧退钱！！！")
    assert "queued" in [m.get("kind") for m in reply["replies"]], reply
    agent = zh.login("agent")
    case = agent.case_for(customer.conversation_id)
    assert case["reason"] in ("negative_sentiment", "frustration"), case
    calm = zh.new_conversation().say("请问退款一般几天到账？")  # a calm question about money is answered
    assert "queued" not in [m.get("kind") for m in calm["replies"]], calm


def test_contact_question_is_knowledge_not_a_request_for_a_person(zh: Stack) -> None:
    reply = zh.new_conversation().say("你们客服电话是多少")
    assert "queued" not in [m.get("kind") for m in reply["replies"]], reply
    assert any(m.get("faq_id") for m in reply["replies"]), reply


# -- the editor's import keeps Chinese intact -----------------------------------------------------
CSV_ZH = "id,category,question,answer,paraphrases\nzh-gift-wrap,orders,可以帮忙包装成礼物吗？,可以，下单时勾选「礼品包装」即可。,能包成礼物吗|有礼品包装吗\n"


@pytest.mark.parametrize("name,body,encoding", [
    ("utf-8", CSV_ZH.encode("utf-8"), None),
    ("utf-8 with BOM", b"\xef\xbb\xbf" + CSV_ZH.encode("utf-8"), None),
    ("gb18030", CSV_ZH.encode("gb18030"), None),
])
def test_import_keeps_chinese(zh: Stack, name: str, body: bytes, encoding: str | None) -> None:
    headers = editor_headers(zh)
    checked = zh.http.post("/api/editor/import", params={"format": "csv", "apply": "0"}, headers=headers, content=body)
    assert checked.status_code == 200, checked.text
    assert checked.json()["rows"] == 1
    if name == "gb18030":
        assert checked.json()["encoding"] == "gb18030" and "GB18030" in checked.json()["notes"][0]
    applied = zh.http.post("/api/editor/import", params={"format": "csv", "apply": "1"}, headers=headers, content=body)
    assert applied.status_code == 200 and applied.json()["applied"] == 1, applied.text
    entry = zh.http.get("/api/editor/faqs/zh-gift-wrap", headers=headers).json()
    entry = entry.get("faq", entry)
    assert entry["question"] == "可以帮忙包装成礼物吗？" and entry["paraphrases"] == ["能包成礼物吗", "有礼品包装吗"]
    exported = zh.http.get("/api/editor/export", params={"format": "csv"}, headers=headers)
    assert "可以，下单时勾选「礼品包装」即可。" in exported.content.decode("utf-8")
    found = zh.http.get("/api/editor/faqs", params={"q": "包成礼物"}, headers=headers).json()["faqs"]
    assert [f["id"] for f in found] == ["zh-gift-wrap"]  # the editor searches Chinese text


def test_gb18030_refused_clearly_when_utf8_is_demanded(zh: Stack) -> None:
    response = zh.http.post("/api/editor/import", params={"format": "csv", "apply": "1", "encoding": "utf-8"},
                            headers=editor_headers(zh), content=CSV_ZH.encode("gb18030"))
    assert response.status_code == 422, response.text
    assert "GB18030" in response.json()["errors"][0]["message"]
    bad = zh.http.post("/api/editor/import", params={"format": "csv", "encoding": "latin-9"}, headers=editor_headers(zh), content=b"x")
    assert bad.status_code == 400 and "encoding must be one of" in bad.json()["error"]


# -- the widget on a Chinese page, in Chromium ----------------------------------------------------
@pytest.fixture(scope="module")
def chinese_shop(zh: Stack) -> Iterator[str]:
    """A host page in Chinese (<html lang="zh-CN">) on another origin embedding the widget."""
    tandem = zh.settings.web_url
    page = (
        "<!doctype html><html lang='zh-CN'><head><meta charset='utf-8'><title>北风优品</title></head><body><h1>北风优品</h1>"
        f"<script src='{tandem}/widget/tandem-widget.js' data-site-key='demo' data-tandem-url='{tandem}' async></script>"
        "</body></html>"
    ).encode("utf-8")

    class Shop(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Shop)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://localhost:{server.server_address[1]}/"
    finally:
        server.shutdown()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(locale="en-US")  # the host page's lang wins over the browser's
    page = context.new_page()
    page.set_default_timeout(30_000)
    try:
        yield page
    finally:
        context.close()


def test_widget_in_chinese_answer_queue_and_agent_reply(zh: Stack, page: Page, chinese_shop: str) -> None:
    page.goto(chinese_shop)
    page.get_by_role("button", name=re.compile("^打开与.*的对话$")).click()  # the widget's own words in Chinese
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    expect(dialog.locator(".tw-title")).to_have_text("北风优品")  # the business's Chinese name (tandem.yml business.zh)
    expect(dialog.locator(".tw-intro")).to_contain_text("北风优品的智能客服")  # the greeting in Chinese
    box = page.get_by_label("输入您的消息")
    expect(box).to_have_attribute("placeholder", "请输入您的问题…")

    box.fill(TRACK_ZH)
    box.press("Enter")
    answer = dialog.locator(".tw-msg.tw-bot .tw-text").filter(has_text=zh_answer("orders-track-order")[:20])
    expect(answer).to_have_count(1)
    expect(dialog.get_by_role("button", name="有帮助", exact=True)).to_be_visible()

    box.fill("转人工")
    box.press("Enter")
    queued = dialog.locator(".tw-system.tw-kind-queued")
    expect(queued).to_contain_text("队列")
    expect(queued.get_by_role("button", name="回到智能助手")).to_be_visible()

    token = page.evaluate("() => Object.entries(localStorage).filter(([k]) => k.startsWith('tandem-widget:')).map(([, v]) => v)")
    conversation = __import__("json").loads(token[0])["token"].split(".")[0]
    agent = zh.login("agent")
    case = wait_until(lambda: next((c for c in agent.get("/cases", status="waiting").json()["cases"]
                                    if c["conversation_id"] == conversation), None))
    assert agent.post(f"/cases/{case['id']}/claim").status_code == 200
    assert agent.post(f"/cases/{case['id']}/messages", {"text": "您好，我来帮您查一下物流。"}).status_code == 201
    expect(dialog.locator(".tw-system").filter(has_text="已加入对话")).to_be_visible()
    expect(dialog.locator(".tw-msg.tw-agent .tw-text").filter(has_text="您好，我来帮您查一下物流。")).to_have_count(1)


# -- Telegram with python-telegram-bot against the fake Bot API -----------------------------------
def wait_text(fake: FakeTelegramServer, chat: int, contains: str, timeout: float = 30) -> dict[str, Any]:
    return fake.wait_sent(
        lambda e: e["method"] == "sendMessage" and e["params"]["chat_id"] == chat and contains in e["params"]["text"], timeout)


def test_telegram_chinese_user_greeted_answered_and_queued(zh: Stack, fake: FakeTelegramServer) -> None:
    chat = next(_chats)
    start = fake.make_command_update(chat, "/start")
    start["message"]["from"]["language_code"] = "zh-hans"  # a Telegram app set to Chinese
    fake.push_update(start)
    wait_text(fake, chat, "北风优品的智能客服")

    fake.push_text(chat, TRACK_ZH)
    answer = wait_text(fake, chat, zh_answer("orders-track-order")[:30])
    thumbs = next(key["callback_data"] for row in answer["params"]["reply_markup"]["inline_keyboard"] for key in row
                  if key["text"] == "👍")
    tap = fake.push_callback(chat, thumbs)
    thanked = fake.wait_sent(lambda e: e["method"] == "answerCallbackQuery"
                             and str(e["params"]["callback_query_id"]) == tap["callback_query"]["id"], 15)
    assert thanked["params"]["text"] == "感谢您的反馈！"

    fake.push_text(chat, "我要人工客服")
    notice = wait_text(fake, chat, "队列")
    titles = [key["text"] for row in notice["params"]["reply_markup"]["inline_keyboard"] for key in row]
    assert "回到智能助手" in titles
    agent = zh.login("agent")
    cases = wait_until(lambda: [c for c in agent.get("/cases", status="waiting").json()["cases"] if c["channel"] == "telegram"])
    case = cases[-1]
    assert agent.post(f"/cases/{case['id']}/claim").status_code == 200
    wait_text(fake, chat, "已加入对话")
    assert agent.post(f"/cases/{case['id']}/messages", {"text": "您好，请问订单号是多少？"}).status_code == 201
    wait_text(fake, chat, "您好，请问订单号是多少？")
