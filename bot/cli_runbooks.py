"""``warroom runbooks import DIR [--prune]|export DIR|retire ID`` and ``warroom eval runbooks`` (suggestion quality).

The evaluation follows ../shared/docs/evaluation.md: the query is an alert's summary + description
with ``{{ ... }}`` templates removed and the alert name hidden (the ``alert`` field is never read,
and the name is removed from the text if it appears there); the documents are the runbooks' text
with the title line removed. Our hybrid ranker (BM25 + the shared embedder) and the TF-IDF baseline
run on the same queries in the same run.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np
import typer

from bot.cli import CliError, _settings, app, eval_app

if TYPE_CHECKING:
    from knowledge.runbook_store import Retired

__all__ = ["runbooks_app", "load_jsonl", "numbered_jsonl", "build_eval_set", "rank_metrics", "missed"]

runbooks_app = typer.Typer(help="Runbook library: import, export and retire Markdown runbooks.", no_args_is_help=True)
app.add_typer(runbooks_app, name="runbooks")


def _db():  # type: ignore[no-untyped-def]
    from knowledge.db import Database

    db = Database(_settings().database_url)
    db.upgrade()
    return db


@runbooks_app.command("import")
def import_cmd(
    directory: Annotated[Path, typer.Argument(help="Directory of *.md runbooks.")],
    prune: Annotated[bool, typer.Option("--prune", help="Retire the runbooks that are not in DIR (DIR is the whole "
                                                         "library, e.g. a git checkout).")] = False,
) -> None:
    """Validate every runbook in DIR, then store new versions of those that changed."""
    from knowledge.runbook_store import import_dir, retire_missing
    from knowledge.runbooks import RunbookFormatError

    db = _db()
    try:
        with db.session() as s:
            results = import_dir(s, path=directory, actor="cli")
            if prune and not results:
                raise CliError(f"nothing changed: {directory} holds no runbooks (*.md), and --prune would retire "
                               "every runbook")
            retired = retire_missing(s, keep={r.slug for r in results}, actor="cli",
                                     source=str(directory)) if prune else []
    except RunbookFormatError as exc:
        raise CliError(f"nothing imported: {exc}") from None
    for r in results:
        typer.echo(f"{r.slug}: v{r.version} "
                   f"{'(new version)' if r.changed else '(active again)' if r.revived else '(unchanged)'}")
    for gone in retired:
        typer.echo(f"{gone.slug}: retired (not in {directory}){_runs_line(gone)}")


def _runs_line(gone: Retired) -> str:
    cancelled = f"; waiting runs cancelled: {', '.join(f'#{i}' for i in gone.cancelled)}" if gone.cancelled else ""
    running = (f"; still running: {', '.join(f'#{i}' for i in gone.running)} (cancel from its thread)"
               if gone.running else "")
    return cancelled + running


@runbooks_app.command("retire")
def retire_cmd(
    runbook: Annotated[str, typer.Argument(help="The runbook's id.")],
    reason: Annotated[str, typer.Option("--reason", help="Why, kept in the audit log and shown to whoever asks for "
                                                         "it.")] = "",
) -> None:
    """Stop offering a runbook: not listed, suggested or runnable; its versions, runs and audit stay. Runs still
    waiting for confirmation, approval or a worker are cancelled. Importing it again brings it back."""
    from knowledge.runbook_store import get_runbook, retire_runbook, retired_note

    db = _db()
    with db.session() as s:
        gone = retire_runbook(s, slug=runbook, actor="cli", reason=reason[:200])
        if gone is None:
            note = retired_note(s, slug=runbook) if get_runbook(s, slug=runbook) else None
            raise CliError(f"`{runbook}` is already {note}" if note else
                           f"there is no runbook `{runbook}` (see `warroom runbooks export`)")
    typer.echo(f"{gone.slug}: retired (was v{gone.version}){_runs_line(gone)}")


@runbooks_app.command("export")
def export_cmd(directory: Annotated[Path, typer.Argument(help="Directory to write <id>.md files into.")]) -> None:
    """Write the latest version of every active runbook to DIR."""
    from knowledge.runbook_store import export_dir

    db = _db()
    try:
        with db.session() as s:
            files = export_dir(s, path=directory)
    except OSError as exc:
        raise CliError(f"cannot write to {directory}: {exc}") from None
    typer.echo(f"wrote {len(files)} runbook(s) to {directory}")


# --- evaluation -----------------------------------------------------------------------------------
def numbered_jsonl(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """(line number, object) of each line of a JSON-lines file; a clear error for a missing file or a bad line."""
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"cannot read {path}: {exc}") from None
    rows = []
    for i, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise CliError(f"{path}:{i}: not JSON ({exc.msg})") from None
        if not isinstance(row, dict):
            raise CliError(f"{path}:{i}: expected a JSON object")
        rows.append((i, row))
    return rows


def load_jsonl(path: Path) -> list[dict[str, Any]]:
    """Rows of a JSON-lines file; a clear error for a missing file or a bad line."""
    return [row for _, row in numbered_jsonl(path)]


def _doc_text(text: str) -> str:
    lines = text.strip().splitlines()
    return "\n".join(lines[1:]) if lines and lines[0].lstrip().startswith("#") else text


def _target(alert: dict[str, Any], ids: dict[str, int], paths: dict[str, int]) -> int | None:
    rid = str(alert.get("runbook_id") or "").lower()
    if rid in ids:
        return ids[rid]
    url = str(alert.get("runbook_url") or "").lower().rstrip("/")
    for key, idx in ids.items():
        if key and url.endswith("/" + key):
            return idx
    stem = url.rsplit("/", 1)[-1]
    return paths.get(stem)


def build_eval_set(
    corpus: list[dict[str, Any]], alerts: list[dict[str, Any]], id_field: str = "runbook_id", text_field: str = "text"
) -> tuple[list[str], list[str], list[int]]:
    """(documents, queries, index of the right document per query), alert name hidden."""
    from skills.runbook_suggest import strip_templates

    docs, ids, paths = [], {}, {}
    for i, r in enumerate(corpus):
        if text_field not in r:
            raise CliError(f"corpus row {i + 1} has no `{text_field}` field")
        docs.append(_doc_text(str(r[text_field])))
        ids[str(r.get(id_field, "")).lower()] = i
        paths[Path(str(r.get("path", ""))).stem.lower()] = i
    queries, gold = [], []
    for a in alerts:
        target = _target(a, ids, paths)
        if target is None:
            continue
        q = strip_templates(f"{a.get('summary', '')} {a.get('description', '')}")
        name = str(a.get("alert") or "")
        if name:
            q = re.sub(re.escape(name), " ", q, flags=re.I)
        queries.append(q.strip())
        gold.append(target)
    return docs, queries, gold


def rank_metrics(scores: np.ndarray, gold: list[int]) -> dict[str, float]:
    """top-1, top-3 and MRR of the right document in each row of ``scores`` (queries x documents)."""
    ranks = []
    for row, g in zip(scores, gold, strict=True):
        ranks.append(int((row > row[g]).sum()))  # ties count in the document's favour
    r = np.asarray(ranks)
    return {
        "top1": round(float((r == 0).mean()), 4),
        "top3": round(float((r < 3).mean()), 4),
        "mrr": round(float((1.0 / (r + 1)).mean()), 4),
    }


def missed(scores: np.ndarray, gold: list[int], doc_ids: list[str]) -> list[dict[str, Any]]:
    """The queries whose right document is not ranked first: its id, its rank and what was ranked above it.

    Ranks as in :func:`rank_metrics` (ties in the right document's favour); at most three ids are named.
    """
    out = []
    for row, g in zip(scores, gold, strict=True):
        above = np.flatnonzero(row > row[g])
        if len(above):
            first = above[np.argsort(-row[above], kind="stable")][:3]
            out.append({"runbook": doc_ids[g], "rank": len(above) + 1, "ranked_above": [doc_ids[i] for i in first]})
    return out


@eval_app.command("runbooks")
def eval_runbooks(
    corpus: Annotated[Path, typer.Option(help="Runbook corpus (JSON lines: runbook_id, path, text).")],
    alerts: Annotated[Path, typer.Option(help="Alerts (JSON lines: summary, description, runbook_url/id).")],
    extra_corpus: Annotated[Path | None, typer.Option(help="More runbooks, added as distractors.")] = None,
    encoder: Annotated[str, typer.Option(help="Embedder: minilm (bundled) or hash.")] = "minilm",
    id_field: Annotated[str, typer.Option(help="Corpus id field.")] = "runbook_id",
    text_field: Annotated[str, typer.Option(help="Corpus text field.")] = "text",
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object as the last line.")] = False,
) -> None:
    """Runbook suggestion quality (alert name hidden): top-1, top-3, MRR vs a TF-IDF baseline."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    from knowledge.embedder import get_encoder
    from skills.runbook_suggest import HybridTextIndex

    rows = load_jsonl(corpus)
    extra = load_jsonl(extra_corpus) if extra_corpus else []
    docs, queries, gold = build_eval_set(rows + extra, load_jsonl(alerts), id_field, text_field)
    if not queries:
        raise CliError("no alert resolves to a runbook in the corpus (check runbook_url / runbook_id)")
    try:
        enc = get_encoder(encoder)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    t0 = time.perf_counter()
    index = HybridTextIndex(enc).fit(docs)
    fit_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    parts = [index.components(q) for q in queries]  # what index.scores(q) does, kept apart for the ablation
    ours = np.stack([index.fuse(sparse, dense) for sparse, dense in parts])
    per_query_ms = (time.perf_counter() - t0) / len(queries) * 1000
    alone = {name: rank_metrics(np.stack([p[j] for p in parts]), gold) for j, name in enumerate(("bm25", "dense"))}
    # Baseline as documented: TF-IDF (sublinear tf) cosine; IDF fitted on documents and queries (no labels).
    tfidf = TfidfVectorizer(sublinear_tf=True).fit(docs + queries)
    base = (tfidf.transform(queries) @ tfidf.transform(docs).T).toarray()
    m, b = rank_metrics(ours, gold), rank_metrics(base, gold)
    doc_ids = [str(r.get(id_field) or r.get("path") or i) for i, r in enumerate(rows + extra)]
    misses = missed(ours, gold, doc_ids)
    result: dict[str, Any] = {
        **m,
        **{f"baseline_{k}": v for k, v in b.items()},
        **{f"{name}_{k}": v for name, mm in alone.items() for k, v in mm.items()},
        "n_queries": len(queries),
        "n_docs": len(docs),
        "extra_docs": len(extra),
        "encoder": enc.name,
        "method": "BM25 (Snowball stems, identifier parts) + dense cosine, z-score fusion",
        "baseline": "TF-IDF sublinear cosine",
        "fit_s": round(fit_s, 2),
        "query_ms": round(per_query_ms, 2),
        "misses": misses,
    }
    if not as_json:
        typer.echo(f"runbook suggestion, {len(queries)} alerts, {len(docs)} runbooks, alert name hidden")
        typer.echo(f"  ours     top1 {m['top1']:.3f}  top3 {m['top3']:.3f}  mrr {m['mrr']:.3f}")
        typer.echo(f"  baseline top1 {b['top1']:.3f}  top3 {b['top3']:.3f}  mrr {b['mrr']:.3f}")
        for name, mm in alone.items():
            typer.echo(f"  {name + ' alone':8s} top1 {mm['top1']:.3f}  top3 {mm['top3']:.3f}  mrr {mm['mrr']:.3f}")
        typer.echo(f"  index built in {fit_s:.2f} s, {per_query_ms:.1f} ms per query")
        for miss in misses:
            above = ", ".join(miss["ranked_above"])
            typer.echo(f"  missed: {miss['runbook']} at rank {miss['rank']}, above it: {above}")
    typer.echo(json.dumps(result))
