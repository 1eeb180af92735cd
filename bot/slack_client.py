"""Posting to Slack from workers: slack_sdk's WebClient with retries and per-channel pacing.

Slack allows about one message per second per channel and answers ``429`` with ``Retry-After``
beyond that; slack_sdk retries only connection errors unless told, so the rate-limit and
server-error retry handlers are installed here. Pacing is done before the call so that an alert
storm does not even reach the limit.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
import urllib.parse
import urllib.request
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

__all__ = ["SlackPoster", "SlackApiError", "NotAMemberError", "FileUnavailable", "AUTH_ERRORS", "REQUIRED_SCOPES",
           "make_web_client", "slack_error"]

log = logging.getLogger("warroom.slack")


# Slack's answers when the bot's token no longer works (revoked, the app uninstalled or reinstalled with a new
# token, the workspace suspended): every call fails until someone fixes the token, then every call works again.
AUTH_ERRORS = frozenset({"invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired",
                         "no_permission", "org_login_required", "team_access_not_granted"})


# The bot token's scopes (slack-app-manifest.yaml has the same list; a test holds them together), and what
# breaks without each: Slack lists a token's scopes in the X-OAuth-Scopes header of every answer, so a missing
# one is found at start, not when an incident needs it.
REQUIRED_SCOPES: dict[str, str] = {
    "app_mentions:read": "mentions of the bot are not received",
    "channels:history": "messages in incident channels are not recorded on the timeline",
    "channels:join": "the bot cannot join a public channel to post there",
    "channels:manage": "incidents get no channel of their own",
    "channels:read": "people joining an incident channel are not caught up",
    "chat:write": "the bot cannot post at all",
    "commands": "slash commands do not reach the bot",
    "files:read": "uploaded log files cannot be read",
    "files:write": "charts and postmortem files cannot be uploaded",
    "groups:history": "messages in private incident channels are not recorded",
    "im:history": "direct messages to the bot are not received",
    "pins:read": "pinned messages are not marked on the timeline",
    "reactions:read": "reactions (:eyes: to acknowledge) are not received",
    "usergroups:read": "user-group approvers of runbooks cannot be resolved",
    "users:read": "runbook requests are refused (who is asking cannot be checked)",
}


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


# One TLS context for every call to Slack. Without it slack_sdk's urllib calls make one per connection, and
# Python then loads the whole CA bundle again: about 50 ms of CPU per Web API call (ssl.create_default_context,
# measured on this machine), a second per twenty card updates in an alert storm.
_TLS = ssl.create_default_context()


def make_web_client(token: str, base_url: str, timeout: int = 10) -> WebClient:
    """A WebClient that waits out ``429`` and retries ``5xx`` and dropped connections."""
    return WebClient(
        token=token,
        base_url=base_url,
        timeout=timeout,
        ssl=_TLS,
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
        self.auth_problem: dict[str, Any] | None = None  # {"error", "since", "method"} while the token fails
        self.missing_scopes: list[str] = []  # what check_scopes found missing at start
        self.events_limited: dict[str, Any] | None = None  # {"minute", "team", "at"}: Slack's last app_rate_limited
        self._people: dict[str, tuple[float, dict[str, Any]]] = {}  # person(): users.info, a minute
        self._home: dict[str, Any] = {}  # auth.test: the bot's own team (and Enterprise Grid org)

    def _call(self, method: str, pace: str | None = None, **kwargs: Any) -> dict[str, Any]:
        if pace:
            self._pacer.wait(pace)
        start = time.perf_counter()
        try:
            resp = self.client.api_call(method, json=kwargs)
            if self.auth_problem is not None:
                log.warning("Slack takes the bot token again (refused since %s)", self.auth_problem["error"])
                self.auth_problem = None
                metrics.SLACK_AUTH_OK.set(1)
            return dict(resp.data)  # type: ignore[arg-type]
        except SlackApiError as exc:
            if (code := slack_error(exc)) in AUTH_ERRORS:
                if self.auth_problem is None or self.auth_problem["error"] != code:
                    log.error("Slack refuses the bot token (%s on %s): work waits until the token is fixed",
                              code, method)
                    self.auth_problem = {"error": code, "method": method, "since": time.time()}
                metrics.SLACK_AUTH_OK.set(0)
            raise
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
        it reaches conversations the bot is not a member of. Only a URL on Slack's hosts (or the configured API's) is
        used: an answer posted wherever a request said would hand the knowledge base to anyone holding the signing
        secret (a made-up channel makes the bot answer through the URL)."""
        if not _slack_file_host(response_url, self.client.base_url):
            where = urllib.parse.urlsplit(response_url).netloc[:80]
            raise PermanentJobError(f"response_url is not on Slack's hosts: {where!r}")
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

    def archive(self, channel: str) -> None:
        """Archive a channel (``conversations.archive``; ``channels:manage``). Raises SlackApiError as Slack says."""
        self._call("conversations.archive", None, channel=channel)

    def set_topic(self, channel: str, topic: str) -> None:
        """A channel's topic (``conversations.setTopic``; at most 250 characters)."""
        self._call("conversations.setTopic", None, channel=channel, topic=topic[:250])

    def publish_home(self, user: str, view: dict[str, Any]) -> dict[str, Any]:
        """Set ``user``'s Home tab of the app (``views.publish``)."""
        return self._call("views.publish", None, user_id=user, view=view)

    def person(self, user: str) -> dict[str, Any]:
        """``users.info`` of a person, cached a minute, with ``external`` set when they belong to another
        organisation than the bot's (a Slack Connect channel: another team, not the same Enterprise Grid org).

        Raises:
            LookupError: Slack could not tell (the call refused or failed)."""
        hit = self._people.get(user)
        if hit and time.monotonic() - hit[0] < 60:
            return hit[1]
        try:
            if not self._home:
                self._home.update(self._call("auth.test", None))
            person = dict(self._call("users.info", None, user=user)["user"])
        except SlackApiError as exc:
            raise LookupError(f"users.info: {slack_error(exc) or 'Slack error'}") from None
        except (OSError, KeyError) as exc:
            raise LookupError(f"users.info: {type(exc).__name__}") from None
        home = self._home
        same_team = person.get("team_id") in (None, home.get("team_id"))
        same_org = bool(home.get("enterprise_id")) and (
            (person.get("enterprise_user") or {}).get("enterprise_id") == home.get("enterprise_id"))
        person["external"] = bool(person.get("is_stranger")) or not (same_team or same_org)
        self._people[user] = (time.monotonic(), person)
        return person

    def check_scopes(self) -> list[str] | None:
        """Compare the token's scopes (``X-OAuth-Scopes`` of an ``auth.test`` answer) with ``REQUIRED_SCOPES``;
        keep and log the missing ones (``missing_scopes``). None when Slack could not be asked or did not say."""
        try:
            resp = self.client.api_call("auth.test")
        except Exception as exc:  # noqa: BLE001 - Slack down at start: checked again at the next start
            log.warning("could not check the Slack token's scopes: %s", exc)
            return None
        header = next((v for k, v in (resp.headers or {}).items() if k.lower() == "x-oauth-scopes"), None)
        if header is None:
            return None
        granted = {x.strip() for x in str(header).split(",") if x.strip()}
        self.missing_scopes = sorted(set(REQUIRED_SCOPES) - granted)
        for scope in self.missing_scopes:
            log.error("the Slack app lacks the %s scope: %s (add it in the app's settings, then reinstall the app)",
                      scope, REQUIRED_SCOPES[scope])
        return self.missing_scopes

    def file_info(self, file_id: str) -> dict[str, Any]:
        """``files.info``: a file's metadata (name, type, size, mode, private URLs)."""
        try:
            return dict(self._call("files.info", None, file=file_id)["file"])
        except SlackApiError as exc:
            code = slack_error(exc)
            if code in ("file_not_found", "file_deleted"):
                raise FileUnavailable(f"file {file_id} was deleted or is not shared with me") from None
            if code == "missing_scope":
                raise FileUnavailable("I may not read files here: the Slack app lacks the `files:read` scope "
                                      "(add it in the app's settings and reinstall the app)") from None
            raise

    def download(self, info: dict[str, Any], max_bytes: int) -> bytes:
        """The bytes of a file from :meth:`file_info`, read with the bot token from Slack's own file host.

        Refused with :class:`FileUnavailable` (a sentence for the person who shared it): a link to a file kept
        elsewhere (Google Drive and the like: the bot token is never sent off Slack), a deleted file, a file
        over ``max_bytes`` (checked on Slack's size first), and Slack's sign-in page, which Slack answers with
        ``200`` instead of the file when the token may not read it (no ``files:read``, another workspace).
        A redirect to another host is followed without the token."""
        name = str(info.get("name") or info.get("id") or "the file")
        if info.get("mode") == "tombstone":
            raise FileUnavailable(f"`{name}` was deleted")
        url = str(info.get("url_private_download") or info.get("url_private") or "")
        if info.get("is_external") or info.get("mode") == "external" or not url:
            raise FileUnavailable(f"`{name}` is a link to a file kept outside Slack; I only read files "
                                  "uploaded to Slack (download it and upload the file itself)")
        if not _slack_file_host(url, self.client.base_url):
            raise FileUnavailable(f"`{name}` is not stored on Slack's file host, so I did not fetch it")
        size = info.get("size")
        if isinstance(size, int) and size > max_bytes:
            raise FileUnavailable(f"`{name}` is {size / 2**20:,.0f} MB, over the {max_bytes // 2**20} MB I read "
                                  "from Slack; use `warroom logs classify FILE` on the host instead")
        req = urllib.request.Request(url, headers={"Authorization": f"Bearer {self.client.token}"})
        start = time.perf_counter()
        try:
            with _FILE_OPENER.open(req, timeout=30) as r:  # noqa: S310 - Slack's file host, checked above
                ctype = r.headers.get_content_type()
                data = bytes(r.read(max_bytes + 1))
        finally:
            metrics.SLACK_CALLS.labels(method="files.download").inc()
            metrics.SLACK_LATENCY.observe(time.perf_counter() - start)
        if str(info.get("mimetype") or "") != "text/html" and (
                ctype == "text/html" or data[:512].lstrip().lower().startswith((b"<!doctype html", b"<html"))):
            raise FileUnavailable(f"Slack sent its sign-in page instead of `{name}`: the app's token may not "
                                  "read this file (it needs the `files:read` scope; reinstall the app after "
                                  "adding it)")
        return data


