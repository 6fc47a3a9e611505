"""Scale-out mode for real: PostgreSQL (Rasa's tracker store and Tandem's tables) and Redis
(Rasa's lock store, pub/sub), with two web processes sharing them."""
from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from tests.conftest import Stack, postgres_url, redis_url, stack_settings, two_web_processes, wait_until

REDIS_URL = redis_url()


@pytest.fixture(scope="module")
def two_webs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, Stack]]:
    settings = stack_settings(tmp_path_factory.mktemp("scaleout"), database_url=postgres_url("tandem_test_scaleout"), redis_url=REDIS_URL)
    with two_web_processes(settings) as webs:
        yield webs


def test_customer_on_one_instance_agent_on_another(two_webs: tuple[Stack, Stack]) -> None:
    web_a, web_b = two_webs
    customer = web_a.new_conversation()
    assert customer.say("how can I track my order?")["replies"][0]["faq_id"] == "orders-track-order"
    assert customer.say("I'd like to speak with a human")["mode"] == "waiting"

    agent = web_b.login("agent")  # sessions live in PostgreSQL: any instance accepts them
    case = agent.case_for(customer.conversation_id)
    assert agent.post(f"/cases/{case['id']}/claim").status_code == 200
    assert agent.post(f"/cases/{case['id']}/messages", {"text": "Hello from instance B"}).status_code == 201
    wait_until(lambda: any(m["text"] == "Hello from instance B" for m in customer.messages()))
    assert agent.post(f"/cases/{case['id']}/close").status_code == 200
    assert customer.say("how can I track my order?")["mode"] == "bot"

    engine = sa.create_engine(web_a.settings.sqlalchemy_url)
    with engine.connect() as conn:
        # Rasa's own SQL tracker store table sits in the same PostgreSQL database.
        rows = conn.execute(sa.text("SELECT type_name FROM events WHERE sender_id = :s"), {"s": customer.conversation_id}).all()
    engine.dispose()
    kinds = {r[0] for r in rows}
    assert {"user", "bot", "pause", "resume"} <= kinds


def test_bus_crosses_instances(two_webs: tuple[Stack, Stack]) -> None:
    """A message published on one web process reaches subscribers on the other, via Redis."""
    import asyncio

    from core.bus import RedisBus

    async def roundtrip() -> dict:
        sender, receiver = RedisBus(REDIS_URL), RedisBus(REDIS_URL)
        await sender.start()
        await receiver.start()
        queue = receiver.subscribe("conversation:xyz")
        await asyncio.sleep(0.2)
        await sender.publish("conversation:xyz", {"type": "message", "text": "over redis"})
        try:
            return await asyncio.wait_for(queue.get(), 5)
        finally:
            await sender.stop()
            await receiver.stop()

    assert asyncio.run(roundtrip())["text"] == "over redis"


def test_logout_on_one_instance_closes_the_console_on_the_other(two_webs: tuple[Stack, Stack]) -> None:
    """The session ends everywhere at once (the bus's sessions topic), not at the next check-in."""
    import asyncio
    import json

    import websockets

    web_a, web_b = two_webs
    agent = web_a.login("agent2")
    url = web_b.settings.web_url.replace("http://", "ws://") + "/api/agent/ws"

    async def scenario() -> int | None:
        async with websockets.connect(url, extra_headers=agent.headers) as ws:
            assert json.loads(await asyncio.wait_for(ws.recv(), 30))["type"] == "hello"
            assert (await asyncio.to_thread(agent.post, "/logout")).status_code == 200  # on instance A
            try:
                while True:
                    await asyncio.wait_for(ws.recv(), 10)  # well under the 30 s check-in
            except websockets.ConnectionClosed:
                return ws.close_code

    assert asyncio.run(scenario()) == 4401
