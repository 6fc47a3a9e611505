"""The reports page and API against a real running Tandem: roles, the CSAT endpoint's bad
inputs, and the page in real headless Chromium (filters, a chart drawn, CSV downloaded)."""
from __future__ import annotations

import datetime
import time
from collections.abc import Iterator
from typing import Any

import pytest

from core.db import sync_engine
from handoff.schema import cases
from reports import charts
from tests.conftest import Stack


def wait_js(page: Any, expression: str, timeout: float = 20.0) -> Any:
    """Poll a page expression from the test side: the pages' CSP (no 'unsafe-eval') blocks the
    in-page eval that Playwright's wait_for_function relies on."""
    deadline = time.monotonic() + timeout
    while True:
        value = page.evaluate(expression)
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not true in {timeout:.0f} s: {expression}")
        page.wait_for_timeout(100)


XSS = "<img src=x onerror=window.__xss=1>"


@pytest.fixture()
def page(stack: Stack, browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1200, "height": 900}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(20_000)
    try:
        yield page
    finally:
        context.close()


def login(page: Any, stack: Stack, user: str) -> None:
    page.goto(stack.settings.web_url + "/reports")
    page.get_by_label("Username", exact=True).fill(user)
    page.get_by_label("Password", exact=True).fill(user)
    page.get_by_role("button", name="Log in").click()


def test_only_managers_and_supervisors_read_reports(stack: Stack) -> None:
    for user, status in (("manager", 200), ("supervisor", 200), ("agent", 403), ("editor", 403)):
        staff = stack.login(user)
        response = stack.http.get("/api/reports/summary", headers=staff.headers)
        assert response.status_code == status, (user, response.text)
        assert stack.http.get("/api/reports/csv/waiting", headers=staff.headers).status_code == status
    assert stack.http.get("/api/reports/summary").status_code == 401
    manager = stack.login("manager")
    assert stack.http.get("/api/reports/qa/reviews/99999999999999999999", headers=manager.headers).status_code == 404
    for params in ({"agent": "99999999999999999999"}, {"start": "yesterday"}, {"start": "2026-02-10", "end": "2026-02-01"}, {"agent": "x"}, {"start": "2020-01-01", "end": "2026-01-01"}):
        assert stack.http.get("/api/reports/summary", params=params, headers=manager.headers).status_code == 400, params
    assert stack.http.get("/api/reports/csv/nope", headers=manager.headers).status_code == 404
    assert stack.http.put("/api/reports/qa/rubric", json={"criteria": [{"name": "x"}]}, headers=stack.login("supervisor").headers).status_code == 403


def test_csat_endpoint_refuses_bad_input_and_a_second_answer(stack: Stack) -> None:
    customer = stack.new_conversation()
    other = stack.new_conversation()
    path = f"/api/conversations/{customer.conversation_id}/rating"
    assert stack.http.post(path, json={"score": 5}).status_code == 401
    assert stack.http.post(path, json={"score": 5}, headers={"Authorization": "Bearer forged.token"}).status_code == 401
    assert stack.http.post(path, json={"score": 5}, headers=other.headers).status_code == 403
    for body in ({"score": 0}, {"score": 6}, {"score": "5"}, {"score": True}, {}, {"score": 4, "comment": 7},
                 {"score": 4, "comment": "x" * 2001}, {"score": 4, "extra": 1}):
        response = stack.http.post(path, json=body, headers=customer.headers)
        assert response.status_code == 400, (body, response.text)
    assert stack.http.post(path, content=b"not json", headers=customer.headers).status_code == 400
    ok = stack.http.post(path, json={"score": 4, "comment": "  quick <b>help</b> "}, headers=customer.headers)
    assert ok.status_code == 201, ok.text
    assert ok.json()["rating"] == {"score": 4, "comment": "quick <b>help</b>", "created_at": ok.json()["rating"]["created_at"]}
    again = stack.http.post(path, json={"score": 1}, headers=customer.headers)
    assert again.status_code == 409
    manager = stack.login("manager")
    summary = stack.http.get("/api/reports/summary", headers=manager.headers).json()
    assert summary["figures"]["satisfaction"]["bot"]["ratings"] >= 1


def test_chart_labels_are_escaped() -> None:
    svg = charts.bar_chart("<script>alert(1)</script>", [("<img src=x onerror=alert(1)>", 3.0)])
    assert "<script>" not in svg and "<img" not in svg and "&lt;img src=x" in svg


