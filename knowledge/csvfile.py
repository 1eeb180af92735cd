"""CSV files people export: the column separator is read from the header line.

Excel writes a comma only where the decimal separator is a point; in much of Europe (de, fr, it, es, nl, ...) its
"CSV" is separated by semicolons, and many tools write tab-separated files. A header line of ``slack_user_id;name;
team`` was one column named all of that ("missing column(s) name, slack_user_id, team").
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import IO

__all__ = ["delimiter_of", "file_delimiter", "dict_reader"]

_CANDIDATES = (",", ";", "\t", "|")


def delimiter_of(header: str) -> str:
    """The separator a CSV header line uses: the candidate that splits it most (outside quotes); "," when none."""
    counts = dict.fromkeys(_CANDIDATES, 0)
    quoted = False
    for ch in header:
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch in counts:
            counts[ch] += 1
    best = max(_CANDIDATES, key=lambda c: counts[c])  # ties keep the earlier candidate: the comma first
    return best if counts[best] else ","


def file_delimiter(path: Path, encoding: str = "utf-8-sig") -> str:
    """:func:`delimiter_of` the first line of the file at ``path`` (read as ``encoding``)."""
    with path.open(encoding=encoding, errors="replace", newline="") as fh:
        return delimiter_of(fh.readline())


def dict_reader(source: str | IO[str]) -> csv.DictReader[str]:
    """``csv.DictReader`` over ``source`` (text, or a seekable file opened with ``newline=""``) with the separator
    its header line uses."""
    fh = io.StringIO(source) if isinstance(source, str) else source
    start = fh.tell()
    header = fh.readline()
    fh.seek(start)
    return csv.DictReader(fh, delimiter=delimiter_of(header))
