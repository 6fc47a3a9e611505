"""Reading websocket frames with Sanic 21.12 on Python 3.11.

Sanic 21.12's own `ws.recv()` hands a bare coroutine to asyncio.wait, which Python 3.11
refuses (TypeError). `receive` is the same logic with a task. The one pending read survives
quiet periods (cancelling it would break Sanic's frame assembler); `on_idle` runs after every
`idle_s` quiet seconds (e.g. to re-check a session) and returns False to stop reading.
"""
from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable

from websockets.connection import OPEN


async def _keep_going() -> bool:
    return True


async def receive(ws: Any, idle_s: float = 15.0, on_idle: Callable[[], Awaitable[bool]] = _keep_going) -> Any:
    """The next client frame, or None once the connection is closed (or `on_idle` says stop)."""
    loop = asyncio.get_running_loop()
    async with ws.recv_lock:
        if ws.connection.state is not OPEN:
            return None
        getter = asyncio.ensure_future(ws.assembler.get())
        try:
            while True:
                cancel = loop.create_future()
                ws.recv_cancel = cancel
                done, _ = await asyncio.wait((cancel, getter), timeout=idle_s, return_when=asyncio.FIRST_COMPLETED)
                ws.recv_cancel = None
                if getter in done:
                    return getter.result()
                if cancel in done or ws.connection.state is not OPEN or not await on_idle():
                    return None
        finally:
            ws.recv_cancel = None
            if not getter.done():
                getter.cancel()
