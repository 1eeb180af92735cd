"""``routing``: who should take this, and who is on call (``/route``, ``/oncall``, the incident card).

The ranking itself lives in :mod:`skills.routing_engine`; this module turns it into results,
triage findings and the two card buttons:

- ``routing:assign`` (value ``"<incident id>:<user id>"``) sets the assignee and adds a timeline event;
- ``routing:wrong_owner`` (same value, or a JSON ticket from ``/route``) stores "wrong owner"
  feedback (learned from: history demotes the person, ``warroom train routing`` retrains with the
  corrected team) and reassigns the incident to the next candidate;
- ``routing:undo`` (value: the feedback's id) takes such a click back, for whoever made it.
"""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any

from sqlalchemy import select

from knowledge import people
from knowledge.models import Expert, Feedback, Incident, Team, TimelineEvent, utcnow
from knowledge.routing_history import record_wrong_owner
from knowledge.search import undo_feedback
from skills import oncall_cover
from skills.base import (
    ABOUT_HERE,
    INCIDENT_REF,
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
    slack_when,
)
from skills.clock_words import Moment, moment
from skills.cover_request import COVER_ASKED, TAKE_ASKED, cover_request, parse_take, parse_value, take_offer
from skills.escalation import ESCALATION_ASKED, escalation
from skills.incident import pagerduty_jobs
from skills.oncall_load import LOAD_ASKED, oncall_load
from skills.oncall_mine import MINE_ASKED, my_shifts
from skills.person import asked_person, people_named, person
from skills.redact import mask_secrets
from skills.routing_engine import RoutingDecision, route
from skills.service_deps import DEPS_ASKED, INCIDENT_DEPS_ASKED, asked_service, dependencies, incident_dependencies
from skills.shift_swap import SWAP_ASKED, swap_answer, swap_request
from skills.team_roster import ROSTER_ASKED, team_roster

__all__ = ["RoutingSkill"]

_SERVICE_ARG = re.compile(r"(?:^|\s)(?:service[:=]|--service\s+)([\w.-]+)", re.IGNORECASE)
_ONCALL_USAGE = ("Usage: `/oncall [team or service ...] [when]`, when as `tomorrow`, `monday 18:00`, `at 06:00 CET`, "
                 "`in 3h`, `yesterday 03:00` or `2026-12-24 18:00`; `/oncall mine [when]` (your own shifts); "
                 "`/oncall who @someone` (their time, shifts, incidents); `/oncall around [team]` (who is awake); "
                 "`/oncall load [team] [span]` (who the pager hit); `/oncall cover|release ...`")
# The words of a page that name nobody ("page the on-call", "wake up someone about this"): the incident's owners
_PAGE_FILLER = frozenset("""page paging wake up bring pull loop call in the on-call oncall on-calls on call someone
    somebody anyone anybody them him her team teams people folks engineer engineers owner owners owning service please
    pls can could you about this it here now for help us me again right away asap urgent urgently immediately too also
    and or of whoever is who's primary person""".split())
_ONCALL_FILLER = frozenset("for the team teams and or on at who is are was were will be of & , ? now right call "
                           "on-call oncall schedule rotation rota shift shifts next".split())
_VALUE = re.compile(r"^(\d+):([A-Z0-9]{2,32})$")
MAX_TEXT = 4000
# "who was on call when #113 opened?", "... when #113 started": the moment the incident opened
_WHEN_IT = re.compile(r"\bwhen\s+(?:#|inc(?:ident)?[-\s#]*)(\d{1,9})\s+(?:opened|started|began|fired|was\s+(?:opened|"
                      r"declared|created|raised)|came\s+in)\b"
                      # "who was on call during #109?" (it answered for now)
                      r"|\b(?:during|at\s+the\s+time\s+of)\s+(?:#|inc(?:ident)?[-\s#]*)(\d{1,9})\b", re.I)
# "who should I call?", "who can I ask?", "who do we page?"
_CALL = r"who\s+(?:should|can|could|do|must)\s+(?:i|we)\s+(?:call|ask|page|ping|escalate\s+to|talk\s+to)"
# "page the payments team"; "wake up the storage team", "bring in platform", "loop in carla" (a mention is an invite:
# the incident skill's)
_PAGE = re.compile(r"^\W*(?:(?:please|pls|can you|could you)\s+)?(?:page\b|(?:wake\s+up|bring\s+in|pull\s+in|loop\s+in)"
                   r"\b(?!\s*<@))", re.I)
# A call for help with nothing else said: under an incident's card, "who should take it?" for that incident
_HELP_HERE = re.compile(rf"^\W*(?:{_CALL}"
                        r"|(?:can|could) (?:some|any)(?:one|body) (?:take a look|have a look|look|help)"
                        r"|who (?:can|could|should) help(?: (?:us|me))?"
                        r"|(?:i |we )?need (?:some )?help)(?:\s+(?:here|please|with (?:it|this)|on (?:it|this)))*"
                        r"\W*$", re.I)
