"""The agent console in a real headless Chromium against the real stack (Rasa, actions, web).

Two agents log in from two browser contexts; an escalation appears live in both consoles; one
claims it, replies (the customer receives it over the REST channel), transfers it with a note to
the other, who sees the note and closes the chat, and the customer is back with the bot.
Markup typed by a customer or an agent is shown as text, never run.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from tests.conftest import Stack, wait_until

XSS = "<img src=x onerror=alert(1)>"


def console(browser: Browser, stack: Stack, username: str, dialogs: list[str]) -> Page:
    page = browser.new_context().new_page()
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(stack.settings.web_url + "/console")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(username)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#connection")).to_have_text("live", timeout=15000)
    return page


def claim_in_console(page: Page, case_id: int) -> Locator:
    """The case appears live in the queue; the agent claims it; returns the chat panel."""
    row = f'#queue-list li[data-case-id="{case_id}"]'
    expect(page.locator(row)).to_be_visible(timeout=10000)
    page.locator(row).get_by_role("button", name=f"Claim case {case_id}").click()
    return page.locator(f'[data-case-id="{case_id}"].chat')


def account_id(stack: Stack, username: str) -> int:
    agent = stack.login(username)
    return int(agent.get("/me").json()["account"]["id"])


def test_two_agents_claim_reply_transfer_close(stack: Stack, browser: Browser) -> None:
    dialogs: list[str] = []
    alex = console(browser, stack, "agent", dialogs)
    sam = console(browser, stack, "agent2", dialogs)
    sam_id = account_id(stack, "agent2")

    customer = stack.new_conversation()
    assert customer.say("I want to talk to a person")["mode"] == "waiting"
    customer.say(XSS)  # typed while waiting: reaches the agent, as text
    case = stack.login("agent").case_for(customer.conversation_id)
    row = f'#queue-list li[data-case-id="{case["id"]}"]'
    for page in (alex, sam):  # live, no reload
        expect(page.locator(row)).to_be_visible(timeout=10000)
        expect(page.locator(row)).to_contain_text("customer request")

    alex.locator(row).get_by_role("button", name=f"Claim case {case['id']}").click()
    panel = alex.locator(f'[data-case-id="{case["id"]}"].chat')
    expect(panel).to_be_visible()
    expect(sam.locator(row)).to_have_count(0, timeout=10000)  # gone from the other console's queue
    joined = wait_until(lambda: [m for m in customer.messages() if m.get("kind") == "agent_joined"])
    assert joined[-1]["agent_name"] == "Alex Agent"

    # Context panel: why it escalated, the channel.
    expect(panel.locator(".why")).to_contain_text("customer request")
    expect(panel.locator(".profile")).to_contain_text("rest")
    # The customer's markup is text in the transcript, not an element.
    expect(panel.locator(".transcript .text", has_text=XSS)).to_have_count(1)
    assert panel.locator(".transcript img").count() == 0

    reply = panel.get_by_label("Reply to the customer")
    reply.fill("Hi, I'm Alex. How can I help?")
    panel.get_by_role("button", name="Send", exact=True).click()
    wait_until(lambda: any(m["text"] == "Hi, I'm Alex. How can I help?" and m["sender"] == "agent" for m in customer.messages()))
    reply.fill(XSS)
    reply.press("Enter")
    wait_until(lambda: any(m["text"] == XSS and m["sender"] == "agent" for m in customer.messages()))
    expect(panel.locator(".transcript .msg.agent .text", has_text=XSS)).to_have_count(1)

    customer.say("my parcel never arrived")  # live into Alex's tab
    expect(panel.locator(".transcript .msg.customer", has_text="my parcel never arrived")).to_have_count(1, timeout=10000)

    # Transfer to Sam with a note; Sam's console opens the chat by itself.
    panel.locator(".transfer-target").select_option(f"agent:{sam_id}")
    panel.locator(".transfer-note").fill("parcel lost, please check the courier")
    panel.get_by_role("button", name="Transfer").click()
    sam_panel = sam.locator(f'[data-case-id="{case["id"]}"].chat')
    expect(sam_panel).to_be_visible(timeout=10000)
    expect(sam_panel.locator(".notes")).to_contain_text("parcel lost, please check the courier")
    expect(sam_panel.locator(".transcript .msg.agent .text", has_text=XSS)).to_have_count(1)
    assert sam_panel.locator(".transcript img").count() == 0
    wait_until(lambda: any(m.get("agent_name") == "Sam Support" and m.get("kind") == "agent_joined" for m in customer.messages()))

    sam_panel.locator(".resolution").select_option("resolved")
    sam_panel.get_by_role("button", name="Close chat").click()
    expect(sam_panel).to_have_count(0, timeout=10000)
    wait_until(lambda: any(m["text"] == "Sam Support has left the chat." for m in customer.messages()))
    closed = stack.login("agent2").get(f"/cases/{case['id']}").json()["case"]
    assert (closed["status"], closed["resolution"], closed["agent_id"]) == ("closed", "resolved", sam_id)
    assert customer.say("how can I track my order?")["mode"] == "bot"
    assert dialogs == []  # nothing ever ran alert()
    for page in (alex, sam):
        page.context.close()


def test_console_requires_login_and_rejects_editors(stack: Stack, browser: Browser) -> None:
    page = browser.new_context().new_page()
    page.goto(stack.settings.web_url + "/console")
    page.get_by_label("Username").fill("agent")
    page.get_by_label("Password").fill("wrong")
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#login-error")).to_contain_text("wrong username or password")
    page.get_by_label("Username").fill("editor")
    page.get_by_label("Password").fill("editor")
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#login-error")).to_contain_text("not an agent or supervisor")
    # The websocket refuses a bad token with a clear error and code 4401.
    result: Any = page.evaluate("""() => new Promise((resolve) => {
        const ws = new WebSocket(location.origin.replace('http', 'ws') + '/api/agent/ws');
        ws.onopen = () => ws.send(JSON.stringify({type: 'auth', token: 'nope'}));
        let first = null;
        ws.onmessage = (e) => { first = JSON.parse(e.data); };
        ws.onclose = (e) => resolve({code: e.code, first});
    })""")
    assert result["code"] == 4401 and result["first"]["status"] == 401
    page.context.close()


def test_bidi_controls_cannot_reorder_what_the_agent_reads(stack: Stack, browser: Browser) -> None:
    """U+202E (right-to-left override) would show "invoice‮fdp.exe" as "invoiceexe.pdf":
    the console shows the control as a visible marker, each text in its own isolated run."""
    dialogs: list[str] = []
    customer = stack.new_conversation()
    assert customer.say("I want to talk to a person")["mode"] == "waiting"
    customer.say("please open invoice\u202efdp.exe now")
    case = stack.login("agent").case_for(customer.conversation_id)
    page = console(browser, stack, "agent", dialogs)
    panel = claim_in_console(page, case["id"])
    text = panel.locator(".transcript .msg.customer .text", has_text="invoice")
    expect(text).to_have_count(1, timeout=10000)
    assert text.text_content() == "please open invoice[U+202E]fdp.exe now"
    assert text.get_attribute("dir") == "auto"
    assert text.evaluate("node => getComputedStyle(node).unicodeBidi") == "isolate"
    stack.login("agent").post(f"/cases/{case['id']}/close")
    page.context.close()


def test_what_the_agent_types_while_a_reply_travels_is_kept(stack: Stack, browser: Browser) -> None:
    """The composer is cleared when a reply is sent, not when the server answers: the next
    message typed during the round trip survives, and a reply the server refused comes back."""
    from playwright.sync_api import Route

    dialogs: list[str] = []
    customer = stack.new_conversation()
    assert customer.say("I want to talk to a person")["mode"] == "waiting"
    case = stack.login("agent").case_for(customer.conversation_id)
    page = console(browser, stack, "agent", dialogs)
    panel = claim_in_console(page, case["id"])
    reply = panel.get_by_label("Reply to the customer")

    held: list[Route] = []
    page.route(f"**/api/agent/cases/{case['id']}/messages", lambda route: held.append(route))
    reply.fill("first reply")
    reply.press("Enter")
    wait_until(lambda: held)
    reply.fill("second draft")
    held.pop().continue_()
    wait_until(lambda: any(m["text"] == "first reply" and m["sender"] == "agent" for m in customer.messages()))
    expect(panel.locator(".transcript .msg.agent .text", has_text="first reply")).to_have_count(1)
    expect(reply).to_have_value("second draft")

    reply.press("Enter")  # refused by the server: the text is put back, in front of what follows
    wait_until(lambda: held)
    reply.fill("third")
    held.pop().fulfill(status=503, content_type="application/json", body='{"error": "try again"}')
    expect(panel.locator(".chat-error")).to_contain_text("try again")
    expect(reply).to_have_value("second draft\nthird")
    page.unroute(f"**/api/agent/cases/{case['id']}/messages")
    stack.login("agent").post(f"/cases/{case['id']}/close")
    assert dialogs == []
    page.context.close()
