"""``/logs``: what matters in pasted or uploaded log lines (severity, failure category, templates, new)."""

from __future__ import annotations

import csv
import dataclasses
import io
import re
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import select

from knowledge.models import Incident
from skills.base import (
    Attachment,
    BaseSkill,
    Finding,
    IncidentFacts,
    Section,
    SkillContext,
    SkillError,
    SkillRequest,
    SkillResult,
)
from skills.log_engine import (
    SEVERITY_RANK,
    LogAnalyzer,
    LogReport,
    NotLogs,
    TemplateSummary,
    decode_log_bytes,
    decompress_bounded,
    get_model,
    split_paste,
)
from skills.log_news import NEWS_ASKED, log_news
from skills.redact import mask_secrets

__all__ = ["LogsSkill", "FILE_FETCHER", "SHOWN_TEMPLATES", "MAX_FILE_BYTES"]

# ctx.resources key: a callable(file_id) -> (filename, bytes) the bot installs (only bot/ talks to Slack).
FILE_FETCHER = "slack.file_fetcher"
SHOWN_TEMPLATES = 8
MAX_FILE_BYTES = 50 * 1024 * 1024
_ORDER = ("FATAL", "ERROR", "WARNING", "INFO", "DEBUG")
_HELP = ("Paste log lines after `/logs` (one per line; a code block is fine), use the message shortcut "
         "*Classify these logs* on a message, or upload a log file in an incident channel.")


def _esc(text: str, limit: int = 160) -> str:
    text = text if len(text) <= limit else text[: limit - 1] + "…"
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("`", "'")


def _line(t: TemplateSummary) -> str:
    new = " :new: *new*" if t.new else ""
    return f"`{t.severity}` ×{t.count} [{t.category}]{new} `{_esc(t.template)}`\n    e.g. `{_esc(t.example, 200)}`"


def _counts(report: LogReport) -> str:
    return ", ".join(f"{report.severity_counts[s]:,} {s}" for s in _ORDER if report.severity_counts.get(s))


