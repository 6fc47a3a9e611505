"""Scale-out beyond the web process, for real: two Rasa servers, each with its own action server,
sharing Rasa's tracker store (PostgreSQL) and lock store (Redis), behind two web processes.

- Each conversation has a home Rasa instance (a stable hash of its id, the same in every web
  process); conversations of both homes are answered, and under concurrent load over both web
  processes every conversation's messages reach Rasa's tracker in the order they were sent.
- When one Rasa server is down its conversations fail over to the other, which reads the same
  tracker: nothing is lost, the dialogue continues where it was.
"""
from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from bot.rasa_client import RasaClient
from benchmarks.common import free_ports
from tests.conftest import Customer, Stack, postgres_url, redis_url, stack_settings, two_web_processes

QUESTIONS = ("hi", "how can I track my order?", "what payment methods do you accept?", "thanks!")


@pytest.fixture(scope="module")
def two_rasas(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, Stack]]:
    settings = stack_settings(tmp_path_factory.mktemp("scaleout-rasa"), database_url=postgres_url("tandem_test_scaleout_rasa"),
                              redis_url=redis_url(), rasa_instances=2, rasa_port=free_ports(2), action_port=free_ports(2))
    with two_web_processes(settings) as webs:
        yield webs


def homes(stack: Stack) -> RasaClient:
    return RasaClient(stack.settings.rasa_urls, 5.0, stack.settings.rasa_token())


def user_texts(stack: Stack, conversation_id: str, instance: int = 0) -> list[str]:
    tracker = httpx.get(f"{stack.settings.rasa_urls[instance]}/conversations/{conversation_id}/tracker",
                        params={"token": stack.settings.rasa_token()}, timeout=30).json()
    return [e["text"] for e in tracker["events"] if e["event"] == "user"]


def test_supervisor_runs_two_rasa_and_two_action_servers(two_rasas: tuple[Stack, Stack]) -> None:
    web_a, _ = two_rasas
    names = [s.name for s in web_a.supervisor.services]
    assert names == ["actions", "rasa", "actions-2", "rasa-2", "web"]
    for url in (*web_a.settings.rasa_urls, *web_a.settings.action_health_urls):
        assert httpx.get(url if url.endswith("/health") else url + "/status",
                         params={"token": web_a.settings.rasa_token()}, timeout=10).status_code == 200
    endpoints = (web_a.settings.var_dir / "endpoints-2.yml").read_text()
    assert f":{web_a.settings.action_port + 1}/webhook" in endpoints  # rasa-2 calls actions-2


def test_both_homes_answer_in_order_under_concurrent_load(two_rasas: tuple[Stack, Stack]) -> None:
    web_a, web_b = two_rasas
    client = homes(web_a)
    customers: list[Customer] = [(web_a if i % 2 else web_b).new_conversation() for i in range(16)]
    while {client.home(c.conversation_id) for c in customers} != {0, 1}:  # both instances have conversations
        customers[-1] = web_a.new_conversation()

    def talk(index: int) -> list[str]:
        customer = customers[index]
        sent = []
        for turn, question in enumerate(QUESTIONS):
            # Alternate the web process per turn: the conversation's Rasa must not depend on which one.
            web = web_a if (index + turn) % 2 else web_b
            text = f"{question} ({index}.{turn})" if turn in (1, 2) else question
            body = web.http.post(f"/api/conversations/{customer.conversation_id}/messages", json={"text": text},
                                 headers=customer.headers).json()
            assert body["mode"] == "bot" and body["replies"], body
            sent.append(text)
        return sent

    with ThreadPoolExecutor(max_workers=8) as pool:
        sent = list(pool.map(talk, range(len(customers))))
    for customer, texts in zip(customers, sent):
        # Either Rasa reads the shared tracker store: both see the same, complete, ordered record.
        assert user_texts(web_a, customer.conversation_id, 0) == texts
        assert user_texts(web_a, customer.conversation_id, 1) == texts


def test_a_conversation_fails_over_when_its_rasa_is_down(two_rasas: tuple[Stack, Stack]) -> None:
    web_a, web_b = two_rasas
    client = homes(web_a)
    for down in (1, 0):
        name = "rasa" if down == 0 else "rasa-2"
        customer = web_a.new_conversation()
        while client.home(customer.conversation_id) != down:
            customer = web_a.new_conversation()
        assert customer.say("how can I track my order?")["replies"][0]["faq_id"] == "orders-track-order"
        web_a.supervisor.stop_service(name)
        try:
            reply = web_b.http.post(f"/api/conversations/{customer.conversation_id}/messages",
                                    json={"text": "what payment methods do you accept?"}, headers=customer.headers).json()
            assert reply["mode"] == "bot" and reply["replies"][0].get("faq_id"), reply
            survivor = 1 - down
            assert user_texts(web_a, customer.conversation_id, survivor) == ["how can I track my order?", "what payment methods do you accept?"]
        finally:
            web_a.supervisor.start(only=(name,))


def test_kill_9_of_one_rasa_mid_load_loses_nothing(two_rasas: tuple[Stack, Stack]) -> None:
    """Customers on both homes keep talking while rasa-2 is killed with SIGKILL: every message is
    stored and answered, by the bot (the other instance, from the shared tracker) or, for a message
    that was inside the killed server, with the honest "the assistant is unavailable" notice and a
    way to a person. Nothing is acknowledged without a reply."""
    import threading
    import time

    web_a, web_b = two_rasas
    client = homes(web_a)
    customers = [(web_a if i % 2 else web_b).new_conversation() for i in range(10)]
    while {client.home(c.conversation_id) for c in customers} != {0, 1}:  # both homes under load
        customers[-1] = web_a.new_conversation()
    killed = threading.Event()

    def talk(index: int) -> list[tuple[str, dict]]:
        customer, said = customers[index], []
        for turn in range(6):
            if index == 0 and turn == 2:
                web_a.supervisor.stop_service("rasa-2", hard=True)  # SIGKILL, mid-load
                killed.set()
            web = web_a if (index + turn) % 2 else web_b
            text = f"how can I track my order? ({index}.{turn})"
            response = web.http.post(f"/api/conversations/{customer.conversation_id}/messages", json={"text": text},
                                     headers=customer.headers)
            assert response.status_code == 200, response.text
            said.append((text, response.json()))
        return said

    try:
        with ThreadPoolExecutor(max_workers=10) as pool:
            results = list(pool.map(talk, range(len(customers))))
        assert killed.is_set()
        for customer, said in zip(customers, results):
            stored = [m for m in customer.messages() if m["sender"] == "customer"]
            assert [m["text"] for m in stored] == [text for text, _ in said]  # every message kept, in order
            for text, body in said:
                assert body["replies"], f"{text}: acknowledged with no reply"
                kinds = {r.get("kind") for r in body["replies"]}
                assert kinds & {"faq_answer", "bot_unavailable"} or body["mode"] != "bot", (text, body)
        # After the kill every conversation is the bot's again, on the surviving instance. One whose
        # message was inside the killed server waits for Rasa's lock on it to expire (Redis lock
        # store, TICKET_LOCK_LIFETIME, 60 s by default) and is told the assistant is away meanwhile.
        deadline = time.monotonic() + 90
        for customer in customers:
            while True:
                replies = customer.say("how can I track my order?")["replies"]
                if any(r.get("kind") == "faq_answer" for r in replies):
                    break
                assert time.monotonic() < deadline, f"{customer.conversation_id} never answered again: {replies}"
                time.sleep(2)
    finally:
        web_a.supervisor.start(only=("rasa-2",))
