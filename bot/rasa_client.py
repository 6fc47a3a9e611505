"""Talks to the Rasa server's HTTP API: the REST webhook, tracker events, external intents."""
from __future__ import annotations

from typing import Any

import httpx


class RasaUnavailable(Exception):
    """Rasa (or its action server, which Rasa reports as a failed action) did not answer."""


class RasaClient:
    """Every call carries Tandem's Rasa token (Rasa's API takes it only as `?token=`)."""

    def __init__(self, base_url: str, timeout: float, token: str) -> None:
        self._base = base_url.rstrip("/")
        self._token = {"token": token}
        self._http = httpx.AsyncClient(timeout=httpx.Timeout(timeout, connect=3.0), params=self._token)

    async def close(self) -> None:
        await self._http.aclose()

    async def _post(self, path: str, payload: Any, params: dict[str, str] | None = None) -> Any:
        try:
            response = await self._http.post(self._base + path, json=payload, params=params)
        except httpx.HTTPError as exc:
            raise RasaUnavailable(f"Rasa server unreachable: {exc.__class__.__name__}") from exc
        if response.status_code >= 500:
            raise RasaUnavailable(f"Rasa server error {response.status_code}: {response.text[:200]}")
        response.raise_for_status()
        return response.json()

    async def send(self, sender: str, text: str, metadata: dict[str, Any]) -> list[dict[str, Any]]:
        """One customer message through Rasa's REST channel; returns Rasa's output messages."""
        result = await self._post("/webhooks/rest/webhook", {"sender": sender, "message": text, "metadata": metadata})
        return result if isinstance(result, list) else []

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
            response = await self._http.get(f"{self._base}/conversations/{conversation_id}/tracker")
        except httpx.HTTPError as exc:
            raise RasaUnavailable(str(exc)) from exc
        response.raise_for_status()
        return response.json()

    async def ready(self) -> bool:
        try:
            response = await self._http.get(f"{self._base}/status", timeout=2.0)
        except httpx.HTTPError:
            return False
        return response.status_code == 200