# "when does the payments rotation change?", "when is the next handover for dns?", "who's next on call for payments?",
# "who's up next?" (the knowledge base's passages, or a ranking of who should take the words)
_NEXT_SHIFT = re.compile(
    r"^\W*(?:when\s+(?:does|is|will|do)\s+(?:the\s+)?(?:next\s+)?(?:[\w.-]+(?:'s)?\s+)?(?:on[- ]?call\s+)?"
    r"(?:rotation|shift|handover|hand-?off|on[- ]?call|pager)s?\s*(?:change|end|rotate|hand\s*over|switch|flip|happen"
    r"|start)?\b(?!\s+(?:for|of)\s+<@)"
    r"|who(?:'s|\s+is)\s+(?:up\s+)?next(?:\s+(?:on[- ]?call|on\s+the\s+pager))?\b)", re.I)
_WHO = re.compile(r"\bwho(?:'s| is| are| was| were| will be)? "
                  r"(?:(?:on[- ]?call)|(?:should|can|could) (?:take|handle|own|look at|fix|help))\b"
                  # "is anyone on call for payments?", "is there somebody on call for dns?" (the knowledge base's)
                  r"|^\W*(?:is|are)\s+(?:there\s+)?(?:any|some)(?:one|body)\s+on[- ]?call\b"
                  r"|\bwho owns\b|\bwho is the owner\b|\bwho knows\b|\bwho(?:'s| is) (?:the |our )?(?:expert|go-to)\b"
                  # "who handles dns?", "who looks after kafka?", "who is responsible for ingest?"
                  r"|^\W*who (?:handles|covers|looks after|takes care of|maintains|supports|is responsible for)\b"
                  r"|\b(?:can|could) (?:some|any)(?:one|body) (?:take a look|have a look|look at (?:it|this)|help)\b"
                  r"|^\W*(?:i |we )?need (?:some )?help\b"
                  # "who should I call?", "who can I ask?", "who do we page?"
                  rf"|^\W*{_CALL}\b", re.IGNORECASE)




def _own_team(s: Any, user_id: str | None) -> list[str]:
    """The asker's team, as a one-name list (none: every team)."""
    me = s.scalar(select(Expert).where(Expert.slack_user_id == user_id)) if user_id else None
    return [me.team.name] if me is not None and me.team is not None else []


def _line(c: Any, rank: int) -> str:
    return f"{rank}. <@{c.user_id}> ({esc(c.name)}, {esc(c.team or 'no team')}, score {c.score:.2f}): {esc(c.why)}"


def _lines(d: RoutingDecision) -> tuple[str, ...]:
    out = [_line(c, i) for i, c in enumerate(d.candidates, 1)]
    if d.fallback:
        out.append(f"Fallback: {d.fallback}")
    return tuple(out)


