"""Log template mining: group log lines into templates with their variable parts masked.

One configuration for every log format. Three ideas, each cheap:

1. **Mask, then tokenise.** Values after ``=`` (quoted or not), empty brackets, and any token that
   holds a digit, looks like a host name, a long hex string, a path or a weekday/month name become
   ``<*>``; runs of ``<*>`` collapse into one, so ``Rect(0, 0 - 720, 1280)`` and ``Rect(0, 0 - 0, 0)``
   read alike. Lines with the same masked key share a template: a dict lookup per line, no tree.
2. **Variable words by cardinality.** Words without digits can still be variables (user names,
   service names). Two keys of the same length that differ in one position are a *skeleton*; when
   at least ``min_values`` different words fill the same slot of a skeleton (with at least
   ``min_constants`` constant words left), the slot is a variable and the keys join one template
   (union-find). ``session closed for user cyrus`` / ``... news`` / ``... root`` join; ``session
   opened`` and ``session closed`` (two values) stay apart.
3. **Only new keys cost anything.** Known keys are one dict hit, so streaming a large file is bound
   by the masking regexes (about 20 microseconds a line).

Template ids are stable hashes of the template text, so a template keeps its id across runs.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["LogMiner", "MinedTemplate", "masked_tokens", "masked_text", "template_id", "WILDCARD"]

WILDCARD = "<*>"

_VALUE = re.compile(r"""=(?:\s*"[^"]*"|\s*'[^']*'|[^\s,;)\]}]+)""")
_EMPTY = re.compile(r"\(\s*\)|\[\s*\]|\{\s*\}|\"\"|''")
_SPLIT = re.compile(r"\.{2,}|[\s=,:;()\[\]{}\"']+")
_DIGIT = re.compile(r"\d")
_HOST = re.compile(r"^[a-z][a-z0-9-]*(\.[a-z0-9-]+)*\.[a-z]{2,3}$")
_HEX = re.compile(r"^(0x)?[0-9a-fA-F]{8,}$")
_DATE_WORDS = frozenset("mon tue wed thu fri sat sun jan feb mar apr may jun jul aug sep oct nov dec".split())


# logfmt (Go's logrus, go-kit: Prometheus, Grafana, Loki, etcd): `ts=... level=error msg="failed to pull image"`.
# Values after "=" are variables, but these two are what the line says: with both masked, every line with the same
# keys was one template, whatever its level and message. A line with a level key and a message key keeps the level
# as its capitalised word (ERROR) and the message as words.
_LOGFMT_LEVEL = re.compile(r"""(?:(?<=\s)|^)(?:level|lvl|severity)=["']?([A-Za-z]+)["']?(?=\s|$)""", re.I)
_LOGFMT_MSG = re.compile(r"""(?:(?<=\s)|^)(?:msg|message)=(?:"((?:[^"\\]|\\.)*)"|'([^']*)'|([^\s"']\S*))""", re.I)
_LEVEL_WORDS = {"err": "ERROR", "error": "ERROR", "warn": "WARNING", "warning": "WARNING", "info": "INFO",
                "debug": "DEBUG", "trace": "DEBUG", "fatal": "FATAL", "panic": "FATAL", "crit": "FATAL",
                "critical": "FATAL", "dpanic": "FATAL", "notice": "INFO"}


def _logfmt(line: str) -> str:
    """A logfmt line with its level as a word and its message unquoted (other lines unchanged)."""
    if not ("level=" in line or "lvl=" in line or "severity=" in line) or not (
            _LOGFMT_LEVEL.search(line) and _LOGFMT_MSG.search(line)):  # plain substring tests first: the hot path
        return line
    line = _LOGFMT_LEVEL.sub(lambda m: _LEVEL_WORDS.get(m.group(1).lower(), m.group(1).upper()), line)
    return _LOGFMT_MSG.sub(lambda m: (m.group(1) or m.group(2) or m.group(3) or "").replace('\\"', '"'), line)


