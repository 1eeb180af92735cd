"""The scaled-out topology on loopback: PostgreSQL, Redis, two `warroom serve` replicas, one Celery worker.

Needs WARROOM_TEST_POSTGRES_URL and WARROOM_TEST_REDIS_URL (scripts/test.sh starts both servers).
"""

from __future__ import annotations

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
from bot.standin.server import SlackStandIn
from knowledge.db import Database
from knowledge.models import Alert, Incident, Job, WebhookInbox
from knowledge.seed import seed

PG = os.environ.get("WARROOM_TEST_POSTGRES_URL")
REDIS = os.environ.get("WARROOM_TEST_REDIS_URL")
pytestmark = pytest.mark.skipif(not (PG and REDIS), reason="needs WARROOM_TEST_POSTGRES_URL and WARROOM_TEST_REDIS_URL")
SECRET = "bench-generic-secret"
OUTAGE_S = float(os.environ.get("WARROOM_TEST_SLACK_OUTAGE_S", "15"))  # bench/faults.py runs a full minute


@pytest.fixture(scope="module")
def risk_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One trained risk model for every replica of the module, as replicas share a model volume in production
    (each fresh replica would otherwise train its own at start-up, seconds of CPU apiece on 2 cores)."""
    from models.risk_artifact import load_or_train

    d = tmp_path_factory.mktemp("models")
    load_or_train(d)  # the same training a replica does at start-up when the directory is empty
    return d


class Topology:
    def __init__(self, tmp: Path, standin: SlackStandIn, app_db_url: str | None = None,
                 model_dir: Path | None = None) -> None:
        assert PG and REDIS
        self.db = Database(PG)
        self.db.reset_postgres_schema()
        self.db.upgrade()
        with self.db.session() as s:
            seed(s)
        import redis

        redis.Redis.from_url(REDIS).flushdb()
        extra = {"WARROOM_DATABASE_URL": app_db_url or PG, "WARROOM_JOB_BACKEND": "celery", "WARROOM_REDIS_URL": REDIS,
                 "WARROOM_JOB_LEASE_S": "8", "WARROOM_CARD_UPDATE_INTERVAL_S": "0.5",
                 "WARROOM_TRIAGE_INTERVAL_S": "1", "WARROOM_SLACK_INCIDENT_CHANNEL": "C0INCIDENTS",
                 # One process per replica, as measured in bench/scaleout.py (process mode: test_service_background)
                 "WARROOM_BACKGROUND": "thread"}
        if model_dir is not None:
            extra["WARROOM_MODEL_DIR"] = str(model_dir)
        self.a = ServerProcess(tmp, standin.api_url, **extra)
        self.b = ServerProcess(tmp, standin.api_url, signing_secret=self.a.signing_secret, **extra)
        self.worker = WorkerProcess(tmp, self.a.env)
        self.standin = standin

    def start(self) -> None:
        for p in (self.worker, self.a, self.b):  # all three import at once
            p.spawn()
        try:
            self.a.wait_ready()
            self.b.wait_ready()
        except BaseException:
            self.stop()  # a failed start must not leave processes behind (they would outlive the test run)
            raise

    def stop(self) -> None:
        for p in (self.a, self.b, self.worker):
            p.stop()

    def wait_idle(self, timeout: float = 240.0) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            with self.db.session() as s:
                pending = s.scalar(select(func.count()).select_from(WebhookInbox)
                                   .where(WebhookInbox.status == "pending"))
                open_jobs = s.scalar(select(func.count()).select_from(Job).where(Job.status.in_(("queued", "running"))))
            if not pending and not open_jobs:
                return
            time.sleep(0.2)
        raise AssertionError(f"not idle after {timeout}s: {pending} inbox rows, {open_jobs} jobs open")


@pytest.fixture
def topo(tmp_path: Path, risk_model_dir: Path) -> Iterator[Topology]:
    with SlackStandIn() as standin:
        t = Topology(tmp_path, standin, model_dir=risk_model_dir)
        t.start()
        try:
            yield t
        finally:
            t.stop()


@pytest.fixture
def proxied(tmp_path: Path, risk_model_dir: Path) -> Iterator[tuple[Topology, TcpProxy]]:
    """The topology with the apps and the worker reaching PostgreSQL through a proxy the test can cut."""
    from sqlalchemy.engine import make_url

    assert PG
    url = make_url(PG)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432).start()
    with SlackStandIn() as standin:
        t = Topology(tmp_path, standin, app_db_url=url.set(port=proxy.port).render_as_string(hide_password=False),
                     model_dir=risk_model_dir)
        t.start()
        try:
            yield t, proxy
        finally:
            t.stop()
            proxy.cut()


def _occurrences(topo: Topology) -> int:
    with topo.db.session() as s:
        return int(s.scalar(select(func.coalesce(func.sum(Alert.occurrences), 0))) or 0)


def _alert(i: int) -> dict[str, Any]:
    n = i % 5
    return {"alerts": [{"name": f"Scale{n}", "service": f"svc-{n}", "fingerprint": f"scale-{n}",
                        "summary": f"svc-{n} unhappy"}]}


def test_two_replicas_and_a_worker_share_the_work(topo: Topology) -> None:
    headers = {"Authorization": f"Bearer {SECRET}"}
    codes = []
    for i in range(60):
        url = (topo.a if i % 2 else topo.b).url
        codes.append(httpx.post(f"{url}/webhooks/generic", json=_alert(i), headers=headers, timeout=10).status_code)
    assert codes == [202] * 60
    driver = SlackDriver(topo.b.url, topo.b.signing_secret)
    assert driver.command("/warroom", "status", channel="C0OPS").status_code == 200
    topo.wait_idle()
    with topo.db.session() as s:
        incidents = s.scalars(select(Incident).where(Incident.source == "generic")).all()
        occurrences = s.scalar(select(func.sum(Alert.occurrences)))
    assert len(incidents) == 5 and occurrences == 60
    cards = [c for c in topo.standin.calls_to("chat.postMessage") if c.args["channel"] == "C0INCIDENTS"]
    assert len(cards) == 5 and all(i.card_ts for i in incidents)
    assert any("I am up" in m["text"] for m in topo.standin.messages("C0OPS"))


def test_worker_killed_mid_work_jobs_complete_once(topo: Topology) -> None:
    headers = {"Authorization": f"Bearer {SECRET}"}
    topo.standin.fail("chat.postMessage", status=500, count=3)  # slow the first posts down
    for i in range(20):
        assert httpx.post(f"{topo.a.url}/webhooks/generic", json=_alert(i), headers=headers,
                          timeout=10).status_code == 202
    time.sleep(1.0)
    topo.worker.kill()
    topo.worker = WorkerProcess(topo.worker.log.parent, topo.a.env)
    topo.worker.start()
    topo.wait_idle()
    with topo.db.session() as s:
        incidents = s.scalars(select(Incident).where(Incident.source == "generic")).all()
        failed = s.scalar(select(func.count()).select_from(Job).where(Job.status == "failed"))
    assert len(incidents) == 5 and failed == 0
    cards = [c for c in topo.standin.calls_to("chat.postMessage") if c.args["channel"] == "C0INCIDENTS"]
    assert sorted(c.response["ts"] for c in cards) == sorted(i.card_ts for i in incidents)  # one card each


def test_redis_restart_loses_no_acknowledged_job(topo: Topology) -> None:
    import redis

    r = redis.Redis.from_url(REDIS)  # type: ignore[arg-type]
    driver = SlackDriver(topo.a.url, topo.a.signing_secret)
    topo.worker.stop()  # jobs pile up in Redis ...
    for i in range(5):
        assert driver.command("/warroom", "status", channel=f"C0R{i}").status_code == 200
    r.flushall()  # ... and Redis loses them (as a restart without persistence would)
    topo.worker = WorkerProcess(topo.worker.log.parent, topo.a.env)
    topo.worker.start()
    topo.wait_idle()
    for i in range(5):
        assert len(topo.standin.messages(f"C0R{i}")) == 1, json.dumps(topo.standin.messages(f"C0R{i}"))


@pytest.mark.timeout(600)
def test_postgres_down_for_10s_answers_503_then_recovers(proxied: tuple[Topology, TcpProxy]) -> None:
    topo, proxy = proxied
    headers = {"Authorization": f"Bearer {SECRET}"}
    driver = SlackDriver(topo.a.url, topo.a.signing_secret)
    accepted = 0
    for i in range(5):
        assert httpx.post(f"{topo.a.url}/webhooks/generic", json=_alert(i), headers=headers,
                          timeout=15).status_code == 202
        accepted += 1
    topo.wait_idle()
    proxy.cut()
    outage_codes: list[int] = []
    end = time.monotonic() + 10
    i = 5
    while time.monotonic() < end:
        server = topo.a if i % 2 else topo.b
        r = httpx.post(f"{server.url}/webhooks/generic", json=_alert(i), headers=headers, timeout=15)
        outage_codes.append(r.status_code)
        accepted += r.status_code == 202
        outage_codes.append(driver.command("/warroom", "status", channel="C0PGDOWN").status_code)
        i += 1
        time.sleep(0.3)
    proxy.restore()
    assert outage_codes and set(outage_codes) == {503}, outage_codes  # clean refusals, never a 500 or a hang
    deadline = time.monotonic() + 60
    while True:  # recovery: the pools reconnect on their own
        r = httpx.post(f"{topo.b.url}/webhooks/generic", json=_alert(i), headers=headers, timeout=15)
        if r.status_code == 202:
            accepted += 1
            break
        assert r.status_code == 503 and time.monotonic() < deadline, r.status_code
        time.sleep(0.5)
    for j in range(5):
        assert httpx.post(f"{topo.a.url}/webhooks/generic", json=_alert(j), headers=headers,
                          timeout=15).status_code == 202
        accepted += 1
    assert driver.command("/warroom", "status", channel="C0PGUP").status_code == 200
    topo.wait_idle()
    assert _occurrences(topo) == accepted  # every acknowledged alert is in, none twice
    assert len(topo.standin.messages("C0PGUP")) == 1 and not topo.standin.messages("C0PGDOWN")


@pytest.mark.timeout(600)
def test_slack_failing_429_and_500_delivers_afterwards_once(topo: Topology) -> None:
    headers = {"Authorization": f"Bearer {SECRET}"}
    topo.standin.outage(OUTAGE_S)
    driver = SlackDriver(topo.a.url, topo.a.signing_secret)
    for i in range(5):
        assert httpx.post(f"{topo.a.url}/webhooks/generic", json=_alert(i), headers=headers,
                          timeout=15).status_code == 202
    assert driver.command("/warroom", "status", channel="C0SLACKDOWN").status_code == 200
    time.sleep(OUTAGE_S)
    topo.wait_idle()
    failed_calls = [c for c in topo.standin.calls if c.status != 200]
    assert failed_calls, "the outage never hit a call"
    with topo.db.session() as s:
        incidents = s.scalars(select(Incident).where(Incident.source == "generic")).all()
        failed = s.scalar(select(func.count()).select_from(Job).where(Job.status == "failed"))
    cards = [c for c in topo.standin.calls_to("chat.postMessage") if c.args["channel"] == "C0INCIDENTS"]
    assert failed == 0 and len(incidents) == 5
    assert sorted(c.response["ts"] for c in cards) == sorted(i.card_ts for i in incidents)  # delivered, once each
    assert len(topo.standin.messages("C0SLACKDOWN")) == 1


@pytest.mark.timeout(600)
def test_replica_killed_mid_storm_loses_no_acknowledged_alert(topo: Topology) -> None:
    headers = {"Authorization": f"Bearer {SECRET}"}
    accepted, failed = 0, []
    for i in range(120):
        if i == 60:
            topo.a.kill()
        server = topo.a if i % 2 else topo.b
        try:
            code = httpx.post(f"{server.url}/webhooks/generic", json=_alert(i), headers=headers, timeout=15).status_code
        except httpx.HTTPError:
            code = 0
        if code == 202:
            accepted += 1
        else:
            failed.append(i)
    assert len(failed) == 30  # every delivery to the dead replica failed; none was acknowledged
    for i in failed:  # the sender retries (Alertmanager and PagerDuty do), reaching the survivor
        assert httpx.post(f"{topo.b.url}/webhooks/generic", json=_alert(i), headers=headers,
                          timeout=15).status_code == 202
        accepted += 1
    topo.wait_idle()
    assert accepted == 120 and _occurrences(topo) == 120
    with topo.db.session() as s:
        assert s.scalar(select(func.count()).select_from(Incident).where(Incident.source == "generic")) == 5
