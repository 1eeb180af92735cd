"""``similar``: have we seen this before, and what fixed it?

``/similar <text>`` (or ``/similar #101`` for an incident) lists the closest past incidents,
postmortems and runbooks with why they matched and the fix that worked. On every incident card the
triage flow shows the top 3 similar past incidents. Each hit has a "Not similar" button
(``similar:not_similar``); the feedback is stored and re-ranks later searches.
"""

from __future__ import annotations

import difflib
import json
import logging
import re
from typing import Any

from knowledge.models import Incident, utcnow
from knowledge.people import names_in_text
from knowledge.search import KINDS, Hit, SearchError, open_index, record_not_similar, search, undo_feedback
from skills.base import (
    INCIDENT_REF,
    LEAD_SEV,
    USER_ID,
    Action,
    BaseSkill,
    Finding,
    IncidentFacts,
    Section,
    SkillContext,
    SkillError,
    SkillRequest,
    SkillResult,
    db_id,
    esc,
)
from skills.postmortem import kb_url as postmortem_url
from skills.search_filters import FILTER_HELP, FilterError, Filters, take_filters

__all__ = ["SimilarSkill", "collapse", "hit_lines", "kb_link", "kb_url", "service_in", "read_filters",
           "MIN_SCORE_SHOWN"]

log = logging.getLogger("warroom.skills.similar")

MIN_SCORE_SHOWN = 0.2  # weaker hits are not worth a reader's time
MIN_SCORE_CARD = 0.3
_SYMPTOM = re.compile(r"\b(is down|went down|down again|failing|fails|erroring|errors|throwing|5xx|50[0-4]s?|timeouts?|"
                      r"timing out|slow|lagg?(ing)?|broken|outage|crash\w*|oom\w*|unreachable|not responding|"
                      r"degraded|spik(e|es|ing)|paging|on fire)\b", re.I)




# "find incidents about certificates", "search postmortems for redis evictions" (the incident skill refused it; "list
# incidents for payments" is the list)
_FIND = re.compile(r"^\W*(?:please\s+)?(?:find|search(?:\s+for)?|look\s+up|look\s+for)\s+(?:all\s+|the\s+|any\s+)?"
                   r"(?:past\s+|old\s+|previous\s+|earlier\s+)?(?:incidents|postmortems|outages)\s+(?:about|with|for|on|"
                   r"mentioning|involving|like)\s+(?P<what>\S.*)$", re.I | re.S)
# "similar", "anything similar?", "seen this before?" with nothing else to search for
_SIMILAR_HERE = re.compile(r"^\W*(?:(?:any(?:thing)?|something|incidents?)\s+)?(?:similar|like this)"
                           r"(?:\s+(?:to\s+)?(?:this|it|one|incidents?))?\W*$", re.I)


def _lead_sev(text: str) -> re.Match[str] | None:
    """A severity first, words after it, and no incident named ("sev1 #105" re-rates #105: the incident
    skill's). A severity first is a report, whatever the words after it."""
    m = LEAD_SEV.match(text)
    return m if m and re.match(r"\w", text[m.end():]) and not INCIDENT_REF.search(text) else None


def _reported(text: str) -> bool:
    """A symptom stated, not asked ("checkout is throwing 500s"; a question goes to ``ask``)."""
    return bool(_lead_sev(text)) or (bool(_SYMPTOM.search(text)) and not text.rstrip().endswith("?"))




def kb_url(ctx: SkillContext, hit: Hit) -> str | None:
    """The knowledge-base page of the hit's postmortem, when it has one."""
    if hit.postmortem_id is None or hit.incident_id is None:
        return None
    return postmortem_url(ctx, hit.incident_id)


def kb_link(ctx: SkillContext, hit: Hit) -> str:
    """Slack mrkdwn reference to the hit: a link to the postmortem page when there is one."""
    url = kb_url(ctx, hit)
    if url is not None:
        # Numbered like the page it opens (/kb/postmortems/<incident>): the postmortem's own row id means nothing
        label = f"incident #{hit.incident_id}" if hit.kind == "incident" else f"postmortem of #{hit.incident_id}"
        return f"<{url}|{label}>"
    return esc(hit.link)


_SLACK_USER = re.compile(USER_ID)


def resolver(resolved_by: str, markup: bool = True) -> str:
    """Who or what resolved a past incident: a Slack user (its assignee) or a runbook (the run that fixed it)."""
    if _SLACK_USER.fullmatch(resolved_by):
        return f"resolved by <@{resolved_by}>" if markup else f"resolved by @{resolved_by}"
    return f"resolved with {esc(resolved_by) if markup else resolved_by}"


