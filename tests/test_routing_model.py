"""The routing classifier: scikit-learn contract, artifact with origin record, training from the
knowledge base (feedback included), and the `warroom eval routing` contract."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from sklearn.base import clone
from typer.testing import CliRunner

from bot.cli import CliError, app
from bot.settings import Settings
from knowledge.db import Database
from knowledge.routing_history import record_wrong_owner, routing_examples
from models.routing_artifact import load_routing_model, save_routing_model
from models.routing_classifier import RoutingClassifier
from models.routing_eval import evaluate_routing, load_ticket_csv
from skills.base import SkillContext
from skills.routing_engine import route

TEXTS = [
    "card payment declined at checkout",
    "refund failed for invoice",
    "payment gateway timeout 503",
    "kafka consumer lag growing",
    "ingest pipeline stuck",
    "warehouse load failed overnight",
    "login fails with 401",
    "oauth token expired early",
    "password reset email missing",
]
TEAMS = ["payments"] * 3 + ["data"] * 3 + ["identity"] * 3


@pytest.fixture
def env(settings: Settings, db: Database, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("WARROOM_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("WARROOM_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("WARROOM_MODE", "test")
    monkeypatch.setenv("WARROOM_EMBEDDER", "hash")
    return settings


def _cli(*args: str) -> tuple[int, str]:
    res = CliRunner().invoke(app, list(args))
    if isinstance(res.exception, CliError):
        return 1, str(res.exception)
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    return res.exit_code, res.output


def test_classifier_follows_the_sklearn_contract() -> None:
    clf = RoutingClassifier(cv=3)
    assert clf.fit(TEXTS, TEAMS) is clf and list(clf.classes_) == ["data", "identity", "payments"]
    proba = clf.predict_proba(["checkout payment declined", "consumer lag on kafka"])
    assert proba.shape == (2, 3) and np.allclose(proba.sum(axis=1), 1.0)
    top = clf.top_k(["consumer lag on kafka"], k=2)[0]
    assert len(top) == 2 and top[0][1] >= top[1][1]
    assert clone(clf).get_params() == clf.get_params() and not hasattr(clone(clf), "classes_")
    tiny = RoutingClassifier().fit(["disk full", "login error"], ["x", "y"])  # one per class: softmax of margins
    assert not tiny.calibrated_ and np.allclose(tiny.predict_proba(["disk full"]).sum(), 1.0)
    assert list(tiny.predict(["disk is full"])) == ["x"]
    assert list(RoutingClassifier().fit(["anything"], ["only"]).predict(["zzz"])) == ["only"]


def test_fast_prediction_path_equals_sklearn() -> None:
    from models.routing_classifier import _tfidf

    texts = TEXTS * 4
    clf = RoutingClassifier(cv=3).fit(texts, TEAMS * 4)
    assert clf.fast_ is not None
    probe = ["card declined at checkout again", "", "zzz qqq", "Kafka lag; ingest stuck!", "   "]
    for _name, vec in clf.pipeline_[0].transformer_list:
        assert np.allclose(_tfidf(vec, probe).toarray(), vec.transform(probe).toarray(), atol=1e-12)
    assert np.allclose(clf.predict_proba(probe), clf.pipeline_.predict_proba(probe), atol=1e-12)


def test_artifact_round_trip_and_tamper_check(tmp_path: Path) -> None:
    clf = RoutingClassifier(cv=3).fit(TEXTS, TEAMS)
    rec = save_routing_model(clf, tmp_path, texts=TEXTS, labels=TEAMS, source="test", metrics={"n": 9})
    record = json.loads(rec.read_text())
    assert record["data_sha256"] and record["versions"]["scikit-learn"] and record["classes"] == list(clf.classes_)
    loaded = load_routing_model(tmp_path)
    assert loaded is not None and list(loaded.model.predict(["kafka lag"])) == list(clf.predict(["kafka lag"]))
    art = tmp_path / "routing" / "routing-model.joblib"
    art.write_bytes(art.read_bytes() + b"x")
    assert load_routing_model(tmp_path) is None


def test_train_from_knowledge_base_with_feedback_then_route_uses_it(env: Settings, db: Database) -> None:
    with db.session() as s:
        record_wrong_owner(
            session=s,
            incident_id=None,
            target="U0ALICE",
            user_id="U0BOB",
            text="vault secret rotation broke the deploy",
            service=None,
            team="platform",
        )
    with db.session() as s:
        pairs = routing_examples(session=s)
    assert ("vault secret rotation broke the deploy", "platform") in pairs
    assert Counter(t for _, t in pairs)["payments"] == 3  # the three closed payments incidents
    code, out = _cli("train", "routing")
    assert code == 0, out
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["rows"] == 13 and summary["classes"] == 5
    ctx = SkillContext(db=db, data_dir=env.data_dir, model_dir=env.models_path, settings=env)
    d = route(ctx, text="kafka broker disk full, partitions under-replicated")
    assert d.classifier and d.classifier[0][0] == "data"
    assert any("classifier says data" in r for c in d.candidates for r in c.reasons)


def test_train_refuses_too_little_data(env: Settings, tmp_path: Path) -> None:
    f = tmp_path / "one.csv"
    f.write_text("title,body,team\na,b,payments\nc,d,payments\n")
    code, out = _cli("train", "routing", "--csv", str(f))
    assert code == 1 and "fewer than 2 classes" in out


def _csv(tmp_path: Path) -> Path:
    rows = ["title,body,label"]
    for i in range(40):
        for lab, words in (
            ("1", "printer toner paper jam"),
            ("2", "vpn laptop password reset"),
            ("3", "invoice payment refund order"),
        ):
            rows.append(f"ticket {i},{words} {i % 7},{lab}")
    rows.append("rare,rare words,9")
    f = tmp_path / "tickets.csv"
    f.write_text("\n".join(rows) + "\n")
    return f


def test_eval_cli_json_contract_and_bad_input(env: Settings, tmp_path: Path) -> None:
    f = _csv(tmp_path)
    code, out = _cli(
        "eval", "routing", "--csv", str(f), "--text", "title,body", "--label", "label", "--min-class", "10", "--json"
    )
    assert code == 0, out
    m = json.loads(out.strip().splitlines()[-1])
    for k in ("accuracy", "macro_f1", "top3_accuracy"):
        assert 0.0 <= m[k] <= 1.0 and 0.0 <= m["baseline_" + k] <= 1.0
    assert m["classes"] == 3 and m["rows_used"] == 120 and m["accuracy"] > 0.9
    semi = tmp_path / "excel-de.csv"  # Excel where the decimal separator is a comma writes semicolons
    semi.write_text(f.read_text().replace(",", ";"))
    code, out = _cli("eval", "routing", "--csv", str(semi), "--text", "title,body", "--label", "label",
                     "--min-class", "10", "--json")
    assert code == 0, out
    assert json.loads(out.strip().splitlines()[-1])["rows_used"] == 120
    code, out = _cli("eval", "routing", "--csv", str(f), "--text", "nope", "--label", "label", "--json")
    assert code == 1 and "no column(s) nope" in out
    code, out = _cli("eval", "routing", "--csv", str(f), "--text", "title", "--label", "label", "--min-class", "500")
    assert code == 1 and "fewer than 2 classes" in out
    code, out = _cli("eval", "routing", "--csv", str(tmp_path / "none.csv"), "--text", "t", "--label", "l")
    assert code == 1 and "no such file" in out


def test_endava_subset_beats_majority_and_reports_baseline(shared_data: Path) -> None:
    import pandas as pd

    src = shared_data / "tickets_endava" / "all_tickets_first5431.csv"
    small = pd.read_csv(src).head(1200)
    texts, labels, info = load_ticket_csv(_write(small), ["title", "body"], "business_service", 40)
    metrics, model = evaluate_routing(texts, labels)
    majority = Counter(labels).most_common(1)[0][1] / len(labels)
    assert metrics["accuracy"] > majority and metrics["top3_accuracy"] >= metrics["accuracy"]
    assert set(metrics) >= {"baseline_accuracy", "baseline_macro_f1", "baseline_top3_accuracy"}
    assert info["classes"] == len(model.classes_)


def _write(df: object) -> Path:
    import tempfile

    path = Path(tempfile.mkdtemp()) / "subset.csv"
    df.to_csv(path, index=False)  # type: ignore[attr-defined]
    return path
