"""Features for log lines that carry over to log formats a model never saw.

Word n-grams of one system's templates do not transfer to another system; what does transfer is
the vocabulary people use everywhere (``error``, ``refused``, ``retrying``, ``panic``), level
names written inside the message, and the shape of a line (key=value dumps read like debug
output). So every line is first masked (``models.log_miner.masked_text``: numbers, ids, hosts,
paths gone), then described by (a) TF-IDF word uni/bi-grams of the masked text and (b) a small
dense block of generic vocabulary and level cues. The vocabulary below is general log-severity
knowledge, not words picked from an evaluation set.

Every feature reads only the masked text, so lines that share a masked key share their features:
the classifier scores each distinct key once (see ``models.log_classifier``).
"""

from __future__ import annotations

import re
from collections.abc import Container, Sequence

import numpy as np
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

__all__ = ["SEVERITIES", "CATEGORIES", "cue_matrix", "rule_severity", "rule_category", "stated_level", "N_CUES",
           "says_what_failed"]

SEVERITIES = ("DEBUG", "INFO", "WARNING", "ERROR", "FATAL")
CATEGORIES = ("network", "database", "storage", "memory", "auth", "configuration", "timeout", "hardware",
              "dependency", "application", "normal")

_LEVEL = re.compile(r"\b(FATAL|CRITICAL|CRIT|EMERG|PANIC|ERROR|ERR|SEVERE|WARNING|WARN|DEBUG|TRACE|NOTICE|INFO)\b")
_LEVEL_MAP = {"FATAL": "FATAL", "CRITICAL": "FATAL", "CRIT": "FATAL", "EMERG": "FATAL", "PANIC": "FATAL",
              "SEVERE": "ERROR", "ERROR": "ERROR", "ERR": "ERROR", "WARNING": "WARNING", "WARN": "WARNING",
              "DEBUG": "DEBUG", "TRACE": "DEBUG", "NOTICE": "INFO", "INFO": "INFO"}
_SEV_WORDS: dict[str, re.Pattern[str]] = {
    "FATAL": re.compile(r"\b(fatal|panic|segfault|segmentation fault|core dumped|out of memory|oom|unrecoverable|"
                        r"corrupt\w*|crash(ed|es)?|abort(ed|ing)?|emergency|critical|halted)\b", re.I),
    "ERROR": re.compile(r"\b(error|errors|exception|fail(ed|ure|s|ing)?|unable|cannot|can't|could not|couldn't|"
                        r"refused|denied|forbidden|invalid|not found|no such|unreachable|timed out|timeout|"
                        r"broken pipe|reset by peer|rejected|unauthori[sz]ed|violation|mismatch|bad|lost|"
                        r"missing|illegal|unexpected)\b", re.I),
    "WARNING": re.compile(r"\b(warn\w*|retry\w*|will retry|deprecated|slow|degraded|skipp(ed|ing)|ignor(ed|ing)|"
                          r"fall(ing)? ?back|exceed\w*|expir\w*|high|low|threshold|back(ing)? ?off|throttl\w*|"
                          r"stale|again)\b", re.I),
    "INFO": re.compile(r"\b(start\w*|stop\w*|success\w*|succeeded|complete\w*|ok|ready|received|sent|"
                       r"connected|opened|closed|registered|added|created|done|finished|running|loaded|served|"
                       r"listening|accepted|saved|updated)\b", re.I),
    "DEBUG": re.compile(r"\b(debug|trace|verbose|entering|exiting|called|invok\w*|acquir\w*|releas\w*|dump\w*|"
                        r"lookup|poll\w*|tick)\b", re.I),
}
_CAT_WORDS: dict[str, re.Pattern[str]] = {
    "network": re.compile(r"\b(connect\w*|socket|network|host|route|dns|tcp|udp|packet|link|port|peer|"
                          r"unreachable|tls|ssl|http|interface|eth\w*|upstream)\b", re.I),
    # Connection exhaustion is the database's resource running out ("remaining connection slots are
    # reserved", "too many connections", a pool with no free connection), not the network failing.
    "database": re.compile(r"\b(database|db|sql|query|transaction|table|replica\w*|postgres\w*|mysql|deadlock|"
                           r"constraint|relation|rows?|connection slots|too many (connections|clients)|"
                           r"max_connections|connection pool|pool exhausted|pgbouncer|superuser|wal|vacuum|"
                           r"schema)\b", re.I),
    "storage": re.compile(r"\b(disk|storage|volume|file|filesystem|mount\w*|device|block|write|read-only|"
                          r"space|inode|i/o|io|quota|bucket|raid)\b", re.I),
    "memory": re.compile(r"\b(memory|heap|oom|gc|allocat\w*|swap|rss|out of memory|outofmemory\w*)\b", re.I),
    "auth": re.compile(r"\b(auth\w*|login|password|permission|denied|forbidden|token|credential\w*|"
                       r"unauthori[sz]ed|certificate|user|session|key|ssh\w*|access)\b", re.I),
    "configuration": re.compile(r"\b(config\w*|setting\w*|option|parameter|env\w*|missing required|parse|"
                                r"yaml|json|property|properties)\b", re.I),
    "timeout": re.compile(r"\b(timed? ?out|timeout|deadline|slow|took|latency|wait\w*)\b", re.I),
    "hardware": re.compile(r"\b(cpu|ecc|dimm|fan|temperature|power|hardware|machine check|interrupt|"
                           r"parity|bios|nic|smart)\b", re.I),
    "dependency": re.compile(r"\b(upstream|service|dependency|api|provider|circuit|broker|503|502|"
                             r"unavailable|gateway|server)\b", re.I),
    "application": re.compile(r"\b(exception|traceback|null\w*|assert\w*|undefined|panic|job|task|"
                              r"handler|thread|process|signal|exit code)\b", re.I),
}
# "failed ..., will retry" is transient: a warning, whatever failure word comes first.
_RETRY = re.compile(r"\b(retry\w*|will retry|try again|retrying|backing off|back off)\b", re.I)
_CAMEL_CALL = re.compile(r"^[a-z]+[A-Z]\w*")
N_CUES = 5 + len(_SEV_WORDS) + len(_CAT_WORDS) + 3


