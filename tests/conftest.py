"""Shared fixtures: a real Tandem stack (trained Rasa model, action server, web process).

The stack runs on free ports with its own var/ folder, so tests never touch a developer's
data. The model is trained into models/ the first time (Rasa skips retraining when nothing
changed), which is the same model `./tandem up` serves.
"""
from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from server.cli import prepare
from server.processes import Supervisor
from core.settings import Settings, load_settings

CHROMIUM = Path("/usr/bin/chromium")  # Debian's; Playwright never downloads a browser here
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Stack:
    """A running Tandem with helpers that speak its public HTTP APIs, like a real client."""

    settings: Settings
    supervisor: Supervisor
    http: httpx.Client

    def new_conversation(self) -> "Customer":
        response = self.http.post("/api/conversations")
        assert response.status_code == 201, response.text
        body = response.json()
        return Customer(self, body["conversation_id"], body["token"])

    def login(self, username: str, password: str | None = None) -> "Agent":
        response = self.http.post("/api/agent/login", json={"username": username, "password": password or username})
        assert response.status_code == 200, response.text
        return Agent(self, response.json()["token"])


@dataclass
class Customer:
    stack: Stack
    conversation_id: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def say(self, text: str, payload: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"text": text}
        if payload:
            body["payload"] = payload
        response = self.stack.http.post(f"/api/conversations/{self.conversation_id}/messages", json=body, headers=self.headers)
        assert response.status_code == 200, response.text
        return response.json()

    def messages(self, after: int = 0) -> list[dict[str, Any]]:
        response = self.stack.http.get(f"/api/conversations/{self.conversation_id}/messages", params={"after": after}, headers=self.headers)
        assert response.status_code == 200, response.text
        return response.json()["messages"]


@dataclass
class Agent:
    stack: Stack
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def get(self, path: str, **params: Any) -> httpx.Response:
        return self.stack.http.get(f"/api/agent{path}", headers=self.headers, params=params)

    def post(self, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        return self.stack.http.post(f"/api/agent{path}", headers=self.headers, json=body or {})

    def case_for(self, conversation_id: str, status: str = "waiting") -> dict[str, Any]:
        cases = self.get("/cases", status=status).json()["cases"]
        found = [c for c in cases if c["conversation_id"] == conversation_id]
        assert found, f"no {status} case for {conversation_id}: {cases}"
        return found[0]


@contextmanager
def two_web_processes(settings: Settings) -> Iterator[tuple[Stack, Stack]]:
    """The whole stack once, plus a second web process on its own port sharing everything else
    (scale-out tests: PostgreSQL + Redis)."""
    model = prepare(settings)
    first = Supervisor(settings, model=model)
    first.start()
    second_settings = settings.replace(web_port=free_port())
    second = Supervisor(second_settings, model=model)
    try:
        second.start(only=("web",))
        yield (Stack(settings, first, httpx.Client(base_url=settings.web_url, timeout=60)),
               Stack(second_settings, second, httpx.Client(base_url=second_settings.web_url, timeout=60)))
    finally:
        second.stop()
        first.stop()


def stack_settings(tmp: Path, **overrides: Any) -> Settings:
    ports = {"web_port": free_port(), "rasa_port": free_port(), "action_port": free_port()}
    # The knowledge base's own encoder (knowledge/adaptation.py) is off unless a test asks for it: a
    # training child starting mid-suite would swap every stack's encoder under the other tests.
    return load_settings(**{"var_dir": tmp, **ports, "secret_key": "test-secret", "faq_adaptation": False, **overrides})


@contextmanager
def running_stack(settings: Settings) -> Iterator[Stack]:
    """The whole stack on these settings (the model trained if needed), stopped afterwards."""
    supervisor = Supervisor(settings, model=prepare(settings))
    supervisor.start()
    client = httpx.Client(base_url=settings.web_url, timeout=60)
    try:
        yield Stack(settings, supervisor, client)
    finally:
        client.close()
        supervisor.stop()


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(stack_settings(tmp_path_factory.mktemp("tandem-var"))) as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Real headless Chromium, one per test module (contexts keep tests apart)."""
    if not CHROMIUM.exists():
        pytest.fail("Chromium is not installed at /usr/bin/chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


def redis_url() -> str:
    """The local Redis; TANDEM_TEST_REDIS_DB picks a database so concurrent test runs keep apart."""
    return f"redis://127.0.0.1:6379/{os.environ.get('TANDEM_TEST_REDIS_DB', '0')}"


def wait_until(predicate: Any, timeout: float = 10.0, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(interval)


def postgres_url(database: str) -> str:
    """A fresh PostgreSQL database on the local server (trust auth); recreated per call.

    TANDEM_TEST_DB_SUFFIX keeps two test runs on one server (two checkouts) out of each other's databases.
    """
    from benchmarks.common import fresh_database

    return fresh_database(database + os.environ.get("TANDEM_TEST_DB_SUFFIX", ""))


@pytest.fixture(scope="session")
def hostile(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, Any]]:
    """A web process of its own (own database and var/), sharing the stack's Rasa and action
    server, for the fuzz suite and the authorization table: their writes never reach other tests."""
    from tests.hostile import credentials, prepare_accounts

    settings = stack_settings(tmp_path_factory.mktemp("tandem-hostile")).replace(
        rasa_port=stack.settings.rasa_port, action_port=stack.settings.action_port)
    prepare(settings, train=False)
    passwords = prepare_accounts(settings)
    supervisor = Supervisor(settings)
    supervisor.start(only=("web",))
    client = httpx.Client(base_url=settings.web_url, timeout=60)
    try:
        hostile_stack = Stack(settings, supervisor, client)
        yield hostile_stack, credentials(client, passwords)
    finally:
        client.close()
        supervisor.stop()
