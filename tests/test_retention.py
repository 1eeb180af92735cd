"""Retention of raw webhook bodies: a processed delivery's body (unmasked, as sent) is emptied after
``WARROOM_INBOX_RETENTION_DAYS``, by the bot's own 6-hourly job and by `warroom db prune`; the row, the alerts and
incidents it made, and its delivery id (a late redelivery is still a duplicate) stay."""

from __future__ import annotations

import copy
import datetime as dt
import json
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from bot.cli import app
from bot.inbox_spool import backlog
from bot.maintenance import EVERY_S, PRUNE
from knowledge.models import Alert, Job, WebhookInbox, utcnow
from tests.conftest import Live, live_with
from tests.test_intake_webhooks import load, pd_event, post


def _alert(name: str, password: str) -> dict[str, Any]:
    p = copy.deepcopy(load("alertmanager"))
    for a in p["alerts"]:
        a["labels"]["alertname"] = name
        a["annotations"]["description"] = f"connect failed with password={password}"
    p["groupKey"] = f'{{}}:{{alertname="{name}"}}'
    return p


def _processed(live: Live) -> None:
    """The deliveries processed and the jobs due now done (the next retention run, 6 hours ahead, does not count)."""
    deadline = time.time() + 30
    while backlog(live.db, live.services.spool) and time.time() < deadline:
        live.services.intake.notify()
        time.sleep(0.05)
    live.drain(due_within_s=60)


