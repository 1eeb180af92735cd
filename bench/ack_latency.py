"""Issue 2: acknowledgement latency of signed slash commands, and cold start to ready.

50 concurrent signed `/warroom status` commands (several rounds) against `warroom serve` on loopback,
next to the same load against a bare Starlette handler served by uvicorn in the same run.
Prints one JSON object.  Run: `python bench/ack_latency.py [--rounds 20] [--real-model]`
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.parse
from pathlib import Path

import httpx
from slack_sdk.signature import SignatureVerifier

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._harness import ServerProcess, free_port, load_line, percentile  # noqa: E402
from bot.standin.server import SlackStandIn  # noqa: E402

BARE = textwrap.dedent("""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route
    async def ok(request):
        await request.body()
        return Response(b"", status_code=200)
    app = Starlette(routes=[Route("/slack/events", ok, methods=["POST"]), Route("/readyz", ok)])
    uvicorn.run(app, host="127.0.0.1", port={port}, log_level="warning", access_log=False)
""")


async def _burst(url: str, secret: str, concurrency: int, rounds: int) -> list[float]:
    """Rounds of `concurrency` simultaneous signed commands; aiohttp, because httpx's own overhead under
    50-way concurrency (hundreds of ms on 2 cores) would be measured instead of the server."""
    import aiohttp

    verifier = SignatureVerifier(secret)
    lat: list[float] = []
    conn = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=conn, timeout=aiohttp.ClientTimeout(total=10)) as client:
        async def one(i: int) -> None:
            body = urllib.parse.urlencode({"command": "/warroom", "text": "status", "user_id": "U0BENCH",
                                           "channel_id": "C0BENCH", "trigger_id": f"t{time.time_ns()}{i}",
                                           "team_id": "T0", "response_url": "http://127.0.0.1:9/r"})
            ts = str(int(time.time()))
            headers = {"X-Slack-Request-Timestamp": ts, "Content-Type": "application/x-www-form-urlencoded",
                       "X-Slack-Signature": verifier.generate_signature(timestamp=ts, body=body)}
            t0 = time.perf_counter()
            async with client.post(url + "/slack/events", data=body.encode(), headers=headers) as r:
                await r.read()
                status = r.status
            lat.append((time.perf_counter() - t0) * 1000)
            assert status == 200, status
        for _ in range(2):  # warm-up (and the connections opened)
            await asyncio.gather(*(one(i) for i in range(concurrency)))
        lat.clear()
        for _ in range(rounds):
            await asyncio.gather(*(one(i) for i in range(concurrency)))
    return lat


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--concurrency", type=int, default=50)
    ap.add_argument("--real-model", action="store_true", help="cold start with the bundled MiniLM")
    ap.add_argument("--background", choices=("thread", "process"), default="thread",
                    help="WARROOM_BACKGROUND of the server (the recorded figures: thread)")
    args = ap.parse_args()
    out: dict[str, object] = {"concurrency": args.concurrency, "requests": args.rounds * args.concurrency,
                              "load_before": load_line()}
    with tempfile.TemporaryDirectory() as tmp, SlackStandIn() as standin:
        srv = ServerProcess(Path(tmp), standin.api_url, WARROOM_EMBEDDER="minilm" if args.real_model else "hash",
                            WARROOM_BACKGROUND=args.background)
        out["cold_start_to_ready_s"] = round(srv.start(), 2)
        out["embedder"] = "minilm" if args.real_model else "hash"
        try:
            lat = asyncio.run(_burst(srv.url, srv.signing_secret, args.concurrency, args.rounds))
        finally:
            srv.stop()
        out["warroom_ack_ms"] = {"p50": round(percentile(lat, 50), 2), "p99": round(percentile(lat, 99), 2),
                                 "max": round(max(lat), 2)}
    port = free_port()
    bare = subprocess.Popen([sys.executable, "-c", BARE.format(port=port)])
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.05)
        lat = asyncio.run(_burst(url, "x", args.concurrency, args.rounds))
    finally:
        bare.terminate()
        bare.wait()
    out["baseline_bare_starlette_ms"] = {"p50": round(percentile(lat, 50), 2), "p99": round(percentile(lat, 99), 2),
                                         "max": round(max(lat), 2)}
    out["goal_p99_ms"] = 100
    out["load_after"] = load_line()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
