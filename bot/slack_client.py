"""Posting to Slack from workers: slack_sdk's WebClient with retries and per-channel pacing.

Slack allows about one message per second per channel and answers ``429`` with ``Retry-After``
beyond that; slack_sdk retries only connection errors unless told, so the rate-limit and
server-error retry handlers are installed here. Pacing is done before the call so that an alert
storm does not even reach the limit.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.webhook import WebhookClient

from bot import metrics
from bot.worker import PermanentJobError

__all__ = ["SlackPoster", "SlackApiError", "NotAMemberError", "make_web_client", "slack_error"]

log = logging.getLogger("warroom.slack")


def slack_error(exc: SlackApiError) -> str | None:
    """Slack's error code of a failed call ("not_in_channel", ...)."""
    return exc.response.get("error") if exc.response is not None else None


def _counted(handler_cls: type, reason: str) -> type:
    """A retry handler that also counts its retries in ``warroom_slack_api_retries_total``."""

    class Counted(handler_cls):  # type: ignore[misc, valid-type]
        def prepare_for_next_attempt(self, **kwargs: Any) -> None:
            metrics.SLACK_RETRIES.labels(reason=reason).inc()
            super().prepare_for_next_attempt(**kwargs)

    return Counted


def make_web_client(token: str, base_url: str, timeout: int = 10) -> WebClient:
    """A WebClient that waits out ``429`` and retries ``5xx`` and dropped connections."""
    return WebClient(
        token=token,
        base_url=base_url,
        timeout=timeout,
        retry_handlers=[
            _counted(ConnectionErrorRetryHandler, "connection")(max_retry_count=3),
            _counted(RateLimitErrorRetryHandler, "rate_limited")(max_retry_count=5),
            _counted(ServerErrorRetryHandler, "server_error")(max_retry_count=3),
        ],
    )


class NotAMemberError(SlackApiError, PermanentJobError):
    """The bot is not in the channel and Slack refused to let it join (a private channel): retrying cannot help
    until someone invites it, so the job fails at once (and says why in `/warroom status`)."""


