"""The editors' API on a real running Tandem: roles, CRUD with versions, diff, rollback,
conflicts, import/export, try-a-question, and edits going live in the running bot."""
from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Callable

import httpx
import pytest

from tests.conftest import Stack

TREE_Q = "Do you plant a tree for every order?"
TREE_ASK = "Do you plant a tree for each order I place?"


@dataclass
class Editor:
    http: httpx.Client
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def get(self, path: str, **params: Any) -> httpx.Response:
        return self.http.get(f"/api/editor{path}", headers=self.headers, params=params)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> httpx.Response:
        if isinstance(body, (bytes, str)):
            return self.http.post(f"/api/editor{path}", headers=self.headers, content=body, **kwargs)
        return self.http.post(f"/api/editor{path}", headers=self.headers, json=body or {}, **kwargs)

    def put(self, path: str, body: dict[str, Any]) -> httpx.Response:
        return self.http.put(f"/api/editor{path}", headers=self.headers, json=body)

    def delete(self, path: str, **params: Any) -> httpx.Response:
        return self.http.delete(f"/api/editor{path}", headers=self.headers, params=params)


def editor_login(stack: Stack, username: str = "editor") -> Editor:
    response = stack.http.post("/api/editor/login", json={"username": username, "password": username})
    assert response.status_code == 200, response.text
    return Editor(stack.http, response.json()["token"])


def wait_for_live_decision(editor: Editor, timeout: float = 120) -> None:
    """Until the self-calibration and the knowledge base's head cover what is published, in the web
    process and (a moment later: it fits the same head) in the action server."""
    deadline = time.monotonic() + timeout
    while (state := editor.get("/calibration").json())["pending"] or state["head_pending"]:
        assert time.monotonic() < deadline, "self-calibration or the knowledge head never finished"
        time.sleep(0.5)
    time.sleep(2 * ((state["head"] or {}).get("seconds") or 0) + 1)


@pytest.fixture()
def editor(stack: Stack) -> Editor:
    return editor_login(stack)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def bot_answer(stack: Stack, question: str) -> dict[str, Any] | None:
    """Ask in a fresh conversation (so misses never add up to an escalation); the first reply."""
    replies = stack.new_conversation().say(question)["replies"]
    return replies[0] if replies else None


def seconds_until_answer(stack: Stack, question: str, answer: str, since: float, limit: float = 2.0) -> float:
    return seconds_until_reply(stack, question, lambda reply: bool(reply) and reply["text"] == answer, since, limit)


def seconds_until_reply(stack: Stack, question: str, accept: Callable[[dict[str, Any] | None], bool], since: float, limit: float = 2.0) -> float:
    """Customers keep arriving after the editor's save returned (`since`): a new one every 0.25 s,
    at most 4 at a time, each in its own conversation, all asking `question`.

    Passes when a customer who ASKED within `limit` seconds of the save got a reply that
    `accept`s, and no customer who asked after that one still got the old reply. That is the
    promise "a customer asking 2 s after an edit gets the new answer", measured independently of
    how long one round trip through Rasa takes on a busy machine. Returns when the first
    accepted reply was RECEIVED (printed by the tests, so the full delay is visible too).
    """
    done = threading.Event()
    results: list[tuple[float, float, bool, str]] = []  # asked, received (s after save), accepted, text
    in_flight = threading.Semaphore(4)

    def customer() -> None:
        try:
            asked = time.monotonic() - since
            reply = bot_answer(stack, question)
            ok = accept(reply)
            results.append((asked, time.monotonic() - since, ok, reply["text"] if reply else ""))
            if ok:
                done.set()
        finally:
            in_flight.release()

    with ThreadPoolExecutor(max_workers=4) as pool:
        while not done.is_set() and time.monotonic() - since < limit:
            if in_flight.acquire(timeout=0.05):
                pool.submit(customer)
                done.wait(0.25)
        # Customers still asking finish (their replies count); no new ones after the limit.
    accepted = sorted(r for r in results if r[2])
    summary = ", ".join(f"asked {a:.2f}s got {'new' if ok else 'old'} at {r:.2f}s" for a, r, ok, _ in sorted(results))
    assert accepted, f"no customer who asked within {limit}s got the expected reply: {summary}"
    first_asked = accepted[0][0]
    assert first_asked <= limit, summary
    stale = [r for r in results if r[0] > first_asked and not r[2]]
    assert not stale, f"the old reply came back after the new one: {summary}"
    return min(r[1] for r in accepted)


