"""``risk``: the failure-risk card from a metrics snapshot (Slack ``/risk``, triage, the CLI).

``/risk service=checkout cpu=85 mem=90 disk=70 latency=120 errors=5 rt=300 conns=400 [incident=12]``
answers with the calibrated probability, the band, the inputs that drive it, what to do about each,
the model version, and a chart uploaded into the thread. When the service has earlier readings the
chart shows its recent window with the detector's dynamic threshold; otherwise the snapshot.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re

from sqlalchemy import select

from knowledge.models import Incident, Service, utcnow
from knowledge.people import services_in_text
from knowledge.risk_store import add_reading, latest_per_service, recent_readings
from models.risk_artifact import MODEL_SUBDIR
from models.risk_features import ALIASES
from skills.base import (
    Attachment,
    BaseSkill,
    Finding,
    IncidentFacts,
    Section,
    SkillContext,
    SkillRequest,
    SkillResult,
    duration,
    esc,
    small_int,
)
from skills.risk_engine import (
    BY_NAME,
    WARN_LEVELS,
    Assessment,
    MetricWindow,
    RiskEngine,
    RiskInputError,
    canonical_name,
    get_engine,
    validate_snapshot,
    validate_window,
)

__all__ = ["RiskSkill", "parse_command", "card_lines", "pct"]

USAGE = ("Usage: `/risk service=<name> cpu=<0-100> mem=<0-100> [disk=<0-100>] [latency=<ms>] [errors=<n>] "
         "[rt=<ms>] [conns=<n>] [incident=<id>]` — at least two metrics (85%, 250ms, 1.2s and 1.5k are "
         "understood); or `/risk <service>` for the metrics it last reported; `/risk all`: every service's last.")
_TOKEN = re.compile(r"^([A-Za-z_][\w.-]*)=(.*)$")
# Every service at once: "which services are at risk?", "what's at risk right now?", "riskiest services", "risk
# overview"; `/risk all` (or overview, top)
_OVERVIEW = re.compile(
    r"^\W*(?:(?:which|what)\s+(?:services?|systems?)\s+(?:are|is)\s+(?:(?:most\s+)?at\s+(?:high\s+|any\s+)?risk|risky"
    r"|(?:most\s+)?likely\s+to\s+(?:fail|break|go\s+down))"
    r"|(?:what|anything)(?:'s|\s+is)?\s+at\s+risk|(?:which|what)(?:'s|\s+is)?\s+(?:the\s+)?riskiest"
    r"|(?:show\s+(?:me\s+)?)?(?:the\s+)?(?:riskiest\s+services?|risk\s+(?:overview|summary|board|ranking|of\s+all"
    r"(?:\s+services)?)|failure\s+risk\s+(?:overview|of\s+all(?:\s+services)?)))", re.I)
_OVERVIEW_HOURS = 24
# One metric of one service, asked: "what's the error rate on payments-api?", "how much memory is kafka using?",
# "what's the cpu of ingest?" (they went to the knowledge base): its last reported value, and the risk from them
_METRIC_WORDS = {"cpu": "cpu_usage", "memory": "memory_usage", "mem": "memory_usage", "ram": "memory_usage",
                 "disk": "disk_usage", "latency": "network_latency_ms", "error rate": "error_count",
                 "errors": "error_count", "error count": "error_count", "response time": "response_time_ms",
                 "p99": "response_time_ms", "connections": "active_connections", "conns": "active_connections"}
_METRIC_ALT = "|".join(re.escape(w).replace("\\ ", r"\s+") for w in sorted(_METRIC_WORDS, key=len, reverse=True))
_METRIC_ASKED = re.compile(
    rf"^\W*(?:what(?:'s|\s+is|\s+are)\s+(?:the\s+)?(?:current\s+)?(?P<m>{_METRIC_ALT})(?:\s+(?:usage|use|utili[sz]ation))?"
    rf"\s+(?:on|of|for|at|in)\s+(?:the\s+)?(?P<s>[\w.-]+)"
    rf"|how\s+(?:much|many)\s+(?P<m2>{_METRIC_ALT})\s+(?:is|are|does|do)\s+(?:the\s+)?(?P<s2>[\w.-]+)\s+(?:using|use|"
    rf"have|has|getting|throwing))", re.I)
# Under an incident's card, no service named: "what's the error rate now?", "what's the latency looking like?" (the
# knowledge base's runbook passage): the incident's service
_METRIC_HERE = re.compile(rf"^\W*+(?:what(?:'s|\s+is|\s+are)|how(?:'s|\s+is|\s+are))\s+(?:the\s+|our\s+)?"
                          rf"(?:current\s+)?(?P<m>{_METRIC_ALT})(?:\s+(?:usage|use|utili[sz]ation))?"
                          r"(?:\s+(?:now|right\s+now|currently|at\s+the\s+moment|like|looking(?:\s+like)?|doing))*\W*$",
                          re.I)
# a metric said in words: "cpu 95", "cpu at 95%", "memory is 90", "p99 of 2.4s", "errors: 120"
_SAID = re.compile(r"\b(" + "|".join(re.escape(a) for a in sorted(ALIASES, key=len, reverse=True)) +
                   r")(?:\s*[:=]\s*|\s+(?:at|is|of|=)\s+|\s+)(\d+(?:\.\d+)?(?:\s?(?:%|percent\b|ms\b|milliseconds?\b"
                   r"|millis\b|s\b|secs?\b|seconds?\b|k\b))?)(?![\w.])", re.I)
_MIN_HISTORY = 8
_COMMA_NUMBER = re.compile(r"\b[A-Za-z_][\w.-]*=[+-]?(\d+),(\d+)\b")
# Units people write after a number: "cpu=85%", "latency=250ms", "rt=1.2s", "conns=1.5k". Each converts to the
# metric's own unit; one that does not fit the metric (cpu=250ms) is refused by name, never guessed.
_WITH_UNIT = re.compile(r"^([+-]?(?:\d+(?:\.\d*)?|\.\d+))\s*([a-zµ%]+|/(?:min|m|s|sec))$", re.I)
_UNITS = {"%": ("%", 1.0), "percent": ("%", 1.0), "ms": ("ms", 1.0), "millis": ("ms", 1.0),
          "millisecond": ("ms", 1.0), "milliseconds": ("ms", 1.0), "s": ("ms", 1000.0), "sec": ("ms", 1000.0),
          "secs": ("ms", 1000.0), "second": ("ms", 1000.0), "seconds": ("ms", 1000.0), "us": ("ms", 0.001),
          "µs": ("ms", 0.001), "k": ("count", 1000.0), "/min": ("/min", 1.0), "/m": ("/min", 1.0),
          "/s": ("/min", 60.0), "/sec": ("/min", 60.0)}


def _in_metric_unit(key: str, value: str) -> str | float:
    """``value`` in the metric's unit when it carries one of :data:`_UNITS`, else as given (checked later)."""
    m = _WITH_UNIT.match(value.strip())
    name = canonical_name(key)
    if m is None or name is None:
        return value
    unit = BY_NAME[name].unit
    if m.group(2).lower() not in _UNITS:  # "mem=7.5GB": a size is no share of memory; never guessed
        raise RiskInputError(f"{key}={value[:40]!r}: {BY_NAME[name].label} is in {unit}; `{m.group(2)[:10]}` is not "
                             "a unit I convert (%, ms, s, k, /min, /s)")
    kind, scale = _UNITS[m.group(2).lower()]
    fits = unit == kind or (kind == "count" and unit not in ("%", "ms")) or (kind == "/min" and unit.endswith("/min"))
    if not fits:
        raise RiskInputError(f"{key}={value[:40]!r}: {BY_NAME[name].label} is in {unit}, not {m.group(2)}")
    return float(m.group(1)) * scale