def test_old_bodies_are_emptied_and_nothing_else(tmp_path: Path, standin: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    with live_with(tmp_path, standin, warm_models=False, inbox_retention_runs=True, inbox_retention_days=30) as live:
        srv, db, settings = live.server, live.db, live.services.settings
        with db.session() as s:  # the start planned one run now and, from it, the next slot's
            planned = s.scalars(select(Job).where(Job.kind == PRUNE)).all()
            assert all(j.dedup_key and j.dedup_key.startswith(f"{PRUNE}:") for j in planned) and planned
        for body in (_alert("OldDiskFull", "hunter2"), _alert("NewDiskFull", "swordfish")):
            assert post(live, "alertmanager", body).status_code == 202
        event = pd_event("incident.triggered", 1, id="PRET001", title="billing-worker stuck")
        assert post(live, "pagerduty", event, auth="pagerduty").status_code == 202
        _processed(live)
        with db.session() as s:
            rows = s.scalars(select(WebhookInbox).order_by(WebhookInbox.id)).all()
            assert [r.status for r in rows] == ["processed"] * 3 and "OldDiskFull" in rows[0].body
            assert "hunter2" not in rows[0].body and "[REDACTED]" in rows[0].body  # masked once processed
            json.loads(rows[0].body)  # and still the JSON it was
            old_ids = [rows[0].id, rows[2].id]
            for r in rows:  # the first delivery and the PagerDuty event were processed 31 days ago
                if r.id in old_ids:
                    r.processed_at = utcnow() - dt.timedelta(days=31)
            assert "hunter2" not in " ".join(a.annotations.get("description", "") for a in s.scalars(select(Alert)))
        assert standin.messages() and "hunter2" not in repr(standin.messages())  # nor on the card: masked at intake

        srv.services.runner.submit(PRUNE, {}, "test-run")  # what the planned run does when its slot comes
        live.drain(due_within_s=60)
        with db.session() as s:
            rows = s.scalars(select(WebhookInbox).order_by(WebhookInbox.id)).all()
            assert [r.body == "" for r in rows] == [True, False, True]
            assert [r.status for r in rows] == ["processed"] * 3 and "NewDiskFull" in rows[1].body
            assert s.scalars(select(Alert).where(Alert.name == "OldDiskFull")).first() is not None  # kept
            nxt = s.scalars(select(Job).where(Job.kind == PRUNE, Job.status == "queued")).all()
            assert len(nxt) == 1 and (nxt[0].run_after - utcnow()).total_seconds() > EVERY_S - 120
        again = post(live, "pagerduty", event, auth="pagerduty")  # PagerDuty redelivers, late
        assert again.status_code == 200 and again.json()["status"] == "duplicate"

    # `warroom db prune --days 1` does the same at once, in the terminal
    for k, v in {"WARROOM_MODE": "test", "WARROOM_DATABASE_URL": settings.database_url,
                 "WARROOM_DATA_DIR": str(tmp_path), "WARROOM_EMBEDDER": "hash"}.items():
        monkeypatch.setenv(k, v)
    with db.session() as s:
        s.get(WebhookInbox, rows[1].id).processed_at = utcnow() - dt.timedelta(days=2)  # type: ignore[union-attr]
    res = CliRunner().invoke(app, ["db", "prune", "--days", "1"])
    assert res.exit_code == 0, res.output
    assert "emptied the bodies of 1 webhook deliveries processed over 1 days ago; deleted 0 job(s)" in res.output
    with db.session() as s:
        assert all(r.body == "" for r in s.scalars(select(WebhookInbox)))
    assert CliRunner().invoke(app, ["db", "prune", "--days", "0"]).exit_code != 0  # out of range: refused


def test_finished_jobs_are_deleted_and_work_in_hand_is_not(tmp_path: Path, standin: Any,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Done jobs go after WARROOM_JOB_RETENTION_DAYS, failed ones (the evidence) after
    WARROOM_FAILED_JOB_RETENTION_DAYS; queued ones, however old, stay, as does what the jobs did."""
    from knowledge.models import Incident

    with live_with(tmp_path, standin, warm_models=False, job_retention_days=7, failed_job_retention_days=30) as live:
        db = live.db
        assert post(live, "alertmanager", _alert("QueueDepthHigh", "hunter2")).status_code == 202
        _processed(live)
        old = utcnow() - dt.timedelta(days=8)
        with db.session() as s:
            done = [j.id for j in s.scalars(select(Job).where(Job.status == "done"))]
            assert len(done) >= 2  # the alert's processing and its card at least
            for j in s.scalars(select(Job).where(Job.id.in_(done[1:]))):
                j.finished_at = old  # the first stays recent
            s.add_all([
                Job(kind="incident.card", status="failed", payload={}, finished_at=old, last_error="x"),  # kept
                Job(kind="incident.card", status="failed", payload={}, last_error="gone",
                    finished_at=utcnow() - dt.timedelta(days=31)),
                Job(kind="incident.card", status="queued", payload={}, created_at=old,  # planned long ago: kept
                    run_after=utcnow() + dt.timedelta(days=1), dedup_key="planned-old"),
            ])
        live.services.runner.submit(PRUNE, {}, "jobs-run")
        live.drain(due_within_s=60)
        with db.session() as s:
            left = {j.id: (j.status, j.last_error) for j in s.scalars(select(Job))}
            assert done[0] in left and not set(done[1:]) & set(left)
            assert ("failed", "x") in left.values() and ("failed", "gone") not in left.values()
            assert s.scalars(select(Job).where(Job.dedup_key == "planned-old")).one().status == "queued"
            assert s.scalars(select(Incident)).first() is not None  # what the jobs did stays

    for k, v in {"WARROOM_MODE": "test", "WARROOM_DATABASE_URL": live.services.settings.database_url,
                 "WARROOM_DATA_DIR": str(tmp_path), "WARROOM_EMBEDDER": "hash"}.items():
        monkeypatch.setenv(k, v)
    with db.session() as s:
        s.get(Job, done[0]).finished_at = utcnow() - dt.timedelta(days=2)  # type: ignore[union-attr]
    res = CliRunner().invoke(app, ["db", "prune", "--job-days", "1"])
    assert res.exit_code == 0, res.output
    assert "deleted 1 job(s) done over 1 days ago or failed over 30 days ago" in res.output  # done[0]
    with db.session() as s:
        assert s.get(Job, done[0]) is None


def test_old_risk_readings_of_no_incident_are_deleted(tmp_path: Path, standin: Any,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Every assessment (the REST batch door: up to 1,000 a call) was a row kept for ever. Readings older than
    WARROOM_RISK_READING_RETENTION_DAYS go; one that belongs to an incident (its postmortem's evidence) stays."""
    from knowledge.models import Incident, RiskReading

    with live_with(tmp_path, standin, warm_models=False, risk_reading_retention_days=90) as live:
        db = live.db
        with db.session() as s:
            inc = Incident(title="x", severity=3, status="resolved")
            s.add(inc)
            s.flush()
            for days, incident_id in ((91, None), (91, inc.id), (89, None), (200, None)):
                s.add(RiskReading(service_name="api", probability=0.5, band="MEDIUM", model_version="t",
                                  inputs={"cpu_usage": 50.0}, incident_id=incident_id,
                                  created_at=utcnow() - dt.timedelta(days=days)))
        live.services.runner.submit(PRUNE, {}, "risk-run")
        live.drain(due_within_s=60)
        with db.session() as s:
            kept = sorted((r.incident_id is not None, (utcnow() - r.created_at).days)
                          for r in s.scalars(select(RiskReading)))
        assert kept == [(False, 89), (True, 91)], kept
    for k, v in {"WARROOM_MODE": "test", "WARROOM_DATABASE_URL": live.services.settings.database_url,
                 "WARROOM_DATA_DIR": str(tmp_path), "WARROOM_EMBEDDER": "hash"}.items():
        monkeypatch.setenv(k, v)
    res = CliRunner().invoke(app, ["db", "prune", "--risk-days", "30"])
    assert res.exit_code == 0 and ", 1 risk reading(s) of no incident older than 30 days" in res.output, res.output


def test_old_changes_are_deleted_by_the_maintenance_run(tmp_path: Path, standin: Any) -> None:
    """Every deploy a pipeline reports was a row kept for ever; those older than WARROOM_CHANGE_RETENTION_DAYS go."""
    from knowledge.models import ChangeEvent

    with live_with(tmp_path, standin, warm_models=False, change_retention_days=30) as live:
        with live.db.session() as s:
            for days in (31, 400, 29, 0):
                s.add(ChangeEvent(service="payments-api", kind="deploy", summary=f"{days} days ago", source="t",
                                  at=utcnow() - dt.timedelta(days=days), recorded_at=utcnow()))
        live.services.runner.submit(PRUNE, {}, "changes-run")
        live.drain(due_within_s=60)
        with live.db.session() as s:
            kept = sorted(c.summary for c in s.scalars(select(ChangeEvent)))
        assert kept == ["0 days ago", "29 days ago"], kept
        # `warroom db prune --change-days 10` does it at once (it pruned no changes)
        from typer.testing import CliRunner

        from bot.cli import app

        env = {"WARROOM_MODE": "test", "WARROOM_DATABASE_URL": live.services.settings.database_url,
               "WARROOM_DATA_DIR": str(tmp_path), "WARROOM_EMBEDDER": "hash"}
        res = CliRunner().invoke(app, ["db", "prune", "--change-days", "10"], env=env)
        assert res.exit_code == 0 and "and 1 change(s) older than 10 days" in res.output, res.output
        with live.db.session() as s:
            assert [c.summary for c in s.scalars(select(ChangeEvent))] == ["0 days ago"]
