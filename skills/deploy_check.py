"""Is it a good time to deploy a service: "is it safe to deploy payments-api?", "can I deploy ingest now?", "ok to ship
checkout-web?". These went to the knowledge base, which answered with a postmortem passage.

What the bot knows about the service, weighed the way an on-call engineer would before pressing the button:

- an open incident on the service itself: **hold** (a deploy now muddles what caused what and what fixed it), unless
  the deploy is the fix, said so;
- an open incident on what it depends on (a possible cause of trouble the deploy would be blamed for) or on what
  depends on it (already hurting): **care**;
- a change on it or its dependencies in the last hour (one still rolling out, or one that did not finish): **care**;
- a failure-risk reading of HIGH or CRITICAL in the last hour: **care**;
- nobody on call for its team now: **care** (nobody to page if it goes wrong);
- a deploy freeze on it or on every service (skills/deploy_freeze.py): **hold**, or for a fix **care** (with the OK
  of whoever froze it).

The bot does not know the CI pipeline, and says so: it answers from incidents, freezes, reported changes, risk
readings and the on-call schedule.
"""

from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from knowledge import changes, freezes, people
from knowledge.models import Incident, Service, Team, utcnow
from knowledge.risk_store import recent_readings
from knowledge.service_graph import dependency_paths, graph
from skills.base import Section, SkillError, SkillResult, duration, esc
from skills.deploy_freeze import freeze_line, frozen_by

__all__ = ["DEPLOY_ASKED", "deploy_check"]

_SHIP = r"(?:deploy|ship|release|roll\s+out|push|rollout|merge|roll\s*back|revert)"
DEPLOY_ASKED = re.compile(
    # "is it safe to deploy payments-api?", "is now a good time to ship ingest?", "is it ok to release checkout-web?"
    rf"^\W*(?:is\s+(?:it|now|this|today)\s+(?:a\s+)?(?:safe|ok|okay|fine|good|alright|wise|a\s+good\s+(?:time|idea)|"
    rf"the\s+right\s+time)\s+(?:time\s+)?(?:to|for)\s+(?:a\s+)?{_SHIP}"
    # "can I deploy payments-api now?", "should we ship ingest?", "may I release checkout-web?"
    rf"|(?:can|could|should|may|shall)\s+(?:i|we)\s+(?:safely\s+)?(?:still\s+)?{_SHIP}\b"
    # "safe to deploy payments-api?", "ok to ship?", "good to deploy?", "any reason not to deploy ingest?"
    rf"|(?:safe|ok|okay|good|clear|fine)\s+to\s+{_SHIP}\b"
    rf"|any\s+(?:reason|blockers?)\s+(?:not\s+to\s+|to\s+not\s+|for\s+not\s+|against\s+|before\s+|to\s+hold\s+)?"
    rf"(?:a\s+)?(?:{_SHIP}|deploying|shipping|releasing)"
    r"|(?:deploy|release)\s+(?:check|readiness)\b|go\s*/?\s*no[- ]go\b)", re.I)
_HOUR = dt.timedelta(hours=1)
_FREEZE_SOON = dt.timedelta(hours=2)
_LIMIT = 5


_FIX = re.compile(r"\b(?:fix|fixes|hotfix|patch|revert|rollback|roll\s+back|roll-back)\b", re.I)
_BACK = re.compile(r"\b(?:revert|rollback|roll\s*-?\s*back)\b", re.I)


def _services(s: Session, text: str, user_id: str | None, incident_id: int | None) -> list[str]:
    named = people.known_services_in_text(session=s, text=text)
    if named:
        return named[:_LIMIT]
    inc = s.get(Incident, incident_id) if incident_id is not None else None
    if inc is not None and inc.service_name:  # "can I deploy the fix?" under an incident's card: its service
        return [inc.service_name]
    scope = people.asker_scope(session=s, text=text, user_id=user_id)  # "a team": its services; "ours": the asker's
    if scope is not None:
        return sorted(scope.services)[:_LIMIT]
    raise SkillError("Deploy which service? e.g. `@warroom is it safe to deploy payments-api?` I check its open "
                     "incidents and those of what it depends on, recent changes, failure risk and who is on call.")