def parse_command(text: str) -> tuple[str | None, int | None, dict[str, float]]:
    """``service``, ``incident`` and validated metrics from ``/risk`` text; errors name the bad part."""
    service: str | None = None
    incident: int | None = None
    raw: dict[str, str | float] = {}
    if comma := _COMMA_NUMBER.search(text):  # "cpu=85,5" (a decimal comma) or "conns=1,500": one number, not two
        raise RiskInputError(f"{comma.group(0)[:40]!r}: a comma inside a number reads two ways (85,5 or 1,500); "
                             f"write it with a point or without the comma ({comma.group(1)}.{comma.group(2)} or "
                             f"{comma.group(1)}{comma.group(2)})")
    for tok in text.replace(",", " ").split():
        m = _TOKEN.match(tok)
        if m is None:
            if tok.startswith("#") and (n := small_int(tok[1:])) is not None:
                incident = n
                continue
            raise RiskInputError(f"I do not understand {tok[:40]!r}: write metrics as name=value. {USAGE}")
        key, value = m.group(1).lower(), m.group(2)
        if key == "service":
            if not re.fullmatch(r"[\w.-]{1,100}", value):
                raise RiskInputError(f"service={value[:40]!r} is not a service name (letters, digits, . _ -)")
            service = value
        elif key in ("incident", "inc"):
            if (n := small_int(value.lstrip("#"))) is None:
                raise RiskInputError(f"incident={value[:40]!r} is not an incident number")
            incident = n
        elif key in raw:
            raise RiskInputError(f"{key} is given twice")
        else:
            raw[key] = _in_metric_unit(key, value)
    return service, incident, validate_snapshot(raw)