# -- who may edit ---------------------------------------------------------------------------
def test_only_editors_can_edit(stack: Stack, editor: Editor) -> None:
    assert stack.http.get("/api/editor/faqs").status_code == 401
    refused = stack.http.post("/api/editor/login", json={"username": "agent", "password": "agent"})
    assert refused.status_code == 403 and "cannot edit" in refused.json()["error"]
    agent = stack.login("agent")  # the shared staff login works for any role ...
    forbidden = stack.http.get("/api/editor/faqs", headers=agent.headers)
    assert forbidden.status_code == 403  # ... but an agent's session cannot edit
    assert stack.http.post("/api/editor/login", json={"username": "editor", "password": "wrong"}).status_code == 401
    customer = stack.new_conversation()
    assert stack.http.get("/api/editor/faqs", headers=customer.headers).status_code == 401
    via_agent_login = stack.login("editor")
    assert stack.http.get("/api/editor/categories", headers=via_agent_login.headers).status_code == 200
    assert "orders" in editor.get("/categories").json()["categories"]


# -- entries, versions, conflicts -------------------------------------------------------------
def test_create_edit_history_diff_rollback_delete(editor: Editor) -> None:
    faq_id = unique("test-crud")
    created = editor.post("/faqs", {"id": faq_id, "category": "testing", "question": "What is a crud test?",
                                    "answer": "First answer.", "paraphrases": ["crud test?"], "tags": ["t"], "status": "draft"})
    assert created.status_code == 201, created.text
    assert created.json()["faq"]["version"] == 1 and created.json()["faq"]["updated_by"] == "editor"
    assert editor.post("/faqs", {"id": faq_id, "category": "testing", "question": "q", "answer": "a"}).status_code == 409

    updated = editor.put(f"/faqs/{faq_id}", {**created.json()["faq"], "answer": "Second answer.", "status": "published",
                                             "expected_version": 1})
    assert updated.status_code == 200, updated.text
    assert updated.json()["faq"]["version"] == 2

    listed = editor.get("/faqs", category="testing", status="published", q="crud").json()
    assert [f["id"] for f in listed["faqs"]] == [faq_id]
    assert listed["faqs"][0]["usage"] == {"served": 0, "helpful": 0, "unhelpful": 0}
    assert editor.get("/faqs", category="testing", status="draft", q="crud").json()["faqs"] == []

    versions = editor.get(f"/faqs/{faq_id}/history").json()["versions"]
    assert [(v["version"], v["action"], v["author"]) for v in versions] == [(2, "update", "editor"), (1, "create", "editor")]
    assert all(v["at"] > 0 for v in versions)
    changes = {c["field"]: c for c in editor.get(f"/faqs/{faq_id}/diff", **{"from": 1, "to": 2}).json()["changes"]}
    assert set(changes) == {"answer", "status"}
    assert changes["answer"]["before"] == "First answer." and changes["answer"]["after"] == "Second answer."
    assert "-First answer." in changes["answer"]["diff"] and "+Second answer." in changes["answer"]["diff"]

    rolled = editor.post(f"/faqs/{faq_id}/rollback", {"version": 1})
    assert rolled.status_code == 200, rolled.text
    assert rolled.json()["faq"]["answer"] == "First answer." and rolled.json()["faq"]["version"] == 3
    assert editor.get(f"/faqs/{faq_id}/history").json()["versions"][0]["action"] == "rollback"

    assert editor.delete(f"/faqs/{faq_id}", expected_version=2).status_code == 409
    assert editor.delete(f"/faqs/{faq_id}", expected_version=3).status_code == 200
    assert editor.get(f"/faqs/{faq_id}").status_code == 404
    assert editor.get("/faqs/no-such-entry/history").status_code == 404


