"""The template miner and the classifier, on small self-written lines and (when present) Loghub."""

from __future__ import annotations

import csv
import dataclasses
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from knowledge.log_templates import TemplateSeen, record_templates
from knowledge.models import LogTemplate
from models.log_classifier import LogClassifier, load_log_model, save_log_model
from models.log_data import load_examples
from models.log_eval import grouping_accuracy
from models.log_features import stated_level
from models.log_miner import LogMiner, masked_tokens, template_id


def test_masking_hides_numbers_hosts_paths_and_values() -> None:
    toks = masked_tokens('Failed password for root from 10.0.0.1 port 4242 ssh2 user="bob smith" at /var/log/x')
    assert "10.0.0.1" not in toks and "4242" not in toks and "/var/log/x" not in toks
    assert toks[:4] == ("Failed", "password", "for", "root")
    assert masked_tokens("Rect(0, 0 - 720, 1280)") == masked_tokens("Rect(0, 0 - 0, 0)")
    assert masked_tokens("connection from host.example.com") == masked_tokens("connection from 10.1.1.1")


def test_variable_words_join_one_template_but_two_values_stay_apart() -> None:
    lines = [f"session closed for user {u}" for u in ("alice", "bob", "carol", "dave")]
    lines += ["session opened for user alice", "Invalid user admin from 1.2.3.4",
              "Invalid user guest from 1.2.3.5", "Invalid user test9 from 1.2.3.6", "Invalid user oracle from 1.2.3.7"]
    miner = LogMiner().fit(lines)
    labels = miner.labels_
    assert len(set(labels[:4])) == 1, "four users, one template"
    assert labels[4] != labels[0], "opened and closed are different templates"
    assert len(set(labels[5:])) == 1
    texts = {t.template for t in miner.templates()}
    assert "session closed for user <*>" in texts
    assert template_id("a <*>") == template_id("a <*>") and len(template_id("x")) == 12


def test_a_ten_megabyte_line_is_cut() -> None:
    miner = LogMiner(max_line_chars=1000)
    kid = miner.add("x" * 10_000_000)
    assert len(miner.examples_[kid]) <= 500


def test_grouping_accuracy_definition() -> None:
    assert grouping_accuracy([1, 1, 2], ["a", "a", "b"]) == 1.0
    assert grouping_accuracy([1, 1, 1], ["a", "a", "b"]) == 0.0
    assert abs(grouping_accuracy([1, 2, 3], ["a", "a", "b"]) - 1 / 3) < 1e-9


def test_grouping_on_loghub_beats_drain3_default(shared_data: Path) -> None:
    from models.log_eval import _drain3

    ours, theirs = [], []
    for path in sorted((shared_data / "loghub_2k").glob("*_2k.log_structured.csv")):
        with path.open(encoding="utf-8", newline="") as fh:
            rows = list(csv.DictReader(fh))
        lines, truth = [r["Content"] for r in rows], [r["EventId"] for r in rows]
        ours.append(grouping_accuracy(LogMiner().fit_predict(lines), truth))
        theirs.append(grouping_accuracy(_drain3(lines), truth))
    assert len(ours) == 12
    assert sum(ours) / len(ours) >= 0.95
    assert sum(ours) / len(ours) > sum(theirs) / len(theirs)


