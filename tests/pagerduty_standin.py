"""A local stand-in for the PagerDuty REST API v2, as far as the write-back uses it: ``PUT /incidents/{id}``
(acknowledge, resolve, urgency, assignments), ``POST /incidents/{id}/notes``,
``POST /incidents/{id}/responder_requests`` and ``GET /users?query=``. It checks
what PagerDuty checks (the token, the API version in ``Accept``, ``From`` for an account token, the body's
shape), answers in PagerDuty's error format, keeps each incident's status and urgency, and records every request."""

from __future__ import annotations

import json
import re
import threading
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["FakePagerDuty", "PDRequest"]

_PATH = re.compile(r"^/incidents/([A-Z0-9]+)(/notes|/responder_requests)?$")


@dataclass
class PDRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    status: int = 0


@dataclass
class FakePagerDuty:
    token: str
    incidents: dict[str, str] = field(default_factory=dict)  # id -> triggered | acknowledged | resolved
    notes: dict[str, list[str]] = field(default_factory=dict)
    urgency: dict[str, str] = field(default_factory=dict)  # id -> high | low, once set through the API
    users: dict[str, str] | None = None  # the account's users, email -> id: ``From`` must name one (None: any)
    assigned: dict[str, list[str]] = field(default_factory=dict)  # incident id -> user ids, once set through the API
    responders: dict[str, list[tuple[str, list[str]]]] = field(default_factory=dict)  # id -> [(requester, targets)]
    requests: list[PDRequest] = field(default_factory=list)
    fail_next: list[int] = field(default_factory=list)  # HTTP statuses to answer the next requests with

    def __post_init__(self) -> None:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                return None

            def _answer(self, req: PDRequest, status: int, body: dict[str, Any]) -> None:
                req.status = status
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def _handle(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    body = None
                req = PDRequest(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                fake.requests.append(req)
                status, answer = fake._respond(req)
                self._answer(req, status, answer)

            do_PUT = do_POST = do_GET = _handle  # noqa: N815 - http.server's naming

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    @staticmethod
    def _error(status: int, message: str, code: int, *errors: str) -> tuple[int, dict[str, Any]]:
        return status, {"error": {"message": message, "code": code, "errors": list(errors)}}

    def _respond(self, req: PDRequest) -> tuple[int, dict[str, Any]]:
        if self.fail_next:
            status = self.fail_next.pop(0)
            return self._error(status, "Too many requests" if status == 429 else "Internal error", 0)
        if req.headers.get("authorization") != f"Token token={self.token}":
            return self._error(401, "Unauthorized", 0)
        if req.headers.get("accept") != "application/vnd.pagerduty+json;version=2":
            return self._error(400, "Invalid Input Provided", 2001, "Accept header must name version=2")
        if not req.headers.get("from") or (self.users is not None and req.headers["from"] not in self.users):
            return self._error(400, "Invalid Input Provided", 2001, "Requester User Not Found")
        url = urllib.parse.urlsplit(req.path)
        if req.method == "GET" and url.path == "/users":  # PagerDuty matches the query in names and emails
            query = (urllib.parse.parse_qs(url.query).get("query") or [""])[0].lower()
            found = [{"id": uid, "type": "user", "email": email, "name": email.split("@")[0]}
                     for email, uid in (self.users or {}).items() if query and query in email.lower()]
            return 200, {"users": found, "limit": 25, "offset": 0, "more": False}
        m = _PATH.match(req.path)
        if m is None or not isinstance(req.body, dict):
            return self._error(404, "Not Found", 2100)
        pd_id, is_note = m.group(1), m.group(2) == "/notes"
        if pd_id not in self.incidents:
            return self._error(404, "Not Found", 2100, "Incident Not Found")
        if m.group(2) == "/responder_requests" and req.method == "POST":
            return self._responder_request(pd_id, req.body)
        if is_note and req.method == "POST":
            content = (req.body.get("note") or {}).get("content")
            if not isinstance(content, str) or not content:
                return self._error(400, "Invalid Input Provided", 2001, "Note content is required")
            self.notes.setdefault(pd_id, []).append(content)
            return 201, {"note": {"id": f"N{len(self.notes[pd_id])}", "content": content}}
        inc = req.body.get("incident") or {}
        if req.method == "PUT" and "assignments" in inc and "status" not in inc:
            ids = [(a.get("assignee") or {}).get("id") for a in inc["assignments"] if isinstance(a, dict)]
            known = set((self.users or {}).values())
            if not ids or any(i not in known for i in ids):
                return self._error(400, "Invalid Input Provided", 2001, "Assignee User Not Found")
            if self.incidents[pd_id] == "resolved":
                return self._error(400, "Invalid Input Provided", 2001, "Incident Already Resolved")
            self.assigned[pd_id] = ids
            return 200, {"incident": {"id": pd_id, "type": "incident", "status": self.incidents[pd_id]}}
        if req.method == "PUT" and "urgency" in inc and "status" not in inc:
            if inc.get("type") not in ("incident", "incident_reference") or inc["urgency"] not in ("high", "low"):
                return self._error(400, "Invalid Input Provided", 2001, "Urgency must be high or low")
            if self.incidents[pd_id] == "resolved":
                return self._error(400, "Invalid Input Provided", 2001, "Incident Already Resolved")
            self.urgency[pd_id] = inc["urgency"]
            return 200, {"incident": {"id": pd_id, "type": "incident", "status": self.incidents[pd_id],
                                      "urgency": inc["urgency"]}}
        if req.method != "PUT" or inc.get("type") not in ("incident", "incident_reference") \
                or inc.get("status") not in ("acknowledged", "resolved"):
            return self._error(400, "Invalid Input Provided", 2001, "Incident status must be acknowledged or resolved")
        if self.incidents[pd_id] == "resolved":
            return self._error(400, "Invalid Input Provided", 2001, "Incident Already Resolved")
        self.incidents[pd_id] = inc["status"]
        return 200, {"incident": {"id": pd_id, "type": "incident", "status": inc["status"]}}

    def _responder_request(self, pd_id: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        known = set((self.users or {}).values())
        requester, targets = body.get("requester_id"), body.get("responder_request_targets")
        if requester not in known:
            return self._error(400, "Invalid Input Provided", 2001, "Requester User Not Found")
        if not isinstance(body.get("message"), str) or not isinstance(targets, list) or not targets:
            return self._error(400, "Invalid Input Provided", 2001, "Message and responder request targets required")
        refs = [t.get("responder_request_target") or {} for t in targets if isinstance(t, dict)]
        bad = [r for r in refs if r.get("type") != "user_reference" or r.get("id") not in known]
        if bad or len(refs) != len(targets):
            return self._error(400, "Invalid Input Provided", 2001, "Responder Request Target Not Found")
        if self.incidents[pd_id] == "resolved":
            return self._error(400, "Invalid Input Provided", 2001, "Incident Already Resolved")
        ids = [str(r["id"]) for r in refs]
        self.responders.setdefault(pd_id, []).append((str(requester), ids))
        return 200, {"responder_request": {
            "incident": {"id": pd_id, "type": "incident_reference"},
            "requester": {"id": requester, "type": "user_reference"}, "message": body["message"],
            "responder_request_targets": [{"responder_request_target": {
                "type": "user", "id": i, "incidents_responders": [{"state": "pending"}]}} for i in ids]}}

    def calls(self, method: str | None = None) -> list[PDRequest]:
        return [r for r in self.requests if method is None or r.method == method]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
