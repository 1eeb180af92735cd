"""One reported message opens one incident, even when clicks on its button race (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from knowledge.db import Database
from knowledge.models import Incident, utcnow
from skills.base import SkillContext, SkillError, SkillRequest
from skills.incident import IncidentSkill
from tests.conftest import seeded_database


def _database(kind: str, tmp_path: Path) -> Database:
    return seeded_database(kind, tmp_path)


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_racing_clicks_on_open_an_incident_open_one(kind: str, tmp_path: Path) -> None:
    db = _database(kind, tmp_path)
    ctx = SkillContext(db=db, data_dir=tmp_path, model_dir=tmp_path)
    skill, n = IncidentSkill(), 6
    start, results, errors = threading.Barrier(n), [], []

    def click(i: int) -> None:
        req = SkillRequest(text="ingest lag growing sev2", source="action", user_id=f"U0CLICK{i}",
                           channel_id="C0RACE", thread_ts="1700000000.000100")
        start.wait()
        try:
            results.append(skill.handle_action("incident:new", req, ctx))
        except SkillError as exc:  # SQLite may refuse a writer that waited too long: a clear message, not a 5xx
            errors.append(str(exc))

    threads = [threading.Thread(target=click, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    with db.session() as s:
        rows = s.scalars(select(Incident).where(Incident.title == "ingest lag growing")).all()
    assert len(rows) == 1 and rows[0].severity == 2
    assert len(results) + len(errors) == n and results
    assert {r.data["incident_id"] for r in results} == {rows[0].id}
    assert sum(bool(r.data.get("created")) for r in results) == 1
    assert all(f"incident #{rows[0].id}" in r.summary for r in results if not r.data.get("created"))


def test_the_key_is_unique_for_reports_only(tmp_path: Path) -> None:
    db = _database("sqlite", tmp_path)

    def add(key: str) -> None:
        with db.session() as s:
            s.add(Incident(title="x", severity=3, status="open", group_key=key, created_at=utcnow(), findings={}))

    add("am:{}/{}:{alertname=HighErrorRate}")
    add("am:{}/{}:{alertname=HighErrorRate}")  # one Alertmanager group may open incidents again later
    add("slack-report:C0X:1.2")
    with pytest.raises(IntegrityError):
        add("slack-report:C0X:1.2")
