"""``/runbook``: find, preview, request, approve and audit runbook runs.

Runbooks run only from the ``/runbook run`` command or this skill's buttons, never from free text,
alert or log text; every request, approval, refusal, step and outcome is in the audit log.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
import re
import shlex
import threading
from typing import Any

from sqlalchemy import case, func, select

from knowledge.embedder import get_encoder
from knowledge.models import Incident, Runbook, utcnow
from knowledge.runbook_store import (
    audit,
    audit_rows,
    create_execution,
    get_runbook,
    list_runbooks,
    past_resolutions,
    recent_executions,
    retired_note,
    spec_of,
)
from knowledge.runbooks import RunbookSpec
from skills.base import (
    Action,
    BaseSkill,
    Finding,
    IncidentFacts,
    Section,
    SkillContext,
    SkillError,
    SkillRequest,
    SkillResult,
    as_typed_command,
    esc,
    small_int,
)
from skills.clock_words import lookback
from skills.redact import mask_secrets
from skills.runbook_access import may_request, refuse
from skills.runbook_exec import ExecPolicy, ParameterRefused, plan, preview_lines, validate_params
from skills.runbook_flow import (
    approve,
    button_value,
    cancel,
    cancel_run,
    confirm,
    enqueue_execution,
    reject,
    shown_status,
)
from skills.runbook_suggest import RunbookSuggester, Suggestion

__all__ = ["RunbooksSkill", "policy_for", "AUTO_RUN_CONFIDENCE", "AUTO_ACTOR"]

AUTO_RUN_CONFIDENCE = 0.95
AUTO_ACTOR = "warroom:auto"
_RUN_WORDS = re.compile(r"(/runbook\s+run\b|\b(run|execute|start|trigger)\b.{0,40}\brunbook|\brunbook\b.{0,40}"
                        r"\b(run|execute)\b)", re.I | re.S)
# "run restart-service service=ingest" in a mention: an instruction naming a runbook (refused, with the command)
_RUN_SLUG = re.compile(r"^\W*(?:(?:please|pls|can you|could you)\s+)?(?:run|execute|trigger)\s+"
                       r"([a-z0-9]+(?:-[a-z0-9]+)+)\b(.*)$", re.I | re.S)
# "dry run restart-service for ingest", "preview flush-cache": the command that previews it (from a mention nothing
# is previewed or run: the preview is the command's, with its checks and its audit record)
_PREVIEW_SLUG = re.compile(r"^\W*(?:(?:please|pls|can you|could you)\s+)?(?:dry[- ]?run|preview)\s+(?:of\s+)?"
                           r"(?:the\s+)?(?:runbook\s+)?([a-z0-9]+(?:-[a-z0-9]+)+)\b(.*)$", re.I | re.S)
_LOCK = threading.Lock()

# Control and format characters (C0/C1, zero-width, bidi): never part of a name someone typed
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")


def policy_for(ctx: SkillContext) -> ExecPolicy:
    """The command and host allow-lists from the settings."""
    st = ctx.settings
    if st is None:
        return ExecPolicy()
    return ExecPolicy(allowed_commands=tuple(getattr(st, "runbook_commands", ()) or ()),
                      allowed_hosts=tuple(getattr(st, "runbook_http_hosts", ()) or ()))


def suggester(ctx: SkillContext) -> RunbookSuggester:
    """The process-wide suggester, rebuilt when runbooks or past resolutions change."""
    with ctx.db.session() as s:
        key = (*s.execute(select(func.count(Runbook.id), func.max(Runbook.id),  # a new version, a retirement
                                 func.sum(case((Runbook.active.is_(True), Runbook.id), else_=0)))).one(),
               s.scalar(select(func.count(Incident.id)).where(Incident.status == "resolved")))
        cached = ctx.resources.get("runbook_suggester")
        if cached is not None and cached[0] == key:
            return cached[1]
        specs = [spec_of(r) for r in list_runbooks(s)]
        past = past_resolutions(s)
    enc = get_encoder(getattr(ctx.settings, "embedder", "minilm") if ctx.settings else "minilm")
    with _LOCK:
        fitted = RunbookSuggester(enc).fit(specs, past)
        ctx.resources["runbook_suggester"] = (key, fitted)
    return fitted


def _parse_run_args(text: str) -> tuple[str, dict[str, str], bool]:
    """``<id> key=value ... [--dry-run]``; a quoted value (``reason="disk full"``) stays one value, for the
    parameter check to judge (a space is never allowed in one)."""
    try:
        tokens = shlex.split(as_typed_command(text))  # a mention's text too
    except ValueError:
        raise SkillError("A quote is not closed: give parameters as `key=value`, or `--dry-run`") from None
    if not tokens:
        raise SkillError("Usage: `/runbook run <id> key=value ... [--dry-run]`")
    slug, params, dry = tokens[0].lower(), {}, False
    for t in tokens[1:]:
        if t in ("--dry-run", "--dryrun", "dry-run"):
            dry = True
        elif "=" in t and t.index("=") > 0:
            k, v = t.split("=", 1)
            params[k.strip().lower()] = v
        else:
            raise SkillError(f"I do not understand `{t[:50]}`: give parameters as `key=value`, or `--dry-run`")
    return slug, params, dry


def _load_spec(ctx: SkillContext, slug: str) -> RunbookSpec:
    with ctx.db.session() as s:
        row = get_runbook(s, slug=slug[:100])
        if row is None or not row.active:
            note = retired_note(s, slug=row.slug) if row is not None else None
            if row is not None and note:
                raise SkillError(f"`{esc(row.slug)}` was {esc(note)}: it is no longer offered or run. Try "
                                 "`/runbook list`.")
            raise SkillError(f"There is no runbook `{slug[:100]}`. Try `/runbook list`.")
        return spec_of(row)


def _is_runbook(ctx: SkillContext, slug: str) -> bool:
    with ctx.db.session() as s:
        row = get_runbook(s, slug=slug[:100])
        return row is not None and row.active


_LIST_ASK = re.compile(r"^\W*(?:what|which)\s+runbooks\b|^\W*(?:list|show)\s+(?:me\s+)?(?:the\s+|all\s+|our\s+)?"
                       r"runbooks\b|\brunbooks\s+(?:do\s+we\s+have|are\s+there)\b"
                       # "what can I run on ingest?" (the knowledge base's passages)
                       r"|^\W*what\s+(?:can|could|may)\s+(?:i|we)\s+run\s+(?:on|for|against)\b", re.I)
# "what runbooks ran today?", "show runbook history", "runbook runs": the history, not the list
# "what ran in the last hour?", "what has been run today?", "what did the bot run?", "who approved the last runbook
# run?", "who ran the last runbook?", "recent runbook runs" (they went to the knowledge base)
_HISTORY_ASK = re.compile(r"\b(?:what|which)\s+runbooks?\s+(?:ran|were\s+run|have\s+run|executed)\b"
                          r"|\brunbooks?\s+(?:history|runs)\b"
                          r"|^\W*what(?:'s|\s+has|\s+have)?\s+(?:been\s+)?(?:ran|run|executed)\b(?!\s+(?:out|into|of)\b)"
                          r"|^\W*what\s+(?:was|were|got)\s+(?:run|executed)\b"
                          r"|^\W*what\s+did\s+(?:you|the\s+bot|warroom|we|someone|anyone)\s+(?:run|execute)\b"
                          r"|^\W*who\s+(?:approved|ran|started|requested|triggered)\s+(?:the\s+)?(?:last|latest|most\s+"
                          r"recent)\s+(?:runbook|run)\b"
                          # "who ran restart-service last?", "who approved clear-disk-space today?" (knowledge base's)
                          r"|^\W*who\s+(?:approved|ran|started|requested|triggered|executed)\s+(?:the\s+)?"
                          r"[a-z0-9]+(?:-[a-z0-9]+)+(?:\s+(?:runbook\s+)?(?:last|latest|recently|today|yesterday))?\W*$",
                          re.I)
# "when did we last restart ingest?", "when was redis-cache-pages last flushed?": the last runs of the runbook that
# does it, with that value (it went to the knowledge base)
_LAST_RUN_ASK = re.compile(r"^\W*when\s+(?:did|have)\s+(?:we|you|someone|anyone|i)\s+last\s+(?P<verb>roll\s*back|\w+)"
                           r"\s+(?P<obj>.+?)\W*$|^\W*when\s+was\s+(?!(?:the|a|an|it|this|that)\b)(?P<obj2>.+?)\s+last\s+"
                           r"(?P<verb2>rolled\s*back|\w+)\W*$",
                           re.I)
# "cancel run #12", "stop the runbook run 12": how to (a mention does not cancel: a pasted line could say it)
_CANCEL_ASK = re.compile(r"^\W*(?:please\s+)?(?:cancel|stop|abort)\s+(?:the\s+)?(?:runbook\s+)?run\s+#?(\d{1,9})\b",
                         re.I)
_FILLER = frozenset({"runbook", "runbooks", "for", "of", "the", "a", "me", "all", "runs", "run", "our", "please"})


class RunbooksSkill(BaseSkill):
    """Find, preview and run runbooks with approvals: `/runbook list|show|run|history|suggest`."""

    name = "runbooks"
    commands = ("/runbook",)
    keywords = ("runbook", "run book", "playbook")
    examples = ("/runbook run restart-service service=payments-api --dry-run",)
    usage = ("Usage: `/runbook list [service or tag ...]`, `/runbook show <id>`, "
             "`/runbook run <id> key=value ... [--dry-run]`, `/runbook history [run id | runbook id | service]`, "
             "`/runbook cancel <run id>`, `/runbook suggest <text>`")

    def score(self, text: str) -> float:
        """Keywords; an instruction that names a runbook ("run restart-service ...") is mine, to refuse; a
        question for the list ("what runbooks do we have for postgres?") is mine too."""
        return 0.8 if (_RUN_SLUG.match(text) or _LIST_ASK.search(text) or _HISTORY_ASK.search(text)
                       or _PREVIEW_SLUG.match(text) or _LAST_RUN_ASK.match(text)
                       or _CANCEL_ASK.match(text)) else super().score(text)

    def warm(self, ctx: SkillContext) -> None:
        suggester(ctx).suggest("warm up", k=1)

    # --- commands --------------------------------------------------------------------------------
    def run(self, request: SkillRequest, ctx: SkillContext) -> SkillResult:
        text = request.text.strip()
        # A question ("which runbook should I run?") gets suggestions; an instruction is refused.
        named = _RUN_SLUG.match(text)
        asks_to_run = (_RUN_WORDS.search(text) or named) and ("/runbook" in text.lower() or "?" not in text) and not (
            named is None and _HISTORY_ASK.search(text))  # "who approved the last runbook run": a question
        if request.source not in ("command", "cli") and asks_to_run:
            err = refuse(ctx, actor=request.user_id, reason=(
                "runbooks are run only with the `/runbook run` command or its buttons, never from a "
                "mention, message, alert or log text"), detail={"source": request.source, "text": text[:300]})
            if named:  # the command to type instead, parameters as given (the command checks them)
                args = [w.replace("`", "") for w in named.group(2).split() if "=" in w and not w.startswith("--")]
                command = " ".join([named.group(1).lower(), *args])[:200]
                err = SkillError(f"{err}. Preview it with `/runbook run {command} --dry-run`.")
            raise err
        if request.source not in ("command", "cli") and (pv := _PREVIEW_SLUG.match(text)):
            return self._preview_hint(ctx, pv.group(1).lower(), pv.group(2))
        sub, _, rest = text.partition(" ")
        sub = sub.lower()
        span: tuple[dt.timedelta, str] | None = None
        if request.source in ("mention", "dm") and (m := _CANCEL_ASK.match(text)):
            sub, rest = "cancel", m.group(1)
        elif request.source in ("mention", "dm") and (m := _LAST_RUN_ASK.match(text)):
            verb, obj = m.group("verb") or m.group("verb2"), m.group("obj") or m.group("obj2")
            # "when did we last run restart-service?": the runbook named (its verb would be "run")
            slug = next((w for w in re.findall(r"[a-z0-9]+(?:-[a-z0-9]+)+", obj.lower())
                         if re.fullmatch(r"run|ran|execute[d]?|use[d]?|trigger(?:ed)?", verb.lower())
                         and _is_runbook(ctx, w)), None) or self._slug_for(ctx, verb, obj)
            if slug is None:
                raise SkillError(f"I know no runbook that does `{esc(verb[:30])}`: `/runbook history` lists the last "
                                 "runs of every runbook.")
            sub, rest = "history", " ".join([slug, *self._values_named(ctx, slug, obj)])
        elif request.source in ("mention", "dm") and _HISTORY_ASK.search(text):  # "what runbooks ran today?"
            slug = next((w for w in re.findall(r"[a-z0-9]+(?:-[a-z0-9]+)+", text.lower()) if w != "runbook"), "")
            sub, rest = "history", slug
            span = lookback(text, dt.timedelta(days=90))  # "what ran in the last hour?": only those
        elif request.source in ("mention", "dm") and _LIST_ASK.search(text):  # "which runbooks are there for kafka?"
            about = re.search(r"\b(?:for|on|about)\s+(?:the\s+)?([\w.-]+)", text)
            sub, rest = "list", about.group(1) if about else ""
        if request.source in ("mention", "dm") and sub in ("list", "show", "history"):
            # "list runbooks for kafka", "show runbook restart-service", "history of runbook runs"
            rest = " ".join(w for w in rest.split() if w.lower() not in _FILLER)
        if sub == "run":
            return self._request_run(request, ctx, rest)
        if sub == "show":
            return self._show(ctx, rest.strip())
        if sub == "history":
            return self._history(ctx, rest.strip(), span)
        if sub == "cancel":  # "/runbook cancel 12": the run's Cancel button may be far up its thread
            run_id = small_int(rest.strip().lstrip("#")) if rest.strip() else None
            if run_id is None:
                raise SkillError("Usage: `/runbook cancel <run id>` (`/runbook history` lists the runs).")
            if request.source != "command":  # a pasted line saying "cancel run #3" must not stop a fix
                raise SkillError(f"To cancel run #{run_id}, use `/runbook cancel {run_id}` or its *Cancel run* "
                                 "button.")
            return cancel_run(ctx, run_id, request.user_id)
        if sub == "suggest":
            return self._suggest(ctx, rest)
        if sub in ("list", ""):
            return self._list(ctx, rest.strip())
        if request.source != "command":
            return self._suggest(ctx, text)
        raise SkillError(self.usage)

    @staticmethod
    def _slug_for(ctx: SkillContext, verb: str, obj: str) -> str | None:
        """The runbook that does ``verb`` ("restart", "roll back", "flush") to ``obj``: the suggester's best whose id
        starts with the verb; None when none does."""
        stem = re.sub(r"\W", "", verb.lower())[:4]
        if len(stem) < 3:
            return None
        return next((sg.slug for sg in suggester(ctx).suggest(f"{verb} {obj}", k=3) if sg.slug.startswith(stem)),
                    None)

    @staticmethod
    def _values_named(ctx: SkillContext, slug: str, obj: str) -> list[str]:
        """The words of ``obj`` that are allowed values of the runbook's parameters (or a service it accepts)."""
        spec = _load_spec(ctx, slug)
        allowed = {v.lower() for p in spec.parameters for v in p.allowed}
        service = _service_named(ctx, obj)
        words = [w for w in re.findall(r"[\w.:/-]+", obj.lower()) if w in allowed]
        return list(dict.fromkeys(words + ([service] if service and not words else [])))

    def _preview_hint(self, ctx: SkillContext, slug: str, said: str) -> SkillResult:
        """The command that previews ``slug``, with what ``said`` names filled in ("for ingest")."""
        spec = _load_spec(ctx, slug)
        given = [w.replace("`", "") for w in said.split() if "=" in w and not w.startswith("--")]
        line = preview_line(ctx, spec.slug, _service_named(ctx, said), said) or ""
        command = re.search(r"`(/runbook run [^`]*)`", line)
        text = command.group(1) if command else f"/runbook run {spec.slug} --dry-run"
        if given:  # parameters written key=value: as given (the command checks them)
            text = f"/runbook run {' '.join([spec.slug, *given])} --dry-run"
        return SkillResult(title=f"Preview {spec.slug}", ephemeral=True,
                           summary=f"`{text[:300]}` shows exactly what would run, and runs nothing; without "
                                   "`--dry-run` it asks you to confirm (and an approver, where the runbook needs one).")

    def _list(self, ctx: SkillContext, service: str) -> SkillResult:
        # Services (or tags): "payments-api ingest", "payments-api, ingest and dns": each counts (the second was
        # dropped); control characters are not part of a name.
        wanted = list(dict.fromkeys(w[:100] for w in re.split(r"[\s,;]+", _CONTROL.sub(" ", service))
                                    if w and w.lower() not in ("and", "&", "or", "for")))[:10]
        with ctx.db.session() as s:
            everything = list_runbooks(s)
            per = {w: list_runbooks(s, service=w) for w in wanted}
        rows = [r for r in everything if not wanted or any(r in per[w] for w in wanted)]
        lines = tuple(f"`{r.slug}` v{r.version} *{r.title}* ({r.risk} risk"
                      f"{', auto-safe' if r.auto_safe else ''}) services: {', '.join(r.services) or 'any'}"
                      for r in rows)
        names = sorted({n.lower() for r in everything for n in (*r.services, *(r.tags or []))})
        title = ("Runbooks for " + (f"{', '.join(wanted[:-1])} and {wanted[-1]}" if len(wanted) > 1 else wanted[0])
                 if wanted else "Runbooks")
        summary = f"{len(lines)} runbook(s). `/runbook show <id>` for details."
        for w in reversed(wanted):
            if not any(r.services for r in per[w]):  # only the ones for any service: a typo, or no runbook
                close = difflib.get_close_matches(w.lower(), names, n=3, cutoff=0.6)
                summary = (f"No runbook is written for `{esc(w)}`"
                           + (f" (did you mean {', '.join(f'`{esc(c)}`' for c in close)}?)" if close else "")
                           + (f"; {'these apply' if per[w] else 'none applies'} to any service. " if len(wanted) == 1
                              else ". ") + summary)
        return SkillResult(title=title, summary=summary, sections=(Section("", lines or ("none",)),), ephemeral=True)

    def _show(self, ctx: SkillContext, slug: str) -> SkillResult:
        if not slug:
            raise SkillError("Usage: `/runbook show <id>`")
        spec = _load_spec(ctx, slug.split()[0])
        params = tuple(f"`{p.name}` ({p.type}{', default ' + p.default if p.default else ''})"
                       + (f": one of {', '.join(p.allowed)}" if p.allowed else "")
                       + (f" under {', '.join(p.roots)}" if p.roots else "")
                       + (f" {p.minimum}..{p.maximum}" if p.type == "int" else "") for p in spec.parameters)
        steps = tuple(f"{i}. *{st.name}* [{st.kind}] "
                      + (" ".join(st.run) if st.kind == "shell" else st.url if st.kind == "http" else st.text)
                      for i, st in enumerate(spec.steps, start=1))
        fields = (("Risk", spec.risk + (" (auto-safe)" if spec.auto_safe else "")), ("Version", str(spec.version)),
                  ("Approvers", ", ".join(spec.approvers) or "none needed"),
                  ("Who may run", ", ".join(spec.allowed_users) or "anyone"),
                  ("Alerts", ", ".join(spec.alert_names) or "-"), ("Services", ", ".join(spec.services) or "any"))
        return SkillResult(title=f"{spec.title} ({spec.slug})", fields=fields,
                           sections=(Section("Parameters", params or ("none",)), Section("Steps", steps)),
                           detail=spec.body, ephemeral=True)

    def _history(self, ctx: SkillContext, arg: str, span: tuple[dt.timedelta, str] | None = None) -> SkillResult:
        with ctx.db.session() as s:
            if (run_id := small_int(arg.strip().lstrip("#"))) is not None:  # "12" or "#12"
                rows = audit_rows(s, execution_id=run_id)
                lines = tuple(f"{r.at:%Y-%m-%d %H:%M:%S} {r.action} by {r.actor or '-'} "
                              f"{_short(r.detail)}" for r in rows)
                return SkillResult(title=f"Audit of run #{run_id}", sections=(Section("", lines or ("nothing",)),),
                                   ephemeral=True)
            words = _CONTROL.sub(" ", arg).split()
            slug = next(iter(words), "").lstrip("#").lower()[:100]
            if slug and get_runbook(s, slug=slug) is None:
                from knowledge.people import service_named

                if service_named(session=s, name=slug) is None:  # it was ignored: the last 15 runs of every runbook
                    raise SkillError(f"There is no runbook, run or service `{esc(slug)}`: `/runbook history [<run id> "
                                     "| <runbook id> [parameter value ...] | <service>]`.")
                words = ["", *words]  # "runbook history for payments-api": every runbook's runs on that service
                slug = ""
            # "/runbook history restart-service ingest": the runs with those parameter values (they were dropped)
            values = {w.lower().split("=", 1)[-1] for w in words[1:]}
            since = utcnow() - span[0] if span else None
            execs = [e for e in recent_executions(s, limit=500 if values or span else 15, slug=slug or None)
                     if values <= {str(v).lower() for v in (e.params or {}).values()}
                     and (since is None or e.requested_at >= since)][:15]
            lines = tuple(f"#{e.id} `{e.runbook_slug}` v{e.runbook_version} *{shown_status(ctx, e)}*"
                          f"{' (dry run)' if e.dry_run else ''} by <@{e.requested_by}>"
                          + (f", approved by <@{e.approved_by}>" if e.approved_by else "")
                          + f" {_params(e.params)} {e.requested_at:%Y-%m-%d %H:%M}" for e in execs)
            last = next((e for e in execs if not e.dry_run and e.started_at is not None), None)
        only = f" with {', '.join(sorted(values))}" if values else ""
        said = (f"Last run{only}: #{last.id}, {shown_status(ctx, last)}, started {last.started_at:%Y-%m-%d %H:%M} UTC "
                f"by <@{last.requested_by}>. " if last is not None and slug else "")
        only += f" in {span[1]}" if span else ""
        return SkillResult(title=f"Runbook history{f': {slug}' if slug else ''}{only}",
                           summary=said + "`/runbook history <run id>` shows a run's audit trail; `/runbook history "
                                   "<runbook id> [value]` the runs of one runbook.",
                           sections=(Section("", lines or ((f"no runs in {span[1]}",) if span else ("no runs yet",))),),
                           ephemeral=True)

    def _suggest(self, ctx: SkillContext, text: str) -> SkillResult:
        if not text.strip():
            raise SkillError("Usage: `/runbook suggest <what is happening>`")
        sugg = suggester(ctx).suggest(text)
        service = _service_named(ctx, text)  # "/runbook suggest payments-api pods crash": Run fills it in
        return SkillResult(title="Suggested runbooks", sections=(Section("", _suggestion_lines(sugg)),),
                           actions=tuple(_run_button(sg, None, service) for sg in sugg), ephemeral=True)

    def _request_run(self, request: SkillRequest, ctx: SkillContext, args: str) -> SkillResult:
        slug, given, dry = _parse_run_args(args)
        spec = _load_spec(ctx, slug)
        return self._preview(request, ctx, spec, given, dry)

    def _preview(self, request: SkillRequest, ctx: SkillContext, spec: RunbookSpec, given: dict[str, str],
                 dry: bool) -> SkillResult:
        user, channel = request.user_id, request.channel_id
        subject = f"{spec.slug}@v{spec.version}"
        with ctx.db.session() as s:
            why = may_request(s, ctx, spec, user, channel)
        if why:
            raise refuse(ctx, actor=user, reason=why, subject=subject, detail={"channel": channel})
        try:
            params = validate_params(spec, given)
        except ParameterRefused as exc:
            raise refuse(ctx, actor=user, reason=str(exc), subject=subject,
                         detail={"params": {k: v[:100] for k, v in given.items()}}) from None
        steps = plan(spec, params, policy_for(ctx))
        preview = tuple(preview_lines(steps))
        blocked = [st for st in steps if st.blocked]
        with ctx.db.session() as s:
            row = create_execution(s, spec=spec, requested_by=user or "?", params=params,
                                   status="previewed" if dry else "pending", dry_run=dry,
                                   incident_id=request.incident_id, channel_id=channel)
            audit(s, actor=user, action="runbook.dry_run" if dry else "runbook.requested", subject=subject,
                  execution_id=row.id, detail={"params": params, "channel": channel, "plan": list(preview)})
            value = button_value(row)
            rid = row.id
        fields = (("Risk", spec.risk), ("Parameters", _params(params) or "none"),
                  ("Approval", "none (low risk)" if spec.risk == "low" else ", ".join(spec.approvers)))
        if dry:
            return SkillResult(title=f"Dry run: {spec.slug} v{spec.version}", fields=fields,
                               summary="Nothing was run. This is exactly what would run:",
                               sections=(Section("Plan", preview),), ephemeral=True, data={"execution_id": rid})
        if blocked:
            raise refuse(ctx, actor=user, execution_id=rid, subject=subject,
                         reason=f"step {blocked[0].index} cannot run on this bot: {blocked[0].blocked}")
        return SkillResult(
            title=f"Run {spec.slug} v{spec.version}? (run #{rid})", fields=fields,
            summary=f"<@{user}>, check exactly what will run, then confirm.", sections=(Section("Plan", preview),),
            actions=(Action(f"{self.name}:confirm", "Confirm run", value, "primary"),
                     Action(f"{self.name}:cancel", "Cancel", value, "danger")),
            data={"execution_id": rid})

    # --- buttons ---------------------------------------------------------------------------------
    def handle_action(self, action_id: str, request: SkillRequest, ctx: SkillContext) -> SkillResult | None:
        verb = action_id.split(":", 1)[1] if ":" in action_id else ""
        d: dict[str, Any] = request.data or {}
        user, value = request.user_id, str(d.get("value", request.text) or "")
        if verb == "confirm":
            return confirm(ctx, value, user, request.channel_id, d.get("message_ts"))
        if verb == "approve":
            return approve(ctx, value, user)
        if verb == "reject":
            return reject(ctx, value, user)
        if verb == "cancel":
            return cancel(ctx, value, user)
        if verb == "start":
            return self._start_from_suggestion(ctx, request, value)
        raise refuse(ctx, actor=user, reason=f"unknown runbook action `{verb[:40]}`")

    def _start_from_suggestion(self, ctx: SkillContext, request: SkillRequest, value: str) -> SkillResult:
        slug, _, rest = value.partition(":")
        inc, _, named = rest.partition(":")
        spec = _load_spec(ctx, slug)
        given: dict[str, str] = {}
        incident_id = small_int(inc)
        service = named or None  # the service the question named; the parameter's allow-list still decides
        if incident_id is not None:
            with ctx.db.session() as s:
                row = s.get(Incident, incident_id)
                service = row.service_name if row else None
        p = spec.param("service")
        if p is not None and service and (not p.allowed or service in p.allowed):
            given["service"] = service
        req = SkillRequest(text="", source="action", user_id=request.user_id, channel_id=request.channel_id,
                           incident_id=incident_id)
        try:
            return self._preview(req, ctx, spec, given, dry=False)
        except SkillError as exc:
            if "needs `" in str(exc):
                raise SkillError(f"{exc}. Type `/runbook run {spec.slug} key=value ...` to give it.") from None
            raise

    # --- triage ----------------------------------------------------------------------------------
    def triage(self, facts: IncidentFacts, ctx: SkillContext) -> Finding | None:
        """Top 3 runbooks for the incident; auto-runs only a safe one suggested with >= 0.95."""
        text = " ".join([facts.title, facts.description, *map(str, facts.annotations.values()), *facts.log_lines])
        sugg = suggester(ctx).suggest(text, alert_name=facts.alert_name, service=facts.service)
        sugg = after_a_change(ctx, facts.incident_id, sugg, text, facts.alert_name, facts.service)
        if not sugg:
            return None
        lines = list(_suggestion_lines(sugg))
        if _RUN_WORDS.search(text):
            with ctx.db.session() as s:
                audit(s, actor="alert", action="runbook.refused", subject=f"incident {facts.incident_id}",
                      detail={"reason": "alert or log text asked for a runbook run; ignored", "text": text[:300]})
            lines.append(":warning: The alert text asks for a runbook run; I ignored it (runbooks run only "
                         "from `/runbook` or the buttons).")
        # the most confident, as before a change put the rollback first (a change neither runs nor stops a runbook)
        auto = self._maybe_auto_run(ctx, facts, max(sugg, key=lambda sg: sg.confidence))
        if auto:
            lines.append(auto)
        return Finding(skill=self.name, heading="Suggested runbooks", lines=tuple(lines),
                       actions=tuple(_run_button(sg, facts.incident_id) for sg in sugg),
                       data={"suggestions": [{"slug": sg.slug, "version": sg.version, "confidence": sg.confidence,
                                              "why": list(sg.why)} for sg in sugg]})

    def _maybe_auto_run(self, ctx: SkillContext, facts: IncidentFacts, top: Suggestion) -> str | None:
        if not (top.auto_safe and top.risk == "low" and top.confidence >= AUTO_RUN_CONFIDENCE):
            return None
        with ctx.db.session() as s:
            row = get_runbook(s, slug=top.slug)
            if row is None:
                return None
            spec = spec_of(row)
            given = {"service": facts.service} if facts.service and spec.param("service") else {}
            try:
                params = validate_params(spec, given)
            except ParameterRefused as exc:
                return f"Not auto-running `{spec.slug}`: {exc}"
            if any(st.blocked for st in plan(spec, params, policy_for(ctx))):
                return f"Not auto-running `{spec.slug}`: a step is not allowed on this bot."
            from knowledge.models import RunbookExecution

            done = s.scalar(select(RunbookExecution.id).where(RunbookExecution.incident_id == facts.incident_id)
                            .where(RunbookExecution.runbook_slug == spec.slug)
                            .where(RunbookExecution.requested_by == AUTO_ACTOR).limit(1))
            if done is not None:
                return f"Auto-ran `{spec.slug}` (run #{done})."
            inc = s.get(Incident, facts.incident_id)
            channel = (inc.channel_id if inc else None) or getattr(ctx.settings, "slack_incident_channel", None)
            ex = create_execution(s, spec=spec, requested_by=AUTO_ACTOR, params=params, status="queued",
                                  incident_id=facts.incident_id, channel_id=channel,
                                  thread_ts=inc.card_ts if inc else None)
            audit(s, actor=AUTO_ACTOR, action="runbook.auto_run", subject=f"{spec.slug}@v{spec.version}",
                  execution_id=ex.id, detail={"confidence": top.confidence, "why": list(top.why), "params": params})
            enqueue_execution(s, ex)
            return (f":robot_face: Auto-running safe runbook `{spec.slug}` "
                    f"(confidence {top.confidence:.2f}, run #{ex.id}).")