def test_reports_page_filters_draws_charts_and_downloads_csv(page: Any, stack: Stack) -> None:
    customer = stack.new_conversation()
    customer.say("hello")
    stack.http.post(f"/api/conversations/{customer.conversation_id}/rating", json={"score": 5}, headers=customer.headers)
    # A hostile value in the log (an escalation reason here) must show as text, never run.
    engine = sync_engine(stack.settings)
    with engine.begin() as conn:
        conn.execute(cases.insert().values(
            conversation_id=customer.conversation_id, channel="rest", status="cancelled", reason=XSS, detail="", signals="{}",
            priority=0, created_at=time.time(), closed_at=time.time(), resolution="customer_left"))
    engine.dispose()
    login(page, stack, "manager")
    page.locator("#figure-containment").wait_for()
    assert "Reason: " + XSS in page.locator("#figure-escalations").text_content()
    wait_js(page, "() => { const i = document.querySelector('#chart-escalation_reasons img'); return i && i.complete && i.naturalWidth > 0; }")
    assert page.evaluate("window.__xss") is None
    assert "Containment" in page.locator("#figure-containment").text_content()
    wait_js(page, "() => { const i = document.querySelector('#chart-containment img'); return i && i.complete && i.naturalWidth > 0; }")
    wait_js(page, "() => { const i = document.querySelector('#chart-csat_trend img'); return i && i.complete && i.naturalWidth > 0; }")
    # a filter: a channel with no conversations empties the figures
    page.select_option("#f-channel", "rest")
    page.get_by_role("button", name="Show").click()
    wait_js(page, "document.getElementById('status').textContent.startsWith('Showing')")
    assert "Conversations" in page.locator("#figure-containment").text_content()
    with page.expect_download() as info:
        page.get_by_role("button", name="Download Containment as CSV").click()
    download = info.value
    assert download.suggested_filename.startswith("tandem-containment-") and download.suggested_filename.endswith(".csv")
    content = open(download.path(), encoding="utf-8").read()
    assert content.splitlines()[0] == "day,conversations,bot_only,containment"
    assert content.splitlines()[-1].startswith("total,")


def test_reports_page_refuses_an_agent(page: Any, stack: Stack) -> None:
    login(page, stack, "agent")
    wait_js(page, "document.getElementById('login-error').textContent.length > 0")
    assert "cannot see the reports" in page.locator("#login-error").text_content()
    assert page.locator("#app").is_hidden()


def handled_case(stack: Stack) -> tuple[Any, dict[str, Any]]:
    """A real conversation: the customer asks for a person, Alex claims, replies and closes."""
    customer = stack.new_conversation()
    customer.say("hello")
    customer.say("can I speak to a human please")
    agent = stack.login("agent")
    case = agent.case_for(customer.conversation_id)
    assert agent.post(f"/cases/{case['id']}/claim").status_code == 200
    assert agent.post(f"/cases/{case['id']}/messages", {"text": "Hi, I'm Alex."}).status_code == 201
    assert agent.post(f"/cases/{case['id']}/close", {"resolution": "resolved"}).status_code == 200
    return customer, case


def test_a_low_rating_reaches_the_agent_the_review_queue_and_the_agents_own_reviews(page: Any, stack: Stack) -> None:
    customer, case = handled_case(stack)
    rated = stack.http.post(f"/api/conversations/{customer.conversation_id}/rating", json={"score": 1, "comment": "slow"}, headers=customer.headers)
    assert rated.status_code == 201
    manager = stack.login("manager")
    summary = stack.http.get("/api/reports/summary", headers=manager.headers).json()["figures"]
    assert any(name == "Alex Agent" and n >= 1 for _, name, n, _, _ in summary["satisfaction"]["by_agent"])

    supervisor = stack.login("supervisor")
    today = datetime.datetime.now(datetime.timezone.utc).date().isoformat()
    sampled = stack.http.post("/api/reports/qa/sample", json={"start": today, "end": today, "per_bucket": 50, "seed": 3}, headers=supervisor.headers)
    assert sampled.status_code == 201, sampled.text
    mine = [r for r in sampled.json()["queued"] if r["case_id"] == case["id"]]
    assert mine and mine[0]["bucket"] == "low_csat"
    for bad in ({"start": "x", "end": today}, {"start": today, "end": today, "per_bucket": 0}, {"start": today, "end": today, "seed": "1"}):
        assert stack.http.post("/api/reports/qa/sample", json=bad, headers=supervisor.headers).status_code == 400

    login(page, stack, "supervisor")
    page.get_by_role("button", name=f"Review case {case['id']}").click()
    page.locator("#review-transcript li").first.wait_for()
    assert "Hi, I'm Alex." in page.locator("#review-transcript").text_content()
    selects = page.locator("#review-criteria select")
    for i in range(selects.count()):
        selects.nth(i).select_option("3")
    page.get_by_label("Comment").fill("Polite, but the customer waited <long>.")
    page.get_by_role("button", name="Submit review").click()
    wait_js(page, "document.getElementById('status').textContent.startsWith('Review saved: 50')")

    own = stack.http.get("/api/reports/qa/mine", headers=stack.login("agent").headers).json()["reviews"]
    review = [r for r in own if r["case_id"] == case["id"]][0]
    assert review["score"] == 50.0 and review["comment"] == "Polite, but the customer waited <long>."
    path = f"/api/reports/qa/reviews/{review['id']}"
    assert stack.http.post(path, json={"scores": {}, "comment": ""}, headers=supervisor.headers).status_code == 400
    criteria = stack.http.get("/api/reports/qa/rubric", headers=supervisor.headers).json()["criteria"]
    full = {"scores": {str(c["id"]): 5 for c in criteria}, "comment": ""}
    assert stack.http.post(path, json=full, headers=supervisor.headers).status_code == 409  # scored once
    assert stack.http.post(path, json=full, headers=manager.headers).status_code == 403  # supervisors score
    assert stack.http.get("/api/reports/qa/mine", headers=manager.headers).status_code == 403
