"""Pydantic models of the webhook payloads we accept, and their translation to normalised alerts.

Formats follow each tool's documentation: Prometheus Alertmanager webhook v4, PagerDuty v3 webhook
events, Grafana unified alerting webhook, and our own generic JSON (documented in the README).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, ValidationInfo, field_validator

from skills.intake import NormalizedAlert, extract_log_lines, extract_metrics, severity_from, unread_severity
from skills.redact import mask_secrets

__all__ = ["parse_payload", "AlertmanagerPayload", "PagerDutyPayload", "GrafanaPayload", "GenericPayload",
           "SOURCES", "delivery_id", "payload_json_schema"]

MAX_ALERTS = 1000
_ZERO = "0001-01-01"


def _when(value: str | None) -> dt.datetime | None:
    if not value or value.startswith(_ZERO):
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.astimezone(dt.UTC).replace(tzinfo=None) if parsed.tzinfo else parsed


def _fp(*parts: object) -> str:
    return hashlib.sha1(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _service(labels: dict[str, Any]) -> str | None:
    for key in ("service", "app", "application", "job", "namespace"):
        if labels.get(key):
            return str(labels[key])[:100]
    return None


class _Strict(BaseModel):
    model_config = ConfigDict(extra="allow")


class AMAlert(_Strict):
    status: Literal["firing", "resolved"]
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    startsAt: str | None = None  # noqa: N815 - Alertmanager's field names
    endsAt: str | None = None  # noqa: N815
    generatorURL: str | None = None  # noqa: N815
    fingerprint: str | None = None

    @field_validator("labels")
    @classmethod
    def _has_alertname(cls, v: dict[str, str]) -> dict[str, str]:
        if "alertname" not in v:
            raise ValueError("labels.alertname is required")
        return v


class AlertmanagerPayload(_Strict):
    version: str
    groupKey: str  # noqa: N815
    status: Literal["firing", "resolved"]
    receiver: str = ""
    alerts: list[AMAlert] = Field(max_length=MAX_ALERTS)
    groupLabels: dict[str, str] = Field(default_factory=dict)  # noqa: N815
    commonLabels: dict[str, str] = Field(default_factory=dict)  # noqa: N815
    commonAnnotations: dict[str, str] = Field(default_factory=dict)  # noqa: N815
    externalURL: str = ""  # noqa: N815
    truncatedAlerts: int = Field(default=0, ge=0)  # noqa: N815 - alerts max_alerts left out of this message

    def normalise(self, source: str = "alertmanager") -> list[NormalizedAlert]:
        out = []
        for a in self.alerts:
            labels = {**self.commonLabels, **a.labels}
            ann = {**self.commonAnnotations, **a.annotations}
            # the tool's own links (the Prometheus graph; Grafana's dashboard and panel): on the incident card
            ann |= {k: v for k in ("generatorURL", "dashboardURL", "panelURL") if (v := getattr(a, k, None))}
            out.append(NormalizedAlert(
                source=source, fingerprint=a.fingerprint or _fp(sorted(labels.items())), name=labels["alertname"],
                status=a.status, service=_service(labels), severity=severity_from(labels.get("severity")),
                severity_unread=unread_severity(labels.get("severity")),
                summary=ann.get("summary", ""), description=ann.get("description", ""), labels=labels,
                annotations=ann, starts_at=_when(a.startsAt), ends_at=_when(a.endsAt), group_key=self.groupKey,
                metrics=extract_metrics(labels, ann), log_lines=extract_log_lines(ann),
                truncated=self.truncatedAlerts))
        return out


_GRAFANA_STATE_ALERTS = {"DatasourceNoData": "no data from its data source",
                         "DatasourceError": "its query failed"}


class GrafanaAlert(AMAlert):
    values: dict[str, float | int | None] | None = None
    valueString: str | None = None  # noqa: N815
    dashboardURL: str | None = None  # noqa: N815
    panelURL: str | None = None  # noqa: N815


class GrafanaPayload(AlertmanagerPayload):
    alerts: list[GrafanaAlert] = Field(max_length=MAX_ALERTS)  # type: ignore[assignment]
    orgId: int | None = None  # noqa: N815
    title: str | None = None
    state: str | None = None
    message: str | None = None

    def normalise(self, source: str = "grafana") -> list[NormalizedAlert]:
        out = []
        for a in super().normalise(source):
            if a.labels.get("alertname") == "TestAlert" and a.labels.get("instance") == "Grafana":
                # A contact point's "Test" button sends one alert with these labels (grafana/alerting newTestAlert).
                a = dataclasses.replace(a, test=True, labels={**a.labels, "receiver": self.receiver})
            elif a.name in _GRAFANA_STATE_ALERTS and a.labels.get("rulename"):
                # A rule with no data, or whose query failed, fires under a generic name: say which rule.
                rule, why = a.labels["rulename"][:150], _GRAFANA_STATE_ALERTS[a.name]
                error = a.annotations.get("Error") or a.annotations.get("error") or ""
                a = dataclasses.replace(a, name=f"{rule} ({a.name})", summary=a.summary or (
                    f"{rule}: {why}" + (f": {error[:300]}" if error else "")))
            out.append(a)
        return out


class PDRef(_Strict):
    """A reference to a PagerDuty object (service, user, incident): its id and display name."""
    id: str | None = None
    summary: str | None = None


class PDData(_Strict):
    """``event.data``: an incident, or for notes, status updates and responders an object naming its incident
    (a ``pagey.ping`` test event has no id)."""
    id: str | None = None
    type: str = "incident"
    title: str | None = None
    status: str | None = None
    incident_key: str | None = None
    urgency: str | None = None
    html_url: str | None = None
    created_at: str | None = None
    service: PDRef | None = None
    priority: dict[str, Any] | None = None
    incident: PDRef | None = None  # incident_note, incident_status_update, incident_responder
    content: str | None = None  # incident_note
    message: str | None = None  # incident_status_update, incident_responder
    user: PDRef | None = None  # incident_responder
    assignees: list[PDRef] | None = None  # incident: who PagerDuty pages for it now


class PDEvent(_Strict):
    id: str
    event_type: str
    resource_type: str = "incident"
    occurred_at: str
    agent: PDRef | None = None
    data: PDData


# PagerDuty v3 event types -> what they do to our incident (skills.intake.UPDATES); triggered and resolved
# are plain alerts; any other incident.* event is said on the timeline and changes nothing.
_PD_UPDATES = {"incident.triggered": "", "incident.resolved": "", "incident.acknowledged": "ack",
               "incident.priority_updated": "severity", "incident.annotated": "note",
               "incident.status_update_published": "note", "incident.reopened": "reopen",
               "incident.reassigned": "assign"}


class PagerDutyPayload(_Strict):
    event: PDEvent

    def normalise(self, source: str = "pagerduty") -> list[NormalizedAlert]:
        ev, d = self.event, self.event.data
        if ev.event_type == "pagey.ping":  # "Send Test Event" on the webhook subscription
            return [NormalizedAlert(source=source, fingerprint=f"ping:{ev.id}", name="PagerDuty test event",
                                    status="firing", summary=(d.message or "")[:500], test=True)]
        if not ev.event_type.startswith("incident."):
            return []
        update = _PD_UPDATES.get(ev.event_type, "event")
        is_incident = d.type == "incident"
        # Every event names the PagerDuty incident: the data itself, or the incident it refers to.
        pd_id = d.id if is_incident else (d.incident.id if d.incident and d.incident.id else None)
        if not pd_id:
            return []
        status = "resolved" if ev.event_type == "incident.resolved" else "firing"
        priority = (d.priority or {}).get("summary") if d.priority else None
        sev = severity_from(priority, severity_from(d.urgency == "high" and "high" or "warning"))
        service = d.service.summary if d.service and d.service.summary else None
        title = d.title or (d.incident.summary if d.incident and d.incident.summary else None) or "PagerDuty incident"
        what = ev.event_type.removeprefix("incident.").replace("_", " ").replace(".", " ")
        if update == "note":
            text = d.content if d.type == "incident_note" else d.message
        elif update == "severity":
            text = f"priority {priority or 'none'}"
        elif update == "assign":  # one name per line (names have commas, never newlines)
            text = "\n".join((a.summary or a.id or "").strip() for a in d.assignees or [] if a.summary or a.id)
        elif d.type == "incident_responder" and d.user:
            text = f"{what}: {d.user.summary or d.user.id}" + (f" ({d.message[:300]})" if d.message else "")
        else:
            text = what
        return [NormalizedAlert(
            source=source, fingerprint=pd_id, name=title[:200], status=status, service=service, severity=sev,
            summary=d.title or "", labels={"pagerduty_incident": pd_id, "event_type": ev.event_type},
            annotations={"html_url": d.html_url or ""}, starts_at=_when(d.created_at) or _when(ev.occurred_at),
            ends_at=_when(ev.occurred_at) if status == "resolved" else None, update=update,
            update_text=(text or "")[:5000], actor=(ev.agent.summary or "") if ev.agent else "",
            opens=is_incident and d.status != "resolved" and update != "note")]


_STATUS_WORDS = {**dict.fromkeys(("firing", "fire", "triggered", "trigger", "alerting", "alert", "problem", "open",
                                   "active", "raised", "down"), "firing"),
                 **dict.fromkeys(("resolved", "resolve", "ok", "recovered", "recovery", "closed", "cleared", "clear",
                                  "normal", "up", "inactive"), "resolved")}


class GenericAlert(_Strict):
    name: str = Field(min_length=1, max_length=200)
    status: Literal["firing", "resolved"] = "firing"
    # The types say what is accepted, and the validators below turn it into one form: a number for text is its
    # text, null text is empty, one log string is its lines, a quoted number is the number, a start may be Unix
    # seconds or milliseconds (a 422 would lose the alert: senders seldom retry a 4xx). true/false are refused
    # where they would be read as 1 or 0.
    service: str | int | None = Field(default=None, max_length=100)
    severity: str | int | None = None
    summary: str | None = Field(default="", max_length=2000)
    description: str | None = Field(default="", max_length=20000)
    fingerprint: str | int | None = Field(default=None, max_length=200)
    labels: dict[str, str | int | float | bool | None] = Field(default_factory=dict)
    metrics: dict[str, StrictFloat | str] = Field(default_factory=dict)  # numbers (true is not 1.0), or "97"
    logs: list[str] | str = Field(default_factory=list, max_length=1000)
    starts_at: str | int | float | None = None

    @field_validator("status", mode="before")
    @classmethod
    def _status_words(cls, v: Any) -> Any:
        # "RESOLVED", "OK", "triggered": what other tools send. Refused (a 422) they were lost at the door, as a
        # sender seldom retries a 4xx; a word that is neither is still refused, never guessed.
        if isinstance(v, str):
            return _STATUS_WORDS.get(v.strip().lower(), v)
        return v

    @field_validator("service", "fingerprint", "starts_at", mode="before")
    @classmethod
    def _no_bool(cls, v: Any, info: ValidationInfo) -> Any:
        if isinstance(v, bool):
            raise ValueError("is text (or a number), not true/false")
        if info.field_name != "starts_at" and isinstance(v, int | float):
            # a numeric fingerprint or service id: its text (a float too: 1800.0 was made an int, then its length
            # checked, a TypeError and a 500 found by a deeper fuzzing run)
            return str(int(v)) if isinstance(v, float) and v.is_integer() else str(v)
        return v

    @field_validator("summary", "description", mode="after")
    @classmethod
    def _null_text(cls, v: Any) -> Any:
        return "" if v is None else v

    @field_validator("labels", mode="after")
    @classmethod
    def _labels_as_text(cls, v: dict[str, Any]) -> dict[str, str]:
        return {k: ("true" if x else "false") if isinstance(x, bool) else "" if x is None else str(x)
                for k, x in v.items()}

    @field_validator("logs", mode="after")
    @classmethod
    def _one_log_text(cls, v: Any) -> Any:
        return [ln for ln in v.splitlines() if ln.strip()][:1000] if isinstance(v, str) else v

    @field_validator("metrics", mode="after")
    @classmethod
    def _quoted_numbers(cls, v: dict[str, Any]) -> dict[str, float]:
        out = {}
        for k, x in v.items():
            if isinstance(x, str):
                try:
                    x = float(x.strip())
                except ValueError:
                    raise ValueError(f"metric {k[:40]!r}: {x[:20]!r} is not a number") from None
                if not math.isfinite(x):
                    raise ValueError(f"metric {k[:40]!r} is not a finite number")
            out[k] = x
        return out

    @field_validator("starts_at", mode="after")
    @classmethod
    def _unix_time(cls, v: Any) -> Any:
        if isinstance(v, int | float):
            seconds = v / 1000 if v > 1e11 else v  # milliseconds (JavaScript's Date.now()) or seconds
            try:
                return dt.datetime.fromtimestamp(seconds, dt.UTC).isoformat()
            except (OverflowError, OSError, ValueError):
                raise ValueError("is not a time: an ISO 8601 text, or Unix seconds or milliseconds") from None
        return v

    @field_validator("severity", mode="before")
    @classmethod
    def _not_a_bool(cls, v: Any) -> Any:
        # Left alone, pydantic reads true (and false) as 1, i.e. SEV1.
        if isinstance(v, bool):
            raise ValueError("severity is a name (critical, warning, ...) or a number 1-4, not true/false")
        return v


class GenericPayload(_Strict):
    alerts: list[GenericAlert] = Field(min_length=1, max_length=MAX_ALERTS)

    def normalise(self, source: str = "generic") -> list[NormalizedAlert]:
        out = []
        for a in self.alerts:
            labels = {**a.labels, **({"service": a.service} if a.service else {})}
            out.append(NormalizedAlert(
                source=source, fingerprint=a.fingerprint or _fp(a.name, a.service, sorted(a.labels.items())),
                name=a.name, status=a.status, service=a.service, severity=severity_from(a.severity),
                severity_unread=unread_severity(a.severity),
                summary=a.summary, description=a.description, labels=labels,
                annotations={"summary": a.summary, "description": a.description},
                starts_at=_when(a.starts_at), metrics=extract_metrics(a.metrics, labels),
                log_lines=extract_log_lines({"description": a.description}, a.logs)))
        return out


SOURCES: dict[str, type[AlertmanagerPayload] | type[PagerDutyPayload] | type[GenericPayload]] = {
    "alertmanager": AlertmanagerPayload, "grafana": GrafanaPayload, "pagerduty": PagerDutyPayload,
    "generic": GenericPayload,
}


def _inline(node: Any, defs: dict[str, Any]) -> Any:
    """The schema with every local ``$ref`` replaced by its definition (the payload models do not recurse)."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return _inline(defs[ref.removeprefix("#/$defs/")], defs)
        return {k: _inline(v, defs) for k, v in node.items() if k != "$defs"}
    if isinstance(node, list):
        return [_inline(v, defs) for v in node]
    return node


