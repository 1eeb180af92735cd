"""``/incident``: open, acknowledge, re-rate, escalate, assign, mitigate, resolve, reopen and list incidents.

``/incident new <title> [sev1-4]``, ``/incident ack [id]``, ``/incident status [id]``,
``/incident sev <1-4> [id]``, ``/incident escalate [id]``, ``/incident assign @user [id]``,
``/incident mitigate [id] [what]``, ``/incident resolve|close [id] [what fixed it]``, ``/incident reopen [id]``,
``/incident note [id] <text>`` (a key moment on the timeline), ``/incident update [id] <text>`` (a note also
posted in the status channel), ``/incident who [id]``,
``/incident list [mine] [sev1-4] [service or team]``, ``/incident stats [days] [service or team]``,
``/incident timeline [id]``, ``/incident handover [hours]`` (the shift handover, see ``skills.handover``).
Without an id, the incident is the one whose channel (or card thread) this is.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections import Counter
from itertools import groupby
from statistics import median
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from knowledge.models import (
    REPORT_KEY_PREFIX,
    Alert,
    Expert,
    Incident,
    Job,
    Postmortem,
    Service,
    Team,
    TimelineEvent,
    utcnow,
)
from knowledge.service_graph import related_lines, related_open
from skills.base import (
    BARE_USER_ID,
    INCIDENT_REF,
    LEAD_SEV,
    USER_ID,
    Action,
    BaseSkill,
    Section,
    SkillContext,
    SkillError,
    SkillRequest,
    SkillResult,
    clock,
    db_id,
    duration,
    esc_keep_users,
    outsider,
    severity_word,
    slack_clock,
    small_int,
)
from skills.base import esc as escape
from skills.downtime import DOWNTIME_ASKED, downtime
from skills.handover import HANDOVER, handover, handover_hours, last_updates
from skills.incident_edit import IncidentEdits, said_as_command, surely_said
from skills.incident_relation import RELATED_ASKED, relation
from skills.intake import OPEN_STATUSES
from skills.postmortem import kb_url
from skills.redact import mask_secrets
from skills.status_page import STATUSPAGE_ASKED, phase
from skills.status_page import draft as status_draft

__all__ = ["IncidentSkill"]

_USER = re.compile(rf"<@([A-Z0-9]+)(?:\|[^>]*)?>|@?({BARE_USER_ID})")
_ID = re.compile(r"^#?(\d{1,9})[:,.;]?$")  # "resolve #12: rolled back"
# Free text about one incident: "status of incident #101", "what's going on with #113?"
_PD_MAX_INCIDENTS = 20  # PagerDuty incidents written per change of one of ours
_VERBS = ("new", "declare", "ack", "acknowledge", "status", "sev", "escalate", "assign", "mitigate", "resolve", "close",
          "reopen", "list", "note", "stats", "timeline", "role", "roles", "follow", "unfollow",
          "remind", "rename", "service", "invite", "changes", "impact", "statuspage", "eta", "unassign", "link",
          "links", "snooze")
# ("handover" is read in words: "handover to @bob" assigns)
_FREE_STATUS = re.compile(r"\b(status|update|timeline|going on|happening|happened|summary|details|working on|"
                          r"sev|severity|assignee|assigned|root cause|caused?|fix(?:ed)?|resolution|resolved|"
                          r"summari[sz]e|recap|sitrep|tell me about|brief me|where are we"
                          # "who acknowledged #113?", "is #113 still open?", "which team owns #113?", "the card for
                          # #113", "where is #113 discussed?" (they went to the knowledge base)
                          r"|acknowledged|acked|still\s+open|team\s+owns|owns|owning\s+team|channel|card|discussed"
                          r"|what\s+service|take\s+to\s+(?:ack|acknowledge|resolve|fix|mitigate)"
                          r"|how\s+long\s+(?:did|was|has|is)|(?:did|does)\s+.{0,20}?last)\b"
                          # "show me #101", "show incident 101" (not "show the runbooks for #101")
                          r"|^\W*(?:show|display)(?:\s+me)?\s+(?:the\s+)?(?:#|inc(?:ident)?\b[-\s#]*)\d", re.I)
# Numbers over a period: "how many incidents did we have this week?", "incident stats for 30 days", "MTTR"
_STATS = re.compile(r"^\W*(?:how\s+many\s+(?:incidents|(?:sev(?:erity)?[\s-]?[1-4]|p[0-4])(?:'?s)?\b(?:\s+incidents)?)"
                    r"|incident\s+(?:stats|statistics|metrics|numbers)|stats\b"
                    # "compare this week to last week", "how does this month compare to last month?", "incidents this
                    # week vs last week" (they got the help)
                    r"|compare\s+(?:this|the\s+last)\s+(?:week|month|quarter|\d{1,3}\s+days)"
                    r"|how\s+(?:does|did|do)\s+(?:this|the\s+last)\s+(?:week|month|quarter)\s+compare"
                    r"|incidents?\s+this\s+(?:week|month|quarter)\s+(?:vs\.?|versus|compared\s+(?:to|with))"
                    # "has payments-api had incidents this month?", "did platform have any incidents last week?"
                    r"|(?:has|have|did)\s+[\w\s,&-]{1,80}?\s+(?:had|have)\s+(?:any\s+)?incidents\b"
                    r"|(?:what(?:'s|\s+is|\s+was)\s+)?(?:our\s+|the\s+)?(?:mtta|mttr|mean\s+time\s+to\s+(?:ack|resolve))"
                    # "which service had the most incidents this month?", "the noisiest services"
                    r"|(?:which|what)\s+(?:services?|teams?)\s+(?:had|has|have|got|caused)\s+the\s+most\s+incidents"
                    r"|(?:the\s+)?(?:noisiest|most\s+affected|worst)\s+services?"
                    # "what was the longest incident this year?", "the slowest incidents to resolve", "who has been on
                    # the most incidents?", "incidents per person this quarter" (the knowledge base's passages)
                    r"|(?:(?:what|which)(?:'s|\s+was|\s+were|\s+is|\s+are)?\s+)?(?:the\s+)?(?:longest|slowest)\s+"
                    r"(?:(?:sev(?:erity)?[\s-]?[1-4]|p[0-4])\s+)?(?:incidents?|outages?)"
                    r"|who(?:'s|\s+has|\s+have|\s+was|\s+is)?\s+(?:been\s+)?(?:on|handled|worked(?:\s+on)?|taken|took"
                    r"|resolved|fixed|led|assigned(?:\s+to)?)\s+(?:the\s+)?most\s+incidents"
                    r"|incidents?\s+(?:by|per)\s+(?:person|people|responder|assignee|engineer)s?"
                    # "how often does payments-api break?", "how often do we have incidents on storage?" (the knowledge
                    # base's closest incident): the count over 90 days unless a span is said
                    r"|how\s++(?:often|many\s++times)\s++(?:does|do|did|has|have)\s++[\w.-][\w.\s-]{0,59}?\s++(?:break|broken|fail"
                    r"|failed|go\s+down|gone\s+down|went\s+down|crash|crashed|have\s+(?:an?\s+)?(?:incidents?|outages?)"
                    r"|had\s+(?:an?\s+)?(?:incidents?|outages?)|page\s+us|paged\s+us)\b)",
                    re.I)
# What "/incident stats" reads besides a service or team: the period and words around it
_STATS_WORDS = re.compile(r"\b(?:\d{1,3}\s*(?:days?|d|weeks?|w|months?)|\d{1,3}|today|24 ?h(?:ours)?|yesterday|"
                          r"(?:sev(?:erity)?[\s-]?[0-4]|p[0-4])(?:'?s)?|"
                          r"this|last|past|the|in|on|for|of|over|by|and|teams?|services?|incidents?|month|quarter|"
                          r"year|week|compare[ds]?|vs|versus|to|with|per|each|person|people|responders?|assignees?"
                          r"|engineers?)\b", re.I)
# A severity word out of range, first or last in a title: "sev9", "SEV-12", "severity 7" (we have 1-4)
_NO_SEV = re.compile(r"(?:^|\s)(sev(?:erity)?[\s-]?(?:[5-9]|\d{2,}))\b", re.I)
_FREE_SEV = re.compile(r"\bsev(?:erity)?[\s-]?([1-4])\b", re.I)  # "set #105 to sev1", "sev1 #105"
_USAGE = ("Usage: `/incident new <title> [sev1-4]`, `/incident ack|take|status|escalate|mitigate|resolve|reopen [id]`, "
          "`/incident sev <1-4> [id]`, `/incident assign @user|me [id]`, `/incident unassign [id]`, "
          "`/incident note|update [id] <text>`, "
          "`/incident who [id]`, `/incident list [mine|recent [N]] [sev1-4] [service or team]`, "
          "`/incident related <id> <id>`, "
          "`/incident stats [days] [service or team]`, `/incident timeline [id] [key] [last 2h]`, "
          "`/incident handover [hours] [service or team]`, "
          "`/incident role <commander|comms|scribe|ops> @user|me|none [id]`, `/incident follow|unfollow [id]`, "
          "`/incident remind [id] me|us|@user in <20m|1h> <what>`, `/incident rename [id] <title>`, "
          "`/incident service [id] <service>`, `/incident invite [id] @user ...`, `/incident changes [id]`, "
          "`/incident impact [id] [<who or what is affected>]`, `/incident statuspage [id]`, "
          "`/incident eta [id] [<30 min | 15:00 UTC | what it waits on>]`, "
          "`/incident link [id] [<url or PAY-123> [label]]`, `/incident snooze [id] <30m|2h>`")


def _minutes(minutes: float) -> str:
    minutes = int(round(minutes))
    return f"{minutes // 60}h{minutes % 60:02d}m" if minutes >= 60 else f"{minutes} min"


def _period_days(text: str) -> int:
    """The period a question names: "today" 1, "this week" 7 (the default), "this month" 30, "90 days" 90."""
    low = text.lower()
    m = re.search(r"\b(\d{1,3})\s*(day|d|week|w|month)s?\b", low)
    if m:
        n = int(m.group(1)) * {"day": 1, "d": 1, "week": 7, "w": 7, "month": 30}[m.group(2)]
        return max(1, min(n, 366))
    if re.search(r"\b(today|24 ?h(?:ours)?|yesterday)\b", low):
        return 1
    if re.search(r"\bmonth\b", low):
        return 30
    if re.search(r"\bquarter\b", low):
        return 90
    if re.search(r"\byear\b", low):
        return 365
    m = re.fullmatch(r"\s*(\d{1,3})\s*", low)  # "/incident stats 30"
    return max(1, min(int(m.group(1)), 366)) if m else 7


# Verbs that change an incident (or page people): only full members of the workspace may use them.
_MEMBERS_ONLY = frozenset({"ack", "acknowledge", "sev", "escalate", "assign", "mitigate", "resolve", "close",
                           "reopen", "take", "role", "rename", "service", "unassign"})


# where a reason starts after a team named ("to storage because ...", "to storage: ...", "to storage - ...")
_BECAUSE = re.compile(r"\s*+[:;,]\s*|\s++[-\u2014]\s+|\s++(?:because|since|as)\s+", re.I)  # possessive: linear


# "last hour", "last 2h", "last 30 minutes", "past day": a span of the timeline back from now
_LAST_SPAN = re.compile(r"\b(?:last|past)\s+(?:(\d{1,4})\s*)?(m|mins?|minutes?|h|hrs?|hours?|d|days?)\b", re.I)


def _why(words: list[str]) -> str:
    """The reason said after an incident's id ("ack 12 looking at the consumers"), as ": reason" for a timeline
    entry (masked, cut); "" when nothing is left but filler."""
    text = mask_secrets(" ".join(words)).strip(" .:;,-\u2014")
    text = re.sub(r"^(?:because|since|as)\s+", "", text, flags=re.I)
    if not text or text.lower() in ("please", "pls", "now", "thanks", "thx"):
        return ""
    return f": {text[:300]}"


def link_text(item: dict[str, Any]) -> str:
    """One kept link for Slack: ``<url|label>`` (an address's ``|`` and ``>`` escaped), or a ticket key as code."""
    url, label = str(item.get("url") or ""), escape(str(item.get("label") or "").replace("|", "/"))
    if url.startswith(("http://", "https://")):
        return f"<{url.replace('|', '%7C').replace('>', '%3E')}|{label or escape(url[:60])}>"
    return f"`{escape(url)}`" + (f" {label}" if label else "")


def eta_text(inc: Incident) -> str:
    """The ETA someone gave ("30 min (by 18:45 UTC)"), "" when none: for the card and the status."""
    kept = (inc.findings or {}).get("eta") or {}
    if not kept.get("text"):
        return ""
    due = dt.datetime.fromisoformat(kept["due"]) if kept.get("due") else None
    late = " *overdue*" if due is not None and due < utcnow() else ""
    return escape(str(kept["text"])[:200]) + (f" (by {slack_clock(due)}{late})" if due else "") + (
        f", <@{kept['by']}>" if kept.get("by") else "")


def _age(inc: Incident) -> str:
    minutes = int(((inc.resolved_at or utcnow()) - inc.created_at).total_seconds() // 60)
    return f"{minutes // 60}h{minutes % 60:02d}m" if minutes >= 60 else f"{minutes}m"


# Only as the request itself, first ("please resolve #12: ..."): a pasted "could not resolve #12" acts on nothing.
# The verbs that change an incident's state act only when what follows is the incident or what was done
# ("resolve", "resolve it", "resolve #12: ...", "resolved: rolled back", "closing this out, root cause was ..."),
# so "resolve the DNS issue first", "close the loop on ...", "reopen the PR" and "mitigate the risk" act on nothing.
_THEN = r"(?=\s*$|\s*[:;,.!-]|\s+(?:it|this|incident|inc|#?\d+|by|with|after|via|now)\b)"
_FREE_VERB = re.compile(r"^\W*(?:(?:please|pls|can you|could you)\s+)?"
                        r"(ack|acknowledge|escalate|assign|mitigated"
                        rf"|(?:resolved?|close|reopen|mitigate){_THEN}"
                        r"|(?:closing|resolving)\s+(?:it|this)(?:\s+(?:one\s+)?out)?(?=\s*$|\s*[:;,.!-]))\b", re.I)
# The same words first but not about the incident: said back plainly instead of acted on
_STATE_WORD = re.compile(r"^\W*(?:(?:please|pls|can you|could you)\s+)?(resolve|close|reopen|mitigate)\b", re.I)
# A new severity for the incident the message is under: "this is a sev1", "make it sev2", "bump to SEV-1"
_SEV_HERE = re.compile(r"^\W*+(?:(?:this|it)(?:'s|\s+is)(?:\s+now)?(?:\s+an?)?|(?:make|set|bump|raise|lower|move|"
                       r"upgrade|downgrade)(?:\s+(?:it|this))?(?:\s+(?:up|down))?(?:\s+to)?|now)?\s*"
                       r"sev(?:erity)?[\s-]?([1-4])(?:\s+(?:incident|issue|outage|problem))?[\s!.]*$", re.I)
# Who is on it now: "who is the incident commander?", "who's on this?", "who is handling it?"
_IT = r"(?:it|this|(?:#|inc(?:ident)?[-\s#]*)\d{1,9})"  # the incident: under its card, or by number
_WHO_HERE = re.compile(r"^\W*(?:who(?:'s|\s+is|\s+are)\s+(?:the\s+)?(?:(?:incident\s+)?(?:commander|ic)\b"
                       rf"|incident\s+(?:lead|owner)\b|on\s+{_IT}\b"
                       rf"|(?:working\s+on|handling|assigned\s+to|looking\s+(?:at|into))\s+{_IT}\b|assigned\W*$)"
                       # "is anyone looking at #113?", "is somebody on this?"
                       rf"|(?:is\s+)?(?:any|some)(?:one|body)\s+(?:looking\s+(?:at|into)|on|working\s+on|handling)"
                       rf"\s+{_IT}\b"
                       # "who declared this?", "who opened #113?"
                       rf"|who\s+(?:declared|opened|created|raised|started|reported|filed)\s+{_IT}\b)", re.I)
# Where it stands, asked under its card: "how long has this been going on?", "any updates?", "where are we?"
_STATUS_HERE = re.compile(rf"^\W*(?:how\s+long\s+has\s+{_IT}\s+been"
                          rf"|(?:when|what\s+time)\s+did\s+{_IT}\s+(?:start|begin)"
                          # "when did we ack?", "who acked?", "was it acked?" (the knowledge base's "I don't know")
                          rf"|when\s+(?:did|was)\s+(?:we|anyone|somebody|someone|{_IT})\s+(?:ack|acknowledge)"
                          rf"|who\s+(?:acked|acknowledged|ack'?d)(?:\s+{_IT})?(?=\W*$)|(?:was|is|has)\s+{_IT}\s+(?:been\s+)?"
                          r"(?:acked|acknowledged)"
                          r"|where\s+are\s+we|any\s+(?:news|updates?|progress)|what(?:'s|\s+is)\s+the\s+latest(?!\s+(?:deploy|change"
                          r"|release|rollout|rollback|version|build|config|flag))"
                          r"|when\s+was\s+the\s+last\s+(?:update|note|change)|(?:the\s+)?last\s+update\W*$"
                          r"|summari[sz]e\s+(?:it|this)|(?:give\s+me\s+)?(?:a\s+)?(?:summary|recap|sitrep)"
                          # "tl;dr?", "tldr", "what's the situation?" (the knowledge base's "I don't know")
                          r"|tl;?\s?dr(?=\W*$)|what(?:'s|\s+is)\s+the\s+(?:situation|story|summary)(?=\W*$))\b", re.I)
# A hand-over at shift change: "handing this over to @bob", "hand #12 over to @bob", "passing it to @carla"
_HANDOFF = re.compile(r"^\W*(?:(?:please\s+)?(?:hand(?:ing)?(?:\s*-?\s*over)?|pass(?:ing)?|give|giving"
                      r"|transfer(?:ring)?|reassign(?:ing)?))\s+"
                      r"(?:it|this|(?:#|inc(?:ident)?[-\s#]*)(?P<id>\d{1,9}))?\s*(?:over\s+)?to\s+"
                      rf"<@{USER_ID}(?:\|[^>]*)?>", re.I)
# Nobody on it any more: "unassign #113", "unassign me", "I'm off this", "I'm stepping off #113", "I can't work on
# this anymore" (they went to routing, which suggested who should take it, and changed nothing); "I'm off, back in
# 30" is not: what is dropped is named
_UNASSIGN = re.compile(r"^\W*(?:(?:please\s+)?unassign(?:\s+me(?:\s+from)?)?(?:\s+(?:it|this|(?:#|inc(?:ident)?[-\s#]*)"
                       r"(?P<id>\d{1,9})))?|i'?m\s+(?:off|stepping\s+(?:off|away\s+from|back\s+from)|dropping|"
                       r"letting\s+go\s+of)\s+(?:it|this|(?:#|inc(?:ident)?[-\s#]*)(?P<id2>\d{1,9}))"
                       r"|i\s+(?:can(?:'|no)?t|cannot)\s+(?:work\s+on|take|keep)\s+(?:it|this|(?:#|inc(?:ident)?[-\s#]*)"
                       r"(?P<id3>\d{1,9}))(?:\s+any\s*more)?)\W*(?:[,;:-].*)?$", re.I | re.S)
# Incident roles: the commander is the assignee; the others are kept on the incident (findings["roles"]).
ROLES = {"commander": "Commander", "comms": "Comms", "scribe": "Scribe", "ops": "Ops"}
_ROLE_WORDS = {"incident commander": "commander", "commander": "commander", "ic": "commander",
               "incident lead": "commander", "communications": "comms", "comms": "comms", "scribe": "scribe",
               "notes": "scribe", "note taker": "scribe", "note-taker": "scribe", "ops": "ops", "operations": "ops"}
_ROLE_ALT = "|".join(sorted((re.escape(w) for w in _ROLE_WORDS), key=len, reverse=True))
_ROLE_NAME = re.compile(rf"^(?:the\s+)?(?P<role>{_ROLE_ALT})(?:\s+lead)?\b", re.I)
# "I'll do comms", "I'm on comms", "I'll take notes", "I'll be the scribe", "I'm IC for #12"
_ROLE_SELF = re.compile(rf"^\W*(?:i'?ll|i\s+will|i'?m|i\s+am|let\s+me)\s+(?:do|take|be|handle|run|cover|on)?\s*"
                        rf"(?:the\s+)?(?P<role>{_ROLE_ALT})(?:\s+lead)?\b(?:\s+(?:for|on|of)\s+"
                        r"(?:#|inc(?:ident)?[-\s#]*)(?P<id>\d{1,9}))?\W*$", re.I)
# "@carla is comms", "@dave will take notes", "@bob is the IC for #12"
_ROLE_OTHER = re.compile(rf"^\W*<@(?P<user>{USER_ID})(?:\|[^>]*)?>\s+(?:is|will\s+be|will\s+do|will\s+take|takes|does|"
                         rf"handles|is\s+doing|is\s+on)\s+(?:the\s+)?(?P<role>{_ROLE_ALT})(?:\s+lead)?\b"
                         r"(?:\s+(?:for|on)\s+(?:#|inc(?:ident)?[-\s#]*)(?P<id>\d{1,9}))?\W*$", re.I)
# "make me the commander of #113", "make @carla the comms lead", "set @dave as scribe"
_ROLE_MAKE = re.compile(rf"^\W*(?:please\s+)?(?:make|set|put)\s+(?P<user>me|<@{USER_ID}(?:\|[^>]*)?>)\s+(?:as\s+)?"
                        rf"(?:the\s+)?(?:on\s+)?(?P<role>{_ROLE_ALT})(?:\s+lead)?\b(?:\s+(?:for|on|of)\s+"
                        r"(?:#|inc(?:ident)?[-\s#]*)(?P<id>\d{1,9}))?\W*$", re.I)
# The same by name: "make alice the IC", "set bob moreau as scribe", "add carla", "invite bob to this" (they got "I did
# not act on that"): the name becomes the person's mention when exactly one active expert has it (see run)
_NAME = (r"(?P<name>(?!(?:me|myself|him|her|them|us|it|this|that|the|an?)\b)[a-z][\w'.-]{1,40}"
         r"(?:\s+(?!(?:the|as|on|to|into|an?)\b)[a-z][\w'.-]{1,40})?)")
_ROLE_MAKE_NAMED = re.compile(rf"^\W*(?:please\s+)?(?:make|set|put)\s+{_NAME}\s+(?:as\s+)?(?:the\s+)?(?:on\s+)?"
                              rf"(?:{_ROLE_ALT})\b", re.I)
_INVITE_NAMED = re.compile(rf"^\W*(?:(?:please|pls|can\s+you|could\s+you)\s+)?(?:invite|add)\s+{_NAME}"
                           r"(?:\s+(?:to|into)\s+(?:this|it|the\s+(?:channel|incident)|(?:#|inc(?:ident)?[-\s#]*)\d{1,9}))?\W*$",
                           re.I)
# "who's on comms?", "who is the scribe?", "roles?": the roles
_ROLE_ASK = re.compile(rf"^\W*(?:who(?:'s|\s+is)\s+(?:on\s+|doing\s+|taking\s+)?(?:the\s+)?(?:{_ROLE_ALT})\b"
                       r"(?!\s+(?:lead\s+)?(?:for|of)\s+\w)|(?:what\s+are\s+the\s+)?roles\W*$)", re.I)
# Following an incident (its updates, mitigation and resolution by DM): "follow #113", "keep me posted", "unfollow"
_FOLLOW = re.compile(r"^\W*(?:(?P<un>un|stop\s+)?follow(?:ing)?|(?:please\s+)?keep\s+me\s+"
                     r"(?:posted|updated|in\s+the\s+loop))(?:\s+(?:on\s+)?(?:(?:it|this(?:\s+one)?)"
                     r"|(?:#|inc(?:ident)?[-\s#]*)(?P<id>\d{1,9})))?\W*$", re.I)
MAX_FOLLOWERS = 200
# "remind me in 20 min to check the replica lag", "remind us in 1h: ...", "remind @bob in 30m that ..."
_REMIND = re.compile(rf"^\W*remind\s+(?P<who>me|us|<@{USER_ID}(?:\|[^>]*)?>)\s+(?:in\s+)?(?P<n>\d{{1,5}})\s*"
                     r"(?P<unit>s|secs?|seconds?|m|mins?|minutes?|h|hrs?|hours?)\b[\s:,-]*"
                     r"(?:(?:to|that|about|of)\b\s*)?(?P<what>.*)$", re.I | re.S)
MAX_REMIND_S = 24 * 3600
# Incidents the person asking is on: "what am I on?", "my incidents", "what's assigned to me?"
# ("what incidents are assigned to me?" went to the knowledge base, which answered with a runbook)
# "what should I work on?", "what needs me?", "what should I pick up?": mine, else what has nobody on it
_WORK = re.compile(r"^\W*(?:what|which\s+incident)\s+(?:should|can|could)\s+i\s+"
                   r"(?:work\s+on|pick\s+up|take|look\s+at)(?:\s+(?:next|now|first))?\W*$"
                   r"|^\W*what\s+needs\s+(?:me|my\s+attention|attention)\W*$"
                   # "anything I should look at?", "what's most urgent?" (the knowledge base's "I don't know")
                   r"|^\W*(?:is\s+there\s+)?anything\s+(?:i|we)\s+should\s+(?:look\s+at|work\s+on|know|pick\s+up)"
                   r"(?:\s+now)?\W*$"
                   r"|^\W*what(?:'s|\s+is)\s+(?:the\s+)?most\s+(?:urgent|important|pressing)(?:\s+(?:now|right\s+now))?\W*$",
                   re.I)
# "which incidents have nobody on them?", "what's unassigned?", "unassigned incidents", "the oldest open incident"
_UNASSIGNED = re.compile(r"^\W*(?:(?:what|which)\s+(?:open\s+)?incidents?\s+(?:has|have|are)\s+"
                         r"(?:nobody|no\s+one|no\s+owner|no\s+assignee|unassigned)|what(?:'s|\s+is)\s+unassigned|(?:list\s+|show\s+(?:me\s+)?)?(?:the\s+)?"
                         r"unassigned(?:\s+incidents)?"
                         # "anything unacknowledged?", "which incidents are not acked?" (the knowledge base's)
                         r"|(?:(?:is\s+)?anything|(?:what|which)\s+(?:open\s+)?incidents?\s+(?:are|is)"
                         r"|any\s+(?:incidents?\s+)?)"
                         r"\s*(?:still\s+)?(?:unacknowledged|unacked|not\s+(?:yet\s+)?(?:acknowledged|acked))"
                         r"|(?:list\s+|show\s+(?:me\s+)?)?(?:the\s+)?(?:unacknowledged|unacked)(?:\s+incidents)?)\b",
                         re.I)
_OLDEST = re.compile(r"^\W*+(?:what(?:'s|\s+is|\s+are)|which\s+is|show\s+(?:me\s+)?)?\s*(?:the\s+)?"
                     r"(?:oldest|longest[-\s]running)\s+(?:open\s+)?incidents?\b", re.I)
# Under the card: "how bad is it?" (its status), "is it getting worse?" (its alerts over the last half hour)
_HOW_BAD = re.compile(rf"^\W*how\s+bad\s+is\s+{_IT}\W*$", re.I)
_TREND = re.compile(rf"^\W*(?:is\s+{_IT}\s+(?:getting|still\s+getting)\s+(?:worse|better)|(?:is\s+{_IT}|are\s+we)\s+"
                    r"(?:improving|recovering|stable|under\s+control)|how\s+is\s+it\s+trending|any\s+better"
                    # "is it still happening?", "are the alerts still firing?", "is it over?" (the knowledge base's)
                    rf"|(?:is\s+{_IT}|are\s+(?:they|the\s+alerts|we))\s+still\s+(?:happening|firing|going\s+on|ongoing"
                    r"|broken|down|failing|erroring|an\s+issue|a\s+problem|alerting)"
                    rf"|is\s+{_IT}\s+(?:over|gone|fixed|back)(?:\s+(?:yet|now|already))?)(?:\s+(?:now|at\s+all))?\W*$",
                    re.I)
# Who was called about it: "who was paged for #113?", "has anyone been paged?", "did we page anyone?" (the knowledge
# base's "I don't know"): the pages, the unacknowledged reminders that called people, escalations and PagerDuty
_PAGED_ASK = re.compile(rf"^\W*(?:who\s+(?:was|were|got|has\s+been|have\s+been|did\s+(?:we|you|it))\s+"
                        r"(?:paged?|called|notified|alerted|pinged|woken(?:\s+up)?|escalated\s+to)"
                        rf"|(?:has|have|was|were)\s+(?:any|some)(?:one|body)\s+(?:been\s+)?(?:paged|called|notified)"
                        r"|did\s+(?:we|you|it|anyone|somebody)\s+(?:page|call|notify)\s+(?:any|some)(?:one|body)"
                        r"|(?:show\s+(?:me\s+)?)?(?:the\s+)?pag(?:es|ing)\s+(?:history|log)"
                        rf")(?:\s+(?:yet|already|so\s+far))?(?:\s+(?:for|about|on)\s+{_IT})?(?:\s+(?:yet|already|so\s+far))?\W*$",
                        re.I)
# Under the card, whether it can be closed: "are we done?", "can we close this?", "ready to resolve?" (they went to the
# knowledge base); and "it's fixed", "we're good now", "all clear", "back to normal" (the help's "I did not act on
# that"): what is still firing and how to resolve it, with the button. Words alone resolve nothing: resolving drafts
# the postmortem and tells PagerDuty and the followers, so a person presses Resolve or says `resolved: ...`.
_CLOSE_ASK = re.compile(rf"^\W*(?:(?:are|r)\s+we\s+(?:done|good|finished|all\s+clear|clear|ok(?:ay)?)"
                        rf"(?:\s+(?:here|with\s+{_IT}|now|yet))?"
                        rf"|(?:can|could|should|shall|do)\s+(?:we|i)\s+(?:close|resolve)\s+{_IT}(?:\s+(?:out|now|yet))?"
                        rf"|(?:is\s+{_IT}\s+|are\s+we\s+)?(?:ready|ok(?:ay)?|safe|good)\s+to\s+(?:close|resolve)"
                        rf"(?:\s+{_IT})?(?:\s+(?:out|now|yet))?|is\s+{_IT}\s+(?:done|closable|resolvable))\W*$", re.I)
_FIXED_SAID = re.compile(r"^\W*(?:(?:ok|okay|great|good\s+news|update|fyi)[\s,!:.-]+)?"
                         r"(?:(?:it|this|that|everything|all)(?:'s|\s+is|\s+was|\s+looks)\s+(?:now\s+)?"
                         r"(?:fixed|sorted|solved|recovered|back(?:\s+up)?|working(?:\s+again)?|healthy|stable|green"
                         r"|good|fine|back\s+to\s+normal|all\s+good)"
                         r"|(?:we(?:'re|\s+are)|looks?|looking)\s+(?:good|fine|green|healthy|stable|back\s+to\s+normal"
                         r"|back(?:\s+up)?|recovered|all\s+good)"
                         r"|all\s+(?:clear|good|green)|that\s+(?:fixed|did|solved)\s+it|fixed|recovered|back\s+to\s+normal)"
                         r"(?:\s+(?:now|again))*[\s!.]*$", re.I)
_MINE = re.compile(r"^\W*(?:what(?:'s|\s+is|\s+am)\s+(?:i\s+on|assigned\s+to\s+me|on\s+my\s+plate)"
                   r"|(?:what|which)\s+(?:open\s+)?incidents?\s+(?:are|is)\s+(?:assigned\s+to\s+me|mine|on\s+me)"
                   r"|(?:is\s+|are\s+)?(?:there\s+)?(?:anything|any\s+(?:open\s+)?incidents?)\s+assigned\s+to\s+me"
                   r"|(?:(?:list|show)\s+)?(?:the\s+)?(?:open\s+)?incidents\s+assigned\s+to\s+me"
                   r"|what\s+(?:incidents\s+)?am\s+i\s+assigned(?:\s+to)?"
                   r"|(?:list\s+|show\s+)?my\s+(?:open\s+)?incidents|which\s+incidents\s+am\s+i\s+on)\W*$", re.I)
# What was resolved lately: "which incidents were resolved this week?", "what did we fix today?", "what got closed
# in the last 3 days?" (they went to the knowledge base); group 1: the span and scope words
# "what were the root causes last month?", "root causes this week": the resolved incidents with what caused them
_CAUSES_ASK = re.compile(r"^\W*(?:what\s+(?:were|are|was)\s+(?:the\s+)?|(?:list|show)\s+(?:me\s+)?(?:the\s+)?)?"
                         r"(?:the\s+)?(?:(?:top|main|common|most\s+common|biggest|usual)\s+(?:incident\s+|outage\s+)?(?=causes)"
                         r"|(?:incident\s+)?root[\s-]?(?=causes?))causes?\b(?!\s*[:=])\W*(.*?)\W*$", re.I)
_RESOLVED_ASK = re.compile(r"^\W*(?:what|which)\s+(?:incidents?\s+)?(?:were|was|have\s+been|got|did\s+we)\s+"
                           r"(?:resolved|closed|fix(?:ed)?)\b\W*(.*?)\W*$", re.I)
# "what reminders do I have?", "my reminders", "list my reminders"
_REMINDERS_ASK = re.compile(r"^\W*(?:(?:what|which)\s+reminders\s+(?:do\s+i\s+have|have\s+i\s+set|are\s+set)"
                            r"|(?:what|which)\s+are\s+my\s+reminders|(?:do\s+i\s+have|have\s+i\s+got)\s+any\s+reminders"
                            r"|(?:(?:list|show)\s+)?(?:me\s+)?my\s+reminders)\W*$", re.I)
# Every event, not the latest eight: "full timeline of #101", "the whole timeline", "timeline" alone
_TIMELINE = re.compile(r"\b(?:full|whole|complete|entire)\s+timeline\b"
                       # "timeline", "timeline of #101", "export #113 timeline", "show me the timeline of this"
                       r"|^\W*(?:(?:export|show|get|print|dump|give|send)\s+(?:me\s+)?|what(?:'s|\s+is)\s+)?(?:the\s+)?"
                       rf"(?:{_IT}(?:'s)?\s+)?timeline\W*(?:(?:of|for)\s+{_IT})?\W*$", re.I)
# What was done so far, under the card or with a number: the key moments ("what have we tried so far?")
_TRIED = re.compile(r"^\W*what(?:\s+have\s+we|\s+has\s+been|'s\s+been|\s+did\s+we|\s+was|\s+were)\s+"
                    r"(?:tried|done|try|do)\b"
                    rf"(?:\s+(?:so\s+far|on|for|about|with|already|yet|to\s+fix))*(?:\s+{_IT})?"
                    r"(?:\s+(?:so\s+far|already|yet))?\W*$", re.I)
# Which incidents are open, in words: "show open sev1 and sev2 incidents", "list incidents for payments",
# "what incidents are open?" (the words went to the usage)
_LIST_WORDS = re.compile(r"^\W*(?:(?:show|list|give)\s+(?:me\s+)?|what\s+(?:are\s+)?|which\s+)?(?:all\s+)?"
                         r"(?:the\s+|my\s+)?(?:(?:open|current|active|ongoing|resolved|closed)\s+)?(?:(?:sev(?:erity)?[\s-]?[1-4]|p[1-4])"
                         r"(?:\s*(?:,|and|or|&|/|\+)\s*(?:sev(?:erity)?[\s-]?[1-4]|p[1-4]))*\s+)?incidents"
                         r"(?:\s+(?:are\s+)?(?:open|(?:going\s+)?on|active)\b)?(?!\s+(?:did|have|do|were|was|per)\b)",
                         re.I)
# "when did we last have an incident on kafka?", "show me the last incident on payments-api", "when was the last
# sev1?", "what was the previous incident for storage?" (the runbook history's error, the usage)
_LAST_ONE = re.compile(r"^\W*(?:when\s+(?:did|have)\s+we\s+last\s+(?:have|had|see|seen)\s+(?:an?\s+)?"
                       r"(?:(?:sev(?:erity)?[\s-]?[1-4]|p[0-4])\s+)?(?:incident|outage)s?"
                       r"|(?:when\s+was|what\s+was|(?:show|give)\s+(?:me\s+)?)\s*the\s+(?:last|latest|most\s+recent"
                       r"|previous)\s+(?:(?:sev(?:erity)?[\s-]?[1-4]|p[0-4])\s*)?(?:incidents?|outages?)?"
                       r"(?=\s+(?:on|for|with|in|of)\b|\W*$))", re.I)
# "show me the last 3 incidents", "recent incidents on payments", "the 5 most recent sev1 incidents": the newest, any
# status (it was the usage: no verb)
_RECENT = re.compile(r"^\W*(?:(?:show|list|give)\s+(?:me\s+)?|what\s+(?:were|are)\s+)?(?:all\s+)?(?:the\s+|our\s+)?"
                     r"(?:(?:last|latest|newest|most\s+recent|recent)\s+(?:\d{1,2}\s+)?|\d{1,2}\s+(?:most\s+recent|latest"
                     r"|newest|last)\s+)(?:(?:sev(?:erity)?[\s-]?[1-4]|p[1-4])\s+)?incidents\b", re.I)
# "which incidents did alice work on?", "what incidents has @carla handled this month?": the ones they were on
_WHOSE_LIST = re.compile(r"^\W*(?:which|what)\s+incidents\s+(?:did|has|have|was|were)\s+"
                         r"(?:<@[^>]{1,40}>|[a-z][\w'-]{0,40}(?:\s+[a-z][\w'-]{0,40})?)\s+(?:been\s+)?(?:work(?:ed)?\s+on|handled?|taken|took|take|led|lead"
                         r"|on|assigned(?:\s+to)?)\b", re.I)
# "status of all sev1s", "any sev1 open?", "show sev1s", "open sev1 or sev2?" (the status, the knowledge base)
_SEV_TERM = r"(?:sev(?:erity)?[\s-]?[1-4]|p[1-4])(?:'?s)?"
_SEV_LIST = re.compile(rf"^\W*(?P<ask>(?:show|list|give)\s+(?:me\s+)?|status\s+of\s+"
                       r"|(?:are\s+there\s+|is\s+there\s+)?any\s+|what(?:'s|\s+is|\s+are)?\s+|which\s+|all\s+)?(?:all\s+)?(?:the\s+)?"
                       r"(?P<open>(?:open|current|active|ongoing)\s+)?"
                       rf"{_SEV_TERM}(?:\s*(?:,|and|or|&|/|\+)\s*{_SEV_TERM})*"
                       r"(?P<tail>\s+(?:incidents?|open|going\s+on|active)(?:\s+(?:open|right\s+now|now))?)?\W*$", re.I)


def _sev_list(text: str) -> bool:
    """"status of all sev1s", "any sev1 open?": a list of the open incidents at those severities (a bare "sev1"
    under a card is not one)."""
    m = _SEV_LIST.match(text)
    return bool(m and (m.group("ask") or m.group("open") or m.group("tail")))


# A key moment for the timeline: "note: failover started", "update: error rate back to normal", "fyi ..."
_NOTE = re.compile(r"^\W*(?:(?:(?:please\s+)?(?:post|send|add|write|share|give)\s+(?:an?\s+|the\s+)?)?"
                   r"(?P<kw>note|update|status\s+update)"
                   # "post a status update to the status channel for #113: ..." (the words were read as the status)
                   r"(?:\s+(?:to|in|on)\s+(?:the\s+)?(?:status|updates?|incident|stakeholders?)(?:\s+channel)?)?"
                   r"(?:\s+(?:on\s+|for\s+|to\s+)?"
                   r"(?:#|\binc(?:ident)?[-\s#]*)(?P<id>\d{1,9}))?\s*[:;-]|fyi\b[\s:,-]*)\s*(?P<text>\S.*)$",
                   re.I | re.S)
# What caused it, said in words: "root cause was a bad config push", "... ; root cause: pool size"
_ROOT_CAUSE = re.compile(r"(?:^|(?<=[\s;,.(]))(?:the\s+)?root[\s-]?cause\s*(?:(?:was|is|=)\s*|[:-]\s*)"
                         r"(?P<rc>\S.*)$", re.I | re.S)
# "open an incident review", "start an incident channel": not a new incident
_NOT_A_DECLARATION = (r"(?!\s+(?:review|retro(?:spective)?|post-?mortem|report|meeting|channel|process|template|"
                      r"doc(?:ument)?|commander|response|drill)s?\b)")
_FREE_NEW = re.compile(r"\b(?:open|declare|start|create|raise|new)\s+(?:an?\s+|new\s+)*(?:(?P<sev>sev(?:erity)?[\s-]?"
                       r"[0-4]|p[0-4])\s+)?incident\b" + _NOT_A_DECLARATION + r"[\s:,-]*(?:(?:for|about|on)\s+)?(.*)",
                       re.I | re.S)
# What caused one incident, or why it happened: its status (the outcome: root cause, resolution, postmortem)
_OUTCOME_ASK = re.compile(r"\b(?:what\s+caused|(?:the\s+)?(?:root\s+)?cause\s+of|why\s+did|why\s+was|why\s+is)\b",
                          re.I)
# Asked about, not said: "should we declare an incident?", "do I open an incident for this?", "when do we raise an
# incident?" ("can you open an incident for ..." is a request)
_WHETHER = re.compile(r"^\W*(?:should|shall|do|does|did|would|will|must|is|are|how|when|why|what|who|whether|if"
                      r"|can\s+(?:we|i)|could\s+(?:we|i))\b", re.I)
# Declaring, named with its article ("declare an incident", "open a new incident"): "the oldest open incident" is not
_DECLARING = re.compile(r"\b(?:open|declare|start|create|raise)\s+(?:an?\s+|new\s+)+"
                        r"(?:(?:sev(?:erity)?[\s-]?[0-4]|p[0-4])\s+)?incident\b" + _NOT_A_DECLARATION, re.I)
# Said as an order at the start, not asked about: "start an incident: ingest lag growing", "declare a sev1 for
# checkout", "please open an incident for ingest" (it went to the similar-incident search, which only offered one)
_DECLARE_NOW = re.compile(r"^\W*(?:(?:please|pls|let'?s|can\s+you|could\s+you)\s+)?(?:open|declare|start|create|raise)"
                          r"\s+(?:an?\s+|new\s+)*(?:(?:sev(?:erity)?[\s-]?[0-4]|p[0-4])\b|incident\b"
                          + _NOT_A_DECLARATION + ")", re.I)


# Who or what is hurt, said for the card, the updates and the postmortem: "impact: checkout down for 5% of users",
# "customer impact on #113: ...", "set the impact of #113 to ...", "the impact is ..."
_IMPACT_SET = re.compile(r"^\W*(?:(?:set|update|change)\s+the\s+(?:customer\s+|user\s+|business\s+)?impact"
                         r"(?:\s+(?:of|on|for)\s+(?:#|inc(?:ident)?[-\s#]*)(?P<id>\d{1,9}))?\s+to\s+"
                         r"|(?:(?:customer|user|business)\s+)?impact(?:\s+(?:of|on|for)\s+(?:#|inc(?:ident)?[-\s#]*)"
                         r"(?P<id2>\d{1,9}))?\s*[:=-]\s*"
                         r"|the\s+(?:customer\s+|user\s+)?impact\s+is\s+)(?P<text>\S.*)$", re.I | re.S)
# "what's the impact?", "what is the customer impact of #113?", "how many users are affected by #113?"
_IMPACT_ASK = re.compile(rf"^\W*(?:what(?:'s|\s+is|\s+was)\s+the\s+(?:customer\s+|user\s+|business\s+)?impact"
                         rf"(?:\s+(?:of|on|for)\s+{_IT})?|how\s+many\s+(?:customers|users|people|requests|orders)\s+"
                         rf"(?:are|were)\s+(?:affected|impacted)(?:\s+by\s+{_IT})?|who\s+is\s+(?:affected|impacted)"
                         rf"(?:\s+by\s+{_IT})?)\W*$", re.I)


# When it should be over, said by whoever works on it: "eta: 30 min", "ETA 15:00 UTC", "set the eta of #113 to 1h",
# "the eta is about an hour"; asked: "what's the ETA?", "any ETA on #113?", "when will it be fixed?"
_ETA_SET = re.compile(r"^\W*(?:(?:set|update|change)\s+(?:the\s+)?eta(?:\s+(?:of|on|for)\s+(?:#|inc(?:ident)?[-\s#]*)"
                      r"(?P<id>\d{1,9}))?\s+(?:to\s+|(?=\d|about|around|~|in\b|tomorrow|tonight|unknown))|eta(?:\s+(?:of|on|for)\s+(?:#|inc(?:ident)?[-\s#]*)(?P<id2>\d{1,9}))?"
                      r"(?:\s*[:=-]\s*|\s+(?=\d|about|around|~|in\b|tomorrow|tonight|unknown))|the\s+eta\s+is\s+)"
                      r"(?P<text>[^?]\S.*)$", re.I | re.S)
_ETA_ASK = re.compile(rf"^\W*(?:what(?:'s|\s+is)\s+the\s+eta|(?:is\s+there\s+)?(?:any|an)\s+eta|eta\W*$"
                      rf"|when\s+(?:will|is|should)\s+{_IT}\s+(?:going\s+to\s+)?(?:be\s+)?(?:fixed|resolved|back|done|over)"
                      rf"|how\s+long\s+(?:until|till|before)\s+{_IT}\s*(?:'s|\s+is|\s+will\s+be)?\s*(?:fixed|resolved|back"
                      rf"|over|done))(?:\s+(?:for|of|on)\s+{_IT})?\W*$", re.I)
_ETA_IN = re.compile(r"^(?:(?:about|around|roughly|approx(?:\.|imately)?|~)\s*)?(?:in\s+)?(\d{1,4})\s*"
                     r"(m|mins?|minutes?|h|hrs?|hours?)\b", re.I)


# Heads down: "snooze the update reminders for 30m", "pause reminders for #113 for 1h" (the help said how to silence
# alerts). Only the asking for updates; an unacknowledged incident's reminders stop when someone acks it.
_SNOOZE = re.compile(r"^\W*(?:(?:please|pls|can\s+you|could\s+you)\s+)?(?:snooze|pause|mute|hold|silence|stop)\s+"
                     r"(?:the\s+)?(?:update\s+|status\s+)?(?:reminders?|nagging|pings?)(?:\s+(?:for|on)\s+(?:#|inc-?)(?P<id>\d{1,9}))?"
                     r"(?:\s+for)?\s+(?P<n>\d{1,4})\s*(?P<unit>m|mins?|minutes?|h|hrs?|hours?)\b"
                     r"(?:\s+(?:for|on)\s+(?:#|inc-?)(?P<id2>\d{1,9}))?\W*$", re.I)
MAX_SNOOZE = dt.timedelta(hours=8)
# Links people work from, kept on the card: "link PAY-123 to #113", "add https://grafana/d/x to #113", under the
# card "dashboard: https://grafana/d/x", "bridge https://meet/abc", "jira PAY-123"; "links?" lists them
_LINK_WHAT = r"(?P<what><https?://[^>\s|]+(?:\|[^>]*)?>|https?://\S+|[A-Z][A-Z0-9]{1,9}-\d{1,7})"
_LINK_KIND = (r"dashboards?|grafana|graphs?|logs?|kibana|jira|tickets?|issues?|pr|pull\s+request|docs?|document|"
              r"runbook|traces?|zoom|meet|bridge|call|sentry|status\s+page|slack\s+thread|thread|notes|spreadsheet")
_LINK_SET = re.compile(
    rf"^\W*(?:(?:please\s+)?(?:link|attach|add)\s+(?:(?:the\s+)?(?P<kind>{_LINK_KIND})\s+)?{_LINK_WHAT}"
    r"(?:\s+(?:to|on|for)\s+(?:incident\s+)?(?:#|inc-?)(?P<id>\d{1,9}))?(?:\s*[:,-]\s*(?P<label>\S.{0,80}))?"
    rf"|(?P<kind2>{_LINK_KIND})(?:\s+(?:for|of)\s+(?:#|inc-?)(?P<id2>\d{{1,9}}))?\s*(?:[:=-]\s*|\s+)"
    rf"{_LINK_WHAT.replace('what', 'what2')})\W*$", re.I)
_LINKS_ASK = re.compile(rf"^\W*+(?:(?:(?:what|which|show|list)\s+(?:me\s+)?(?:are\s+)?(?:the\s+)?)?"
                        rf"(?:links|dashboards)(?:\s+(?:for|on|of)\s+{_IT})?|where(?:'s|\s+is|\s+are)\s+the\s+"
                        rf"(?:dashboards?|bridge|zoom|call|ticket|links?)(?:\s+(?:for|on|of)\s+{_IT})?"
                        # "is there a dashboard for this?", "any dashboards?", "dashboard link?" (the knowledge base's)
                        rf"|(?:(?:is|are)\s+there|do\s+we\s+have|have\s+we\s+got)?\s*(?:an?|any)\s+"
                        rf"(?:dashboards?|links?|bridge|zoom|call|ticket)(?:\s+(?:link|url))?(?:\s+(?:for|on|of)\s+{_IT})?"
                        r"|(?:the\s+)?(?:dashboard|bridge|zoom|call)\s+(?:link|url))\W*$", re.I)
MAX_LINKS = 20


# Someone else called in: "invite @alice", "bring in @alice and @bob", "add @carla to #113", "loop in @dan"
_INVITE = re.compile(rf"^\W*(?:(?:please|pls|can\s+you|could\s+you)\s+)?(?:invite|add|bring\s+in|loop\s+in|pull\s+in)"
                     rf"\s+<@{USER_ID}(?:\|[^>]*)?>(?!.*\bas\s+(?:the\s+)?(?:{_ROLE_ALT})\b)", re.I | re.S)


# The person writing takes the incident: "I'm on it", "I'll take this", "mine" (in its thread, or with "#12")
_TAKE = re.compile(r"^\W*(?:i'?m on (?:it|this)|i am on (?:it|this)|on it|i'?ll take (?:it|this)"
                   r"|i will take (?:it|this)|taking (?:it|this)|mine"
                   # "take #113", "let me take #113" (the help: "not sure what you need")
                   r"|(?:let me |i'?ll |i will )?take(?: (?:it|this))?(?=\s*(?:#|\binc|$))"
                   r"|(?:i'?m\s+|i\s+am\s+)?(?:looking(?:\s+(?:into|at)\s+(?:it|this))?|investigating)"
                   r"(?:\s+now)?)\b[\s!.]*"
                   r"(?:(?:#|\binc(?:ident)?[-\s#]*)(?P<id>\d{1,9})\W*)?(?:[,;:-].*)?$", re.I | re.S)


# Not a real problem: "false alarm", "it was a false positive, closing", "this is noise" (resolved, no postmortem)
_FALSE_ALARM = re.compile(r"^\W*(?:(?:it'?s|it\s+(?:is|was)|this\s+(?:is|was))\s+(?:just\s+)?(?:an?\s+)?)?"
                          r"(?:false\s+(?:alarm|positive)|not\s+a\s+real\s+(?:issue|incident|problem)|noise)\b"
                          r"(?P<rest>.*)$", re.I | re.S)
# Another incident's copy: "duplicate of #113", "dupe of 113", "this is a dup of inc-113" (resolved, no postmortem)
_DUPLICATE = re.compile(r"^\W*(?:(?:this\s+is|it'?s|it\s+is)\s+(?:a\s+)?)?dup(?:e|licate)?\b"
                        r"(?:\s+(?:of|with)\s+(?:#|inc(?:ident)?[-\s#]*)?(?P<of>\d{1,9})\b)?[\s!.]*$", re.I)
# One incident folded into another, by number: "merge #114 into #113", "#114 is a duplicate of #113", "close #114 as
# a dup of #113" (resolved as a duplicate of the other; "duplicate of #113" alone works under the card)
_REF = r"(?:#|inc(?:ident)?[-\s#]*)"
_MERGE = re.compile(rf"^\W*(?:(?:please|pls|can\s+you|could\s+you)\s+)?(?:merge\s+{_REF}(?P<a>\d{{1,9}})\s+"
                    rf"(?:into|with|in)\s+{_REF}(?P<b>\d{{1,9}})|{_REF}(?P<a2>\d{{1,9}})\s+is\s+(?:(?:a\s+)?"
                    rf"dup(?:e|licate)?\s+(?:of|with)|the\s+same\s+as|a\s+copy\s+of)\s+{_REF}(?P<b2>\d{{1,9}})"
                    rf"|(?:close|resolve|mark)\s+{_REF}(?P<a3>\d{{1,9}})\s+as\s+(?:a\s+)?dup(?:e|licate)?\s+(?:of|with)\s+"
                    rf"{_REF}(?P<b3>\d{{1,9}}))\W*$", re.I)
# Several incidents at once for a verb that needs nothing else: "ack #113 and #114", "/incident ack 113 114"
_MULTI = ("ack", "acknowledge", "take", "follow", "unfollow")


def _many_ids(rest: str) -> list[int]:
    """The incident numbers ``rest`` consists of, when it is only a list of them ("#113 and #114", "113, 114")."""
    words = [w for w in re.split(r"[\s,&+]+|\band\b", rest) if w]
    ids = [int(m.group(1)) for w in words if (m := _ID.match(w) or re.fullmatch(r"inc-?(\d{1,9})", w, re.I))]
    return list(dict.fromkeys(ids)) if words and len(ids) == len(words) else []


# Under an incident's card, what the team is doing: "we're rolling back now", "I'm restarting the consumers"
_PROGRESS = re.compile(r"^\W*(?:we'?re|we\s+are|i'?m|i\s+am)\s+(?:now\s+|just\s+|still\s+)?[a-z]+ing\b", re.I)


def _free_text(text: str, verb: str, rest: str) -> tuple[str, str]:
    """A mention in words ("open an incident: ingest lag sev2", "ack #101", "status of #101") as a command."""
    take = _TAKE.match(text)
    if take:  # only a number right after the words counts ("on it, #102 looks related" takes this one)
        return "take", f"#{take.group('id')}" if take.group("id") else ""
    merge = _MERGE.match(text)
    if merge:  # "merge #114 into #113": #114 is resolved as a duplicate of #113
        a, b = (merge.group(x) or merge.group(f"{x}2") or merge.group(f"{x}3") for x in "ab")
        return "resolve", f"#{a} duplicate of #{b}"
    dup = _DUPLICATE.match(text)
    if dup:
        return "resolve", f"duplicate of #{dup.group('of')}" if dup.group("of") else "duplicate"
    false_alarm = _FALSE_ALARM.match(text)
    if false_alarm:
        return "resolve", "false alarm" + re.sub(r"^[\s,;:.!-]*(?:closing(?:\s+(?:it|this))?)?[\s,;:.!-]*", " ",
                                                 false_alarm.group("rest")).rstrip()
    note = _NOTE.match(text)
    if note:  # "update #113: back to normal": the number is which incident, the rest is the note
        # "update: ..." is also for the people following the incident (the status channel); "note:" is not
        verb = "update" if (note.group("kw") or "").lower().endswith("update") else "note"
        return verb, (f"#{note.group('id')} " if note.group("id") else "") + note.group("text").strip()
    if _ROOT_CAUSE.match(text):  # "root cause was a bad config push"
        return "note", text.strip()
    new = _FREE_NEW.search(text)
    if new and _WHETHER.match(text) and _DECLARING.search(text):  # "should we declare an incident for ...?": asked
        raise SkillError("I open one when told to: `declare an incident: <title> [sev1-4]` (or `/incident new <title> "
                         "[sev1-4]`). When in doubt, declare it: a SEV4 costs little and can be resolved as a false "
                         "alarm; `/similar <what you see>` shows whether it happened before.")
    if new and re.search(r"\w", new.group(2)):
        return "new", (f"{new.group('sev')} " if new.group("sev") else "") + new.group(2).strip()
    ref, lead = INCIDENT_REF.search(text), _FREE_VERB.search(text)
    if lead:
        word = lead.group(1).lower()
        word = "resolve" if word.startswith(("closing", "resolving", "resolved")) else word
        word = {"acknowledge": "ack", "close": "resolve", "mitigated": "mitigate"}.get(word, word)
        if ref is None:  # no number: the incident of the thread or channel (see _target); "close it: ..."
            said = re.sub(r"^(?:it|this(?: one)?)\b", "", text[lead.end():].strip(" :;,.!-")).strip(" :;,.!-")
            return word, re.sub(r"^(?:now|by|with|via)\b\s*", "", said, flags=re.I)
        if word in ("resolve", "mitigate"):  # what follows the number is what was done ("#113: rolled back")
            return word, f"#{ref.group(1)} {text[ref.end():].strip(' :,-')}".strip()
        if word in _MULTI and len(ids := _many_ids(INCIDENT_REF.sub(r"#\1", text[lead.end():]))) > 1:
            return word, " ".join(f"#{i}" for i in ids)  # "ack #113 and #114": both (the second was dropped)
        if word == "assign":  # "assign #101 to @bob" (or "to me"): the number and whoever is mentioned
            who = " ".join(f"<@{a or b}>" for a, b in _USER.findall(text)) or ("me" if re.search(r"\bme\b", text)
                                                                                else "")
            return "assign", f"{who} #{ref.group(1)}"
        return word, f"#{ref.group(1)}"
    here = _SEV_HERE.match(text)
    if here and ref is None:  # "this is a sev1" under the incident's card
        return "sev", here.group(1)
    if _WHO_HERE.match(text):  # "who is on this?" under the card, "is anyone looking at #113?"
        return "who", f"#{ref.group(1)}" if ref else ""
    if _REMIND.match(text):  # the whole text: the skill reads who, when and what
        return "remind", text.strip()
    follow = _FOLLOW.match(text)
    if follow:
        return "unfollow" if follow.group("un") else "follow", f"#{follow.group('id')}" if follow.group("id") else ""
    role = _ROLE_SELF.match(text) or _ROLE_OTHER.match(text) or _ROLE_MAKE.match(text)
    if role:  # "I'll do comms", "@carla is comms": that role, that person (the number when one is said)
        user = role.groupdict().get("user") or "me"
        who = user if user.lower() == "me" or user.startswith("<@") else f"<@{user}>"
        return "role", f"{role.group('role')} {who}" + (f" #{role.group('id')}" if role.group("id") else "")
    if _ROLE_ASK.match(text) and ref is None:
        return "who", ""
    if unassign := _UNASSIGN.match(text):  # "I'm off this", "unassign #113"
        said = unassign.group("id") or unassign.group("id2") or unassign.group("id3")
        me = not re.match(r"^\W*(?:please\s+)?unassign(?!\s+me\b)", text, re.I)  # "I'm off this": only if it is me
        return "unassign", " ".join((["me"] if me else []) + ([f"#{said}"] if said else []))
    handoff = _HANDOFF.match(text)
    if handoff:  # "handing this over to @bob": the new assignee (and the number, when one follows the verb)
        who = " ".join(f"<@{a or b}>" for a, b in _USER.findall(text)[:1])
        return "assign", f"{who} #{handoff.group('id')}" if handoff.group("id") else who
    if _MINE.match(text):
        return "list", "mine"
    if _WORK.match(text):
        return "work", ""
    if _UNASSIGNED.match(text):
        if re.search(r"\bun?ack|\bnot\s+(?:yet\s+)?ack", text, re.I):  # "anything unacknowledged?": not acked yet
            return "list", "unacknowledged"
        return "list", "unassigned " + text
    if _OLDEST.match(text):
        return "list", "oldest " + text
    if _HOW_BAD.match(text) or (ref and _OUTCOME_ASK.search(text)):  # "how bad is it?", "why did #103 happen?"
        return "status", f"#{ref.group(1)}" if ref else ""
    if _TREND.match(text):
        return "trend", f"#{ref.group(1)}" if ref else ""
    if _PAGED_ASK.match(text):  # "who was paged for #113?"
        return "paged", f"#{ref.group(1)}" if ref else ""
    if _CLOSE_ASK.match(text) or _FIXED_SAID.match(text):  # "can we close this?", "it's fixed": not yet resolved
        return "ready", (f"#{ref.group(1)} " if ref else "") + ("fixed" if _FIXED_SAID.match(text) else "")
    if impact := _IMPACT_SET.match(text):  # "impact: checkout down for 5% of users"
        said = impact.group("id") or impact.group("id2")
        return "impact", (f"#{said} " if said else "") + impact.group("text").strip()
    if STATUSPAGE_ASKED.match(text):  # "draft a status page update for #113": for customers
        return "statuspage", f"#{ref.group(1)}" if ref else ""
    if _IMPACT_ASK.match(text):  # "what's the impact?": what was recorded
        return "impact", f"#{ref.group(1)}" if ref else ""
    if eta := _ETA_SET.match(text):  # "eta: 30 min"
        said = eta.group("id") or eta.group("id2")
        return "eta", (f"#{said} " if said else "") + eta.group("text").strip()
    if _ETA_ASK.match(text):  # "what's the ETA?": the one given, or that none was
        return "eta", f"#{ref.group(1)}" if ref else ""
    if snooze := _SNOOZE.match(text):  # "snooze the update reminders for 30m"
        said = snooze.group("id") or snooze.group("id2")
        return "snooze", (f"#{said} " if said else "") + f"{snooze.group('n')}{snooze.group('unit')[0].lower()}"
    if link := _LINK_SET.match(text):  # "dashboard: https://...", "link PAY-123 to #113"
        said = link.group("id") or link.group("id2")
        kind = (link.group("kind") or link.group("kind2") or "").lower()
        label = link.group("label") or kind
        return "link", (f"#{said} " if said else "") + f"{link.group('what') or link.group('what2')} {label}".strip()
    if _LINKS_ASK.match(text):  # "links?", "where's the dashboard?"
        return "link", f"#{ref.group(1)}" if ref else ""
    if _INVITE.match(text):  # "bring in @alice and @bob", "add @carla to #113": whoever is mentioned
        return "invite", " ".join([*(f"<@{a or b}>" for a, b in _USER.findall(text)),
                                   *([f"#{ref.group(1)}"] if ref else [])])
    if _REMINDERS_ASK.match(text):  # "what reminders do I have?"
        return "reminders", ""
    if (m := _CAUSES_ASK.match(text)) and not ref:  # "what were the root causes last month?"
        return "list", f"resolved causes {m.group(1)}"
    if m := _RESOLVED_ASK.match(text):  # "which incidents were resolved this week?", "what did we fix today?"
        return "list", f"resolved {m.group(1)}"
    if _RECENT.match(text) and not ref:  # "show me the last 3 incidents": the newest, any status
        return "list", f"{text} recent"
    if _LAST_ONE.match(text) and not ref:  # "when did we last have an incident on kafka?"
        return "last", text
    if HANDOVER.match(text):  # "handover for the last 8h", "what did I miss?"; "catch me up on #113": that one
        return ("status", f"#{ref.group(1)}") if ref else ("handover", text)
    if _STATS.match(text):  # "how often does X break?" without a span: over 90 days (a week says little)
        often = re.match(r"^\W*how\s+(?:often|many\s+times)\b", text, re.I)
        said_span = re.search(r"\b(?:\d{1,3}\s*(?:days?|d|weeks?|w|months?)|today|24 ?h|yesterday|week|month|quarter|"
                              r"year)\b", text, re.I)
        return "stats", text + (" 90 days" if often and not said_span else "")
    if _TIMELINE.search(text):  # "the full timeline of #101", "whole timeline" under the card
        return "timeline", f"#{ref.group(1)}" if ref else ""
    if _TRIED.match(text):  # "what have we tried so far?": the key moments
        return "timeline", f"#{ref.group(1)} key" if ref else "key"
    if _WHOSE_LIST.match(text) and ref is None:  # "which incidents did alice work on?"
        return "list", f"{text} people"
    if (_LIST_WORDS.match(text) or _sev_list(text)) and ref is None:  # "show open sev1 and sev2 incidents": the
        return "list", text  # filters in the words
    if _STATUS_HERE.match(text):  # "how long has this been going on?", "how long has #113 been open?"
        return "status", f"#{ref.group(1)}" if ref else ""
    sev = _FREE_SEV.search(text)
    if ref and sev and not text.rstrip().endswith("?"):
        return "sev", f"{sev.group(1)} #{ref.group(1)}"
    if ref and _FREE_STATUS.search(text):
        return "status", f"#{ref.group(1)}"
    return verb, rest



def pagerduty_jobs(session: Session, settings: Any, inc: Incident, action: str, text: str = "",
                   user: str | None = None) -> list[dict[str, Any]]:
    """The ``pagerduty.sync`` jobs (bot/pagerduty.py) that take ``action`` (acknowledge, resolve, note, urgency,
    assign: ``text`` is then the assignee's Slack id; responders: the Slack ids of the people to page, comma-separated)
    to the PagerDuty incidents behind ``inc``, one job each; none
    when write-back is off or PagerDuty did not open it. A note goes to all of them, the rest to those still firing
    there."""
    if settings is None or getattr(settings, "pagerduty_api_token", None) is None:
        return []
    q = select(Alert.fingerprint).where(Alert.incident_id == inc.id, Alert.source == "pagerduty",
                                        ~Alert.fingerprint.startswith("ping:"))
    if action != "note":
        q = q.where(Alert.status == "firing")
    pd_ids = list(dict.fromkeys(session.scalars(q.order_by(Alert.id).limit(_PD_MAX_INCIDENTS))))
    if action == "responders":  # one request pages them; one per PagerDuty incident would page them over and over
        pd_ids = pd_ids[:1]
    at = utcnow().isoformat()
    return [{"kind": "pagerduty.sync", "dedup_key": f"pagerduty:{inc.id}:{pd_id}:{action}:{at}"[:200],
             "max_attempts": int(settings.pagerduty_max_attempts),
             "payload": {"incident_id": inc.id, "pd_incident": pd_id, "action": action,
                         "text": mask_secrets(text)[:2000], "user": user}} for pd_id in pd_ids]


def pd_urgency(severity: int) -> str:
    """PagerDuty's urgency for one of our severities: SEV1-2 page now (high), SEV3-4 can wait (low)."""
    return "high" if severity <= 2 else "low"


def urgency_jobs(session: Session, settings: Any, inc: Incident, old: int, user: str | None) -> list[dict[str, Any]]:
    """When a person re-rates an incident PagerDuty opened across the SEV2/SEV3 line, its PagerDuty incidents still
    firing get the matching urgency (a SEV1 there no longer waits behind low-urgency rules; a SEV4 stops paging
    at night). A change within one urgency sends nothing."""
    if pd_urgency(old) == pd_urgency(inc.severity):
        return []
    return pagerduty_jobs(session, settings, inc, "urgency", pd_urgency(inc.severity), user)


def roles_of(inc: Incident) -> dict[str, str]:
    """Who holds which role, commander (the assignee) first: role -> Slack user id."""
    held = {"commander": inc.assignee} if inc.assignee else {}
    kept = (inc.findings or {}).get("roles") or {}
    return held | {r: str(kept[r]) for r in ROLES if r != "commander" and kept.get(r)}


def _related_cards(session: Session, inc: Incident) -> list[dict[str, Any]]:
    """Card refreshes for the open incidents whose cards name ``inc`` as related: it is resolved now."""
    return [{"kind": "incident.card", "payload": {"incident_id": r.incident_id}} for r in related_open(session, inc)]


class IncidentSkill(IncidentEdits, BaseSkill):
    """Open, acknowledge, re-rate, escalate, assign, mitigate, resolve, reopen and list incidents."""

    name = "incident"
    commands = ("/incident",)
    keywords = ("incident", "outage", "declare", "sev1", "sev2")
    examples = ("/incident new payments-api returning 500s sev2", "eta: 30 min (under a card)",
                "dashboard: <url> (under a card)", "@warroom compare this week to last week",
                "can we close this? (under a card)", "@warroom what's our uptime this month?")
    usage = _USAGE

    def score(self, text: str) -> float:
        """Keywords, or 0.85 for free text about one incident ("status of #101", "ack #101")."""
        if RELATED_ASKED.match(text):  # "is this related to #112?" (skills/incident_relation.py)
            return 0.93
        if DOWNTIME_ASKED.match(text):  # "what's our uptime this month?" (skills/downtime.py): above the knowledge
            return 0.92  # base's "what is" questions
        if INCIDENT_REF.search(text) and _OUTCOME_ASK.search(text):  # "what caused #101?": its root cause, not
            return 0.92  # the knowledge base's closest passage (another incident's postmortem)
        if INCIDENT_REF.search(text) and (_FREE_STATUS.search(text) or _FREE_VERB.search(text)
                                          or (_FREE_SEV.search(text) and not text.rstrip().endswith("?"))):
            return 0.85
        if _MERGE.match(text):  # "merge #114 into #113"
            return 0.85
        if _SNOOZE.match(text):  # above the help's "I do not silence alerts"
            return 0.9
        if _DECLARE_NOW.match(text) and (not text.rstrip().endswith("?") or re.match(
                r"^\W*(?:please|pls|can\s+you|could\s+you)\b", text, re.I)):
            return 0.92  # above a report's similar-incident search: asked for, so declared
        if _DECLARING.search(text) and _WHETHER.match(text):  # "how do I open an incident?": how to (see _free_text),
            return 0.92  # above the knowledge base's how-to questions
        if _TAKE.match(text) or _DUPLICATE.match(text) or _FALSE_ALARM.match(text):  # "I'm on it", "false alarm"
            return 0.8
        if surely_said(text) or (INCIDENT_REF.search(text) and said_as_command(text)):  # "move this to dns"
            return 0.85
        if (_NOTE.match(text) or _ROOT_CAUSE.match(text) or _SEV_HERE.match(text) or _WHO_HERE.match(text)
                or _HANDOFF.match(text) or _UNASSIGN.match(text) or HANDOVER.match(text) or _ROLE_SELF.match(text)
                or _ROLE_OTHER.match(text)
                or _ROLE_MAKE.match(text) or _FOLLOW.match(text) or _REMIND.match(text) or _INVITE.match(text)
                or _ROLE_MAKE_NAMED.match(text) or _INVITE_NAMED.match(text)
                or _IMPACT_SET.match(text) or _IMPACT_ASK.match(text) or STATUSPAGE_ASKED.match(text)
                or _ETA_SET.match(text) or _ETA_ASK.match(text) or _LINK_SET.match(text) or _LINKS_ASK.match(text)
                or _WORK.match(text) or _UNASSIGNED.match(text) or _OLDEST.match(text) or _HOW_BAD.match(text)
                or _TREND.match(text) or _CLOSE_ASK.match(text) or _FIXED_SAID.match(text) or _PAGED_ASK.match(text)
                or (_CAUSES_ASK.match(text) and not INCIDENT_REF.search(text))
                or _ROLE_ASK.match(text) or _RESOLVED_ASK.match(text) or _REMINDERS_ASK.match(text)
                or _MINE.match(text) or _STATUS_HERE.match(text) or _STATS.match(text) or _TIMELINE.search(text)
                or _TRIED.match(text) or ((_LAST_ONE.match(text) or _RECENT.match(text))
                                          and not INCIDENT_REF.search(text))
                or (_WHOSE_LIST.match(text) and not INCIDENT_REF.search(text))
                or ((_LIST_WORDS.match(text) or _sev_list(text))
                                          and not INCIDENT_REF.search(text))):
            return 0.85  # "note: ...", "root cause was ...", "this is a sev1", "who is the IC?"
        if _FREE_VERB.search(text):  # "ack", "resolve: rolled back" in the card's thread or the incident channel
            return max(0.6, super().score(text))
        if _STATE_WORD.match(text):  # "resolve the DNS issue first": said back, not acted on (see run)
            return max(0.45, super().score(text))
        return super().score(text)

    def score_here(self, text: str) -> float:
        """Under an incident's card: "we're rolling back now" is a key moment of that incident."""
        if said_as_command(text) is not None:  # "this is a kafka issue": this incident's service (see run)
            return 0.85
        return 0.8 if _PROGRESS.match(text) and not _TAKE.match(text) else 0.0

    def run(self, request: SkillRequest, ctx: SkillContext) -> SkillResult:
        if request.source in ("mention", "dm") and RELATED_ASKED.match(request.text):  # "is #113 related to #112?"
            with ctx.db.session() as s:
                return relation(s, request.text, request.incident_id)
        if request.source in ("mention", "dm") and DOWNTIME_ASKED.match(request.text):  # "what's our uptime?"
            with ctx.db.session() as s:
                return downtime(s, request.text, request.user_id)
        first_word, _, after = request.text.strip().partition(" ")
        if request.source == "command" and first_word.lower() in ("related", "relation"):  # "/incident related 113 112"
            with ctx.db.session() as s:
                return relation(s, " ".join(f"#{w.lstrip('#')}" if w.lstrip("#").isdigit() else w
                                            for w in after.split()), request.incident_id)
        if request.source == "command" and first_word.lower() == "recent":  # "/incident recent [N]": the list's
            request = dataclasses.replace(request, text=f"list recent {after}".strip())
        if request.source in ("mention", "dm") and (named := _ROLE_MAKE_NAMED.match(request.text)
                                                   or _INVITE_NAMED.match(request.text)):
            from skills.person import people_named  # "make alice the IC": as "make @alice the IC"

            with ctx.db.session() as s:
                ids = people_named(s, named.group("name"))
            if len(ids) != 1:  # nobody, or a name several people share: asked back, not the usage
                raise SkillError(f"{'Several people are' if ids else 'I know nobody'} called "
                                 f"`{escape(named.group('name')[:40])}`: mention the one you mean (`add @name`, "
                                 "`make @name the IC`). A note is `note: ...`, the impact `impact: ...`.")
            request = dataclasses.replace(request, text=request.text[:named.start("name")] + f"<@{ids[0]}>"
                                          + request.text[named.end("name"):])
        verb, _, rest = request.text.strip().partition(" ")
        verb = verb.lower()
        if request.source in ("mention", "dm") and (edit := self._edit_said(request.text, ctx)) is not None:
            verb, rest = edit  # "rename #101 to ...", "move this to postgres-main"
        elif (request.source in ("mention", "dm") and request.incident_id is not None
              and _PROGRESS.match(request.text) and not _TAKE.match(request.text)):
            verb, rest = "note", request.text.strip()
        elif request.source in ("mention", "dm"):
            state = _STATE_WORD.match(request.text)
            if (state and not _FREE_VERB.match(request.text)) or (verb == "take" and not _TAKE.match(request.text)):
                # "resolve the DNS issue first", "reopen the PR", "mitigate the risk by ...": words, not a request
                # about the incident
                word = state.group(1).lower() if state else "take"
                if request.incident_id is not None and word != "take":  # under the card: name it
                    raise SkillError(f"I did not act on that. To {word} incident #{request.incident_id}, say "
                                     f"`{word}` (or `{word}: what was done`) here.")
                how = ("say \"I'm on it\" in its card's thread, or `/incident take <id>`" if word == "take"
                       else f"say `{word} #<id>` (or `{word} #<id>: what was done`), or `{word}` alone in its card's "
                       "thread")
                raise SkillError(f"I did not act on that. To {word} an incident {how}.")
            first = (rest.split() or [""])[0]  # "status of incident #101": the number is not first
            if (verb not in _VERBS or _FREE_NEW.search(request.text) or _FREE_VERB.match(request.text)
                    or _TAKE.match(request.text) or _NOTE.match(request.text) or _DUPLICATE.match(request.text)
                    or _ROLE_SELF.match(request.text) or _ROLE_OTHER.match(request.text)
                    or _ROLE_MAKE.match(request.text) or _FOLLOW.match(request.text) or _UNASSIGN.match(request.text)
                    or _HANDOFF.match(request.text)
                    or _REMIND.match(request.text) or _INVITE.match(request.text)
                    or _IMPACT_SET.match(request.text) or _MERGE.match(request.text) or _ETA_SET.match(request.text)
                    or _ETA_ASK.match(request.text) or _LINK_SET.match(request.text) or _LINKS_ASK.match(request.text)
                    or _SNOOZE.match(request.text)
                    or STATUSPAGE_ASKED.match(request.text)
                    or _FALSE_ALARM.match(request.text) or _sev_list(request.text) or _LAST_ONE.match(request.text)
                    or _RECENT.match(request.text)
                    or _WHOSE_LIST.match(request.text)
                    or (INCIDENT_REF.search(request.text) and not _ID.match(first))):
                verb, rest = _free_text(request.text, verb, rest)
        handlers = {"new": self._new, "declare": self._new, "ack": self._ack, "acknowledge": self._ack,
                    "status": self._status, "sev": self._sev, "escalate": self._escalate, "assign": self._assign,
                    "unassign": self._unassign, "mitigate": self._mitigate, "resolve": self._resolve,
                    "close": self._resolve,
                    "reopen": self._reopen, "take": self._take, "list": self._list, "note": self._note,
                    "update": self._update,
                    "who": self._who, "stats": self._stats, "timeline": self._timeline,
                    "role": self._role, "roles": self._who, "follow": self._follow, "unfollow": self._unfollow,
                    "remind": self._remind, "reminders": self._reminders,
                    "handover": self._handover, "rename": self._rename, "title": self._rename,
                    "service": self._service, "invite": self._invite, "changes": self._changes,
                    "impact": self._impact, "statuspage": self._statuspage, "work": self._work, "eta": self._eta,
                    "link": self._link, "links": self._link, "snooze": self._snooze,
                    "trend": self._trend, "ready": self._ready, "paged": self._paged,
                    "last": self._last}
        if verb not in handlers:
            raise SkillError(_USAGE)
        if verb in _MEMBERS_ONLY and request.user_id and (what := outsider(ctx, request.user_id)) is not None:
            # A vendor in a shared incident channel, a guest: they can follow, read and post updates, but not
            # change the incident (resolve it, page people by escalating it, take it over).
            said = {"service": "move", "role": "give roles in", "sev": "re-rate"}.get(verb, verb)
            raise SkillError(f"{what[0].upper()}{what[1:]} cannot {said} incidents here; ask a member of this "
                             "workspace. Notes and updates are welcome.")
        if verb in _MULTI and len(ids := _many_ids(rest)) > 1:  # "ack #113 and #114", "/incident ack 113 114"
            return self._each(verb, ids, request, ctx, handlers[verb])
        with ctx.db.session() as s:
            return handlers[verb](s, request, rest.strip(), ctx)

    @staticmethod
    def _each(verb: str, ids: list[int], request: SkillRequest, ctx: SkillContext, handler: Any) -> SkillResult:
        """One verb for several incidents: each on its own (one already acknowledged does not stop the others), the
        answers together, every card refreshed."""
        said: list[str] = []
        jobs: list[dict[str, Any]] = []
        for i in ids[:10]:
            try:
                with ctx.db.session() as s:
                    r = handler(s, request, f"#{i}", ctx)
            except SkillError as exc:
                said.append(f"#{i}: {exc}")
                continue
            said.append(r.summary)
            jobs += list(r.data.get("follow_up_jobs") or [])
            jobs.append({"kind": "incident.card", "payload": {"incident_id": i},
                         "dedup_key": f"card:{i}:{verb}:{utcnow().isoformat()}"})
        if len(ids) > 10:
            said.append(f"Only the first 10: {', '.join(f'#{i}' for i in ids[10:15])}… were left as they are.")
        return SkillResult(title="Incidents " + ", ".join(f"#{i}" for i in ids[:10]), summary="\n".join(said),
                           data={"follow_up_jobs": jobs})

    def handle_action(self, action_id: str, request: SkillRequest, ctx: SkillContext) -> SkillResult | None:
        verb = action_id.split(":", 1)[1]
        if verb == "new":  # "Open an incident" under the bot's answer to a reported symptom
            return self._new_from_report(request, ctx)
        if verb == "unremind":
            return self._unremind(request.text, request.user_id, ctx)
        if verb == "statuspage_post":  # the draft, as shown, becomes the incident's update (a person clicked it)
            ident, _, text = request.text.partition(":")
            if not (ident.isascii() and ident.isdigit()) or db_id(ident) is None or not text.strip():
                raise SkillError("this button does not carry a draft for an incident")
            return self.run(SkillRequest(text=f"update {ident} {text[:1900]}", source="action",
                                         user_id=request.user_id, channel_id=request.channel_id), ctx)
        if verb == "from_message":  # the message shortcut "Open an incident" on anyone's message: its first line
            first = next((ln for ln in request.text.splitlines() if ln.strip()), "")
            first = re.sub(rf"<@{USER_ID}(?:\|[^>]*)?>", "", mask_secrets(first)).strip(" :-")
            return self._new_from_report(dataclasses.replace(request, text=first[:300]), ctx)
        if verb == "escalate":  # value "<id>:<severity shown on the card>": a second click finds it changed
            ident, _, shown = request.text.partition(":")
            if not (ident.isascii() and ident.isdigit()) or (sev_shown := small_int(shown)) is None:
                raise SkillError("this button does not name an incident")
            with ctx.db.session() as s:
                inc = s.get(Incident, n) if (n := db_id(ident)) is not None else None
                if inc is None:
                    raise SkillError(f"There is no incident #{ident[:24]}.")
                if inc.severity != sev_shown:
                    return self._done(inc, f"Incident #{inc.id} is SEV{inc.severity} now (it was SEV{shown} on the "
                                      "card you clicked): not escalated again.")
            request, verb = dataclasses.replace(request, text=ident), "escalate"
        elif verb not in ("ack", "resolve", "reopen", "follow"):
            raise SkillError(f"unknown incident action {verb}")
        if not (request.text.isascii() and request.text.isdigit()):
            raise SkillError("this button does not name an incident")
        if db_id(request.text) is None:
            raise SkillError(f"There is no incident #{request.text[:24]}.")
        fake = SkillRequest(text=f"{verb} {request.text}", source="action", user_id=request.user_id,
                            channel_id=request.channel_id)
        return self.run(fake, ctx)

    # --- helpers -----------------------------------------------------------------------------------
    def _target(self, s: Session, request: SkillRequest, args: list[str]) -> tuple[Incident, list[str]]:
        """The incident named by the FIRST argument (``resolve 12 restarted 3 pods``: the 3 is what was done,
        never an incident), else the one this thread or channel belongs to."""
        if args:
            if re.fullmatch(r"#?\d{10,}[:,.;]?", args[0]):  # longer than any id: no such incident, said plainly
                raise SkillError(f"There is no incident {escape(args[0][:24])}.")
            m = _ID.match(args[0])
            if m:
                inc = s.get(Incident, int(m.group(1)))
                if inc is None:
                    raise SkillError(f"There is no incident #{m.group(1)}.")
                return inc, args[1:]
        if request.incident_id:
            inc = s.get(Incident, request.incident_id)
            if inc is not None:
                return inc, args
        if request.thread_ts:  # a reply in the incident card's thread ("@warroom ack")
            inc = s.scalars(select(Incident).where(Incident.card_ts == request.thread_ts)).first()
            if inc is not None:
                return inc, args
        if request.channel_id:
            rows = s.scalars(select(Incident).where(Incident.channel_id == request.channel_id,
                                                    Incident.status.in_(OPEN_STATUSES))
                             .order_by(Incident.dedicated_channel.desc(), Incident.id.desc())).all()
            dedicated = [r for r in rows if r.dedicated_channel]
            if dedicated:
                return dedicated[0], args
            if len(rows) == 1:
                return rows[0], args
            if rows:
                listing = ", ".join(f"#{r.id}" for r in rows[:10])
                raise SkillError(f"Several incidents are open in this channel ({listing}): "
                                 f"name one, e.g. `#{rows[0].id}`.")
        open_now = s.scalars(select(Incident).where(Incident.status.in_(OPEN_STATUSES))
                             .order_by(Incident.severity, Incident.id.desc()).limit(6)).all()
        if not open_now:  # "who is the IC?" away from any card: which ones it could be, not a bare "which?"
            raise SkillError("Which incident? None is open now: name one by id, e.g. `/incident status 12`.")
        listing = "; ".join(f"#{r.id} SEV{r.severity} {escape(r.title[:50])}" for r in open_now[:5])
        raise SkillError(f"Which incident? Open now: {listing}{' ...' if len(open_now) > 5 else ''}. Name it by id "
                         f"(e.g. `#{open_now[0].id}`), or ask in its card's thread.")

    def _event(self, s: Session, inc: Incident, kind: str, text: str, actor: str | None) -> None:
        s.add(TimelineEvent(incident_id=inc.id, at=utcnow(), kind=kind, text=text, actor=actor))

    def _done(self, inc: Incident, summary: str, **data: Any) -> SkillResult:
        return SkillResult(title=f"Incident #{inc.id}", summary=summary,
                           data={"refresh_card": inc.id, "incident_id": inc.id, **data})

    def _new_from_report(self, request: SkillRequest, ctx: SkillContext) -> SkillResult:
        """Open the incident a person reported in words, once per answer: a second click on the same
        button (or a retried delivery) names the incident the first one opened."""
        title = " ".join(request.text.split())[:300]
        if not title:
            raise SkillError("This button does not say what to open an incident about.")
        key = f"{REPORT_KEY_PREFIX}{request.channel_id}:{request.thread_ts}"[:300]
        try:
            with ctx.db.session() as s:
                done = s.scalars(select(Incident).where(Incident.group_key == key)).first()
                if done is None:
                    return self._new(s, request, title, ctx, group_key=key)
        except IntegrityError:  # a concurrent click inserted first (unique index on the key): name its incident
            with ctx.db.session() as s:
                done = s.scalars(select(Incident).where(Incident.group_key == key)).first()
            if done is None:
                raise
        return self._done(done, f"Already opened as incident #{done.id} by <@{done.created_by}>.")

    # --- verbs -------------------------------------------------------------------------------------
    def _new(self, s: Session, request: SkillRequest, rest: str, ctx: SkillContext,
             group_key: str | None = None) -> SkillResult:
        sev = 3
        rest = re.sub(r"^(?:an?)\s+(?=(?:sev(?:erity)?[\s-]?|p)[0-4]\b)", "", rest, flags=re.I)  # "declare a sev1 ..."
        lead = LEAD_SEV.match(rest)  # "/incident new sev1: checkout down" (a leading bare "2" is a title word)
        if lead:
            sev, rest = max(1, int(lead.group(1))), re.sub(r"^(?:for|about|on)\s+", "", rest[lead.end():], flags=re.I)
        words = rest.split()
        if words and (level := severity_word(words[-1])) is not None:
            sev = level
            words = words[:-2] if len(words) > 1 and words[-2].lower() in ("sev", "severity") else words[:-1]
        if bad := _NO_SEV.search(" ".join(words[:2] + words[-2:])):  # "sev9", "SEV-12": a level we do not have
            raise SkillError(f"`{escape(bad.group(1))}` is not a severity here: use sev1 (worst) to sev4 "
                             "(P0-P4 work too): `/incident new <title> [sev1-4]`.")
        title = " ".join(words).strip()
        if not title:
            raise SkillError("Give the incident a title: `/incident new <title> [sev1-4]`.")
        from knowledge.people import services_in_text

        named = services_in_text(session=s, text=title)  # whole names: "ingest", not inside "ingestion"
        service = s.scalars(select(Service).where(Service.name == named[0])).first() if named else None
        inc = Incident(title=title[:500], severity=sev, status="open", source="slack", created_by=request.user_id,
                       service_id=service.id if service else None, service_name=service.name if service else None,
                       created_at=utcnow(), detected_at=utcnow(), findings={}, group_key=group_key)
        s.add(inc)
        s.flush()
        self._event(s, inc, "created", f"Declared by <@{request.user_id}>: {title[:200]}", request.user_id)
        same = s.scalars(select(Incident).where(Incident.service_name == inc.service_name, Incident.id != inc.id,
                                                Incident.status.in_(OPEN_STATUSES))
                         .order_by(Incident.severity, Incident.id.desc()).limit(1)).first() if service else None
        heads_up = "" if same is None else (
            f" Heads-up: {escape(same.service_name)} already has an open incident, #{same.id} SEV{same.severity} "
            f"[{same.status}] {escape(same.title[:100])} ({_age(same)}"
            + (f", <@{same.assignee}>" if same.assignee else ", nobody on it") + "). If it is the same problem, "
            f"work in its thread and close this one: `/incident resolve {inc.id} duplicate of #{same.id}`.")
        cause = next((r for r in related_open(s, inc) if r.relation == "cause"), None) if same is None else None
        if cause is not None:  # what it depends on is already burning: probably the same outage, seen from here
            heads_up = (f" Heads-up: {escape(inc.service_name or '')} depends on {escape(cause.service)}, which has an "
                        f"open incident, #{cause.incident_id} SEV{cause.severity} [{cause.status}] "
                        f"{escape(cause.title[:100])} ({escape(' → '.join(cause.path))}): it may be the cause.")
        return self._done(inc, f"Opened incident #{inc.id} (SEV{sev}): {esc_keep_users(title)}" + (
            f"\n{heads_up.strip()}" if heads_up else ""), created=True,
                          follow_up_jobs=[{"kind": "incident.triage", "payload": {"incident_id": inc.id},
                                           "dedup_key": f"triage:{inc.id}:new"}])

    def _take(self, s: Session, request: SkillRequest, rest: str, ctx: SkillContext) -> SkillResult:
        """"I'm on it" / "I'll take it": the requester becomes the assignee, and an open incident is acknowledged."""
        inc, _ = self._target(s, request, rest.split())
        if inc.status == "resolved":
            raise SkillError(f"Incident #{inc.id} is already resolved.")
        before, inc.assignee, acked = inc.assignee, request.user_id, inc.status == "open"
        if acked:
            inc.status, inc.acknowledged_at = "acknowledged", utcnow()
        self._event(s, inc, "assign", f"Taken by <@{request.user_id}>" + (f" (was <@{before}>)" if before and
                                                                           before != request.user_id else ""),
                    request.user_id)
        return self._done(inc, f"<@{request.user_id}> is on incident #{inc.id} ({inc.status}).", follow_up_jobs=(
            pagerduty_jobs(s, ctx.settings, inc, "acknowledge", user=request.user_id) if acked else []))

    def _ack(self, s: Session, request: SkillRequest, rest: str, ctx: SkillContext) -> SkillResult:
        inc, left = self._target(s, request, rest.split())
        if inc.status == "resolved":
            raise SkillError(f"Incident #{inc.id} is already resolved.")
        if inc.acknowledged_at is not None and inc.status == "acknowledged":
            return self._done(inc, f"Incident #{inc.id} was already acknowledged.")
        inc.status, inc.acknowledged_at = "acknowledged", utcnow()
        inc.assignee = inc.assignee or request.user_id
        self._event(s, inc, "ack", f"Acknowledged by <@{request.user_id}>{_why(left)}", request.user_id)
        return self._done(inc, f"<@{request.user_id}> acknowledged incident #{inc.id}.",
                          follow_up_jobs=pagerduty_jobs(s, ctx.settings, inc, "acknowledge", user=request.user_id))

    def _status(self, s: Session, request: SkillRequest, rest: str, ctx: SkillContext) -> SkillResult:
        inc, extra = self._target(s, request, rest.split())
        if request.source == "command" and extra:  # "/incident status 101 102": 102 was dropped without a word
            raise SkillError(f"`/incident status` shows one incident; I cannot read `{escape(' '.join(extra)[:60])}`. "
                             "`/incident list` shows every open one.")
        events = s.scalars(select(TimelineEvent).where(TimelineEvent.incident_id == inc.id)
                           .order_by(TimelineEvent.at.desc(), TimelineEvent.id.desc()).limit(200)).all()
        # A storm writes the same event many times in a row ("Alert X joined ..."): one line with a count.
        runs = [(line, len(list(same))) for line, same in
                groupby(f"{slack_clock(e.at)} {esc_keep_users(e.text[:200])}" for e in reversed(events))]
        lines = tuple(line if n == 1 else f"{line} (×{n})" for line, n in runs[-8:])
        sections = [Section("Latest", lines or ("nothing yet",))]
        # "what happened in #101?": for a closed incident, what it was and what fixed it, and its postmortem
        outcome = tuple(f"*{label}:* {escape(text[:500])}" for label, text in
                        (("Root cause", inc.root_cause), ("Resolution", inc.resolution)) if text)
        if s.scalar(select(Postmortem.id).where(Postmortem.incident_id == inc.id).limit(1)) is not None:
            outcome += (f"<{kb_url(ctx, inc.id)}|postmortem of #{inc.id}>",)
        if outcome:
            sections.insert(0, Section("Outcome", outcome))
        open_now = inc.status != "resolved"
        related = related_lines(related_open(s, inc)) if open_now else []
        if related:
            sections.append(Section("Related open incidents", tuple(escape(x) for x in related)))
        return SkillResult(
            title=f"Incident #{inc.id}: {inc.title[:120]}",
            fields=(("Status", inc.status), ("Severity", f"SEV{inc.severity}"),
                    ("Service", escape(inc.service_name or "unknown")),
                    ("Assignee", f"<@{inc.assignee}>" if inc.assignee else "nobody"),
                    ("Alerts", str(inc.alert_count or 0)), ("Age" if open_now else "Lasted", _age(inc)))
            + self._whose(s, inc, events)
            + ((("Impact", escape(str(impact)[:300])),) if (impact := ((inc.findings or {}).get("impact") or {})
                                                             .get("text")) else ())
            + ((("ETA", eta_text(inc)),) if open_now and eta_text(inc) else ()),
            sections=tuple(sections),
            actions=((Action("incident:ack", "Acknowledge", str(inc.id)),) if inc.status == "open" else ())
            + ((Action("incident:resolve", "Resolve", str(inc.id), "primary"),) if open_now else ()),
            data={"incident_id": inc.id})

    @staticmethod
    def _whose(s: Session, inc: Incident, events: Any) -> tuple[tuple[str, str], ...]:
        """The status's who-and-when fields: the owning team (and its channel), where the incident is worked (its
        card's channel), when it was acknowledged and resolved and by whom ("who acknowledged #113?", "is #113
        still open?", "which team owns #113?" went to the knowledge base)."""
        out: list[tuple[str, str]] = []  # (Slack shows 10 fields: team and channel share one)
        svc = s.get(Service, inc.service_id) if inc.service_id else None
        where = f"worked in <#{inc.channel_id}>" if inc.channel_id else ""
        if svc is not None and svc.team is not None:
            out.append(("Team", escape(svc.team.name) + (f" (<#{svc.team.slack_channel}>)" if svc.team.slack_channel
                                                         else "") + (f"; {where}" if where else "")))
        elif where:
            out.append(("Channel", where))
        acked = ("ack", "Acknowledged by"), ("assign", "Taken by")  # "I'm on it" acknowledges too
        for label, at, kinds in (("Acknowledged", inc.acknowledged_at, acked),
                                 ("Resolved", inc.resolved_at, (("resolve", "Resolved by"),))):
            if at is not None:
                by = next((e.actor for e in reversed(events) if e.actor and any(  # the first one (events: newest first)
                    e.kind == k and e.text.startswith(w) for k, w in kinds)), None)
                out.append((label, f"{slack_clock(at)}, {_minutes((at - inc.created_at).total_seconds() / 60)} after "
                                   "it opened" + (f", by <@{by}>" if by else "")))
        return tuple(out)

    def _timeline(self, s: Session, request: SkillRequest, rest: str, ctx: SkillContext) -> SkillResult:
        """Every event of the incident, oldest first, in the thread (the status shows only the latest)."""
        inc, left = self._target(s, request, rest.split())
        said = " ".join(left).strip(" .?!")
        span = _LAST_SPAN.search(said)  # "last hour", "last 30m": only that span ("last hour" was dropped)
        key_only = bool(re.search(r"\bkey(?:\s+moments?)?\b", said, re.I))
        unread = _LAST_SPAN.sub(" ", re.sub(r"\bkey(?:\s+moments?)?\b|\b(?:of|for|the|only|in)\b", " ", said,
                                            flags=re.I)).split()
        if request.source == "command" and unread:
            raise SkillError(f"I cannot read `{escape(' '.join(unread)[:60])}`: `/incident timeline [id] [key] "
                             "[last 2h | last 30m | last day]`.")
        q = select(TimelineEvent).where(TimelineEvent.incident_id == inc.id)
        if span:
            n, unit = int(span.group(1) or 1), span.group(2).lower()[0]
            q = q.where(TimelineEvent.at >= utcnow() - dt.timedelta(
                minutes=n if unit == "m" else 0, hours=n if unit == "h" else 0, days=n if unit == "d" else 0))
        if key_only:
            q = q.where(TimelineEvent.key.is_(True))
        events = s.scalars(q.order_by(TimelineEvent.at, TimelineEvent.id).limit(2000)).all()
        lines = [f"{e.at:%Y-%m-%d %H:%M:%S} UTC · {e.kind}{' · key' if e.key else ''} · "
                 f"{esc_keep_users(' '.join(e.text.split())[:400])}" for e in events]
        shown = lines[:200]
        more = f"\n… {len(lines) - len(shown)} more: the postmortem export has them all." if len(lines) > 200 else ""
        kind, when = "key " if key_only else "", f" in the {span.group(0)}" if span else ""
        return SkillResult(title=f"Timeline of incident #{inc.id}: {inc.title[:100]}",
                           summary=(f"{len(events)} {kind}event(s){when} from {clock(events[0].at)} to "
                                    f"{clock(events[-1].at)}; the full list is in the thread." if events else
                                    f"No key moments{when or ' yet'}: nothing was noted or pinned "
                                    f"(say `note: what you tried` to add one); every event: `/incident timeline "
                                    f"{inc.id}`." if kind else f"No events{when}." if when else "No events yet."),
                           detail="\n".join(shown) + more if events else "", data={"incident_id": inc.id})

    def _sev(self, s: Session, request: SkillRequest, rest: str, ctx: SkillContext) -> SkillResult:
        args = rest.split()
        sev_args = [a for a in args if severity_word(a) is not None and not a.startswith("#")]
        if not sev_args:
            raise SkillError("Usage: `/incident sev <1-4> [id]`.")
        sev = severity_word(sev_args[0]) or 3
        rest_args = [a for a in args if a != sev_args[0]]
        inc, left = self._target(s, request, rest_args)
        intake = (inc.findings or {}).get("intake") or {}
        if intake.get("unread_severity"):  # a person has now said the level: the card's doubt goes
            inc.findings = {**(inc.findings or {}), "intake": {k: v for k, v in intake.items()
                                                               if k != "unread_severity"}}
        if inc.severity == sev:
            return self._done(inc, f"Incident #{inc.id} is already SEV{sev}.")
        old, inc.severity = inc.severity, sev
        self._event(s, inc, "sev", f"Severity SEV{old} -> SEV{sev} by <@{request.user_id}>{_why(left)}",
                    request.user_id)
        return self._done(inc, f"Incident #{inc.id} is now SEV{sev} (was SEV{old}).",
                          follow_up_jobs=self._tell_followers(inc, "severity", f"SEV{old} -> SEV{sev}",
                                                              request.user_id)
                          + urgency_jobs(s, ctx.settings, inc, old, request.user_id))

    def _escalate(self, s: Session, request: SkillRequest, rest: str, ctx: SkillContext) -> SkillResult:
        """One severity level up, and the next people to call named (a mention notifies them): the router's
        candidates for this incident (on call, owners, escalation chain, who fixed similar ones), minus the
        assignee and whoever asked."""
        from knowledge.people import oncall_by_team, team_in_text
        from skills.routing_engine import Candidate, route

        inc, left = self._target(s, request, rest.split())
        if inc.status == "resolved":
            raise SkillError(f"Incident #{inc.id} is resolved; open a new incident if it is back.")
        d = route(ctx, text=f"{inc.title}. {inc.description or ''}"[:2000], service=inc.service_name,
                  incident_id=inc.id)
        nxt = [c for c in d.candidates if c.user_id not in (inc.assignee, request.user_id)][:2]
        to = re.match(r"^\s*to\s+(?:the\s+)?(.+)", " ".join(left), re.I | re.S)  # "escalate to (the) storage team"
        asked = to.group(1).strip(" .!") if to else ""
        # why, said after it: "escalate #12 to storage because the disk is full", "escalate: customers affected"
        why = _why(left)
        if to and (cut := _BECAUSE.search(asked)):
            why, asked = _why(asked[cut.end():].split()), asked[:cut.start()].strip(" .!")
        elif to:
            why = ""
        named = list(dict.fromkeys(a or b for a, b in _USER.findall(asked)))[:3]  # "escalate to @alice"
        team = team_in_text(session=s, text=asked) if asked and not named else ""
        if named:  # the people asked for first, then the router's candidates
            names = dict(s.execute(select(Expert.slack_user_id, Expert.name)
                                   .where(Expert.slack_user_id.in_(named))).all())
            nxt = [Candidate(user_id=u, name=names.get(u, u), team=None, score=0.0, reasons=("asked for by name",))
                   for u in named if u != inc.assignee] + [c for c in nxt if c.user_id not in named]
            nxt = nxt[:3]
        elif team:  # "escalate to storage": that team's on-call first, then the router's candidates
            shift = [(u, n) for r in oncall_by_team(session=s, team=team) for u, n in r.people
                     if u not in (inc.assignee, request.user_id)]
            called = {u for u, _ in shift}
            nxt = [Candidate(user_id=u, name=n, team=team, score=0.0, reasons=(f"on call for {team}",), on_call=True)
                   for u, n in shift] \
                + [c for c in nxt if c.user_id not in called]
            nxt = nxt[:3]
        old, inc.severity = inc.severity, max(1, inc.severity - 1)
        level = f"SEV{old} -> SEV{inc.severity}" if old != inc.severity else "it stays SEV1, the highest"
        who = "; ".join(f"<@{c.user_id}> ({escape(c.name)}): {escape(c.why)}" for c in nxt)
        self._event(s, inc, "escalate", f"Escalated by <@{request.user_id}> ({level}){why}"
                    + (f"; called {', '.join(f'<@{c.user_id}>' for c in nxt)}" if nxt else ""), request.user_id)
        then = f" Next to call: {who}." if nxt else f" Nobody else to call: {escape(d.fallback or 'no candidate')}."
        if asked and not team and not named:
            then += f" (I know no team or service called \"{escape(asked[:60])}\": `/oncall` lists the teams.)"
        elif team and not any(c.why == f"on call for {team}" for c in nxt):
            then += f" (Nobody is on call for {escape(team)} now.)"
        follow = (self._tell_followers(inc, "severity", f"escalated ({level})", request.user_id)
                  + urgency_jobs(s, ctx.settings, inc, old, request.user_id)) if old != inc.severity else []
        if nxt:  # PagerDuty pages them too (their phones, not only their Slack)
            follow += pagerduty_jobs(s, ctx.settings, inc, "responders", ",".join(c.user_id for c in nxt),
                                     request.user_id)
        return self._done(inc, f"<@{request.user_id}> escalated incident #{inc.id} ({level}).{then}",
                          follow_up_jobs=follow)

    def _assign(self, s: Session, request: SkillRequest, rest: str, ctx: SkillContext) -> SkillResult:
        m = _USER.search(rest)
        me = re.search(r"\b(?:to\s+)?me\b", rest, re.I) if m is None and request.user_id else None
        if not (m or me):
            raise SkillError("Usage: `/incident assign @user [id]` (or `assign me`).")
        user = (m.group(1) or m.group(2)) if m else str(request.user_id)
        left = rest if m else rest[:me.start()] + rest[me.end():]  # type: ignore[union-attr]
        inc, _ = self._target(s, request, [a for a in left.split() if not _USER.search(a) and a.lower() != "to"])
        inc.assignee = user
        self._event(s, inc, "assign", f"Assigned to <@{user}> by <@{request.user_id}>", request.user_id)
        return self._done(inc, f"Incident #{inc.id} is assigned to <@{user}>.", invite=[user],
                          follow_up_jobs=pagerduty_jobs(s, ctx.settings, inc, "assign", user, request.user_id))

    def _unassign(self, s: Session, request: SkillRequest, rest: str, ctx: SkillContext) -> SkillResult:
        """Nobody on it any more ("I'm off this"): said on the timeline, and who could take it next, so it does not
        sit with nobody unnoticed (the ack reminders count it as unassigned again)."""
        words = rest.split()
        me = bool(words) and words[0].lower() == "me"
        inc, _ = self._target(s, request, words[1:] if me else words)
        if inc.assignee is None:
            return self._done(inc, f"Nobody is on incident #{inc.id}.")
        if me and inc.assignee != request.user_id:  # "I'm off this" said by someone else: not theirs to drop
            return self._done(inc, f"You are not on incident #{inc.id}: <@{inc.assignee}> is. To take them off, "
                              f"`/incident unassign {inc.id}`.")
        was = inc.assignee
        inc.assignee = None
        self._event(s, inc, "assign", f"Unassigned (was <@{was}>) by <@{request.user_id}>", request.user_id)
        nxt = "" if inc.status == "resolved" else (
            " Who takes it? Say \"I'm on it\" under its card, or ask \"who should take this?\" for suggestions.")
        return self._done(inc, f"Incident #{inc.id} has nobody on it now (was <@{was}>).{nxt}")

    def _mitigate(self, s: Session, request: SkillRequest, rest: str, ctx: SkillContext) -> SkillResult:
        """The impact is over, the cause maybe not: the clock for time-to-mitigate stops here."""
        inc, left = self._target(s, request, rest.split())
        if inc.status in ("resolved", "mitigated"):
            return self._done(inc, f"Incident #{inc.id} is already {inc.status}.")
        inc.status, inc.mitigated_at = "mitigated", utcnow()
        note = mask_secrets(" ".join(left).strip())
        self._event(s, inc, "mitigated", f"Mitigated by <@{request.user_id}>" + (f": {note[:300]}" if note else ""),
                    request.user_id)
        return self._done(inc, f"Incident #{inc.id} is mitigated after {_age(inc)}. Resolve it when the cause is "
                          "fixed: `/incident resolve <what fixed it>`.",
                          follow_up_jobs=self._broadcast(s, inc, ctx, "mitigated", note, request.user_id,
                                                         always=False)
                          + pagerduty_jobs(s, ctx.settings, inc, "note", "Mitigated" + (f": {note}" if note else ""),
                                           request.user_id)
                          + self._tell_followers(inc, "mitigated", note, request.user_id))

    def _reopen(self, s: Session, request: SkillRequest, rest: str, ctx: SkillContext) -> SkillResult:
        """It is back: the same incident, open again (its postmortem draft stays, to be revised)."""
        inc, left = self._target(s, request, rest.split())
        if inc.status != "resolved":
            return self._done(inc, f"Incident #{inc.id} is not resolved (it is {inc.status}).")
        inc.status, inc.resolved_at = "open", None
        inc.findings = {k: v for k, v in (inc.findings or {}).items() if k != "closed_as"}  # a real one after all
        why = _why(left)
        self._event(s, inc, "reopen", f"Reopened by <@{request.user_id}>{why}", request.user_id)
        return self._done(inc, f"<@{request.user_id}> reopened incident #{inc.id} (SEV{inc.severity}){why}.",
                          follow_up_jobs=self._tell_followers(inc, "reopened", why.removeprefix(": "),
                                                              request.user_id))

    def _resolve(self, s: Session, request: SkillRequest, rest: str, ctx: SkillContext) -> SkillResult:
        args = rest.split()
        inc, left = self._target(s, request, args)
        if inc.status == "resolved":
            return self._done(inc, f"Incident #{inc.id} was already resolved.")
        said = " ".join(left).strip()
        dup = re.match(r"^dup(?:e|licate)?\b(?:\s+(?:of|with))?\s*(?:#|inc(?:ident)?[-\s#]*)?(\d{1,9})?\b", said, re.I)
        if dup or re.match(r"^false\s+(?:alarm|positive)\b", said, re.I):
            return self._close_without_postmortem(s, inc, request, said, int(dup.group(1)) if dup and dup.group(1)
                                                  else (0 if dup else None), ctx)
        now = utcnow()
        inc.status, inc.resolved_at = "resolved", now
        inc.mitigated_at = inc.mitigated_at or now
        note = mask_secrets(" ".join(left).strip())
        cause = _ROOT_CAUSE.search(note)  # "rolled back; root cause was a bad config push"
        if cause:
            inc.root_cause = cause.group("rc").strip(" .")[:5000]
            note = note[:cause.start()].strip(" ,;.(-")
        if note:
            inc.resolution = note[:5000]
        said = "; ".join(x for x in (note[:300], f"root cause: {inc.root_cause[:300]}" if cause else "") if x)
        self._event(s, inc, "resolve", f"Resolved by <@{request.user_id}>" + (f": {said}" if said else ""),
                    request.user_id)
        return self._done(inc, f"Incident #{inc.id} resolved after {_age(inc)}. I will draft the postmortem.",
                          follow_up_jobs=[{"kind": "postmortem.draft",
                                           "payload": {"incident_id": inc.id, "channel": inc.channel_id,
                                                       "thread_ts": inc.card_ts},
                                           "dedup_key": f"postmortem:{inc.id}:{now.isoformat()}"}]
                          + self._broadcast(s, inc, ctx, "resolved", said, request.user_id, always=False)
                          + pagerduty_jobs(s, ctx.settings, inc, "resolve", said, request.user_id)
                          + _related_cards(s, inc) + self._tell_followers(inc, "resolved", said, request.user_id))

    def _close_without_postmortem(self, s: Session, inc: Incident, request: SkillRequest, said: str,
                                  original: int | None, ctx: SkillContext) -> SkillResult:
        """A false alarm, or a duplicate of ``original``: resolved, with no postmortem to write; a duplicate's
        original is told on its timeline. ``original`` 0: a duplicate of what was not said. PagerDuty incidents
        behind it are resolved there too, except those whose alerts move to the original (still firing)."""
        if original == 0:
            raise SkillError(f"A duplicate of which incident? Say `duplicate of #<id>` and I resolve #{inc.id}.")
        refresh: list[dict[str, Any]] = []
        if original is not None:
            other = s.get(Incident, original)
            if other is None or other.id == inc.id:
                raise SkillError(f"There is no other incident #{original}." if other is None else
                                 f"Incident #{inc.id} cannot be a duplicate of itself.")
            why = f"Duplicate of #{other.id}"
            # Its alerts still firing go with it: their next notifications join the original, not this one
            moved = s.scalars(select(Alert).where(Alert.incident_id == inc.id, Alert.status == "firing")).all()
            for a in moved:
                a.incident_id = other.id
            inc.alert_count = max(0, (inc.alert_count or 0) - len(moved))
            other.alert_count = (other.alert_count or 0) + len(moved)
            took = f"; its {len(moved)} firing alert(s) moved here" if moved else ""
            s.add(TimelineEvent(incident_id=other.id, at=utcnow(), kind="duplicate", actor=request.user_id,
                                text=f"Incident #{inc.id} ({inc.title[:100]}) closed as a duplicate of this one by "
                                f"<@{request.user_id}>{took}", data={"duplicate": inc.id, "moved": len(moved)}))
            if moved:
                why += f" ({len(moved)} firing alert(s) moved to #{other.id})"
                refresh = [{"kind": "incident.card", "payload": {"incident_id": other.id}}]
        else:
            more = re.sub(r"^false\s+(?:alarm|positive)\b[\s:;,.-]*", "", said, flags=re.I).strip()
            why = "False alarm" + (f": {mask_secrets(more)[:500]}" if more else "")
        now = utcnow()
        inc.status, inc.resolved_at, inc.mitigated_at = "resolved", now, inc.mitigated_at or now
        inc.resolution = why[:5000]
        # Not counted in the stats (how many incidents, time to resolve) while it stays closed this way
        inc.findings = {**(inc.findings or {}), "closed_as": "duplicate" if original is not None else "false_alarm"}
        self._event(s, inc, "resolve", f"Resolved by <@{request.user_id}>: {why}", request.user_id)
        return self._done(inc, f"Incident #{inc.id} resolved: {why}. No postmortem for it.", follow_up_jobs=refresh
                          + pagerduty_jobs(s, ctx.settings, inc, "resolve", why, request.user_id)
                          + _related_cards(s, inc) + self._tell_followers(inc, "resolved", why, request.user_id))

    def _update(self, s: Session, request: SkillRequest, rest: str, ctx: SkillContext) -> SkillResult:
        """A status update ("update: failover done, errors back to 0.2%"): a key moment, like a note, and posted
        in the status channel for the people following the incident (``WARROOM_SLACK_STATUS_CHANNEL``)."""
        return self._note(s, request, rest, ctx, broadcast=True)

    def _broadcast(self, s: Session, inc: Incident, ctx: SkillContext, what: str, text: str, user: str | None,
                   *, always: bool) -> list[dict[str, Any]]:
        """The job that posts ``what`` in the status channel: for an update (``always``), or for a change of an
        incident whose updates went there (its followers hear how it ends)."""
        channel = getattr(ctx.settings, "slack_status_channel", None)
        if not channel or not (always or any((e.data or {}).get("broadcast") for e in s.scalars(
                select(TimelineEvent).where(TimelineEvent.incident_id == inc.id, TimelineEvent.kind == "note")))):
            return []
        return [{"kind": "incident.broadcast", "dedup_key": f"broadcast:{inc.id}:{what}:{utcnow().isoformat()}",
                 "payload": {"incident_id": inc.id, "channel": channel, "what": what, "text": text[:1000],
                             "user": user}}]

    def _note(self, s: Session, request: SkillRequest, rest: str, ctx: SkillContext,
              broadcast: bool = False) -> SkillResult:
        """A key moment on the timeline ("note: failover started"); "root cause was ..." also records the cause.
        The message itself is on the timeline already when Slack delivered it as a message too: that entry
        becomes the note instead of a second copy. ``broadcast``: a status update, also for the status channel."""
        try:
            inc, left = self._target(s, request, rest.split())
        except SkillError as exc:
            if not str(exc).startswith("Which incident?"):
                raise
            raise SkillError("Which incident is that about? Say it in the incident's thread or channel, or name "
                             "it: `note #12: ...`.") from None
        text = mask_secrets(" ".join(left).strip())
        if not text:
            raise SkillError("Say what to note: `note: failover to the replica started` in the incident's thread, "
                             "or `/incident note <id> <text>`.")
        cause = _ROOT_CAUSE.search(text)
        if cause:
            inc.root_cause = cause.group("rc").strip(" .")[:5000]
        ts, line = request.data.get("ts"), f"Note by <@{request.user_id}>: {text[:1000]}"
        same = [e for e in s.scalars(select(TimelineEvent).where(TimelineEvent.incident_id == inc.id,
                                                                 TimelineEvent.kind == "message"))
                if ts and (e.data or {}).get("ts") == ts]
        jobs = self._broadcast(s, inc, ctx, "update", text, request.user_id, always=True) if broadcast else []
        data = ({"ts": ts, "channel": request.channel_id} if ts else {}) | ({"broadcast": True} if jobs else {})
        pd = (pagerduty_jobs(s, ctx.settings, inc, "note", f"Update: {text}", request.user_id)
              + self._tell_followers(inc, "update", text, request.user_id)) if broadcast else []
        if same:
            same[0].kind, same[0].key, same[0].text, same[0].data = "note", True, line, {**(same[0].data or {}),
                                                                                        **data}
        else:
            s.add(TimelineEvent(incident_id=inc.id, at=utcnow(), kind="note", text=line, actor=request.user_id,
                                key=True, data=data))
        why = f" Root cause recorded: {escape(inc.root_cause[:200])}." if cause else ""
        shared = f" Shared in <#{jobs[0]['payload']['channel']}>." if jobs else ""
        return self._done(inc, f"Noted on incident #{inc.id}'s timeline as a key moment.{why}{shared}",
                          follow_up_jobs=jobs + pd)

    def _who(self, s: Session, request: SkillRequest, rest: str, ctx: SkillContext) -> SkillResult:
        """Who is on it: the assignee (the incident commander until someone else takes it)."""
        inc, _ = self._target(s, request, rest.split())
        if inc.assignee and inc.status == "resolved":
            say = f"<@{inc.assignee}> had incident #{inc.id}; it is resolved."
        elif inc.assignee:
            say = f"<@{inc.assignee}> is on incident #{inc.id} ({inc.status}, SEV{inc.severity})."
        elif inc.status == "resolved":
            say = f"Nobody was assigned to incident #{inc.id}; it is resolved."
        else:
            say = (f"Nobody has taken incident #{inc.id} yet ({inc.status}, SEV{inc.severity}). Say \"I'm on it\" "
                   "in its thread to take it, or ask \"who should take this?\" for suggestions.")
        by = inc.created_by or ""
        say += (f" Declared by <@{by}> {slack_clock(inc.created_at)}." if by.startswith(("U", "W")) else
                f" Opened by {escape(inc.source or 'an alert')} {slack_clock(inc.created_at)}.")
        held = roles_of(inc)
        if any(r != "commander" for r in held):
            say += " Roles: " + ", ".join(f"{ROLES[r]} <@{u}>" for r, u in held.items()) + "."
        elif inc.status != "resolved":
            say += " No other roles yet: `/incident role comms @someone` (also scribe, ops), or \"I'll do comms\"."
        return SkillResult(title=f"Incident #{inc.id}", summary=say, data={"incident_id": inc.id})

    def _follow(self, s: Session, request: SkillRequest, rest: str, ctx: SkillContext) -> SkillResult:
        """Follow an incident: its status updates, severity changes, mitigation, resolution and reopening come to
        the follower by DM (not what the follower does: they know)."""
        inc, _ = self._target(s, request, rest.split())
        if inc.status == "resolved":
            raise SkillError(f"Incident #{inc.id} is resolved: there is nothing more to follow.")
        user = str(request.user_id or "")
        if not user:
            raise SkillError("Following needs a person to tell.")
        followers = list((inc.findings or {}).get("followers") or [])
        if user in followers:
            return dataclasses.replace(self._done(inc, f"You already follow incident #{inc.id}."), ephemeral=True)
        if len(followers) >= MAX_FOLLOWERS:
            raise SkillError(f"Incident #{inc.id} has {MAX_FOLLOWERS} followers already: read its card or the "
                             "status channel.")
        inc.findings = {**(inc.findings or {}), "followers": [*followers, user]}
        return dataclasses.replace(self._done(
            inc, f"You follow incident #{inc.id}: I will send you its updates, severity changes, mitigation and "
            f"resolution by DM. `/incident unfollow {inc.id}` to stop."), ephemeral=True)

    def _work(self, s: Session, request: SkillRequest, rest: str, ctx: SkillContext) -> SkillResult:
        """"What should I work on?": the open incidents assigned to the asker, most severe first, then those with
        nobody on them (the asker's team's services first)."""
        uid = request.user_id
        if not uid:
            raise SkillError("Ask in Slack: I need to know who you are.")
        mine = s.scalars(select(Incident).where(Incident.status.in_(OPEN_STATUSES), Incident.assignee == uid)
                         .order_by(Incident.severity, Incident.id).limit(10)).all()
        me = s.scalar(select(Expert).where(Expert.slack_user_id == uid))
        ours = {svc.name for svc in me.team.services} if me is not None and me.team is not None else set()
        free = sorted(s.scalars(select(Incident).where(Incident.status.in_(OPEN_STATUSES),
                                                       Incident.assignee.is_(None)).limit(200)),
                      key=lambda r: (r.service_name not in ours, r.severity, r.id))[:10]

        def line(r: Incident) -> str:
            return (f"*#{r.id}* SEV{r.severity} [{r.status}] {escape(r.title[:100])} "
                    f"({escape(r.service_name or 'unknown service')}, {_age(r)})")

        sections = tuple(sec for sec in (Section("Yours", tuple(map(line, mine))), Section(
            "Nobody on them" + (" (your team's services first)" if ours else ""), tuple(map(line, free))))
            if sec.lines)
        first = mine[0] if mine else free[0] if free else None
        summary = (f"{len(mine)} open incident(s) assigned to you; {len(free)} with nobody on them."
                   + (f" Start with #{first.id} (SEV{first.severity})" + ("." if mine else ": say \"I'm on it\" in "
                                                                           "its thread to take it.")
                      if first else " Nothing needs you now."))
        return SkillResult(title="What needs you", summary=summary, sections=sections,
                           data={"mine": [r.id for r in mine], "unassigned": [r.id for r in free]})

    def _trend(self, s: Session, request: SkillRequest, rest: str, ctx: SkillContext) -> SkillResult:
        """"Is it getting worse?": its alerts now against the quarter hour before, and its last update."""
        inc, _ = self._target(s, request, rest.split())
        now, q = utcnow(), dt.timedelta(minutes=15)

        def count(*where: Any) -> int:
            return s.scalar(select(func.count()).select_from(Alert).where(Alert.incident_id == inc.id, *where)) or 0

        firing, resolved = count(Alert.status == "firing"), count(Alert.status == "resolved")
        new_now, new_before = count(Alert.received_at >= now - q), count(Alert.received_at >= now - 2 * q,
                                                                         Alert.received_at < now - q)
        seen = count(Alert.last_seen_at >= now - q)
        if inc.status == "resolved":
            verdict = "it is resolved"
        elif not firing and resolved:
            verdict = "nothing is firing now: it looks recovered"
        elif not firing and not resolved:
            verdict = "no alerts are linked to it, so I cannot tell from alerts"
        elif new_now > new_before:
            verdict = "getting worse: more alerts joined in the last 15 min than in the 15 min before"
        elif new_now < new_before or not seen:
            verdict = "getting better: fewer new alerts than the 15 min before" if seen else \
                "quieter: no alert was seen in the last 15 min"
        else:
            verdict = "about the same as 15 min ago"
        upd = last_updates(s, [inc.id]).get(inc.id)
        said = f" Last update {duration((now - upd.at).total_seconds())} ago: {escape(upd.text[:200])}" if upd else ""
        return self._done(inc, f"Incident #{inc.id}: {verdict}. {firing} alert(s) firing, {resolved} resolved; "
                          f"{new_now} new in the last 15 min ({new_before} in the 15 before), {seen} seen in the "
                          f"last 15 min.{said}")

    def _paged(self, s: Session, request: SkillRequest, rest: str, ctx: SkillContext) -> SkillResult:
        """Who was called about the incident, oldest first: pages ("page the storage team"), the reminders that called
        people while nobody acknowledged, escalations, people brought in, PagerDuty; then who acknowledged."""
        inc, _ = self._target(s, request, rest.split())
        events = s.scalars(select(TimelineEvent).where(TimelineEvent.incident_id == inc.id, TimelineEvent.kind.in_(
            ("paged", "reminder", "escalate", "invited", "pagerduty"))).order_by(TimelineEvent.at, TimelineEvent.id)
            .limit(200)).all()
        calls = [e for e in events if e.kind != "reminder" or "called" in e.text]
        lines = [f"{slack_clock(e.at)} {esc_keep_users(e.text[:300])}" for e in calls[-30:]]
        called = list(dict.fromkeys(u for e in calls for u in re.findall(rf"<@({USER_ID})>", e.text)
                                    if u != e.actor))
        ack = (f" Acknowledged {slack_clock(inc.acknowledged_at)}, "
               f"{_minutes((inc.acknowledged_at - inc.created_at).total_seconds() / 60)} after it opened."
               if inc.acknowledged_at else " Not acknowledged yet.")
        if calls:
            summary = (f"Incident #{inc.id}: {len(calls)} call(s) for help, reaching "
                       + (", ".join(f"<@{u}>" for u in called[:10]) if called else "nobody by name")
                       + f".{ack}")
        else:
            summary = (f"Nobody has been paged through me for incident #{inc.id} (SEV{inc.severity}, {inc.status})."
                       f"{ack} `page the on-call` here pages its team's on-call; `escalate` raises the severity and "
                       "pages the next level.")
        return SkillResult(title=f"Incident #{inc.id}: who was called", summary=summary,
                           sections=(Section("", tuple(lines)),) if lines else (),
                           data={"incident_id": inc.id, "called": called})

    def _ready(self, s: Session, request: SkillRequest, rest: str, ctx: SkillContext) -> SkillResult:
        """"Can we close this?", "it's fixed": whether anything linked still fires, what was recorded (mitigation,
        root cause), and how to resolve it, with the Resolve button; nothing is resolved by these words."""
        inc, left = self._target(s, request, rest.split())
        said_fixed = "fixed" in left
        if inc.status == "resolved":
            return self._done(inc, f"Incident #{inc.id} is already resolved ({_age(inc)} long"
                              + (f", {slack_clock(inc.resolved_at)}" if inc.resolved_at else "") + ").")
        rows = s.execute(select(Alert.name, Alert.service_name, func.count(), func.min(Alert.starts_at),
                                func.min(Alert.received_at)).where(Alert.incident_id == inc.id,
                                                                   Alert.status == "firing")
                         .group_by(Alert.name, Alert.service_name)).all()
        firing = sum(r[2] for r in rows)
        linked = s.scalar(select(func.count()).select_from(Alert).where(Alert.incident_id == inc.id)) or 0
        last_seen = s.scalar(select(func.max(Alert.last_seen_at)).where(Alert.incident_id == inc.id))
        lines = [f"*{escape(name or '?')}* on {escape(svc or 'an unknown service')}: {n} firing since "
                 f"{slack_clock(started or received)}" for name, svc, n, started, received in
                 sorted(rows, key=lambda r: (-r[2], r[0] or ""))[:5]]
        if firing:
            verdict = f"Not yet: {firing} of its alert(s) still firing (resolve it anyway if they are wrong)."
        elif linked:
            quiet = f", last seen {duration((utcnow() - last_seen).total_seconds())} ago" if last_seen else ""
            verdict = f"Nothing linked to it is firing ({linked} alert(s) resolved{quiet})."
        else:
            verdict = "No alerts are linked to it, so I cannot tell from alerts: check its dashboards."
        recorded = [("mitigated " + slack_clock(inc.mitigated_at)) if inc.mitigated_at else "no mitigation recorded",
                    "root cause noted" if inc.root_cause else "no root cause yet"]
        lead = f"It sounds fixed, but I have not resolved incident #{inc.id}. " if said_fixed else ""
        summary = (f"{lead}Incident #{inc.id} is {inc.status} (SEV{inc.severity}, {_age(inc)}). {verdict} "
                   f"{'; '.join(recorded).capitalize()}. To resolve it, press Resolve, or say `resolved: <what fixed "
                   "it>; root cause: <why>` here: those words start the postmortem, and PagerDuty and the people "
                   "following it are told.")
        return SkillResult(title=f"Incident #{inc.id}: ready to close?", summary=summary,
                           sections=(Section("Still firing", tuple(lines)),) if lines else (),
                           actions=(Action("incident:resolve", "Resolve", str(inc.id), "primary"),),
                           data={"incident_id": inc.id, "firing": firing})

    def _last(self, s: Session, request: SkillRequest, rest: str, ctx: SkillContext) -> SkillResult:
        """The most recent incident (of the services or teams named, at the severities named), any status, with its
        status and how long ago it opened; "none" said with where it looked."""
        from knowledge.people import scope_in_text

        where = []
        scope = scope_in_text(session=s, text=rest)
        if scope is not None:
            where.append(Incident.service_name.in_(scope.services))
        levels = sorted({level for w in re.findall(r"\b(?:sev(?:erity)?[\s-]?[0-4]|p[0-4])\b", rest, re.I)
                         if (level := severity_word(w.replace(" ", "").replace("-", ""))) is not None})
        if levels:
            where.append(Incident.severity.in_(levels))
        rows = [r for r in s.scalars(select(Incident).where(*where).order_by(Incident.created_at.desc(),
                                                                               Incident.id.desc()).limit(20))
                if not (r.findings or {}).get("closed_as")]  # a false alarm or a duplicate is no incident
        sev = " or ".join(f"SEV{v}" for v in levels)
        said = f"{sev + ' ' if sev else ''}incident{' ' + escape(scope.label) if scope else ''}"
        if not rows:
            raise SkillError(f"No {said} on record.")
        inc = rows[0]
        found = self._status(s, request, f"#{inc.id}", ctx)
        age = utcnow() - inc.created_at
        ago = f"{duration(age.total_seconds())} ago" if age < dt.timedelta(days=2) else \
            f"on {inc.created_at:%d %b %Y}, {age.days} days ago"
        head = f"The last {said}: #{inc.id}, opened {ago} ({inc.status})."
        return dataclasses.replace(found, summary=f"{head} {found.summary}".strip())

    def _statuspage(self, s: Session, request: SkillRequest, rest: str, ctx: SkillContext) -> SkillResult:
        """A customer-facing update drafted from its state, impact and times (skills/status_page.py), with a button
        that posts it as the incident's update."""
        inc, extra = self._target(s, request, rest.split())
        if request.source == "command" and extra:
            raise SkillError(f"I cannot read `{escape(' '.join(extra)[:60])}`: `/incident statuspage [id]` drafts it "
                             "from what the incident knows (`/incident impact [id] <text>` sets what is affected).")
        text = status_draft(inc)
        impact = (inc.findings or {}).get("impact")
        hint = "" if impact else (" It names the service, as no impact is recorded: say `impact: <who or what is "
                                  "affected>` for a better one.")
        return SkillResult(title=f"Status page draft for incident #{inc.id}",
                           summary=f"A draft for customers ({phase(inc)}): review it before it goes out.{hint}",
                           sections=(Section("", (f"> {escape(text)}",)),),
                           actions=(Action("incident:statuspage_post", "Post as status update",
                                           f"{inc.id}:{text[:1900]}"),),
                           data={"incident_id": inc.id, "draft": text})

    def _impact(self, s: Session, request: SkillRequest, rest: str, ctx: SkillContext) -> SkillResult:
        """Who or what the incident hurts: recorded (on the card, the status, the timeline as a key moment, the
        postmortem's Impact section), or said back when asked."""
        inc, left = self._target(s, request, rest.split())
        text = mask_secrets(" ".join(left)).strip()
        if len(text) > 500:  # it goes on the card and out to customers: said, not cut mid-sentence
            raise SkillError(f"An impact is a sentence or two (at most 500 characters; this is {len(text)}): who or "
                             "what is affected, how many, since when. Details go in a note.")
        kept = (inc.findings or {}).get("impact") or {}
        if not text:
            if kept:
                return self._done(inc, f"Impact of incident #{inc.id}: {escape(kept.get('text', ''))} (said by "
                                  f"<@{kept.get('by')}> {slack_clock(dt.datetime.fromisoformat(kept['at']))}).")
            return self._done(inc, f"No impact recorded for incident #{inc.id} yet. Say `impact: <who or what is "
                              f"affected, how many>` under its card (or `/incident impact {inc.id} <text>`): it goes "
                              "on the card, the status and the postmortem.")
        at = utcnow()
        inc.findings = {**(inc.findings or {}), "impact": {"text": text, "by": request.user_id,
                                                           "at": at.isoformat()}}
        s.add(TimelineEvent(incident_id=inc.id, at=at, kind="impact", text=f"Impact: {text}", actor=request.user_id,
                            key=True))
        was = f" (was: {escape(kept.get('text', '')[:200])})" if kept else ""
        return self._done(inc, f"Impact of incident #{inc.id} recorded: {escape(text)}{was}. It is on the card and "
                          "will be in the postmortem.")

    def _eta(self, s: Session, request: SkillRequest, rest: str, ctx: SkillContext) -> SkillResult:
        """When it should be over, as whoever works on it said ("eta: 30 min": by 18:45 UTC): on the card, the
        status and the timeline; asked, said back with how much is left, or that nobody gave one and the last
        update."""
        words = rest.split()
        # "eta 113 30 min" / "#113 30 min": the incident first; "30 min" alone: the incident here, in 30 minutes
        lead = words[:1] if words and (words[0].startswith("#") or (_ID.match(words[0]) and not _ETA_IN.match(
            " ".join(words[:2])))) else []
        inc, _ = self._target(s, request, lead)
        text = mask_secrets(" ".join(words[len(lead):])).strip()
        if len(text) > 200:
            raise SkillError("An ETA is a time or a span (`eta: 30 min`, `eta: 15:00 UTC`, `eta: unknown, waiting on "
                             f"the vendor`), at most 200 characters; this is {len(text)}.")
        kept = (inc.findings or {}).get("eta") or {}
        now = utcnow()
        if not text:
            if inc.status == "resolved":
                return self._done(inc, f"Incident #{inc.id} is resolved ({slack_clock(inc.resolved_at or now)}).")
            last = s.scalars(select(TimelineEvent).where(TimelineEvent.incident_id == inc.id, TimelineEvent.kind.in_(
                ("note", "update"))).order_by(TimelineEvent.at.desc(), TimelineEvent.id.desc()).limit(1)).first()
            since = (f" Last update {duration((now - last.at).total_seconds())} ago: "
                     f"{esc_keep_users(last.text[:200]).rstrip('.')}." if last is not None
                     else " No update posted yet.")
            if not kept:
                who = f"<@{inc.assignee}>" if inc.assignee else "Whoever takes it"
                return self._done(inc, f"No ETA given for incident #{inc.id} ({inc.status}, SEV{inc.severity}).{since}"
                                  f" {who} can set one under its card: `eta: 30 min`.")
            due = dt.datetime.fromisoformat(kept["due"]) if kept.get("due") else None
            left_s = (due - now).total_seconds() if due else None
            when = ("" if due is None else f" (by {slack_clock(due)}: {duration(left_s)} left)" if left_s >= 0
                    else f" (by {slack_clock(due)}: *overdue* by {duration(-left_s)})")
            return self._done(inc, f"ETA of incident #{inc.id}: {escape(kept.get('text', ''))}{when}, given by "
                              f"<@{kept.get('by')}> {slack_clock(dt.datetime.fromisoformat(kept['at']))}.{since}")
        if inc.status == "resolved":
            raise SkillError(f"Incident #{inc.id} is resolved: no ETA to give.")
        m = _ETA_IN.match(text)
        due = (now + dt.timedelta(minutes=int(m.group(1)) * (60 if m.group(2).lower().startswith("h") else 1))
               if m else None)
        if due is not None and due - now > dt.timedelta(days=7):
            raise SkillError("An ETA over a week away is not an ETA: say what it waits on instead (`eta: unknown, "
                             "waiting on the vendor`).")
        inc.findings = {**(inc.findings or {}), "eta": {"text": text, "by": request.user_id, "at": now.isoformat(),
                                                        "due": due.isoformat() if due else None}}
        by = f" (by {slack_clock(due)})" if due else ""
        s.add(TimelineEvent(incident_id=inc.id, at=now, kind="eta", actor=request.user_id, key=True,  # plain time:
                            text=f"ETA: {text}" + (f" (by {due:%H:%M} UTC)" if due else "")))  # kept, exported
        was = f" (was: {escape(kept.get('text', '')[:100])})" if kept else ""
        return self._done(inc, f"ETA of incident #{inc.id}: {escape(text)}{by}{was}. It is on the card and in its "
                          "status.")

    def _link(self, s: Session, request: SkillRequest, rest: str, ctx: SkillContext) -> SkillResult:
        """A link people work from (a dashboard, the ticket, the bridge): on the card and the timeline; none given,
        the incident's links."""
        words = rest.split()
        lead = words[:1] if words and (words[0].startswith("#") or _ID.match(words[0])) else []
        inc, _ = self._target(s, request, lead)
        words = words[len(lead):]
        kept = list((inc.findings or {}).get("links") or [])
        if not words:
            if not kept:
                return self._done(inc, f"No links on incident #{inc.id} yet. Under its card: `dashboard: <url>`, "
                                  f"`jira PAY-123`, or `/incident link {inc.id} <url> [label]`.")
            return self._done(inc, f"Links of incident #{inc.id}: " + " · ".join(link_text(x) for x in kept))
        target = words[0].strip("<>").split("|", 1)[0]
        label = mask_secrets(" ".join(words[1:]) or (words[0].strip("<>").split("|", 1) + [""])[1]).strip()[:80]
        if target.lower().startswith(("http://", "https://")):
            try:
                parts = urlsplit(target)
            except ValueError:
                parts = None
            if parts is None or not parts.netloc or len(target) > 1000:
                raise SkillError("That link cannot be read: an http(s) address, or a ticket key like `PAY-123`.")
            target = mask_secrets(target)
        elif not re.fullmatch(r"[A-Z][A-Z0-9]{1,9}-\d{1,7}", target):
            raise SkillError("A link is an http(s) address or a ticket key like `PAY-123`: "
                             f"`/incident link {inc.id} <url> [label]`.")
        if any(x.get("url") == target for x in kept):
            return self._done(inc, f"Incident #{inc.id} already has that link.")
        if len(kept) >= MAX_LINKS:
            raise SkillError(f"Incident #{inc.id} has {MAX_LINKS} links already: put the rest in a note.")
        item = {"url": target, "label": label, "by": request.user_id, "at": utcnow().isoformat()}
        inc.findings = {**(inc.findings or {}), "links": [*kept, item]}
        self._event(s, inc, "link", f"Link added by <@{request.user_id}>: {label + ' ' if label else ''}{target}"[:500],
                    request.user_id)
        return self._done(inc, f"Linked to incident #{inc.id}: {link_text(item)}. It is on the card.")

    def _snooze(self, s: Session, request: SkillRequest, rest: str, ctx: SkillContext) -> SkillResult:
        """No asking for updates for a while (at most ``MAX_SNOOZE``): people heads down on a fix. Said on the
        timeline; a new update, or the time running out, starts the cadence again."""
        words = rest.split()
        m = re.fullmatch(r"(\d{1,4})\s*(m|mins?|minutes?|h|hrs?|hours?)", " ".join(words[-1:]), re.I) if words else None
        if m is None:
            raise SkillError("Usage: `/incident snooze [id] <30m|2h>` (or \"snooze the update reminders for 30m\" "
                             "under its card).")
        inc, _ = self._target(s, request, words[:-1])
        span = dt.timedelta(minutes=int(m.group(1)) * (60 if m.group(2).lower().startswith("h") else 1))
        if inc.status == "open":
            return self._done(inc, f"Incident #{inc.id} is not acknowledged yet: its reminders stop when someone "
                              "acknowledges it (`ack` under its card).")
        if inc.status != "acknowledged":
            return self._done(inc, f"Incident #{inc.id} is {inc.status}: nobody is asked for updates.")
        if not dt.timedelta(minutes=1) <= span <= MAX_SNOOZE:
            raise SkillError(f"A snooze is for 1 minute to {int(MAX_SNOOZE.total_seconds() // 3600)} hours: an "
                             "incident nobody reports on for longer is one nobody outside it can follow.")
        until = utcnow() + span
        inc.findings = {**(inc.findings or {}), "updates_snoozed_until": until.isoformat()}
        self._event(s, inc, "snooze", f"Update reminders snoozed until {until:%H:%M} UTC by <@{request.user_id}>",
                    request.user_id)
        return self._done(inc, f"OK: I will not ask for updates on incident #{inc.id} until {slack_clock(until)} "
                          f"({duration(span.total_seconds())}). Posting an update is still the way people outside it "
                          "know where it stands.")

    def _changes(self, s: Session, request: SkillRequest, rest: str, ctx: SkillContext) -> SkillResult:
        """What changed on its service and what it depends on, from 6 hours before it opened (skills/changes.py)."""
        from skills.changes import answer

        inc, _ = self._target(s, request, rest.split())
        return answer(ctx, f"#{inc.id}")

    def _invite(self, s: Session, request: SkillRequest, rest: str, ctx: SkillContext) -> SkillResult:
        """Call people in: into the incident's own channel (the ``incident.invite`` job asks Slack), or, where it has
        none, mentioned here with where its card is; on the timeline either way."""
        users = list(dict.fromkeys(a or b for a, b in _USER.findall(rest)))
        if len(users) > 10:
            raise SkillError(f"At most 10 people at once ({len(users)} named): invite the rest in a second message.")
        words = _USER.sub(" ", rest).split()
        ref = INCIDENT_REF.search(" ".join(words))
        if not users:
            raise SkillError("Invite whom? `/incident invite [id] @user ...`, or \"bring in @alice\" under the card.")
        inc, _ = self._target(s, request, words[:1] if words and _ID.match(words[0]) else
                              [f"#{ref.group(1)}"] if ref else [])
        who = ", ".join(f"<@{u}>" for u in users)
        by = f"<@{request.user_id}>" if request.user_id else "the bot"
        if inc.dedicated_channel and inc.channel_id:
            self._event(s, inc, "invited", f"{by} invited {who} to <#{inc.channel_id}>", request.user_id)
            job = {"kind": "incident.invite", "dedup_key": f"invite:{inc.id}:{','.join(users)}:{utcnow()}"[:200],
                   "payload": {"incident_id": inc.id, "users": users, "by": request.user_id}}
            return self._done(inc, f"Inviting {who} to <#{inc.channel_id}>, incident #{inc.id}'s channel.",
                              follow_up_jobs=[job])
        self._event(s, inc, "invited", f"{by} called in {who}", request.user_id)
        where = f" Its card is in <#{inc.channel_id}>: follow its thread." if inc.channel_id else ""
        return self._done(inc, f"{who}: {by} asks you to join incident #{inc.id} (SEV{inc.severity}, {inc.status}, "
                          f"{escape(inc.title[:100])}).{where}")

    def _unfollow(self, s: Session, request: SkillRequest, rest: str, ctx: SkillContext) -> SkillResult:
        inc, _ = self._target(s, request, rest.split())
        followers = list((inc.findings or {}).get("followers") or [])
        if request.user_id not in followers:
            return self._done(inc, f"You do not follow incident #{inc.id}.")
        inc.findings = {**(inc.findings or {}), "followers": [u for u in followers if u != request.user_id]}
        return self._done(inc, f"You no longer follow incident #{inc.id}.")

    @staticmethod
    def _tell_followers(inc: Incident, what: str, text: str, user: str | None) -> list[dict[str, Any]]:
        """One ``incident.broadcast`` job per follower (their DM), but the person who made the change."""
        at = utcnow().isoformat()
        return [{"kind": "incident.broadcast", "dedup_key": f"follow:{inc.id}:{u}:{what}:{at}"[:200],
                 "payload": {"incident_id": inc.id, "channel": u, "what": what, "text": text[:1000], "user": user}}
                for u in ((inc.findings or {}).get("followers") or [])[:MAX_FOLLOWERS] if u != user]

    def _remind(self, s: Session, request: SkillRequest, rest: str, ctx: SkillContext) -> SkillResult:
        """``remind [id] me|us|@user in <n><s|m|h> [to] <what>``: said in the incident card's thread when it is
        due (at most 24 h ahead; kept in the job queue, so a restart does not lose it)."""
        args = rest.split()
        lead = args[:1] if args and (_ID.match(args[0]) or INCIDENT_REF.match(args[0])) else []
        body = " ".join(args[len(lead):])
        body = re.sub(r"^remind\s+", "", body, flags=re.I)
        m = _REMIND.match(f"remind {body}")
        if m is None:
            raise SkillError("Usage: `remind me in 20m to check the replica lag` (or `us`, or `@someone`; "
                             "`s`, `m` or `h`) under the incident's card, or `/incident remind <id> me in 20m ...`.")
        n, unit = int(m.group("n")), m.group("unit").lower()
        seconds = n * (3600 if unit.startswith("h") else 60 if unit.startswith("m") else 1)
        if not 1 <= seconds <= MAX_REMIND_S:
            raise SkillError("A reminder is for 1 second to 24 hours ahead.")
        what = mask_secrets(" ".join(m.group("what").split()))[:500]
        if not what:
            raise SkillError("Remind you of what? `remind me in 20m to check the replica lag`.")
        if not lead and request.incident_id is None and (named := INCIDENT_REF.search(what)) is not None:
            lead = [named.group(1)]  # "remind me in 30m to check #113", away from its card: that incident
        try:
            inc, _ = self._target(s, request, [a.lstrip("#") for a in lead])
        except SkillError as exc:  # away from any incident: Slack's own /remind keeps personal ones
            if lead:
                raise
            raise SkillError(f"{exc} I keep reminders for incidents (said in their card's thread); for one of your "
                             f"own, Slack's `/remind me in {n}{unit[0]} to {what[:80]}` does it.") from None
        if inc.status == "resolved":
            raise SkillError(f"Incident #{inc.id} is resolved: no reminder for it.")
        who = m.group("who")
        mention = ("<!here>" if who.lower() == "us" else f"<@{request.user_id}>" if who.lower() == "me"
                   else re.sub(r"\|[^>]*>", ">", who))
        at = utcnow() + dt.timedelta(seconds=seconds)
        job = {"kind": "incident.reminder", "delay_s": float(seconds),
               "dedup_key": f"remind:{inc.id}:{request.user_id}:{at.isoformat()}"[:200],
               "payload": {"incident_id": inc.id, "mention": mention, "what": what, "by": request.user_id,
                           "due": at.isoformat()}}
        done = self._done(inc, f"OK: at {slack_clock(at)} ({duration(seconds)}) I will remind "
                          f"{'you' if who.lower() == 'me' else 'the channel' if who.lower() == 'us' else mention} "
                          f"in incident #{inc.id}'s thread: {escape(what)}", follow_up_jobs=[job])
        # set for the wrong time, or no longer needed: it would fire anyway
        return dataclasses.replace(done, actions=(Action("incident:unremind", "Cancel reminder", job["dedup_key"]),))

    def _reminders(self, s: Session, request: SkillRequest, rest: str, ctx: SkillContext) -> SkillResult:
        """The reminders whoever asks has set and that are still to come, soonest first, each with its *Cancel*."""
        rows = [j for j in s.scalars(select(Job).where(Job.kind == "incident.reminder", Job.status == "queued")
                                     .order_by(Job.run_after).limit(500))
                if (j.payload or {}).get("by") == request.user_id][:20]
        if not rows:
            return SkillResult(title="Your reminders", ephemeral=True, summary="You have no reminder to come. "
                               "`remind me in 20m to ...` under an incident's card sets one.")
        lines = tuple(f"{n}. {slack_clock(j.run_after)} · incident #{(j.payload or {}).get('incident_id')} · "
                      f"{escape(str((j.payload or {}).get('what'))[:150])}" for n, j in enumerate(rows, start=1))
        return SkillResult(title="Your reminders", ephemeral=True, summary=f"{len(rows)} to come, soonest first.",
                           sections=(Section("", lines),),
                           actions=tuple(Action("incident:unremind", f"Cancel #{n}", str(j.dedup_key))
                                         for n, j in enumerate(rows[:5], start=1)))

    def _unremind(self, key: str, user: str | None, ctx: SkillContext) -> SkillResult:
        """The *Cancel reminder* button: the reminder's job is taken off the queue, by whoever set it."""
        with ctx.db.session() as s:
            job = s.scalar(select(Job).where(Job.kind == "incident.reminder", Job.dedup_key == key[:200]))
            if job is None or not key.startswith("remind:"):
                raise SkillError("There is no such reminder (it was cancelled, or sent long ago).")
            payload = dict(job.payload or {})
            if payload.get("by") != user:
                raise SkillError(f"Only <@{payload.get('by')}>, who set this reminder, can cancel it.")
            if job.status != "queued":
                what = escape(str(payload.get("what"))[:200])
                return SkillResult(title="Already sent", ephemeral=True, summary=f"The reminder \"{what}\" was sent.")
            s.delete(job)
        return SkillResult(title="Reminder cancelled", summary=f"<@{user}> cancelled the reminder \""
                           f"{escape(str(payload.get('what'))[:200])}\" for incident #{payload.get('incident_id')}.")

    def _role(self, s: Session, request: SkillRequest, rest: str, ctx: SkillContext) -> SkillResult:
        """``role <commander|comms|scribe|ops> <@user|me|none> [id]``: who holds a role on the incident. The
        commander is the assignee; comms is who the update reminders ask first."""
        named = _ROLE_NAME.match(rest.strip())
        usage = ("Usage: `/incident role <commander|comms|scribe|ops> @user [id]` (or `me`, or `none` to clear); "
                 "under the card: \"I'll do comms\", \"@carla is the scribe\".")
        if named is None:
            if not rest.strip() or INCIDENT_REF.match(rest.strip()) or _ID.match(rest.strip()):
                return self._who(s, request, rest, ctx)  # `/incident role` alone: who holds what
            raise SkillError(usage)
        role = _ROLE_WORDS[named.group("role").lower()]
        left = rest.strip()[named.end():]
        m = _USER.search(left)
        me = None if m else re.search(r"\bme\b", left, re.I)
        clear = None if (m or me) else re.search(r"\b(?:none|nobody|no\s*one|clear)\b", left, re.I)
        if not (m or me or clear):
            raise SkillError(usage)
        cut = m or me or clear
        assert cut is not None
        inc, _ = self._target(s, request, [a for a in (left[:cut.start()] + " " + left[cut.end():]).split()
                                           if a.lower() not in ("to", "is", "as")])
        if inc.status == "resolved":
            raise SkillError(f"Incident #{inc.id} is resolved: its roles are over.")
        user = (m.group(1) or m.group(2)) if m else (str(request.user_id) if me else None)
        if role == "commander":
            if user is None:
                raise SkillError("An open incident keeps its commander: hand it to someone (`/incident role "
                                 "commander @user`) instead of clearing it.")
            return self._assign(s, request, f"<@{user}> #{inc.id}", ctx)
        roles = {k: v for k, v in ((inc.findings or {}).get("roles") or {}).items() if k in ROLES}
        before = roles.get(role)
        if user is None:
            if before is None:
                return self._done(inc, f"Nobody is {ROLES[role].lower()} on incident #{inc.id}.")
            roles.pop(role)
            text = f"{ROLES[role]}: <@{before}> no longer (by <@{request.user_id}>)"
        else:
            if before == user:
                return self._done(inc, f"<@{user}> is already {ROLES[role].lower()} on incident #{inc.id}.")
            roles[role] = user
            text = f"{ROLES[role]}: <@{user}>" + (f" (was <@{before}>)" if before else "") + \
                f", set by <@{request.user_id}>"
        inc.findings = {**(inc.findings or {}), "roles": roles}
        self._event(s, inc, "role", text, request.user_id)
        said = (f"<@{user}> is {ROLES[role].lower()} on incident #{inc.id}." if user else
                f"Incident #{inc.id} has no {ROLES[role].lower()} now (was <@{before}>).")
        if user and role == "comms":
            said += " The update reminders ask them first."
        return self._done(inc, said, invite=[user] if user else [])

    def _stats(self, s: Session, request: SkillRequest, rest: str, ctx: SkillContext) -> SkillResult:
        """How many incidents over a period (default the last 7 days: "today", "this month", "30 days"), by
        severity and service, how many are still open, and the median times to acknowledge, mitigate, resolve."""
        from knowledge.people import scope_in_text

        days = _period_days(rest)
        since = utcnow() - dt.timedelta(days=days)
        where = [Incident.created_at >= since]
        # "how many incidents on payments-api this month?", "/incident stats payments" (the team's services)
        scope = scope_in_text(session=s, text=rest)
        if request.source == "command" and (left := _STATS_WORDS.sub(" ", rest.lower()).split()):
            named = {n.lower() for n in scope.names} if scope else set()
            if unread := [w for w in left if w.strip(".,;:!?") not in named]:  # it was ignored: every service
                raise SkillError(f"I cannot read `{escape(' '.join(unread)[:60])}`: `/incident stats [today | 7d "
                                 "| 30 days | this month] [service or team] [per person]`.")
        if scope is not None:
            where.append(Incident.service_name.in_(scope.services))
        # "how many sev1s this quarter?", "/incident stats sev1 sev2 30d": those severities only
        levels = sorted({level for w in re.findall(r"\b(?:sev(?:erity)?[\s-]?[0-4]|p[0-4])(?=s\b|'s\b|\b)", rest, re.I)
                         if (level := severity_word(w.replace(" ", "").replace("-", ""))) is not None})
        if levels:
            where.append(Incident.severity.in_(levels))
        every = s.scalars(select(Incident).where(*where).order_by(Incident.id)).all()
        rows = [r for r in every if not (r.findings or {}).get("closed_as")]
        skipped = Counter(str((r.findings or {}).get("closed_as")) for r in every if r not in rows)
        aside = " (not counted: " + ", ".join(f"{n} {'false alarm' if k == 'false_alarm' else k}{'s' * (n > 1)}"
                                             for k, n in sorted(skipped.items())) + ")" if skipped else ""
        span = ("the last 24 hours" if days == 1 else f"the last {days} days") + (
            f" {escape(scope.label)}" if scope else "") + (
            f" at {' or '.join(f'SEV{v}' for v in levels)}" if levels else "")
        if not rows and skipped:
            return SkillResult(title="Incident stats", summary=f"No incidents in {span}{aside}.")
        if not rows:
            last = s.scalars(select(Incident).where(*where[1:])  # on that service or team, at any time
                             .order_by(Incident.created_at.desc()).limit(1)).first()
            before = f" The last one: #{last.id} on {last.created_at:%d %b %Y}." if last is not None else ""
            return SkillResult(title="Incident stats", summary=f"No incidents in {span}.{before}")
        by_sev = Counter(r.severity for r in rows)
        by_service = Counter(r.service_name or "unknown service" for r in rows)
        still = sum(1 for r in rows if r.status in OPEN_STATUSES)
        lines = ["By severity: " + ", ".join(f"SEV{k} {by_sev[k]}" for k in sorted(by_sev)),
                 "Most affected: " + ", ".join(f"{escape(k)} ({n})" for k, n in by_service.most_common(3))]
        for label, end in (("acknowledge", "acknowledged_at"), ("mitigate", "mitigated_at"),
                           ("resolve", "resolved_at")):
            waits = [(getattr(r, end) - r.created_at).total_seconds() / 60 for r in rows if getattr(r, end)]
            if waits:
                lines.append(f"Median time to {label}: {_minutes(median(waits))} (over {len(waits)} incidents)")
        if not any(r.resolved_at for r in rows) and re.search(r"\b(?:mttr|resolve|resolution)\b", rest, re.I):
            lines.append("Median time to resolve: none of them is resolved yet")  # "what's our MTTR?": not silence
        if re.search(r"\b(?:by|per|for\s+each|each)\s+(?:service|team)s?\b", rest, re.I):  # "MTTR by service"
            by_team = re.search(r"\bteams?\b", rest, re.I) is not None
            team_of = dict(s.execute(select(Service.name, Team.name).join(Team, Team.id == Service.team_id)).all()) \
                if by_team else {}
            groups: dict[str, list[Incident]] = {}
            for r in rows:
                key = (team_of.get(r.service_name or "", "no team") if by_team
                       else r.service_name or "unknown service")
                groups.setdefault(key, []).append(r)
            for key, group in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0]))[:10]:
                parts = [f"{len(group)} incident(s)"]
                for label, end, none in (("ack", "acknowledged_at", "none acknowledged"),
                                         ("resolve", "resolved_at", "none resolved")):
                    waits = [(getattr(r, end) - r.created_at).total_seconds() / 60 for r in group if getattr(r, end)]
                    parts.append(f"median time to {label} {_minutes(median(waits))}" if waits else none)
                lines.append(f"*{escape(key)}*: " + ", ".join(parts))
        done = sorted((r for r in rows if r.resolved_at), key=lambda r: (r.created_at - r.resolved_at, r.id))
        if done:  # "what was the longest incident this year?": the three that took longest to resolve
            lines.append("Longest to resolve: " + ", ".join(
                f"#{r.id} {escape(r.title[:60])} ({_minutes((r.resolved_at - r.created_at).total_seconds() / 60)}"
                f"{', ' + escape(r.service_name) if r.service_name else ''})" for r in done[:3] if r.resolved_at))
        if re.search(r"\b(?:by|per)\s+(?:person|people|responder|assignee|engineer)s?\b|\bwho\b", rest, re.I):
            people_on = Counter(r.assignee for r in rows if r.assignee)  # "who has been on the most incidents?"
            nobody = sum(1 for r in rows if not r.assignee)
            lines.append("By person (assigned): " + (", ".join(f"<@{u}> {n}" for u, n in people_on.most_common(10))
                                                     or "nobody was assigned any")
                         + (f"; {nobody} with nobody assigned" if nobody else ""))
        noisy = max(rows, key=lambda r: r.alert_count or 0)
        if (noisy.alert_count or 0) > 1:
            lines.append(f"Noisiest: #{noisy.id} {escape(noisy.title[:80])} ({noisy.alert_count} alerts)")
        versus = ""
        if re.search(r"\b(?:compare[ds]?|vs\.?|versus)\b", rest, re.I):  # "compare this week to last week"
            before = [r for r in s.scalars(select(Incident).where(
                Incident.created_at >= since - dt.timedelta(days=days), Incident.created_at < since, *where[1:]))
                if not (r.findings or {}).get("closed_as")]
            versus = f" (the {days} days before: {len(before)}, {len(rows) - len(before):+d})"
            prev = Counter(r.severity for r in before)
            lines.append(f"The {days} days before: {len(before)} incident(s)" + (
                ", " + ", ".join(f"SEV{k} {prev[k]}" for k in sorted(prev)) if prev else ""))
            for label, end in (("acknowledge", "acknowledged_at"), ("resolve", "resolved_at")):
                now_w = [(getattr(r, end) - r.created_at).total_seconds() / 60 for r in rows if getattr(r, end)]
                then_w = [(getattr(r, end) - r.created_at).total_seconds() / 60 for r in before if getattr(r, end)]
                if now_w and then_w:
                    lines.append(f"Median time to {label}: {_minutes(median(now_w))} now, {_minutes(median(then_w))} "
                                 "before")
        return SkillResult(title="Incident stats", summary=f"{len(rows)} incident(s) in {span}{versus}, {still} still "
                           f"open{aside}.",
                           sections=(Section("", tuple(lines)),), data={"incidents": len(rows), "days": days})

    def _handover(self, s: Session, request: SkillRequest, rest: str, ctx: SkillContext) -> SkillResult:
        """The shift handover for the last hours (see ``skills.handover``), of the services and teams named, if any
        ("/incident handover 8h payments": that team's; the words were refused)."""
        from knowledge.people import scope_in_text

        scope = scope_in_text(session=s, text=rest)
        words = rest
        for name in scope.names if scope else ():
            words = re.sub(rf"(?<![\w-]){re.escape(name)}(?:'s)?(?![\w-])", " ", words, flags=re.I)
        words = re.sub(r"\b(?:and|teams?|services?|on)\b|,", " ", words, flags=re.I) if scope else words
        result = handover(s, handover_hours(words, strict=request.source == "command"),
                          services=scope.services if scope else None)
        return dataclasses.replace(result, title=f"{result.title} {scope.label}") if scope else result

    def _list(self, s: Session, request: SkillRequest, rest: str, ctx: SkillContext) -> SkillResult:
        """Open incidents, most severe first; ``mine`` (assigned to whoever asks), ``sev1``..``sev4`` and a
        service name narrow the list. ``resolved`` lists those resolved in the last 7 days (or ``last 30d``, ``today``,
        ``this month``), newest first: "what did we fix this week?" (the word was refused)."""
        rest = re.sub(r"^\W*(?:show|give|tell|list)\s+me\b", " ", rest, flags=re.I)  # "show me ...": not "mine"
        words = re.findall(r"[\w-]+", rest.lower())
        closed = bool({"resolved", "closed", "fixed"} & set(words))
        span = _LAST_SPAN.search(rest) or re.search(r"\b(today|(?:this|last|past)\s+(?:week|month|quarter|year)"
                                                   r"|(\d{1,3})\s*(?:d|days?))\b",
                                                   rest, re.I)
        days = 7
        if span is not None:
            text = span.group(0).lower()
            n = int(m.group(0)) if (m := re.search(r"\d+", text)) else 1
            unit = (re.search(r"(?:\d|\s)([a-z])[a-z]*$", text) or re.search(r"()$", text)).group(1)  # "30d": d
            days = (1 if "today" in text else 7 if "week" in text else 30 if "month" in text
                    else 90 if "quarter" in text else 365 if "year" in text
                    else n if unit == "d" else max(1, -(-n // 24)) if unit == "h" else 1 if unit == "m" else n)
            days = min(days, 366)
            rest = rest[:span.start()] + " " + rest[span.end():]
            words = re.findall(r"[\w-]+", rest.lower())
        since = utcnow() - dt.timedelta(days=days)
        where = [Incident.status == "resolved", Incident.resolved_at >= since] if closed else \
            [Incident.status.in_(OPEN_STATUSES)]
        said: list[str] = [f"in the last {days} day{'s' * (days > 1)}"] if closed else []
        # "/incident list recent 5", "show me the last 3 incidents": the newest of any status, opened in the span if
        # one is said
        recent = not closed and bool({"recent", "latest", "newest", "last"} & set(words))
        count = 10
        if recent:
            where = [Incident.created_at >= since] if span is not None else []
            said = [f"opened in the last {days} day{'s' * (days > 1)}"] if span is not None else []
            if m := re.search(r"(?<![\w-])(\d{1,3})(?![\w-])", rest):
                count = max(1, min(25, int(m.group(1))))
                rest = rest[:m.start()] + " " + rest[m.end():]
                words = re.findall(r"[\w-]+", rest.lower())
        if {"mine", "me", "my"} & set(words):
            if not request.user_id:
                raise SkillError("`mine` needs to know who you are: ask in Slack.")
            where.append(Incident.assignee == request.user_id)
            said.append("assigned to you")
        if "unassigned" in words:  # "which incidents have nobody on them?"
            where.append(Incident.assignee.is_(None))
            said.append("with nobody on them")
        if {"unacknowledged", "unacked"} & set(words):  # "anything unacknowledged?": nobody acknowledged it yet
            where.append(Incident.status == "open")
            said.append("not acknowledged yet")
        oldest = "oldest" in words or "longest" in words
        following = bool({"following", "followed", "follow"} & set(words))
        if following:
            if not request.user_id:
                raise SkillError("`following` needs to know who you are: ask in Slack.")
            said.append("that you follow")
        sevs = sorted({level for w in words  # "sev1 and sev2": both; "sev1s" too
                       if (level := severity_word(re.sub(r"(?<=\d)s$", "", w))) is not None})
        if sevs:
            where.append(Incident.severity.in_(sevs))
            said.append(" or ".join(f"SEV{v}" for v in sevs))
        from knowledge.people import scope_in_text
        from skills.person import people_named

        persons = people_named(s, rest) if words and words[-1] == "people" else []
        if persons:  # "which incidents did alice
            days = days if span is not None else 30  # work on?": theirs, of any status, 30 days unless said
            where = [Incident.assignee.in_(persons), Incident.created_at >= utcnow() - dt.timedelta(days=days)]
            where += [Incident.severity.in_(sevs)] if sevs else []
            closed, said = False, [f"in the last {days} days", *([" or ".join(f"SEV{v}" for v in sevs)] if sevs
                                                                 else [])]
            said.append("with " + " or ".join(f"<@{u}>" for u in persons[:5]) + " on them")
            rest = re.sub(r"<@[^>]*>", " ", rest)
        scope = scope_in_text(session=s, text=rest)  # a service, or a team ("/incident list payments")
        if scope is not None:
            where.append(Incident.service_name.in_(scope.services))
            said.append(escape(scope.label))
        filler = ("mine", "me", "my", "all", "open", "incidents", "following", "followed", "follow", "i", "and",
                  "unassigned", "oldest", "causes", "unacknowledged", "unacked") + (
            ("resolved", "closed", "fixed", "in", "the") if closed else ()) + (  # "resolved in the last 30 days"
            ("recent", "latest", "newest", "last", "most", "the") if recent else ())
        left = [w for w in words if w not in filler and severity_word(w) is None
                and not (scope and w in {n.lower() for n in scope.names})]
        if left and request.source == "command":
            raise SkillError(f"I cannot filter by `{escape(' '.join(left)[:60])}`. Usage: `/incident list "
                             "[mine|following] [resolved [last 30d] | recent [N]] [sev1-4] [service or team]`.")
        order = ((Incident.resolved_at.desc(), Incident.id.desc()) if closed else
                 (Incident.created_at.desc(), Incident.id.desc()) if recent else
                 (Incident.created_at, Incident.id) if oldest else (Incident.severity, Incident.id))
        if following:  # followers are kept on the incident (JSON): the open ones, filtered here
            every = [r for r in s.scalars(select(Incident).where(*where).order_by(*order).limit(2000))
                     if request.user_id in ((r.findings or {}).get("followers") or [])]
            rows, total = every[:25], len(every)
        else:
            rows = s.scalars(select(Incident).where(*where).order_by(*order).limit(count if recent else 25)).all()
            total = None
        lines = tuple(f"*#{r.id}* SEV{r.severity} [{r.status}] {escape(r.title[:100])} "
                      f"({escape(r.service_name or 'unknown service')}, {r.alert_count or 0} alerts, {_age(r)}"
                      + (f", <@{r.assignee}>" if r.assignee else ", nobody on it") + ")"
                      for r in rows)
        which = f" ({', '.join(said)})" if said else ""
        kind = "resolved" if closed else "recent" if recent else "open" if not persons else "their"
        causes = closed and "causes" in words
        if causes:  # "what were the root causes last month?": what caused each, else what fixed it
            lines = tuple(f"*#{r.id}* SEV{r.severity} {escape(r.title[:100])} "
                          f"({escape(r.service_name or 'unknown service')}, resolved {clock(r.resolved_at)}): "
                          + (f"root cause: {escape(r.root_cause[:200])}" if (r.root_cause or "").strip() else
                             "no root cause recorded" + (f"; fixed by: {escape(r.resolution[:150])}"
                                                         if r.resolution else ""))
                          for r in rows)
        elif recent:  # when each opened, and how it ended
            lines = tuple(f"*#{r.id}* SEV{r.severity} [{r.status}"
                          + (f", {str((r.findings or {}).get('closed_as')).replace('_', ' ')}"
                             if (r.findings or {}).get("closed_as") else "")
                          + f"] {escape(r.title[:100])} ({escape(r.service_name or 'unknown service')}, opened "
                          f"{clock(r.created_at)}, {'lasted' if r.resolved_at else 'open for'} {_age(r)}"
                          + (f", <@{r.assignee}>" if r.assignee else "") + ")" for r in rows)
        elif closed:  # what fixed each, not how long it has been open
            lines = tuple(f"*#{r.id}* SEV{r.severity} {escape(r.title[:100])} "
                          f"({escape(r.service_name or 'unknown service')}, resolved {clock(r.resolved_at)} "
                          f"after {_age(r)}"
                          + (f"): {escape((r.resolution or '')[:150])}" if r.resolution else ")") for r in rows)
        if not rows:
            # "what's the status of the kafka incident?": none is open, so the last one on it is said
            last = (s.scalars(select(Incident).where(Incident.service_name.in_(scope.services))
                              .order_by(Incident.created_at.desc(), Incident.id.desc()).limit(1)).first()
                    if kind == "open" and scope is not None else None)
            before = (f" The last one: #{last.id} SEV{last.severity} [{last.status}] {escape(last.title[:100])}, "
                      f"opened {last.created_at:%d %b %Y}" + (f", lasted {_age(last)}" if last.resolved_at else "")
                      + f" (`/incident status {last.id}`)." if last is not None else "")
            return SkillResult(title="Incidents" if persons else f"{kind.capitalize()} incidents",
                               summary=f"No {kind} incidents{which}.".replace("No their ", "No ") + before)
        if total is None:
            total = s.scalar(select(func.count()).select_from(Incident).where(*where))
        more = (f" (the {len(rows)} {'newest' if closed else 'most severe'} shown)" if (total or 0) > len(rows)
                else "")
        summary = (f"The {len(rows)} most recent incident(s){which}, of {total} on record." if recent else
                   f"{total} {kind} incident(s){which}{more}.".replace("their incident(s)", "incident(s)"))
        return SkillResult(title="Incidents" if persons else f"{kind.capitalize()} incidents", summary=summary,
                           sections=(Section("", lines),))
