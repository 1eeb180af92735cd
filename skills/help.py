"""``help``: what the bot can do."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from knowledge.models import Incident
from skills.base import INCIDENT_REF, BaseSkill, Section, SkillContext, SkillRequest, SkillResult, esc

if TYPE_CHECKING:
    from skills.registry import Registry

__all__ = ["HelpSkill"]

# "help runbooks", "help with /oncall", "help on postmortems": one skill in full
_TOPIC = re.compile(r"^\W*help\s+(?:(?:with|on|for|about)\s+)?(?:the\s+)?/?([a-z][\w-]{1,30})\W*$", re.I)
_THANKS = re.compile(r"^\W*(thanks?( you| a lot| so much)?|thank you( so much)?|thx|ty|tyvm|cheers|great|nice|ok(ay)?"
                     r"|cool|perfect|awesome|got it|👍|🙏|(good|nice|great) (bot|job|work|one))\W*(warroom|bot)?\W*$",
                     re.I)


# "silence DiskSpaceLow for 2h", "mute this alert", "snooze the reminders", "stop paging me"
_SILENCE = re.compile(r"^\W*(?:(?:please|pls|can you|could you)\s+)?(?P<verb>silence|mute|snooze"
                      r"|stop (?:paging|alerting|reminding|pinging))\b\s*(?P<what>.*)$", re.I | re.S)
_DURATION = re.compile(r"\bfor\s+(\d+)\s*(m|min|mins|minutes?|h|hrs?|hours?|d|days?)\b", re.I)


# What the bot cannot make, asked for: "can you open a zoom?", "create a jira ticket for this", "start a bridge" (the
# knowledge base's "I don't know", or "I did not act on that" under a card): said plainly, with what it does instead
_CANNOT = re.compile(r"^\W*(?:(?:can|could|would)\s+you\s+|please\s+|pls\s+|let'?s\s+)?(?:please\s+)?"
                     r"(?:open|start|create|make|set\s+up|spin\s+up|file|raise|log|schedule)\s+(?:me\s+)?"
                     r"(?:a\s+|an\s+|the\s+)?(?:new\s+)?(?P<what>zoom(?:\s+(?:call|meeting|bridge|link))?|google\s+meet|meet"
                     r"|(?:video\s+|conference\s+|war[\s-]?room\s+)?(?:call|bridge)|huddle|jira(?:\s+(?:ticket|issue))?"
                     r"|(?:github\s+|linear\s+|servicenow\s+)?(?:ticket|issue))\b"
                     r"(?:\s+(?:for|about|on)\s+(?:it|this|(?:#|inc(?:ident)?[-\s#]*)\d{1,9}))?\W*$", re.I)


def _cannot_answer(match: re.Match[str], incident_id: int | None) -> SkillResult:
    """I start no calls and file no tickets (no credentials for them): the link, once made, goes on the card."""
    what = " ".join(match.group("what").split()).lower()
    call = not re.search(r"ticket|issue|jira", what)
    how = ("`bridge: <url>` (or `zoom: <url>`)" if call else "`jira PAY-123` or `ticket: <url>`")
    where = f" under incident #{incident_id}'s card" if incident_id is not None else " under the incident's card"
    return SkillResult(title=f"I cannot {'start a call' if call else 'file tickets'}", summary=(
        f"I cannot {'start a ' + what if call else 'create a ' + what}: I hold no credentials for it. Make it, then "
        f"paste it{where} as {how}: it goes on the card, the status and the postmortem, and `links?` lists it."),
        data={"mode": "cannot"})


def _silence_answer(match: re.Match[str], incident_id: int | None, ctx: SkillContext) -> SkillResult:
    """I do not silence alerts (a silence can hide the next real one): how to, and what stops the noise here.
    Under an incident's card (or naming one, "#101"), the silence names that incident's alert."""
    what = match.group("what")
    named = re.match(r"\s*(?:alert\s+)?([A-Z][A-Za-z0-9_:]{0,99})\b", what)  # an alert name: CamelCase
    ref = INCIDENT_REF.search(what)
    incident_id = int(ref.group(1)) if ref else incident_id
    alert = named.group(1) if named else None
    if alert is None and incident_id is not None:
        with ctx.db.session() as s:
            inc = s.get(Incident, incident_id)
            alert = inc.alert_name if inc is not None and inc.alert_name and " " not in inc.alert_name else None
    dur = _DURATION.search(what)
    duration = f"{dur.group(1)}{dur.group(2)[0].lower()}" if dur else "2h"
    matcher = f"alertname={alert}" if alert else "alertname=<alert>"
    lines = (f"In Alertmanager: `amtool silence add {matcher} --duration={duration} --comment=\"<why>\"` "
             "(or a silence in Grafana's Alerting > Silences).",
             "While it fires, its repeats join the incident it opened and page nobody new; acknowledging the incident "
             "(`ack`, :eyes: on its card) stops my reminders.")
    return SkillResult(title="I do not silence alerts", summary=(
        "A silence hides the next real alert too, so I leave it to your alerting tool, where it is visible and "
        "expires.") + (f" For incident #{incident_id}: say `ack` here to stop the reminders." if incident_id else ""),
        sections=(Section("", lines),), data={"mode": "silence"})


class HelpSkill(BaseSkill):
    """List what I can do and how to ask for it."""

    name = "help"
    commands = ("/warroom help",)
    keywords = ("help", "what can you do", "commands", "how do i use")

    def __init__(self) -> None:
        self.registry: Registry | None = None

    def run(self, request: SkillRequest, ctx: SkillContext) -> SkillResult:
        if request.source in ("mention", "dm") and _THANKS.match(request.text):  # not a wall of help text
            return SkillResult(title="You're welcome", summary="Any time. `@warroom help` lists what I can do.")
        if request.source in ("mention", "dm") and (cannot := _CANNOT.match(request.text)):
            return _cannot_answer(cannot, request.incident_id)
        silence = _SILENCE.match(request.text) if request.source in ("mention", "dm") else None
        if silence:
            return _silence_answer(silence, request.incident_id, ctx)
        if request.source in ("mention", "dm") and request.incident_id is not None and request.text.strip() \
                and not self._asked_for_help(request):
            return self._here(request.incident_id)
        topic = (request.text.strip() if request.source == "command"
                 else (m.group(1) if (m := _TOPIC.match(request.text)) else ""))
        if topic:  # "/warroom help runbook": that skill's commands in full (the word was dropped)
            skill = self._skill_for(topic)
            if skill is not None:
                return self._detail(skill, request)
        lines = []
        for s in self.registry.skills if self.registry else [self]:
            cmds = ", ".join(getattr(s, "commands", ()))
            help_line = s.help_line() if hasattr(s, "help_line") else s.name
            examples = getattr(s, "examples", ())
            ex = f' (e.g. "{examples[0]}")' if examples else ""
            lines.append(f"*{s.name}*: {help_line}" + (f" `{cmds}`" if cmds else "") + ex)
        intro = "Here is what I can do. Mention me with a question, or use a slash command. " \
                "`/warroom help <skill or command>` shows one in full."
        if topic and request.source == "command":
            intro = f"I have no skill or command called `{esc(topic[:40])}`. " + intro
        if request.source in ("mention", "dm") and request.text.strip() and not self._asked_for_help(request):
            intro = "I am not sure what you need. " + intro
        return SkillResult(title="warroom help", summary=intro, sections=(Section("Skills", tuple(lines)),),
                           ephemeral=request.source == "command")

    def score(self, text: str) -> float:
        """Keywords; "help runbooks", "help with /oncall" (a skill named after "help") are mine whatever else fits."""
        m = _TOPIC.match(text)
        if m and self._skill_for(m.group(1)) is not None:
            return 1.0
        if _CANNOT.match(text):  # "can you open a zoom?": said plainly, above the knowledge base
            return 0.9
        return super().score(text)

    def _skill_for(self, topic: str) -> Any:
        """The skill a word names: its name, a command of it (``/oncall``, ``oncall``), singular or plural."""
        word = topic.split()[0].lower().lstrip("/")
        for s in self.registry.skills if self.registry else [self]:
            names = {s.name, s.name.rstrip("s"), *(c.split()[-1].lstrip("/") for c in getattr(s, "commands", ()))}
            if word in names or word.rstrip("s") in names or f"{word}s" in names:
                return s
        return None

    @staticmethod
    def detail(skill: Any, request: SkillRequest) -> SkillResult:
        """One skill in full: its commands, examples and the words that reach it (``/warroom help logs``, or
        ``/logs help``)."""
        return HelpSkill._detail(skill, request)

    @staticmethod
    def _detail(skill: Any, request: SkillRequest) -> SkillResult:
        cmds = ", ".join(f"`{c}`" for c in getattr(skill, "commands", ()))
        usage = getattr(skill, "usage", "").removeprefix("Usage: ")
        sections = [Section("Commands", (usage or cmds or "mention me",))]
        if getattr(skill, "examples", ()):
            sections.append(Section("Examples", tuple(f"`{e}`" if e.startswith(("/", "@")) else e
                                                      for e in skill.examples)))
        if getattr(skill, "keywords", ()):
            sections.append(Section("In words", ("Mentions with words like " + ", ".join(
                f'"{k}"' for k in skill.keywords[:8]) + " come here.",)))
        return SkillResult(title=f"warroom help: {skill.name}", summary=skill.help_line(), sections=tuple(sections),
                           ephemeral=request.source == "command")

    @staticmethod
    def _here(incident_id: int) -> SkillResult:
        """Under an incident's card: what can be said there about it, not the whole list of skills."""
        lines = ("`ack`, `I'm on it`, `this is a sev1`, `escalate`, `mitigated: <what>`, "
                 "`resolved: <what fixed it>; root cause: <why>`, `reopen`",
                 "`note: <a key moment>` (kept on the timeline and in the postmortem), `status`, `who is on this?`",
                 "`have we seen this before?`, `what should I do?`, `who should take this?`, `write the postmortem`")
        return SkillResult(title=f"Incident #{incident_id}", summary=f"I did not act on that. About incident "
                           f"#{incident_id}, here I understand:", sections=(Section("", lines),),
                           data={"incident_id": incident_id})

    def _asked_for_help(self, request: SkillRequest) -> bool:
        return self.score(request.text) > 0
