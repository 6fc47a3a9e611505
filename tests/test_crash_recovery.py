"""kill -9 of the web process in the middle of a hand-off loses no case, message or assignment;
afterwards the agent and the customer carry on where they were."""
from __future__ import annotations

from tests.conftest import Stack


def test_kill_9_during_a_live_chat(stack: Stack) -> None:
    customer = stack.new_conversation()
    customer.say("hello")
    customer.say("please put me through to an agent")
    agent = stack.login("agent")
    case = agent.case_for(customer.conversation_id)
    assert agent.post(f"/cases/{case['id']}/claim").status_code == 200
    assert agent.post(f"/cases/{case['id']}/messages", {"text": "Hi, Alex here."}).status_code == 201
    customer.say("my order never arrived")
    before = customer.messages()

    stack.supervisor.restart("web", hard=True)  # SIGKILL, then a fresh process

    after = customer.messages()
    assert after == before  # every message is still there, in order, with the same ids
    agent = stack.login("agent")  # a new session; the assignment itself survived
    mine = agent.get("/cases", status="mine").json()["cases"]
    assert [c["id"] for c in mine if c["conversation_id"] == customer.conversation_id] == [case["id"]]
    assert agent.get(f"/cases/{case['id']}").json()["case"]["agent_name"] == "Alex Agent"
    assert customer.say("are you still there?")["replies"] == []  # still with the person, not the bot
    assert agent.post(f"/cases/{case['id']}/messages", {"text": "Still here, checking now."}).status_code == 201
    texts = [m["text"] for m in customer.messages(after=after[-1]["id"])]
    assert texts == ["are you still there?", "Still here, checking now."]
    assert agent.post(f"/cases/{case['id']}/close").status_code == 200
