"""Talks to the Rasa server's HTTP API: the REST webhook, tracker events, external intents."""
from __future__ import annotations

from typing import Any

import httpx


class RasaUnavailable(Exception):
    """Rasa (or its action server, which Rasa reports as a failed action) did not answer."""


class RasaClient:
    """Every call carries Tandem's Rasa token (Rasa's API takes it only as `?token=`)."""

    def __init__(self, base_url: str, timeout: float, token: str, action_health_url: str | None = None) -> None:
        self._base = base_url.rstrip("/")
        self._auth = {"token": token}  # sent to Rasa only, never to the action server
        self._http = httpx.AsyncClient(timeout=httpx.Timeout(timeout, connect=3.0))
        self._action_health = action_health_url

    async def close(self) -> None:
        await self._http.aclose()

    async def _post(self, path: str, payload: Any, params: dict[str, str] | None = None) -> Any:
        try:
            response = await self._http.post(self._base + path, json=payload, params={**self._auth, **(params or {})})
        except httpx.HTTPError as exc:
            raise RasaUnavailable(f"Rasa server unreachable: {exc.__class__.__name__}") from exc
        if response.status_code >= 500:
            raise RasaUnavailable(f"Rasa server error {response.status_code}: {response.text[:200]}")
        if response.status_code in (401, 403):  # a Rasa started with another secret's token
            raise RasaUnavailable(f"Rasa refused Tandem's token ({response.status_code}); restart Rasa with this secret")
        response.raise_for_status()
        return response.json()

    async def send(self, sender: str, text: str, metadata: dict[str, Any]) -> list[dict[str, Any]]:
        """One customer message through Rasa's REST channel; returns Rasa's output messages."""
        result = await self._post("/webhooks/rest/webhook", {"sender": sender, "message": text, "metadata": metadata})
        outputs = result if isinstance(result, list) else []
        if not outputs:
            # Rasa answers 200 with nothing when its custom actions could not be reached. The action
            # server may be back by now (a restart takes ~2 s), but this message still got no answer:
            # the customer is never left with silence.
            state = "is unreachable" if not await self._actions_up() else "was unreachable or failed"
            raise RasaUnavailable(f"the action server {state} (Rasa returned no reply)")
        return outputs

    async def _actions_up(self) -> bool:
        if self._action_health is None:
            return True
        try:
            return (await self._http.get(self._action_health, timeout=2.0)).status_code == 200
        except httpx.HTTPError:
            return False

    async def append_events(self, conversation_id: str, events: list[dict[str, Any]]) -> None:
        await self._post(f"/conversations/{conversation_id}/tracker/events", events, params={"include_events": "NONE"})

    async def trigger_intent(self, conversation_id: str, intent: str, entities: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        result = await self._post(
            f"/conversations/{conversation_id}/trigger_intent",
            {"name": intent, "entities": entities or {}},
            params={"include_events": "NONE"},
        )
        return list(result.get("messages") or [])

    async def tracker(self, conversation_id: str) -> dict[str, Any]:
        try:
            response = await self._http.get(f"{self._base}/conversations/{conversation_id}/tracker", params=self._auth)
        except httpx.HTTPError as exc:
            raise RasaUnavailable(str(exc)) from exc
        response.raise_for_status()
        return response.json()

    async def ready(self) -> bool:
        try:
            response = await self._http.get(f"{self._base}/status", params=self._auth, timeout=2.0)
        except httpx.HTTPError:
            return False
        return response.status_code == 200
