"""Shared parts of the benchmarks: a real `warroom serve` process against the Slack stand-in."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

__all__ = ["free_port", "ServerProcess", "percentile", "load_line"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    v = sorted(values)
    return v[min(len(v) - 1, int(round(q / 100 * (len(v) - 1))))]


def load_line() -> str:
    return Path("/proc/loadavg").read_text().split()[0] if Path("/proc/loadavg").exists() else "n/a"


class ServerProcess:
    """`warroom serve` in its own process (killable), configured through the environment."""

    def __init__(self, workdir: Path, slack_api_url: str, embedder: str = "hash", **extra: str) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.signing_secret = secrets.token_hex(16)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("WARROOM_")}
        self.env.update({
            "WARROOM_MODE": "demo", "WARROOM_SLACK_BOT_TOKEN": "xoxb-bench", "WARROOM_LOG_LEVEL": "WARNING",
            "WARROOM_SLACK_SIGNING_SECRET": self.signing_secret, "WARROOM_SLACK_API_URL": slack_api_url,
            "WARROOM_DATABASE_URL": f"sqlite:///{workdir / 'warroom.db'}", "WARROOM_DATA_DIR": str(workdir),
            "WARROOM_EMBEDDER": embedder, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
            "WARROOM_WEBHOOK_SECRETS": '{"alertmanager": "bench-alertmanager-secret", "generic": "bench-generic-secret"}',
            **extra,
        })
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 180.0) -> float:
        """Start and wait for /readyz; returns seconds from spawn to ready."""
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from bot.cli import main; main()", "serve", "--port", str(self.port)],
            env=self.env, stdout=subprocess.DEVNULL, stderr=open(self.workdir / "server.log", "ab"))  # noqa: SIM115
        while time.perf_counter() - t0 < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: see {self.workdir / 'server.log'}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return time.perf_counter() - t0
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise TimeoutError("server not ready")

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
