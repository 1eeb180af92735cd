"""The vector index and the hybrid search on a real (SQLite) knowledge base with the hash encoder."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from bot.settings import Settings
from knowledge.db import Database
from knowledge.embedder import get_encoder
from knowledge.models import Feedback, Incident, Postmortem
from knowledge.search import SearchError, index_dir, open_index, record_not_similar, search, sync_index
from knowledge.vector_index import IndexUnusable, VectorIndex
from skills.base import SkillContext


def _ctx(db: Database, settings: Settings) -> SkillContext:
    return SkillContext(db=db, data_dir=settings.data_dir, model_dir=settings.models_path, settings=settings)


def _unit(n: int, dim: int, seed: int = 0) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_vector_index_exact_then_hnsw_with_edits_and_deletes(tmp_path: Path) -> None:
    vi = VectorIndex("enc", 16, approx_threshold=200)
    vecs = _unit(150, 16)
    vi.upsert([f"d:{i}" for i in range(150)], ["f"] * 150, vecs)
    assert vi.kind == "flat" and len(vi) == 150
    assert vi.search(vecs[7], 1)[0][0] == "d:7"
    vi.upsert([f"d:{i}" for i in range(150, 260)], ["f"] * 110, _unit(110, 16, 1))
    assert vi.kind == "hnsw" and len(vi) == 260
    assert vi.search(vecs[7], 1)[0][0] == "d:7"
    # an edit moves the key to a new vector; a delete removes it from results
    vi.upsert(["d:7"], ["g"], vecs[8:9])
    assert [k for k, _ in vi.search(vecs[8], 2)] in (["d:8", "d:7"], ["d:7", "d:8"])
    assert vi.remove(["d:8", "d:nope"]) == 1
    assert all(k != "d:8" for k, _ in vi.search(vecs[8], 20))
    assert vi.search(vecs[8], 3, allowed={"d:1", "d:2"})[0][0] in {"d:1", "d:2"}
    vi.save(tmp_path)
    back = VectorIndex.load(tmp_path, "enc", 16)
    assert back.kind == "hnsw" and len(back) == 259 and back.fingerprints()["d:7"] == "g"
    assert back.search(vecs[8], 1)[0][0] == "d:7"


def test_vector_index_grows_into_ivf_and_survives_compaction_and_reload(tmp_path: Path) -> None:
    vi = VectorIndex("enc", 16, approx_threshold=50, ivf_threshold=400, nprobe=64)
    vecs = _unit(600, 16, 3)
    vi.upsert([f"d:{i}" for i in range(300)], ["f"] * 300, vecs[:300])
    assert vi.kind == "hnsw"
    vi.upsert([f"d:{i}" for i in range(300, 600)], ["f"] * 300, vecs[300:])
    assert vi.kind == "ivf" and len(vi) == 600
    assert vi.search(vecs[450], 1)[0][0] == "d:450"
    assert vi.search(vecs[10], 2, allowed={"d:10", "d:11"})[0][0] == "d:10"
    vi.remove([f"d:{i}" for i in range(250)])
    vi.compact()
    assert vi.kind == "hnsw" and vi.dead == 0 and vi.search(vecs[450], 1)[0][0] == "d:450"
    vi.upsert([f"e:{i}" for i in range(200)], ["f"] * 200, _unit(200, 16, 4))
    vi.save(tmp_path)
    back = VectorIndex.load(tmp_path, "enc", 16, approx_threshold=50, ivf_threshold=400)
    assert back.kind == "ivf" and back.search(vecs[599], 1)[0][0] == "d:599"
    assert np.allclose(back.vectors_of(["d:599"])[0], vecs[599], atol=1e-6)


def test_vector_index_refuses_missing_corrupt_and_foreign(tmp_path: Path) -> None:
    with pytest.raises(IndexUnusable, match="no index"):
        VectorIndex.load(tmp_path, "enc", 16)
    vi = VectorIndex("enc", 16)
    vi.upsert(["a", "b"], ["1", "2"], _unit(2, 16))
    vi.save(tmp_path)
    with pytest.raises(IndexUnusable, match="built with encoder enc/16"):
        VectorIndex.load(tmp_path, "other", 16)
    with pytest.raises(IndexUnusable, match="built with encoder"):
        VectorIndex.load(tmp_path, "enc", 32)
    data = (tmp_path / "index.faiss").read_bytes()
    (tmp_path / "index.faiss").write_bytes(data[: len(data) // 2])
    with pytest.raises(IndexUnusable, match="checksum"):
        VectorIndex.load(tmp_path, "enc", 16)
    (tmp_path / "meta.json").write_text("{not json")
    with pytest.raises(IndexUnusable, match="unreadable"):
        VectorIndex.load(tmp_path, "enc", 16)
    with pytest.raises(ValueError, match="shape"):
        vi.upsert(["c"], ["3"], _unit(1, 8))


def test_search_finds_the_past_incident_with_why_and_fix(db: Database, settings: Settings) -> None:
    ctx = _ctx(db, settings)
    hits = search(ctx, text="payments-api 503: remaining connection slots are reserved", service="payments-api",
                  kinds=("incident",), k=3)
    top = hits[0]
    assert (top.kind, top.id, top.postmortem_id) == ("incident", "101", 1)
    assert "same service payments-api" in top.why and "words: payments-api" in top.why
    assert "pgbouncer" in top.resolution and top.resolved_by == "restart-service"
    assert hits == sorted(hits, key=lambda h: -h.score)


def test_filters_kinds_service_time_and_severity(db: Database, settings: Settings) -> None:
    ctx = _ctx(db, settings)
    text = "disk full"
    only_pm = search(ctx, text=text, kinds=("postmortem",), k=10)
    assert only_pm and all(h.kind == "postmortem" for h in only_pm)
    kafka = search(ctx, text=text, kinds=("incident",), filter_service="kafka", k=10)
    assert [h.id for h in kafka] == ["109"]
    recent = search(ctx, text=text, kinds=("incident",), since=dt.datetime(2026, 6, 1), k=20)
    assert recent and all(h.created_at and h.created_at >= "2026-06-01" for h in recent)
    sev1 = search(ctx, text=text, kinds=("incident",), max_severity=1, k=20)
    assert sev1 and all(h.severity == 1 for h in sev1)
    assert search(ctx, text=text, kinds=("incident",), since=dt.datetime(2030, 1, 1)) == []


@pytest.mark.parametrize("bad", ["", "   ", "?!...", None])
def test_empty_queries_are_refused_with_a_message(db: Database, settings: Settings, bad: object) -> None:
    with pytest.raises(SearchError):
        search(_ctx(db, settings), text=bad)  # type: ignore[arg-type]


def test_bad_kind_and_k_are_refused(db: Database, settings: Settings) -> None:
    ctx = _ctx(db, settings)
    with pytest.raises(SearchError, match="unknown kind"):
        search(ctx, text="disk", kinds=("tweet",))
    with pytest.raises(SearchError, match="between 1 and 50"):
        search(ctx, text="disk", k=0)


def test_huge_and_foreign_queries_still_answer(db: Database, settings: Settings) -> None:
    ctx = _ctx(db, settings)
    huge = "kafka broker disk full " + "x" * 100_000
    assert search(ctx, text=huge, k=3)[0].service == "kafka"
    for text in ("数据库连接池耗尽", "Festplatte voll auf dem Kafka-Broker", "ディスクがいっぱい"):
        hits = search(ctx, text=text, k=3)
        assert all(0.0 <= h.score <= 1.0 for h in hits)
    with pytest.raises(SearchError, match="nothing to search for"):
        search(ctx, text="😱🔥 !!")


def test_sync_picks_up_added_edited_and_deleted_documents(db: Database, settings: Settings) -> None:
    ctx = _ctx(db, settings)
    open_index(ctx)
    with db.session() as s:
        s.add(Incident(id=500, title="zookeeper quorum lost after network partition", service_name="kafka",
                       status="resolved", resolution="restored the partition and restarted zookeeper"))
        inc = s.get(Incident, 103)
        assert inc is not None
        inc.resolution = "replaced the certificate by hand with certbot"
        pm = s.get(Postmortem, 9)
        assert pm is not None
        s.delete(pm)
    drift = sync_index(ctx, dry_run=True)
    assert (drift.added, drift.updated, drift.removed) == (1, 2, 1)  # incident 109 lost its postmortem link
    report = sync_index(ctx)
    assert (report.added, report.updated, report.removed) == (1, 2, 1)
    assert sync_index(ctx, dry_run=True).added == 0
    assert search(ctx, text="zookeeper quorum lost", k=1)[0].key == "incident:500"
    assert "certbot" in search(ctx, text="certificate expired", kinds=("incident",), k=1)[0].resolution
    assert all(h.key != "postmortem:9" for h in search(ctx, text="kafka broker out of disk", k=10))


def test_corrupt_or_foreign_index_on_disk_is_rebuilt_not_trusted(db: Database, settings: Settings) -> None:
    ctx = _ctx(db, settings)
    sync_index(ctx)
    path = index_dir(ctx) / "slots.json"
    path.write_text(path.read_text().replace("incident:101", "incident:999"))
    fresh = _ctx(db, settings)
    kb = open_index(fresh)
    assert "incident:101" in kb.vindex.fingerprints() and "incident:999" not in kb.vindex.fingerprints()
    assert fresh.resources["kb_index.report"].rebuilt
    assert "checksum" in fresh.resources["kb_index.report"].reason
    # an index written by another encoder is rebuilt for this one
    meta = index_dir(ctx) / "meta.json"
    meta.write_text(meta.read_text().replace(get_encoder("hash").name, "all-MiniLM-L6-v2"))
    again = _ctx(db, settings)
    open_index(again)
    assert "built with encoder all-MiniLM-L6-v2" in again.resources["kb_index.report"].reason
    assert search(again, text="remaining connection slots are reserved", k=1)[0].incident_id == 101


def test_not_similar_feedback_reranks(db: Database, settings: Settings) -> None:
    ctx = _ctx(db, settings)
    text = "payments-api connection pool exhausted"
    first = search(ctx, text=text, kinds=("incident",), incident_id=102, k=3)[0]
    assert first.key == "incident:101"
    assert record_not_similar(db=db, target="incident:101", incident_id=102, user_id="U0BOB", query=text)
    assert not record_not_similar(db=db, target="incident:101", incident_id=102, user_id="U0BOB", query=text)
    after = search(ctx, text=text, kinds=("incident",), incident_id=102, k=5)
    assert all(h.key != "incident:101" for h in after)
    # the same wording on another incident drops it too; other wording only demotes it, and says so
    assert all(h.key != "incident:101" for h in search(ctx, text=text, kinds=("incident",), incident_id=104))
    other = search(ctx, text="postgres connection pool exhausted on payments", kinds=("incident",),
                   incident_id=104, k=5)
    hit = next(h for h in other if h.key == "incident:101")
    assert "marked not similar before" in hit.why
    with db.session() as s:
        assert s.query(Feedback).filter_by(kind="not_similar").count() == 1


def test_a_postmortem_published_through_another_replica_is_found_within_seconds(db: Database,
                                                                                settings: Settings,
                                                                                tmp_path: Path) -> None:
    import time

    from knowledge.search import STAMP_CHECK_S

    here = _ctx(db, settings)  # this replica: its own index in memory and on disk
    other = SkillContext(db=db, data_dir=tmp_path / "other", model_dir=settings.models_path, settings=settings)
    query = "etcd leader election storm after clock skew on the control plane"
    assert all("clock skew" not in h.title for h in search(here, text=query, k=3))
    assert all("clock skew" not in h.title for h in search(other, text=query, k=3))
    with db.session() as s:  # the other replica publishes (a plain database write, as any replica's would be)
        s.add(Postmortem(title="etcd leader election storm after clock skew", status="published",
                         summary="control plane clock skew made etcd re-elect its leader every few seconds",
                         root_cause="chrony stopped on two control plane nodes",
                         resolution="restarted chrony and pinned the NTP pool",
                         published_at=dt.datetime.now(dt.UTC).replace(tzinfo=None)))
    deadline = time.monotonic() + STAMP_CHECK_S + 5
    found = False
    while not found and time.monotonic() < deadline:
        found = any("clock skew" in h.title for h in search(here, text=query, k=3))
        time.sleep(0.2)
    assert found, "the other replica's postmortem never reached this replica's index"


def test_markdown_is_indexed_as_sentences_not_as_lines() -> None:
    """Each line break got a full stop: a wrapped paragraph was indexed (and quoted) as "... when the. deployment"."""
    from knowledge.kb_docs import clean_text

    md = ("# Restart a service\n\nA rolling restart replaces every pod, without downtime when the\n"
          "deployment has two replicas.\n\n- scale it\n  down first\n- then up\n\n```bash\nkubectl get pods\n"
          "kubectl rollout restart\n```\nDuration: 44 min\nSeverity: SEV1\n| step | owner |\n")
    assert clean_text(md) == ("Restart a service. A rolling restart replaces every pod, without downtime when the "
                              "deployment has two replicas. - scale it down first. - then up. kubectl get pods. "
                              "kubectl rollout restart. Duration: 44 min. Severity: SEV1. step owner.")
    assert clean_text("one line") == "one line."