class FileUnavailable(Exception):
    """A shared file the bot will not or cannot read; the message is meant for the person who shared it."""


def _slack_file_host(url: str, api_base: str) -> bool:
    """Whether ``url`` is on Slack's file host (``*.slack.com``, GovSlack's ``*.slack-gov.com``, over https), or
    on the API's own host (a stand-in or proxy the deployment configured)."""
    u, api = urllib.parse.urlsplit(url), urllib.parse.urlsplit(api_base)
    host = (u.hostname or "").lower()
    if u.scheme == "https" and any(host == d or host.endswith("." + d) for d in ("slack.com", "slack-gov.com")):
        return True  # Slack's commercial and GovSlack file hosts
    return bool(host) and (host, u.port) == ((api.hostname or "").lower(), api.port) and u.scheme == api.scheme


class _TokenStaysHome(urllib.request.HTTPRedirectHandler):
    """Follow a redirect, but drop the ``Authorization`` header when it leads off Slack's hosts (to another host,
    or off https): urllib would send the bot token wherever the redirect points."""

    def redirect_request(self, req: urllib.request.Request, fp: Any, code: int, msg: str, headers: Any,
                         newurl: str) -> urllib.request.Request | None:
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None:
            old_u, new_u = urllib.parse.urlsplit(req.full_url), urllib.parse.urlsplit(newurl)
            same = (old_u.hostname, old_u.port) == (new_u.hostname, new_u.port) and \
                not (old_u.scheme == "https" and new_u.scheme != "https")
            if not same and not _slack_file_host(newurl, "https://slack.com/"):  # Slack's own hosts keep it
                new.remove_header("Authorization")
        return new


_FILE_OPENER = urllib.request.build_opener(_TokenStaysHome, urllib.request.HTTPSHandler(context=_TLS))