def payload_json_schema() -> dict[str, Any]:
    """JSON Schema of a delivery to any source (for the OpenAPI document), without references.

    The receiver reads the raw body itself (authentication comes before parsing), so FastAPI cannot derive
    this; which of the formats applies depends on the source in the path.
    """
    variants = []
    for model in (*SOURCES.values(), GenericAlert):
        schema = model.model_json_schema(mode="validation")
        variants.append(_inline(schema, schema.get("$defs", {})))
    return {"anyOf": variants, "description": "alertmanager and grafana: Alertmanager webhook v4 (Grafana adds "
            "a few fields); pagerduty: v3 webhook event; generic: {\"alerts\": [...]} or one alert"}


def _masked(a: NormalizedAlert) -> NormalizedAlert:
    """The alert with credentials in its texts masked: what is stored, shown on the card, indexed for search or
    sent to an LLM never carries a password an annotation quoted (the raw body is kept only until retention)."""
    changed = {"summary": mask_secrets(a.summary), "description": mask_secrets(a.description),
               "annotations": {k: mask_secrets(v) if isinstance(v, str) else v for k, v in a.annotations.items()},
               "log_lines": tuple(mask_secrets(x) for x in a.log_lines), "update_text": mask_secrets(a.update_text)}
    if all(v == getattr(a, k) for k, v in changed.items()):
        return a  # nearly every alert: no copy
    return dataclasses.replace(a, **changed)


def parse_payload(source: str, data: Any, *, mask: bool = True) -> list[NormalizedAlert]:
    """Validate and normalise (secrets in the texts masked, unless ``mask`` is False: the door only validates and
    counts, and stores the raw body; the processor parses again, masked, before anything is kept); raises
    pydantic.ValidationError on schema errors."""
    model = SOURCES[source]
    if source == "generic" and isinstance(data, dict) and "alerts" not in data:
        data = {"alerts": [data]}
    alerts = model.model_validate(data).normalise()  # type: ignore[attr-defined]
    return [_masked(a) for a in alerts] if mask else alerts


def delivery_id(source: str, data: Any) -> str | None:
    """A sender's own delivery id, when its format has one (used to refuse replays)."""
    if source == "pagerduty" and isinstance(data, dict):
        ev = data.get("event")
        if isinstance(ev, dict) and isinstance(ev.get("id"), str):
            return f"pagerduty:{ev['id']}"
    return None
