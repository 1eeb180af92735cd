"""Are two incidents related: "is this related to #112?" (under a card), "is #113 related to #112?", "are #113 and
#112 related?", "could this be caused by #112?", "is this a duplicate of #112?". These went to the knowledge base ("I
found nothing ...") or showed one of the two incidents.

What the bot knows, each said with its evidence: one closed as a duplicate of the other; the same service; a
dependency between their services (``a → b``: a depends on b, so trouble on b may cause a); when each opened and
whether they were open at the same time; the alert names they share; a change (deploy, config, flag) near both; the
words their titles share. The verdict weighs them the way a responder would: same service or a dependency, at the same
time, is likely one problem (merge them, or treat the upstream one as the cause); one sign alone is "possibly"; none is
"no sign of it".
"""

from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from knowledge import changes
from knowledge.models import Alert, Incident, TimelineEvent, utcnow
from knowledge.service_graph import dependency_paths, graph
from skills.base import INCIDENT_REF, Section, SkillError, SkillResult, duration, esc

__all__ = ["RELATED_ASKED", "relation"]

_REF = r"(?:#|inc(?:ident)?[-\s#]*)\d{1,9}"
_ONE = rf"(?:this|it|this\s+one|this\s+incident|{_REF})"
RELATED_ASKED = re.compile(
    rf"^\W*(?:(?:is|are|could|might|can)\s+{_ONE}\s+(?:be\s+)?(?:related|connected|linked|tied)\s+(?:to|with)\s+{_REF}"
    rf"|(?:is|are)\s+{_REF}\s+(?:and|&)\s+{_REF}\s+(?:related|connected|linked|the\s+same(?:\s+(?:thing|problem|issue"
    r"|incident))?)"
    rf"|(?:is|could|might|can)\s+{_ONE}\s+(?:be\s+)?(?:caused\s+by|because\s+of|due\s+to|a\s+(?:side\s+)?effect\s+of"
    rf"|(?:a\s+)?dup(?:e|licate)?\s+of|the\s+same\s+(?:thing\s+|problem\s+|issue\s+|incident\s+)?as)\s+{_REF}"
    rf"|(?:the\s+)?same\s+(?:thing\s+|problem\s+|issue\s+|incident\s+)?as\s+{_REF}"
    rf"|(?:any\s+)?(?:relation|link|connection)\s+between\s+{_REF}\s+(?:and|&)\s+{_REF})\W*$", re.I)
_STOP = frozenset("""a an the on in at of for to and or is are was were be with from by after before during our
    high low spike errors error issue issues incident problem down slow failing failed""".split())
_NEAR = dt.timedelta(hours=2)


def _words(title: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9][\w.-]*", title.lower()) if w not in _STOP and len(w) > 2}


def _duplicate(s: Session, a: Incident, b: Incident) -> str | None:
    for one, other in ((a, b), (b, a)):
        for ev in s.scalars(select(TimelineEvent).where(TimelineEvent.incident_id == other.id,
                                                        TimelineEvent.kind == "duplicate")):
            if (ev.data or {}).get("duplicate") == one.id:
                return f"#{one.id} was closed as a duplicate of #{other.id}"
    return None


