"""Slack's side of Socket Mode, for the stand-in.

The stand-in's ``apps.connections.open`` (called with an app-level token) hands out this server's WebSocket URL.
On each connection it says ``hello``, as Slack does; :meth:`SocketModeStandIn.send` then delivers an envelope
(``events_api``, ``slash_commands``, ``interactive``) to the app, and every message the app sends back is recorded:
an acknowledgement names the envelope it acknowledges. :meth:`SocketModeStandIn.disconnect` asks the app to
reconnect (Slack's ``disconnect`` message), :meth:`SocketModeStandIn.send_raw` sends any text frame.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from typing import Any

from aiohttp import WSMsgType, web

__all__ = ["SocketModeStandIn"]


class SocketModeStandIn:
    """A WebSocket server on loopback, in its own thread and event loop."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = 0
        self.connections = 0  # how many times an app connected
        self.received: list[dict[str, Any]] = []  # every JSON message the app sent
        self.acks: dict[str, dict[str, Any]] = {}  # envelope id -> the app's acknowledgement
        self._sockets: list[web.WebSocketResponse] = []
        self._ids = itertools.count(1)
        self._cond = threading.Condition()
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, name="slack-socket-standin", daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}/link"

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_get("/link", self._link)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def _link(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=None)
        await ws.prepare(request)
        await ws.send_json({"type": "hello", "num_connections": 1, "debug_info": {"host": "standin"},
                            "connection_info": {"app_id": "A0WARROOM"}})
        with self._cond:
            self._sockets.append(ws)
            self.connections += 1
            self._cond.notify_all()
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                try:
                    data = json.loads(msg.data)
                except ValueError:
                    data = {"unparsed": msg.data}
                with self._cond:
                    self.received.append(data)
                    if isinstance(data, dict) and data.get("envelope_id"):
                        self.acks[str(data["envelope_id"])] = data
                    self._cond.notify_all()
        finally:
            with self._cond:
                if ws in self._sockets:
                    self._sockets.remove(ws)
                self._cond.notify_all()
        return ws

    def _current(self) -> web.WebSocketResponse:
        with self._cond:
            if not self._sockets:
                raise RuntimeError("no app is connected")
            return self._sockets[-1]

    def send_raw(self, text: str) -> None:
        """One text frame to the newest connection, as it is."""
        ws = self._current()
        asyncio.run_coroutine_threadsafe(ws.send_str(text), self._loop).result(5)

    def send(self, kind: str, payload: dict[str, Any], *, envelope_id: str | None = None, retry_attempt: int = 0,
             accepts_response_payload: bool = False) -> str:
        """Deliver an envelope (``kind``: events_api, slash_commands, interactive); return its id."""
        envelope_id = envelope_id or f"env-{next(self._ids):06d}-{int(time.time() * 1000)}"
        self.send_raw(json.dumps({"envelope_id": envelope_id, "type": kind, "payload": payload,
                                  "accepts_response_payload": accepts_response_payload,
                                  "retry_attempt": retry_attempt, "retry_reason": "timeout" if retry_attempt else ""}))
        return envelope_id

    def disconnect(self, reason: str = "refresh_requested") -> None:
        """Slack's notice that this connection will go: the app is to open a new one."""
        self.send_raw(json.dumps({"type": "disconnect", "reason": reason,
                                  "debug_info": {"host": "standin"}}))

    def wait_connected(self, n: int = 1, timeout: float = 15.0) -> bool:
        """Wait until the app has connected ``n`` times in all and holds an open connection."""
        with self._cond:
            return self._cond.wait_for(lambda: self.connections >= n and bool(self._sockets), timeout)

    def wait_ack(self, envelope_id: str, timeout: float = 10.0) -> dict[str, Any] | None:
        with self._cond:
            self._cond.wait_for(lambda: envelope_id in self.acks, timeout)
            return self.acks.get(envelope_id)

    def stop(self) -> None:
        async def _close() -> None:
            for ws in list(self._sockets):
                await ws.close()
            if self._runner is not None:
                await self._runner.cleanup()

        try:
            asyncio.run_coroutine_threadsafe(_close(), self._loop).result(10)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
