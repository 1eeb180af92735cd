"""The router's evidence on the seeded world: runbook runners, load, working hours, determinism."""

from __future__ import annotations

import datetime as dt
from typing import Any

from knowledge.db import Database
from knowledge.models import Incident, RunbookExecution
from skills.base import SkillContext
from skills.routing_engine import DIRECTORY_TTL_S, route

TEXT = "payments-api 503, remaining connection slots are reserved on postgres-main"


def _ctx(db: Database, settings: object, engine: str = "tfidf") -> SkillContext:
    ctx = SkillContext(
        db=db,
        data_dir=settings.data_dir,
        model_dir=settings.models_path,  # type: ignore[attr-defined]
        settings=settings,
    )
    ctx.resources["routing.history_engine"] = engine
    return ctx


def test_runbook_runner_and_load_and_hours_are_explained(db: Database, settings: object) -> None:
    with db.session() as s:
        s.add(
            RunbookExecution(
                runbook_slug="restart-service",
                runbook_version=1,
                incident_id=101,
                requested_by="U0BOB",
                status="succeeded",
            )
        )
        for i in range(2):
            s.add(Incident(title=f"open thing {i}", status="open", assignee="U0ALICE"))
    # Tuesday 2026-03-03 10:00 UTC: 11:00 in Paris (Alice), 10:00 in London (Bob), both working.
    at = dt.datetime(2026, 3, 3, 10, 0)
    d = route(_ctx(db, settings), text=TEXT, at=at)
    by = {c.user_id: c for c in d.candidates}
    assert d.service == "payments-api" and d.team == "payments"
    assert "ran runbook restart-service on #101" in by["U0BOB"].reasons
    assert "2 open incidents assigned" in by["U0ALICE"].reasons
    assert "working hours (11:00 Europe/Paris)" in by["U0ALICE"].reasons
    assert "resolved 1 similar incident (#101)" in by["U0ALICE"].reasons
    # Same inputs, same answer (ties break on the user id).
    assert route(_ctx(db, settings), text=TEXT, at=at) == d


def test_off_hours_person_not_on_call_is_demoted(db: Database, settings: object) -> None:
    # Saturday: nobody is in working hours; Alice (on call in the rotation's week) keeps her lead.
    at = dt.datetime(2026, 3, 7, 3, 0)
    d = route(_ctx(db, settings), text="checkout-web page broken", at=at)
    off = [c for c in d.candidates if not c.on_call]
    assert off and all(any(r.startswith("outside working hours (Sat") for r in c.reasons) for c in off)
    assert d.best is not None and d.best.on_call


def test_search_history_engine_and_empty_text(db: Database, settings: object) -> None:
    d = route(_ctx(db, settings, "search"), text=TEXT)
    assert 101 in d.similar and "history from knowledge-base search" in d.notes
    empty = route(_ctx(db, settings), text="   ")
    assert not empty.candidates and empty.fallback and "nothing to route on" in empty.fallback
    svc_only = route(_ctx(db, settings), text="", service="dns")
    assert svc_only.team == "platform" and svc_only.candidates


def test_lean_history_lookup_matches_knowledge_search(db: Database, settings: object) -> None:
    from knowledge.search import record_not_similar, search
    from skills.routing_engine import MIN_SEARCH_SCORE, similar_incidents

    ctx = _ctx(db, settings, "search")

    def both(text: str, service: str | None, exclude: int | None) -> tuple[list[tuple[int, float]], list[Any]]:
        with db.session() as s:
            lean, engine = similar_incidents(ctx, s, text=text, service=service, exclude=exclude)
        assert engine == "search"
        hits = search(
            ctx,
            text=text,
            kinds=("incident",),
            service=service,
            resolved_only=True,
            k=5,
            exclude=(f"incident:{exclude}",) if exclude else (),
        )
        full = [(h.incident_id, h.score) for h in hits if h.incident_id is not None and h.score >= MIN_SEARCH_SCORE]
        return lean, full

    cases = [
        (TEXT, "payments-api", None),
        (TEXT, None, 101),
        ("dns resolution failing for internal hosts", None, None),
        ("disk full on the database host", "postgres-main", None),
    ]
    for text, service, exclude in cases:
        lean, full = both(text, service, exclude)
        assert lean == full
    lean, _ = both(TEXT, None, None)
    assert lean and lean[0][0] == 101
    # "Not similar" for the same wording drops the document here as it does in the search.
    assert record_not_similar(db=db, target="incident:101", incident_id=None, user_id="U0X", query=TEXT)
    lean, full = both(TEXT, None, None)
    assert lean == full and 101 not in [i for i, _ in lean]


def test_routing_follows_the_same_on_call_as_oncall_a_cover_then_the_calendar(db: Database, settings: object) -> None:
    """Before: routing counted everyone with a shift running as on call, so with Bob's calendar shift over Alice's
    rotation week both got the on-call lead, while `/oncall` named Bob alone."""
    from sqlalchemy import select

    from knowledge.models import Expert, OnCallShift, Team, utcnow

    now = utcnow()
    with db.session() as s:
        team = s.scalar(select(Team.id).where(Team.name == "payments"))
        ids = {u: s.scalar(select(Expert.id).where(Expert.slack_user_id == u))
               for u in ("U0ALICE", "U0BOB")}
        s.execute(OnCallShift.__table__.delete().where(OnCallShift.team_id == team))
        for user, source in (("U0ALICE", "rotation"), ("U0BOB", "ical")):
            s.add(OnCallShift(team_id=team, expert_id=ids[user], starts_at=now - dt.timedelta(hours=1),
                              ends_at=now + dt.timedelta(hours=5), source=source))

    def on_call() -> list[str]:
        return sorted(c.user_id for c in route(_ctx(db, settings), text=TEXT, at=now).candidates if c.on_call)

    assert on_call() == ["U0BOB"]
    with db.session() as s:  # a cover set in Slack wins over both
        s.add(OnCallShift(team_id=team, expert_id=ids["U0ALICE"], starts_at=now - dt.timedelta(minutes=5),
                          ends_at=now + dt.timedelta(hours=1), source="override"))
    import time

    time.sleep(DIRECTORY_TTL_S + 0.1)  # the router re-reads who is on call this often
    assert on_call() == ["U0ALICE"]
