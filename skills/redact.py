"""Masking secrets in free text before it is stored, shown or sent to an LLM.

One function, :func:`mask_secrets`, replaces the secret part of common credential shapes with
``[REDACTED]`` (keeping the key name, so a reader still sees *what* leaked): Slack tokens
(``xox?-``, ``xapp-``) and incoming-webhook URLs, ``Bearer`` tokens, AWS access keys and secret keys, JWTs, PEM
private keys, GitHub, OpenAI-style, Stripe, Google, GitLab, npm and SendGrid keys, passwords in URLs, and
assignments of anything named like a credential in env, config, JSON, XML and command-line form
(``DB_PASSWORD=...``, ``"client_secret": "..."``, ``<password>...</password>``, ``--token ...``).
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["mask_secrets", "mask_json_text", "MASK"]

MASK = "[REDACTED]"

# A key that names a credential, with the prefixes and suffixes env vars and configs give it: DB_PASSWORD,
# PGPASSWORD, SECRET_KEY, client_secret, x-api-key, AccountKey, apiToken (a prefix glued on without a separator only
# for passwords and camelCase, so "wtoken" or "monkey" are not keys).
_WORDS = (r"(?:password|passwd|pwd|secret|api[_-]?key|apikey|access[_-]?key|account[_-]?key|private[_-]?key|"
          r"access[_-]?token|auth[_-]?token|refresh[_-]?token|token|credentials?)")
_KEY = re.compile(r"(?i)(?:[A-Za-z0-9]*[_.-])*" + _WORDS + r"[A-Za-z0-9_.-]*|"
                  r"[A-Za-z0-9]*pass(?:word|wd)[A-Za-z0-9_.-]*|"
                  r"[A-Za-z0-9]+(?-i:Token|Secret|Password|ApiKey|AccessKey|SecretKey|PrivateKey)")
_PASSWORDISH = re.compile(r"(?i)pass|pwd|secret")  # keys whose bare number is still a secret (password=123456)
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
# Any key-like run (at most 100 characters, matched whole: no backtracking into it) and its value; the key is then
# checked against _KEY on its own. key = value, key: value, "key": "value", key => value; a bare number under a
# token or key name is left (tokens: 5, max_tokens=100).
_ASSIGN = re.compile(r"(?<![A-Za-z0-9_.-])([A-Za-z0-9_.-]{1,100}+)([\"']?\s*(?:=>|[=:])\s*)"
                     r"(?!\[REDACTED\])(\"[^\"]*\"|'[^']*'|[^\s,;&\"'}\]]+)")
_XML = re.compile(r"<([A-Za-z0-9_.-]{1,100}+)>[^<]*</")  # <password>...</password>

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(-----END [A-Z ]*PRIVATE KEY-----|\Z)", re.S), MASK),
    (re.compile(r"\bxox[abposre]-[A-Za-z0-9-]{6,}"), MASK),
    (re.compile(r"\bxapp-[A-Za-z0-9-]{6,}"), MASK),
    (re.compile(r"(?i)(hooks\.slack\.com/(?:services|workflows|triggers)/)[A-Za-z0-9/_-]+"), r"\1" + MASK),
    (re.compile(r"\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{8,}", re.I), r"\1 " + MASK),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}"), MASK),
    (re.compile(r"\b(AKIA|ASIA)[A-Z0-9]{16}\b"), MASK),
    # GitHub, OpenAI-style, Stripe secret and restricted keys, Google API keys, GitLab, npm, SendGrid
    (re.compile(r"\b(gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}|sk-[A-Za-z0-9_-]{20,}|"
                r"[sr]k_(?:live|test)_[A-Za-z0-9]{10,}|AIza[0-9A-Za-z_-]{30,}|glpat-[A-Za-z0-9_-]{20,}|"
                r"npm_[A-Za-z0-9]{30,}|SG\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,})"), MASK),
    (re.compile(r"(?i)\b(aws_secret_access_key|secret_access_key)(\s*[=:]\s*)[\"']?[A-Za-z0-9/+=]{20,}[\"']?"),
     r"\1\2" + MASK),
    (re.compile(r"(?i)([?&;]sig=)[^&\s\"']+"), r"\1" + MASK),  # Azure SAS signatures in URLs
    (re.compile(r"(?i)(--(?:password|passwd|token|secret|api-key|apikey)\s+)(?!-)\S+"), r"\1" + MASK),
    (re.compile(r"(?i)(://[^\s:/@]*:)[^\s@/]+@"), r"\1" + MASK + "@"),
)


# Every pattern above needs one of these; most chat lines have none, so one search skips them all.
_TRIGGER = re.compile(r"(?i)private key|xox|xapp|hooks\.slack|bearer|basic|eyJ|AKIA|ASIA|gh[pousr]_|github_pat|sk-|"
                      r"[sr]k_(?:live|test)|AIza|glpat-|npm_|SG\.|secret|passw|pwd|key|token|credential|sig=|"
                      r"://[^\s]*@")


def _assign(m: re.Match[str]) -> str:
    if not _KEY.fullmatch(m[1]) or (_NUMBER.fullmatch(m[3]) and not _PASSWORDISH.search(m[1])):
        return m[0]
    quote = m[3][0] if m[3][0] in "\"'" else ""  # a quoted value stays quoted: JSON and YAML stay readable
    return f"{m[1]}{m[2]}{quote}{MASK}{quote}"


def mask_json_text(text: str) -> str:
    """A JSON document (a webhook's body) with its secrets masked and still valid JSON: a string under a key that
    names a credential is masked whole, every other string as :func:`mask_secrets` would. Not JSON: masked as
    text."""
    if not text or not _TRIGGER.search(text):
        return text
    try:
        data = json.loads(text)
    except ValueError:
        return mask_secrets(text)
    return json.dumps(_mask_value(data), ensure_ascii=False, separators=(",", ":"))


def _mask_value(value: Any) -> Any:
    if isinstance(value, str):
        return mask_secrets(value)
    if isinstance(value, list):
        return [_mask_value(v) for v in value]
    if isinstance(value, dict):
        return {k: MASK if isinstance(v, str) and v and isinstance(k, str) and _KEY.fullmatch(k) else _mask_value(v)
                for k, v in value.items()}
    return value


# Terminal colour and cursor codes (ECMA-48: CSI, OSC, and the two-byte escapes), as `kubectl logs`, CI logs and
# coloured loggers write them: "Bearer \x1b[2meyJ..." hid a token from every pattern below.
_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")


def strip_ansi(text: str) -> str:
    """``text`` without terminal escape sequences (a lone ESC that starts none is left)."""
    return _ANSI.sub("", text) if "\x1b" in text else text


def mask_secrets(text: str) -> str:
    """Return ``text`` with credentials replaced by ``[REDACTED]``.

    Args:
        text: any free text (a chat message, a log line, an alert annotation).

    Returns:
        The same text with the secret parts masked and terminal escape codes removed (they split a secret from
        the word that announces it); other text is returned unchanged.
    """
    text = strip_ansi(text)
    if not text or not _TRIGGER.search(text):
        return text
    for pattern, repl in _PATTERNS:
        text = pattern.sub(repl, text)
    text = _ASSIGN.sub(_assign, text)
    return _XML.sub(lambda m: f"<{m[1]}>{MASK}</" if _KEY.fullmatch(m[1]) else m[0], text)
