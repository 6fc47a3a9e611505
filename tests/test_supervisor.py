"""The supervisor and the hardening around the processes: Rasa's token, owner-only var/,
demo accounts only for the demo. (Killing processes under load: tests/test_fault_suite.py.)"""
from __future__ import annotations

import asyncio
import os
import signal
import socket
import stat
import time
from pathlib import Path

import httpx
import pytest

from server.cli import UnsafeSettings, _demo_accounts, check_demo_exposure, prepare
from server.processes import Supervisor, private_var_dir
from core.db import async_engine
from server.schema import create_schema
from handoff.accounts import Accounts, AuthError
from tests.conftest import Stack, stack_settings, wait_until


def test_rasa_refuses_calls_without_the_token(stack: Stack) -> None:
    rasa = stack.settings.rasa_url
    conversation = stack.new_conversation().conversation_id
    for params in ({}, {"token": "wrong"}):
        assert httpx.get(f"{rasa}/conversations/{conversation}/tracker", params=params, timeout=30).status_code == 401
        assert httpx.post(f"{rasa}/conversations/{conversation}/tracker/events", params=params,
                          json=[{"event": "pause"}], timeout=30).status_code == 401
        webhook = httpx.post(f"{rasa}/webhooks/rest/webhook", params=params, json={"sender": conversation, "message": "hi"}, timeout=30)
        assert webhook.status_code == 401
    token = {"token": stack.settings.rasa_token()}
    assert httpx.get(f"{rasa}/conversations/{conversation}/tracker", params=token, timeout=30).status_code == 200
    # The token is Tandem's secret's, not a fixed string, and never on Rasa's command line.
    assert stack.settings.replace(secret_key="another").rasa_token() != stack.settings.rasa_token()
    pid = stack.supervisor.service("rasa").process.pid  # type: ignore[union-attr]
    assert stack.settings.rasa_token() not in Path(f"/proc/{pid}/cmdline").read_text()
    for log in (stack.settings.var_dir / "logs").glob("*.log"):
        assert stack.settings.rasa_token() not in log.read_text(errors="replace"), log


def test_pause_and_resume_still_reach_rasa_with_the_token(stack: Stack) -> None:
    customer = stack.new_conversation()
    assert customer.say("I want to talk to a person")["mode"] == "waiting"
    agent = stack.login("agent")
    case = agent.case_for(customer.conversation_id)
    assert agent.post(f"/cases/{case['id']}/claim").status_code == 200
    assert agent.post(f"/cases/{case['id']}/close").status_code == 200
    tracker = httpx.get(f"{stack.settings.rasa_url}/conversations/{customer.conversation_id}/tracker",
                        params={"token": stack.settings.rasa_token()}, timeout=30).json()
    kinds = [e["event"] for e in tracker["events"]]
    assert "pause" in kinds and "resume" in kinds and kinds.index("pause") < kinds.index("resume")


def test_action_server_down_offers_a_person(stack: Stack) -> None:
    """Rasa answers 200 with no reply when it cannot reach the action server: the customer must
    still hear that the assistant is in trouble and be offered a person."""
    customer = stack.new_conversation()
    stack.supervisor.stop_service("actions")
    try:
        reply = customer.say("How can I track my order?")
        assert reply["mode"] == "bot"
        [notice] = reply["replies"]
        assert notice["kind"] == "bot_unavailable" and notice["buttons"][0]["payload"] == "/request_human"
        assert customer.say("Talk to a person", payload="/request_human")["mode"] == "waiting"
        assert stack.login("agent").case_for(customer.conversation_id)["reason"] == "bot_unavailable"
    finally:
        stack.supervisor.start(only=("actions",))


def _loose(root: Path) -> list[str]:
    return [f"{p} {stat.filemode(p.stat().st_mode)}" for p in [root, *root.rglob("*")]
            if not p.is_symlink() and p.exists() and p.stat().st_mode & 0o077]


def test_var_dir_is_owner_only(stack: Stack) -> None:
    customer = stack.new_conversation()
    customer.say("how can I track my order?")
    var = stack.settings.var_dir
    assert (var / "tandem.db").exists() and (var / "rasa-tracker.db").exists() and (var / "index").is_dir()
    assert _loose(var) == []