def test_classifier_on_bundled_examples_and_artifact_roundtrip(tmp_path: Path) -> None:
    ex = load_examples()
    assert len(ex) >= 150 and {e.severity for e in ex} == {"DEBUG", "INFO", "WARNING", "ERROR", "FATAL"}
    texts, sev = [e.text for e in ex], [e.severity for e in ex]
    model = LogClassifier().fit(texts, sev, [e.category for e in ex])
    pred = model.predict_masked([" ".join(masked_tokens(t)) for t in
                                 ["Connection refused while connecting to cache-7:6379",
                                  "Server started on port 9090", "Kernel panic - not syncing: Fatal exception"]])
    assert pred[0].severity == "ERROR" and pred[0].category == "network"
    assert pred[1].severity == "INFO" and pred[1].category == "normal"
    assert pred[2].severity == "FATAL"
    # A line that names nothing that failed gets the generic category, not the class the model leans to
    # ("ERROR foo bar" was "database"); one that names a thing keeps the model's answer
    vague = ["ERROR foo bar", "FATAL zzz", "ERROR xxxxxxxxxxxxxxxx", "WARN something odd happened"]
    assert [p.category for p in model.predict_masked(vague, vague)] == ["application"] * 4
    named = ["ERROR deadlock detected while updating the orders table", "ERROR permission denied for user deploy"]
    assert [p.category for p in model.predict_masked(named, named)] == ["database", "auth"]
    rec = save_log_model(model, tmp_path, texts=texts, labels=sev, source="test")
    loaded = load_log_model(tmp_path)
    assert loaded is not None and loaded.record["n_train"] == len(texts)
    assert "scikit-learn" in loaded.record["versions"] and loaded.record["data_sha256"]
    assert loaded.model.predict(["Server started on port 9090"]) == ["INFO"]
    art = rec.parent / "log-model.joblib"
    art.write_bytes(art.read_bytes() + b"tampered")
    assert load_log_model(tmp_path) is None, "an artifact that does not match its record is not loaded"


def test_severity_reads_each_templates_first_raw_line_once_and_trusts_a_stated_level() -> None:
    ex = load_examples()
    texts, sev = [e.text for e in ex], [e.severity for e in ex]
    model = LogClassifier().fit(texts, sev)
    lines = ["Connection refused while connecting to cache-7:6379",
             "Connection refused while connecting to db-2:5432",
             "Server started on port 9090"]
    keys = [" ".join(masked_tokens(t)) for t in lines]
    assert keys[0] == keys[1], "both refusals share one masked key"
    pred = model.predict_masked(keys, lines)
    assert pred[0] == pred[1], "one decision per template"
    assert [p.severity for p in pred] == model.predict(lines)
    assert pred[0].severity in ("ERROR", "FATAL") and pred[2].severity == "INFO"
    # A level written in capitals inside the line wins over the learned model, unless switched off.
    stated = ["INFO worker exited with exception, traceback follows", "WARN disk usage at 91%"]
    assert model.predict(stated) == ["INFO", "WARNING"]
    assert stated_level("ERROR IN CONTACTING RM.") == "ERROR"
    assert stated_level("instruction cache parity error corrected") is None, "only capitals state a level"


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_one_new_template_recorded_by_two_transactions_at_once(kind: str, tmp_path: Path) -> None:
    """Two incidents' triage jobs see the same never-seen template together: the second transaction read "not
    known" before the first committed its row. Neither fails on the unique id, and both counts are kept."""
    from tests.test_incident_report_once import _database

    db = _database(kind, tmp_path)
    seen = TemplateSeen("0123456789ab", "ledger commit rejected quorum lost on shard <*>", 3, "ERROR", "database",
                        "ledger commit rejected: quorum lost on shard 7")
    errors: list[BaseException] = []

    def second() -> None:
        try:
            with db.session() as s:
                record_templates(s, seen=[dataclasses.replace(seen, count=2)])
        except BaseException as exc:  # noqa: BLE001 - the assertion below names it
            errors.append(exc)

    with db.session() as first:
        assert record_templates(first, seen=[seen]) == 1  # inserted, not committed yet: the row is held
        other = threading.Thread(target=second)
        other.start()
        time.sleep(0.5)  # the second reads "not known" and waits to write
    other.join(60)  # the first committed when its block ended
    assert errors == []
    with db.session() as s:
        (row,) = s.scalars(select(LogTemplate).where(LogTemplate.template_id == seen.template_id)).all()
        assert row.count == 5 and row.severity == "ERROR"


