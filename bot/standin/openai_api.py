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

    def __init__(self, reply: Callable[[dict[str, Any]], Reply] | None = None, *, models: list[str] | None = None,
                 api_key: str | None = None, reasoning: bool = False) -> None:
        """``models``: what ``GET /models`` lists, and a chat with another model answers 404 ``model_not_found``
        as OpenAI does (None: no listing, 404, as some servers; any model answers). ``api_key``: another bearer
        token answers 401 ``invalid_api_key``. ``reasoning``: as OpenAI's o1/o3/gpt-5, a request with ``max_tokens``
        or a temperature other than 1 answers 400, naming the parameter."""
        self.reply = reply or (lambda body: Reply())
        self.calls: list[dict[str, Any]] = []
        self.models, self.api_key, self.reasoning = models, api_key, reasoning
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                return None

            def _send(self, status: int, obj: dict[str, Any]) -> None:
                data = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _refused(self) -> bool:
                if stand_in.api_key is None or self.headers.get("authorization") == f"Bearer {stand_in.api_key}":
                    return False
                self._send(401, {"error": {"message": "Incorrect API key provided", "type": "invalid_request_error",
                                           "code": "invalid_api_key"}})
                return True

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                stand_in.calls.append({"path": self.path, "body": None, "auth": self.headers.get("authorization")})
                if self._refused():
                    return
                if not self.path.rstrip("/").endswith("/models") or stand_in.models is None:
                    self._send(404, {"error": {"message": "not found", "type": "invalid_request_error"}})
                    return
                self._send(200, {"object": "list", "data": [{"id": m, "object": "model", "created": 0,
                                                             "owned_by": "stand-in"} for m in stand_in.models]})

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                raw = self.rfile.read(int(self.headers.get("content-length") or 0))
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    body = {}
                stand_in.calls.append({"path": self.path, "body": body, "auth": self.headers.get("authorization")})
                if self._refused():
                    return
                if stand_in.models is not None and body.get("model") not in {
                        *stand_in.models, *(m.split(":")[0] for m in stand_in.models)}:  # Ollama: llama3 = :latest
                    self._send(404, {"error": {"message": f"The model `{body.get('model')}` does not exist or you "
                                                          "do not have access to it.", "type": "invalid_request_error",
                                               "code": "model_not_found"}})
                    return
                if stand_in.reasoning and "max_tokens" in body:
                    self._send(400, {"error": {"message": "Unsupported parameter: 'max_tokens' is not supported with "
                                                          "this model. Use 'max_completion_tokens' instead.",
                                               "type": "invalid_request_error", "param": "max_tokens",
                                               "code": "unsupported_parameter"}})
                    return
                if stand_in.reasoning and body.get("temperature", 1) != 1:
                    self._send(400, {"error": {"message": f"Unsupported value: 'temperature' does not support "
                                                          f"{body['temperature']} with this model. Only the default "
                                                          "(1) value is supported.", "type": "invalid_request_error",
                                               "param": "temperature", "code": "unsupported_value"}})
                    return
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
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), name="openai-standin",
                                        daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> OpenAIStandIn:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
