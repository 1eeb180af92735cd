"""Alert intake: normalised alerts, deduplication and grouping into incidents.

The webhook edge (``bot/webhooks.py``) turns each tool's payload into :class:`NormalizedAlert`
values; :func:`ingest` applies them to the knowledge base inside the caller's transaction, so a
crash part-way leaves nothing half-done and a re-run is exact. Grouping rules, in order:

1. ``fingerprint``: an alert whose fingerprint is already on an open incident joins it (and is
   deduplicated: the existing alert row counts one more occurrence);
2. ``group_key``: alerts of one Alertmanager group join the incident opened for that group;
3. ``service_alertname``: same service and alert name as an open incident created within the window.

Every join is explained on the incident's timeline ("joined incident #12 because ...").
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from knowledge.models import Alert, Expert, Incident, Service, TimelineEvent, fit, utcnow
from skills.base import no_bidi, severity_word, small_int
from skills.redact import mask_secrets

__all__ = ["NormalizedAlert", "GroupingRules", "Decision", "IngestCache", "ingest", "severity_from", "OPEN_STATUSES",
           "METRIC_KEYS", "extract_metrics", "extract_log_lines", "PD_NOTE_MARK"]

OPEN_STATUSES = ("open", "acknowledged", "mitigated")
# What a tool's news about one of its incidents does to ours: acknowledge it, re-rate it, note something on
# its timeline (shown on the card, kept for the postmortem), reopen a resolved one, or only say what happened.
UPDATES = ("ack", "severity", "note", "reopen", "assign", "event")
# How the notes the bot writes into PagerDuty begin (bot/pagerduty.py): PagerDuty's webhook echoes them back.
PD_NOTE_MARK = "[warroom] "

# Besides SEV0-SEV4 and P0-P4 (severity_word, as people write them in Slack):
_SEVERITY = {"critical": 1, "crit": 1, "fatal": 1, "page": 1, "high": 2, "error": 2, "major": 2, "warning": 3,
             "warn": 3, "medium": 3, "minor": 3, "low": 4, "info": 4, "p5": 4, "sev5": 4, "none": 4,
             # syslog's levels (emerg, alert), Zabbix's (disaster, average, not classified), OpsGenie's P0..P5
             "emerg": 1, "emergency": 1, "alert": 1, "disaster": 1, "average": 3,
             "notice": 4, "information": 4, "informational": 4, "debug": 4, "notclassified": 4, "ok": 4,
             # Jira's and Zendesk's priorities, and a few more words tools use
             "blocker": 1, "highest": 1, "urgent": 1, "severe": 2, "serious": 2, "err": 2, "moderate": 3,
             "normal": 3, "lowest": 4, "trivial": 4, "verbose": 4, "planning": 4}

# Metric snapshot names the risk skill understands, and the aliases alerts use for them.
METRIC_KEYS = {
    "cpu_usage": ("cpu_usage", "cpu", "cpu_percent"), "memory_usage": ("memory_usage", "mem", "memory"),
    "disk_usage": ("disk_usage", "disk"), "network_latency_ms": ("network_latency_ms", "latency_ms", "latency"),
    "error_count": ("error_count", "errors"), "response_time_ms": ("response_time_ms", "response_time"),
    "active_connections": ("active_connections", "connections"),
}


def read_severity(value: object) -> int | None:
    """A tool's severity word or number as 1 (worst) .. 4; None when it is none we know (the caller says so)."""
    if value is None:
        return None
    text = re.sub(r"[\s_-]+", "", str(value).strip().lower())  # "SEV-1", "sev 1", "Not classified"
    text = re.sub(r"^([0-5])[a-z]+$", r"\1", text)  # ServiceNow's "1 - Critical" .. "5 - Planning"
    if (n := small_int(text)) is not None:
        return min(4, max(1, n)) if 0 <= n <= 5 else None
    return severity_word(text) or _SEVERITY.get(text)


def severity_from(value: object, default: int = 3) -> int:
    """Map a tool's severity word or number to 1 (worst) .. 4; ``default`` when absent or unknown."""
    level = read_severity(value)
    return default if level is None else level


