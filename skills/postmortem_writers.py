"""Postmortem writers: one interface, a deterministic writer (the default) and the shared renderer.

A writer turns :class:`~knowledge.facts.PostmortemFacts` (already redacted) into a
:class:`~knowledge.postmortems.PostmortemDoc`. The document's structure (impact, timeline, evidence,
action items, related incidents) is always built here from the facts; a writer only supplies the
*prose* of the narrative sections. That is why text in the facts (even "ignore previous
instructions ...") can change nothing but prose, and why prose is what gets checked.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Protocol

from knowledge.facts import PostmortemFacts, TimelineItem
from knowledge.postmortems import PostmortemDoc
from skills.action_items import section_lines
from skills.postmortem_check import ActionItem, extract_action_items
from skills.redact import mask_secrets

__all__ = ["PostmortemWriter", "DeterministicWriter", "Prose", "PROSE_KEYS", "REQUIRED_SECTIONS",
           "render", "redact", "deterministic_prose", "md_escape", "facts_digest"]

PROSE_KEYS = ("summary", "root_cause", "detection", "resolution", "went_well", "went_wrong")
REQUIRED_SECTIONS = ("summary", "impact", "timeline", "root_cause", "resolution", "action_items")
MAX_TIMELINE_MESSAGES = 150  # beyond this, only key moments, lifecycle events and action items are listed
_CAUSE = re.compile(r"\b(root cause|caused by|because|due to|culprit)\b", re.I)


class PostmortemWriter(Protocol):
    """Writes a postmortem document from redacted facts."""

    name: str

    def write(self, facts: PostmortemFacts) -> PostmortemDoc: ...


Prose = dict[str, str]


def redact(facts: PostmortemFacts) -> PostmortemFacts:
    """The facts with secrets masked in every free-text field (before any writer sees them)."""
    return facts.map_text(mask_secrets)


def facts_digest(facts: PostmortemFacts) -> str:
    """A short hash of the facts: same facts, same digest (drafts are not duplicated on retries)."""
    blob = json.dumps(facts.to_dict(), sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def md_escape(text: str, limit: int = 300) -> str:
    """One line of untrusted text, safe inside a Markdown list item (no links, headings or markup)."""
    one = re.sub(r"\s+", " ", text).strip()
    if len(one) > limit:
        one = one[: limit - 1] + "…"
    return re.sub(r"([\\\[\]`*_#|])", r"\\\1", one)


def _when(facts: PostmortemFacts, at: object) -> str:
    import datetime as dt

    if not isinstance(at, dt.datetime):
        return "unknown"
    if at.date() == facts.started_at.date():
        return f"{at:%H:%M}"
    return f"{at:%Y-%m-%d %H:%M}"


def _cause_messages(facts: PostmortemFacts) -> list[TimelineItem]:
    return [t for t in facts.timeline if t.source == "message" and _CAUSE.search(t.text)]


def deterministic_prose(facts: PostmortemFacts) -> Prose:
    """The narrative sections, written by rules from the facts only."""
    d = facts.durations
    svc = ", ".join(facts.services) or "an unnamed service"
    start = f"{facts.started_at:%Y-%m-%d %H:%M} UTC"
    summary = f"SEV{facts.severity} incident on {svc}: {facts.title}. It started at {start}"
    if facts.resolved_at is not None and d["to_resolve"] is not None:
        summary += f" and was resolved at {_when(facts, facts.resolved_at)} after {d['to_resolve']} min."
    else:
        summary += f" and is {facts.status}."
    if facts.description:
        summary += f" {facts.description}"
    if facts.root_cause:
        root = facts.root_cause
    else:
        cands = _cause_messages(facts)
        key = [t for t in cands if t.key] or cands
        root = f"From the channel: \"{key[-1].text}\"" if key else ""
    first_alert = facts.alerts[0] if facts.alerts else None
    if first_alert is not None:
        detection = f"Detected by the alert {first_alert.name}"
        if d["to_detect"] is not None:
            detection += f", {d['to_detect']} min after the start"
        detection += "."
    else:
        detection = f"Reported in Slack at {_when(facts, facts.detected_at)}; no alert fired."
    if d["to_acknowledge"] is not None:
        who = facts.person_name(facts.assignee) or facts.assignee
        detection += f" Acknowledged after {d['to_acknowledge']} min" + (f" by {who}." if who else ".")
    res = [facts.resolution] if facts.resolution else []
    if not res:
        ev = [t for t in facts.timeline if t.kind == "resolve" and t.text]
        res = [ev[-1].text] if ev else []
    res += [f"Runbook {r.slug} (v{r.version}) ran{' as a dry run' if r.dry_run else ''}: {r.status}."
            for r in facts.runbooks]
    if facts.mitigated_at is not None and d["to_mitigate"] is not None:
        res.append(f"Impact was mitigated {d['to_mitigate']} min after the start.")
    resolution = " ".join(x if x.rstrip().endswith((".", "!", "?")) else x.rstrip() + "." for x in res)
    well, wrong = [], []
    if d["to_acknowledge"] is not None and d["to_acknowledge"] <= 15:
        well.append(f"Acknowledged within {d['to_acknowledge']} min.")
    elif d["to_acknowledge"] is not None:
        wrong.append(f"Acknowledgement took {d['to_acknowledge']} min.")
    if any(r.status in ("succeeded", "success", "done") and not r.dry_run for r in facts.runbooks):
        well.append("A runbook resolved or mitigated the problem through the approval flow.")
    if any(r.status in ("failed", "error") for r in facts.runbooks):
        wrong.append("A runbook execution failed.")
    if any(t.key for t in facts.timeline):
        well.append("Key moments were marked in the channel while it happened.")
    if d["to_detect"] is not None and d["to_detect"] > 10:
        wrong.append(f"Detection came {d['to_detect']} min after the start.")
    if len(facts.alerts) > 5:
        wrong.append(f"{len(facts.alerts)} alerts fired for one incident (noise).")
    if not facts.root_cause_confirmed:
        wrong.append("The root cause is not confirmed yet.")
    return {"summary": summary, "root_cause": root, "detection": detection, "resolution": resolution.strip(),
            "went_well": " ".join(well), "went_wrong": " ".join(wrong)}


def _timeline_lines(facts: PostmortemFacts, items: list[ActionItem]) -> list[str]:
    action_links = {a.permalink for a in items if a.permalink}
    msgs = [t for t in facts.timeline if t.source == "message"]
    keep_msgs = set(map(id, msgs[:MAX_TIMELINE_MESSAGES]))
    lines = []
    for t in facts.timeline:
        if t.source == "message" and id(t) not in keep_msgs and not t.key and t.permalink not in action_links:
            continue
        who = f" — {t.actor_name or t.actor}" if (t.actor_name or t.actor) else ""
        text = md_escape(t.text or t.kind, 240)
        body = f"[{text}]({t.permalink})" if t.permalink else text
        mark = "**key** " if t.key else ""
        lines.append(f"- {_when(facts, t.at)} · {t.kind} · {mark}{body}{who}")
    if len(msgs) > MAX_TIMELINE_MESSAGES:
        lines.append("- … later messages are in the incident channel; key moments and action items are listed.")
    return lines


def render(facts: PostmortemFacts, prose: Prose, *, writer: str, extra: dict[str, object] | None = None
           ) -> PostmortemDoc:
    """Assemble the document: structure from the facts, narrative from ``prose``."""
    items = extract_action_items(facts)
    d = facts.durations
    confirmed = bool(facts.root_cause) and facts.root_cause_confirmed
    rc_status = "confirmed" if confirmed else ("hypothesis" if prose.get("root_cause") else "unknown")
    md: list[str] = [f"# Postmortem: {md_escape(facts.title)} (incident #{facts.incident_id})", "",
                     f"_Status: draft · writer: {writer} · root cause: {rc_status}_", "", "## Summary",
                     md_escape(prose.get("summary", ""), 4000) or "_Not enough facts for a summary._", "",
                     "## Impact", f"- Severity: SEV{facts.severity}",
                     f"- Services: {', '.join(facts.services) or 'not recorded'}",
                     *([f"- Who and what was affected: {md_escape(facts.impact, 1000)}"] if facts.impact else []),
                     f"- Started: {facts.started_at:%Y-%m-%d %H:%M} UTC"]
    for label, key in (("Time to detect", "to_detect"), ("Time to acknowledge", "to_acknowledge"),
                       ("Time to mitigate", "to_mitigate"), ("Duration (to resolution)", "to_resolve")):
        if d[key] is not None:
            md.append(f"- {label}: {d[key]} min")
    if facts.alerts:
        names = ", ".join(dict.fromkeys(a.name for a in facts.alerts))
        md.append(f"- Alerts: {len(facts.alerts)} ({md_escape(names)})")
    md += ["", "## Timeline", *(_timeline_lines(facts, items) or ["_No timeline recorded._"]), "",
           "## Root cause"]
    rc = md_escape(prose.get("root_cause", ""), 4000)
    if not rc:
        md.append("_Unknown: no root cause was recorded or discussed in the channel._")
    elif confirmed:
        md.append(f"**Confirmed:** {rc}")
    else:
        md.append(f"**Hypothesis (not confirmed):** {rc}")
        # Pinned messages are the evidence people chose; only without any, messages that name a cause.
        evidence = [t for t in facts.timeline if t.key and t.source == "message"][:5] or _cause_messages(facts)[-3:]
        if evidence or facts.findings:
            md.append("")
            md.append("Evidence:")
        for t in evidence:
            body = md_escape(t.text, 240)
            md.append(f"- [{body}]({t.permalink})" if t.permalink else f"- {body}")
        for f in facts.findings:
            md.append(f"- {md_escape(f.heading, 120)}: {md_escape('; '.join(f.lines[:3]), 300)}")
    md += ["", "## Detection", md_escape(prose.get("detection", ""), 2000) or "_Not recorded._", "",
           "## Resolution", md_escape(prose.get("resolution", ""), 4000) or "_Not recorded._", ""]
    if facts.runbooks:
        md.append("Runbooks executed:")
        for r in facts.runbooks:
            who = facts.person_name(r.requested_by) or r.requested_by
            ok = f", approved by {facts.person_name(r.approved_by) or r.approved_by}" if r.approved_by else ""
            md.append(f"- {md_escape(r.slug)} v{r.version}: {md_escape(r.status)}"
                      f"{' (dry run)' if r.dry_run else ''}, requested by {who}{ok}")
            md += [f"  - {md_escape(a, 200)}" for a in r.audit[:6]]
        md.append("")
    md += ["## What went well", md_escape(prose.get("went_well", ""), 2000) or "_Nothing recorded._", "",
           "## What went wrong", md_escape(prose.get("went_wrong", ""), 2000) or "_Nothing recorded._", "",
           "## Action items"]
    tracked = [{"text": a.text, "owner": a.owner, "owner_name": a.owner_name, "permalink": a.permalink}
               for a in items]
    md += section_lines(tracked, md_escape)
    md += ["", "## Related incidents"]
    for r in facts.related:
        when = f" (resolved {r.resolved_at:%Y-%m-%d})" if r.resolved_at else ""
        md.append(f"- #{r.incident_id} {md_escape(r.title, 200)}{when}: {md_escape(r.root_cause, 300)}")
    if not facts.related:
        md.append("_None found._")
    filled = {"summary": bool(prose.get("summary")), "impact": True,
              "timeline": bool(facts.timeline), "root_cause": bool(rc), "resolution": bool(prose.get("resolution")),
              "action_items": bool(items), "detection": bool(prose.get("detection")),
              "related": bool(facts.related)}
    fields: dict[str, object] = {
        "severity": facts.severity, "services": list(facts.services), "durations_min": d,
        "started_at": facts.started_at.isoformat(timespec="seconds"),
        "resolved_at": facts.resolved_at.isoformat(timespec="seconds") if facts.resolved_at else None,
        "root_cause_status": rc_status, "sections": dict(prose), "sections_filled": filled,
        "action_items": tracked,
        "related": [r.incident_id for r in facts.related], "facts_sha256": facts_digest(facts),
        "timeline_count": len(facts.timeline), **(extra or {}),
    }
    return PostmortemDoc(title=f"Postmortem: {facts.title}", summary=prose.get("summary", ""),
                         root_cause=prose.get("root_cause", ""), resolution=prose.get("resolution", ""),
                         markdown="\n".join(md) + "\n", fields=fields, writer=writer)


@dataclass(frozen=True)
class DeterministicWriter:
    """The default writer: rules over the facts, offline, same facts give the same document."""

    name: str = "deterministic"

    def write(self, facts: PostmortemFacts) -> PostmortemDoc:
        return render(facts, deterministic_prose(facts), writer=self.name)
