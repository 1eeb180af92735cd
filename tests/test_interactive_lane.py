"""A person's command is answered before a backlog of background work that was queued ahead of it (an alert storm's
cards and triage): the first worker thread takes the jobs people wait for first. With the lane off (the baseline),
the same command waits for the whole backlog, first in, first out. Ordering is asserted, not timing."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from bot.standin.openai_api import OpenAIStandIn, Reply
from tests.conftest import live_with

SLOW_S, BACKLOG = 0.2, 16


@pytest.mark.parametrize("lane", [True, False])
def test_a_command_overtakes_the_backlog(tmp_path: Path, standin: Any, lane: bool) -> None:
    with live_with(tmp_path, standin, warm_models=False, workers=2, interactive_lane=lane) as live:
        done: list[float] = []
        lock = threading.Lock()

        def slow(payload: dict[str, Any]) -> None:  # background work: a card refresh, a triage
            time.sleep(SLOW_S)
            with lock:
                done.append(time.time())

        live.services.runner.register("test.backlog", slow)
        for i in range(BACKLOG):
            live.services.runner.submit("test.backlog", {"n": i}, f"backlog-{i}")
        assert live.driver.command("/warroom", "status", user="U0BOB", channel="C0OPS").status_code == 200
        live.drain()
        (answer,) = [c for c in standin.calls_to("chat.postMessage") if c.args.get("channel") == "C0OPS"]
        with lock:
            after = sum(t > answer.at for t in done)
        assert len(done) == BACKLOG
        if lane:  # answered while most of the backlog was still queued
            assert after >= BACKLOG // 2, (after, BACKLOG)
            assert "I am up." in answer.args["text"] and "job(s) in progress" in answer.args["text"]
            assert "(the oldest waiting for a worker for " in answer.args["text"]  # how far behind, said
        else:  # first in, first out: the backlog went first
            assert after <= 2, (after, BACKLOG)


def test_a_second_command_does_not_wait_while_the_lane_is_busy(tmp_path: Path, standin: Any) -> None:
    """The lane thread is held by a question whose LLM answer takes seconds; a second person's command then goes
    to the next free thread ahead of the backlog, not behind it."""
    with OpenAIStandIn(lambda body: Reply("Lower the pool size [1].", delay_s=3.0)) as llm, \
            live_with(tmp_path, standin, warm_models=False, workers=3, llm_base_url=llm.url,
                      llm_api_key="sk-test-key", llm_model="fake", llm_timeout_s=20.0) as live:
        done: list[float] = []
        lock = threading.Lock()

        def slow(payload: dict[str, Any]) -> None:
            time.sleep(SLOW_S)
            with lock:
                done.append(time.time())

        live.services.runner.register("test.backlog", slow)
        assert live.driver.mention("have we seen remaining connection slots are reserved before?",
                                   channel="C0GENERAL").status_code == 200
        deadline = time.monotonic() + 30
        while not llm.calls and time.monotonic() < deadline:  # the lane thread is waiting on the LLM
            time.sleep(0.02)
        assert llm.calls
        for i in range(BACKLOG):
            live.services.runner.submit("test.backlog", {"n": i}, f"backlog-{i}")
        assert live.driver.command("/warroom", "status", user="U0BOB", channel="C0OPS").status_code == 200
        live.drain()
        (answer,) = [c for c in standin.calls_to("chat.postMessage") if c.args.get("channel") == "C0OPS"]
        question = [c for c in standin.calls_to("chat.postMessage") if c.args.get("channel") == "C0GENERAL"]
        with lock:
            after = sum(t > answer.at for t in done)
        assert len(done) == BACKLOG
        assert after >= BACKLOG // 2, (after, BACKLOG)  # the command went ahead of most of the backlog
        assert question and answer.at < question[-1].at  # ... and did not wait for the slow answer either
