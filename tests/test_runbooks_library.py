"""Runbook files, storage with versions, parameter safety, the step runner, suggestion, auto-run
and the CLI doors (import/export and the evaluation)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from knowledge.db import Database
from knowledge.models import AuditRecord, Incident, RunbookExecution
from knowledge.runbook_store import SAMPLE_RUNBOOKS, export_dir, get_runbook, import_dir, list_runbooks, spec_of
from knowledge.runbooks import RunbookFormatError, parse_runbook, to_markdown
from skills.base import IncidentFacts, SkillContext
from skills.runbook_exec import ExecPolicy, ParameterRefused, PlannedStep, plan, run_step, validate_params
from tests.conftest import ConsoleRun, console

GOOD = """---
id: demo
title: Demo
risk: medium
approvers: [platform]
parameters:
  path: {type: path, roots: [/var/log]}
  n: {type: int, min: 1, max: 5, default: 2}
steps:
  - {name: List, kind: shell, run: [ls, "{path}"]}
---
Body.
"""


@pytest.mark.parametrize(
    "text, message",
    [
        ("no front matter", "missing YAML front matter"),
        ("---\nid: x\n", "front matter is not closed"),
        ("---\nid: [\n---\n", "not valid YAML"),
        (GOOD.replace("id: demo", "id: Demo Runbook"), "`id` 'Demo Runbook' must be lower-case"),
        (GOOD.replace('run: [ls, "{path}"]', 'run: "ls {path}"'), "not a shell string"),
        (GOOD.replace('"{path}"]', '"{nope}"]'), "`{nope}`, which is not a declared parameter"),
        (GOOD.replace("run: [ls,", 'run: ["{path}",'), "the command itself"),
        (GOOD.replace("approvers: [platform]\n", ""), "a medium-risk runbook needs `approvers`"),
        (GOOD.replace("risk: medium", "risk: extreme"), "`risk` 'extreme' is not one of"),
        (GOOD.replace("title: Demo\n", "title: Demo\ncolour: red\n"), "unknown front-matter key(s): colour"),
        (GOOD.replace("roots: [/var/log]", "roots: [var/log]"), "needs absolute `roots`"),
        (GOOD.replace("kind: shell", "kind: ssh"), "kind 'ssh' is not one of"),
        (
            GOOD.replace(
                '{name: List, kind: shell, run: [ls, "{path}"]}', "{kind: http, url: 'https://{path}.example.com/x'}"
            ),
            "host of the url cannot be a parameter",
        ),
        (GOOD.replace("risk: medium", "risk: medium\nauto_safe: true"), "only a low-risk runbook can be `auto_safe`"),
    ],
)
def test_bad_runbook_files_get_a_clear_error(text: str, message: str) -> None:
    with pytest.raises(RunbookFormatError) as exc:
        parse_runbook(text, source="demo.md")
    assert message in str(exc.value) and str(exc.value).startswith("demo.md: ")


def test_round_trip_versions_import_and_export(db: Database, tmp_path: Path) -> None:
    for f in SAMPLE_RUNBOOKS.glob("*.md"):
        spec = parse_runbook(f.read_text(), str(f))
        again = parse_runbook(to_markdown(spec))
        assert again.front_matter() == spec.front_matter() and again.body == spec.body
    with db.session() as s:
        assert {r.slug for r in list_runbooks(s)} >= {
            "restart-service",
            "flush-cache",
            "clear-disk-space",
            "rollback-deploy",
        }
        assert [r.slug for r in list_runbooks(s, service="postgres-main")] == ["clear-disk-space"]
        out = tmp_path / "out"
        assert len(export_dir(s, path=out)) == 6
        assert not any(r.changed for r in import_dir(s, path=out)), "same content makes no new version"
        changed = (out / "restart-service.md").read_text() + "\nAlso check the PodDisruptionBudget.\n"
        (out / "restart-service.md").write_text(changed)
        results = {r.slug: r for r in import_dir(s, path=out)}
        assert results["restart-service"].changed and results["restart-service"].version == 2
        assert get_runbook(s, slug="restart-service", version=1).active is False  # type: ignore[union-attr]
        (out / "broken.md").write_text("---\nid: broken\n---\n")
        with pytest.raises(RunbookFormatError, match="broken.md: `title` is required"):
            import_dir(s, path=out)
        assert get_runbook(s, slug="broken") is None


def _spec(db: Database, slug: str):  # type: ignore[no-untyped-def]
    with db.session() as s:
        return spec_of(get_runbook(s, slug=slug))  # type: ignore[arg-type]


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="abc/.;&|$`<>(){}*?!~'\" \n\\-", min_size=1, max_size=30))
def test_no_parameter_value_with_shell_metacharacters_or_traversal_is_accepted(value: str) -> None:
    spec = parse_runbook(GOOD)
    try:
        params = validate_params(spec, {"path": value})
    except ParameterRefused:
        return
    v = params["path"]
    assert not set(v) & set(";&|$`<>(){}*?!~'\" \n\\") and ".." not in value
    assert v == "/var/log" or v.startswith("/var/log/")


def test_values_are_checked_and_defaults_filled() -> None:
    spec = parse_runbook(GOOD)
    assert validate_params(spec, {"path": "/var/log/app/"}) == {"path": "/var/log/app", "n": "2"}
    for given_, msg in (
        ({}, "needs `path=...`"),
        ({"path": "/var/log", "n": "9"}, "outside the allowed range"),
        ({"path": "/var/log", "n": "two"}, "whole number"),
        ({"path": "/var/logs"}, "under /var/log"),
        ({"path": "/var/log", "x": "1"}, "has no parameter `x`"),
    ):
        with pytest.raises(ParameterRefused, match=msg.replace("(", r"\(").replace(")", r"\)")):
            validate_params(spec, given_)


def test_step_runner_uses_argv_caps_output_and_blocks_what_is_not_allowed() -> None:
    spec = parse_runbook(GOOD)
    policy = ExecPolicy(allowed_commands=("ls",), output_cap=50)
    steps = plan(spec, validate_params(spec, {"path": "/var/log"}), policy)
    assert steps[0].argv == ("ls", "/var/log") and steps[0].blocked is None
    assert plan(spec, {"path": "/var/log", "n": "2"}, ExecPolicy(allowed_commands=()))[0].blocked
    big = PlannedStep(1, "big", "shell", argv=("ls", "-la", "/usr/bin"), timeout_s=20)
    out = run_step(big, policy)
    assert out.status == "ok" and "output cut" in out.output and len(out.output) < 200
    # An argument is one argv entry: a ';' inside it is a file name to ls, never a second command.
    evil = PlannedStep(1, "evil", "shell", argv=("ls", "/nonexistent; touch /tmp/warroom-pwned"), timeout_s=20)
    assert run_step(evil, policy).status == "failed" and not Path("/tmp/warroom-pwned").exists()
    assert run_step(PlannedStep(1, "h", "http", method="GET", url="http://10.0.0.1/x"), policy).status == "blocked"


def test_tokens_are_stemmed_and_identifiers_split_in_both_queries_and_runbooks() -> None:
    from knowledge.embedder import get_encoder
    from skills.runbook_suggest import HybridTextIndex, tokenize

    assert tokenize("KubePodCrashLooping") == ["kubepodcrashloop", "kube", "pod", "crash", "loop"]
    assert tokenize("kube_pod_status APIServer") == ["kube", "pod", "status", "apiserv", "api", "server"]
    assert tokenize("Pods are failing; replicas scheduled") == ["pod", "are", "fail", "replica", "schedul"]
    docs = [
        "Meaning: the KubePodCrashLooping alert fires when a container restarts again and again.",
        "Meaning: a pod is stuck because scheduling failed for its replicas.",
        "Meaning: the disk of a node is almost full.",
    ]
    # Keywords alone: prose in the query meets an identifier and other inflections in the runbook.
    index = HybridTextIndex(get_encoder("hash"), dense_weight=0.0).fit(docs)
    assert int(np.argmax(index.scores("pod is crash looping"))) == 0
    assert int(np.argmax(index.scores("replica could not be scheduled"))) == 1
    assert index.shared_words("replica could not be scheduled", docs[1]) == ["scheduled", "replica"]


def test_suggestions_rank_by_alert_service_text_and_past_resolutions(db: Database, tmp_path: Path) -> None:
    from skills.runbooks import RunbooksSkill, suggester

    ctx = SkillContext(db=db, data_dir=tmp_path, model_dir=tmp_path, settings=None)
    os.environ.setdefault("WARROOM_TEST_ENCODER", "hash")
    ctx.settings = type(
        "S",
        (),
        {
            "embedder": "hash",
            "runbook_commands": ["kubectl"],
            "runbook_http_hosts": [],
            "slack_incident_channel": "C0INCIDENTS",
        },
    )()
    sugg = suggester(ctx).suggest(
        "postgres-main disk 96% full, pg_wal growing", alert_name="DiskSpaceLow", service="postgres-main"
    )
    assert sugg[0].slug == "clear-disk-space" and sugg[0].confidence > sugg[1].confidence
    assert any("alert DiskSpaceLow" in w for w in sugg[0].why) and any("similar past" in w for w in sugg[0].why)
    assert len(sugg) == 3 and all(0 <= s.confidence <= 1 for s in sugg)
    # Auto-run: only a safe runbook with confidence >= 0.95. The sample world has no past incident
    # resolved by check-service-health, so it stays below 0.95 and nothing runs.
    skill = RunbooksSkill()
    facts = IncidentFacts(
        incident_id=101,
        title="payments-api down: health check failing",
        service="payments-api",
        alert_name="ServiceDown",
        description="health endpoint failing, pods not ready",
    )
    finding = skill.triage(facts, ctx)
    assert finding is not None and finding.data["suggestions"][0]["slug"] == "check-service-health"
    assert finding.data["suggestions"][0]["confidence"] < 0.95
    with db.session() as s:
        assert s.scalar(select(RunbookExecution.id)) is None
        for _ in range(5):  # history: five such incidents were resolved by this runbook
            s.add(
                Incident(
                    title="payments-api down: health check failing",
                    service_name="payments-api",
                    alert_name="ServiceDown",
                    description="health endpoint failing, pods not ready",
                    status="resolved",
                    findings={"resolved_by_runbook": "check-service-health"},
                )
            )
    finding = skill.triage(facts, ctx)
    assert finding is not None and finding.data["suggestions"][0]["confidence"] >= 0.95
    assert any("Not auto-running" in line or "Auto-running" in line for line in finding.lines)
    with db.session() as s:
        # The health endpoint host is not allow-listed in these settings: refused before anything runs.
        assert s.scalar(select(RunbookExecution.id)) is None
    ctx.settings.runbook_http_hosts = ["status.example.internal"]
    finding = skill.triage(facts, ctx)
    assert finding is not None and any("Auto-running safe runbook `check-service-health`" in x for x in finding.lines)
    assert skill.triage(facts, ctx) is not None  # a second triage does not start a second run
    with db.session() as s:
        runs = s.scalars(select(RunbookExecution)).all()
        assert len(runs) == 1 and runs[0].requested_by == "warroom:auto" and runs[0].status == "queued"
        assert runs[0].params == {"service": "payments-api", "namespace": "prod"}
        assert s.scalar(select(AuditRecord.id).where(AuditRecord.action == "runbook.auto_run")) is not None


def _cli(args: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
         capsys: pytest.CaptureFixture[str]) -> ConsoleRun:
    return console(args, monkeypatch, capsys, f"sqlite:///{tmp_path / 'cli.db'}", tmp_path)


def test_cli_import_export_and_bad_input(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.md").write_text("---\nid: x\ntitle: X\nsteps: []\n---\n")
    r = _cli(["runbooks", "import", str(bad)], tmp_path, monkeypatch, capsys)
    assert r.returncode == 1 and "nothing imported" in r.stderr and "`steps` must be a non-empty list" in r.stderr
    assert "Traceback" not in r.stderr
    r = _cli(["runbooks", "import", str(SAMPLE_RUNBOOKS)], tmp_path, monkeypatch, capsys)
    assert r.returncode == 0 and "restart-service: v1 (new version)" in r.stdout
    r = _cli(["runbooks", "export", str(tmp_path / "out")], tmp_path, monkeypatch, capsys)
    assert r.returncode == 0 and (tmp_path / "out" / "flush-cache.md").exists()
    r = _cli(
        ["eval", "runbooks", "--corpus", str(tmp_path / "missing.jsonl"), "--alerts", "x", "--json"],
        tmp_path,
        monkeypatch,
        capsys,
    )
    assert r.returncode == 1 and "cannot read" in r.stderr


def test_eval_contract_on_the_shared_data(
    shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    d = shared_data / "runbooks"
    r = _cli(
        [
            "eval",
            "runbooks",
            "--corpus",
            str(d / "runbook_corpus.jsonl"),
            "--alerts",
            str(d / "alerts_kube_prometheus.jsonl"),
            "--encoder",
            "hash",
            "--json",
        ],
        tmp_path,
        monkeypatch,
        capsys,
    )
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["n_queries"] == 112 and out["n_docs"] == 108
    for key in ("top1", "top3", "mrr"):
        assert 0 < out[key] <= 1 and 0 < out[f"baseline_{key}"] <= 1
    assert out["baseline_top1"] == pytest.approx(0.741, abs=0.01)  # the documented TF-IDF baseline
    assert out["top1"] > out["baseline_top1"] and out["top3"] >= out["baseline_top3"]
    # Each half of the hybrid alone, from the same scores, and every alert whose runbook is not ranked first.
    for part in ("bm25", "dense"):
        assert 0 < out[f"{part}_top1"] <= out[f"{part}_top3"] <= 1
    assert len(out["misses"]) == round((1 - out["top1"]) * out["n_queries"])
    assert all(m["rank"] >= 2 and m["runbook"] not in m["ranked_above"] for m in out["misses"])


def test_eval_ranks_and_misses_count_ties_for_the_right_document() -> None:
    from bot.cli_runbooks import missed, rank_metrics

    scores = np.array(
        [
            [0.9, 0.5, 0.1],  # right document first
            [0.7, 0.7, 0.2],  # tied with another: counts as first
            [0.2, 0.8, 0.9],
        ]
    )  # two above it, the best named first
    gold = [0, 1, 0]
    assert rank_metrics(scores, gold) == {"top1": 0.6667, "top3": 1.0, "mrr": round((1 + 1 + 1 / 3) / 3, 4)}
    assert missed(scores, gold, ["a", "b", "c"]) == [{"runbook": "a", "rank": 3, "ranked_above": ["c", "b"]}]


def test_hybrid_scores_are_the_fusion_of_its_two_components() -> None:
    from knowledge.embedder import get_encoder
    from skills.runbook_suggest import HybridTextIndex

    docs = ["disk almost full on the node", "pod crash looping after deploy", "certificate expires soon"]
    index = HybridTextIndex(get_encoder("hash")).fit(docs)
    sparse, dense = index.components("the pod keeps crashing")
    assert sparse.shape == dense.shape == (3,) and int(np.argmax(sparse)) == 1
    np.testing.assert_allclose(index.scores("the pod keeps crashing"), index.fuse(sparse, dense))
    z = (sparse - sparse.mean()) / sparse.std()
    np.testing.assert_allclose(
        HybridTextIndex(get_encoder("hash"), dense_weight=0.0).fit(docs).scores("the pod keeps crashing"), z
    )
