"""``help``: what the bot can do."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from skills.base import BaseSkill, Section, SkillContext, SkillRequest, SkillResult

if TYPE_CHECKING:
    from skills.registry import Registry

__all__ = ["HelpSkill"]

_THANKS = re.compile(r"^\W*(thanks?( you)?|thx|ty|cheers|great|nice|ok(ay)?|cool|👍)\W*(warroom|bot)?\W*$", re.I)


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
        if request.source in ("mention", "dm") and request.incident_id is not None and request.text.strip() \
                and not self._asked_for_help(request):
            return self._here(request.incident_id)
        lines = []
        for s in self.registry.skills if self.registry else [self]:
            cmds = ", ".join(getattr(s, "commands", ()))
            help_line = s.help_line() if hasattr(s, "help_line") else s.name
            examples = getattr(s, "examples", ())
            ex = f' (e.g. "{examples[0]}")' if examples else ""
            lines.append(f"*{s.name}*: {help_line}" + (f" `{cmds}`" if cmds else "") + ex)
        intro = "Here is what I can do. Mention me with a question, or use a slash command."
        if request.source in ("mention", "dm") and request.text.strip() and not self._asked_for_help(request):
            intro = "I am not sure what you need. " + intro
        return SkillResult(title="warroom help", summary=intro, sections=(Section("Skills", tuple(lines)),),
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
