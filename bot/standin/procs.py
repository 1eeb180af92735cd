"""`warroom serve` and `warroom worker` as real processes (killable), for scale-out tests and benchmarks."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

__all__ = ["free_port", "ServerProcess", "WorkerProcess", "TcpProxy", "base_env"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def base_env(workdir: Path, slack_api_url: str, signing_secret: str, **extra: str) -> dict[str, str]:
    """Environment for a warroom process (demo mode, SQLite under ``workdir`` unless overridden)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WARROOM_") or k.startswith("WARROOM_TEST_")}
    env.update({
        "WARROOM_MODE": "demo", "WARROOM_SLACK_BOT_TOKEN": "xoxb-bench", "WARROOM_LOG_LEVEL": "WARNING",
        "WARROOM_SLACK_SIGNING_SECRET": signing_secret, "WARROOM_SLACK_API_URL": slack_api_url,
        "WARROOM_DATABASE_URL": f"sqlite:///{workdir / 'warroom.db'}", "WARROOM_DATA_DIR": str(workdir),
        "WARROOM_EMBEDDER": "hash", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
        "WARROOM_WEBHOOK_SECRETS": '{"alertmanager": "bench-alertmanager-secret", "generic": "bench-generic-secret"}',
    })
    env.update(extra)
    return env


class _Proc:
    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.args, self.env, self.log = args, env, log
        self.proc: subprocess.Popen[bytes] | None = None
        self.spawned_at = 0.0

    def spawn(self) -> None:
        self.spawned_at = time.perf_counter()
        self.proc = subprocess.Popen([sys.executable, "-c", "from bot.cli import main; main()", *self.args],
                                     env=self.env, stdout=subprocess.DEVNULL,
                                     stderr=open(self.log, "ab"))  # noqa: SIM115 - closed with the process

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()


class ServerProcess(_Proc):
    """`warroom serve` on a free loopback port."""

    def __init__(self, workdir: Path, slack_api_url: str, signing_secret: str | None = None, **extra: str) -> None:
        self.port = free_port()
        self.signing_secret = signing_secret or secrets.token_hex(16)
        self.url = f"http://127.0.0.1:{self.port}"
        super().__init__(["serve", "--port", str(self.port)],
                         base_env(workdir, slack_api_url, self.signing_secret, **extra),
                         workdir / f"server-{self.port}.log")

    def start(self, timeout: float = 180.0) -> float:
        """Start and wait for /readyz; returns seconds from spawn to ready."""
        self.spawn()
        return self.wait_ready(timeout)

    def wait_ready(self, timeout: float = 180.0) -> float:
        """Wait for /readyz of a spawned server; returns seconds since it was spawned."""
        t0 = self.spawned_at
        assert self.proc is not None
        while time.perf_counter() - t0 < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: see {self.log}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return time.perf_counter() - t0
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise TimeoutError(f"server not ready: see {self.log}")


class WorkerProcess(_Proc):
    """`warroom worker` (Celery) with the same environment as the servers."""

    def __init__(self, workdir: Path, env: dict[str, str], concurrency: int = 2) -> None:
        super().__init__(["worker", f"--concurrency={concurrency}"], env, workdir / f"worker-{time.time_ns()}.log")

    def start(self) -> None:
        self.spawn()


class TcpProxy:
    """A loopback TCP proxy that can cut every connection and refuse new ones (a database outage)."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self._lock = threading.Lock()
        self._conns: list[socket.socket] = []
        self._listener: socket.socket | None = None

    def start(self) -> TcpProxy:
        ls = socket.socket()
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind(("127.0.0.1", self.port))
        ls.listen(128)
        self._listener = ls
        threading.Thread(target=self._accept, args=(ls,), daemon=True).start()
        return self

    def _accept(self, ls: socket.socket) -> None:
        while True:
            try:
                client, _ = ls.accept()
            except OSError:
                return  # the listener was closed: an outage
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        """Close the listener and every open connection: clients see resets, then refused connections."""
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread (close alone does not)
            self._listener.close()
            self._listener = None
        with self._lock:
            conns, self._conns = self._conns, []
        for c in conns:
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)
            c.close()

    def restore(self) -> None:
        """Accept connections again (nothing to do when the proxy is not cut)."""
        if self._listener is None:
            self.start()