def stated_level(masked: str) -> str | None:
    """The level a line states about itself (a level name in capitals), or None."""
    m = _LEVEL.search(masked)
    return _LEVEL_MAP[m.group(1)] if m else None


def rule_severity(masked: str) -> str:
    """A hand-written severity guess: a level name in the text, else the strongest vocabulary."""
    m = _LEVEL.search(masked)
    if m:
        return _LEVEL_MAP[m.group(1)]
    if _RETRY.search(masked) and not _SEV_WORDS["FATAL"].search(masked):
        return "WARNING"
    for level in ("FATAL", "ERROR", "WARNING", "INFO", "DEBUG"):
        if _SEV_WORDS[level].search(masked):
            return level
    return "INFO"


def rule_category(masked: str, severity: str) -> str:
    """A hand-written category guess (``normal`` for DEBUG/INFO lines without failure words)."""
    if severity in ("DEBUG", "INFO") and not _SEV_WORDS["ERROR"].search(masked):
        return "normal"
    best, hits = "application", 0
    for cat, pattern in _CAT_WORDS.items():
        n = len(pattern.findall(masked))
        if n > hits:
            best, hits = cat, n
    return best


_WORD = re.compile(r"[A-Za-z][A-Za-z_]+")  # the category model's token pattern (models.log_classifier)


def says_what_failed(masked: str, vocabulary: Container[str]) -> bool:
    """Whether a line names anything a failure category could rest on: a category cue word, or a word the category
    model learned (``vocabulary``, lower case) that is neither an English stop word nor a level or severity word.

    "ERROR foo bar" names nothing: its category is the generic application error, not whichever class the model's
    intercept favours (it said "database").
    """
    if any(p.search(masked) for p in _CAT_WORDS.values()):
        return True
    for token in _WORD.findall(masked):
        w = token.lower()
        if (w in vocabulary and w not in ENGLISH_STOP_WORDS and not _LEVEL.fullmatch(token.upper())
                and not any(p.fullmatch(w) for p in _SEV_WORDS.values())):
            return True
    return False


def cue_matrix(masked_texts: Sequence[str]) -> np.ndarray:
    """Dense cue block: rule guess (one-hot), vocabulary presence, line shape."""
    out = np.zeros((len(masked_texts), N_CUES), dtype=np.float64)
    sev_idx = {s: i for i, s in enumerate(SEVERITIES)}
    for i, text in enumerate(masked_texts):
        out[i, sev_idx[rule_severity(text)]] = 1.0
        col = 5
        for pattern in _SEV_WORDS.values():
            out[i, col] = 1.0 if pattern.search(text) else 0.0
            col += 1
        for pattern in _CAT_WORDS.values():
            out[i, col] = 1.0 if pattern.search(text) else 0.0
            col += 1
        n_tokens = max(1, text.count(" ") + 1)
        out[i, col] = min(text.count("<*>") / n_tokens, 1.0)
        out[i, col + 1] = 1.0 if _CAMEL_CALL.match(text) else 0.0
        out[i, col + 2] = 1.0 if _LEVEL.search(text) else 0.0
    return out
