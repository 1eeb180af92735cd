"""A local stand-in for the Slack Web API.

It answers the methods the bot uses in Slack's response shapes, records every call, and can be
told to answer ``429`` (with ``Retry-After``) or ``500`` for a while. The bot reaches it only
through slack_sdk's ``base_url``; the product has no special case for it. Run it in-process
(:class:`SlackStandIn`) or as its own process (``warroom standin``).

Control endpoints (for other processes): ``GET /_calls``, ``POST /_reset``,
``POST /_fail?method=chat.postMessage&status=429&count=3&retry_after=1``, ``POST /_users?group=S1``.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
import urllib.parse
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from bot.standin.blockkit import message_errors, view_errors

if TYPE_CHECKING:
    from bot.standin.socket_mode import SocketModeStandIn

__all__ = ["SlackStandIn", "Call"]

BOT_USER = "UWARROOM"
# What Slack's file host answers, with 200, to a token that may not read the file (no files:read scope, another
# workspace's token): its sign-in page, not an error (reported in bolt-js #2585, vercel/eve #1531).
SIGN_IN_PAGE = (b'<!DOCTYPE html><html lang="en-US"><head><title>Slack</title></head>'
                b"<body><h1>Sign in to warroom</h1></body></html>")
TEAM = "T0WARROOM"


@dataclass
class Call:
    method: str
    args: dict[str, Any]
    status: int
    at: float = field(default_factory=time.time)
    response: dict[str, Any] = field(default_factory=dict)


class SlackStandIn:
    """The fake Slack Web API server."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, token: str | None = None,
                 app_token: str | None = None) -> None:
        self.token = token
        self.app_token = app_token  # Socket Mode's app-level token (xapp-...), when it is to be checked
        self.socket: SocketModeStandIn | None = None  # Slack's Socket Mode side, once an app asked for it
        self.calls: list[Call] = []
        self.files: dict[str, dict[str, Any]] = {}
        self.files_sign_in_page = False  # True: file downloads get the sign-in page, as without files:read
        self.archived: set[str] = set()
        self.scopes: list[str] | None = None  # the token's scopes (X-OAuth-Scopes); None: all the bot needs
        self.uninvitable: dict[str, str] = {}  # user -> the error conversations.invite answers for them
        # users.info answers per person: {"U0GUEST": {"is_restricted": True}, "U0EXT": {"team_id": "T0OTHER"}}
        self.users: dict[str, dict[str, Any]] = {}
        self._deleted: set[tuple[str, str]] = set()  # messages people deleted: updating them is no bot error
        self.usergroups: dict[str, list[str]] = {}
        self.channels: dict[str, dict[str, Any]] = {}
        # Channels the bot is not a member of (by default it is in every channel): True for a private one,
        # which it cannot join by itself.
        self.outside: dict[str, bool] = {}
        self._failures: dict[str, list[tuple[int, int]]] = {}  # method -> [(status, retry_after)]
        self._posted: set[tuple[str, str]] = set()  # (channel, ts) of every message posted: chat.update's targets
        self._refusals: dict[str, list[str]] = {}  # method -> [Slack error code]
        self._outage: tuple[float, Any, int] | None = None  # (until, statuses, retry_after)
        self._lock = threading.Lock()
        self._ts = itertools.count(1)
        self._ids = itertools.count(1)
        self._server = ThreadingHTTPServer((host, port), self._handler_class())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    # --- lifecycle --------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/"

    @property
    def api_url(self) -> str:
        """The ``base_url`` to give slack_sdk (it appends the method name)."""
        return self.url + "api/"

    def start(self) -> SlackStandIn:
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name="slack-standin",
                                        daemon=True)  # shutdown() waits up to one poll interval
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self.socket is not None:
            self.socket.stop()

    def _connections_open(self, auth: str) -> dict[str, Any]:
        """``apps.connections.open``: the URL of the Socket Mode stand-in (started on first use)."""
        if not auth.startswith("Bearer xapp-"):
            return {"ok": False, "error": "not_allowed_token_type" if auth.startswith("Bearer ") else "not_authed"}
        if self.app_token and auth != f"Bearer {self.app_token}":
            return {"ok": False, "error": "invalid_auth"}
        with self._lock:
            if self.socket is None:
                from bot.standin.socket_mode import SocketModeStandIn

                self.socket = SocketModeStandIn()
        return {"ok": True, "url": self.socket.url}

    def __enter__(self) -> SlackStandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- test controls ----------------------------------------------------------------------------
    def fail(self, method: str, status: int = 429, count: int = 1, retry_after: int = 1) -> None:
        """Answer the next ``count`` calls of ``method`` with ``status``."""
        with self._lock:
            self._failures.setdefault(method, []).extend([(status, retry_after)] * count)

    def refuse(self, method: str, error: str, count: int = 1) -> None:
        """Answer the next ``count`` calls of ``method`` as Slack refuses one: HTTP 200, ``ok: false``, ``error``
        (``missing_scope``, ``not_in_channel``, ...)."""
        with self._lock:
            self._refusals.setdefault(method, []).extend([error] * count)

    def outage(self, seconds: float, statuses: tuple[int, ...] = (429, 500), retry_after: int = 1) -> None:
        """Answer every Web API call with ``statuses`` in turn (429 with ``Retry-After``) for ``seconds``."""
        with self._lock:
            self._outage = (time.monotonic() + seconds, itertools.cycle(statuses), retry_after)

    def leave(self, channel: str, private: bool = False) -> None:
        """The bot is not in ``channel``: posting there answers ``not_in_channel`` until it joins."""
        with self._lock:
            self.outside[channel] = private

    def archive(self, channel: str) -> None:
        """Someone archived ``channel``: posting, updating and joining there answer ``is_archived``."""
        with self._lock:
            self.archived.add(channel)

    def delete_message(self, channel: str, ts: str) -> None:
        """Someone deleted a message the bot posted: updating it answers ``message_not_found``."""
        with self._lock:
            self._posted.discard((channel, ts))
            self._deleted.add((channel, ts))

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()
            self._failures.clear()
            self._refusals.clear()
            self._outage = None
            self.files_sign_in_page = False

    def add_file(self, name: str, content: bytes, filetype: str = "text", **meta: Any) -> str:
        """Pretend a user uploaded a file; returns its id. ``meta`` overrides the file object's fields as Slack
        shows them (``mode="external"`` with ``url_private`` elsewhere for a Google Drive link, ``size``, ...);
        ``redirect`` makes the download answer ``302`` to that URL."""
        fid = f"F{next(self._ids):08d}"
        self.files[fid] = {"id": fid, "name": name, "filetype": filetype, "content": content,
                           "size": len(content), "mode": "hosted", **meta}
        return fid

    BAD_CALL_ERRORS = frozenset({"invalid_blocks", "message_not_found", "invalid_name_specials",
                                 "invalid_name_maxlength", "invalid_name_required", "too_long"})

    def bad_calls(self) -> list[Call]:
        """The calls Slack would refuse as malformed: a Block Kit limit broken (see :mod:`bot.standin.blockkit`), an
        update of a message that is not there, a channel name or topic Slack does not allow."""
        with self._lock:
            return [c for c in self.calls if (c.response.get("error") in self.BAD_CALL_ERRORS
                    and (str(c.args.get("channel")), str(c.args.get("ts"))) not in self._deleted)
                    or (c.response.get("error") == "invalid_arguments" and c.response.get("response_metadata"))]

    def calls_to(self, method: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.method == method and c.status == 200]

    def messages(self, channel: str | None = None) -> list[dict[str, Any]]:
        """Messages posted (and their latest text after updates), in order."""
        with self._lock:
            calls = list(self.calls)
        posted: dict[tuple[str, str], dict[str, Any]] = {}
        order: list[tuple[str, str]] = []
        for c in calls:
            if c.status != 200 or not c.response.get("ok"):
                continue
            if c.method in ("chat.postMessage", "chat.postEphemeral"):
                ts = c.response.get("ts") or c.response.get("message_ts")
                key = (str(c.args.get("channel")), str(ts))
                posted[key] = {**c.args, "ts": ts, "ephemeral": c.method == "chat.postEphemeral"}
                order.append(key)
            elif c.method == "chat.update":
                key = (str(c.args.get("channel")), str(c.args.get("ts")))
                if key in posted:
                    posted[key] = {**posted[key], **c.args, "updated": posted[key].get("updated", 0) + 1}
        return [posted[k] for k in order if channel is None or k[0] == channel]

    # --- the API ----------------------------------------------------------------------------------
    def _next_ts(self) -> str:
        return f"{1_700_000_000 + next(self._ts)}.{next(self._ids):06d}"

    def _answer(self, method: str, args: dict[str, Any]) -> dict[str, Any]:  # noqa: C901 - a dispatch table
        if method == "auth.test":
            return {"ok": True, "url": "https://warroom-standin.slack.com/", "team": "warroom",
                    "user": "warroom", "team_id": TEAM, "user_id": BOT_USER, "bot_id": "BWARROOM"}
        if method in ("chat.postMessage", "chat.update", "chat.postEphemeral") and (bad := message_errors(args)):
            return {"ok": False, "error": "invalid_blocks", "errors": bad}
        if method in ("views.open", "views.update", "views.push", "views.publish") and \
                (bad := view_errors(args.get("view"))):
            return {"ok": False, "error": "invalid_arguments", "response_metadata": {"messages": bad}}
        if method in ("chat.postMessage", "chat.update", "chat.postEphemeral", "conversations.setTopic",
                      "conversations.join", "conversations.invite") and str(args.get("channel")) in self.archived:
            return {"ok": False, "error": "is_archived"}
        if method == "chat.postMessage":
            if not args.get("channel"):
                return {"ok": False, "error": "channel_not_found"}
            if not (args.get("text") or args.get("blocks")):
                return {"ok": False, "error": "no_text"}
            if args["channel"] in self.outside:
                return {"ok": False, "error": "not_in_channel"}
            ts = self._next_ts()
            self._posted.add((str(args["channel"]), ts))
            return {"ok": True, "channel": args["channel"], "ts": ts,
                    "message": {"text": args.get("text", ""), "user": BOT_USER, "ts": ts,
                                "thread_ts": args.get("thread_ts")}}
        if method == "chat.update":  # only a message the bot posted there (not an ephemeral one) can be updated
            if (str(args.get("channel")), str(args.get("ts"))) not in self._posted:
                return {"ok": False, "error": "message_not_found"}
            return {"ok": True, "channel": args.get("channel"), "ts": args.get("ts"), "text": args.get("text", "")}
        if method == "chat.postEphemeral":
            if args.get("channel") in self.outside:
                return {"ok": False, "error": "not_in_channel"}
            return {"ok": True, "message_ts": self._next_ts()}
        if method == "chat.getPermalink":
            ch, ts = args.get("channel", ""), str(args.get("message_ts", "")).replace(".", "")
            return {"ok": True, "channel": ch,
                    "permalink": f"https://warroom-standin.slack.com/archives/{ch}/p{ts}"}
        if method == "conversations.create":  # Slack's naming rules
            name = str(args.get("name") or "")
            if not name:
                return {"ok": False, "error": "invalid_name_required"}
            if len(name) > 80:
                return {"ok": False, "error": "invalid_name_maxlength"}
            if not re.fullmatch(r"[a-z0-9_-]+", name):
                return {"ok": False, "error": "invalid_name_specials"}
            if any(c.get("name") == name for c in self.channels.values()):
                return {"ok": False, "error": "name_taken"}
            cid = f"C{next(self._ids):08d}"
            self.channels[cid] = {"id": cid, "name": args.get("name", cid), "is_channel": True}
            return {"ok": True, "channel": self.channels[cid]}
        if method == "conversations.join":
            ch = str(args.get("channel"))
            if self.outside.get(ch):
                return {"ok": False, "error": "method_not_supported_for_channel_type"}
            self.outside.pop(ch, None)
            return {"ok": True, "channel": self.channels.get(ch, {"id": ch, "name": ch.lower()})}
        if method == "conversations.setTopic":
            ch, topic = str(args.get("channel")), str(args.get("topic", ""))
            if len(topic) > 250:
                return {"ok": False, "error": "too_long"}
            self.channels.setdefault(ch, {"id": ch, "name": ch.lower()})["topic"] = {"value": topic}
            return {"ok": True, "channel": self.channels[ch]}
        if method == "conversations.invite":  # all or nothing, as Slack does without force=true
            bad = [self.uninvitable[u] for u in str(args.get("users") or "").split(",") if u in self.uninvitable]
            if bad:
                return {"ok": False, "error": bad[0]}
            return {"ok": True, "channel": self.channels.get(str(args.get("channel")), {"id": args.get("channel")})}
        if method == "conversations.archive":
            ch = str(args.get("channel"))
            if ch in self.archived:
                return {"ok": False, "error": "already_archived"}
            if ch in self.outside:
                return {"ok": False, "error": "not_in_channel"}
            self.archived.add(ch)
            return {"ok": True}
        if method == "conversations.info":
            ch = str(args.get("channel"))
            return {"ok": True, "channel": self.channels.get(ch, {"id": ch, "name": ch.lower()})}
        if method == "conversations.history":
            msgs = [{"type": "message", "text": m.get("text", ""), "ts": m["ts"], "user": BOT_USER}
                    for m in self.messages(str(args.get("channel"))) if not m.get("ephemeral")]
            return {"ok": True, "messages": list(reversed(msgs))[: int(args.get("limit", 100))], "has_more": False}
        if method in ("reactions.add", "pins.add"):
            return {"ok": True}
        if method == "views.publish":
            view = args.get("view") or {}
            if not args.get("user_id") or view.get("type") != "home" or len(view.get("blocks") or []) > 100:
                return {"ok": False, "error": "invalid_arguments"}
            return {"ok": True, "view": {"id": f"V{next(self._ids):08d}", **view}}
        if method in ("views.open", "views.update", "views.push"):
            return {"ok": True, "view": {"id": f"V{next(self._ids):08d}", **(args.get("view") or {})}}
        if method == "users.info":
            uid = str(args.get("user", ""))
            if not uid:
                return {"ok": False, "error": "user_not_found"}
            return {"ok": True, "user": {"id": uid, "team_id": TEAM, "name": uid.lower(), "tz": "UTC",
                                         "deleted": False, "is_bot": False, "is_restricted": False,
                                         "is_ultra_restricted": False, **self.users.get(uid, {})}}
        if method == "usergroups.users.list":
            return {"ok": True, "users": self.usergroups.get(str(args.get("usergroup")), [])}
        if method == "files.getUploadURLExternal":
            fid = f"F{next(self._ids):08d}"
            self.files[fid] = {"id": fid, "name": args.get("filename"), "size": int(args.get("length", 0)),
                               "content": b""}
            return {"ok": True, "upload_url": f"{self.url}_upload/{fid}", "file_id": fid}
        if method == "files.completeUploadExternal":
            files = args.get("files")
            if isinstance(files, str):
                files = json.loads(files)
            out = []
            for f in files or []:
                meta = self.files.get(f["id"], {"id": f["id"]})
                meta["title"] = f.get("title")
                out.append({"id": f["id"], "title": f.get("title"), "name": meta.get("name")})
            return {"ok": True, "files": out}
        if method == "files.info":
            f = self.files.get(str(args.get("file")))
            if f is None:
                return {"ok": False, "error": "file_not_found"}
            if f.get("mode") == "tombstone":
                return {"ok": False, "error": "file_deleted"}
            hosted = {} if f.get("mode") == "external" else {
                "url_private": f"{self.url}_files/{f['id']}", "url_private_download": f"{self.url}_files/{f['id']}"}
            return {"ok": True, "file": {k: v for k, v in f.items() if k not in ("content", "redirect")} | hosted}
        return {"ok": False, "error": "unknown_method"}

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet
                return

            def _send(self, status: int, body: bytes, ctype: str = "application/json",
                      headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def _json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
                self._send(status, json.dumps(obj).encode(), headers=headers)

            def do_GET(self) -> None:  # noqa: N802
                path = urllib.parse.urlparse(self.path)
                if path.path == "/_calls":
                    with standin._lock:
                        self._json(200, [asdict(c) for c in standin.calls])
                    return
                if path.path.startswith("/_files/"):
                    fid = path.path.rsplit("/", 1)[-1]
                    f = standin.files.get(fid)
                    with standin._lock:  # a download is no Web API call; recorded so tests can tell none was made
                        standin.calls.append(Call("files.download", {
                            "file": fid, "authorized": bool(self.headers.get("Authorization"))}, 200,
                            response={"ok": True}))
                    if f is None:
                        self._send(404, b"not found", "text/plain")
                    elif standin.files_sign_in_page:  # Slack's answer when the token may not read files
                        self._send(200, SIGN_IN_PAGE, "text/html; charset=utf-8")
                    elif f.get("redirect"):
                        self._send(302, b"", "text/plain", headers={"Location": str(f["redirect"])})
                    elif standin.token and self.headers.get("Authorization") != f"Bearer {standin.token}":
                        self._send(403, b"forbidden", "text/plain")
                    else:
                        self._send(200, f["content"], "application/octet-stream")
                    return
                self._do_api(path, b"")

            def do_POST(self) -> None:  # noqa: N802
                path = urllib.parse.urlparse(self.path)
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if path.path == "/_reset":
                    standin.reset()
                    self._json(200, {"ok": True})
                    return
                if path.path == "/_fail":
                    q = dict(urllib.parse.parse_qsl(path.query))
                    standin.fail(q["method"], int(q.get("status", 429)), int(q.get("count", 1)),
                                 int(q.get("retry_after", 1)))
                    self._json(200, {"ok": True})
                    return
                if path.path == "/_users":
                    q = dict(urllib.parse.parse_qsl(path.query))
                    standin.usergroups[q["group"]] = json.loads(raw or b"[]")
                    self._json(200, {"ok": True})
                    return
                if path.path.startswith("/_response/"):  # a slash command's or shortcut's response_url
                    channel = path.path.split("/")[2]
                    try:
                        body = json.loads(raw or b"{}")
                    except json.JSONDecodeError:
                        self._send(400, b"invalid_payload", "text/plain")
                        return
                    if bad := message_errors(body):
                        with standin._lock:
                            standin.calls.append(Call("response_url", {**body, "channel": channel}, 400,
                                                      response={"ok": False, "error": "invalid_blocks",
                                                                "errors": bad}))
                        self._send(400, b"invalid_blocks", "text/plain")
                        return
                    with standin._lock:
                        standin.calls.append(Call("response_url", {**body, "channel": channel}, 200,
                                                  response={"ok": True}))
                    self._send(200, b"ok", "text/plain")
                    return
                if path.path.startswith("/_upload/"):
                    fid = path.path.rsplit("/", 1)[-1]
                    if fid in standin.files:
                        standin.files[fid]["content"] = raw
                    self._send(200, b"OK - " + str(len(raw)).encode(), "text/plain")
                    return
                self._do_api(path, raw)

            def _do_api(self, path: urllib.parse.ParseResult, raw: bytes) -> None:
                if not path.path.startswith("/api/"):
                    self._send(404, b"not found", "text/plain")
                    return
                method = path.path[len("/api/"):]
                args: dict[str, Any] = dict(urllib.parse.parse_qsl(path.query))
                ctype = self.headers.get("Content-Type", "")
                if raw:
                    if "json" in ctype:
                        try:
                            args.update(json.loads(raw))
                        except json.JSONDecodeError:
                            self._json(200, {"ok": False, "error": "invalid_json"})
                            return
                    elif "form" in ctype:
                        args.update(dict(urllib.parse.parse_qsl(raw.decode())))
                for k in ("blocks", "view", "files"):
                    if isinstance(args.get(k), str) and args[k].startswith(("[", "{")):
                        args[k] = json.loads(args[k])
                auth = self.headers.get("Authorization", "")
                with standin._lock:
                    queue = standin._failures.get(method)
                    failure = queue.pop(0) if queue else None
                    if failure is None and standin._outage is not None:
                        until, statuses, retry_after = standin._outage
                        if time.monotonic() < until:
                            failure = (next(statuses), retry_after)
                        else:
                            standin._outage = None
                if failure is not None:
                    status, retry_after = failure
                    body = {"ok": False, "error": "ratelimited" if status == 429 else "internal_error"}
                    with standin._lock:
                        standin.calls.append(Call(method, args, status, response=body))
                    self._json(status, body, {"Retry-After": str(retry_after)} if status == 429 else None)
                    return
                if method == "apps.connections.open":  # Socket Mode: an app-level token only
                    resp: dict[str, Any] = standin._connections_open(auth)
                elif method != "auth.test" and not auth.startswith("Bearer ") and "token" not in args:
                    resp = {"ok": False, "error": "not_authed"}
                elif standin.token and auth and auth != f"Bearer {standin.token}":
                    resp = {"ok": False, "error": "invalid_auth"}
                else:
                    with standin._lock:
                        refused = standin._refusals.get(method)
                        refusal = refused.pop(0) if refused else None
                        resp = {"ok": False, "error": refusal} if refusal else standin._answer(method, args)
                with standin._lock:
                    standin.calls.append(Call(method, args, 200, response=resp))
                from bot.slack_client import REQUIRED_SCOPES  # Slack names the token's scopes on every answer

                scopes = standin.scopes if standin.scopes is not None else sorted(REQUIRED_SCOPES)
                self._json(200, resp, {"X-OAuth-Scopes": ",".join(scopes)})

        return Handler