# Kubernetes (klog) and glog headers, "W1203 10:00:12.123456    1234 reflector.go:324] ...", at the start or after a
# syslog/journald prefix ("... kubelet[1234]: E1203 ..."): the first letter is the level (the masker made the whole
# header one <*>, so an info and a warning line with the same message were one template). Also after the container
# runtime's prefix of /var/log/containers/*.log ("2026-12-03T10:00:01.1Z stderr F E1203 ...").
_KLOG = re.compile(r"(?:^|(?<=: )|(?<= stdout [FP] )|(?<= stderr [FP] ))"
                   r"([IWEF])\d{4} \d{2}:\d{2}:\d{2}\.\d+\s+\d+\s+[^\s\]]+:\d+\] ")
_KLOG_LEVEL = {"I": "INFO ", "W": "WARNING ", "E": "ERROR ", "F": "FATAL "}
# Access logs (nginx, Apache, Envoy: "GET /api HTTP/1.1" 502 157): the status is masked like any number, so a 502
# and a 200 were one template, read as INFO. It becomes words: its level and its class.
_ACCESS = re.compile(r'("(?:GET|POST|PUT|DELETE|PATCH|HEAD|OPTIONS|CONNECT|TRACE) [^"]*") ([1-5])\d\d(?= )')
_HTTP_CLASS = {"5": "ERROR server_error", "4": "WARNING client_error", "3": "INFO redirect", "2": "INFO ok",
               "1": "INFO informational"}


# A syslog priority as sent on the wire (RFC 3164/5424: "<11>1 2026-12-03T10:00:05Z web-1 nginx ..."): its severity
# is the priority modulo 8. Windows Event Viewer's CSV export ("Warning,12/3/2026 10:00:02 AM,Source,36,...") names
# the level first, in a word the capitals-only level rule does not read.
_PRI = re.compile(r"^<(\d{1,3})>")
_PRI_LEVEL = ("FATAL ", "FATAL ", "FATAL ", "ERROR ", "WARNING ", "INFO ", "INFO ", "DEBUG ")
_EVENTLOG = re.compile(r"^(Error|Warning|Information|Critical|Verbose),(?=\d{1,2}/\d{1,2}/\d{4} )")
_EVENTLOG_LEVEL = {"Error": "ERROR,", "Warning": "WARNING,", "Information": "INFO,", "Critical": "FATAL,",
                   "Verbose": "DEBUG,"}


# JSON logs (zap, pino, bunyan, structlog, Serilog: `{"level":"info","msg":"ok",...}`): every line was one shape
# of keys, its level a quoted word the capitals-only rule does not read ("info" lines came out WARNING). The level
# becomes its word, the message its words, the other fields key=value (their values masked like any).
_JSON_LEVEL_KEYS = ("level", "lvl", "severity", "levelname", "log.level", "@l", "loglevel")
_JSON_MSG_KEYS = ("msg", "message", "@m", "@message", "event", "log")


def _json_line(line: str) -> str:
    try:
        obj = json.loads(line)
    except ValueError:
        return line
    if not isinstance(obj, dict):
        return line
    level = next((obj.pop(k) for k in _JSON_LEVEL_KEYS if isinstance(obj.get(k), str | int)), None)
    msg = next((obj.pop(k) for k in _JSON_MSG_KEYS if isinstance(obj.get(k), str)), "")
    if level is None:
        return line
    word = _LEVEL_WORDS.get(str(level).lower(), str(level).upper()) if isinstance(level, str) else (
        "FATAL" if level >= 60 else "ERROR" if level >= 50 else "WARNING" if level >= 40 else "INFO" if level >= 30
        else "DEBUG")  # pino and bunyan: 10 trace, 20 debug, 30 info, 40 warn, 50 error, 60 fatal
    rest = " ".join(f"{k}={v if isinstance(v, str | int | float) else json.dumps(v)}" for k, v in obj.items())
    return f"{word} {msg} {rest}".strip()