def test_second_editor_is_told_the_entry_changed(stack: Stack, editor: Editor) -> None:
    other = editor_login(stack)
    faq_id = unique("test-conflict")
    base = {"category": "testing", "question": "Who saves last?", "answer": "Nobody yet.", "status": "draft"}
    assert editor.post("/faqs", {"id": faq_id, **base}).status_code == 201
    first = editor.put(f"/faqs/{faq_id}", {**base, "answer": "Editor one's text.", "expected_version": 1})
    assert first.status_code == 200
    second = other.put(f"/faqs/{faq_id}", {**base, "answer": "Editor two's text.", "expected_version": 1})
    assert second.status_code == 409
    body = second.json()
    assert "changed" in body["error"] and "editor" in body["error"]
    assert body["current"]["answer"] == "Editor one's text." and body["current"]["version"] == 2
    assert editor.get(f"/faqs/{faq_id}").json()["faq"]["answer"] == "Editor one's text."  # nothing overwritten
    assert other.put(f"/faqs/{faq_id}", {**base, "answer": "x"}).status_code == 400  # expected_version is required
    editor.delete(f"/faqs/{faq_id}")


def test_bad_input_gets_clear_errors(stack: Stack, editor: Editor) -> None:
    bad_json = stack.http.post("/api/editor/faqs", headers=editor.headers, content=b"{not json")
    assert bad_json.status_code == 400 and "JSON" in bad_json.json()["error"]
    missing = editor.post("/faqs", {"category": "testing", "question": "No answer?"})
    assert missing.status_code == 400 and "answer" in missing.json()["error"]
    assert editor.post("/faqs", {"category": "t", "question": "q?", "answer": "a", "status": "live"}).status_code == 400
    assert editor.get("/faqs", status="nope").status_code == 400
    assert editor.put("/faqs/no-such-entry", {"category": "t", "question": "q", "answer": "a", "expected_version": 1}).status_code == 404
    assert editor.post("/faqs/x/rollback", {"version": "two"}).status_code == 400
    assert editor.get("/faqs/x/diff").status_code == 400
    assert stack.http.get("/health").status_code == 200


# -- live, without retraining ---------------------------------------------------------------
@pytest.fixture()
def cleanup(editor: Editor) -> Iterator[list[str]]:
    """Entries a test created; deleted afterwards even if the test failed, so none leaks."""
    created: list[str] = []
    yield created
    for faq_id in created:
        editor.delete(f"/faqs/{faq_id}")


def test_published_edit_is_answered_by_the_running_bot_within_2s(stack: Stack, editor: Editor, cleanup: list[str]) -> None:
    faq_id = unique("test-trees")
    assert bot_answer(stack, TREE_ASK).get("faq_id") != faq_id
    first_answer = f"Yes: we plant one tree for every order ({faq_id})."
    created = editor.post("/faqs", {"id": faq_id, "category": "testing", "question": TREE_Q, "answer": first_answer,
                                    "paraphrases": ["Is a tree planted for each purchase?"], "status": "published"})
    assert created.status_code == 201, created.text
    cleanup.append(faq_id)
    started = time.monotonic()
    took = seconds_until_answer(stack, TREE_ASK, first_answer, started)

    second_answer = f"Since March we plant two trees for every order ({faq_id})."
    assert editor.put(f"/faqs/{faq_id}", {**created.json()["faq"], "answer": second_answer, "expected_version": 1}).status_code == 200
    started = time.monotonic()
    took_edit = seconds_until_answer(stack, TREE_ASK, second_answer, started)

    assert editor.post(f"/faqs/{faq_id}/rollback", {"version": 1}).status_code == 200
    started = time.monotonic()
    took_rollback = seconds_until_answer(stack, TREE_ASK, first_answer, started)
    print(f"live after create {took:.2f}s, edit {took_edit:.2f}s, rollback {took_rollback:.2f}s")

    served = next(f for f in editor.get("/faqs", q=faq_id).json()["faqs"] if f["id"] == faq_id)
    assert served["usage"]["served"] >= 3

    assert editor.delete(f"/faqs/{faq_id}").status_code == 200
    started = time.monotonic()

    seconds_until_reply(stack, TREE_ASK, lambda reply: reply is None or reply.get("faq_id") != faq_id, started)


