"""Talks to the Rasa servers' HTTP API: the REST webhook, tracker events, external intents.

With several Rasa servers (settings.rasa_instances, scale-out) each conversation has a home
instance chosen by a stable hash of its id, so its messages reach the same server in order;
Rasa's tracker store (SQL) and lock store (Redis) are shared, so when the home instance refuses
the connection (down, restarting) the call goes to the next one. Only a refused connection moves
a call: a timeout or an error may mean Rasa already handled the message, so that is reported.
"""
from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import Any

import httpx


class RasaUnavailable(Exception):
    """Rasa (or its action server, which Rasa reports as a failed action) did not answer."""


class RasaClient:
    """Every call carries Tandem's Rasa token (Rasa's API takes it only as `?token=`)."""

    def __init__(self, base_urls: str | Sequence[str], timeout: float, token: str,
                 action_health_urls: str | Sequence[str] | None = None) -> None:
        self._bases = [u.rstrip("/") for u in ([base_urls] if isinstance(base_urls, str) else base_urls)]
        if not self._bases:
            raise ValueError("RasaClient needs at least one Rasa URL")
        health = [action_health_urls] if isinstance(action_health_urls, str) else list(action_health_urls or [])
        self._action_health = health  # one per Rasa instance: the action server that Rasa calls
        self._auth = {"token": token}  # sent to Rasa only, never to the action server
        self._http = httpx.AsyncClient(timeout=httpx.Timeout(timeout, connect=3.0))

    async def close(self) -> None:
        await self._http.aclose()

    def home(self, conversation_id: str) -> int:
        """The conversation's Rasa instance: the same for every web process and every call."""
        return zlib.crc32(conversation_id.encode()) % len(self._bases)

    def _order(self, conversation_id: str) -> list[int]:
        first = self.home(conversation_id)
        return [(first + i) % len(self._bases) for i in range(len(self._bases))]

    async def _request(self, method: str, conversation_id: str, path: str, payload: Any = None,
                       params: dict[str, str] | None = None) -> tuple[int, httpx.Response]:
        refused: httpx.HTTPError | None = None
        for instance in self._order(conversation_id):
            try:
                response = await self._http.request(method, self._bases[instance] + path, json=payload,
                                                    params={**self._auth, **(params or {})})
                return instance, response
            except httpx.ConnectError as exc:  # nothing reached that server: the next one may take it
                refused = exc
            except httpx.HTTPError as exc:
                raise RasaUnavailable(f"Rasa server unreachable: {exc.__class__.__name__}") from exc
        raise RasaUnavailable(f"Rasa server unreachable: {refused.__class__.__name__}") from refused

    async def _post(self, conversation_id: str, path: str, payload: Any, params: dict[str, str] | None = None) -> tuple[int, Any]:
        instance, response = await self._request("POST", conversation_id, path, payload, params)
        if response.status_code >= 500:
            raise RasaUnavailable(f"Rasa server error {response.status_code}: {response.text[:200]}")
        if response.status_code in (401, 403):  # a Rasa started with another secret's token
            raise RasaUnavailable(f"Rasa refused Tandem's token ({response.status_code}); restart Rasa with this secret")
        response.raise_for_status()
        return instance, response.json()

    async def send(self, sender: str, text: str, metadata: dict[str, Any]) -> list[dict[str, Any]]:
        """One customer message through Rasa's REST channel; returns Rasa's output messages."""
        instance, result = await self._post(sender, "/webhooks/rest/webhook", {"sender": sender, "message": text, "metadata": metadata})
        outputs = result if isinstance(result, list) else []
        if not outputs:
            # Rasa answers 200 with nothing when its custom actions could not be reached. The action
            # server may be back by now (a restart takes ~2 s), but this message still got no answer:
            # the customer is never left with silence.
            state = "is unreachable" if not await self._actions_up(instance) else "was unreachable or failed"
            raise RasaUnavailable(f"the action server {state} (Rasa returned no reply)")
        return outputs

    async def _actions_up(self, instance: int) -> bool:
        if instance >= len(self._action_health):
            return True
        try:
            return (await self._http.get(self._action_health[instance], timeout=2.0)).status_code == 200
        except httpx.HTTPError:
            return False

    async def append_events(self, conversation_id: str, events: list[dict[str, Any]]) -> None:
        await self._post(conversation_id, f"/conversations/{conversation_id}/tracker/events", events, params={"include_events": "NONE"})

    async def trigger_intent(self, conversation_id: str, intent: str, entities: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        _, result = await self._post(
            conversation_id, f"/conversations/{conversation_id}/trigger_intent",
            {"name": intent, "entities": entities or {}},
            params={"include_events": "NONE"},
        )
        return list(result.get("messages") or [])

    async def tracker(self, conversation_id: str) -> dict[str, Any]:
        _, response = await self._request("GET", conversation_id, f"/conversations/{conversation_id}/tracker")
        response.raise_for_status()
        return response.json()

    async def ready(self) -> bool:
        """True when at least one Rasa instance answers (each conversation can fail over to it)."""
        for base in self._bases:
            try:
                if (await self._http.get(f"{base}/status", params=self._auth, timeout=2.0)).status_code == 200:
                    return True
            except httpx.HTTPError:
                continue
        return False
