"""The scaled-out topology on loopback: PostgreSQL, Redis, two `warroom serve` replicas, one Celery worker.

Needs WARROOM_TEST_POSTGRES_URL and WARROOM_TEST_REDIS_URL (scripts/test.sh starts both servers).

One topology serves the whole module, as one deployment lives through many faults: starting two replicas and a
worker costs about 13 s on 2 cores, and each test used to pay it. Each test sends alerts of its own (their
fingerprints, names and services carry the test's tag), so what earlier tests left in the database is history the
bot must live with, not something a test counts. A test that kills a process leaves it dead; the next test's
fixture starts whatever is down again and waits for it, so any test may run alone or in any order.
"""

from __future__ import annotations

import itertools
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from bot.standin.driver import SlackDriver
from bot.standin.procs import ServerProcess, TcpProxy, WorkerProcess
from bot.standin.server import Call, SlackStandIn
from knowledge.db import Database
from knowledge.models import Alert, Incident, Job, WebhookInbox
from knowledge.seed import seed

PG = os.environ.get("WARROOM_TEST_POSTGRES_URL")
REDIS = os.environ.get("WARROOM_TEST_REDIS_URL")
pytestmark = pytest.mark.skipif(not (PG and REDIS), reason="needs WARROOM_TEST_POSTGRES_URL and WARROOM_TEST_REDIS_URL")
SECRET = "bench-generic-secret"
HEADERS = {"Authorization": f"Bearer {SECRET}"}
OUTAGE_S = float(os.environ.get("WARROOM_TEST_SLACK_OUTAGE_S", "15"))  # bench/faults.py runs a full minute
_TAGS = itertools.count(1)


class Topology:
    """Two replicas and a worker; the replicas and the worker reach PostgreSQL through a proxy a test can cut."""

    def __init__(self, tmp: Path, standin: SlackStandIn, model_dir: Path) -> None:
        from sqlalchemy.engine import make_url

        assert PG and REDIS
        self.db = Database(PG)
        self.db.reset_postgres_schema()
        self.db.upgrade()
        with self.db.session() as s:
            seed(s)
        import redis

        redis.Redis.from_url(REDIS).flushdb()
        url = make_url(PG)
        self.proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432).start()
        extra = {"WARROOM_DATABASE_URL": url.set(port=self.proxy.port).render_as_string(hide_password=False),
                 "WARROOM_JOB_BACKEND": "celery", "WARROOM_REDIS_URL": REDIS,
                 "WARROOM_JOB_LEASE_S": "8", "WARROOM_CARD_UPDATE_INTERVAL_S": "0.5",
                 "WARROOM_TRIAGE_INTERVAL_S": "1", "WARROOM_SLACK_INCIDENT_CHANNEL": "C0INCIDENTS",
                 # One process per replica, as measured in bench/scaleout.py (process mode: test_service_background)
                 "WARROOM_BACKGROUND": "thread", "WARROOM_MODEL_DIR": str(model_dir)}
        self.tmp = tmp
        self.a = ServerProcess(tmp, standin.api_url, **extra)
        self.b = ServerProcess(tmp, standin.api_url, signing_secret=self.a.signing_secret, **extra)
        self.worker = WorkerProcess(tmp, self.a.env)
        self.standin = standin
        self.tag = ""
        self.first_job = 0

    def _down(self) -> list[Any]:
        return [p for p in (self.worker, self.a, self.b) if p.proc is None or p.proc.poll() is not None]

    def ensure_up(self) -> None:
        """Start whatever is not running (all of it at first; a process an earlier test killed later)."""
        down = self._down()
        if self.worker in down:
            self.worker = WorkerProcess(self.tmp, self.a.env)
        for p in self._down():  # started together: they import at once
            p.spawn()
        try:
            for server in (self.a, self.b):
                if server in down:
                    server.wait_ready()
        except BaseException:
            self.stop()  # a failed start must not leave processes behind (they would outlive the test run)
            raise

    def stop(self) -> None:
        for p in (self.a, self.b, self.worker):
            p.stop()
        self.proxy.cut()

    def wait_idle(self, timeout: float = 240.0, inbox_only: bool = False) -> None:
        """Wait until every acknowledged alert is taken in and (unless ``inbox_only``) every job is done."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            with self.db.session() as s:
                pending = s.scalar(select(func.count()).select_from(WebhookInbox)
                                   .where(WebhookInbox.status == "pending"))
                open_jobs = 0 if inbox_only else s.scalar(
                    select(func.count()).select_from(Job).where(Job.status.in_(("queued", "running"))))
            if not pending and not open_jobs:
                return
            time.sleep(0.2)
        raise AssertionError(f"not idle after {timeout}s: {pending} inbox rows, {open_jobs} jobs open")

    # --- this test's alerts, incidents and cards ---------------------------------------------------------------
    def alert(self, i: int) -> dict[str, Any]:
        n = i % 5
        return {"alerts": [{"name": f"{self.tag}Scale{n}", "service": f"{self.tag.lower()}-svc-{n}",
                            "fingerprint": f"{self.tag}-scale-{n}", "summary": f"svc-{n} unhappy"}]}

    def post(self, server: ServerProcess, i: int, timeout: float = 15) -> int:
        return httpx.post(f"{server.url}/webhooks/generic", json=self.alert(i), headers=HEADERS,
                          timeout=timeout).status_code

    def incidents(self) -> list[Incident]:
        with self.db.session() as s:
            return list(s.scalars(select(Incident).where(Incident.id.in_(
                select(Alert.incident_id).where(Alert.fingerprint.startswith(f"{self.tag}-scale-"))))).all())

    def occurrences(self) -> int:
        with self.db.session() as s:
            return int(s.scalar(select(func.coalesce(func.sum(Alert.occurrences), 0))
                                .where(Alert.fingerprint.startswith(f"{self.tag}-scale-"))) or 0)

    def cards(self) -> list[Call]:
        """This test's incident cards: the posts to the incident channel naming one of its alerts."""
        return [c for c in self.standin.calls_to("chat.postMessage")
                if c.args["channel"] == "C0INCIDENTS" and f"{self.tag}Scale" in json.dumps(c.args)]

    def failed_jobs(self) -> int:
        """Jobs of this test (made after it began) that failed for good."""
        with self.db.session() as s:
            return int(s.scalar(select(func.count()).select_from(Job)
                                .where(Job.status == "failed", Job.id > self.first_job)) or 0)


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
    from models.risk_artifact import load_or_train

    # One trained risk model for both replicas, as replicas share a model volume in production (a fresh replica
    # would otherwise train its own at start-up, seconds of CPU apiece on 2 cores).
    model_dir = tmp_path_factory.mktemp("models")
    load_or_train(model_dir)  # the same training a replica does at start-up when the directory is empty
    with SlackStandIn() as standin:
        t = Topology(tmp_path_factory.mktemp("scaleout"), standin, model_dir)
        try:
            yield t
        finally:
            t.stop()


