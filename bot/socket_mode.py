"""Socket Mode: Slack's events, slash commands and interactivity over a WebSocket the bot opens, for installs with no
public URL (``warroom serve --socket-mode``, or ``WARROOM_SLACK_SOCKET_MODE=true``).

Only the Slack door changes: the same Bolt app and listeners handle each envelope (Bolt's aiohttp Socket Mode
adapter acknowledges it on the socket when the listener has committed the work, and leaves it unacknowledged when
the work could not be accepted, so Slack sends it again). The webhooks, the REST API, ``/healthz``, ``/readyz``
and ``/metrics`` go on being served over HTTP by the same process, so Alertmanager and PagerDuty inside the network
still reach the bot.

The socket is opened after the server has started, in the background: Slack being unreachable at start (an
air-gapped proxy down, a bad app token) does not keep the bot from accepting alerts. The link tries again with a
growing pause (at most ``_MAX_PAUSE_S``) and says why in the log and in ``/readyz`` (``slack_socket``). Once
connected, slack_sdk's client reconnects by itself (Slack's ``disconnect`` messages, a dead connection), but when
the new connection fails it retries the same WebSocket URL forever, and Slack's URLs do not outlive a long network
cut. So the link watches the connection: down for ``stale_after_s`` (``WARROOM_SLACK_SOCKET_STALE_S``), it asks
Slack for a new URL (``apps.connections.open``) and hands it to the client's retry loop, again every
``stale_after_s`` while the link stays down. ``/readyz`` says since when the link has been down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError

__all__ = ["SocketModeLink"]

log = logging.getLogger("warroom.socket_mode")

_MAX_PAUSE_S = 60.0


class SocketModeLink:
    """The bot's WebSocket to Slack: :meth:`start` in the server's event loop, :meth:`stop` on shutdown."""

    def __init__(self, bolt: AsyncApp, app_token: str, *, first_pause_s: float = 1.0,
                 stale_after_s: float = 30.0) -> None:
        if not app_token.startswith("xapp-"):
            raise ValueError("Socket Mode needs an app-level token (xapp-...), not a bot token")
        self.bolt, self._token = bolt, app_token
        self.handler: AsyncSocketModeHandler | None = None  # made in the server's loop (its aiohttp session needs it)
        self.first_pause_s = first_pause_s
        self.error: str | None = None
        self.attempts = 0
        self._task: asyncio.Task[None] | None = None
        self._down_since: float | None = None  # wall clock: the link was seen down after it had been up
        self.stale_after_s = stale_after_s
        self.new_urls = 0  # URLs asked for by the watch (not by slack_sdk)
        self.up_once = False

    def start(self) -> None:
        self.handler = AsyncSocketModeHandler(self.bolt, self._token)
        self._task = asyncio.get_running_loop().create_task(self._connect(self.handler), name="slack-socket-mode")

    async def _connect(self, handler: AsyncSocketModeHandler) -> None:
        pause = self.first_pause_s
        while True:
            self.attempts += 1
            try:
                # Ask for a URL first: slack_sdk's connect retries a refusal forever and only logs it, so a wrong
                # token or an unreachable Slack would never be said where people look (/readyz).
                await self.bolt.client.apps_connections_open(app_token=self._token)
                await handler.connect_async()
            except SlackApiError as exc:
                said = exc.response.get("error") or exc.response.status_code
                self.error = f"Slack refused apps.connections.open: {said}"
            except Exception as exc:  # noqa: BLE001 - Slack unreachable: say why, try again
                self.error = f"{type(exc).__name__}: {exc}"[:300]
            else:
                self.error, self.up_once = None, True
                log.info("Socket Mode: connected to Slack")
                await self._watch(handler)
                return
            log.warning("Socket Mode: could not connect to Slack (attempt %d): %s; again in %.0f s",
                        self.attempts, self.error, pause)
            await asyncio.sleep(pause)
            pause = min(_MAX_PAUSE_S, pause * 2)

    async def _watch(self, handler: AsyncSocketModeHandler) -> None:
        """While the bot runs: when the link has been down ``stale_after_s``, give slack_sdk a new URL."""
        client = handler.client
        asked_at: float | None = None
        while True:
            await asyncio.sleep(min(5.0, self.stale_after_s / 2))
            if client.closed:
                return
            try:
                if await self._up():
                    asked_at = None
                    continue
                now = time.time()
                down_since = self._seen_down(now)
                if now - max(down_since, asked_at or 0.0) < self.stale_after_s:
                    continue
                asked_at = now
                url = await client.issue_new_wss_url()
            except Exception as exc:  # noqa: BLE001 - Slack still unreachable: say why, watch on, try again later
                self.error = f"the connection to Slack dropped and a new URL could not be had: {exc}"[:300]
                log.warning("Socket Mode: %s", self.error)
                continue
            client.wss_uri = url  # the client's connect loop takes it on its next try
            self.new_urls += 1
            log.warning("Socket Mode: down for %.0f s; asked Slack for a new connection URL", now - down_since)

    async def _connected(self) -> bool:
        client = self.handler.client if self.handler is not None else None
        return client is not None and client.current_session is not None and await client.is_connected()

    async def _up(self) -> bool:
        """Connected now? (Clears the down time and its reason when it is.)"""
        if not await self._connected():
            return False
        if self._down_since is not None:
            log.info("Socket Mode: connected to Slack again after %.0f s", time.time() - self._down_since)
            self._down_since, self.error = None, None
        return True

    def _seen_down(self, now: float) -> float:
        if self._down_since is None:
            self._down_since = now
            log.warning("Socket Mode: the connection to Slack is down; reconnecting")
        return self._down_since

    async def state(self) -> dict[str, Any]:
        """For ``/readyz``: connected or not, and why not: the last reason it could not connect, or, once it had
        connected, since when slack_sdk has been reconnecting."""
        connected = await self._up()
        error = self.error
        if not connected and self.up_once:
            now = time.time()
            error = error or f"the connection to Slack dropped {now - self._seen_down(now):.0f} s ago; reconnecting"
        return {"connected": connected, "attempts": self.attempts, "error": error, "new_urls": self.new_urls,
                "down_since": None if self._down_since is None else
                time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self._down_since))}

    async def stop(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.handler is not None:
            with contextlib.suppress(Exception):
                await self.handler.close_async()
