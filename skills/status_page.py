"""A customer-facing status update, drafted from what the incident knows: "draft a status page update for #113",
"what should we tell customers?" under its card, ``/incident statuspage [id]``.

The words are for people outside: the phase a status page uses (Investigating, Identified, Monitoring, Resolved)
from the incident's state, what is affected from the impact people recorded (``impact: ...``) or else the service,
when it started, and when the next update comes. Nothing internal goes out: no people, no hosts, no alert text, no
root cause wording (a cause is said only as "identified"); secrets are masked anyway. It is a draft: a person
posts it (its *Post as status update* button makes it the incident's update, for the status channel).
"""

from __future__ import annotations

import datetime as dt
import re

from knowledge.models import Incident, utcnow
from skills.base import duration
from skills.redact import mask_secrets

__all__ = ["STATUSPAGE_ASKED", "phase", "draft"]

_REF = r"(?:\s+(?:for|about|on|of)\s+(?:#|inc(?:ident)?[-\s#]*)\d{1,9})?"
STATUSPAGE_ASKED = re.compile(
    r"^\W*(?:(?:please\s+)?(?:draft|write|prepare|give\s+me|suggest|make)\s+(?:me\s+)?(?:a\s+|an\s+|the\s+)?"
    r"(?:status[\s-]?page|customer(?:-facing)?|public|external|status)\s+(?:update|message|post|text|note|draft)"
    r"|(?:status[\s-]?page|customer|public)\s+(?:update|draft)\b"
    # "update the status page", "post to the status page" (it showed the incident): a draft, posted by its button
    r"|(?:(?:please\s+)?(?:update|post\s+(?:to|on)|write\s+(?:to|on)))\s+(?:the\s+|our\s+)?status[\s-]?page\b"
    r"|summari[sz]e\s+(?:it|this|(?:#|inc(?:ident)?[-\s#]*)\d{1,9})\s+for\s+(?:the\s+)?(?:status[\s-]?page|customers)"
    rf"|what\s+(?:should|do|can)\s+we\s+(?:tell|say\s+to)\s+(?:the\s+)?(?:customers|users|the\s+public|clients)){_REF}",
    re.I)
_PHASES = {"open": "Investigating", "acknowledged": "Investigating", "mitigated": "Monitoring",
           "resolved": "Resolved"}
NEXT_UPDATE_MIN = {1: 30, 2: 30, 3: 60, 4: 120}


def phase(inc: Incident) -> str:
    """The status-page phase: Investigating, Identified (a cause is known, not fixed yet), Monitoring, Resolved."""
    if inc.status in ("open", "acknowledged") and (inc.root_cause or "").strip():
        return "Identified"
    return _PHASES.get(inc.status, "Investigating")


def draft(inc: Incident) -> str:
    """The draft, one paragraph, for people outside the company."""
    impact = str(((inc.findings or {}).get("impact") or {}).get("text") or "").strip().rstrip(".")
    what = impact or f"degraded service on {inc.service_name or 'one of our services'}"
    started = f"{inc.created_at:%H:%M} UTC on {inc.created_at:%d %b}"
    p = phase(inc)
    if p == "Resolved":
        lasted = duration(((inc.resolved_at or utcnow()) - inc.created_at).total_seconds())
        text = (f"Resolved: the issue causing {what} has been fixed and the service is operating normally. It began "
                f"at {started} and lasted {lasted}. We apologise for the disruption.")
    elif p == "Monitoring":
        text = (f"Monitoring: a fix has been applied for {what}, and we are watching the results. The issue began "
                f"at {started}. Next update in {NEXT_UPDATE_MIN.get(inc.severity, 60)} minutes.")
    elif p == "Identified":
        text = (f"Identified: we have found the cause of {what} and are working on a fix. The issue began at "
                f"{started}. Next update in {NEXT_UPDATE_MIN.get(inc.severity, 60)} minutes.")
    else:
        text = (f"Investigating: we are investigating {what}. The issue began at {started}. Next update in "
                f"{NEXT_UPDATE_MIN.get(inc.severity, 60)} minutes.")
    due = ((inc.findings or {}).get("eta") or {}).get("due")  # "eta: 45 min" said under the card, still ahead
    if p in ("Investigating", "Identified") and isinstance(due, str):
        try:
            when = dt.datetime.fromisoformat(due)
        except ValueError:
            when = None
        if when is not None and when > utcnow():
            text = text.replace(" Next update in", f" We expect to restore service by {when:%H:%M} UTC. Next update in",
                                1)
    return mask_secrets(text)