def test_an_old_world_readable_var_dir_is_repaired(tmp_path: Path) -> None:
    var = tmp_path / "var"
    (var / "index").mkdir(parents=True)
    (var / "tandem.db").write_text("x")
    (var / "index" / "faq.faiss").write_text("x")
    for path, mode in ((var, 0o755), (var / "index", 0o755), (var / "tandem.db", 0o644), (var / "index" / "faq.faiss", 0o666)):
        path.chmod(mode)
    private_var_dir(stack_settings(var))
    assert _loose(var) == []
    settings = stack_settings(tmp_path / "fresh").replace(secret_key="")
    settings.secret()
    assert stat.S_IMODE((tmp_path / "fresh" / "secret.key").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "fresh").stat().st_mode) == 0o700


def test_demo_accounts_only_for_the_demo(tmp_path: Path) -> None:
    settings = stack_settings(tmp_path, demo_accounts=True)
    create_schema(settings)

    async def login(username: str) -> bool:
        engine = async_engine(settings)
        try:
            await Accounts(engine, 1).login(username, username)
            return True
        except AuthError:
            return False
        finally:
            await engine.dispose()

    asyncio.run(_demo_accounts(settings))
    assert asyncio.run(login("agent")) and asyncio.run(login("editor"))

    async def keep_agent2() -> None:  # an operator who kept agent2 with a password of their own
        engine = async_engine(settings)
        await Accounts(engine, 1).create("agent2", "a real password", "agent", "Sam Support")
        await engine.dispose()

    asyncio.run(keep_agent2())
    off = settings.replace(demo_accounts=False)
    asyncio.run(_demo_accounts(off))
    assert not asyncio.run(login("agent")) and not asyncio.run(login("editor"))  # locked

    async def agent2_still_works() -> bool:
        engine = async_engine(settings)
        try:
            return (await Accounts(engine, 1).login("agent2", "a real password"))[1].username == "agent2"
        finally:
            await engine.dispose()

    assert asyncio.run(agent2_still_works())
    # Published passwords never beyond this machine.
    with pytest.raises(UnsafeSettings, match="demo_accounts"):
        check_demo_exposure(settings.replace(host="0.0.0.0"))
    with pytest.raises(UnsafeSettings, match="public_url"):
        check_demo_exposure(settings.replace(public_url="https://support.example.com"))
    check_demo_exposure(settings.replace(public_url="http://127.0.0.1:8000"))
    check_demo_exposure(off.replace(host="0.0.0.0"))
    from core.settings import load_settings

    assert load_settings(env={}, var_dir=tmp_path).demo_accounts  # the shipped tandem.yml: the demo
    assert not load_settings(env={"TANDEM_CONFIG": str(tmp_path / "none.yml")}, var_dir=tmp_path).demo_accounts


def test_supervisor_gives_up_after_repeated_fast_failures(tmp_path: Path) -> None:
    """kill -9 of the web process, and its port taken meanwhile: each restart dies at once;
    the supervisor backs off, then gives up and says why, instead of looping forever."""
    settings = stack_settings(tmp_path, supervise_backoff_s=0.2, supervise_give_up_after=3, supervise_stable_s=600)
    prepare(settings, train=False)
    messages: list[str] = []
    supervisor = Supervisor(settings, notify=messages.append)
    supervisor.start(only=("web",))
    squatter = socket.socket()
    try:
        web = supervisor.service("web")
        assert web.process is not None
        os.kill(web.process.pid, signal.SIGKILL)
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        wait_until(lambda: _bind(squatter, settings.web_port), timeout=30)
        wait_until(lambda: "web" in supervisor.gave_up, timeout=180, interval=0.5)
        restarts = [m for m in messages if m.startswith("web died")]
        assert len(restarts) == 2 and "SIGKILL" in restarts[0] and "restarting in 0.2s" in restarts[0]
        assert "restarting in 0.4s" in restarts[1]  # the delay doubles
        assert "GAVE UP on web" in messages[-1] and "3 times in a row" in messages[-1] and "web.log" in messages[-1]
        assert "GAVE UP on web" in (tmp_path / "logs" / "supervisor.log").read_text()
        time.sleep(1)
        assert web.state == "failed" and web.process.poll() is not None  # no further attempts
    finally:
        squatter.close()
        supervisor.stop()


def _bind(sock: socket.socket, port: int) -> bool:
    try:
        sock.bind(("127.0.0.1", port))
        sock.listen()
        return True
    except OSError:
        return False
