"""Measuring postmortem drafts on written incident scenarios.

For each scenario (``knowledge/sample_world/postmortem_scenarios.yaml`` or any file of that shape),
the history is loaded into a fresh knowledge base, a draft is written, and we measure: the share
of required sections filled, faithfulness (share of times, people, services and numbers in the
draft that the facts support), action items found vs planted (with owners), secrets leaked, and
how well the checker separates unsupported sentences from supported ones (sentences with wrong
times, people, services or numbers are planted into true prose). A baseline that fills a fixed
template from the incident row alone is measured in the same run.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import tempfile
from pathlib import Path
from typing import Any

from knowledge.db import Database
from knowledge.facts import PostmortemFacts, assemble_facts
from knowledge.incident_history import load_history
from knowledge.postmortems import PostmortemDoc
from knowledge.seed import seed
from knowledge.yamlfile import safe_load
from skills.postmortem_check import check_prose, faithfulness, sentences
from skills.postmortem_writers import REQUIRED_SECTIONS, DeterministicWriter, PostmortemWriter, redact

__all__ = ["SCENARIOS", "load_scenarios", "expand", "evaluate", "TemplateBaseline", "SECRETS"]

SCENARIOS = Path(__file__).resolve().parent.parent / "knowledge" / "sample_world" / "postmortem_scenarios.yaml"
# Secret values planted in the scenarios; none may survive into a draft.
SECRETS = ("Sup3rS3cret", "xoxb-1111-2222-abcdefghijkl", "abcdefghijklmnopqrstuvwxyz123456")
_CHATTER = ("checking the dashboards", "nothing new in the deploy log", "graphs still flat", "adding more logs",
            "I see the same on my side", "looking at the traces", "retrying the failing request", "no luck yet")
_HALLUCINATIONS = ("The outage began at 03:17 UTC.", "Lena Fischer restarted the cluster.",
                   "About 4812 customers were affected.", "The kafka brokers and dns failed first.",
                   "Grace Kim confirmed the fix at 22:58.")


def load_scenarios(path: Path = SCENARIOS) -> list[dict[str, Any]]:
    """Parse a scenarios file; raises ValueError with a one-line reason when it has the wrong shape."""
    data = safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not isinstance(data.get("scenarios"), list):
        raise ValueError(f"{path}: expected a mapping with a 'scenarios' list")
    for i, sc in enumerate(data["scenarios"]):
        if not isinstance(sc, dict) or not isinstance(sc.get("incident"), dict) or "title" not in sc["incident"]:
            raise ValueError(f"{path}: scenario {i} needs an 'incident' mapping with a 'title'")
    return list(data["scenarios"])


def expand(scenario: dict[str, Any]) -> dict[str, Any]:
    """The incident dict with ``repeat_chatter`` filler messages spread over the incident."""
    inc = dict(scenario["incident"])
    n = int(scenario.get("repeat_chatter", 0))
    if n:
        people = [m.get("user") for m in inc.get("messages", []) if m.get("user")] or ["U0ALICE"]
        first, last = float(inc.get("acknowledged") or 0), float(inc.get("resolved") or 60)
        chatter = [{"at": first + (last - first) * i / n, "user": people[i % len(people)],
                    "text": _CHATTER[i % len(_CHATTER)]} for i in range(n)]
        inc["messages"] = sorted([*inc.get("messages", []), *chatter], key=lambda m: float(m["at"]))
    return inc


@dataclasses.dataclass(frozen=True)
class TemplateBaseline:
    """Baseline: a fixed template filled from the incident row only (what the seed data holds)."""

    name: str = "template"

    def write(self, facts: PostmortemFacts) -> PostmortemDoc:
        md = (f"# Postmortem: {facts.title}\n\n## Summary\n{facts.description}\n\n## Impact\nSEV{facts.severity} "
              f"on {facts.service}.\n\n## Root cause\n{facts.root_cause}\n\n## Resolution\n{facts.resolution}\n")
        filled = {"summary": bool(facts.description), "impact": True, "timeline": False,
                  "root_cause": bool(facts.root_cause), "resolution": bool(facts.resolution), "action_items": False}
        return PostmortemDoc(facts.title, facts.description, facts.root_cause, facts.resolution, md,
                             {"sections_filled": filled, "action_items": []}, self.name)


def _score(doc: PostmortemDoc, facts: PostmortemFacts, planted: list[dict[str, Any]]) -> dict[str, Any]:
    filled = doc.fields.get("sections_filled") or {}
    faith = faithfulness(doc.markdown, facts)
    items = doc.fields.get("action_items") or []
    found = owners = 0
    matched_items: set[int] = set()
    for p in planted:
        hit = next((i for i, a in enumerate(items) if str(p["match"]).lower() in str(a["text"]).lower()), None)
        if hit is not None:
            found += 1
            matched_items.add(hit)
            owners += int(items[hit].get("owner") == p.get("owner"))
    return {"sections_filled": sum(bool(filled.get(k)) for k in REQUIRED_SECTIONS) / len(REQUIRED_SECTIONS),
            "faithfulness": faith.share, "claims": faith.total, "unsupported": list(faith.unsupported),
            "planted": len(planted), "found": found, "owners_correct": owners, "extracted": len(items),
            "extracted_matching": len(matched_items),
            "secrets_leaked": sum(doc.markdown.count(s) for s in SECRETS)}


def _checker_probe(facts: PostmortemFacts, doc: PostmortemDoc) -> tuple[int, int, int, int]:
    """(hallucinations removed, planted, true sentences kept, true sentences) for one draft's prose."""
    prose = " ".join(str(v) for v in (doc.fields.get("sections") or {}).values() if v)
    said = sentences(prose)
    true_kept = sum(1 for x in said if not check_prose(x, facts)[1])
    true_total = len(said)
    removed_h = sum(1 for h in _HALLUCINATIONS if check_prose(h, facts)[1])
    return removed_h, len(_HALLUCINATIONS), true_kept, true_total