def test_one_template_seen_twice_in_a_batch_counts_both(tmp_path: Path) -> None:
    """Two sightings of one id in one batch (two streams of one upload): one row, the counts summed, the later
    reading kept."""
    from tests.test_incident_report_once import _database

    db = _database("sqlite", tmp_path)
    seen = TemplateSeen("ba9876543210", "disk <*> at <*> percent", 4, "WARNING", "storage/disk",
                        "disk sda at 91 percent")
    with db.session() as s:
        assert record_templates(s, seen=[seen, dataclasses.replace(seen, count=6, severity="ERROR")]) == 1
    with db.session() as s:
        assert record_templates(s, seen=[dataclasses.replace(seen, count=1)]) == 0
    with db.session() as s:
        (row,) = s.scalars(select(LogTemplate).where(LogTemplate.template_id == seen.template_id)).all()
        assert row.count == 11 and row.severity == "WARNING"  # the last batch's reading


def test_klog_headers_are_read_after_the_prefixes_that_carry_them() -> None:
    """kubectl logs (bare), journalctl -u kubelet (journald's prefix) and /var/log/containers/*.log (the container
    runtime's prefix) all carry the klog header; its level letter becomes the level word."""
    from models.log_miner import masked_text

    msg = "1203 10:00:01.123456       1 kubelet.go:12] failed to sync pod web-1"
    for prefix in ("", "Dec 03 10:00:01 node-7 kubelet[1234]: ", "2026-12-03T10:00:01.123456789Z stderr F "):
        assert masked_text(f"{prefix}E{msg}").split()[-6:] == ["ERROR", "failed", "to", "sync", "pod", "<*>"], prefix
        assert "WARNING" in masked_text(f"{prefix}W{msg}").split(), prefix
    assert masked_text("INFO E1203 is a ticket, not a header") == "INFO <*> is a ticket not a header"


def test_syslog_priorities_and_event_viewer_levels_become_level_words() -> None:
    """A syslog priority (<11> is user.err: 11 % 8 = 3) and Windows Event Viewer's CSV level column ("Warning,...")
    state the level in a form the capitals-only rule did not read: "Warning,12/3/2026 ..." was classified ERROR."""
    from models.log_miner import masked_text

    assert masked_text("<11>1 2026-12-03T10:00:05Z web-1 nginx 123 - - upstream timed out").startswith("ERROR ")
    assert masked_text("<12>Dec  3 10:00:07 web-1 sshd[99]: session opened").startswith("WARNING ")
    assert masked_text("<191>x").startswith("DEBUG") and masked_text("<999>x").startswith("<*>")
    row = "Warning,12/3/2026 10:00:02 AM,Microsoft-Windows-Time-Service,36,None,The time service is not in sync"
    assert masked_text(row).startswith("WARNING ")
    assert masked_text("Error rate back to normal") == "Error rate back to normal"  # prose, not the export



def test_json_lines_state_their_level_and_message() -> None:
    """zap, pino, bunyan, structlog, Serilog write one JSON object per line: every line was one shape of keys and
    its level a quoted word, so `{"level":"info","msg":"ok"}` was classified WARNING. The level becomes its word,
    the message its words; pino's numeric levels too; a JSON line with no level, or broken JSON, is left as it is."""
    from models.log_miner import masked_text

    assert masked_text('{"level":"info","msg":"request served","ts":"2026-12-03T10:00:00Z"}') == \
        "INFO request served ts <*>"
    assert masked_text('{"level":50,"time":1764756000000,"msg":"upstream timed out"}').startswith("ERROR upstream")
    assert masked_text('{"severity":"WARNING","message":"disk 91% full","pod":"web-1"}').startswith("WARNING disk")
    assert masked_text('{"@l":"Error","@m":"Payment declined"}') == "ERROR Payment declined"
    assert masked_text('{"user":"bob","action":"login"}') == masked_text('{"user":"bob","action":"login"}')
    assert masked_text('{"level":"info", broken').startswith("level")
    lines = ['{"level":"info","msg":"ok"}', '{"level":"error","msg":"connection refused to db-1"}',
             '{"level":"warn","msg":"retrying in 5s"}']
    ex = load_examples()
    model = LogClassifier().fit([e.text for e in ex], [e.severity for e in ex])
    got = [p.severity for p in model.predict_masked([" ".join(masked_tokens(t)) for t in lines], lines)]
    assert got == ["INFO", "ERROR", "WARNING"], got