def collapse(hits: list[Hit]) -> list[Hit]:
    """One hit per incident: a postmortem and its incident count once (the better-ranked one)."""
    seen: set[str] = set()
    out: list[Hit] = []
    for h in hits:
        group = f"incident:{h.incident_id}" if h.incident_id is not None else h.key
        if group not in seen:
            seen.add(group)
            out.append(h)
    return out


def hit_lines(ctx: SkillContext, n: int, hit: Hit, markup: bool = True) -> tuple[str, ...]:
    """How one hit reads in Slack: title, why, and the fix that worked.

    With ``markup`` the lines are escaped mrkdwn with links (skill results); without, they are plain
    text for the incident card, which escapes every finding line itself.
    """
    e = esc if markup else str
    if markup:
        head = f"*{n}. {kb_link(ctx, hit)}* {e(hit.title)} (match {hit.score:.2f})"
    else:
        head = f"{n}. {hit.link}: {hit.title} (match {hit.score:.2f})"
    lines = [head, f"    why: {e(hit.why)}"]
    if hit.kind == "runbook":
        lines.append(f"    runbook: {e(hit.resolution[:200])}" if hit.resolution else "")
    elif hit.resolution:
        by = f" ({resolver(hit.resolved_by, markup)})" if hit.resolved_by else ""
        lines.append(f"    fix that worked: {e(hit.resolution[:300])}{by}")
    elif hit.status and hit.status not in ("resolved", "closed", "published"):
        lines.append(f"    still {e(hit.status)}")
    url = kb_url(ctx, hit)
    if not markup and url:
        lines.append(f"    postmortem: {url}")
    return tuple(x for x in lines if x)


def _button(n: int, hit: Hit, incident_id: int | None, query: str) -> Action:
    value = json.dumps({"t": hit.key, "i": incident_id, "q": query[:1200]})
    return Action(action_id="similar:not_similar", label=f"Not similar: #{n}", value=value)


def service_in(text: str, ctx: SkillContext) -> str | None:
    """The longest service name the knowledge base knows (from its incidents, postmortems and runbooks) that
    ``text`` mentions as a whole name."""
    kb = open_index(ctx)
    found = names_in_text((s for d in kb.docs.values() for s in (d.service, *d.services) if s), text)
    return max(found, key=len) if found else None


def read_filters(ctx: SkillContext, text: str, natural: bool) -> tuple[str, Filters]:
    """The search text and the filters written in it (``service:x since:30d sev:2 status:resolved``; with
    ``natural``, "in the last 30 days" too); a filter that cannot be read, or a service the knowledge base has
    nothing about, is a :class:`SkillError` (a filter that silently matches nothing answers another question)."""
    try:
        rest, filters = take_filters(text, utcnow(), natural=natural)
    except FilterError as exc:
        raise SkillError(f"{exc} Filters: {FILTER_HELP}.") from None
    if filters.service:
        known = {s.lower() for d in open_index(ctx).docs.values() for s in (d.service, *d.services) if s}
        if filters.service not in known:
            close = difflib.get_close_matches(filters.service, sorted(known), n=3, cutoff=0.6) or sorted(
                k for k in known if k.startswith(filters.service))[:3]
            raise SkillError(f"No past incident, postmortem or runbook is about `{esc(filters.service)}`"
                             + (f" (did you mean {', '.join(f'`{esc(c)}`' for c in close)}?)" if close else "") + ".")
    return rest, filters


