"""Postmortem skill: draft, show, edit, publish and export an incident's postmortem.

``/postmortem draft|show|publish|export <incident>`` and ``/postmortem edit <incident> <section>: text``;
``/postmortem actions [mine] [all] [service or team]`` and ``/postmortem done <incident>.<n>``
(``skills.action_items``);
buttons ``postmortem:publish``, ``postmortem:regenerate`` and ``postmortem:confirm_root_cause``. A
draft is written from the incident's facts (secrets masked first) by the deterministic writer, or
by the LLM writer when an endpoint is configured; each change is stored as a new version.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import re
from collections.abc import Callable
from typing import Any, ClassVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from knowledge import postmortems as store
from knowledge.facts import PostmortemFacts, RelatedIncident, assemble_facts, similar_by_service
from knowledge.models import Incident, Postmortem, utcnow
from knowledge.postmortems import PostmortemDoc
from skills.action_items import add_item, assign, carry_marks, due_words, mark_done, set_due, with_items_section
from skills.action_items import listing as listing_actions
from skills.base import (
    INCIDENT_REF,
    Action,
    Attachment,
    BaseSkill,
    Section,
    SkillContext,
    SkillError,
    SkillRequest,
    SkillResult,
    esc,
)
from skills.postmortem_writers import PROSE_KEYS, DeterministicWriter, PostmortemWriter, redact, render
from skills.redact import mask_secrets

__all__ = ["PostmortemSkill", "choose_writer", "kb_url"]

log = logging.getLogger("warroom.skills.postmortem")

_ID = re.compile(r"^(?:#|inc-?)?(\d{1,9})$", re.I)
_VERBS = ("draft", "show", "publish", "export", "edit", "regenerate", "unpublish",
          "withdraw")  # "actions", "done": see run
# "what action items are open?", "my action items", "open follow-ups for payments-api" (not "action item: ...")
_ACTIONS_ASKED = re.compile(r"^\W*(?:(?:list|show|any|which|what(?:'s|\s+are|\s+were)?)\s+)?"
                            r"(?:(?:the|my|our|all|open|overdue|late|unassigned)\s+)*"
                            r"(?:postmortem\s+)?(?:action[\s-]?items|follow[\s-]?ups)\b(?!\s*:)"
                            # "what's overdue?", "anything overdue for payments?" (the knowledge base's "I don't know")
                            r"|^\W*(?:what(?:'s|\s+is)|(?:is\s+)?anything|any(?:thing)?\s+items?)\s+(?:still\s+)?"
                            r"(?:overdue|past\s+due)\b", re.I)
# "who owns the action items for #101?", "who has the follow-ups from #109?" (an incident's status came back)
_ACTIONS_WHO = re.compile(r"^\W*who(?:'s|\s+is|\s+owns|\s+has|\s+is\s+on|\s+is\s+doing|\s+took)\s+(?:the\s+)?"
                          r"(?:open\s+)?(?:postmortem\s+)?(?:action[\s-]?items|follow[\s-]?ups)\b", re.I)
# "what did we learn from #101?", "lessons learned from #101": its postmortem (it went to the knowledge base)
_LEARNED = re.compile(r"^\W*(?:what\s+(?:did|have)\s+we\s+learn(?:ed|t)?|(?:what\s+(?:were|are)\s+the\s+)?lessons?"
                      r"(?:\s+(?:learned|learnt))?)\s+(?:from|in|of|on|about)\s+(?:incident\s+)?(?:#|inc-?)\d{1,9}\b",
                      re.I)
# What is owed: "which incidents still need a postmortem?", "missing postmortems", "which postmortems are not published
# yet?", "postmortems due for payments" (they got the open incidents, or every postmortem)
_PM = r"post-?mortems?"
_OWED_ASKED = re.compile(
    r"^\W*(?:which|what)\s+incidents?\s+(?:still\s+)?(?:need|needs|lack|lacks|(?:are|is)\s+missing|ha(?:ve|s)\s+no"
    r"|(?:are|is)\s+without|don'?t\s+have|do\s+not\s+have|doesn'?t\s+have)\s+(?:an?\s+|their\s+|its\s+)?(?:published\s+)?"
    rf"{_PM}"
    r"|^\W*(?:(?:list|show|any)\s+(?:me\s+)?)?(?:the\s+|our\s+)?(?:missing|outstanding|unpublished|pending|overdue|owed"
    rf"|unwritten|unfinished)\s+{_PM}"
    rf"|^\W*(?:which|what|any)\s+{_PM}\s+(?:are\s+|is\s+)?(?:still\s+)?(?:missing|outstanding|unpublished|pending|overdue"
    r"|owed|due|open|to\s+(?:write|publish|finish)|not\s+(?:yet\s+)?(?:published|written|done))"
    rf"|^\W*{_PM}\s+(?:due|owed|outstanding|missing|to\s+(?:write|publish|finish))", re.I)
_OWED_WORDS = frozenset(("owed", "missing", "outstanding", "unpublished", "pending", "due"))
_OWED_DAYS = 90
# "109.2 is done", "mark 109.2 done", "done with action item #109.2"
_DONE_SAID = re.compile(r"^\W*(?:(?:mark(?:ed)?|close[ds]?|finished|completed|done(?:\s+with)?)\s+(?:action\s+item\s+)?"
                        r"(?P<a>#?\d{1,9}\.\d{1,3})\b|(?:action\s+item\s+)?(?P<b>#?\d{1,9}\.\d{1,3})\s+(?:is\s+)?"
                        r"(?:done|closed|finished|completed?)\b)", re.I)
_REF = r"(?:action\s+item\s+)?(?P<ref>#?\d{1,9}\.\d{1,3})"
_REF2 = _REF.replace("ref", "ref2")
# "assign 109.2 to @bob", "give action item 109.2 to me", "I'll take 109.2"
_ASSIGN_SAID = re.compile(rf"^\W*(?:(?:assign|give|hand)\s+{_REF}\s+(?:to\s+)?(?P<who>\S.*)"
                          rf"|(?P<me>I'll|I\s+will|I\s+can|let\s+me)\s+(?:take|own|do)\s+{_REF2})",
                          re.I)
# "109.2 is due friday", "109.2 due by dec 18", "move 109.2 to next week", "set the due date of 109.2 to friday"
_DUE_SAID = re.compile(rf"^\W*(?:{_REF}\s+(?:is\s+)?due\s+(?:by\s+|on\s+)?(?P<when>\S.*)|(?:set|move|push|change)\s+"
                       rf"(?:the\s+)?(?:due\s+date\s+(?:of|for|on)\s+)?{_REF2}\s+(?:due\s+)?"
                       r"(?:to|until|till|back\s+to)\s+(?P<when2>\S.*))", re.I)
# "add an action item to #109: check the pool size @bob by friday"
_ADD_SAID = re.compile(r"^\W*add\s+(?:an?\s+)?(?:action\s+item|follow[\s-]?up)\s+(?:to|for|on)\s+(?:incident\s+|the\s+"
                       r"postmortem\s+(?:of|for)\s+)?#?(?P<id>\d{1,9})\s*[:,-]?\s*(?P<text>\S.*)", re.I | re.S)
_SAY_DRAFT = {"write": "draft", "create": "draft", "generate": "draft", "start": "draft"}  # "write the postmortem"




def choose_writer(ctx: SkillContext) -> PostmortemWriter:
    """The LLM writer when an endpoint is configured, else the deterministic one."""
    s = ctx.settings
    if s is not None and getattr(s, "llm_enabled", False):
        from skills.postmortem_llm import LLMWriter

        key = s.llm_api_key.get_secret_value() if s.llm_api_key is not None else "not-needed"
        return LLMWriter(base_url=s.llm_base_url, model=s.llm_model, api_key=key, timeout_s=s.llm_timeout_s)
    return DeterministicWriter()


def kb_url(ctx: SkillContext, incident_id: int) -> str:
    """Where the knowledge-base page of this postmortem is served."""
    s = ctx.settings
    base = getattr(s, "public_url", None) or (f"http://{s.host}:{s.port}" if s is not None else "")
    return f"{str(base).rstrip('/')}/kb/postmortems/{incident_id}"


def _similar_via_search(ctx: SkillContext) -> Callable[[Session, Incident], list[RelatedIncident]]:
    """Similar past incidents from the knowledge search (hybrid index); same-service ones if it fails."""

    def find(s: Session, inc: Incident) -> list[RelatedIncident]:
        from knowledge.search import search
        from knowledge.search_types import SearchError

        try:
            hits = search(ctx, text=f"{inc.title}\n{inc.description}", kinds=("incident", "postmortem"),
                          service=inc.service_name, alert_name=inc.alert_name, exclude=(f"incident:{inc.id}",),
                          resolved_only=True, k=8)
        except SearchError as exc:
            log.info("similar-incident search unavailable (%s); using same-service incidents", exc)
            return similar_by_service(s, inc)
        out: list[RelatedIncident] = []
        for h in hits:
            if h.incident_id is None or h.incident_id == inc.id or any(r.incident_id == h.incident_id for r in out):
                continue
            row = s.get(Incident, h.incident_id)
            if row is not None and row.status == "resolved":
                out.append(RelatedIncident(row.id, row.title, row.service_name, row.root_cause, row.resolved_at))
            if len(out) == 3:
                break
        return out

    return find


def _confirmed(pm: Postmortem | None) -> bool:
    return bool(pm is not None and (pm.fields or {}).get("root_cause_confirmed"))


class PostmortemSkill(BaseSkill):
    """Draft, show, publish and export postmortems: `/postmortem draft|show|publish|export <incident>`."""

    name: ClassVar[str] = "postmortem"
    commands: ClassVar[tuple[str, ...]] = ("/postmortem",)
    keywords: ClassVar[tuple[str, ...]] = ("postmortem", "post-mortem", "retro", "incident review")
    examples: ClassVar[tuple[str, ...]] = ("/postmortem draft 42", "/postmortem publish 42")
    usage: ClassVar[str] = ("Usage: `/postmortem draft|show|publish|export <incident>`, "
                            "`/postmortem edit <incident> <section>: <text>`, "
                            "`/postmortem list [draft|published|owed] [service or team]`, "
                            "`/postmortem actions [mine] [all] [overdue] [unassigned] [service or team]`, "
                            "`/postmortem done|reopen <incident>.<n>`, `/postmortem assign <incident>.<n> @someone`, "
                            "`/postmortem due <incident>.<n> <date>`, "
                            "`/postmortem add <incident> <what to do> [@owner] [by <date>]`, "
                            "`/postmortem unpublish <incident> [why]`")

    def score(self, text: str) -> float:
        """The word "postmortem" is specific enough to win over generic incident words."""
        low = text.lower()
        if _OWED_ASKED.match(text) or _ACTIONS_WHO.match(text):  # above the incident list's "which incidents ...",
            return 0.9  # an incident's status for "who owns the action items for #101?"
        if any(p.match(text) for p in (_ACTIONS_ASKED, _DONE_SAID, _ASSIGN_SAID, _DUE_SAID, _ADD_SAID, _LEARNED)):
            return 0.85
        return 0.7 if ("postmortem" in low or "post-mortem" in low) else super().score(text)

    # --- doors ------------------------------------------------------------------------------------
    def run(self, request: SkillRequest, ctx: SkillContext) -> SkillResult:
        verb, _, rest = request.text.strip().partition(" ")
        verb = verb.lower()
        done = _DONE_SAID.match(request.text) if request.source in ("mention", "dm") else None
        if done or verb == "done":
            with ctx.db.session() as s:
                return mark_done(s, (done.group("a") or done.group("b")) if done else rest, user=request.user_id)
        if verb == "reopen" and request.source == "command":  # an action item closed by mistake
            with ctx.db.session() as s:
                return mark_done(s, rest, user=request.user_id, reopen=True)
        said = request.source in ("mention", "dm")
        if verb in ("assign", "due", "add") and request.source == "command" or said and (
                _ASSIGN_SAID.match(request.text) or _DUE_SAID.match(request.text) or _ADD_SAID.match(request.text)):
            return self._item_change(verb if request.source == "command" else "", rest, request, ctx)
        if verb == "actions" or (request.source in ("mention", "dm") and (_ACTIONS_ASKED.match(request.text)
                                                                          or _ACTIONS_WHO.match(request.text))):
            with ctx.db.session() as s:
                return listing_actions(s, rest if verb == "actions" else request.text, user=request.user_id,
                                       strict=request.source == "command" and verb == "actions")
        if request.source in ("mention", "dm") and (verb not in _VERBS or not _ID.match(rest.strip().split(" ")[0])):
            # Free text ("@warroom show the postmortem of #113"): a verb word and an incident number.
            words = [_SAY_DRAFT.get(w, w) for w in re.findall(r"[\w#-]+", request.text.lower())]
            verb = next((w for w in words if w in _VERBS), "show")
            rest = next((w for w in words if _ID.match(w) and w != verb), "")
        if request.source in ("mention", "dm") and _OWED_ASKED.match(request.text):
            return self.owed(ctx, request.text.lower())
        if verb == "list" and _OWED_WORDS & set(rest.lower().split()):  # "/postmortem list owed [service or team]"
            return self.owed(ctx, rest.lower(), strict=True)
        if verb == "owed" and request.source == "command":  # "/postmortem owed [service or team]"
            return self.owed(ctx, f"owed {rest}".lower(), strict=True)
        if verb == "list" or (request.source in ("mention", "dm") and re.search(r"\bpostmortems\b", request.text, re.I)
                              and not INCIDENT_REF.search(request.text)):
            return self.listing(ctx, (rest if request.source == "command" else request.text).lower())
        if verb not in _VERBS:
            raise SkillError(self.usage)
        ref, _, tail = rest.strip().partition(" ")
        incident_id = self._incident_id(ref, request, ctx)
        user = request.user_id
        if request.source == "command" and verb != "edit":  # words after the incident that would be dropped
            more = [w for w in tail.split() if _ID.match(w)]
            if more:
                raise SkillError(f"One incident at a time: `/postmortem {verb} {incident_id}`, then "
                                 f"`/postmortem {verb} {esc(more[0].lstrip('#'))}`.")
            fmt = [w for w in tail.lower().split() if w not in ("as", "in", "to", "markdown", "md", ".md")]
            if verb == "export" and fmt:
                raise SkillError(f"I export postmortems as Markdown only, not `{esc(' '.join(fmt)[:30])}`: "
                                 f"`/postmortem export {incident_id}`.")
        if verb in ("draft", "regenerate"):
            return self.draft(incident_id, ctx, user=user, force=verb == "regenerate")
        if verb == "show":
            return self.show(incident_id, ctx)
        if verb == "publish":
            return self.publish(incident_id, ctx, user=user)
        if verb == "edit":
            return self.edit(incident_id, tail, ctx, user=user)
        if verb in ("unpublish", "withdraw"):
            return self.unpublish(incident_id, ctx, user=user, why=tail)
        return self.export(incident_id, ctx)

    def _item_change(self, verb: str, rest: str, request: SkillRequest, ctx: SkillContext) -> SkillResult:
        """``assign <incident>.<n> <who>``, ``due <incident>.<n> <date>``, ``add [<incident>] <text>``, typed or
        said ("assign 109.2 to @bob", "109.2 is due friday", "add an action item to #109: ...")."""
        user, text = request.user_id, request.text
        with ctx.db.session() as s:
            if verb == "assign" or (not verb and (m := _ASSIGN_SAID.match(text))):
                if verb:
                    ref, _, who = rest.strip().partition(" ")
                else:
                    ref, who = (m.group("ref"), m.group("who")) if m.group("ref") else (m.group("ref2"), "me")
                return assign(s, ref, who, user=user)
            if verb == "due" or (not verb and (m := _DUE_SAID.match(text))):
                if verb:
                    ref, _, when = rest.strip().partition(" ")
                else:
                    ref, when = m.group("ref") or m.group("ref2"), m.group("when") or m.group("when2")
                return set_due(s, ref, when.strip().rstrip("?.!"), user=user)
            if verb == "add":
                first, _, tail = rest.strip().partition(" ")
                incident_id = int(_ID.match(first).group(1)) if _ID.match(first) else None  # type: ignore[union-attr]
                body = tail if incident_id is not None else rest
            else:
                m = _ADD_SAID.match(text)
                assert m is not None
                incident_id, body = int(m.group("id")), m.group("text")
        if incident_id is None:
            try:
                incident_id = self._incident_id("", request, ctx)
            except SkillError:
                raise SkillError("Which incident? `/postmortem add <incident> <what to do> [@owner] [by <date>]`, "
                                 "e.g. `/postmortem add 109 alert on pool saturation @bob by friday`.") from None
        with ctx.db.session() as s:
            return add_item(s, incident_id, body, user=user)

    def handle_action(self, action_id: str, request: SkillRequest, ctx: SkillContext) -> SkillResult | None:
        """Buttons on a draft: publish, regenerate, mark root cause confirmed; "Mark done" on an overdue item."""
        if action_id == "postmortem:action_done":
            with ctx.db.session() as s:
                return mark_done(s, str(request.data.get("value") or request.text), user=request.user_id)
        m = _ID.match(str(request.data.get("value") or request.text).strip())
        if m is None:
            raise SkillError("This button does not name an incident.")
        incident_id, user = int(m.group(1)), request.user_id
        verb = action_id.split(":", 1)[-1]
        if verb == "publish":
            return self.publish(incident_id, ctx, user=user)
        if verb == "regenerate":
            return self.draft(incident_id, ctx, user=user, force=True)
        if verb == "confirm_root_cause":
            return self.confirm_root_cause(incident_id, ctx, user=user)
        if verb == "unpublish":  # "Undo publish" on the answer to a publish
            return self.unpublish(incident_id, ctx, user=user)
        raise SkillError(f"Unknown postmortem action `{esc(verb)}`.")

    # --- verbs ------------------------------------------------------------------------------------
    def draft(self, incident_id: int, ctx: SkillContext, *, user: str | None, force: bool = False,
              writer: PostmortemWriter | None = None) -> SkillResult:
        """Write (or reuse, when the facts did not change) a draft and present it."""
        writer = writer or choose_writer(ctx)
        with ctx.db.session() as s:
            top = store.latest(s, incident_id=incident_id)
            facts = self._facts(s, incident_id, confirmed=_confirmed(top), ctx=ctx)
            doc = writer.write(facts)
            same = (top is not None and top.status == "draft" and not force
                    and (top.fields or {}).get("facts_sha256") == doc.fields.get("facts_sha256"))
            row = top if same and top is not None else store.add_version(
                s, incident_id=incident_id, doc=self._with_flags(doc, top), status="draft", author=user)
            return self._present(row, ctx, f"Postmortem draft for incident #{incident_id}")

    def listing(self, ctx: SkillContext, which: str) -> SkillResult:
        """The newest version of each postmortem, drafts first (they wait for someone to publish them)."""
        from knowledge.people import scope_in_text

        words = set(re.findall(r"[a-z]+", which))
        status = next((w for w in ("draft", "published") if w in words or f"{w}s" in words), None)
        with ctx.db.session() as s:
            scope = scope_in_text(session=s, text=which)  # "/postmortem list published ingress", "... payments"
            ids = set(s.scalars(select(Incident.id).where(Incident.service_name.in_(scope.services)))) if scope else ()
            rows = [r for r in store.list_latest(s, limit=500)
                    if (status is None or (r.status == "published") == (status == "published"))
                    and (scope is None or r.incident_id in ids)]
        rows.sort(key=lambda r: (r.status == "published", -(r.incident_id or 0)))
        lines = tuple(f"<{kb_url(ctx, r.incident_id)}|postmortem of #{r.incident_id}> v{r.version} "
                      f"[{r.status}] {esc(r.title[:100])}" for r in rows[:25] if r.incident_id is not None)
        waiting = sum(r.status != "published" for r in rows)
        on = f" {esc(scope.label)}" if scope else ""
        if not rows:
            return SkillResult(title="Postmortems", summary=f"No {status + ' ' if status else ''}postmortems{on} yet.",
                               ephemeral=True)
        more = " (25 shown)" if len(rows) > 25 else ""
        summary = (f"{len(rows)} postmortem(s){on}{more}, {waiting} not published yet. "
                   "`/postmortem show <incident>` opens one.")
        return SkillResult(title="Postmortems", summary=summary, sections=(Section("", lines),), ephemeral=True)

    def owed(self, ctx: SkillContext, which: str, strict: bool = False) -> SkillResult:
        """The incidents resolved in the last 90 days (of the services or team named) whose postmortem is not
        published: none at all (`/postmortem draft`), or a draft waiting (`/postmortem publish`); false alarms and
        duplicates owe none. Most severe first, then the longest waiting. ``strict`` (the command): a word it cannot
        read is an error, not every team's list."""
        from knowledge.people import scope_in_text

        now = utcnow()
        with ctx.db.session() as s:
            scope = scope_in_text(session=s, text=which)
            named = {n.lower() for n in scope.names} if scope else set()
            known = _OWED_WORDS | named | {"and", "on", "for", "team", "teams", "services"}
            unread = [w for w in re.findall(r"[\w.-]+", which) if w not in known]
            if strict and unread:
                raise SkillError(f"I cannot read `{esc(' '.join(unread)[:60])}`: `/postmortem list owed [service or "
                                 "team]`.")
            where = [Incident.status == "resolved", Incident.resolved_at >= now - dt.timedelta(days=_OWED_DAYS)]
            if scope is not None:
                where.append(Incident.service_name.in_(scope.services))
            incs = [r for r in s.scalars(select(Incident).where(*where).limit(2000))
                    if not (r.findings or {}).get("closed_as")]
            newest: dict[int, tuple[int, str]] = {}
            for iid, version, status in s.execute(select(Postmortem.incident_id, Postmortem.version, Postmortem.status)
                                                  .where(Postmortem.incident_id.in_([r.id for r in incs]))):
                if iid is not None and version > newest.get(iid, (0, ""))[0]:
                    newest[iid] = (version, status)
        owed = sorted((r for r in incs if newest.get(r.id, (0, ""))[1] != "published"),
                      key=lambda r: (r.severity, r.resolved_at or now, r.id))
        on = f" {esc(scope.label)}" if scope else ""
        if not owed:
            return SkillResult(title="Postmortems owed", summary=f"None: every incident resolved in the last "
                               f"{_OWED_DAYS} days{on} has a published postmortem ({len(incs)} resolved).")
        lines = []
        for r in owed[:25]:
            ago = (now - (r.resolved_at or now)).days
            version, status = newest.get(r.id, (0, ""))
            head = (f"*#{r.id}* SEV{r.severity} {esc(r.title[:80])} ({esc(r.service_name or 'no service')}, resolved "
                    + (f"{ago} day(s) ago" if ago else "today") + "): ")
            lines.append(head + (f"no postmortem: `/postmortem draft {r.id}`" if not version else
                                 f"{esc(status)} v{version} not published: `/postmortem show {r.id}`, then "
                                 f"`/postmortem publish {r.id}`"))
        more = f" ({len(lines)} shown)" if len(owed) > len(lines) else ""
        return SkillResult(title="Postmortems owed",
                           summary=f"{len(owed)} of {len(incs)} incident(s) resolved in the last {_OWED_DAYS} days"
                                   f"{on} have no published postmortem{more}: the most severe first, then the longest "
                                   "waiting.", sections=(Section("", tuple(lines)),),
                           data={"owed": [r.id for r in owed]})

    def show(self, incident_id: int, ctx: SkillContext) -> SkillResult:
        with ctx.db.session() as s:
            row = store.latest(s, incident_id=incident_id)
            if row is None:
                raise SkillError(f"Incident #{incident_id} has no postmortem yet: try "
                                 f"`/postmortem draft {incident_id}`.")
            return self._present(row, ctx, f"Postmortem for incident #{incident_id}")

    def publish(self, incident_id: int, ctx: SkillContext, *, user: str | None) -> SkillResult:
        with ctx.db.session() as s:
            self._incident(s, incident_id)
            row = store.publish(s, incident_id=incident_id, author=user)
            if row is None:
                raise SkillError(f"Nothing to publish: draft it first with `/postmortem draft {incident_id}`.")
            version = row.version
        who = f"<@{user}>" if user else "someone"
        # index.sync (if the bot has a handler for it) re-embeds the knowledge base: the loop closes.
        return SkillResult(
            title=f"Postmortem for incident #{incident_id} published",
            summary=f"Version {version} published by {who}: {kb_url(ctx, incident_id)}. "
                    "Similar-incident search will find it once the index is synced.",
            actions=(Action("postmortem:unpublish", "Undo publish", str(incident_id)),),  # a click by mistake
            data={"postmortem_version": version,
                  "follow_up_jobs": [{"kind": "index.sync", "payload": {},
                                      "dedup_key": f"index.sync:postmortem:{incident_id}:v{version}"}]})

    def unpublish(self, incident_id: int, ctx: SkillContext, *, user: str | None, why: str = "") -> SkillResult:
        """Take a published postmortem back (published by mistake, a wrong root cause): out of similar-incident
        search and answers until it is published again; every version stays."""
        with ctx.db.session() as s:
            self._incident(s, incident_id)
            before = store.latest(s, incident_id=incident_id)
            row = store.withdraw(s, incident_id=incident_id, author=user, why=mask_secrets(why.strip()))
            if row is None:
                raise SkillError(f"The postmortem of #{incident_id} is not published: nothing to take back.")
            again = before is not None and before.id == row.id
            version = row.version
        if again:
            return SkillResult(title=f"Postmortem for incident #{incident_id} already withdrawn", ephemeral=True,
                               summary=f"`/postmortem publish {incident_id}` publishes it again.")
        who = f"<@{user}>" if user else "someone"
        return SkillResult(
            title=f"Postmortem for incident #{incident_id} withdrawn",
            summary=f"{who} took it back (version {version}" + (f": {esc(why.strip()[:200])}" if why.strip() else "")
                    + "). It leaves similar-incident search and answers once the index is synced; "
                    f"`/postmortem edit {incident_id} ...` then `/postmortem publish {incident_id}` brings it back.",
            data={"postmortem_version": version,
                  "follow_up_jobs": [{"kind": "index.sync", "payload": {},
                                      "dedup_key": f"index.sync:postmortem:{incident_id}:v{version}"}]})

    def edit(self, incident_id: int, text: str, ctx: SkillContext, *, user: str | None) -> SkillResult:
        """Replace one narrative section: ``<section>: <text>`` (sections: summary, root_cause, ...)."""
        section, sep, body = text.partition(":")
        key = section.strip().lower().replace(" ", "_").replace("-", "_")
        if not sep or key not in PROSE_KEYS or not body.strip():
            raise SkillError("Usage: `/postmortem edit <incident> <section>: <text>` with section one of "
                             + ", ".join(PROSE_KEYS))
        with ctx.db.session() as s:
            top = store.latest(s, incident_id=incident_id)
            if top is None:
                raise SkillError(f"Draft it first with `/postmortem draft {incident_id}`.")
            prose = {k: str(v) for k, v in ((top.fields or {}).get("sections") or {}).items()}
            prose[key] = body.strip()[:4000]
            facts = self._facts(s, incident_id, confirmed=_confirmed(top), ctx=ctx)
            doc = render(facts, prose, writer=top.writer, extra={"edited_section": key})
            row = store.add_version(s, incident_id=incident_id, doc=self._with_flags(doc, top), status="edited",
                                    author=user)
            return self._present(row, ctx, f"Postmortem for incident #{incident_id} edited ({key})")

    def confirm_root_cause(self, incident_id: int, ctx: SkillContext, *, user: str | None) -> SkillResult:
        with ctx.db.session() as s:
            top = store.latest(s, incident_id=incident_id)
            if top is None:
                raise SkillError(f"Draft it first with `/postmortem draft {incident_id}`.")
            inc = self._incident(s, incident_id)
            prose = {k: str(v) for k, v in ((top.fields or {}).get("sections") or {}).items()}
            if not prose.get("root_cause"):
                raise SkillError("There is no root cause to confirm: edit it first with "
                                 f"`/postmortem edit {incident_id} root_cause: ...`.")
            if not inc.root_cause:
                inc.root_cause = prose["root_cause"]
            facts = self._facts(s, incident_id, confirmed=True, ctx=ctx)
            prose["went_wrong"] = prose.get("went_wrong", "").replace("The root cause is not confirmed yet.", "")
            doc = self._with_flags(render(facts, prose, writer=top.writer), top)
            doc.fields.update(root_cause_confirmed=True, root_cause_confirmed_by=user)
            row = store.add_version(s, incident_id=incident_id, doc=doc, status="edited", author=user)
            res = self._present(row, ctx, f"Root cause of incident #{incident_id} confirmed")
        return dataclasses.replace(res, data={**res.data, "refresh_card": incident_id})

    def export(self, incident_id: int, ctx: SkillContext) -> SkillResult:
        with ctx.db.session() as s:
            row = store.latest(s, incident_id=incident_id)
            if row is None:
                raise SkillError(f"Incident #{incident_id} has no postmortem to export.")
            return SkillResult(title=f"Postmortem for incident #{incident_id} (v{row.version}, {row.status})",
                               attachments=(self._file(row),), data={"markdown": row.markdown})

    # --- helpers ----------------------------------------------------------------------------------
    @staticmethod
    def _with_flags(doc: PostmortemDoc, top: Postmortem | None) -> PostmortemDoc:
        """What a new version keeps from the one before: the confirmed root cause, the closed action items."""
        carry_marks(doc.fields, top)
        if _confirmed(top) and top is not None:
            doc.fields.update(root_cause_confirmed=True,
                              root_cause_confirmed_by=(top.fields or {}).get("root_cause_confirmed_by"))
        return dataclasses.replace(doc, markdown=with_items_section(doc.markdown, doc.fields.get("action_items") or []))

    @staticmethod
    def _incident(s: Session, incident_id: int) -> Incident:
        inc = s.get(Incident, incident_id)
        if inc is None:
            raise SkillError(f"There is no incident #{incident_id}.")
        return inc

    def _facts(self, s: Session, incident_id: int, *, confirmed: bool, ctx: SkillContext) -> PostmortemFacts:
        self._incident(s, incident_id)
        facts = assemble_facts(s, incident_id=incident_id, root_cause_confirmed=confirmed,
                               similar=_similar_via_search(ctx))
        assert facts is not None
        return redact(facts)

    @staticmethod
    def _incident_id(ref: str, request: SkillRequest, ctx: SkillContext) -> int:
        m = _ID.match(ref.strip())
        if m:
            return int(m.group(1))
        if ref.strip():
            raise SkillError(f"`{esc(ref[:40])}` is not an incident number (try `/postmortem draft 42`).")
        if request.incident_id is not None:
            return request.incident_id
        if request.channel_id:
            from sqlalchemy import select

            with ctx.db.session() as s:
                found = s.scalar(select(Incident.id).where(Incident.channel_id == request.channel_id)
                                 .order_by(Incident.id.desc()).limit(1))
            if found is not None:
                return int(found)
        raise SkillError("Which incident? Try `/postmortem draft 42`.")

    @staticmethod
    def _file(row: Postmortem) -> Attachment:
        return Attachment(filename=f"postmortem-incident-{row.incident_id}-v{row.version}.md",
                          content=row.markdown.encode("utf-8"),
                          title=f"Postmortem #{row.incident_id} v{row.version} ({row.status})")

    def _present(self, row: Postmortem, ctx: SkillContext, title: str) -> SkillResult:
        f: dict[str, Any] = row.fields or {}
        d = f.get("durations_min") or {}
        items = f.get("action_items") or []
        llm = f.get("llm") or {}
        note = ""
        if llm.get("fallback"):
            note = f"\n_LLM writer unavailable ({esc(llm['fallback'])}); this is the deterministic draft._"
        elif llm.get("removed"):
            note = f"\n_The checker removed {len(llm['removed'])} unsupported sentence(s) from the LLM draft._"
        lines = tuple(f"{row.incident_id}.{n} {esc(a.get('text', ''))[:200]} — "
                      f"{esc(a.get('owner_name') or 'unassigned')}"
                      + (f" (done by <@{a.get('done_by')}>)" if a.get("done_at") else "")
                      + (f", {when}" if (when := due_words(a, utcnow().date())) else "")
                      for n, a in enumerate(items[:8], start=1))
        iid = str(row.incident_id)
        actions: tuple[Action, ...] = ()
        if row.status != "published":
            actions = (Action("postmortem:publish", "Publish", iid, "primary"),
                       Action("postmortem:regenerate", "Regenerate", iid))
            if f.get("root_cause_status") != "confirmed" and f.get("sections", {}).get("root_cause"):
                actions += (Action("postmortem:confirm_root_cause", "Mark root cause confirmed", iid),)
        return SkillResult(
            title=title,
            summary=esc(row.summary[:600]) + f"\n<{kb_url(ctx, row.incident_id)}|Open it in the knowledge base>"
                    + note,
            fields=(("Version", f"v{row.version} ({row.status}, {row.writer})"),
                    ("Duration", f"{d.get('to_resolve')} min" if d.get("to_resolve") is not None else "open"),
                    ("Root cause", str(f.get("root_cause_status", "unknown"))),
                    ("Action items", str(len(items)))),
            sections=(Section("Action items", lines),) if lines else (),
            actions=actions, attachments=(self._file(row),),
            data={"postmortem_version": row.version, "incident_id": row.incident_id, "status": row.status})