def _cell(text: str) -> str:
    """A log text as a spreadsheet cell that stays text: a line beginning with ``=``, ``+``, ``-``, ``@``, a tab
    or a carriage return is a formula to Excel and LibreOffice (``=HYPERLINK(...)`` in a pasted log became a
    link in the CSV the bot uploads), so it gets a leading ``'``, as OWASP's CSV-injection advice says."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _templates_csv(report: LogReport) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["template_id", "severity", "category", "count", "new", "template", "example"])
    for t in report.templates:
        w.writerow([t.template_id, t.severity, t.category, t.count, int(t.new), _cell(t.template), _cell(t.example)])
    return buf.getvalue().encode("utf-8")


_PASTED = re.compile(r"^\W*+(\S+\s+){0,4}\[?(FATAL|CRITICAL|ERROR|WARN|WARNING|INFO|DEBUG|PANIC)\]?[:\s]"
                     r"|^Traceback \(most recent call last\)|^Exception in thread ")


# A question or an instruction before a paste: "is this bad? kernel: EXT4-fs error ...", "what does this error mean:
# java.lang.OutOfMemoryError ...", "classify this log: ERROR ..." (the words were read as part of the first line, or
# the question went to the knowledge base and the lines were never classified)
_ASKED = re.compile(
    r"^\W*(?:(?:please\s+|can\s+you\s+|could\s+you\s+)?(?:classify|analy[sz]e|triage|explain|check)\s+(?:this|these|the"
    r"|my|those)\s+(?:log\s*(?:lines?|file|output|messages?)?s?|lines?|errors?|exceptions?|output|messages?|(?:stack\s*)?"
    r"traces?|tracebacks?)"
    r"|what\s+does\s+this\s+(?:error\s+|log\s+|line\s+|message\s+|exception\s+|trace\s+|output\s+|warning\s+)?"
    r"(?:line\s+|message\s+)?mean"
    r"|what(?:'s|\s+is)\s+this\s+(?:error|exception|warning|log\s+line|message)"
    r"|is\s+this\s+(?:error\s+|log\s+|line\s+|warning\s+|message\s+)?(?:bad|serious|normal|ok|okay|fine|a\s+problem"
    r"|critical|important|expected|harmless)"
    r"|should\s+(?:i|we)\s+(?:worry|be\s+worried|care)\s+about\s+(?:this|these)(?:\s+(?:errors?|lines?|logs?))?)"
    r"[\s?:.!,\-\u2013\u2014]*", re.I)
_SEEN = 3  # knowledge-base passages shown under a paste
# "show me the logs for payments-api", "get the latest logs from ingest": the bot has no log store (it got the help)
_FETCH_ASKED = re.compile(r"^\W*(?:(?:can|could)\s+you\s+)?(?:show|get|give|pull|fetch|grab|find)\s+(?:me\s+)?"
                          r"(?:the\s+)?(?:recent\s+|latest\s+|last\s+|error\s+)*logs?\s+(?:for|of|from|on|in)\s+(?:the\s+)?"
                          r"(?P<svc>[\w.-]{1,100})", re.I)


def _shared_words(why: str) -> int:
    """How many words a search hit shares with the query ("words: fatal, slots; meaning 0.35": 2); one common word
    ("reading") makes no past incident."""
    m = re.search(r"words:\s*([^;]*)", why)
    return len([w for w in m.group(1).split(",") if w.strip()]) if m else 0


def asked_about(text: str) -> str | None:
    """The pasted part of a question about a paste ("is this bad? <lines>"), or None when ``text`` is not one."""
    m = _ASKED.match(text)
    rest = text[m.end():].strip() if m else ""
    return rest if len(rest.strip("`\n ")) >= 8 else None


class LogsSkill(BaseSkill):
    """Classify log lines: severity, failure category, templates, and which ones were never seen before."""

    name = "logs"
    commands = ("/logs",)
    keywords = ("log lines", "these logs", "classify logs", "classify these logs", "stack trace", "traceback",
                "log file")
    examples = ("/logs ERROR db-1 connection refused ...", "message shortcut: Classify these logs")
    usage = ("Usage: `/logs <pasted lines>`, `@warroom <pasted lines>`, the message shortcut *Classify these logs*, "
             "or a log file uploaded in an incident channel (`.gz`, `.bz2`, `.xz` too)")

    def score(self, text: str) -> float:
        """Keywords, or pasted log lines: a level in capitals among a line's first words
        ("2026-11-23 14:02:11 ERROR db-1 ..."), or a traceback. A question about errors is not a paste."""
        if asked_about(text) is not None or _FETCH_ASKED.match(text) or NEWS_ASKED.match(text):
            return 0.92  # above the knowledge base's questions: the lines come first
        lines = [ln for ln in text.splitlines() if _PASTED.search(ln)]
        if len(lines) >= 2 or (lines and not text.rstrip().endswith("?")):
            return 0.9  # above free-text incident words: "ERROR job #42 status=failed" is a log line
        return super().score(text)

    def warm(self, ctx: SkillContext) -> None:
        """Load (or train once from the bundled examples) the classifier."""
        get_model(ctx)

    # --- doors ---------------------------------------------------------------------------------------
    def run(self, request: SkillRequest, ctx: SkillContext) -> SkillResult:
        if request.source in ("mention", "dm") and (want := _FETCH_ASKED.match(request.text)):
            return self._where_logs_are(ctx, want.group("svc"))
        if request.source in ("mention", "dm") and NEWS_ASKED.match(request.text):  # "what's new in the logs?"
            with ctx.db.session() as s:
                return log_news(s, request.text)
        pasted = request.text
        if request.source in ("mention", "dm", "command") and (rest := asked_about(pasted)) is not None:
            pasted = rest  # "is this bad? <lines>": the lines
        texts = [pasted] + self._file_texts(request.data.get("files") or [], ctx)
        incident_id = request.incident_id or self.incident_for_channel(ctx, request.channel_id)
        result = self.analyze_texts(texts, ctx, incident_id=incident_id,
                                    truncated=bool(request.data.get("truncated")))
        return self._with_seen_before(result, ctx, incident_id)

    @staticmethod
    def _where_logs_are(ctx: SkillContext, named: str) -> SkillResult:
        """The bot reads logs it is given, it holds no log store: how to give them, and the log and dashboard links
        people put on the service's open incidents ("logs: <url>" under a card)."""
        from knowledge.people import OPEN_STATUSES, services_in_text
        from skills.incident import link_text

        with ctx.db.session() as s:
            service = (services_in_text(session=s, text=named) or [named.lower()])[0]
            rows = s.scalars(select(Incident).where(Incident.service_name == service,
                                                    Incident.status.in_(OPEN_STATUSES)).limit(20)).all()
            links = [(r.id, x) for r in rows for x in ((r.findings or {}).get("links") or [])
                     if re.search(r"logs?|kibana|loki|grafana|dashboard|sentry|trace", str(x.get("label", "")) + " "
                                  + str(x.get("url", "")), re.I)]
        lines = tuple(f"#{i}: {link_text(x)}" for i, x in links[:10])
        return SkillResult(title=f"Logs of {service}", summary=(
            f"I do not read {_esc(service)}'s logs myself: I classify what I am given. Paste the lines after `/logs` "
            "(or mention me with them), upload a log file in the incident's channel, or use *Classify these logs* on a "
            "message; alerts that carry log lines are classified on their card."), sections=(
            (Section("Log and dashboard links on its open incidents", lines),) if lines else ()))

    @staticmethod
    def _with_seen_before(result: SkillResult, ctx: SkillContext, incident_id: int | None) -> SkillResult:
        """The knowledge base's closest past incidents, postmortems and runbooks for the worst lines ("have we seen
        this before?" is the next question): what they were, and the fix that worked."""
        from knowledge.search import KINDS, SearchError, search
        from skills.ask import relevant
        from skills.similar import collapse, hit_lines

        report = result.data.get("report") or {}
        examples = [str(t.get("example") or "") for t in (report.get("templates") or [])[:3]]
        query = mask_secrets(" ".join(e for e in examples if e))[:2000]
        if not query.strip():
            return result
        try:
            hits = search(ctx, text=query, kinds=KINDS, k=8,
                          exclude=(f"incident:{incident_id}",) if incident_id is not None else ())
        except SearchError:  # the index is rebuilding or the query has no words: the classification stands
            return result
        found = [h for h in collapse(hits) if relevant(h) and (h.dense >= 0.3 or _shared_words(h.why) >= 2)][:_SEEN]
        if not found:
            return dataclasses.replace(result, sections=result.sections + (
                Section("Seen before?", ("nothing close in the knowledge base (incidents, postmortems, runbooks)",)),))
        lines = tuple(x for i, h in enumerate(found, 1) for x in hit_lines(ctx, i, h))
        return dataclasses.replace(result, sections=result.sections + (Section("Seen before?", lines),))

    def handle_action(self, action_id: str, request: SkillRequest, ctx: SkillContext) -> SkillResult | None:
        """The message shortcut ``logs:classify``: classify the message's text and attached files."""
        if action_id != "logs:classify":
            return None
        files = request.data.get("files") or []
        texts = [str(request.data.get("value") or request.text or "")] + self._file_texts(files, ctx)
        incident_id = self.incident_for_channel(ctx, request.channel_id)
        return self._with_seen_before(self.analyze_texts(texts, ctx, incident_id=incident_id), ctx, incident_id)

    def triage(self, facts: IncidentFacts, ctx: SkillContext) -> Finding | None:
        """Classify the log lines an alert carried; None when it carried none."""
        lines, _notes = split_paste("\n".join(facts.log_lines))
        if not lines:
            return None
        analyzer = LogAnalyzer(get_model(ctx))
        analyzer.feed(lines)
        report = analyzer.report(ctx, incident_id=facts.incident_id)
        return self._finding(report)

    # --- work ------------------------------------------------------------------------------------------
    def analyze_texts(self, texts: Sequence[str], ctx: SkillContext, *, incident_id: int | None = None,
                      truncated: bool = False, notes: Sequence[str] = ()) -> SkillResult:
        """Analyse pasted text(s) and build the result; stores the finding on the incident if any."""
        lines: list[str] = []
        notes = list(notes) + (["your paste was cut by the size limit of a Slack message"] if truncated else [])
        for text in texts:
            got, more = split_paste(text)
            lines += got
            notes += more
        if not lines:
            raise SkillError("I found no log lines to classify. " + _HELP)
        analyzer = LogAnalyzer(get_model(ctx), notes=notes)
        analyzer.feed(lines)
        report = analyzer.report(ctx, incident_id=incident_id)
        data: dict[str, Any] = {"report": report.to_dict()}
        if incident_id is not None and self._store_finding(ctx, incident_id, report):
            data["refresh_card"] = incident_id
        return self._result(report, data)

    def analyze_file(self, name: str, data: bytes, ctx: SkillContext, *,
                     incident_id: int | None = None) -> SkillResult:
        """Analyse an uploaded file's bytes (binary files and huge files get a clear refusal)."""
        if len(data) > MAX_FILE_BYTES:
            raise SkillError(f"`{_esc(name)}` is larger than {MAX_FILE_BYTES // 2**20} MB; "
                             "use `warroom logs classify FILE` on the host instead.")
        try:
            data, unpacked = decompress_bounded(data, MAX_FILE_BYTES)
            text, notes = decode_log_bytes(data)
        except NotLogs as exc:
            raise SkillError(f"`{_esc(name)}`: {exc}.") from None
        result = self.analyze_texts([text], ctx, incident_id=incident_id, notes=unpacked + notes)
        return dataclasses.replace(result, title=f"Log classification: {_esc(name, 80)}")

    def _file_texts(self, files: Sequence[Any], ctx: SkillContext) -> list[str]:
        fetch: Callable[[str], tuple[str, bytes]] | None = ctx.resources.get(FILE_FETCHER)
        out: list[str] = []
        for f in files[:5]:
            fid = f.get("id") if isinstance(f, dict) else None
            if not fid:
                continue
            if fetch is None:
                raise SkillError("I cannot read attached files here; paste the lines instead.")
            name, data = fetch(str(fid))
            if len(data) > MAX_FILE_BYTES:
                raise SkillError(f"`{_esc(name)}` is larger than {MAX_FILE_BYTES // 2**20} MB; "
                                 "use `warroom logs classify FILE` on the host instead.")
            try:
                data, _unpacked = decompress_bounded(data, MAX_FILE_BYTES)
                text, _notes = decode_log_bytes(data)  # replaced bytes show up as U+FFFD in examples
            except NotLogs as exc:
                raise SkillError(f"`{_esc(name)}`: {exc}.") from None
            out.append(text)
        return out

    @staticmethod
    def incident_for_channel(ctx: SkillContext, channel: str | None) -> int | None:
        """The one open incident whose channel this is (None when none, or when several share it)."""
        if not channel:
            return None
        with ctx.db.session() as s:
            ids = s.scalars(select(Incident.id).where(
                Incident.channel_id == channel, Incident.status.in_(("open", "acknowledged", "mitigated")))
                .order_by(Incident.id.desc()).limit(2)).all()
        return ids[0] if len(ids) == 1 else None

    def _finding(self, report: LogReport) -> Finding:
        worst = report.templates[0].severity if report.templates else "INFO"
        n, t = report.n_lines, len(report.templates)
        heading = (f"Logs: {n:,} line{'s' * (n != 1)}, {t} template{'s' * (t != 1)}, worst {worst}"
                   + (f", {len(report.new_templates)} new" if report.new_templates else ""))
        top = [t for t in report.templates if SEVERITY_RANK[t.severity] >= 2][:3] or list(report.templates[:2])
        return Finding(skill=self.name, heading=heading, lines=tuple(_line(t) for t in top),
                       data=report.to_dict(top=5))

    def _store_finding(self, ctx: SkillContext, incident_id: int, report: LogReport) -> bool:
        f = self._finding(report)
        with ctx.db.session() as s:
            inc = s.get(Incident, incident_id)
            if inc is None:
                return False
            findings = dict(inc.findings or {})
            findings[self.name] = {"heading": f.heading, "lines": list(f.lines), "data": f.data, "actions": []}
            inc.findings = findings
        return True

    def _result(self, report: LogReport, data: dict[str, Any]) -> SkillResult:
        shown = report.templates[:SHOWN_TEMPLATES]
        new = report.new_templates
        summary = (f"{report.n_lines:,} line(s) in {len(report.templates)} template(s): {_counts(report)}. "
                   + (f"*{len(new)} template(s) never seen before* (:new:)." if new else "No template is new."))
        if report.notes:
            summary += "\n_Note: " + "; ".join(report.notes) + "._"
        cats = ", ".join(f"{k} {v:,}" for k, v in sorted(report.category_counts.items(), key=lambda p: -p[1])
                         if k != "normal")
        fields = (("Worst", shown[0].severity if shown else "-"), ("Failure categories", cats or "none"))
        sections = (Section(f"Templates by severity (top {len(shown)} of {len(report.templates)})",
                            tuple(_line(t) for t in shown)),)
        detail, attachments = "", ()
        if len(report.templates) > SHOWN_TEMPLATES:
            detail = "All templates:\n" + "\n".join(
                f"{t.severity:7s} {t.count:>7,} {'NEW ' if t.new else ''}[{t.category}] {_esc(t.template, 300)}"
                for t in report.templates[:300])
            attachments = (Attachment("log-templates.csv", _templates_csv(report), "Log templates (CSV)"),)
        return SkillResult(title="Log classification", summary=summary, fields=fields, sections=sections,
                           detail=detail, attachments=attachments, data=data)