class SimilarSkill(BaseSkill):
    """Find similar past incidents and what fixed them: `/similar <text or #incident>`."""

    name = "similar"
    commands = ("/similar",)
    keywords = ("similar incident", "similar to", "like this before")
    examples = ("/similar payments-api 503 remaining connection slots are reserved",)
    usage = "Usage: `/similar <what is happening> [filters]`, filters " + FILTER_HELP

    def warm(self, ctx: SkillContext) -> None:
        """Load the encoder and the index (rebuilt from the database when unusable)."""
        enc = open_index(ctx).encoder
        warm = getattr(enc, "warm", None)
        if callable(warm):
            warm()

    def score(self, text: str) -> float:
        """Keywords; "similar" next to an incident number ("anything similar to #105?") wins over a question;
        a symptom reported in words ("checkout is throwing 500s") is searched (with an offer to open one)."""
        if re.search(r"\bsimilar\b", text, re.I) and INCIDENT_REF.search(text) or _SIMILAR_HERE.match(text):
            return 0.9
        if _lead_sev(text) or _FIND.match(text):  # above the incident keyword "sev1": a report, offered as an
            return 0.9  # incident; "find incidents about certificates": searched
        if _reported(text):  # above a lone incident keyword ("checkout outage"), which names no action
            return max(0.55, super().score(text))
        return super().score(text)

    def _query_for(self, text: str, ctx: SkillContext) -> tuple[str, int | None, str | None, str | None]:
        m = INCIDENT_REF.fullmatch(text.strip())  # the whole text names one incident
        if not m and re.fullmatch(r"#\d{10,}", text.strip()):  # past any id: no incident, not words to search
            raise SkillError(f"There is no incident {text.strip()[:40]}.")
        if not m:
            return text, None, service_in(text, ctx), None
        with ctx.db.session() as s:
            inc = s.get(Incident, int(m.group(1)))
            if inc is None:
                raise SkillError(f"There is no incident #{m.group(1)}.")
            return f"{inc.title}. {inc.description}", inc.id, inc.service_name, inc.alert_name

    def run(self, request: SkillRequest, ctx: SkillContext) -> SkillResult:
        text = request.text.strip()
        if not text:
            raise SkillError("Tell me what to look for: `/similar <alert, error or symptom>` or `/similar #123`.")
        if request.source in ("mention", "dm") and (find := _FIND.match(text)):
            text = find.group("what").strip()  # "find incidents about certificates": certificates
        if (request.source in ("mention", "dm") and request.incident_id is not None and _SIMILAR_HERE.match(text)
                and not INCIDENT_REF.search(text)):
            text = f"#{request.incident_id}"  # "anything similar?" under an incident's card: that incident
        if request.source in ("mention", "dm") and re.search(r"\bsimilar\b", text, re.I):
            ref = INCIDENT_REF.search(text)  # "anything similar to #105?": that incident is the query
            if ref:
                with ctx.db.session() as s:
                    known = s.get(Incident, int(ref.group(1))) is not None
                text = f"#{ref.group(1)}" if known else text  # else a number of its own ("build #4521")
        sev = _lead_sev(text) if request.source in ("mention", "dm") else None
        if sev:  # the severity is for the incident the button opens, not words to search for
            text = text[sev.end():].strip()
        text, filters = read_filters(ctx, text, natural=request.source in ("mention", "dm"))
        if filters and not text.strip():
            raise SkillError("Tell me what to look for as well as the filters, e.g. `/similar db timeout "
                             "service:payments-api since:30d`.")
        query, incident_id, service, alert = self._query_for(text, ctx)
        own = incident_id or request.incident_id  # the incident searched from, or the one this is posted under
        exclude = (f"incident:{own}",) if own is not None else ()
        try:
            hits = search(ctx, text=query, kinds=KINDS, service=service or filters.service, alert_name=alert,
                          exclude=exclude,
                          incident_id=incident_id or request.incident_id, k=8, **filters.search_args())
        except SearchError as exc:
            raise SkillError(str(exc)) from None
        hits = [h for h in collapse(hits) if h.score >= MIN_SCORE_SHOWN
                and (own is None or h.incident_id != own)][:5]
        report = (request.source in ("mention", "dm") and incident_id is None and request.incident_id is None
                  and (sev or _reported(text)))  # under an incident's card, a symptom is part of that one
        level = max(1, int(sev.group(1))) if sev else None
        label, value = ((f"Open a SEV{level} incident", f"{text[:290]} sev{level}") if sev
                        else ("Open an incident", text[:300]))
        offer = (Action("incident:new", label, value, "primary"),) if report else ()
        if not hits and filters:
            return SkillResult(title="Nothing similar found", summary=f"Nothing matches this closely with the "
                               f"filters ({esc(filters.describe())}). Try without them, or with a longer span.",
                               actions=offer, data={"hits": []})
        if not hits:
            return SkillResult(title="Nothing similar found", summary="No past incident, postmortem or runbook "
                               "matches this closely. Try other words, an alert name or a log line.",
                               actions=offer, data={"hits": []})
        sections = tuple(Section("", hit_lines(ctx, i, h)) for i, h in enumerate(hits, 1))
        actions = offer + tuple(_button(i, h, incident_id or request.incident_id, query)
                                for i, h in enumerate(hits, 1))
        note = " (your text was long: I searched its first 8,000 characters)" if len(query) > 8000 else ""
        about = f"_{esc(text[:150])}_"
        if incident_id is not None:  # "/similar #109": name the incident, not just its number
            about = f"incident #{incident_id}: _{esc(query.split('. ')[0][:150])}_"
        if filters:
            note += f" (only {esc(filters.describe())})"
        if report:
            note += f". Not an incident yet: *{label}* declares it"
        return SkillResult(title="Similar past incidents", summary=f"Closest matches for {about}{note}",
                           sections=sections, actions=actions,
                           data={"hits": [h.key for h in hits], "scores": [h.score for h in hits]})

    def triage(self, facts: IncidentFacts, ctx: SkillContext) -> Finding | None:
        """The "Similar incidents" section of an incident card: top 3 resolved ones with their fix."""
        text = ". ".join(p for p in (facts.title, facts.description, *facts.log_lines[:20]) if p)
        try:
            hits = search(ctx, text=text, kinds=("incident", "postmortem"), service=facts.service,
                          alert_name=facts.alert_name, log_lines=facts.log_lines, resolved_only=True,
                          exclude=(f"incident:{facts.incident_id}",), incident_id=facts.incident_id, k=9)
        except SearchError:
            return None
        hits = [h for h in collapse(hits) if h.score >= MIN_SCORE_CARD and h.incident_id != facts.incident_id][:3]
        if not hits:
            return None
        lines = tuple(x for i, h in enumerate(hits, 1) for x in hit_lines(ctx, i, h, markup=False))
        actions = tuple(_button(i, h, facts.incident_id, text) for i, h in enumerate(hits, 1))
        return Finding(skill=self.name, heading="Similar incidents", lines=lines, actions=actions,
                       data={"hits": [h.key for h in hits], "scores": [h.score for h in hits]})

    def handle_action(self, action_id: str, request: SkillRequest, ctx: SkillContext) -> SkillResult | None:
        """"Not similar": store the feedback, and refresh the card when it was given on one; "Undo" (whoever
        clicked) takes it back."""
        if action_id == "similar:undo":
            return self._undo(request, ctx)
        if action_id != "similar:not_similar":
            return None
        try:
            value: Any = json.loads(request.text or "")
            target, incident_id, query = str(value["t"]), value.get("i"), str(value.get("q") or "")
            if not re.fullmatch(r"(incident|postmortem|runbook):[\w.\-]{1,100}", target):
                raise ValueError(target)
            if incident_id is not None and (incident_id := db_id(str(incident_id))) is None:
                raise ValueError("not an incident id")  # true, 2.5, 30 digits (SQLite cannot bind them)
        except (ValueError, KeyError, TypeError):
            raise SkillError("That button's data is broken; nothing was recorded.") from None
        if incident_id is not None:
            with ctx.db.session() as s:
                if s.get(Incident, incident_id) is None:
                    raise SkillError(f"Incident #{incident_id} no longer exists; nothing was recorded.")
        new = record_not_similar(db=ctx.db, target=target, incident_id=incident_id, user_id=request.user_id,
                                 query=query)
        data: dict[str, Any] = {"feedback": target, "recorded": new}
        if incident_id is not None:
            self._refresh_finding(incident_id, ctx)
            data["refresh_card"] = incident_id
        kind, _, ref = target.partition(":")
        msg = (f"Thanks: {kind} {ref} will not be suggested for this again." if new
               else f"You already marked {kind} {ref} as not similar.")
        undo = (Action("similar:undo", "Undo", str(new)),) if new else ()  # a click by mistake
        return SkillResult(title="Feedback recorded", summary=msg, ephemeral=True, data=data, actions=undo)

    def _undo(self, request: SkillRequest, ctx: SkillContext) -> SkillResult:
        fb_id = db_id((request.text or "").strip())
        if fb_id is None:
            raise SkillError("That Undo button's data is broken; nothing was changed.")
        try:
            fb, now = undo_feedback(db=ctx.db, feedback_id=fb_id, kind="not_similar", user_id=request.user_id)
        except LookupError:
            raise SkillError("There is no \"not similar\" to undo here.") from None
        except PermissionError as exc:
            raise SkillError(f"That was not your click: {exc}.") from None
        kind, _, ref = str(fb.target).partition(":")
        if not now:
            return SkillResult(title="Already undone", summary=f"{kind} {ref} is suggested again already.",
                               ephemeral=True)
        data: dict[str, Any] = {"feedback": fb.target, "undone": True}
        if fb.incident_id is not None:
            self._refresh_finding(fb.incident_id, ctx)
            data["refresh_card"] = fb.incident_id
        return SkillResult(title="Feedback undone", summary=f"{kind} {ref} can be suggested again.", ephemeral=True,
                           data=data)

    def _refresh_finding(self, incident_id: int, ctx: SkillContext) -> None:
        with ctx.db.session() as s:
            inc = s.get(Incident, incident_id)
            if inc is None:
                return
            facts = IncidentFacts(incident_id=inc.id, title=inc.title, description=inc.description,
                                  service=inc.service_name, alert_name=inc.alert_name, severity=inc.severity)
        finding = self.triage(facts, ctx)
        with ctx.db.session() as s:
            inc = s.get(Incident, incident_id)
            if inc is None:
                return
            findings = dict(inc.findings or {})
            if finding is None:
                findings.pop(self.name, None)
            else:
                findings[self.name] = {"heading": finding.heading, "lines": list(finding.lines), "data": finding.data,
                                       "actions": [dict(a.__dict__) for a in finding.actions]}
            inc.findings = findings
