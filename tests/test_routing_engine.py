"""The router's evidence on the seeded world: runbook runners, load, working hours, determinism."""

from __future__ import annotations

import datetime as dt
from typing import Any

from knowledge.db import Database
from knowledge.models import Incident, RunbookExecution
from skills.base import SkillContext
from skills.routing_engine import route

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