def unread_severity(value: object) -> str:
    """A severity the alert gave that :func:`read_severity` cannot read ('' when absent or read), as said back."""
    if value is None or str(value).strip() == "" or read_severity(value) is not None:
        return ""
    return str(value).strip()[:40]


_ALIAS_TO_KEY = {alias: key for key, aliases in METRIC_KEYS.items() for alias in aliases}
_INLINE = re.compile(r"\b(" + "|".join(sorted(_ALIAS_TO_KEY, key=len, reverse=True)) + r")\s*[=:]\s*(-?\d+(?:\.\d+)?)",
                     re.I)


def extract_metrics(*sources: dict[str, Any]) -> dict[str, float]:
    """Numeric snapshot values carried by an alert: keys of labels, annotations or an explicit block,
    and ``cpu=93``-style pairs inside annotation text."""
    out: dict[str, float] = {}
    for src in sources:
        for value in src.values():
            if isinstance(value, str):
                for alias, number in _INLINE.findall(value):
                    out.setdefault(_ALIAS_TO_KEY[alias.lower()], float(number))
    for src in sources:
        for canonical, aliases in METRIC_KEYS.items():
            for alias in aliases:
                if alias in src and canonical not in out:
                    try:
                        value = float(str(src[alias]).rstrip("%"))
                    except ValueError:
                        continue
                    if value == value and abs(value) != float("inf"):
                        out[canonical] = value
    return out


# A log-like word ends at a word boundary, so "level=error" and "IOError:" count but a metric such as
# "errors=380" in a description's summary line does not.
_LOGLIKE = re.compile(r"(error|exception|fatal|fail\w*|timeout|timed out|refused|denied|warn\w*|panic|oom\w*|killed)\b",
                      re.I)


def extract_log_lines(annotations: dict[str, Any], explicit: list[str] | None = None,
                      limit: int = 200) -> tuple[str, ...]:
    """Log lines an alert carries: an explicit list, or log-like lines of its log/description fields."""
    lines: list[str] = [str(x) for x in (explicit or [])]
    for key in ("logs", "log", "log_excerpt", "logs_excerpt"):
        if isinstance(annotations.get(key), str):
            lines.extend(annotations[key].splitlines())
    if not lines and isinstance(annotations.get("description"), str):
        lines = [ln for ln in annotations["description"].splitlines() if _LOGLIKE.search(ln)]
    return tuple(ln[:2000] for ln in lines if ln.strip())[:limit]


@dataclass(frozen=True)
class NormalizedAlert:
    """One alert, whatever tool sent it."""

    source: str
    fingerprint: str
    name: str
    status: str  # firing | resolved
    service: str | None = None
    severity: int = 3
    summary: str = ""
    description: str = ""
    labels: dict[str, Any] = field(default_factory=dict)
    annotations: dict[str, Any] = field(default_factory=dict)
    starts_at: dt.datetime | None = None
    ends_at: dt.datetime | None = None
    group_key: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    log_lines: tuple[str, ...] = ()
    # Not an alert firing or resolving but news about an incident the tool already told us of (PagerDuty:
    # acknowledged, priority changed, a note, reopened, escalated...): see :data:`UPDATES`.
    update: str = ""
    update_text: str = ""  # the note, or what happened ("escalated"), said on the timeline
    actor: str = ""  # who did it in that tool
    opens: bool = False  # an update about an incident we never saw opens it (its event carries the incident)
    test: bool = False  # the tool's "send a test notification": confirm the connection, open nothing
    truncated: int = 0  # alerts of the same message the tool left out (Alertmanager's max_alerts)
    severity_unread: str = ""  # the severity the alert gave when it is none we know (``severity`` is then 3)

    def __post_init__(self) -> None:
        # The keys as the database stores them (knowledge.models.Bounded), so that what is compared in memory is
        # what was stored: a long Alertmanager group key or alert name is cut with a hash of the whole at its end.
        for name, limit in (("fingerprint", 200), ("name", 200), ("service", 100), ("group_key", 300)):
            value = getattr(self, name)
            if isinstance(value, str) and len(value) > limit:
                object.__setattr__(self, name, fit(value, limit))
        # A start the sender's clock cannot have seen (an unset 1970 epoch, a year 9999) is no start: it made the
        # incident detected 56 years ago, or in the future, and every duration on its postmortem absurd.
        if self.starts_at is not None and (self.starts_at.year < 2000
                                           or self.starts_at > utcnow() + dt.timedelta(hours=1)):
            object.__setattr__(self, "starts_at", None)


