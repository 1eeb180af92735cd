"""Run the real app under uvicorn on loopback, in a thread (used by the demo and the tests)."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
import uvicorn

from bot.app import create_app
from bot.settings import Settings

__all__ = ["LiveServer"]


class LiveServer:
    """``with LiveServer(settings) as srv: srv.url`` serves the real ASGI app on a free port."""

    def __init__(self, settings: Settings, port: int = 0) -> None:
        self.settings = settings
        self.app = create_app(settings)
        self.services = self.app.state.services
        self._config = uvicorn.Config(self.app, host="127.0.0.1", port=port, log_level="warning",
                                      lifespan="on", access_log=False)
        self._server = uvicorn.Server(self._config)
        self._thread: threading.Thread | None = None
        self.url = ""

    def start(self, wait_ready: bool = True, timeout: float = 120.0) -> LiveServer:
        self._thread = threading.Thread(target=self._server.run, name="warroom-uvicorn", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError("the server did not start")
            if time.monotonic() > deadline:
                raise TimeoutError("the server did not start in time")
            time.sleep(0.02)
        sock = self._server.servers[0].sockets[0]
        host, port = sock.getsockname()[:2]
        self.url = f"http://{host}:{port}"
        if wait_ready:  # one client, no TLS on loopback: each httpx.get would load the CA bundle (0.1 s) again
            with httpx.Client(verify=False) as http:  # noqa: S501 - plain http to 127.0.0.1
                while http.get(f"{self.url}/readyz").status_code != 200:
                    if time.monotonic() > deadline:
                        raise TimeoutError("the server did not become ready in time")
                    time.sleep(0.05)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(15)

    def drain(self, timeout: float = 30.0, due_within_s: float | None = None) -> bool:
        """Wait for the worker pool to finish queued work (due within ``due_within_s``, when given)."""
        return bool(self.services.runner.drain(timeout, due_within_s))

    def __enter__(self) -> LiveServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