def _formats(line: str) -> str:
    """A klog header, a syslog priority, an Event Viewer level, a JSON line's level and message, or an access log's
    status as words (other lines unchanged)."""
    if line[:1] == "{" and line.rstrip()[-1:] == "}" and any(f'"{k}"' in line for k in _JSON_LEVEL_KEYS):
        line = _json_line(line)
    if line[:1] == "<":
        line = _PRI.sub(lambda m: _PRI_LEVEL[int(m.group(1)) % 8] if int(m.group(1)) < 192 else m.group(0), line)
    elif line[:1] in ("E", "W", "I", "C", "V"):
        line = _EVENTLOG.sub(lambda m: _EVENTLOG_LEVEL[m.group(1)], line)
    if "] " in line and (".go:" in line or ".cc:" in line):  # klog is Go's, glog C++'s: skip the regex otherwise
        line = _KLOG.sub(lambda m: _KLOG_LEVEL[m.group(1)], line, count=1)
    if '" ' in line and " HTTP/" in line:
        line = _ACCESS.sub(lambda m: f"{m.group(1)} {_HTTP_CLASS[m.group(2)]}", line, count=1)
    return line


def _mask_token(tok: str) -> str:
    if tok == WILDCARD or _DIGIT.search(tok) or _HOST.match(tok) or _HEX.match(tok):
        return WILDCARD
    if "/" in tok and (tok.startswith("/") or tok.count("/") >= 2):
        return WILDCARD
    if tok.lower() in _DATE_WORDS:
        return WILDCARD
    return tok


_TOKEN_CACHE: dict[str, str] = {}
_TOKEN_CACHE_MAX = 200_000


def masked_tokens(line: str) -> tuple[str, ...]:
    """The line's tokens with variables replaced by ``<*>`` (runs of ``<*>`` collapsed)."""
    line = _formats(line)
    if "=" in line:
        line = _VALUE.sub("=<*> ", _logfmt(line))
    line = _EMPTY.sub(" <*> ", line)
    cache = _TOKEN_CACHE
    if len(cache) > _TOKEN_CACHE_MAX:  # bounded: a stream of unique tokens must not grow memory
        cache.clear()
    out: list[str] = []
    for tok in _SPLIT.split(line):
        if not tok:
            continue
        m = cache.get(tok)
        if m is None:
            m = cache[tok] = _mask_token(tok)
        if m == WILDCARD and out and out[-1] == WILDCARD:
            continue
        out.append(m)
    return tuple(out)


def masked_text(line: str) -> str:
    """``masked_tokens`` joined by spaces: the text features of the classifiers read this."""
    return " ".join(masked_tokens(line))


def template_id(template: str) -> str:
    """A stable 12-hex id for a template text."""
    return hashlib.sha1(template.encode("utf-8", "replace")).hexdigest()[:12]


@dataclass(frozen=True)
class MinedTemplate:
    """One template: its id, text, how many lines it covered and the first line seen."""

    template_id: str
    template: str
    count: int
    example: str
    cluster: int


