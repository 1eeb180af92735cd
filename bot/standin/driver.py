"""Sends correctly signed Slack requests (events, slash commands, buttons, shortcuts) to the app.

Signs exactly as Slack does (``v0:{timestamp}:{body}`` HMAC-SHA256 with the signing secret), so the
app's real signature verification runs on every request.
"""

from __future__ import annotations

import itertools
import json
import re
import time
import urllib.parse
from typing import Any

import httpx
from slack_sdk.signature import SignatureVerifier

__all__ = ["SlackDriver"]


# Slack's own sequences in message text: mentions, channels, special mentions, dates, links.
_SLACK_SEQUENCE = re.compile(r"(<(?:[@#!][^<>\s|]+|(?:https?|mailto):[^<>\s|]+)(?:\|[^<>]*)?>)")


class SlackDriver:
    """Plays Slack's side of the HTTP conversation with the app at ``app_url``."""

    def __init__(self, app_url: str, signing_secret: str, team_id: str = "T0WARROOM",
                 client: httpx.Client | None = None, standin_url: str | None = None) -> None:
        """``standin_url``: the Slack stand-in, which then receives what the app sends to a command's
        ``response_url`` (without it the URL points nowhere, as an expired one does)."""
        self.url = app_url.rstrip("/") + "/slack/events"
        self.standin_url = standin_url.rstrip("/") if standin_url else None
        self.verifier = SignatureVerifier(signing_secret)
        self.team_id = team_id
        # Idle connections are dropped after 2 s, before uvicorn's 5 s keep-alive timeout closes them: with equal
        # timeouts a request sent at that moment met "connection reset by peer" (a CI run after a slow step).
        # verify=False: plain http to the app on loopback; a verifying client loads the CA bundle (0.1 s) per test
        self.http = client or httpx.Client(timeout=10, limits=httpx.Limits(keepalive_expiry=2.0), verify=False)  # noqa: S501
        self._seq = itertools.count(1)

    def _response_url(self, channel: str) -> str:
        if self.standin_url:
            return f"{self.standin_url}/_response/{channel}/{self._uid('r')}"
        return "http://127.0.0.1:9/commands/response"

    def _uid(self, prefix: str) -> str:
        return f"{prefix}{int(time.time() * 1000)}{next(self._seq):05d}"

    def signed_headers(self, body: str, timestamp: int | None = None, content_type: str = "application/json"
                       ) -> dict[str, str]:
        ts = str(int(time.time()) if timestamp is None else timestamp)
        return {"X-Slack-Request-Timestamp": ts,
                "X-Slack-Signature": self.verifier.generate_signature(timestamp=ts, body=body),
                "Content-Type": content_type}

    def post(self, body: str, content_type: str, *, timestamp: int | None = None,
             headers: dict[str, str] | None = None, sign: bool = True) -> httpx.Response:
        h = self.signed_headers(body, timestamp, content_type) if sign else {"Content-Type": content_type}
        h.update(headers or {})
        return self.http.post(self.url, content=body.encode(), headers=h)

    # --- slash commands ---------------------------------------------------------------------------
    @staticmethod
    def encoded(text: str) -> str:
        """``text`` as Slack sends what someone typed: ``&``, ``<`` and ``>`` as ``&amp;``, ``&lt;``, ``&gt;``;
        its own sequences (``<@U1>``, ``<#C1|name>``, ``<!here>``, ``<https://...|label>``) left as they are."""
        out = []
        for part in _SLACK_SEQUENCE.split(text):
            out.append(part.replace("&", "&amp;") if _SLACK_SEQUENCE.fullmatch(part) else  # a link's & too
                       part.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"))
        return "".join(out)

    def command_form(self, command: str, text: str = "", user: str = "U0ALICE", channel: str = "C0GENERAL",
                     **extra: str) -> dict[str, str]:
        """A slash command's fields, as Slack sends them (a form over HTTP, the payload in Socket Mode)."""
        return {"token": "legacy", "team_id": self.team_id, "channel_id": channel, "channel_name": "general",
                "user_id": user, "user_name": user.lower(), "command": command, "text": self.encoded(text),
                "response_url": self._response_url(channel), "trigger_id": self._uid("trig."),
                "api_app_id": "A0WARROOM", **extra}

    def command(self, command: str, text: str = "", user: str = "U0ALICE", channel: str = "C0GENERAL",
                **extra: str) -> httpx.Response:
        form = self.command_form(command, text, user, channel, **extra)
        return self.post(urllib.parse.urlencode(form), "application/x-www-form-urlencoded")

    # --- events -------------------------------------------------------------------------------
    def event_body(self, event: dict[str, Any], event_id: str | None = None) -> dict[str, Any]:
        """An Events API callback around ``event``."""
        return {"token": "legacy", "team_id": self.team_id, "api_app_id": "A0WARROOM", "type": "event_callback",
                "event_id": event_id or self._uid("Ev"), "event_time": int(time.time()), "event": event,
                "authorizations": [{"enterprise_id": None, "team_id": self.team_id, "user_id": "UWARROOM",
                                    "is_bot": True, "is_enterprise_install": False}]}

    def event(self, event: dict[str, Any], event_id: str | None = None, retry_num: int | None = None
              ) -> httpx.Response:
        body = self.event_body(event, event_id)
        headers = {"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": "http_timeout"} if retry_num else None
        return self.post(json.dumps(body), "application/json", headers=headers)

    def app_rate_limited(self, minute: int | None = None) -> httpx.Response:
        """What Slack sends when it holds back the app's events (more than 30,000 an hour from one workspace, or
        too many non-200 answers): a top-level type with no inner event (api.slack.com/events/app_rate_limited)."""
        minute = int(time.time()) // 60 * 60 if minute is None else minute
        body = {"token": "legacy", "type": "app_rate_limited", "team_id": self.team_id,
                "minute_rate_limited": minute, "api_app_id": "A0WARROOM"}
        return self.post(json.dumps(body), "application/json")

    def mention_event(self, text: str, user: str = "U0ALICE", channel: str = "C0GENERAL") -> dict[str, Any]:
        return {"type": "app_mention", "user": user, "text": f"<@UWARROOM> {self.encoded(text)}", "ts": self._ts(),
                "channel": channel, "event_ts": self._ts()}

    def _ts(self) -> str:
        return f"{time.time():.6f}"

    def mention(self, text: str, user: str = "U0ALICE", channel: str = "C0GENERAL", **kw: Any) -> httpx.Response:
        return self.event(self.mention_event(text, user, channel), **kw)

    def message(self, text: str, user: str = "U0ALICE", channel: str = "C0GENERAL", channel_type: str = "channel",
                files: list[dict[str, Any]] | None = None, subtype: str | None = None, **kw: Any) -> httpx.Response:
        """A ``message`` event; ``subtype`` as Slack sets it (``channel_join``, ``thread_broadcast``, ...)."""
        ev: dict[str, Any] = {"type": "message", "user": user, "text": self.encoded(text), "ts": self._ts(),
                              "channel": channel,
                              "channel_type": channel_type, "event_ts": self._ts()}
        if subtype:
            ev["subtype"] = subtype
        if files:
            ev["files"] = files
        return self.event(ev, **kw)

    def reaction(self, name: str, channel: str, ts: str, user: str = "U0ALICE") -> httpx.Response:
        ev = {"type": "reaction_added", "user": user, "reaction": name,
              "item": {"type": "message", "channel": channel, "ts": ts}, "event_ts": self._ts()}
        return self.event(ev)

    def url_verification(self, challenge: str = "abc") -> httpx.Response:
        body = {"token": "legacy", "challenge": challenge, "type": "url_verification"}
        return self.post(json.dumps(body), "application/json")

    # --- interactivity ----------------------------------------------------------------------------
    def _interactive(self, payload: dict[str, Any]) -> httpx.Response:
        return self.post(urllib.parse.urlencode({"payload": json.dumps(payload)}),
                         "application/x-www-form-urlencoded")

    def click_payload(self, action_id: str, value: str, user: str = "U0ALICE", channel: str = "C0GENERAL",
                      message_ts: str | None = None, ephemeral: bool = False) -> dict[str, Any]:
        """A button click (``block_actions``), with the message's ``response_url`` as Slack sends it. On an
        ephemeral message (``ephemeral``) Slack sends no ``message``, only its ``container``."""
        ts = message_ts or self._ts()
        payload: dict[str, Any] = {
            "type": "block_actions", "team": {"id": self.team_id}, "user": {"id": user, "username": user.lower()},
            "api_app_id": "A0WARROOM", "trigger_id": self._uid("trig."), "channel": {"id": channel},
            "container": {"type": "message", "message_ts": ts, "channel_id": channel, "is_ephemeral": ephemeral},
            "response_url": self._response_url(channel),
            "actions": [{"type": "button", "action_id": action_id, "block_id": "b1", "value": value,
                         "action_ts": self._ts()}],
        }
        if not ephemeral:
            payload["message"] = {"ts": ts, "text": ""}
        return payload

    def click(self, action_id: str, value: str, user: str = "U0ALICE", channel: str = "C0GENERAL",
              message_ts: str | None = None, ephemeral: bool = False) -> httpx.Response:
        return self._interactive(self.click_payload(action_id, value, user, channel, message_ts, ephemeral))

    def message_shortcut(self, callback_id: str, message_text: str, user: str = "U0ALICE",
                         channel: str = "C0GENERAL", files: list[dict[str, Any]] | None = None,
                         message_ts: str | None = None) -> httpx.Response:
        """A message shortcut on a message (``message_ts``: the same message again, else a new one)."""
        ts = message_ts or self._ts()
        payload = {"type": "message_action", "callback_id": callback_id, "team": {"id": self.team_id},
                   "user": {"id": user}, "channel": {"id": channel}, "trigger_id": self._uid("trig."),
                   "message_ts": ts, "response_url": self._response_url(channel),
                   "message": {"type": "message", "text": self.encoded(message_text), "ts": ts,
                               "files": files or []}}
        return self._interactive(payload)

    def view_submission(self, callback_id: str, values: dict[str, Any], private_metadata: str = "",
                        user: str = "U0ALICE") -> httpx.Response:
        payload = {"type": "view_submission", "team": {"id": self.team_id}, "user": {"id": user},
                   "trigger_id": self._uid("trig."),
                   "view": {"id": self._uid("V"), "hash": self._uid("h"), "callback_id": callback_id,
                            "private_metadata": private_metadata, "state": {"values": values}}}
        return self._interactive(payload)