@pytest.fixture
def topo(deployment: Topology) -> Topology:
    deployment.proxy.restore()
    deployment.ensure_up()
    deployment.standin.reset()
    deployment.tag = f"T{next(_TAGS)}"
    with deployment.db.session() as s:
        deployment.first_job = int(s.scalar(select(func.coalesce(func.max(Job.id), 0))) or 0)
    return deployment


def test_two_replicas_and_a_worker_share_the_work(topo: Topology) -> None:
    codes = [topo.post(topo.a if i % 2 else topo.b, i, timeout=10) for i in range(60)]
    assert codes == [202] * 60
    driver = SlackDriver(topo.b.url, topo.b.signing_secret)
    ops = f"C0{topo.tag}OPS"
    assert driver.command("/warroom", "status", channel=ops).status_code == 200
    topo.wait_idle()
    incidents = topo.incidents()
    assert len(incidents) == 5 and topo.occurrences() == 60
    assert len(topo.cards()) == 5 and all(i.card_ts for i in incidents)
    assert any("I am up" in m["text"] for m in topo.standin.messages(ops))


def test_worker_killed_mid_work_jobs_complete_once(topo: Topology) -> None:
    topo.standin.fail("chat.postMessage", status=500, count=3)  # slow the first posts down
    for i in range(20):
        assert topo.post(topo.a, i, timeout=10) == 202
    time.sleep(1.0)
    topo.worker.kill()
    topo.worker = WorkerProcess(topo.tmp, topo.a.env)
    topo.worker.start()
    topo.wait_idle()
    incidents = topo.incidents()
    assert len(incidents) == 5 and topo.failed_jobs() == 0
    assert sorted(c.response["ts"] for c in topo.cards()) == sorted(i.card_ts for i in incidents)  # one card each


def test_redis_restart_loses_no_acknowledged_job(topo: Topology) -> None:
    import redis

    r = redis.Redis.from_url(REDIS)  # type: ignore[arg-type]
    driver = SlackDriver(topo.a.url, topo.a.signing_secret)
    channels = [f"C0{topo.tag}R{i}" for i in range(5)]
    topo.worker.stop()  # jobs pile up in Redis ...
    for channel in channels:
        assert driver.command("/warroom", "status", channel=channel).status_code == 200
    resent_before = _resent_lost(topo)
    r.flushall()  # ... and Redis loses them (as a restart without persistence would)
    topo.worker = WorkerProcess(topo.tmp, topo.a.env)
    topo.worker.start()
    topo.wait_idle()
    for channel in channels:
        assert len(topo.standin.messages(channel)) == 1, json.dumps(topo.standin.messages(channel))
        # and the status each of them asked for says that jobs had to be sent again (it was one of them)
        assert "job(s) sent to the job broker again" in json.dumps(topo.standin.messages(channel))
    # The two replicas' sweepers sent the 5 lost jobs again once in all (each takes its resends in the database),
    # and their metrics say so
    assert _resent_lost(topo) - resent_before == 5