class RoutingSkill(BaseSkill):
    """Suggest who should take a ticket or incident, with reasons; show who is on call."""

    name = "routing"
    commands = ("/route", "/oncall")
    keywords = ("who should", "route", "on call", "oncall", "on-call", "who owns", "owner of", "assign")
    usage = ("Usage: `/route <ticket text> [service:<name>]` or `/route #<incident>`; "
             + _ONCALL_USAGE.removeprefix("Usage: ") + "; " + oncall_cover.USAGE + ", `/oncall release [team]`")
    examples = ("/route payments-api returns 503 at checkout", "/oncall payments",
                "/oncall cover payments until 18:00", "@warroom who's the secondary for payments?",
                "@warroom when does my shift end?", "@warroom is alice available?",
                "@warroom is anyone awake in platform?", "@warroom I'm sick, can someone cover for me?",
                "@warroom swap my shift with alice next week")

    def score(self, text: str) -> float:
        """0.85 for "who is on call ..." / "who should take|handle|own ...", else keyword scoring."""
        if ROSTER_ASKED.match(text) and re.match(r"^\W*(?:how|where)\b", text, re.I):  # "how do I reach the platform
            return 0.92  # team?": above the knowledge base's how-to questions
        if (_WHO.search(text) or _PAGE.match(text) or MINE_ASKED.match(text) or DEPS_ASKED.match(text)
                or INCIDENT_DEPS_ASKED.match(text) or ESCALATION_ASKED.match(text) or LOAD_ASKED.match(text)
                or ROSTER_ASKED.match(text) or _NEXT_SHIFT.match(text) or COVER_ASKED.match(text)
                or TAKE_ASKED.match(text) or SWAP_ASKED.match(text)):
            return 0.85
        if asked_person(text):  # "who is alice?", "is @carla available?" (unknown names go to the knowledge base)
            return 0.8
        return super().score(text)

    def warm(self, ctx: SkillContext) -> None:
        """Load the classifier once so the first decision is quick."""
        from skills.routing_engine import routing_model

        routing_model(ctx)

    # --- doors --------------------------------------------------------------------------------
    def run(self, request: SkillRequest, ctx: SkillContext) -> SkillResult:
        text = request.text.strip()
        if request.command == "/oncall":  # a team, or a service ("/oncall ingest": the team that owns it)
            verb, _, rest = text.partition(" ")
            if verb.lower() in ("all", "everyone", "everybody", "teams") and not rest.strip():  # "no team called all"
                text = ""
            if verb.lower() in ("around", "awake", "available", "team", "roster"):  # "/oncall around payments"
                with ctx.db.session() as s:
                    return team_roster(s, rest, request.user_id, request.incident_id)
            if verb.lower() == "load":  # "/oncall load [team] [this month]": who the pager hit (skills/oncall_load.py)
                with ctx.db.session() as s:
                    return oncall_load(s, rest, request.user_id)
            if verb.lower() == "cover":  # someone takes the pager for a while (skills/oncall_cover.py)
                return oncall_cover.cover(rest, request.user_id, ctx, request.channel_id)
            if verb.lower() == "release":
                return oncall_cover.release(rest, request.user_id, ctx, request.channel_id)
            if verb.lower() in ("who", "whois") and not re.match(r"(?:is|was|will|are)\b", rest):
                if not rest.strip():  # not "/oncall who is on call for payments tomorrow"
                    raise SkillError("Who? `/oncall who @someone` (or their name); `/oncall` alone: who is on call.")
                with ctx.db.session() as s:  # "/oncall who @alice": their local time, shifts, incidents
                    found = person(s, rest.strip())
                if found is not None:
                    return found
                text = rest  # "/oncall who payments": the team's
            if verb.lower() in ("mine", "me", "my"):  # "/oncall mine": my own shifts (skills/oncall_mine.py)
                with ctx.db.session() as s:
                    when = self._moment(s, rest, request.user_id)
                    if when is None and rest.strip(" ?") and rest.strip(" ?").lower() not in ("shifts", "schedule"):
                        raise SkillError(f"I cannot read `{esc(rest[:60])}`: `/oncall mine [when]`.")
                    return my_shifts(s, request.user_id, when, asked=when is not None)
            with ctx.db.session() as s:  # "/oncall payments platform": both (the second was ignored)
                when = self._moment(s, text, request.user_id)
                rest = when.without(text).strip() if when else text
                named = people.teams_in_text(session=s, text=rest)
                if named and (unread := _unread_oncall_words(s, rest)):  # "/oncall payments thursdya": not dropped
                    raise SkillError(f"I cannot read `{esc(' '.join(unread)[:60])}`. {_ONCALL_USAGE}")
            return self._oncall(named or ([rest] if rest else []), ctx, when)
        if request.command is None and LOAD_ASKED.match(text):  # "who's been paged the most this week?"
            with ctx.db.session() as s:
                return oncall_load(s, text, request.user_id)
        if request.command is None and COVER_ASKED.match(text):  # "I'm sick, can someone cover for me?"
            with ctx.db.session() as s:
                return cover_request(s, text, request.user_id, request.channel_id)
        if request.command is None and SWAP_ASKED.match(text):  # "swap my shift with alice next week"
            with ctx.db.session() as s:
                return swap_request(s, text, request.user_id)
        if request.command is None and TAKE_ASKED.match(text):  # "I'll take the pager for platform"
            with ctx.db.session() as s:
                return take_offer(s, text, request.user_id)
        if request.command is None and ROSTER_ASKED.match(text):  # "is anyone awake in platform?"
            with ctx.db.session() as s:
                return team_roster(s, text, request.user_id, request.incident_id)
        if request.command is None and (who := asked_person(text)) is not None:  # "what time is it for alice?"
            with ctx.db.session() as s:
                found = person(s, who)
            if found is not None:
                return found
            if not re.search(r"\bon[- ]?call\b", text, re.I):  # "who is pgbouncer?": not a person
                from skills.ask import AskSkill

                return AskSkill().run(request, ctx)
        if request.command is None and (deps := INCIDENT_DEPS_ASKED.match(text)) is not None:  # "blast radius of
            with ctx.db.session() as s:  # #113?", "what depends on this?" under its card
                return incident_dependencies(s, int(deps.group("id")) if deps.group("id") else request.incident_id)
        if request.command is None and (svc := asked_service(text)) is not None:  # "what depends on dns?"
            with ctx.db.session() as s:
                return dependencies(s, svc)
        if request.command is None and ESCALATION_ASKED.match(text):  # "who's the secondary for payments?"
            with ctx.db.session() as s:
                return escalation(s, text, request.incident_id)
        if request.command is None and MINE_ASKED.match(text):  # "when is my next shift?", "am I on call friday?"
            with ctx.db.session() as s:
                when = self._moment(s, text, request.user_id)
                return my_shifts(s, request.user_id, when, asked=bool(re.match(r"^\W*am\s+i\b", text, re.I)))
        if request.command is None and _NEXT_SHIFT.match(text) and not re.search(r"\b(?:i|my|me)\b", text, re.I):
            with ctx.db.session() as s:  # "when does the payments rotation change?": /oncall says who is next, when
                named = people.teams_in_text(session=s, text=text)
                who = people_named(s, re.sub(r"(?<=\w)['’]s\b", "", text)) if not named else []
                if who and (card := person(s, f"<@{who[0]}>")) is not None:  # "when does bob's shift end?": his
                    return card
                named = named or _own_team(s, request.user_id)
            return self._oncall(named, ctx)
        if request.command is None and _PAGE.match(text):  # "@warroom page the payments team"
            ref = INCIDENT_REF.search(text)  # "page the storage team about #113", or under the card: about it
            about = int(ref.group(1)) if ref else request.incident_id
            if ref is None or self._incident_exists(ctx, about):
                return self._page(INCIDENT_REF.sub(" ", text), ctx, about, request.user_id)
        if request.command is None and re.search(r"\bon[- ]?call\b", text, re.I) and (
                m := _WHEN_IT.search(text)) is not None:  # "who was on call when #113 opened?": then, for its team
            with ctx.db.session() as s:
                said_id = m.group(1) or m.group(2)
                inc = s.get(Incident, int(said_id))
                if inc is None:
                    raise SkillError(f"There is no incident #{said_id}.")
                named = people.teams_in_text(session=s, text=INCIDENT_REF.sub(" ", text)) or (
                    people.teams_in_text(session=s, text=inc.service_name) if inc.service_name else [])
                at = inc.created_at
            return self._oncall(named, ctx, Moment(at=at, said=f"when #{inc.id} opened", spans=()))
        if request.command is None and re.search(r"\bon[- ]?call\b", text, re.I) and (
                (ref := INCIDENT_REF.search(text)) or request.incident_id is not None):
            with ctx.db.session() as s:  # "who is on call for #113?", "who's on call?" under its card: its team's
                inc = s.get(Incident, int(ref.group(1)) if ref else request.incident_id)
                if inc is None:
                    raise SkillError(f"There is no incident #{ref.group(1) if ref else request.incident_id}.")
                named = people.teams_in_text(session=s, text=INCIDENT_REF.sub(" ", text)) or (
                    people.teams_in_text(session=s, text=inc.service_name) if inc.service_name else [])
                when = self._moment(s, INCIDENT_REF.sub(" ", text), request.user_id)
            if named:
                return self._oncall(named, ctx, when)
        if request.command is None and re.search(r"\bon[- ]?call\b", text, re.I):
            with ctx.db.session() as s:  # "@warroom who is on call for payments and platform?": both
                # "... tomorrow?", "who was on call at 03:00?"; a time in another sentence is about something else
                # ("who is on call for payments? it started at 14:05": now)
                asked = next((x for x in re.split(r"(?<=[.?!;])\s+", text) if re.search(r"\bon[- ]?call\b", x, re.I)),
                             text)
                when = self._moment(s, asked, request.user_id)
                named = people.teams_in_text(session=s, text=text.replace(asked, when.without(asked)) if when else text)
            return self._oncall(named, ctx, when)
        return self._route(text, request, ctx)

    def triage(self, facts: IncidentFacts, ctx: SkillContext) -> Finding | None:
        """Put the suggested responder on the incident card, with Assign / Wrong owner buttons."""
        text = mask_secrets(" ".join([facts.title, facts.description, *facts.log_lines[:5]]))[:MAX_TEXT]
        d = route(ctx, text=text, service=facts.service, incident_id=facts.incident_id)
        return self._finding(facts.incident_id, d)

    def handle_action(self, action_id: str, request: SkillRequest, ctx: SkillContext) -> SkillResult | None:
        verb = action_id.split(":", 1)[1] if ":" in action_id else ""
        if verb == "assign":
            inc_id, uid = self._parse(request.text)
            return self._assign(inc_id, uid, request.user_id, ctx, kind="assign",
                                how=f"assigned by <@{request.user_id}> from the routing suggestion")
        if verb == "wrong_owner":
            if request.text.startswith("{"):
                return self._wrong_ticket(request, ctx)
            inc_id, uid = self._parse(request.text)
            return self._wrong_incident(inc_id, uid, request.user_id, ctx)
        if verb == "undo":
            return self._undo(request.text, request.user_id, ctx)
        if verb == "cover":  # "I'll cover" on a cover request: whoever clicks takes the pager (/oncall cover's rules)
            team, span, requester = parse_value(request.text)
            if request.user_id == requester:
                raise SkillError("You asked for the cover: someone else takes it with this button.")
            return oncall_cover.cover(f"{team} {span}".strip(), request.user_id, ctx, request.channel_id)
        if verb in ("swap_accept", "swap_decline"):  # the other person's answer (skills/shift_swap.py)
            with ctx.db.session() as s:
                return swap_answer(s, request.text, request.user_id, verb == "swap_accept", request.channel_id)
        if verb == "take_pager":  # "Take the pager" on "I'll take the pager": the clicker, /oncall cover's rules
            team, span = parse_take(request.text)
            return oncall_cover.cover(f"{team} {span}".strip(), request.user_id, ctx, request.channel_id)
        raise SkillError(f"unknown routing action '{verb}'")

    # --- /oncall and /route -----------------------------------------------------------------------

    @staticmethod
    def _incident_exists(ctx: SkillContext, incident_id: int | None) -> bool:
        with ctx.db.session() as s:
            return incident_id is not None and s.get(Incident, incident_id) is not None

    def _page(self, text: str, ctx: SkillContext, incident_id: int | None = None,
              user_id: str | None = None) -> SkillResult:
        """Name (and so notify) whoever is on call for each team or service in the words. About an incident ("page
        storage about #113", or under its card): the team of its service when none is named, the page on its
        timeline, and the people added as responders where PagerDuty opened it."""
        with ctx.db.session() as s:  # "page payments and platform": both (the second was dropped)
            teams = people.teams_in_text(session=s, text=text)
            inc = s.get(Incident, incident_id) if incident_id is not None else None
            persons = people_named(s, text) if not teams else []
            unread = [w for w in re.findall(r"[a-z][\w'-]*", re.sub(r"<[^>]*>", " ", text.lower()))
                      if w not in _PAGE_FILLER]
            if not teams and not persons and unread:  # "wake up the database team": no such team (it paged the
                known = ", ".join(s.scalars(select(Team.name).order_by(Team.name)).all()[:12])  # incident's owners)
                raise SkillError(f"Page whom? I know no team, service or person called `{esc(' '.join(unread)[:60])}`"
                                 + (f". Teams: {esc(known)}." if known else "."))
            if not teams and not persons and inc is not None and inc.service_name:  # "page the on-call": owners
                teams = people.teams_in_text(session=s, text=inc.service_name)
        if persons:  # "page alice about #113", "page @carla": them (it paged the team's on-call instead)
            return self._page_people(persons, ctx, inc, user_id)
        if not teams:
            raise SkillError("Page whom? Name a team or a service, e.g. `@warroom page the payments team` or "
                             "`@warroom page ingest`" + (f" (about incident #{incident_id})." if inc else "."))
        result = self._oncall(teams, ctx)
        paged = list(dict.fromkeys(u for r in result.data["oncall"] for u in r["people"]))
        nobody = [r["team"] for r in result.data["oncall"] if not r["people"]]
        named = esc(", ".join(teams))
        about = ""
        data: dict[str, Any] = dict(result.data)
        if inc is not None:
            about = (f" about incident #{inc.id} (SEV{inc.severity}, {esc(inc.title[:80])}"
                     + (f", in <#{inc.channel_id}>" if inc.channel_id else "") + ")")
            with ctx.db.session() as s:
                row = s.get(Incident, inc.id)
                said = (f"<@{user_id}> paged " if user_id else "Paged ") + f"{', '.join(teams)}: " + (
                    ", ".join(f"<@{u}>" for u in paged) if paged else "nobody on call")
                s.add(TimelineEvent(incident_id=inc.id, at=utcnow(), kind="paged", text=said, actor=user_id))
                pd = pagerduty_jobs(s, ctx.settings, row, "responders", ",".join(paged), user_id) if (
                    paged and row is not None and row.status != "resolved") else []
            data.update(incident_id=inc.id, refresh_card=inc.id, follow_up_jobs=pd)
        summary = (", ".join(f"<@{u}>" for u in paged) + f": you are on call for {named}, and wanted here{about}."
                   if paged else f"Nobody is on call for {named} now{about and ' to page' + about}.")
        if paged and nobody:
            summary += f" Nobody is on call for {esc(', '.join(nobody))} now."
        return dataclasses.replace(result, title=f"Paging {', '.join(teams)}", summary=summary, data=data)

    @staticmethod
    def _page_people(persons: list[str], ctx: SkillContext, inc: Incident | None, user_id: str | None) -> SkillResult:
        """Call the people named (the answer mentions them, so Slack notifies them); about an incident, the page on
        its timeline and them added as responders where PagerDuty opened it."""
        who = ", ".join(f"<@{u}>" for u in persons[:10])
        data: dict[str, Any] = {"paged": persons[:10]}
        about = ""
        if inc is not None:
            about = (f" about incident #{inc.id} (SEV{inc.severity}, {esc(inc.title[:80])}"
                     + (f", in <#{inc.channel_id}>" if inc.channel_id else "") + ")")
            with ctx.db.session() as s:
                row = s.get(Incident, inc.id)
                said = (f"<@{user_id}> paged " if user_id else "Paged ") + who
                s.add(TimelineEvent(incident_id=inc.id, at=utcnow(), kind="paged", text=said, actor=user_id))
                pd = pagerduty_jobs(s, ctx.settings, row, "responders", ",".join(persons[:10]), user_id) if (
                    row is not None and row.status != "resolved") else []
            data.update(incident_id=inc.id, refresh_card=inc.id, follow_up_jobs=pd)
        with ctx.db.session() as s:
            known = people.experts_by_ids(session=s, user_ids=persons[:10])
            names = [known[u].name if u in known else u for u in persons[:10]]
        asker = f" by <@{user_id}>" if user_id else ""
        return SkillResult(title="Paging " + ", ".join(names), summary=f"{who}: you are wanted here{about}{asker}.",
                           data=data)

    @staticmethod
    def _moment(s: Any, text: str, user_id: str | None) -> Moment | None:
        """The moment an on-call question asks about ("tomorrow", "monday 18:00 CET", "at 03:00"), in the asker's
        zone; None: now."""
        me = s.scalar(select(Expert).where(Expert.slack_user_id == user_id)) if user_id else None
        return moment(text, me.timezone if me is not None and me.timezone else "", utcnow().replace(microsecond=0),
                      usage=_ONCALL_USAGE, past=bool(re.search(r"\b(?:was|were)\b", text, re.I)),
                      is_team=lambda w: people.team_named(session=s, name=w) is not None)

    def _oncall(self, teams: list[str], ctx: SkillContext, when: Moment | None = None) -> SkillResult:
        """Who is on call for each of ``teams``, or for every team: now, or at the moment ``when``."""
        at = when.at if when is not None else None
        with ctx.db.session() as s:
            try:
                rows = [r for name in (teams or [None]) for r in people.oncall_by_team(session=s, team=name, at=at)]
            except LookupError as exc:
                raise SkillError(str(exc)) from None
        lines = []
        for r in rows:
            where = f"<#{r.channel}>" if r.channel else f"the {r.team} team"
            who = ", ".join(f"<@{u}> ({esc(n)})" for u, n in r.people)
            until = f" until {slack_when(r.until)}" if r.until and r.people else ""
            why = {"override": " covering", "ical": " per the calendar"}.get(r.source, "")  # why them
            line = f"*{esc(r.team)}*: " + (f"{who}{why}{until}" if who else
                                             f"nobody on call {'then' if when else 'now'}: ask in {where}")
            if r.skipped:
                line += f" (skipped, deactivated: {esc(', '.join(r.skipped))})"
            if r.next_at:
                line += (f"; next: {', '.join(f'<@{u}> ({esc(n)})' for u, n in r.next_people)} from "
                         f"{slack_when(r.next_at)}" if r.next_people else
                         f"; *then nobody* from {slack_when(r.next_at)}: a gap in the schedule")
            if not who and when is None:  # nobody now: how to fix that from here
                line += f". To take it: `/oncall cover {esc(r.team)} for 2h`"
            lines.append(line)
        if not lines:
            lines = ["No teams are defined yet: import them with `warroom experts import FILE`."]
        gone = when is not None and when.at < utcnow()
        summary = "" if when is None else (f"{'Was' if gone else 'Will be'} on call at {slack_when(when.at)}"
                                           + (f" ({when.note})" if when.note else "") + ":")
        return SkillResult(title=f"On call {esc(when.said) if when else 'now'}"
                           + (f": {', '.join(r.team for r in rows)}" if teams else ""), summary=summary,
                           sections=(Section("", tuple(lines)),),
                           data={"oncall": [{"team": r.team, "people": [u for u, _ in r.people],
                                            "next": [u for u, _ in r.next_people]} for r in rows]})

    def _route(self, text: str, request: SkillRequest, ctx: SkillContext) -> SkillResult:
        service, incident_id = None, request.incident_id
        m = _SERVICE_ARG.search(text)
        if m:
            service, text = m.group(1), (text[: m.start()] + " " + text[m.end():]).strip()
        ref = INCIDENT_REF.search(text)
        refs = INCIDENT_REF.findall(text)
        if len(refs) > 1 and not INCIDENT_REF.sub(" ", text).replace(",", " ").replace(" and ", " ").strip():
            raise SkillError(f"One incident at a time: `/route #{refs[0]}`, then `/route #{refs[1]}`.")  # not dropped
        named = int(ref.group(1)) if ref else None
        if named is None and incident_id is not None and request.command is None and (
                ABOUT_HERE.search(text) or _HELP_HERE.match(text)):
            named, text = incident_id, f"#{incident_id}"  # "who should take this?" under an incident's card
        if named is None and request.command is None and _HELP_HERE.match(text):  # "who can help?" away from a card
            raise SkillError("Help with what? Name the service or the symptom (`@warroom who can help with "
                             "postgres-main?`), or ask under the incident's card.")
        if named is not None:  # "/route #113", "who should take #113?": that incident, by its title and service
            with ctx.db.session() as s:
                inc = s.get(Incident, named)
                if inc is None and INCIDENT_REF.fullmatch(text.strip()):
                    raise SkillError(f"There is no incident #{named}.")
                if inc is not None:  # else a ticket's own number ("build #4521 fails"): route the words
                    text = ". ".join(p for p in (inc.title, inc.description) if p)
                    service, incident_id = service or inc.service_name, inc.id
        if not text and not service:
            raise SkillError("Tell me what the ticket is about, e.g. `/route payments-api returns 503 at "
                             "checkout` (optionally `service:NAME`), or `/route #123` for an incident.")
        text = mask_secrets(text)[:MAX_TEXT]
        d = route(ctx, text=text, service=service, incident_id=incident_id)
        best = d.best
        summary = (f"Suggested: <@{best.user_id}> ({esc(best.name)}): {esc(best.why)}" if best
                   else f"No one to suggest. {d.fallback}")
        actions: tuple[Action, ...] = ()
        if best:
            ticket = _ticket_value(best.user_id, d.service, text)
            actions = (Action("routing:wrong_owner", f"Wrong owner ({best.name})"[:75], ticket, "danger"),)
        fields = tuple((k, v) for k, v in (("Service", d.service or "not recognised"), ("Team", d.team or "unknown"))
                       if v)
        sections = [Section("Candidates", _lines(d) or ("none",))]
        if d.notes:
            sections.append(Section("Notes", tuple(esc(n) for n in d.notes)))
        return SkillResult(title="Route: " + (best.name if best else "no one available"), summary=summary,
                           fields=fields, sections=tuple(sections), actions=actions, data=self._data(d))

    # --- card and buttons -----------------------------------------------------------------------
    def _finding(self, incident_id: int, d: RoutingDecision) -> Finding:
        lines = list(_lines(d)) + [f"_{esc(n)}_" for n in d.notes[:3]]
        actions: list[Action] = []
        if d.best:
            value = f"{incident_id}:{d.best.user_id}"
            actions = [Action("routing:assign", f"Assign {d.best.name}"[:75], value, "primary"),
                       Action("routing:wrong_owner", "Wrong owner", value, "danger")]
        heading = f"Suggested responder: <@{d.best.user_id}>" if d.best else "Suggested responder: none available"
        return Finding(skill=self.name, heading=heading, lines=tuple(lines), actions=tuple(actions),
                       data=self._data(d))

    @staticmethod
    def _data(d: RoutingDecision) -> dict[str, Any]:
        return {"service": d.service, "team": d.team, "fallback": d.fallback, "similar": list(d.similar),
                "notes": list(d.notes), "classifier": [[t, round(p, 3)] for t, p in d.classifier],
                "candidates": [{"user_id": c.user_id, "name": c.name, "team": c.team, "score": c.score,
                                "reasons": list(c.reasons)} for c in d.candidates]}

    @staticmethod
    def _parse(value: str) -> tuple[int, str]:
        m = _VALUE.match(value.strip())
        if not m:
            raise SkillError("this button does not name an incident and a person")
        if (incident_id := db_id(m.group(1))) is None:
            raise SkillError(f"There is no incident #{m.group(1)[:24]}.")
        return incident_id, m.group(2)

    def _assign(self, incident_id: int, uid: str, actor: str | None, ctx: SkillContext, *, kind: str,
                how: str) -> SkillResult:
        with ctx.db.session() as s:
            inc = s.get(Incident, incident_id)
            if inc is None:
                raise SkillError(f"There is no incident #{incident_id}.")
            e = people.experts_by_ids(session=s, user_ids=[uid]).get(uid)
            if e is None or not e.active:
                raise SkillError(f"<@{uid}> is not an active expert any more; use *Wrong owner* for the next one.")
            if inc.assignee == uid:
                return SkillResult(title=f"#{incident_id} is already assigned to {e.name}", ephemeral=True)
            inc.assignee = uid
            s.add(TimelineEvent(incident_id=incident_id, kind=kind, actor=actor,
                                text=f"Assigned to <@{uid}> ({e.name}), {how}", data={"assignee": uid}))
            pd = pagerduty_jobs(s, ctx.settings, inc, "assign", uid, actor)  # PagerDuty pages the person chosen
        return SkillResult(title=f"#{incident_id} assigned to {e.name}", summary=f"<@{uid}>: {how}.",
                           data={"refresh_card": incident_id, "assignee": uid, "follow_up_jobs": pd})

    def _wrong_incident(self, incident_id: int, uid: str, actor: str | None, ctx: SkillContext) -> SkillResult:
        with ctx.db.session() as s:
            inc = s.get(Incident, incident_id)
            if inc is None:
                raise SkillError(f"There is no incident #{incident_id}.")
            text = mask_secrets(" ".join([inc.title, inc.description]))[:MAX_TEXT]
            service = inc.service_name
            dup = s.query(Feedback.id).filter(Feedback.kind == "wrong_owner", Feedback.incident_id == incident_id,
                                              Feedback.target == uid).first()
        d = route(ctx, text=text, service=service, incident_id=incident_id) if dup else None
        fb_id = None
        if d is None:
            with ctx.db.session() as s:
                fb_id = record_wrong_owner(session=s, incident_id=incident_id, target=uid, user_id=actor, text=text,
                                           service=service, team=None)
            d = route(ctx, text=text, service=service, incident_id=incident_id)
            with ctx.db.session() as s:
                fb = s.get(Feedback, fb_id)
                if fb is not None:
                    fb.data = {**(fb.data or {}), "team": d.best.team if d.best else None}
                inc = s.get(Incident, incident_id)
                assert inc is not None
                inc.findings = {**(inc.findings or {}), self.name: _finding_dict(self._finding(incident_id, d))}
        undo = (Action("routing:undo", "Undo", str(fb_id)),) if fb_id is not None else ()  # a click by mistake
        nxt = d.best
        if nxt is None:
            return SkillResult(title=f"#{incident_id}: noted, <@{uid}> is not the owner",
                               summary=f"No other candidate. {d.fallback or ''}".strip(), actions=undo,
                               data={"refresh_card": incident_id})
        with ctx.db.session() as s:
            current = (s.get(Incident, incident_id) or Incident(title="")).assignee
        if current == nxt.user_id:
            return SkillResult(title=f"#{incident_id} is with {nxt.name}", ephemeral=True, actions=undo,
                               data={"refresh_card": incident_id})
        res = self._assign(incident_id, nxt.user_id, actor, ctx, kind="reassign",
                           how=f"reassigned after <@{actor}> marked <@{uid}> wrong owner ({nxt.why})")
        if fb_id is not None:  # what an undo gives back
            with ctx.db.session() as s:
                fb = s.get(Feedback, fb_id)
                if fb is not None:
                    fb.data = {**(fb.data or {}), "was_assignee": current, "reassigned_to": nxt.user_id}
        return SkillResult(title=res.title, summary=res.summary, actions=undo, data=res.data)

    def _undo(self, value: str, actor: str | None, ctx: SkillContext) -> SkillResult:
        """Take back a "wrong owner" click: the person is a candidate again, the router and the next training
        learn nothing from it, and an incident reassigned by it (and not since) goes back to whom it was with.
        Only whoever clicked can undo it; the row stays, as ``wrong_owner_undone``."""
        fb_id = db_id(value.strip())
        if fb_id is None:
            raise SkillError("this Undo button is not one of mine")
        try:
            fb, now = undo_feedback(db=ctx.db, feedback_id=fb_id, kind="wrong_owner", user_id=actor)
        except LookupError:
            raise SkillError("there is no \"wrong owner\" to undo here") from None
        except PermissionError:
            with ctx.db.session() as s:
                mine = s.get(Feedback, fb_id)
                who, whom = (mine.user_id, mine.target) if mine is not None else ("?", "?")
            raise SkillError(f"only <@{who}>, who marked <@{whom}> wrong owner, can undo it") from None
        data = dict(fb.data or {})
        if not now:
            return SkillResult(title="Already undone", ephemeral=True, summary=f"<@{data.get('undone_by')}> already "
                               "undid it.")
        incident_id, target, back = fb.incident_id, str(fb.target), data.get("was_assignee")
        summary = f"<@{target}> is a candidate again; nothing is learned from that click."
        if incident_id is None:
            return SkillResult(title="Undone", summary=summary)
        with ctx.db.session() as s:
            inc = s.get(Incident, incident_id)
            if inc is None:
                return SkillResult(title="Undone", summary=summary)
            # The click moved it (and nobody has since): back to whom it was with, or to nobody if it had nobody.
            moved = "reassigned_to" in data and inc.assignee == data["reassigned_to"]
            if moved and not back:
                inc.assignee = None
                s.add(TimelineEvent(incident_id=incident_id, kind="reassign", actor=actor, data={"assignee": None},
                                    text=f"Unassigned <@{data['reassigned_to']}> (nobody had it before): <@{actor}> "
                                         "undid their \"wrong owner\""))
            text, service = mask_secrets(" ".join([inc.title, inc.description]))[:MAX_TEXT], inc.service_name
        jobs: Any = None
        if moved and back:  # the timeline and PagerDuty follow, as for any assignment
            jobs = self._assign(incident_id, str(back), actor, ctx, kind="reassign",
                                how=f"assigned back: <@{actor}> undid their \"wrong owner\"").data.get("follow_up_jobs")
        d = route(ctx, text=text, service=service, incident_id=incident_id)
        with ctx.db.session() as s:
            inc = s.get(Incident, incident_id)
            if inc is not None:
                inc.findings = {**(inc.findings or {}), self.name: _finding_dict(self._finding(incident_id, d))}
        if moved and back:
            summary += f" #{incident_id} is with <@{back}> again."
        elif moved:
            summary += f" #{incident_id} has nobody assigned again, as before the click; *Assign* picks one."
        elif data.get("reassigned_to"):  # someone moved it since: left as it is
            summary += f" #{incident_id} stays with whom it is with now; *Assign* on the card changes that."
        return SkillResult(title=f"#{incident_id}: \"wrong owner\" undone", summary=summary,
                           data={"refresh_card": incident_id, **({"follow_up_jobs": jobs} if jobs else {})})

    def _wrong_ticket(self, request: SkillRequest, ctx: SkillContext) -> SkillResult:
        try:
            ticket = json.loads(request.text)
            uid, text, service = str(ticket["u"]), str(ticket.get("t") or ""), ticket.get("s")
        except (ValueError, KeyError, TypeError):
            raise SkillError("this button does not carry a ticket") from None
        with ctx.db.session() as s:
            fb_id = record_wrong_owner(session=s, incident_id=None, target=uid, user_id=request.user_id,
                                       text=mask_secrets(text), service=service if isinstance(service, str) else None,
                                       team=None)
            wrong = s.query(Expert).filter(Expert.slack_user_id == uid).first()
        d = route(ctx, text=text, service=service if isinstance(service, str) else None)
        others = [c for c in d.candidates if c.user_id != uid]
        with ctx.db.session() as s:
            fb = s.get(Feedback, fb_id)
            if fb is not None and others:
                fb.data = {**(fb.data or {}), "team": others[0].team}
        name = wrong.name if wrong else uid
        undo = (Action("routing:undo", "Undo", str(fb_id)),)
        if not others:
            return SkillResult(title=f"Noted: {name} is not the owner", summary=f"No other candidate. {d.fallback}",
                               actions=undo)
        return SkillResult(title=f"Noted: {name} is not the owner", actions=undo,
                           summary=f"Next: <@{others[0].user_id}> ({esc(others[0].name)}): {esc(others[0].why)}")


def _unread_oncall_words(s: Any, text: str) -> list[str]:
    """The words of an ``/oncall`` request that name no team, no service and no time."""
    names = {n.lower() for n in s.scalars(select(Team.name))} | {
        n.lower() for n in people.services_in_text(session=s, text=text)}
    words = re.findall(r"[^\s,?!]+", text.lower())
    return [w for w in words if w not in names and w not in _ONCALL_FILLER and w.removesuffix("'s") not in names]


def _ticket_value(uid: str, service: str | None, text: str, limit: int = 1900) -> str:
    """The ticket as a button value: JSON that fits Slack's 2,000-character limit whole."""
    cut = len(text)
    while True:
        value = json.dumps({"u": uid, "s": service, "t": text[:cut]}, ensure_ascii=False)
        if len(value) <= limit or cut == 0:
            return value
        cut = max(0, min(cut - 20, int(cut * limit / len(value))))


def _finding_dict(f: Finding) -> dict[str, Any]:
    return {"heading": f.heading, "lines": list(f.lines), "data": f.data,
            "actions": [{"action_id": a.action_id, "label": a.label, "value": a.value, "style": a.style}
                        for a in f.actions]}
