"""What history says about who handles what: training examples, resolvers, runbook runners, feedback.

Keyword-only data access for the router and ``warroom train routing``. The fallback similar-incident
lookup (:class:`IncidentTextIndex`, TF-IDF over past incident text) is used when the knowledge-base
search (:mod:`knowledge.search`) is not available or cannot answer.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from knowledge.models import Expert, Feedback, Incident, RunbookExecution, Service, Team

__all__ = [
    "RUNBOOK_SUCCESS", "IncidentTextIndex", "history_fingerprint", "routing_examples", "resolvers",
    "runbook_runners", "wrong_owner_votes", "record_wrong_owner", "incident_text",
]

RUNBOOK_SUCCESS: tuple[str, ...] = ("succeeded", "success", "ok", "done", "completed")
_CLOSED = ("resolved", "closed", "mitigated")


def incident_text(inc: Incident) -> str:
    """The text of an incident the router learns from."""
    return " ".join(p for p in (inc.title, inc.alert_name or "", inc.service_name or "", inc.description) if p)


def history_fingerprint(*, session: Session) -> tuple[int, ...]:
    """Changes whenever incidents or feedback change enough to rebuild cached history (one query)."""
    row = session.execute(select(
        select(func.count(Incident.id)).scalar_subquery(), select(func.max(Incident.id)).scalar_subquery(),
        select(func.max(Incident.resolved_at)).scalar_subquery(),
        select(func.count(Feedback.id)).where(Feedback.kind == "wrong_owner").scalar_subquery(),
        select(func.sum(Feedback.id)).where(Feedback.kind == "wrong_owner").scalar_subquery())).one()  # an undo too
    return tuple(hash(v) for v in row)


def routing_examples(*, session: Session) -> list[tuple[str, str]]:
    """(text, team name) pairs to train the text classifier on.

    Closed incidents are labelled with the team owning their service (or their assignee's team);
    "wrong owner" feedback that names the right team overrides that label and adds its text.
    """
    svc_team = dict(session.execute(select(Service.name, Team.name).join(Team, Service.team_id == Team.id)).all())
    user_team = dict(session.execute(select(Expert.slack_user_id, Team.name)
                                     .join(Team, Expert.team_id == Team.id)).all())
    fixed: dict[int, str] = {}
    extra: list[tuple[str, str]] = []
    for fb in session.scalars(select(Feedback).where(Feedback.kind == "wrong_owner").order_by(Feedback.id)):
        team = (fb.data or {}).get("team")
        if not isinstance(team, str) or not team:
            continue
        if fb.incident_id is not None:
            fixed[fb.incident_id] = team
        elif isinstance((fb.data or {}).get("text"), str):
            extra.append((fb.data["text"], team))
    out: list[tuple[str, str]] = []
    for inc in session.scalars(select(Incident).order_by(Incident.id)):
        label = fixed.get(inc.id)
        if label is None and inc.status in _CLOSED:
            label = svc_team.get(inc.service_name or "") or user_team.get(inc.assignee or "")
        if label:
            out.append((incident_text(inc), label))
    return out + extra


def resolvers(*, session: Session, incident_ids: Iterable[int]) -> dict[int, str]:
    """Assignee (Slack user id) of each closed incident among ``incident_ids``."""
    ids = list(incident_ids)
    if not ids:
        return {}
    rows = session.execute(select(Incident.id, Incident.assignee).where(
        Incident.id.in_(ids), Incident.assignee.is_not(None), Incident.status.in_(_CLOSED))).all()
    return {int(i): str(a) for i, a in rows}


def runbook_runners(*, session: Session, incident_ids: Iterable[int]) -> list[tuple[int, str, str]]:
    """(incident id, Slack user id, runbook slug) for successful runbook runs on those incidents."""
    ids = list(incident_ids)
    if not ids:
        return []
    rows = session.execute(select(RunbookExecution.incident_id, RunbookExecution.requested_by,
                                  RunbookExecution.runbook_slug)
                           .where(RunbookExecution.incident_id.in_(ids),
                                  RunbookExecution.status.in_(RUNBOOK_SUCCESS),
                                  RunbookExecution.dry_run.is_(False))
                           .order_by(RunbookExecution.id)).all()
    return [(int(i), str(u), str(s)) for i, u, s in rows if i is not None and u]


def wrong_owner_votes(*, session: Session, incident_id: int | None, service: str | None
                      ) -> tuple[frozenset[str], Counter[str]]:
    """People marked wrong owner on this incident (excluded), and votes against people for this service."""
    excluded: set[str] = set()
    votes: Counter[str] = Counter()
    q = select(Feedback.incident_id, Feedback.target, Feedback.data).where(Feedback.kind == "wrong_owner")
    for inc_id, target, data in session.execute(q):
        if not target:
            continue
        if incident_id is not None and inc_id == incident_id:
            excluded.add(target)
        elif service and (data or {}).get("service") == service:
            votes[target] += 1
    return frozenset(excluded), votes


def record_wrong_owner(*, session: Session, incident_id: int | None, target: str, user_id: str | None,
                       text: str, service: str | None, team: str | None) -> int:
    """Store "wrong owner" feedback: ``target`` should not own this; ``team`` is the better guess, if any. Return
    its id (the Undo button's)."""
    fb = Feedback(kind="wrong_owner", incident_id=incident_id, target=target, user_id=user_id,
                  data={"text": text[:4000], "service": service, "team": team})
    session.add(fb)
    session.flush()
    return fb.id



@dataclass(frozen=True)
class IncidentTextIndex:
    """TF-IDF over past closed incidents: the fallback similar-incident lookup."""

    ids: tuple[int, ...]
    services: tuple[str, ...]
    vectorizer: TfidfVectorizer | None
    matrix: object  # scipy sparse matrix, rows aligned with ids

    @classmethod
    def build(cls, *, session: Session) -> IncidentTextIndex:
        """Index every closed incident with an assignee."""
        rows = list(session.scalars(select(Incident).where(Incident.status.in_(_CLOSED),
                                                           Incident.assignee.is_not(None))
                                    .order_by(Incident.id)))
        if not rows:
            return cls((), (), None, None)
        vec = TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2))
        matrix = vec.fit_transform([incident_text(r) for r in rows])
        return cls(tuple(r.id for r in rows), tuple(r.service_name or "" for r in rows), vec, matrix)

    def query(self, text: str, *, service: str | None = None, exclude: Iterable[int] = (), k: int = 5,
              min_score: float = 0.08) -> list[tuple[int, float]]:
        """(incident id, similarity 0..1) of the most similar past incidents; same service adds 0.1."""
        if self.vectorizer is None or not text.strip():
            return []
        sims = np.asarray((self.matrix @ self.vectorizer.transform([text]).T).todense()).ravel()  # type: ignore[operator]
        if service:
            sims = sims + 0.1 * np.array([s == service for s in self.services], dtype=float)
        skip = set(exclude)
        order = np.argsort(-sims, kind="stable")
        out = [(self.ids[i], float(min(1.0, sims[i]))) for i in order if sims[i] >= min_score
               and self.ids[i] not in skip]
        return out[:k]
