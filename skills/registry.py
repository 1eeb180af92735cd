"""The explicit skill registry: every skill is listed here, in one place.

Slash commands name their skill directly; free text goes to the best-scoring skill, and a low
score falls back to ``help``.
"""

from __future__ import annotations

from dataclasses import dataclass

from skills.ask import AskSkill
from skills.base import Skill
from skills.changes import ChangesSkill
from skills.help import HelpSkill
from skills.incident import IncidentSkill
from skills.logs import LogsSkill
from skills.postmortem import PostmortemSkill
from skills.risk import RiskSkill
from skills.routing import RoutingSkill
from skills.runbooks import RunbooksSkill
from skills.similar import SimilarSkill
from skills.status import StatusSkill

__all__ = ["Registry", "default_registry", "MIN_SCORE"]

MIN_SCORE = 0.35


@dataclass
class Registry:
    """The skills the bot knows, in a fixed order."""

    skills: list[Skill]

    def get(self, name: str) -> Skill:
        for s in self.skills:
            if s.name == name:
                return s
        raise KeyError(name)

    def for_command(self, command: str) -> Skill | None:
        """The skill a slash command (``/incident``) resolves to."""
        for s in self.skills:
            if command in s.commands:
                return s
        return None

    def rank(self, text: str, here: bool = False) -> list[tuple[float, Skill]]:
        """Skills by descending score for free text; ``here``: said under an incident's card."""
        scored = [(max(s.score(text), s.score_here(text) if here and hasattr(s, "score_here") else 0.0), s)
                  for s in self.skills]
        return sorted(scored, key=lambda p: -p[0])

    def route(self, text: str, here: bool = False) -> tuple[Skill, float]:
        """The best skill for free text, or ``help`` when nothing scores well enough."""
        best_score, best = self.rank(text, here)[0]
        if best_score < MIN_SCORE:
            return self.get("help"), best_score
        return best, best_score

    def commands(self) -> list[str]:
        return [c for s in self.skills for c in s.commands]


def default_registry() -> Registry:
    """All shipped skills. Later skills are added to this list."""
    skills: list[Skill] = [HelpSkill(), StatusSkill(), ChangesSkill(), IncidentSkill(), PostmortemSkill(),
                           SimilarSkill(), AskSkill(), RunbooksSkill(), RoutingSkill(), RiskSkill(),
                           LogsSkill()]
    reg = Registry(skills)
    for s in skills:
        if isinstance(s, HelpSkill):
            s.registry = reg
    return reg