@dataclass(frozen=True)
class GroupingRules:
    """Which grouping rules apply, in order, and the service+alert-name window."""

    rules: tuple[str, ...] = ("fingerprint", "group_key", "service_alertname")
    window: dt.timedelta = dt.timedelta(minutes=30)


@dataclass(frozen=True)
class Decision:
    """What happened to one alert."""

    incident_id: int
    created: bool  # a new incident was opened
    new_alert: bool  # a new alert row (not a duplicate)
    reason: str
    status_changed: bool = False
    still_firing: bool = False  # the alert fires on after a person resolved its incident: tell its thread (once)


def _find_open(session: Session, alert: NormalizedAlert, rules: GroupingRules) -> tuple[Incident | None, str]:
    for rule in rules.rules:
        if rule == "fingerprint":
            inc = session.scalar(
                select(Incident).join(Alert, Alert.incident_id == Incident.id)
                .where(Alert.fingerprint == alert.fingerprint, Alert.source == alert.source,
                       Incident.status.in_(OPEN_STATUSES))
                .order_by(Incident.id.desc()).limit(1))
            if inc is not None:
                return inc, f"same fingerprint `{alert.fingerprint}`"
        elif rule == "group_key" and alert.group_key:
            inc = session.scalar(select(Incident).where(Incident.group_key == alert.group_key,
                                                        Incident.status.in_(OPEN_STATUSES))
                                 .order_by(Incident.id.desc()).limit(1))
            if inc is not None:
                return inc, "same Alertmanager group"
        elif rule == "service_alertname" and alert.service:
            since = utcnow() - rules.window
            inc = session.scalar(select(Incident).where(
                Incident.service_name == alert.service, Incident.alert_name == alert.name,
                Incident.status.in_(OPEN_STATUSES), Incident.created_at >= since).order_by(Incident.id.desc()).limit(1))
            if inc is not None:
                minutes = int(rules.window.total_seconds() // 60)
                return inc, f"same service `{alert.service}` and alert `{alert.name}` within {minutes} min"
    return None, ""


def _title(alert: NormalizedAlert) -> str:
    text = alert.summary or alert.name
    return no_bidi(f"{alert.service}: {text}" if alert.service and alert.service not in text else text)[:500]


def _apply_to_incident(session: Session, inc: Incident, alert: NormalizedAlert, now: dt.datetime,
                       known: Alert | None = None, inbox_id: int | None = None) -> tuple[Alert, bool, bool]:
    """Record the alert on the incident; returns (its alert row, new alert row, incident status changed).
    ``known``: the alert row already loaded for this incident and fingerprint (saves the lookup)."""
    row = known if known is not None and known.incident_id == inc.id else session.scalar(
        select(Alert).where(Alert.incident_id == inc.id, Alert.fingerprint == alert.fingerprint,
                            Alert.source == alert.source))
    new_row = row is None
    if row is None:
        row = Alert(incident_id=inc.id, source=alert.source, fingerprint=alert.fingerprint, name=alert.name,
                    service_name=alert.service, status=alert.status, severity=str(alert.severity),
                    summary=alert.summary or alert.description[:500], labels=alert.labels,
                    annotations=alert.annotations, starts_at=alert.starts_at, ends_at=alert.ends_at,
                    received_at=now, last_seen_at=now, occurrences=1, inbox_id=inbox_id)
        session.add(row)
        inc.alert_count = (inc.alert_count or 0) + 1
    else:
        row.occurrences = (row.occurrences or 0) + 1
        row.last_seen_at = now
        if row.status != alert.status:
            row.status = alert.status
            row.ends_at = alert.ends_at if alert.status == "resolved" else None
            session.add(TimelineEvent(incident_id=inc.id, at=now, kind="alert",
                                      text=f"Alert {alert.name} ({alert.fingerprint}) {alert.status}",
                                      data={"fingerprint": alert.fingerprint, "status": alert.status}))
    if alert.severity < inc.severity:
        inc.severity = alert.severity
    changed = False
    if alert.status == "firing":
        firing: int | None = -1  # this alert's own row fires: no need to ask the database
    else:
        session.flush()
        firing = session.scalar(select(Alert.id).where(Alert.incident_id == inc.id, Alert.status == "firing")
                                .limit(1))
    if firing is None and inc.status in ("open", "acknowledged"):
        inc.status, inc.mitigated_at, changed = "mitigated", now, True
        session.add(TimelineEvent(incident_id=inc.id, at=now, kind="mitigated",
                                  text="All alerts resolved: incident marked mitigated"))
    elif firing is not None and inc.status == "mitigated":
        # A flapping alert: someone who acknowledged it is still on it (no reminders, nobody else paged).
        back = "acknowledged" if inc.acknowledged_at is not None else "open"
        inc.status, inc.mitigated_at, changed = back, None, True
        session.add(TimelineEvent(incident_id=inc.id, at=now, kind="reopened", text="An alert fired again" + (
            f" (still acknowledged{f' by <@{inc.assignee}>' if inc.assignee else ''})" if back != "open" else "")))
    return row, new_row, changed


class IngestCache:
    """What one batch of inbox rows has already looked up: the incident and alert row of each (source,
    fingerprint) it touched. In a storm most alerts of a batch repeat a fingerprint seen a moment ago; with
    the cache they cost no query at all. Valid for one transaction (the processor's batch) only."""

    def __init__(self) -> None:
        self.by_fingerprint: dict[tuple[str, str], tuple[Incident, Alert]] = {}

    def prefetch(self, session: Session, alerts: list[NormalizedAlert], rules: GroupingRules) -> None:
        """Load with one query the open incident (the newest) and alert row of every fingerprint in ``alerts``."""
        if not rules.rules or rules.rules[0] != "fingerprint":
            return
        wanted = {(a.source, a.fingerprint) for a in alerts} - set(self.by_fingerprint)
        if not wanted:
            return
        found = session.execute(
            select(Alert, Incident).join(Incident, Alert.incident_id == Incident.id)
            .where(Alert.fingerprint.in_({fp for _, fp in wanted}), Incident.status.in_(OPEN_STATUSES))
            .order_by(Incident.id))
        for alert_row, inc in found:
            key = (alert_row.source, alert_row.fingerprint)
            if key in wanted:
                self.by_fingerprint[key] = (inc, alert_row)  # ascending ids: the newest incident wins

    def lookup(self, alert: NormalizedAlert, rules: GroupingRules) -> tuple[Incident | None, Alert | None]:
        hit = self.by_fingerprint.get((alert.source, alert.fingerprint))
        # Only when the fingerprint rule comes first does "the incident this fingerprint is on" decide alone.
        if hit is None or not rules.rules or rules.rules[0] != "fingerprint" or hit[0].status not in OPEN_STATUSES:
            return None, None
        return hit


def _linked(session: Session, alert: NormalizedAlert) -> tuple[Incident, Alert] | tuple[None, None]:
    """The newest incident, in any state, holding an alert of this tool with this fingerprint, and that alert."""
    found = session.execute(select(Incident, Alert).join(Alert, Alert.incident_id == Incident.id)
                            .where(Alert.fingerprint == alert.fingerprint, Alert.source == alert.source)
                            .order_by(Incident.id.desc()).limit(1)).first()
    return (found[0], found[1]) if found is not None else (None, None)


def _person(session: Session, name: str) -> str | None:
    """The Slack user of an active expert with exactly this name (case aside); None when none or several."""
    if not name.strip():
        return None
    ids = session.scalars(select(Expert.slack_user_id).where(func.lower(Expert.name) == name.strip().lower(),
                                                             Expert.active.is_(True)).limit(2)).all()
    return ids[0] if len(ids) == 1 else None


def _still_firing(session: Session, alert: NormalizedAlert, rules: GroupingRules,
                  now: dt.datetime) -> Decision | None:
    """The same firing episode (same start) of an alert whose incident a person resolved within the grouping
    window: Alertmanager re-sends it with its group (the fix is not seen yet, or the alert lags). It stays on
    that incident, which is not reopened; its thread is told once. Later, or a new start: a new incident."""
    if alert.starts_at is None:
        return None
    done, row = _linked(session, alert)
    if done is None or done.status != "resolved" or done.resolved_at is None or now - done.resolved_at > rules.window:
        return None
    if row is None or row.starts_at != alert.starts_at or row.status != "firing":
        return None
    row.occurrences, row.last_seen_at = (row.occurrences or 0) + 1, now
    told = session.scalar(select(TimelineEvent.id).where(
        TimelineEvent.incident_id == done.id, TimelineEvent.kind == "still_firing",
        TimelineEvent.at >= done.resolved_at).limit(1)) is not None  # since this resolution: once
    if not told:
        minutes = max(1, int((now - done.resolved_at).total_seconds() // 60))
        session.add(TimelineEvent(incident_id=done.id, at=now, kind="still_firing", text=(
            f"Alert {alert.name} still firing {minutes} min after the incident was resolved"),
            data={"fingerprint": alert.fingerprint, "status": "firing", "minutes": minutes}))
    return Decision(done.id, False, False, "still firing after its incident was resolved", still_firing=not told)


def _update(session: Session, inc: Incident, alert: NormalizedAlert, now: dt.datetime,
            inbox_id: int | None) -> Decision:
    """Apply a tool's news about an incident we hold (``alert.update``); the timeline says who did what where."""
    who = _person(session, alert.actor)  # the tool's user, when the people directory has that name
    by = f" by <@{who}>" if who else f" by {alert.actor}" if alert.actor else ""
    where = alert.source.capitalize() if alert.source != "pagerduty" else "PagerDuty"
    changed, kind, text = False, "alert", ""
    if alert.update == "ack":
        if who and not inc.assignee:  # whoever acknowledged it is on it, as with Acknowledge here
            inc.assignee, changed = who, True
        if inc.status == "open":
            inc.status, inc.acknowledged_at, changed = "acknowledged", now, True
            kind, text = "ack", f"Acknowledged in {where}{by}"
        else:
            text = f"Acknowledged in {where}{by} (here it is {inc.status})"
    elif alert.update == "severity":
        if alert.severity != inc.severity:
            kind, text = "sev", f"Severity SEV{inc.severity} -> SEV{alert.severity}: {alert.update_text} in {where}{by}"
            inc.severity, changed = alert.severity, True
    elif alert.update == "note":
        if alert.source == "pagerduty" and alert.update_text.startswith(PD_NOTE_MARK):
            return Decision(inc.id, False, False, "our own note, echoed back by PagerDuty")
        kind, text = "note", mask_secrets(f"{where} note{by}: {alert.update_text}")[:2000]
    elif alert.update == "assign":  # reassigned there: the first assignee the people directory knows is on it
        names = [n for n in alert.update_text.splitlines() if n.strip()][:20]
        to = next((p for p in (_person(session, n) for n in names) if p), None)
        if to and to != inc.assignee:
            inc.assignee, changed = to, True
            kind, text = "assign", f"Reassigned in {where} to <@{to}>{by}"
        else:
            text = f"{where}: reassigned to {', '.join(names) or 'nobody'}{by}" + (
                "" if to else " (not in the people directory: the assignee here stays)" if names else "")
    elif alert.update == "reopen":  # only reaches here for a resolved incident: open it again, alert firing
        inc.status, inc.resolved_at, changed = "open", None, True
        kind, text = "reopen", f"Reopened in {where}{by}"
        session.add(TimelineEvent(incident_id=inc.id, at=now, kind=kind, text=text, key=True))
        _apply_to_incident(session, inc, alert, now, inbox_id=inbox_id)
        return Decision(inc.id, False, False, text, True)
    else:
        text = f"{where}: {alert.update_text}{by}"
    if text:
        session.add(TimelineEvent(incident_id=inc.id, at=now, kind=kind, text=text[:2000], key=kind != "alert",
                                  data={"fingerprint": alert.fingerprint, "update": alert.update}))
    return Decision(inc.id, False, False, text or "no change", changed)


def ingest(session: Session, alerts: list[NormalizedAlert], rules: GroupingRules | None = None,
           inbox_id: int | None = None, cache: IngestCache | None = None) -> list[Decision]:
    """Apply alerts to the knowledge base (the caller commits). Not thread-safe: callers serialise.
    ``cache``: shared by the calls of one transaction (see :class:`IngestCache`)."""
    rules = rules or GroupingRules()
    decisions: list[Decision] = []
    now = utcnow()
    for alert in alerts:
        if alert.test:
            decisions.append(Decision(0, False, False, "test notification"))
            continue
        if alert.update:
            linked, _ = _linked(session, alert)
            if linked is not None and (alert.update != "reopen" or linked.status == "resolved"):
                decisions.append(_update(session, linked, alert, now, inbox_id))
                continue
            if linked is None and not alert.opens:
                decisions.append(Decision(0, False, False, f"{alert.update} for no incident we hold: ignored"))
                continue
        inc, known = cache.lookup(alert, rules) if cache is not None else (None, None)
        if inc is not None:
            reason = f"same fingerprint `{alert.fingerprint}`"
        else:
            inc, reason = _find_open(session, alert, rules)
        created = False
        if inc is None and alert.status == "firing" and not alert.update:
            late = _still_firing(session, alert, rules, now)
            if late is not None:
                decisions.append(late)
                continue
        if inc is None:
            if alert.status == "resolved":
                # Its incident was resolved (by a person) before the alert cleared: mark the alert row resolved,
                # so the incident does not show it firing. Never seen at all: record nothing, say so.
                done, row = _linked(session, alert)
                if done is None or row is None or row.status == "resolved":
                    decisions.append(Decision(0, False, False, "resolved alert for no open incident: ignored"))
                    continue
                row.status, row.ends_at, row.last_seen_at = "resolved", alert.ends_at or now, now
                session.add(TimelineEvent(incident_id=done.id, at=now, kind="alert",
                                          text=f"Alert {alert.name} ({alert.fingerprint}) resolved",
                                          data={"fingerprint": alert.fingerprint, "status": "resolved"}))
                decisions.append(Decision(done.id, False, False, "alert of a resolved incident cleared"))
                continue
            svc = session.scalar(select(Service).where(Service.name == alert.service)) if alert.service else None
            inc = Incident(title=_title(alert), description=alert.description[:5000], severity=alert.severity,
                           status="open", service_id=svc.id if svc else None, service_name=alert.service,
                           alert_name=alert.name, source=alert.source, group_key=alert.group_key,
                           created_at=now, detected_at=min(alert.starts_at or now, now), alert_count=0,
                           findings={"intake": {"unknown_service": bool(alert.service and svc is None),
                                                "metrics": alert.metrics, "log_lines": list(alert.log_lines),
                                                **({"unread_severity": alert.severity_unread}
                                                   if alert.severity_unread else {}),
                                                **({"truncated_alerts": alert.truncated} if alert.truncated else {})}})
            session.add(inc)
            session.flush()
            reason = f"opened by {alert.source} alert {alert.name}"
            session.add(TimelineEvent(incident_id=inc.id, at=now, kind="created", text=f"Incident opened: {reason}",
                                      data={"fingerprint": alert.fingerprint}))
            created = True
        else:
            intake = dict((inc.findings or {}).get("intake") or {})
            grew = False
            if alert.metrics:
                intake["metrics"] = {**intake.get("metrics", {}), **alert.metrics}
                grew = True
            if alert.log_lines:
                intake["log_lines"] = (list(intake.get("log_lines", [])) + list(alert.log_lines))[-200:]
                grew = True
            if alert.truncated > int(intake.get("truncated_alerts", 0)):
                intake["truncated_alerts"] = alert.truncated
                grew = True
            if grew:
                inc.findings = {**(inc.findings or {}), "intake": intake}
        row, new_row, changed = _apply_to_incident(session, inc, alert, now, known, inbox_id)
        if cache is not None:
            cache.by_fingerprint[(alert.source, alert.fingerprint)] = (inc, row)
        if new_row and not created:
            session.add(TimelineEvent(incident_id=inc.id, at=now, kind="grouped",
                                      text=f"Alert {alert.name} joined incident #{inc.id} because {reason}",
                                      data={"fingerprint": alert.fingerprint, "reason": reason}))
        if created and alert.update == "ack":  # we first hear of it as acknowledged: so it is here too
            _update(session, inc, alert, now, inbox_id)
        decisions.append(Decision(inc.id, created, new_row, reason, changed))
    return decisions
