"""Bundled, self-written labelled log lines (``examples.csv``: severity, category, text).

Written by hand for this project in many formats (web servers, databases, Kubernetes, JVM and
Python apps, kernels, SSH); none are copied from Loghub or any evaluation set.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from knowledge.csvfile import dict_reader

__all__ = ["LabelledLine", "load_examples", "EXAMPLES_PATH"]

EXAMPLES_PATH = Path(__file__).resolve().parent / "examples.csv"


@dataclass(frozen=True)
class LabelledLine:
    """One labelled log line."""

    text: str
    severity: str
    category: str | None = None


def load_examples(path: Path = EXAMPLES_PATH) -> list[LabelledLine]:
    """The labelled lines of a CSV with columns ``text``, ``severity`` and optionally ``category``."""
    with path.open(encoding="utf-8-sig", newline="") as fh:  # a BOM (Excel) is no part of a column name
        return [LabelledLine(r["text"], r["severity"].strip().upper(), (r.get("category") or "").strip() or None)
                for r in dict_reader(fh) if r.get("text") and r.get("severity")]
