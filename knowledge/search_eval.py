"""Retrieval evaluation of the similar-incident search, next to a TF-IDF baseline in the same run.

Postmortems: every entry whose label is not excluded is a query against all the others
(leave-one-out); relevant = same label; P@5 and MRR. Runbooks (second test): each alert's summary
and description (``{{ ... }}`` templates removed, alert name hidden) against runbook texts with
their title line removed; top-1, top-3 and MRR. Both run the product's own ranking
(:class:`knowledge.kb_index.KnowledgeIndex`: dense + BM25 fused) and, for comparison, dense only and
BM25 only.

The public postmortems come from many companies, and a description often names its own
(``... taking down all of Cloudflare``): the same company appears in several sections, so its name is
a signal that a single organisation's knowledge base never has. ``mask_field`` (default ``company``)
adds a second, clearly separate measurement in which every name found in that field is replaced by
"the company" in all texts, for every ranking and the TF-IDF baseline alike; the headline figures
stay on the unmodified text of the protocol.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from knowledge.embedder import Encoder
from knowledge.kb_docs import Doc, clean_text
from knowledge.kb_index import WEIGHTS, KnowledgeIndex, Query

__all__ = ["read_rows", "eval_postmortems", "eval_runbooks", "mask_names", "MemoEncoder", "EvalDataError"]

_TEMPLATE = re.compile(r"\{\{.*?\}\}", re.S)


class EvalDataError(ValueError):
    """The data file cannot be used; the message is one line for a person."""


class MemoEncoder:
    """Wraps an encoder so a text embedded as a document is not embedded again as a query."""

    def __init__(self, inner: Encoder) -> None:
        self.inner, self.name, self.dim = inner, inner.name, inner.dim
        self._cache: dict[str, np.ndarray] = {}

    def _enc(self, texts: Sequence[str], fn: Any) -> np.ndarray:
        todo = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if todo:
            self._cache.update(zip(todo, fn(todo), strict=True))
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([self._cache[t] for t in texts])

    def encode_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self._enc(texts, self.inner.encode_documents)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._enc(texts, self.inner.encode_queries)


def read_rows(path: Path) -> list[dict[str, Any]]:
    """Rows of a JSON-lines (or CSV) file; raises :class:`EvalDataError` with a one-line reason."""
    if not path.is_file():
        raise EvalDataError(f"{path}: no such file")
    try:
        if path.suffix.lower() == ".csv":
            import pandas as pd

            return [dict(r) for r in pd.read_csv(path).fillna("").to_dict("records")]
        rows = []
        with path.open(encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if line.strip():
                    row = json.loads(line)
                    if not isinstance(row, dict):
                        raise EvalDataError(f"{path}:{n}: expected a JSON object per line")
                    rows.append(row)
        return rows
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EvalDataError(f"{path}: not JSON lines ({exc.__class__.__name__}: {str(exc)[:80]})") from None
    except (OSError, ValueError) as exc:
        raise EvalDataError(f"{path}: cannot read ({str(exc)[:120]})") from None


def _rank_metrics(rankings: list[list[bool]], ks: Sequence[int] = (1, 3, 5)) -> dict[str, float]:
    out: dict[str, float] = {}
    for k in ks:
        out[f"p_at_{k}"] = float(np.mean([np.mean(r[:k]) for r in rankings]))
        out[f"hit_at_{k}"] = float(np.mean([any(r[:k]) for r in rankings]))
    out["mrr"] = float(np.mean([1.0 / (r.index(True) + 1) if True in r else 0.0 for r in rankings]))
    return {k: round(v, 4) for k, v in out.items()}


def _product_rankings(docs: list[Doc], queries: list[str], exclude_self: bool, encoder: Encoder,
                      weights: dict[str, float]) -> list[list[str]]:
    saved = dict(WEIGHTS)
    WEIGHTS.update(weights)
    try:
        kb = KnowledgeIndex.from_docs(docs, encoder)
        kinds = tuple({d.kind for d in docs})
        out = []
        for i, q in enumerate(queries):
            excl = frozenset({docs[i].key}) if exclude_self else frozenset()
            hits = kb.query(Query(text=q, kinds=kinds, k=len(docs), exclude=excl, detail=False))
            out.append([h.key for h in hits])
        return out
    finally:
        WEIGHTS.clear()
        WEIGHTS.update(saved)


def _tfidf_rankings(doc_texts: list[str], queries: list[str], exclude_self: bool) -> list[list[int]]:
    from sklearn.feature_extraction.text import TfidfVectorizer

    vec = TfidfVectorizer(sublinear_tf=True, stop_words="english").fit(doc_texts)
    sims = (vec.transform(queries) @ vec.transform(doc_texts).T).toarray()
    out = []
    for i in range(len(queries)):
        order = [j for j in np.argsort(-sims[i], kind="stable") if not (exclude_self and j == i)]
        out.append(order)
    return out


def mask_names(texts: Sequence[str], names: Sequence[str], replacement: str = "the company") -> list[str]:
    """``texts`` with every name of ``names`` (whole words, with a possessive 's) replaced.

    A value such as ``"FirstEnergy / General Electric"`` counts as two names; longer names are
    replaced first so ``Google Cloud`` is not left as ``the company Cloud``. Case is ignored
    (``Github``/``GitHub``) except that a capitalised name only matches a capitalised word, so the
    company "Elastic" masks "Elastic" but not "elastic load balancer".
    """
    parts = {p.strip() for n in names for p in re.split(r"\s*[/,;]\s*", str(n or "")) if len(p.strip()) >= 2}
    if not parts:
        return list(texts)
    alt = "|".join(re.escape(p) for p in sorted(parts, key=lambda p: (-len(p), p)))
    pat = re.compile(rf"(?<![\w-])(?:{alt})(?:['\u2019]s)?(?![\w-])", re.I)
    lower = {p.lower() for p in parts if not p[0].isupper()}

    def sub(m: re.Match[str]) -> str:
        word = m.group(0)
        return replacement if word[0].isupper() or re.sub(r"['\u2019]s$", "", word.lower()) in lower else word

    return [pat.sub(sub, t) for t in texts]


_VARIANTS = {"dense_only": {"dense": 1.0, "keyword": 0.0}, "bm25_only": {"dense": 0.0, "keyword": 1.0}}


def _postmortem_metrics(texts: list[str], labels: list[str], memo: Encoder) -> dict[str, Any]:
    docs = [Doc(key=f"postmortem:{i}", kind="postmortem", ref_id=str(i), title="", text=t) for i, t in enumerate(texts)]
    lab = {d.key: labels[i] for i, d in enumerate(docs)}

    def score(rankings: list[list[str]]) -> tuple[dict[str, float], list[float]]:
        rel = [[lab[k] == labels[i] for k in r] for i, r in enumerate(rankings)]
        return _rank_metrics(rel), [float(np.mean(r[:5])) for r in rel]

    def per_label(p5: list[float]) -> dict[str, float]:
        return {x: round(float(np.mean([p for p, y in zip(p5, labels, strict=True) if y == x])), 3)
                for x in sorted(set(labels))}

    ours, ours_p5 = score(_product_rankings(docs, texts, True, memo, {}))
    base, base_p5 = score([[docs[j].key for j in r] for r in _tfidf_rankings(texts, texts, True)])
    out: dict[str, Any] = {"p_at_5": ours["p_at_5"], "mrr": ours["mrr"], "baseline_p_at_5": base["p_at_5"],
                           "baseline_mrr": base["mrr"]}
    for name, w in _VARIANTS.items():
        v, _ = score(_product_rankings(docs, texts, True, memo, w))
        out[f"{name}_p_at_5"], out[f"{name}_mrr"] = v["p_at_5"], v["mrr"]
    out["per_label_p_at_5"] = per_label(ours_p5)
    out["baseline_per_label_p_at_5"] = per_label(base_p5)
    return out


def eval_postmortems(rows: list[dict[str, Any]], *, text_field: str, label_field: str, exclude_labels: set[str],
                     encoder: Encoder, mask_field: str | None = "company") -> dict[str, Any]:
    """Same-label P@5 and MRR, leave-one-out, product ranking vs TF-IDF.

    With ``mask_field`` present in the rows, the same measurement is repeated with the names found
    in that field masked in every text (``masked`` in the result; see the module docstring).
    """
    if rows and (text_field not in rows[0] or label_field not in rows[0]):
        raise EvalDataError(f"rows have no field {text_field!r} or {label_field!r} "
                            f"(fields: {', '.join(list(rows[0])[:12])})")
    kept = [r for r in rows if str(r.get(label_field) or "") not in exclude_labels
            and str(r.get(label_field) or "").strip() and str(r.get(text_field) or "").strip()]
    if len(kept) < 6 or len({str(r[label_field]) for r in kept}) < 2:
        raise EvalDataError(f"need at least 6 labelled rows in 2 labels, found {len(kept)}")
    labels = [str(r[label_field]) for r in kept]
    texts = [clean_text(str(r[text_field])) for r in kept]
    memo = MemoEncoder(encoder)
    main = _postmortem_metrics(texts, labels, memo)
    result: dict[str, Any] = {k: main[k] for k in ("p_at_5", "mrr", "baseline_p_at_5", "baseline_mrr")}
    result.update({"n_queries": len(texts), "encoder": encoder.name,
                   "labels": {k: labels.count(k) for k in sorted(set(labels))}})
    result.update({k: v for k, v in main.items() if k not in result})
    counts = np.array([labels.count(x) for x in labels])
    result["random_p_at_5"] = round(float(np.mean((counts - 1) / (len(labels) - 1))), 4)
    if mask_field and any(str(r.get(mask_field) or "").strip() for r in rows):
        masked = mask_names(texts, [str(r.get(mask_field) or "") for r in rows])
        changed = sum(a != b for a, b in zip(masked, texts, strict=True))
        result["masked"] = {"field": mask_field, "texts_changed": changed, **_postmortem_metrics(masked, labels, memo)}
    return result


def eval_runbooks(runbooks: list[dict[str, Any]], alerts: list[dict[str, Any]], encoder: Encoder) -> dict[str, Any]:
    """Alerts (name hidden) against runbooks (title line removed): top-1, top-3, MRR vs TF-IDF."""
    docs, ids = [], []
    for rb in runbooks:
        body = str(rb.get("text") or "").split("\n", 1)
        text = clean_text(body[1] if len(body) > 1 else body[0])
        if text and rb.get("runbook_id"):
            ids.append(str(rb["runbook_id"]))
            docs.append(Doc(key=f"runbook:{len(docs)}", kind="runbook", ref_id=str(len(docs)), title="", text=text))
    pos = {rid: i for i, rid in enumerate(ids)}
    queries, targets = [], []
    for a in alerts:
        rid = str(a.get("runbook_id") or "")
        if rid in pos:
            q = _TEMPLATE.sub(" ", f"{a.get('summary') or ''} {a.get('description') or ''}")
            queries.append(clean_text(q))
            targets.append(pos[rid])
    if not queries:
        raise EvalDataError("no alert links to a runbook in the corpus (runbook_id)")
    memo = MemoEncoder(encoder)
    ours = _product_rankings([replace(d) for d in docs], queries, False, memo, {})
    r_ours = _rank_metrics([[k == docs[t].key for k in r] for r, t in zip(ours, targets, strict=True)], (1, 3))
    base = _tfidf_rankings([d.text for d in docs], queries, False)
    r_base = _rank_metrics([[j == t for j in r] for r, t in zip(base, targets, strict=True)], (1, 3))
    return {"top1": r_ours["hit_at_1"], "top3": r_ours["hit_at_3"], "mrr": r_ours["mrr"],
            "baseline_top1": r_base["hit_at_1"], "baseline_top3": r_base["hit_at_3"], "baseline_mrr": r_base["mrr"],
            "n_queries": len(queries), "n_runbooks": len(docs)}
