"""The router: who should take this ticket or incident, ranked, each with the reasons why.

Evidence, in the order a person would weigh it (weights in ``W``):

1. Declared ownership: the team owning the service, who of it is on call now, the experts who list
   the service, the service's escalation chain.
2. The text classifier (ticket text -> team), trained by ``warroom train routing``.
3. History: who resolved the most similar past incidents (the knowledge-base search, or a TF-IDF
   fallback over past incidents) and who ran the runbooks that fixed them.
4. Availability and load: on call, working hours in the person's time zone, open incidents
   assigned; "wrong owner" feedback removes or demotes people; deactivated experts are skipped.

The result is deterministic (ties break on the Slack user id) and explainable.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from knowledge import people
from knowledge.models import Expert, Feedback, OnCallShift, Service, Team, utcnow
from knowledge.routing_history import (
    IncidentTextIndex,
    history_fingerprint,
    resolvers,
    runbook_runners,
    wrong_owner_votes,
)
from models.routing_artifact import MODEL_SUBDIR, LoadedRoutingModel, load_routing_model
from skills.base import SkillContext

__all__ = ["W", "Candidate", "RoutingDecision", "route", "similar_incidents", "routing_model"]

W: dict[str, float] = {
    "on_call": 3.0,
    "owner": 1.5,
    "escalation": 1.2,
    "team": 0.5,
    "clf_on_call": 2.5,
    "clf_team": 0.8,
    "history": 1.2,
    "history_cap": 2.5,
    "runbook": 0.6,
    "runbook_cap": 1.2,
    "wrong_vote": -0.7,
    "off_hours": -1.0,
    "work_hours": 0.2,
    "load": -0.4,
    "changed": 1.5,  # made a change on the service in the hours before (its author knows what changed)
    "changed_dep": 0.7,  # ... on a service it depends on
}
MIN_CLASS_PROB = 0.15
MIN_SEARCH_SCORE = 0.25
DIRECTORY_TTL_S = 5.0  # teams, experts, shifts and the fallback history index are re-read this often


@dataclass(frozen=True)
class Candidate:
    """One person the router suggests."""

    user_id: str
    name: str
    team: str | None
    score: float
    reasons: tuple[str, ...]
    on_call: bool = False
    load: int = 0

    @property
    def why(self) -> str:
        """The reasons as one line."""
        return "; ".join(self.reasons)


@dataclass(frozen=True)
class RoutingDecision:
    """The ranked candidates, the team, and what the router noticed on the way."""

    service: str | None
    team: str | None
    team_channel: str | None
    candidates: tuple[Candidate, ...]
    notes: tuple[str, ...] = ()
    fallback: str | None = None
    similar: tuple[int, ...] = ()
    classifier: tuple[tuple[str, float], ...] = ()

    @property
    def best(self) -> Candidate | None:
        return self.candidates[0] if self.candidates else None


@dataclass
class _Acc:
    expert: Expert
    score: float = 0.0
    reasons: list[str] = field(default_factory=list)
    on_call: bool = False

    def add(self, weight: float, reason: str) -> None:
        self.score += weight
        if reason not in self.reasons:
            self.reasons.append(reason)


def routing_model(ctx: SkillContext) -> LoadedRoutingModel | None:
    """The trained classifier, reloaded when its record on disk changes."""
    record = Path(ctx.model_dir) / MODEL_SUBDIR / "routing-model.json"
    try:
        stamp = record.stat().st_mtime_ns
    except OSError:
        return None
    cached = ctx.resources.get("routing.model")
    if isinstance(cached, tuple) and cached[0] == stamp:
        return cached[1]  # type: ignore[no-any-return]
    loaded = load_routing_model(Path(ctx.model_dir))
    ctx.resources["routing.model"] = (stamp, loaded)
    return loaded


def _fallback_index(ctx: SkillContext, s: Session) -> IncidentTextIndex:
    cached = ctx.resources.get("routing.history")
    if isinstance(cached, tuple) and time.monotonic() - cached[2] < DIRECTORY_TTL_S:
        return cached[1]  # type: ignore[no-any-return]
    fp = history_fingerprint(session=s)
    if isinstance(cached, tuple) and cached[0] == fp:
        ctx.resources["routing.history"] = (fp, cached[1], time.monotonic())
        return cached[1]  # type: ignore[no-any-return]
    idx = IncidentTextIndex.build(session=s)
    ctx.resources["routing.history"] = (fp, idx, time.monotonic())
    return idx


def _not_similar_penalties(s: Session, text: str) -> tuple[frozenset[str], dict[str, float]]:
    """The knowledge-base search's "not similar" rule for a query given without an incident.

    Documents marked not similar for the same wording are dropped; others are demoted by 0.05 a vote (<= 0.2).
    """
    norm = " ".join(text.lower().split())[:500]
    drop: set[str] = set()
    votes: dict[str, int] = defaultdict(int)
    for target, data in s.execute(select(Feedback.target, Feedback.data).where(Feedback.kind == "not_similar")):
        if not target:
            continue
        if norm and (data or {}).get("query_norm") == norm:
            drop.add(target)
        else:
            votes[target] += 1
    return frozenset(drop), {k: min(0.2, 0.05 * v) for k, v in votes.items()}


def _kb_similar(
    ctx: SkillContext, s: Session, *, text: str, service: str | None, exclude: int | None
) -> list[tuple[int, float]]:
    """Similar closed incidents from the knowledge-base index, without the hits' display details.

    Same index, same ranking and same "not similar" feedback as ``knowledge.search.search``, but the
    query asks for no passages and no shared-word explanations (the router shows neither; building
    them for five hits was about half of a routing decision), reuses the router's database session,
    and checks the index's freshness with the same cheap database stamp at most every
    ``STAMP_CHECK_S`` seconds.
    """
    from knowledge.kb_index import Penalties, Query
    from knowledge.search import MAX_QUERY_CHARS, STAMP_CHECK_S, db_stamp, open_index, sync_index

    clean = text.strip()[:MAX_QUERY_CHARS]
    if not any(ch.isalnum() for ch in clean):
        return []
    kb = open_index(ctx)
    now = time.monotonic()
    if now - float(ctx.resources.get("routing.kb_checked", 0.0)) >= STAMP_CHECK_S:
        ctx.resources["routing.kb_checked"] = now
        stamp = db_stamp(ctx.db)
        if stamp != ctx.resources.get("routing.kb_stamp"):
            sync_index(ctx)
            ctx.resources["routing.kb_stamp"] = stamp
    drop, demote = _not_similar_penalties(s, clean)
    q = Query(
        text=clean,
        kinds=("incident",),
        k=5,
        service=service,
        resolved_only=True,
        exclude=frozenset((f"incident:{exclude}",) if exclude else ()),
        detail=False,
    )
    hits = kb.query(q, Penalties(drop=drop, demote=demote))
    return [
        (int(h.incident_id), float(h.score)) for h in hits if h.incident_id is not None and h.score >= MIN_SEARCH_SCORE
    ][:5]


def similar_incidents(
    ctx: SkillContext, s: Session, *, text: str, service: str | None, exclude: int | None
) -> tuple[list[tuple[int, float]], str]:
    """(incident id, similarity) of similar closed incidents, and which engine answered."""
    if not text.strip():
        return [], "none"
    if ctx.resources.get("routing.history_engine", "search") != "tfidf":
        try:
            from knowledge.search import SearchError
        except ImportError:
            SearchError = None  # type: ignore[assignment,misc]  # noqa: N806
        if SearchError is not None:
            try:
                return _kb_similar(ctx, s, text=text, service=service, exclude=exclude), "search"
            except (SearchError, OSError, RuntimeError):
                pass
    return _fallback_index(ctx, s).query(text, service=service, exclude=(exclude,) if exclude else ()), "tfidf"


@dataclass(frozen=True)
class _Directory:
    """Teams, services, experts and current/future shifts, read once and kept for a few seconds."""

    teams: dict[int, Team]
    services: dict[str, Service]
    experts: dict[str, Expert]
    shifts: tuple[tuple[int, str, dt.datetime, dt.datetime, str], ...]  # team id, user id, start, end, source
    loaded: float

    @classmethod
    def load(cls, s: Session, now: dt.datetime) -> _Directory:
        experts = {e.slack_user_id: e for e in s.scalars(select(Expert))}
        by_id = {e.id: e.slack_user_id for e in experts.values()}
        rows = s.execute(
            select(
                OnCallShift.team_id,
                OnCallShift.expert_id,
                OnCallShift.starts_at,
                OnCallShift.ends_at,
                OnCallShift.source,
            ).where(OnCallShift.ends_at > now - dt.timedelta(days=1))
        ).all()
        rows = sorted(rows, key=lambda r: (-r[2].timestamp(), r[1]))  # the latest-started shift first
        return cls(
            {t.id: t for t in s.scalars(select(Team))},
            {v.name.lower(): v for v in s.scalars(select(Service))},
            experts,
            tuple((t, by_id[e], a, b, str(src)) for t, e, a, b, src in rows if e in by_id),
            time.monotonic(),
        )

    def oncall(self, team_id: int, at: dt.datetime, include_inactive: bool = False) -> list[Expert]:
        """Who is on call, as ``knowledge.people.shifts_now`` says: a cover set in Slack replaces everything else
        while it runs, a calendar shift replaces the rotation."""
        running = people.winning([(uid, src) for t, uid, a, b, src in self.shifts
                           if t == team_id and a <= at < b and (include_inactive or self.experts[uid].active)],
                          lambda r: r[1])
        out: dict[str, Expert] = {}
        for uid, _src in running:
            out.setdefault(uid, self.experts[uid])
        return list(out.values())

    def service(self, name: str) -> Service | None:
        return self.services.get(name.strip().lower())

    def service_in_text(self, text: str) -> Service | None:
        low = text.lower()
        # The first service named wins (a ticket names the broken thing first, its dependencies later).
        named = sorted((n for n in self.services if n in low), key=lambda n: (low.index(n), -len(n), n))
        return self.services[named[0]] if named else None

    def escalation(self, svc: Service) -> list[Expert]:
        return [self.experts[str(u)] for u in (svc.escalation or []) if str(u) in self.experts]


def _directory(ctx: SkillContext, s: Session, at: dt.datetime) -> _Directory:
    cached = ctx.resources.get("routing.directory")
    if isinstance(cached, _Directory) and time.monotonic() - cached.loaded < DIRECTORY_TTL_S:
        return cached
    fresh = _Directory.load(s, at)
    ctx.resources["routing.directory"] = fresh
    return fresh


def route(
    ctx: SkillContext,
    *,
    text: str,
    service: str | None = None,
    incident_id: int | None = None,
    at: dt.datetime | None = None,
    limit: int = 3,
) -> RoutingDecision:
    """Rank who should take a ticket; see the module docstring for the evidence used."""
    at = at or utcnow()
    text = (text or "").strip()
    notes: list[str] = []
    with ctx.db.session() as s:
        d = _directory(ctx, s, at)
        teams, experts = d.teams, d.experts
        team_by_name = {t.name: t for t in teams.values()}
        svc = _resolve_service(d, service, text, notes)
        owner = teams.get(svc.team_id) if svc is not None and svc.team_id else None
        if svc is not None and owner is None:
            notes.append(f"{svc.name} has no owning team on record")
        acc: dict[str, _Acc] = {}

        def bump(uid: str, weight: float, reason: str) -> None:
            e = experts.get(uid)
            if e is not None:
                acc.setdefault(uid, _Acc(e)).add(weight, reason)

        if owner is not None and svc is not None:
            _ownership(d, svc, owner, at, bump, acc, notes)
        clf = _classify(ctx, text, notes)
        for team_name, p in clf:
            t = team_by_name.get(team_name)
            if t is None or p < MIN_CLASS_PROB:
                continue
            label = f"classifier says {team_name} ({p:.2f})"
            same = owner is not None and owner.id == t.id  # agrees with the declared owner: no repeat
            shift = {e.slack_user_id for e in d.oncall(t.id, at)}
            for uid in sorted(shift):
                bump(uid, W["clf_on_call"] * p, label if same else f"on call for {team_name}; {label}")
                acc[uid].on_call = True
            for e in experts.values():
                if e.team_id == t.id and e.slack_user_id not in shift and (same or e.slack_user_id not in acc):
                    bump(e.slack_user_id, W["clf_team"] * p, label if same else f"in {team_name}; {label}")
        similar, engine = similar_incidents(
            ctx, s, text=text or (svc.name if svc else ""), service=svc.name if svc else None, exclude=incident_id
        )
        _history(s, similar, bump)
        _changes(s, d, svc, incident_id, at, bump)
        decision_team = owner or (team_by_name.get(clf[0][0]) if clf and clf[0][1] >= MIN_CLASS_PROB else None)
        excluded, votes = wrong_owner_votes(session=s, incident_id=incident_id, service=svc.name if svc else None)
        load = people.open_load(session=s, user_ids=list(acc))
        ranked = _finish(acc, teams, excluded, votes, load, at, notes, svc.name if svc else None)
    if similar:
        notes.append(f"history from {'knowledge-base search' if engine == 'search' else 'TF-IDF over incidents'}")
    fallback = None
    if not ranked:
        fallback = _fallback(decision_team, svc, text, ctx)
    return RoutingDecision(
        service=svc.name if svc else None,
        team=decision_team.name if decision_team else None,
        team_channel=decision_team.slack_channel if decision_team else None,
        candidates=tuple(ranked[:limit]),
        notes=tuple(notes),
        fallback=fallback,
        similar=tuple(i for i, _ in similar),
        classifier=tuple(clf),
    )


def _resolve_service(d: _Directory, service: str | None, text: str, notes: list[str]) -> Service | None:
    if service:
        row = d.service(service)
        if row is None:
            notes.append(f"unknown service '{service}': routing by text and history only")
        return row
    return d.service_in_text(text) if text else None


def _ownership(
    d: _Directory, svc: Service, owner: Team, at: dt.datetime, bump: Any, acc: dict[str, _Acc], notes: list[str]
) -> None:
    on_shift = d.oncall(owner.id, at, include_inactive=True)
    for e in on_shift:
        if not e.active:
            notes.append(f"{e.name} is on the {owner.name} rota but deactivated: skipped, escalation used")
            continue
        bump(e.slack_user_id, W["on_call"], f"on call for {svc.name} ({owner.name})")
        acc[e.slack_user_id].on_call = True
    if not any(e.active for e in on_shift):
        notes.append(f"nobody is on call for {owner.name} now: using the escalation chain and owners")
    for e in d.experts.values():
        if e.team_id == owner.id and svc.name in (e.services or []):
            bump(e.slack_user_id, W["owner"], f"declared owner of {svc.name}")
    for pos, e in enumerate(d.escalation(svc)):
        bump(e.slack_user_id, max(0.2, W["escalation"] - 0.2 * pos), f"escalation #{pos + 1} for {svc.name}")
    for e in d.experts.values():
        if e.team_id == owner.id and e.slack_user_id not in acc:
            bump(e.slack_user_id, W["team"], f"in {owner.name}, the team owning {svc.name}")


def _classify(ctx: SkillContext, text: str, notes: list[str]) -> list[tuple[str, float]]:
    if not text:
        return []
    loaded = routing_model(ctx)
    if loaded is None:
        notes.append("no routing classifier trained yet (`warroom train routing`)")
        return []
    return loaded.model.top_k([text], k=3)[0]


def _history(s: Session, similar: list[tuple[int, float]], bump: Any) -> None:
    ids = [i for i, _ in similar]
    sim = dict(similar)
    by_user: dict[str, list[int]] = defaultdict(list)
    for inc_id, uid in resolvers(session=s, incident_ids=ids).items():
        by_user[uid].append(inc_id)
    for uid, incs in sorted(by_user.items()):
        incs.sort(key=lambda i: (-sim[i], i))
        weight = min(W["history_cap"], W["history"] * sum(sim[i] for i in incs))
        refs = ", ".join(f"#{i}" for i in incs)
        bump(uid, weight, f"resolved {len(incs)} similar incident{'s' if len(incs) > 1 else ''} ({refs})")
    runs: dict[str, list[str]] = defaultdict(list)
    for inc_id, uid, slug in runbook_runners(session=s, incident_ids=ids):
        runs[uid].append(f"{slug} on #{inc_id}")
    for uid, done in sorted(runs.items()):
        bump(uid, min(W["runbook_cap"], W["runbook"] * len(done)), "ran runbook " + ", ".join(done[:3]))


def _author(d: _Directory, author: str) -> str | None:
    """The expert a change's author names: their Slack id, email (or its local part), full name, or a first name
    only one expert has."""
    a = author.strip().lower().lstrip("@")
    if not a:
        return None
    for e in d.experts.values():
        email = (e.email or "").lower()
        if a in (e.slack_user_id.lower(), email, email.split("@")[0], e.name.lower()):
            return e.slack_user_id
    first = [e.slack_user_id for e in d.experts.values() if e.name.lower().split()[:1] == [a]]
    return first[0] if len(first) == 1 else None


def _changes(s: Session, d: _Directory, svc: Service | None, incident_id: int | None, at: dt.datetime,
             bump: Any) -> None:
    """Whoever made a change on the service (or on one it depends on) in the hours before: they know what changed
    (the incident's own window when there is one; else the last ``changes.BEFORE``)."""
    from knowledge import changes
    from knowledge.models import Incident

    inc = s.get(Incident, incident_id) if incident_id is not None else None
    if inc is not None and inc.service_name:
        near = changes.for_incident(s, inc, limit=10)
        opened = inc.created_at
    elif svc is not None:
        near, opened = changes.near(s, svc.name, at - changes.BEFORE, at, limit=10), at
    else:
        return
    seen: set[str] = set()
    for n in near:
        uid = _author(d, n.change.author or "")
        if uid is None or uid in seen:
            continue
        seen.add(uid)
        c, own = n.change, len(n.path) == 1
        gap = max(0, int((opened - c.at).total_seconds() // 60))
        what = f"{c.kind} of {c.service}" + (f" {c.version}" if c.version else "")
        bump(uid, W["changed" if own else "changed_dep"],
             f"made the {what} {gap} min before" + ("" if own else f" (it depends on {c.service})"))


def _finish(
    acc: dict[str, _Acc],
    teams: dict[int, Team],
    excluded: frozenset[str],
    votes: Any,
    load: dict[str, int],
    at: dt.datetime,
    notes: list[str],
    service: str | None,
) -> list[Candidate]:
    out: list[Candidate] = []
    for uid, a in acc.items():
        e = a.expert
        if not e.active:
            notes.append(f"skipped {e.name}: deactivated (left)")
            continue
        if uid in excluded:
            notes.append(f"skipped {e.name}: marked wrong owner for this incident")
            continue
        if votes.get(uid):
            a.add(W["wrong_vote"] * votes[uid], f"marked wrong owner {votes[uid]}x for {service}")
        loc = people.local_time(e.timezone, at)
        if people.in_working_hours(e.timezone, at):
            a.add(W["work_hours"], f"working hours ({loc:%H:%M} {e.timezone})")
        elif not a.on_call:
            a.add(W["off_hours"], f"outside working hours ({loc:%a %H:%M} {e.timezone})")
        n = load.get(uid, 0)
        if n:
            a.add(W["load"] * n, f"{n} open incident{'s' if n > 1 else ''} assigned")
        team = teams.get(e.team_id) if e.team_id else None
        out.append(
            Candidate(uid, e.name, team.name if team else None, round(a.score, 3), tuple(a.reasons), a.on_call, n)
        )
    out.sort(key=lambda c: (-c.score, c.user_id))
    return out


def _fallback(team: Team | None, svc: Service | None, text: str, ctx: SkillContext) -> str:
    if team is not None:
        where = f"<#{team.slack_channel}>" if team.slack_channel else f"the {team.name} team"
        return f"no available person to suggest: ask in {where} ({team.name} team channel)"
    channel = getattr(ctx.settings, "slack_incident_channel", None)
    where = f"<#{channel}>" if channel else "the incident channel"
    if not text and svc is None:
        return f"nothing to route on (no text, no service): ask in {where}"
    return f"no owner known for this: ask in {where} and escalate to the incident commander"