def test_draft_is_not_served_until_published(stack: Stack, editor: Editor, cleanup: list[str]) -> None:
    faq_id = unique("test-draft-trees")
    cleanup.append(faq_id)
    answer = f"Draft: trees are planted ({faq_id})."
    created = editor.post("/faqs", {"id": faq_id, "category": "testing", "question": TREE_Q, "answer": answer, "status": "draft"})
    assert created.status_code == 201
    time.sleep(1.0)  # two refresh intervals: a draft must stay invisible however long we wait
    assert (bot_answer(stack, TREE_ASK) or {}).get("faq_id") != faq_id
    assert editor.put(f"/faqs/{faq_id}", {**created.json()["faq"], "status": "published", "expected_version": 1}).status_code == 200
    started = time.monotonic()
    seconds_until_answer(stack, TREE_ASK, answer, started)
    editor.delete(f"/faqs/{faq_id}")


# -- try a question ---------------------------------------------------------------------------
def test_try_a_question_shows_top_matches_and_the_decision(editor: Editor) -> None:
    known = editor.post("/try", {"text": "How can I track my order?"}).json()
    assert known["decision"]["action"] == "answer" and known["decision"]["faq_id"] == "orders-track-order"
    assert len(known["matches"]) == 5 and known["matches"][0]["score"] >= known["threshold"]
    assert known["matches"] == sorted(known["matches"], key=lambda m: m["score"], reverse=True)

    unknown = editor.post("/try", {"text": "Do you plant a tree for every order?"}).json()
    assert unknown["decision"]["action"] == "miss" and "below the threshold" in unknown["decision"]["reason"]

    # The entry being edited (unsaved) is scored too: a copy of an existing question is ambiguous
    # (the two best entries tie within the clarify margin, so the bot would ask which one).
    draft = {"question": "how can i track my order", "answer": "Draft answer.", "paraphrases": []}
    clash = editor.post("/try", {"text": "How can I track my order?", "entry": draft}).json()
    assert clash["decision"]["action"] == "clarify", clash
    assert any(m["editing"] for m in clash["matches"])
    assert clash["clarify_margin"] > 0

    own = editor.post("/try", {"text": TREE_ASK, "entry": {"question": TREE_Q, "answer": "Yes."}}).json()
    assert own["decision"]["action"] == "answer" and own["matches"][0]["editing"]
    assert editor.post("/try", {"text": ""}).status_code == 400
    assert editor.post("/try", {"text": "hi", "entry": "nope"}).status_code == 400


# -- import / export --------------------------------------------------------------------------
def test_import_checks_then_applies_whole_and_export_round_trips(editor: Editor) -> None:
    tag = uuid.uuid4().hex[:6]
    good = (
        "id,category,question,answer,paraphrases,tags,status\n"
        f"imp-{tag}-1,imported,How do imports work {tag}?,All at once.,import how|bulk how,imp,draft\n"
        f"imp-{tag}-2,imported,Can I export {tag}?,Yes as CSV or YAML.,,imp,draft\n"
    ).encode()
    checked = editor.post("/import?format=csv", good)
    assert checked.status_code == 200 and checked.json()["rows"] == 2 and checked.json()["applied"] == 0
    assert editor.get(f"/faqs/imp-{tag}-1").status_code == 404  # a check writes nothing

    broken = good + f"imp-{tag}-1,imported,Duplicate?,x,,,draft\nimp-{tag}-3,imported,No answer?,,,,draft\n".encode()
    refused = editor.post("/import?format=csv&apply=1", broken)
    assert refused.status_code == 422
    messages = {(e["row"], e["message"]) for e in refused.json()["errors"]}
    assert (3, f"duplicate id 'imp-{tag}-1' (also on row 1)") in messages
    assert (4, "missing answer") in messages
    assert editor.get(f"/faqs/imp-{tag}-2").status_code == 404  # all or nothing

    assert editor.post("/import?format=csv&apply=1", b"id,question\nx,y\n").status_code == 422
    assert editor.post("/import?format=csv&apply=1", "id,category,question,answer\nx,c,caf\xe9?,a\n".encode("latin-1")).status_code == 422
    too_big = editor.post("/import?format=csv&apply=1", b"id,category,question,answer\n" + b"x" * (10 * 1024 * 1024))
    assert too_big.status_code == 413 and "too large" in too_big.json()["error"]
    assert editor.post("/import?format=xml", good).status_code == 400

    applied = editor.post("/import?format=csv&apply=1", good)
    assert applied.status_code == 200 and applied.json()["applied"] == 2
    entry = editor.get(f"/faqs/imp-{tag}-1").json()["faq"]
    assert entry["paraphrases"] == ["import how", "bulk how"] and entry["updated_by"] == "editor"

    exported = editor.get("/export", format="yaml", status="draft")
    assert exported.status_code == 200 and "attachment" in exported.headers["content-disposition"]
    again = editor.post("/import?format=yaml", exported.content)
    assert again.status_code == 200 and again.json()["rows"] >= 2
    csv_export = editor.get("/export", format="csv").text
    assert csv_export.startswith("id,category,question,answer,paraphrases,tags,status\n")
    assert f"imp-{tag}-1,imported,How do imports work {tag}?,All at once.,import how|bulk how,imp,draft" in csv_export
    for n in (1, 2):
        editor.delete(f"/faqs/imp-{tag}-{n}")


