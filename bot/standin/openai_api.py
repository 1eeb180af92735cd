"""A local OpenAI-compatible stand-in: ``POST /v1/chat/completions`` on loopback, for tests, benches and the demo.

The product reaches it through the real ``openai`` / langchain clients (``WARROOM_LLM_BASE_URL`` = its ``url``).
What it answers is decided per request by ``reply(body) -> Reply``: a completion with some content, an error
status (a 429 with ``retry-after: 0``), raw bytes (malformed output), each after an optional delay."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["OpenAIStandIn", "Reply"]


@dataclass
class Reply:
    """One answer: ``content`` as the assistant message (status 200), or an error ``status`` with an OpenAI-shaped
    error body, or ``raw`` bytes sent as they are; after ``delay_s`` seconds."""

    content: str | None = "OK."
    status: int = 200
    delay_s: float = 0.0
    raw: bytes | None = None
    finish_reason: str = "stop"  # "length": cut at max_tokens; "content_filter": withheld by the provider
    refusal: str | None = None  # a refusal message instead of content (content None), as OpenAI sends it


class OpenAIStandIn:
    """``with OpenAIStandIn(reply) as llm: llm.url``; ``llm.calls`` holds every request (path, JSON body, the
    Authorization header) in arrival order."""

    def __init__(self, reply: Callable[[dict[str, Any]], Reply] | None = None) -> None:
        self.reply = reply or (lambda body: Reply())
        self.calls: list[dict[str, Any]] = []
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                return None

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                raw = self.rfile.read(int(self.headers.get("content-length") or 0))
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    body = {}
                stand_in.calls.append({"path": self.path, "body": body, "auth": self.headers.get("authorization")})
                answer = stand_in.reply(body)
                if answer.delay_s:
                    time.sleep(answer.delay_s)
                if answer.raw is not None:
                    data = answer.raw
                elif answer.status != 200:
                    data = json.dumps({"error": {"message": "stand-in error", "type": "rate_limit"
                                                 if answer.status == 429 else "server_error"}}).encode()
                else:
                    data = json.dumps({
                        "id": "chatcmpl-1", "object": "chat.completion", "created": int(time.time()),
                        "model": body.get("model", "fake"),
                        "choices": [{"index": 0, "finish_reason": answer.finish_reason,
                                     "message": {"role": "assistant", "content": answer.content,
                                                 "refusal": answer.refusal}}],
                        "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20},
                    }).encode()
                try:
                    self.send_response(answer.status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(data)))
                    if answer.status == 429:
                        self.send_header("retry-after", "0")
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up waiting (its timeout)
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self._thread = threading.Thread(target=self.server.serve_forever, name="openai-standin", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> OpenAIStandIn:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