class _ChannelPacer:
    """At most one post per ``interval`` seconds per channel, across threads."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._next: dict[str, float] = {}
        self._lock = threading.Lock()

    def wait(self, channel: str) -> None:
        with self._lock:
            now = time.monotonic()
            at = max(now, self._next.get(channel, 0.0))
            self._next[channel] = at + self.interval
        if at > now:
            time.sleep(at - now)


class SlackPoster:
    """The bot's voice: every Web API call from workers goes through here."""

    def __init__(self, client: WebClient, per_channel_interval: float = 1.0) -> None:
        self.client = client
        self._pacer = _ChannelPacer(per_channel_interval)

    def _call(self, method: str, pace: str | None = None, **kwargs: Any) -> dict[str, Any]:
        if pace:
            self._pacer.wait(pace)
        start = time.perf_counter()
        try:
            resp = self.client.api_call(method, json=kwargs)
            return dict(resp.data)  # type: ignore[arg-type]
        finally:
            metrics.SLACK_CALLS.labels(method=method).inc()
            metrics.SLACK_LATENCY.observe(time.perf_counter() - start)

    def post(self, channel: str, text: str, blocks: list[dict[str, Any]] | None = None,
             thread_ts: str | None = None, join: bool = True) -> dict[str, Any]:
        """chat.postMessage; in a public channel the bot is not in, it joins first unless ``join`` is False."""
        kw: dict[str, Any] = {"channel": channel, "text": text, "unfurl_links": False}
        if blocks:
            kw["blocks"] = blocks
        if thread_ts:
            kw["thread_ts"] = thread_ts
        try:
            return self._call("chat.postMessage", channel, **kw)
        except SlackApiError as exc:
            if slack_error(exc) != "not_in_channel" or not join:
                raise
        # Nobody invited the bot (the incident channel, usually): join a public channel and post again.
        try:
            self._call("conversations.join", None, channel=channel)
        except SlackApiError as exc:
            why = (f"cannot post in {channel}: the bot is not a member and cannot join it ({slack_error(exc)}); "
                   "invite it with /invite @warroom")
            log.error("%s", why)
            status = getattr(exc.response, "status_code", 200)
            if status == 429 or status >= 500:  # Slack was out, not refusing: the queue tries again
                raise SlackApiError(why, exc.response) from exc
            raise NotAMemberError(why, exc.response) from exc
        log.warning("joined %s to post there (the bot had not been invited)", channel)
        return self._call("chat.postMessage", channel, **kw)

    def update(self, channel: str, ts: str, text: str, blocks: list[dict[str, Any]] | None = None
               ) -> dict[str, Any]:
        kw: dict[str, Any] = {"channel": channel, "ts": ts, "text": text}
        if blocks:
            kw["blocks"] = blocks
        # Updates do not count against the channel's posting rate; pace each message on its own.
        return self._call("chat.update", f"{channel}:{ts}", **kw)

    def ephemeral(self, channel: str, user: str, text: str,
                  blocks: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        kw: dict[str, Any] = {"channel": channel, "user": user, "text": text}
        if blocks:
            kw["blocks"] = blocks
        # Not paced with the channel's posts: the one-a-second limit is chat.postMessage's, and an answer only the
        # asker sees should not wait behind a busy incident channel's updates (a 429 is retried as any other).
        return self._call("chat.postEphemeral", None, **kw)

    def upload(self, channel: str, filename: str, content: bytes, title: str = "",
               thread_ts: str | None = None) -> dict[str, Any]:
        """files.upload v2 flow (getUploadURLExternal, upload, completeUploadExternal)."""
        start = time.perf_counter()
        try:
            kw: dict[str, Any] = {"channel": channel, "filename": filename, "content": content,
                                  "title": title or filename}
            if thread_ts:
                kw["thread_ts"] = thread_ts
            resp = self.client.files_upload_v2(**kw)
            return dict(resp.data)  # type: ignore[arg-type]
        finally:
            metrics.SLACK_CALLS.labels(method="files.upload_v2").inc()
            metrics.SLACK_LATENCY.observe(time.perf_counter() - start)

    def respond(self, response_url: str, text: str, blocks: list[dict[str, Any]] | None = None,
                ephemeral: bool = False) -> None:
        """Answer through a slash command's or shortcut's ``response_url`` (valid 30 minutes, 5 times):
        it reaches conversations the bot is not a member of."""
        start = time.perf_counter()
        try:
            resp = WebhookClient(response_url, timeout=10).send(
                text=text, blocks=blocks, response_type="ephemeral" if ephemeral else "in_channel")
        finally:
            metrics.SLACK_CALLS.labels(method="response_url").inc()
            metrics.SLACK_LATENCY.observe(time.perf_counter() - start)
        if resp.status_code >= 500:  # Slack's side: worth retrying
            raise OSError(f"response_url answered {resp.status_code}: {str(resp.body)[:200]}")
        if resp.status_code != 200:  # expired (after 30 minutes or 5 uses) or refused: retrying will not help
            raise RuntimeError(f"response_url answered {resp.status_code}: {str(resp.body)[:200]}")

    def permalink(self, channel: str, ts: str) -> str | None:
        try:
            return str(self._call("chat.getPermalink", None, channel=channel, message_ts=ts)["permalink"])
        except (SlackApiError, KeyError):
            return None

    def create_channel(self, name: str) -> str:
        return str(self._call("conversations.create", None, name=name)["channel"]["id"])

    def invite(self, channel: str, users: list[str]) -> None:
        if users:
            self._call("conversations.invite", None, channel=channel, users=",".join(users))

    def react(self, channel: str, ts: str, name: str) -> None:
        self._call("reactions.add", None, channel=channel, timestamp=ts, name=name)

    def open_view(self, trigger_id: str, view: dict[str, Any]) -> dict[str, Any]:
        return self._call("views.open", None, trigger_id=trigger_id, view=view)

    def set_topic(self, channel: str, topic: str) -> None:
        """A channel's topic (``conversations.setTopic``; at most 250 characters)."""
        self._call("conversations.setTopic", None, channel=channel, topic=topic[:250])

    def publish_home(self, user: str, view: dict[str, Any]) -> dict[str, Any]:
        """Set ``user``'s Home tab of the app (``views.publish``)."""
        return self._call("views.publish", None, user_id=user, view=view)

    def file_content(self, file_id: str) -> bytes:
        """Download a file someone uploaded (files.info, then its private URL with the bot token)."""
        info = self._call("files.info", None, file=file_id)["file"]
        url = info.get("url_private_download") or info.get("url_private")
        import urllib.request

        req = urllib.request.Request(url, headers={"Authorization": f"Bearer {self.client.token}"})
        with urllib.request.urlopen(req, timeout=30) as r:  # noqa: S310 - URL comes from Slack's API
            return bytes(r.read(50 * 1024 * 1024 + 1))
