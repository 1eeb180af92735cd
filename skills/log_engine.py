"""The log analysis shared by ``/logs``, file uploads, triage and ``warroom logs classify``.

Lines stream through one :class:`LogAnalyzer`: each line is masked once, mined into a template and
classified by its masked key (cached), so the cost per line is a regex pass and two dict lookups.
At the end the templates are ranked (severity, then count), checked against the knowledge base
(never seen before = new) and remembered. Secrets are masked in everything stored or shown.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import re
import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import IO

from knowledge.log_templates import TemplateSeen, known_template_ids, record_templates
from models.log_classifier import LinePrediction, LogClassifier, load_log_model, save_log_model
from models.log_data import load_examples
from models.log_miner import LogMiner, masked_tokens, template_id
from skills.base import SkillContext
from skills.redact import mask_secrets, strip_ansi

__all__ = ["LogAnalyzer", "LogReport", "TemplateSummary", "get_model", "split_paste", "decode_log_bytes", "utf16_of",
           "compression_of", "open_decompressed", "decompress_bounded", "SEVERITY_RANK", "MAX_LINE_CHARS",
           "MAX_PASTE_LINES", "NotLogs"]

SEVERITY_RANK = {"FATAL": 4, "ERROR": 3, "WARNING": 2, "INFO": 1, "DEBUG": 0}
MAX_LINE_CHARS = 4000
MAX_PASTE_LINES = 200_000
_MODEL_KEY = "logs.model"
_LOCK = threading.Lock()


class NotLogs(ValueError):
    """The input is not text log lines (binary, empty); the message says why."""


_BUNDLED: tuple[list[str], list[str], LogClassifier] | None = None


def _bundled() -> tuple[list[str], list[str], LogClassifier]:
    """The classifier fitted on the bundled examples, once per process (the same examples give the same model:
    a second knowledge base in the process, as each test's app is, saves its own copy without fitting again)."""
    global _BUNDLED
    if _BUNDLED is None:
        ex = load_examples()
        texts, sev = [e.text for e in ex], [e.severity for e in ex]
        _BUNDLED = (texts, sev, LogClassifier().fit(texts, sev, [e.category for e in ex]))
    return _BUNDLED


def get_model(ctx: SkillContext) -> LogClassifier:
    """The saved model under ``ctx.model_dir``; trained from the bundled examples when there is none."""
    model = ctx.resources.get(_MODEL_KEY)
    if isinstance(model, LogClassifier):
        return model
    with _LOCK:
        model = ctx.resources.get(_MODEL_KEY)
        if isinstance(model, LogClassifier):
            return model
        loaded = load_log_model(ctx.model_dir)
        if loaded is not None:
            model = loaded.model
        else:
            texts, sev, model = _bundled()
            save_log_model(model, ctx.model_dir, texts=texts, labels=sev, source="bundled examples")
        ctx.resources[_MODEL_KEY] = model
        return model


# Rotated logs come compressed (``syslog.2.gz``, ``app.log.xz``): told apart by their first bytes, not the name.
_GZIP, _BZIP2, _XZ, _ZSTD = b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00", b"\x28\xb5\x2f\xfd"


def compression_of(head: bytes) -> str | None:
    """"gzip", "bzip2", "xz" or "zstd" when ``head`` starts like such a stream, else None."""
    for name, magic in (("gzip", _GZIP), ("bzip2", _BZIP2), ("xz", _XZ), ("zstd", _ZSTD)):
        if head.startswith(magic):
            return name
    return None


def open_decompressed(fh: IO[bytes], head: bytes) -> IO[bytes]:
    """``fh`` itself, or a stream decompressing it (gzip, bzip2, xz; read in pieces, any size)."""
    kind = compression_of(head)
    if kind is None:
        return fh
    if kind == "zstd":
        raise NotLogs("this is zstd-compressed, which I cannot read; use `zstd -dc FILE | warroom logs classify -`")
    opener = {"gzip": gzip.GzipFile, "bzip2": bz2.BZ2File, "xz": lzma.LZMAFile}[kind]
    return opener(fileobj=fh) if kind == "gzip" else opener(fh)  # type: ignore[no-any-return, operator]


def decompress_bounded(data: bytes, limit: int) -> tuple[bytes, list[str]]:
    """The bytes of an uploaded file, decompressed when compressed, never more than ``limit`` of them (a small
    archive can expand a thousandfold); notes say what was done."""
    kind = compression_of(data[:8])
    if kind is None:
        return data, []
    stream = open_decompressed(io.BytesIO(data), data[:8])
    try:
        out = stream.read(limit + 1)
    except (OSError, EOFError, lzma.LZMAError) as exc:
        raise NotLogs(f"this {kind} file is damaged ({type(exc).__name__})") from None
    if len(out) > limit:
        raise NotLogs(f"this {kind} file expands to more than {limit // 2**20} MB")
    return out, [f"decompressed ({kind})"]


def utf16_of(head: bytes) -> str | None:
    """The codec of UTF-16 text ("utf-16" with a byte-order mark; "utf-16-le" / "utf-16-be" without one, seen as
    ASCII with every other byte NUL), else None. Windows PowerShell 5 writes `Get-EventLog ... > out.log` and
    `Get-Content` output this way: such a file is text, not a binary."""
    if head[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return "utf-16"
    sample = head[: min(len(head), 4096) // 2 * 2]
    if len(sample) < 16:
        return None
    evens, odds = sample[0::2], sample[1::2]
    if odds.count(0) >= 0.9 * len(odds) and evens.count(0) == 0:
        return "utf-16-le"
    if evens.count(0) >= 0.9 * len(evens) and odds.count(0) == 0:
        return "utf-16-be"
    return None


def decode_log_bytes(data: bytes) -> tuple[str, list[str]]:
    """Text of an uploaded/CLI file (UTF-8, or UTF-16 as Windows writes it), refusing binaries; notes say what was
    replaced."""
    if codec := utf16_of(data[:8192]):
        text = data.decode(codec, errors="replace")
        notes = ["read as UTF-16 (as Windows PowerShell writes files)"]
    else:
        if b"\x00" in data[:8192]:
            raise NotLogs("this looks like a binary file (it contains NUL bytes), not a text log")
        text = data.decode("utf-8-sig", errors="replace")  # a byte-order mark is no part of the first line
        notes = []
    head = text[:8192]
    if head:
        controls = sum(1 for c in head if c < "\t" or "\r" < c < " ")
        if controls / len(head) > 0.1:
            raise NotLogs("this looks like a binary file, not a text log")
    if "\ufffd" in text:
        notes.append("some bytes were not valid UTF-8 and were replaced")
    return text, notes


# The frames of a pasted stack trace (Java/Kotlin "\tat a.b.C.d(C.java:42)" and "... 12 more", Python's
# '  File "x.py", line 3, in f' and the code line under it, Go's "\t/src/main.go:12 +0x1d"): each was a line of its
# own, ERROR, one template per frame, crowding out what the paste says. They belong to the exception line above.
_FRAME = re.compile(r"^\s+at\s+[\w$.<>/]+\(.*\)\s*$|^\s*\.\.\.\s*\d+\s+(?:more|common frames omitted)\s*$"
                    r"|^\s+File \"[^\"]+\", line \d+|^\s+/\S+\.go:\d+(?:\s+\+0x[0-9a-f]+)?\s*$")
_PY_FRAME = re.compile(r"^\s+File \"[^\"]+\", line \d+")


_PASTED_LEVEL = re.compile(r"FATAL|CRITICAL|ERROR|WARN(?:ING)?|PANIC", re.I)  # a one-word line that is a log line


def split_paste(text: str, max_lines: int = MAX_PASTE_LINES) -> tuple[list[str], list[str]]:
    """Log lines of a paste (code fences dropped, blank lines skipped, a stack trace's frames folded into the
    exception line above them), with notes on what was cut or folded."""
    lines: list[str] = []
    notes: list[str] = []
    cut_long = frames = 0
    code_line_next = False  # under a Python frame: the line of code it shows, indented deeper
    for raw in text.replace("\r\n", "\n").split("\n"):
        plain = strip_ansi(raw)
        if lines and (_FRAME.match(plain) or (code_line_next and plain[:1].isspace() and plain.strip())):
            frames += 1
            code_line_next = bool(_PY_FRAME.match(plain))
            continue
        code_line_next = False
        line = plain.strip()  # a line of colour codes alone is no log line
        if line.startswith("```"):  # a fence, a fence with its language ("```log"), or a whole one-line block
            line = line[3:].removesuffix("```").strip()  # ("```ERROR db-1 refused```": Slack keeps it on one line)
            if re.fullmatch(r"[A-Za-z][\w+-]{0,15}", line) and not _PASTED_LEVEL.fullmatch(line):
                continue
        if not line:
            continue
        line = line.strip("`")
        if len(line) > MAX_LINE_CHARS:
            line, cut_long = line[:MAX_LINE_CHARS], cut_long + 1
        if len(lines) >= max_lines:
            notes.append(f"only the first {max_lines:,} lines were read")
            break
        lines.append(line)
    if cut_long:
        notes.append(f"{cut_long} line(s) longer than {MAX_LINE_CHARS:,} characters were cut")
    if frames:
        notes.append(f"{frames} stack-frame line(s) were read as part of the exception line above them")
    return lines, notes


@dataclass(frozen=True)
class TemplateSummary:
    """One template in a report."""

    template_id: str
    template: str
    count: int
    severity: str
    category: str
    example: str
    new: bool


@dataclass(frozen=True)
class LogReport:
    """What a batch of lines holds."""

    n_lines: int
    severity_counts: dict[str, int]
    category_counts: dict[str, int]
    templates: tuple[TemplateSummary, ...]
    notes: tuple[str, ...] = ()

    @property
    def new_templates(self) -> tuple[TemplateSummary, ...]:
        return tuple(t for t in self.templates if t.new)

    def to_dict(self, top: int = 10) -> dict[str, object]:
        """A JSON-able summary (stored in incident findings)."""
        return {"n_lines": self.n_lines, "severity_counts": self.severity_counts,
                "category_counts": self.category_counts, "n_templates": len(self.templates),
                "n_new": len(self.new_templates), "notes": list(self.notes),
                "templates": [t.__dict__ for t in self.templates[:top]]}


@dataclass
class LogAnalyzer:
    """Stream lines in with :meth:`feed`, then :meth:`report`."""

    model: LogClassifier
    miner: LogMiner = field(default_factory=LogMiner)
    notes: list[str] = field(default_factory=list)
    n_lines: int = 0
    _key_pred: dict[int, LinePrediction] = field(default_factory=dict)
    _key_count: Counter[int] = field(default_factory=Counter)

    def feed(self, lines: Iterable[str]) -> list[tuple[int, LinePrediction]]:
        """Mine and classify lines; returns (key id, prediction) per line."""
        kids: list[int] = []
        new: dict[int, tuple[str, str]] = {}
        for line in lines:
            line = strip_ansi(line)[:MAX_LINE_CHARS]  # "\x1b[31mFATAL\x1b[0m disk full" was a WARNING
            tokens = masked_tokens(line)
            kid = self.miner.add_tokens(tokens, line)
            kids.append(kid)
            if kid not in self._key_pred and kid not in new:
                new[kid] = (" ".join(tokens), line)
        if new:
            preds = self.model.predict_masked([m for m, _l in new.values()], [line for _m, line in new.values()])
            self._key_pred.update(zip(new.keys(), preds, strict=True))
        self._key_count.update(kids)
        self.n_lines += len(kids)
        return [(k, self._key_pred[k]) for k in kids]

    def report(self, ctx: SkillContext | None = None, *, remember: bool = True,
               incident_id: int | None = None) -> LogReport:
        """Templates ranked by severity then count; new ones flagged against the knowledge base."""
        clusters: dict[int, dict[str, Counter[str]]] = {}
        sev_counts: Counter[str] = Counter()
        cat_counts: Counter[str] = Counter()
        for kid, n in self._key_count.items():
            p = self._key_pred[kid]
            c = clusters.setdefault(self.miner.cluster_of(kid), {"sev": Counter(), "cat": Counter()})
            c["sev"][p.severity] += n
            c["cat"][p.category] += n
            sev_counts[p.severity] += n
            cat_counts[p.category] += n
        by_root = {t.cluster: t for t in self.miner.templates()}
        seen = []
        for root, c in clusters.items():
            t = by_root[root]
            sev = max(c["sev"], key=lambda s: (c["sev"][s], SEVERITY_RANK[s]))
            cat = c["cat"].most_common(1)[0][0]
            text = mask_secrets(t.template)
            seen.append(TemplateSeen(template_id(text), text, t.count, sev, cat, mask_secrets(t.example)))
        known: set[str] = set()
        if ctx is not None:
            with ctx.db.session() as s:
                known = known_template_ids(s, templates=[(t.template_id, t.template) for t in seen])
                if remember:
                    record_templates(s, seen=seen, incident_id=incident_id)
        ranked = sorted(seen, key=lambda t: (-SEVERITY_RANK[t.severity], -t.count, t.template))
        summaries = tuple(TemplateSummary(t.template_id, t.template, t.count, t.severity, t.category, t.example,
                                          ctx is not None and t.template_id not in known) for t in ranked)
        return LogReport(self.n_lines, dict(sev_counts), dict(cat_counts), summaries, tuple(self.notes))