# -- learning from what the bot missed ---------------------------------------------------------
def test_gaps_group_similar_missed_questions(stack: Stack, editor: Editor) -> None:
    """Customers ask the same unanswerable thing three ways; the gaps view shows them as one group.

    Which turns become `missed`/`escalated` events is Rasa's call (NLU may route a turn elsewhere),
    so at least two of the three must show up, and every one that does is in the same group.
    (tests/test_knowledge_gaps.py checks the grouping itself without Rasa.)"""
    asked = ["Do you sell marble garden gnomes?", "Do you sell garden gnomes made of marble?",
             "Are marble garden gnomes something you sell?"]
    for text in asked:
        replies = stack.new_conversation().say(text)["replies"]
        assert replies and not replies[0].get("faq_id"), f"{text!r} should not be answered from the KB, got {replies}"
    gaps = editor.get("/gaps", examples=50).json()["gaps"]
    found = [g for g in gaps if any(e["text"] in asked for e in g["examples"])]
    summary = [(g["count"], [e["text"] for e in g["examples"]][:6]) for g in found or gaps[:10]]
    assert len(found) == 1, summary
    group = found[0]
    assert len({e["text"] for e in group["examples"]} & set(asked)) >= 2, summary
    assert group["count"] >= 2 and group["conversations"] >= 2
    assert gaps == sorted(gaps, key=lambda g: g["latest_at"], reverse=True)
    assert editor.get("/gaps", threshold="2").status_code == 400


def test_agents_answer_becomes_a_draft_suggestion(stack: Stack, editor: Editor) -> None:
    customer = stack.new_conversation()
    question = f"Can you deliver to a lighthouse on an island {uuid.uuid4().hex[:4]}?"
    customer.say(question)
    customer.say("I want to talk to a person")
    agent = stack.login("agent")
    case = agent.case_for(customer.conversation_id)
    assert agent.post(f"/cases/{case['id']}/claim").status_code == 200
    assert agent.post(f"/cases/{case['id']}/messages", {"text": "Hi!"}).status_code == 201
    answer = "Yes, we deliver to islands by ferry freight; allow three extra working days."
    assert agent.post(f"/cases/{case['id']}/messages", {"text": answer}).status_code == 201
    assert agent.post(f"/cases/{case['id']}/close", {"resolution": "resolved"}).status_code == 200

    found = [s for s in editor.get("/suggestions").json()["suggestions"] if s["case_id"] == case["id"]]
    assert len(found) == 1, found
    suggestion = found[0]
    assert suggestion["question"] == question and suggestion["answer"] == answer and suggestion["agent"] == "agent"
    draft = suggestion["draft"]
    assert draft["status"] == "draft" and f"case-{case['id']}" in draft["tags"]
    assert editor.post("/faqs", draft).status_code == 201  # one click: the page does exactly this
    assert not [s for s in editor.get("/suggestions").json()["suggestions"] if s["case_id"] == case["id"]]
    editor.delete(f"/faqs/{draft['id']}")