def _params(params: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in (params or {}).items())


def _short(detail: dict[str, Any]) -> str:
    keep = {k: v for k, v in (detail or {}).items() if k in ("reason", "params", "status", "exit_code", "step")}
    return str(keep)[:200] if keep else ""


ROLLBACK_WITHIN = dt.timedelta(hours=2)


def after_a_change(ctx: SkillContext, incident_id: int, sugg: list[Suggestion], text: str, alert: str | None,
                   service: str | None) -> list[Suggestion]:
    """When the incident's own service was deployed (or its config or a flag changed) shortly before it opened, the
    runbook that rolls back (tagged ``rollback``) comes first, saying which change it would undo. Its confidence is
    left as the suggester gave it, so a change never makes a runbook run by itself."""
    from knowledge.changes import for_incident

    with ctx.db.session() as s:
        inc = s.get(Incident, incident_id)
        if inc is None:
            return sugg
        own = [n.change for n in for_incident(s, inc, limit=10) if len(n.path) == 1
               and n.change.kind in ("deploy", "config", "flag")
               and inc.created_at - ROLLBACK_WITHIN <= n.change.at <= inc.created_at + dt.timedelta(minutes=5)]
        opened = inc.created_at
    if not own:
        return sugg
    sg_ = suggester(ctx)
    rollbacks = {rb.slug for rb in sg_.runbooks_ if "rollback" in {t.lower() for t in rb.tags or ()}}
    pick = next((sg for sg in sg_.suggest(text, alert_name=alert, service=service, k=100) if sg.slug in rollbacks),
                None)
    if pick is None:
        return sugg
    c = own[0]
    gap = max(0, int((opened - c.at).total_seconds() // 60))
    said = (f"{c.kind} of {c.service}" + (f" {c.version}" if c.version else "") + f" {gap} min before it opened"
            + (f" by {c.author}" if c.author else ""))
    pick = dataclasses.replace(pick, why=(f"undoes the {said}", *pick.why))
    return [pick, *[sg for sg in sugg if sg.slug != pick.slug]][:max(3, len(sugg))]


def incident_runbooks(ctx: SkillContext, incident_id: int) -> tuple[tuple[str, ...], tuple[Action, ...]]:
    """The card's runbook suggestions for one incident, each with its preview command and a Run button
    (which opens the confirmation; nothing runs from here)."""
    with ctx.db.session() as s:
        inc = s.get(Incident, incident_id)
        if inc is None:
            return (), ()
        text, alert, service = f"{inc.title}. {inc.description or ''}", inc.alert_name, inc.service_name
    sugg = suggester(ctx).suggest(mask_secrets(text), alert_name=alert, service=service)
    sugg = after_a_change(ctx, incident_id, sugg, mask_secrets(text), alert, service)
    lines = [x for sg, line in zip(sugg, _suggestion_lines(sugg), strict=True)
             for x in (line, preview_line(ctx, sg.slug, service, text)) if x]
    return tuple(lines), tuple(_run_button(sg, incident_id) for sg in sugg)


def preview_line(ctx: SkillContext, slug: str, service: str | None, text: str = "") -> str | None:
    """The command that previews a runbook: the service filled in when the runbook accepts it, a parameter whose
    allowed values ``text`` names exactly one of filled with it ("flush the cache on redis-cache-pages"), and a
    placeholder for each other parameter it needs."""
    with ctx.db.session() as s:
        row = get_runbook(s, slug=slug)
        spec = spec_of(row) if row is not None else None
    if spec is None:
        return None
    args = []
    words = set(re.findall(r"[\w.:/-]+", text.lower()))
    for p in spec.parameters:
        said = [v for v in p.allowed if v.lower() in words] if p.allowed else []
        if p.name == "service" and service and (not p.allowed or service in p.allowed):
            args.append(f"service={service}")
        elif len(said) == 1:
            args.append(f"{p.name}={said[0]}")
        elif p.required and p.default is None:
            args.append(f"{p.name}=<{p.name}>")
    return f"> _preview it:_ `/runbook run {' '.join((spec.slug, *args))} --dry-run`"


def _suggestion_lines(sugg: list[Suggestion]) -> tuple[str, ...]:
    return tuple(f"`{sg.slug}` *{sg.title}*: {sg.confidence:.0%} ({'; '.join(sg.why)})" for sg in sugg)


def _run_button(sg: Suggestion, incident_id: int | None, service: str | None = None) -> Action:
    return Action("runbooks:start", f"Run {sg.slug}"[:75],
                  f"{sg.slug}:{incident_id or ''}" + (f":{service[:200]}" if service else ""))


def _service_named(ctx: SkillContext, text: str) -> str | None:
    """The longest catalogued service (or service an incident was filed under) that ``text`` names whole."""
    from knowledge.people import known_services_in_text

    with ctx.db.session() as s:
        found = known_services_in_text(session=s, text=text)
    return max(found, key=len) if found else None