def pct(p: float) -> str:
    """A probability for people: never a flat 0 % or 100 % (the model is calibrated, not certain)."""
    return ">99%" if p >= 0.995 else ("<1%" if p <= 0.005 else f"{p * 100:.0f}%")


def card_lines(a: Assessment) -> tuple[str, ...]:
    """The factor lines of a card: value and how much it moves the probability."""
    lines = [f"• {f.label} {f.value:g} {f.unit}: +{f.contribution * 100:.0f} pts" for f in a.top_factors]
    return tuple(lines) or ("• no single input stands out; the combination is what the model sees",)


class RiskSkill(BaseSkill):
    """Estimate the failure risk of a service from its metrics: `/risk service=api cpu=85 mem=90`."""

    name = "risk"
    commands = ("/risk",)
    keywords = ("failure risk", "risk of failure", "will it fail", "predict failure", "cpu=", "mem=")

    def score(self, text: str) -> float:
        """Keywords; "is payments-api at risk?" is mine too (answered from its last metrics)."""
        if _METRIC_ASKED.match(text):  # "what's the error rate on payments-api?"
            return 0.8
        if _METRIC_HERE.match(text):  # "what's the error rate now?", "how's the latency looking?" under a card: its
            return 0.92  # service's (above the incident's and health status words and the how-to questions)
        if len(_SAID.findall(text)) >= 2:  # "cpu 95% mem 90% on payments-api, should I worry?" (the knowledge base's)
            return 0.75
        return max(0.7 if re.search(r"\bat risk\b|\brisk (?:for|on)\b", text, re.I) or _OVERVIEW.match(text) else 0.0,
                   super().score(text))
    examples = ("/risk service=checkout cpu=92 mem=88 errors=40", "/risk service=api disk=97 rt=900 #12", "/risk all",
                "@warroom what's the error rate on payments-api?")
    usage = USAGE

    def warm(self, ctx: SkillContext) -> None:
        """Load the model, training it first (about ten seconds) when none was saved. In test mode a
        missing model is trained at first use instead, so other skills' tests do not pay for it."""
        if getattr(ctx.settings, "mode", "") == "test" and not (ctx.model_dir / MODEL_SUBDIR).is_dir():
            return
        get_engine(ctx.model_dir)

    def engine(self, ctx: SkillContext) -> RiskEngine:
        return get_engine(ctx.model_dir)

    def run(self, request: SkillRequest, ctx: SkillContext) -> SkillResult:
        text = request.text.strip()
        if not text or text.lower() in ("help", "?"):
            return SkillResult(title="risk: how to ask", summary=USAGE, ephemeral=True)
        if (request.source == "command" and text.lower() in ("all", "overview", "top")) or (
                request.source != "command" and _OVERVIEW.match(text)):
            return self._overview(ctx)
        if request.source != "command" and (m := _METRIC_ASKED.match(text)):  # "what's the error rate on X?"
            return self._metric(ctx, m.group("m") or m.group("m2"), m.group("s") or m.group("s2"), text)
        if request.source != "command" and (m := _METRIC_HERE.match(text)):  # under a card: its service's
            with ctx.db.session() as s:
                inc = s.get(Incident, request.incident_id) if request.incident_id is not None else None
                service = inc.service_name if inc is not None else None
            if not service:
                said = esc(" ".join(m.group("m").lower().split()))
                raise RiskInputError(f"Of which service? e.g. `what's the {said} on payments-api?` (under an "
                                     "incident's card: its service).")
            return self._metric(ctx, m.group("m"), service, text)
        # "cpu 95", "cpu at 95%", "memory is 90", "latency 2 seconds" are name=value parts (they were dropped: its
        # last metrics answered instead), in a command too
        text = _SAID.sub(lambda m: m.group(1) + "=" + "".join(m.group(2).split()), text)
        if request.source != "command":
            # Free text ("@warroom risk for api cpu=92 mem=88"): only the name=value parts count
            words = [t.rstrip("?.!,;:") for t in text.split()]
            text = " ".join(t for t in words if "=" in t or (t.startswith("#") and small_int(t[1:]) is not None))
        elif (first := text.split(maxsplit=1)) and "=" not in first[0] and not first[0].startswith("#") \
                and len(text.split()) > 1:
            text = f"service={text}"  # "/risk payments-api cpu=95 mem=90": the service first, as `/risk <service>`
        if not any((m := _TOKEN.match(t)) and m.group(1).lower() not in ("service", "incident", "inc")
                   for t in text.replace(",", " ").split()):
            latest = self._latest(ctx, text if request.source == "command" else request.text)
            if latest is not None:  # "/risk payments-api", "is payments-api at risk?": its last metrics
                return latest
        service, incident, snapshot = parse_command(text)
        if service is None and request.source != "command":  # "@warroom risk for payments-api cpu=95"
            with ctx.db.session() as s:
                named = services_in_text(session=s, text=request.text)
            service = named[0] if named else None
        incident = incident or request.incident_id
        engine = self.engine(ctx)
        history = self._history(ctx, service)
        window = None
        if len(history) >= _MIN_HISTORY:
            window = self._window(history + [snapshot])
        a = engine.assess(snapshot, window)
        self._record(ctx, a, service, incident, request.source)
        return self._card(a, service, incident, window)

    def _latest(self, ctx: SkillContext, text: str) -> SkillResult | None:
        """A service named without metrics: assessed again from the metrics it last reported (alert, API or
        command), saying when; None when no service is named."""
        with ctx.db.session() as s:
            given = re.search(r"\bservice=([\w.-]{1,100})", text) or re.fullmatch(r"\s*([\w.-]{1,100})\s*", text)
            named = [given.group(1)] if given else services_in_text(session=s, text=text)
            if not named:
                return None
            rows = recent_readings(s, service_name=named[0], limit=1)
        if not rows or not isinstance(rows[-1].inputs, dict) or not rows[-1].inputs:
            raise RiskInputError(f"I have no metrics from {named[0]} yet. {USAGE}")
        last, service = rows[-1], named[0]
        history = self._history(ctx, service)
        window = self._window(history) if len(history) >= _MIN_HISTORY else None
        a = self.engine(ctx).assess(validate_snapshot(last.inputs), window)
        minutes = max(0, int((utcnow() - last.created_at).total_seconds() // 60))
        ago = (f"{minutes} min" if minutes < 120 else f"{minutes // 60} h" if minutes < 2880
               else f"{minutes // 1440} days")
        stale = " *Stale*: send current metrics for a current answer." if minutes > 60 else ""
        card = self._card(a, service, last.incident_id, window)
        return dataclasses.replace(card, summary=f"From the metrics {service} last reported ({ago} ago, via "
                                   f"{last.source}):{stale} " + card.summary)

    def _metric(self, ctx: SkillContext, word: str, named: str, text: str) -> SkillResult:
        """One metric a service last reported (alert, API or command), with its age, then the risk those metrics
        give (the ``/risk <service>`` card)."""
        metric = _METRIC_WORDS[" ".join(word.lower().split())]
        with ctx.db.session() as s:  # "the latency of our postgres-main": the service named anywhere first
            found = services_in_text(session=s, text=text) or services_in_text(session=s, text=named) or [named.lower()]
            rows = recent_readings(s, service_name=found[0], limit=1)
        if not rows or not isinstance(rows[-1].inputs, dict) or not rows[-1].inputs:
            raise RiskInputError(f"I have no metrics from {esc(found[0])} yet: I read the values alerts carry, "
                                 f"`POST /api/v1/risk` and `/risk {esc(found[0])} cpu=.. mem=..`; your dashboards have "
                                 "the live ones.")
        last, m = rows[-1], BY_NAME[metric]
        ago = duration((utcnow() - last.created_at).total_seconds())
        value = last.inputs.get(metric)
        said = (f"*{m.label}* of {esc(found[0])}: *{value:g} {m.unit}*, last reported {ago} ago via "
                f"{esc(last.source)}" if isinstance(value, int | float) else
                f"{esc(found[0])} did not report its {m.label} ({ago} ago via {esc(last.source)}: "
                f"{', '.join(esc(k) for k in sorted(last.inputs))})")
        card = self._latest(ctx, found[0])
        return dataclasses.replace(card, summary=f"{said}. " + (card.summary if card else ""))

    @staticmethod
    def _overview(ctx: SkillContext) -> SkillResult:
        """Every service's last reading of the past ``_OVERVIEW_HOURS`` hours, most likely to fail first: what was
        assessed then (with its age), not a new guess from old metrics."""
        now = utcnow()
        with ctx.db.session() as s:
            rows = latest_per_service(s, since=now - dt.timedelta(hours=_OVERVIEW_HOURS))
            known = list(s.scalars(select(Service.name).order_by(Service.name)))
        lines = []
        for r in rows[:25]:
            age = max(0.0, (now - r.created_at).total_seconds())
            top = max((f for f in (r.factors or []) if isinstance(f, dict) and f.get("contribution", 0) > 0),
                      key=lambda f: f["contribution"], default=None)
            metric = BY_NAME.get(str(top.get("metric"))) if top else None
            why = (f" · mostly {metric.label} {top['value']:g} {metric.unit}" if metric and isinstance(
                top.get("value"), int | float) else "")
            stale = " · *stale*" if age > 3600 else ""
            lines.append(f"*{esc(r.service_name or '')}* {r.band} ({pct(r.probability)}){why} · "
                         f"{duration(age)} ago via {esc(r.source)}{stale}")
        if len(rows) > 25:
            lines.append(f"… and {len(rows) - 25} more.")
        seen = {r.service_name for r in rows}
        quiet = [n for n in known if n not in seen]
        sections = [Section("Last assessment of each service, most likely to fail first", tuple(lines))] if lines \
            else []
        if quiet:
            sections.append(Section(f"No metrics in the last {_OVERVIEW_HOURS} h", (
                ", ".join(esc(n) for n in quiet[:30]) + (f" and {len(quiet) - 30} more" if len(quiet) > 30 else ""),)))
        summary = (f"{len(rows)} service(s) assessed in the last {_OVERVIEW_HOURS} h. A reading older than an hour is "
                   "marked stale; `/risk <service>` assesses one again, with the trend of its recent metrics."
                   if rows else f"No service reported metrics in the last {_OVERVIEW_HOURS} h (alerts with "
                   "metric values, `POST /api/v1/risk`, `/risk service=... cpu=... mem=...` do).")
        return SkillResult(title="Failure risk by service", summary=summary, sections=tuple(sections),
                           data={"services": [{"service": r.service_name, "probability": round(r.probability, 4),
                                               "band": r.band, "at": r.created_at.isoformat() + "Z"} for r in rows]})

    def _history(self, ctx: SkillContext, service: str | None) -> list[dict[str, float]]:
        if not service:
            return []
        with ctx.db.session() as s:
            rows = recent_readings(s, service_name=service, limit=59)
            return [dict(r.inputs) for r in rows if isinstance(r.inputs, dict)]

    @staticmethod
    def _window(samples: list[dict[str, float]]) -> MetricWindow | None:
        # Metrics present in every sample of the recent history form the window.
        common = set(samples[-1]).intersection(*samples)
        if not common:
            return None
        return validate_window({k: [s[k] for s in samples] for k in sorted(common)})

    @staticmethod
    def _record(ctx: SkillContext, a: Assessment, service: str | None, incident: int | None, source: str) -> None:
        factors = [{"metric": f.metric, "value": f.value, "contribution": round(f.contribution, 4)}
                   for f in a.factors]
        with ctx.db.session() as s:
            if incident is not None:
                from knowledge.models import Incident

                if s.get(Incident, incident) is None:
                    raise RiskInputError(f"there is no incident #{incident}")
            add_reading(s, probability=a.probability, band=a.band, model_version=a.model_version, source=source,
                        inputs=a.inputs, factors=factors, service_name=service, incident_id=incident)

    def _card(self, a: Assessment, service: str | None, incident: int | None,
              window: MetricWindow | None) -> SkillResult:
        who = service or "this service"
        title = f"Failure risk: {who} — {a.band} ({pct(a.probability)})"
        summary = (f"Probability of a failure within the next hour: *{pct(a.probability)}* ({a.band}).")
        if a.missing:
            summary += f" Not given (assumed healthy): {', '.join(a.missing)}."
        sections = [Section("What drives it", card_lines(a))]
        recs = tuple(f"• {f.recommendation}" for f in a.top_factors)
        if recs:
            sections.append(Section("What to do", recs))
        if a.anomalies or a.early_warnings:
            sections.append(Section("Detector", (
                f"• outside the dynamic threshold: {', '.join(a.anomalies) or 'none'}",
                f"• early warnings: {', '.join(a.early_warnings) or 'none'}")))
        fields = (("Probability", pct(a.probability)), ("Band", a.band), ("Model", a.model_version))
        # matplotlib on first use, not at start-up (a second of import before the bot can acknowledge anything)
        from models.risk_chart import snapshot_chart, window_chart

        if window is not None and a.panels:
            png = window_chart(f"{who}: recent window, dynamic threshold and flagged points", a.panels)
        else:
            contrib = {f.label: f.contribution for f in a.factors}
            png = snapshot_chart(f"{who}: {a.band} ({pct(a.probability)})",
                                 {k: v for k, v in a.inputs.items()}, WARN_LEVELS, contrib)
        data = {"risk": a.as_dict(), "service": service}
        if incident is not None:
            data["refresh_card"] = incident
        return SkillResult(title=title, summary=summary, fields=fields, sections=tuple(sections),
                           attachments=(Attachment(f"risk-{service or 'snapshot'}.png", png, f"Failure risk: {who}"),),
                           data=data)

    def triage(self, facts: IncidentFacts, ctx: SkillContext) -> Finding | None:
        """The risk line of the incident card, when the alert carried metrics."""
        known = {k: v for k, v in facts.metrics.items() if k in WARN_LEVELS}
        if len(known) < 1:
            return None
        try:
            snapshot = validate_snapshot(known, min_metrics=1)
        except RiskInputError as exc:
            return Finding(skill=self.name, heading="Failure risk: not assessed", lines=(str(exc),))
        a = self.engine(ctx).assess(snapshot)
        self._record(ctx, a, facts.service, facts.incident_id, "triage")
        lines = (f"{a.band}: {pct(a.probability)} chance of failure within the hour", *card_lines(a)[:3],
                 *(f"→ {f.recommendation}" for f in a.top_factors[:2]),
                 *((f"not in the alert (assumed healthy): {', '.join(a.missing)}",) if a.missing else ()),
                 f"model {a.model_version}")
        return Finding(skill=self.name, heading=f"Failure risk: {a.band} ({pct(a.probability)})", lines=lines,
                       data=a.as_dict())