def _resent_lost(topo: Topology) -> float:
    """warroom_jobs_resent_total{reason="lost"} summed over both replicas' /metrics."""
    from prometheus_client.parser import text_string_to_metric_families

    total = 0.0
    for server in (topo.a, topo.b):
        text = httpx.get(f"{server.url}/metrics", timeout=10).text
        total += sum(sample.value for family in text_string_to_metric_families(text) for sample in family.samples
                     if sample.name == "warroom_jobs_resent_total" and sample.labels.get("reason") == "lost")
    return total


@pytest.mark.timeout(600)
def test_postgres_down_for_10s_answers_503_then_recovers(topo: Topology) -> None:
    driver = SlackDriver(topo.a.url, topo.a.signing_secret)
    down, up = f"C0{topo.tag}PGDOWN", f"C0{topo.tag}PGUP"
    accepted = 0
    for i in range(5):
        assert topo.post(topo.a, i) == 202
        accepted += 1
    topo.wait_idle()
    topo.proxy.cut()
    outage_codes: list[int] = []
    end = time.monotonic() + 10
    i = 5
    while time.monotonic() < end:
        code = topo.post(topo.a if i % 2 else topo.b, i)
        outage_codes.append(code)
        accepted += code == 202
        outage_codes.append(driver.command("/warroom", "status", channel=down).status_code)
        i += 1
        time.sleep(0.3)
    topo.proxy.restore()
    assert outage_codes and set(outage_codes) == {503}, outage_codes  # clean refusals, never a 500 or a hang
    deadline = time.monotonic() + 60
    while True:  # recovery: the pools reconnect on their own
        code = topo.post(topo.b, i)
        if code == 202:
            accepted += 1
            break
        assert code == 503 and time.monotonic() < deadline, code
        time.sleep(0.5)
    for j in range(5):
        assert topo.post(topo.a, j) == 202
        accepted += 1
    assert driver.command("/warroom", "status", channel=up).status_code == 200
    topo.wait_idle()
    assert topo.occurrences() == accepted  # every acknowledged alert is in, none twice
    assert len(topo.standin.messages(up)) == 1 and not topo.standin.messages(down)


@pytest.mark.timeout(600)
def test_slack_failing_429_and_500_delivers_afterwards_once(topo: Topology) -> None:
    topo.standin.outage(OUTAGE_S)
    driver = SlackDriver(topo.a.url, topo.a.signing_secret)
    channel = f"C0{topo.tag}SLACKDOWN"
    for i in range(5):
        assert topo.post(topo.a, i) == 202
    assert driver.command("/warroom", "status", channel=channel).status_code == 200
    time.sleep(OUTAGE_S)
    topo.wait_idle()
    assert [c for c in topo.standin.calls if c.status != 200], "the outage never hit a call"
    incidents = topo.incidents()
    assert topo.failed_jobs() == 0 and len(incidents) == 5
    assert sorted(c.response["ts"] for c in topo.cards()) == sorted(i.card_ts for i in incidents)  # once each
    assert len(topo.standin.messages(channel)) == 1


@pytest.mark.timeout(600)
def test_replica_killed_mid_storm_loses_no_acknowledged_alert(topo: Topology) -> None:
    accepted, failed = 0, []
    for i in range(120):
        if i == 60:
            topo.a.kill()
        try:
            code = topo.post(topo.a if i % 2 else topo.b, i)
        except httpx.HTTPError:
            code = 0
        if code == 202:
            accepted += 1
        else:
            failed.append(i)
    assert len(failed) == 30  # every delivery to the dead replica failed; none was acknowledged
    for i in failed:  # the sender retries (Alertmanager and PagerDuty do), reaching the survivor
        assert topo.post(topo.b, i) == 202
        accepted += 1
    topo.wait_idle(inbox_only=True)  # the survivor took in every alert it acknowledged ...
    topo.b.kill()  # ... and then the last replica is gone too (a rollout, a node lost): no replica sweeps the queue
    topo.wait_idle(timeout=60)  # the worker alone finishes the work, and the jobs that work queued
    assert accepted == 120 and topo.occurrences() == 120
    assert len(topo.incidents()) == 5 and topo.failed_jobs() == 0
    assert len(topo.cards()) == 5
