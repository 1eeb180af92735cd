"""Masking secrets in free text before it is stored, shown or sent to an LLM.

One function, :func:`mask_secrets`, replaces the secret part of common credential shapes with
``[REDACTED]`` (keeping the key name, so a reader still sees *what* leaked): Slack tokens
(``xox?-``, ``xapp-``), ``Bearer`` tokens, AWS access keys and secret keys, JWTs, PEM private keys,
GitHub / OpenAI-style keys, and ``password=`` / ``api_key: ...`` style assignments.
"""

from __future__ import annotations

import re

__all__ = ["mask_secrets", "MASK"]

MASK = "[REDACTED]"

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(-----END [A-Z ]*PRIVATE KEY-----|\Z)", re.S), MASK),
    (re.compile(r"\bxox[abposre]-[A-Za-z0-9-]{6,}"), MASK),
    (re.compile(r"\bxapp-[A-Za-z0-9-]{6,}"), MASK),
    (re.compile(r"\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{8,}", re.I), r"\1 " + MASK),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}"), MASK),
    (re.compile(r"\b(AKIA|ASIA)[A-Z0-9]{16}\b"), MASK),
    (re.compile(r"\b(gh[pousr]_[A-Za-z0-9]{20,}|sk-[A-Za-z0-9_-]{20,})"), MASK),
    (re.compile(r"(?i)\b(aws_secret_access_key|secret_access_key)(\s*[=:]\s*)[\"']?[A-Za-z0-9/+=]{20,}[\"']?"),
     r"\1\2" + MASK),
    (re.compile(r"(?i)\b(password|passwd|pwd|secret|api[_-]?key|apikey|access[_-]?token|auth[_-]?token|token)"
                r"(\s*[=:]\s*)(\"[^\"]*\"|'[^']*'|[^\s,;&\"']+)"), r"\1\2" + MASK),
    (re.compile(r"(?i)(://[^\s:/@]+:)[^\s@/]+@"), r"\1" + MASK + "@"),
)


# Every pattern above needs one of these; most chat lines have none, so one search skips ten.
_TRIGGER = re.compile(r"(?i)private key|xox|xapp|bearer|basic|eyJ|AKIA|ASIA|gh[pousr]_|sk-|secret|passw|pwd|"
                      r"api[_-]?key|apikey|token|://[^\s]*@")


def mask_secrets(text: str) -> str:
    """Return ``text`` with credentials replaced by ``[REDACTED]``.

    Args:
        text: any free text (a chat message, a log line, an alert annotation).

    Returns:
        The same text with the secret parts masked; text without secrets is returned unchanged.
    """
    if not text or not _TRIGGER.search(text):
        return text
    for pattern, repl in _PATTERNS:
        text = pattern.sub(repl, text)
    return text