def evaluate(scenarios: list[dict[str, Any]], writers: list[PostmortemWriter] | None = None,
             database_url: str | None = None) -> dict[str, Any]:
    """Run every writer on every scenario; returns per-scenario rows and pooled metrics per writer."""
    writers = writers or [DeterministicWriter(), TemplateBaseline()]
    with tempfile.TemporaryDirectory(prefix="warroom-pm-eval-") as tmp:
        db = Database(database_url or f"sqlite:///{Path(tmp) / 'eval.db'}")
        db.upgrade()
        with db.session() as s:
            seed(s)
        rows: list[dict[str, Any]] = []
        probe = [0, 0, 0, 0]
        for sc in scenarios:
            with db.session() as s:
                iid = load_history(s, expand(sc), channel=f"C0PM{len(rows):04d}")
                facts = assemble_facts(s, incident_id=iid)
                assert facts is not None
            red = redact(facts)
            for w in writers:
                doc = w.write(red)
                row = {"scenario": sc.get("name", iid), "writer": w.name, **_score(doc, red, sc.get("planted_actions")
                                                                                  or [])}
                rows.append(row)
                if isinstance(w, DeterministicWriter):
                    probe = [a + b for a, b in zip(probe, _checker_probe(red, doc), strict=True)]
        db.engine.dispose()
    pooled: dict[str, Any] = {}
    for name in dict.fromkeys(r["writer"] for r in rows):
        rs = [r for r in rows if r["writer"] == name]
        planted, found = sum(r["planted"] for r in rs), sum(r["found"] for r in rs)
        extracted = sum(r["extracted"] for r in rs)
        claims = sum(r["claims"] for r in rs)
        pooled[name] = {
            "sections_filled": round(sum(r["sections_filled"] for r in rs) / len(rs), 4),
            "faithfulness": round(sum(r["faithfulness"] * r["claims"] for r in rs) / claims, 4) if claims else 1.0,
            "action_items_planted": planted, "action_items_found": found,
            "action_items_recall": round(found / planted, 4) if planted else 1.0,
            "action_items_precision": round(sum(r["extracted_matching"] for r in rs) / extracted, 4)
            if extracted else 0.0,
            "owners_correct": round(sum(r["owners_correct"] for r in rs) / found, 4) if found else 0.0,
            "secrets_leaked": sum(r["secrets_leaked"] for r in rs),
        }
    checker = {"hallucinated_removed": probe[0], "hallucinated_planted": probe[1],
               "supported_kept": probe[2], "supported_total": probe[3]}
    return {"scenarios": len(scenarios), "rows": rows, "writers": pooled, "checker": checker,
            "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