def relation(s: Session, text: str, incident_id: int | None = None) -> SkillResult:
    """How the two incidents ``text`` names (or the one under whose card it is asked and the one it names) relate.

    Raises:
        SkillError: fewer than two incidents, or one that does not exist.
    """
    ids = list(dict.fromkeys(int(m) for m in INCIDENT_REF.findall(text)))
    if len(ids) == 1 and incident_id is not None and incident_id != ids[0]:
        ids = [incident_id, ids[0]]
    if len(ids) < 2:
        raise SkillError("Related to what? Name both, e.g. `@warroom is #113 related to #112?`, or ask "
                         "`is this related to #112?` under an incident's card.")
    rows = [s.get(Incident, i) for i in ids[:2]]
    for i, row in zip(ids, rows, strict=False):
        if row is None:
            raise SkillError(f"There is no incident #{i}.")
    a, b = rows[0], rows[1]
    assert a is not None and b is not None
    now = utcnow()
    signs: list[str] = []
    strong = False
    dup = _duplicate(s, a, b)
    if dup:
        signs.append(dup)
    sa, sb = (a.service_name or "").lower(), (b.service_name or "").lower()
    same = bool(sa) and sa == sb
    dep = ""
    if same:
        signs.append(f"both are on {esc(a.service_name or '')}")
    elif sa and sb:
        deps = graph(s)
        if sb in (up := dependency_paths(deps, sa)):
            dep = (f"{esc(sa)} depends on {esc(sb)} ({esc(' → '.join(up[sb]))}): #{b.id} may be the cause of "
                   f"#{a.id}")
        elif sa in (down := dependency_paths(deps, sb)):
            dep = (f"{esc(sb)} depends on {esc(sa)} ({esc(' → '.join(down[sa]))}): #{a.id} may be the cause of "
                   f"#{b.id}")
        if dep:
            signs.append(dep)
    a_end, b_end = a.resolved_at or now, b.resolved_at or now
    overlap = a.created_at <= b_end and b.created_at <= a_end
    gap = abs((a.created_at - b.created_at).total_seconds())
    close = overlap or gap <= _NEAR.total_seconds()
    first, second = sorted((a, b), key=lambda x: (x.created_at, x.id))  # the older one keeps the timeline
    apart = f"{gap / 86400:.0f} days" if gap >= 2 * 86400 else duration(gap)
    when = (f"#{second.id} opened {apart} after #{first.id}" if gap >= 60 else "they opened within a minute")
    signs.append(when + (", both open at the same time" if overlap else ", not open at the same time"))
    alerts = [set(s.scalars(select(Alert.name).where(Alert.incident_id == x.id).distinct()).all()) for x in (a, b)]
    shared = sorted(alerts[0] & alerts[1])
    if shared:
        signs.append("the same alert(s) fired on both: " + ", ".join(esc(n) for n in shared[:5]))
    near = [{n.change.id: n.change for n in changes.for_incident(s, x, limit=10)} for x in (a, b)]
    common = [c for cid, c in near[0].items() if cid in near[1]]
    if common:
        c = common[0]
        signs.append(f"both follow the same change: {esc(c.kind)} of {esc(c.service)}"
                     + (f" {esc(c.version)}" if c.version else "") + f" ({esc(c.summary[:80])})")
    words = sorted(_words(a.title) & _words(b.title))
    if words:
        signs.append("their titles share " + ", ".join(f"_{esc(w)}_" for w in words[:6]))
    strong = bool(dup) or ((same or bool(dep)) and close) or (bool(shared) and close) or (bool(common) and close)
    weak = same or bool(dep) or bool(shared) or bool(common) or (close and bool(words))
    if dup:
        verdict = "Yes: " + dup + "."
    elif strong and same:
        verdict = (f"Likely the same problem: both on {esc(a.service_name or '')}, "
                   + ("open at the same time" if overlap else f"opened {apart} apart")
                   + f". If so, `merge #{second.id} into #{first.id}` keeps one timeline.")
    elif strong and dep:
        verdict = "Likely related: " + dep + "."
    elif strong:
        verdict = "Likely related: " + ("the same alerts fired on both" if shared else "both follow the same change") \
            + (", at the same time." if overlap else ".")
    elif weak:
        verdict = "Possibly related: " + ("same service" if same else "a dependency between their services" if dep
                                          else "shared alerts" if shared else "a change near both" if common
                                          else "similar titles, close in time") + (
            ", but not at the same time." if not close else ".")
    else:
        verdict = ("No sign they are related: " + ("different services with no dependency between them"
                                                    if sa and sb else "no service on one of them")
                   + ", no shared alert or change" + ("" if close else ", and not close in time") + ".")
    lines = [f"#{x.id} SEV{x.severity} [{x.status}] {esc(x.title[:80])} ({esc(x.service_name or 'no service')}, "
             f"opened {x.created_at:%d %b %H:%M} UTC)" for x in (a, b)]
    return SkillResult(title=f"#{a.id} and #{b.id}", summary=verdict,
                       sections=(Section("The two", tuple(lines)), Section("What I checked", tuple(signs))),
                       data={"related": "duplicate" if dup else "likely" if strong else "possibly" if weak else "no",
                             "incidents": [a.id, b.id]})
