"""Publish/subscribe between the parts of the web process, and between web processes.

A customer's websocket may be held by one instance while the agent who answers sits on
another; with REDIS_URL set, messages travel through Redis pub/sub, otherwise in-process.
Subscribers get an asyncio.Queue; slow subscribers lose nothing that is stored (everything
published is also in the database, so a reconnecting client catches up from its cursor).
"""
from __future__ import annotations

import asyncio
import json
import logging
from collections import defaultdict
from typing import Any

log = logging.getLogger(__name__)


class Bus:
    """In-process bus; RedisBus extends it to many processes."""

    def __init__(self) -> None:
        self._subscribers: dict[str, set[asyncio.Queue[dict[str, Any]]]] = defaultdict(set)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    def subscribe(self, topic: str) -> asyncio.Queue[dict[str, Any]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=1000)
        self._subscribers[topic].add(queue)
        return queue

    def unsubscribe(self, topic: str, queue: asyncio.Queue[dict[str, Any]]) -> None:
        self._subscribers[topic].discard(queue)
        if not self._subscribers[topic]:
            self._subscribers.pop(topic, None)

    def _deliver(self, topic: str, message: dict[str, Any]) -> None:
        for queue in list(self._subscribers.get(topic, ())):
            try:
                queue.put_nowait(message)
            except asyncio.QueueFull:
                log.warning("subscriber of %s is not reading; dropping a live update (stored anyway)", topic)

    async def publish(self, topic: str, message: dict[str, Any]) -> None:
        self._deliver(topic, message)


class RedisBus(Bus):
    """Fans Redis pub/sub messages out to local subscribers (one Redis connection per process)."""

    def __init__(self, url: str) -> None:
        super().__init__()
        import redis.asyncio as redis

        self._redis = redis.from_url(url)
        self._pubsub = self._redis.pubsub()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._pubsub.psubscribe("tandem:*")
        self._task = asyncio.create_task(self._pump())

    async def _pump(self) -> None:
        while True:
            try:
                item = await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - keep pumping through a Redis hiccup
                log.exception("redis pub/sub read failed; retrying")
                await asyncio.sleep(0.5)
                continue
            if item and item.get("type") == "pmessage":
                topic = item["channel"].decode()[len("tandem:"):]
                self._deliver(topic, json.loads(item["data"]))

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        await self._pubsub.close()
        await self._redis.close()

    async def publish(self, topic: str, message: dict[str, Any]) -> None:
        await self._redis.publish(f"tandem:{topic}", json.dumps(message, default=str))


def make_bus(redis_url: str) -> Bus:
    return RedisBus(redis_url) if redis_url else Bus()