def _one(s: Session, name: str, deps: dict[str, list[str]], now: dt.datetime, fix: bool,
         back: bool) -> tuple[str, list[str]]:
    """("hold" | "care" | "go", the reasons) for one service; ``fix``: the deploy is said to be a fix; ``back``: a
    rollback."""
    hold: list[str] = []
    care: list[str] = []
    for f in freezes.holding(s, [name]):  # (to the microsecond: one lifted this second is lifted)
        said = freeze_line(s, f, now)
        if fix:  # a freeze usually lets a fix through, with the OK of whoever froze it
            care.append(f"deploy freeze: {said}; a fix may go with the OK of "
                        + (frozen_by(f) or "whoever froze it"))
        else:
            hold.append(f"deploy freeze: {said}")
    for f in freezes.upcoming(s, [name], _FREEZE_SOON, now):  # "a freeze starts in 1h": finish before it
        care.append(f"deploy freeze soon: {freeze_line(s, f, now)}: a deploy now must be done (and watched) before "
                    "it starts")
    own = s.scalars(select(Incident).where(Incident.status.in_(people.OPEN_STATUSES),
                                           func.lower(Incident.service_name) == name.lower())
                    .order_by(Incident.severity, Incident.id).limit(_LIMIT)).all()
    for r in own:
        if fix:  # "can I deploy the fix?": the incident is why, not against it
            care.append(f"{'a rollback' if back else 'a fix'} for #{r.id} SEV{r.severity} [{r.status}] "
                        f"{esc(r.title[:80])}: say it on its timeline ("
                        + ("`note: rolling back to v...`" if back else "`note: deploying the fix, v...`")
                        + ") so what changed and when is on record, and watch its alerts after")
            continue
        hold.append(f"open incident on {esc(name)}: #{r.id} SEV{r.severity} [{r.status}] {esc(r.title[:80])}: a "
                    "deploy now muddles what caused what and what fixed it (unless this deploy is the fix: say so in "
                    "its thread)")
    up = dependency_paths(deps, name)
    down = dependency_paths(deps, name, reverse=True)
    if up or down:
        rows = s.scalars(select(Incident).where(Incident.status.in_(people.OPEN_STATUSES),
                                                func.lower(Incident.service_name).in_(sorted(set(up) | set(down))))
                         .order_by(Incident.severity, Incident.id).limit(_LIMIT)).all()
        for r in rows:
            svc = (r.service_name or "").lower()
            if svc in up:  # "a → b": a depends on b
                why = (f"which it depends on ({esc(' → '.join(up[svc]))}): trouble there would be blamed on the "
                       "deploy")
            else:
                why = f"which depends on it ({esc(' → '.join(reversed(down[svc])))}): already hurting"
            care.append(f"open incident #{r.id} SEV{r.severity} [{r.status}] on {esc(r.service_name or '')}, {why}")
    for n in changes.near(s, name, now - _HOUR, now + dt.timedelta(minutes=10), limit=_LIMIT):
        c = n.change
        if back and c.service == name.lower() and c.kind == "deploy":  # what the rollback undoes: said below
            continue
        where = esc(c.service) if len(n.path) == 1 else f"{esc(c.service)} (a dependency: {esc(' → '.join(n.path))})"
        unfinished = c.summary.startswith("did not finish")
        care.append(f"{esc(c.kind)} on {where} {duration(max(0.0, (now - c.at).total_seconds()))} ago"
                    + (f" ({esc(c.version)})" if c.version else "") + (f" by {esc(c.author)}" if c.author else "")
                    + (": it did not finish" if unfinished else ": wait until it has settled"))
    if back:  # "should we roll back?": what a rollback would undo
        done = [n.change for n in changes.near(s, name, now - dt.timedelta(hours=24), now + dt.timedelta(minutes=10),
                                               limit=20) if n.change.service == name.lower()
                and n.change.kind == "deploy"]
        care.append(f"a rollback undoes the deploy of {esc(name)} {duration((now - done[0].at).total_seconds())} ago"
                    + (f" ({esc(done[0].version)})" if done[0].version else "")
                    + (f" by {esc(done[0].author)}" if done[0].author else "") if done else
                    f"no deploy of {esc(name)} reported in the last 24 hours: a rollback may undo nothing that matters "
                    "here (`what changed?` under the card lists the changes near the incident)")
    last = recent_readings(s, service_name=name, limit=1)
    if last and now - last[-1].created_at <= _HOUR and last[-1].band in ("HIGH", "CRITICAL"):
        r = last[-1]
        care.append(f"failure risk {r.band} ({r.probability * 100:.0f}%) "
                    f"{duration((now - r.created_at).total_seconds())} ago: `/risk {esc(name)}` says why")
    team = s.scalar(select(Team).join(Service, Service.team_id == Team.id).where(func.lower(Service.name)
                                                                                  == name.lower()))
    if team is not None:
        (oc,) = people.oncall_by_team(session=s, team=team.name, at=now)
        if not oc.people:
            care.append(f"nobody is on call for {esc(team.name)} now: nobody to page if it goes wrong")
    return ("hold" if hold else "care" if care else "go"), hold + care


def deploy_check(s: Session, text: str, user_id: str | None = None, incident_id: int | None = None) -> SkillResult:
    """For each service ``text`` names (a team: its services; none, under an incident's card: its service): hold, go
    with care, or nothing against it, and why."""
    now = utcnow().replace(microsecond=0)
    deps = graph(s)
    heads: list[str] = []
    sections: list[Section] = []
    verdicts: dict[str, str] = {}
    fix = bool(_FIX.search(text))
    back = bool(_BACK.search(text))
    checked = [(name, *_one(s, name, deps, now, fix, back)) for name in _services(s, text, user_id, incident_id)]
    order = {"hold": 0, "care": 1, "go": 2}
    for name, verdict, why in sorted(checked, key=lambda c: (order[c[1]], c[0])):  # what to hold first
        verdicts[name] = verdict
        heads.append({"hold": f"*Hold* {esc(name)}", "care": f"{esc(name)}: go with care",
                      "go": f"{esc(name)}: nothing I know of against it"}[verdict])
        sections.append(Section(name, tuple(why) or ("no open incident on it or what it depends on or what depends "
                                                     "on it, no freeze, no change in the last hour, no high failure "
                                                     "risk, and someone is on call",)))
    return SkillResult(title="Deploy check", summary="; ".join(heads) + ". From open incidents, deploy freezes, "
                       "reported changes, failure-risk readings and the on-call schedule: not your CI.",
                       sections=tuple(sections), data={"verdicts": verdicts})