class LogMiner:
    """An online template miner (scikit-learn style: ``fit`` returns self, ``labels_`` after fit).

    Args:
        min_values: distinct words in one slot of a skeleton that make the slot a variable.
        min_constants: constant tokens a skeleton must keep for its slot to be merged.
        max_line_chars: longer lines are cut before mining (a 10 MB line must not stall the miner).
    """

    def __init__(self, min_values: int = 3, min_constants: int = 3, max_line_chars: int = 4000) -> None:
        self.min_values = min_values
        self.min_constants = min_constants
        self.max_line_chars = max_line_chars
        self._reset()

    def _reset(self) -> None:
        self.key_ids_: dict[tuple[str, ...], int] = {}
        self.keys_: list[tuple[str, ...]] = []
        self.parent_: list[int] = []
        self.counts_: list[int] = []
        self.examples_: list[str] = []
        self.templates_: dict[int, tuple[str, ...]] = {}
        self._skeletons: dict[tuple[int, int, tuple[str, ...]], list[int]] = {}
        self._slot_values: dict[tuple[int, int, tuple[str, ...]], set[str]] = {}
        self._open: set[tuple[int, int, tuple[str, ...]]] = set()

    # --- union-find ------------------------------------------------------------------------------
    def _find(self, x: int) -> int:
        parent = self.parent_
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def _union(self, a: int, b: int) -> None:
        ra, rb = self._find(a), self._find(b)
        if ra == rb:
            return
        if ra > rb:
            ra, rb = rb, ra
        self.parent_[rb] = ra
        ta, tb = self.templates_.pop(ra), self.templates_.pop(rb)
        if len(ta) == len(tb):
            merged = tuple(x if x == y else WILDCARD for x, y in zip(ta, tb, strict=True))
        else:
            merged = ta
        self.templates_[ra] = merged

    def _new_key(self, key: tuple[str, ...], line: str) -> int:
        kid = len(self.keys_)
        self.key_ids_[key] = kid
        self.keys_.append(key)
        self.parent_.append(kid)
        self.counts_.append(0)
        self.examples_.append(line[:500])
        self.templates_[kid] = key
        n_const = sum(1 for t in key if t != WILDCARD)
        for j, tok in enumerate(key):
            if n_const - (tok != WILDCARD) < self.min_constants:
                continue
            sk = (len(key), j, key[:j] + key[j + 1:])
            members = self._skeletons.setdefault(sk, [])
            members.append(kid)
            values = self._slot_values.setdefault(sk, set())
            values.add(tok)
            if sk in self._open:
                self._union(members[0], kid)
            elif len(values) >= self.min_values:
                self._open.add(sk)
                for m in members[1:]:
                    self._union(members[0], m)
        return kid

    # --- public API --------------------------------------------------------------------------------
    def add(self, line: str) -> int:
        """Mine one line; returns its key id (``cluster_of`` gives the current template cluster)."""
        line = line[: self.max_line_chars]
        return self.add_tokens(masked_tokens(line), line)

    def add_tokens(self, key: tuple[str, ...], line: str) -> int:
        """Mine a line whose ``masked_tokens`` are already known (the classifier shares them)."""
        kid = self.key_ids_.get(key)
        if kid is None:
            kid = self._new_key(key, line)
        self.counts_[kid] += 1
        return kid

    def cluster_of(self, key_id: int) -> int:
        """The template cluster a key belongs to now (clusters only ever merge)."""
        return self._find(key_id)

    def template_of(self, key_id: int) -> str:
        """The current template text of a key's cluster."""
        return " ".join(self.templates_[self._find(key_id)]) or WILDCARD

    def fit(self, lines: Iterable[str]) -> LogMiner:
        """Mine every line; ``labels_`` holds each line's final cluster."""
        self._reset()
        kids = [self.add(line) for line in lines]
        self.labels_ = [self._find(k) for k in kids]
        return self

    def fit_predict(self, lines: Iterable[str]) -> list[int]:
        """Mine the lines and return each line's final cluster."""
        return self.fit(lines).labels_

    def templates(self) -> list[MinedTemplate]:
        """Every template cluster, most frequent first."""
        counts: dict[int, int] = {}
        first: dict[int, int] = {}
        for kid, n in enumerate(self.counts_):
            root = self._find(kid)
            counts[root] = counts.get(root, 0) + n
            first.setdefault(root, kid)
        out = []
        for root, n in counts.items():
            text = " ".join(self.templates_[root]) or WILDCARD
            out.append(MinedTemplate(template_id(text), text, n, self.examples_[first[root]], root))
        return sorted(out, key=lambda t: (-t.count, t.template))
