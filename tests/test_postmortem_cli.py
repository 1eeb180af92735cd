"""``warroom eval postmortems`` and ``warroom postmortem draft|show|export`` through the real CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import app
from knowledge.db import Database
from knowledge.incident_history import load_history
from knowledge.seed import seed
from skills.postmortem_eval import evaluate, expand, load_scenarios
from skills.postmortem_llm import LLMWriter
from skills.postmortem_writers import DeterministicWriter
from tests.test_postmortem_llm import FakeOpenAI

runner = CliRunner()


def test_eval_json_contract() -> None:
    res = runner.invoke(app, ["eval", "postmortems", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output.strip().splitlines()[-1])
    for key in ("sections_filled", "faithfulness", "action_items_found", "action_items_planted", "baseline",
                "checker_hallucinations_removed", "secrets_leaked"):
        assert key in out
    assert out["faithfulness"] == 1.0 and out["baseline"]["action_items_found"] == 0


def test_eval_bad_file_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("scenarios: 3\n")
    res = runner.invoke(app, ["eval", "postmortems", "--scenarios", str(bad)])
    assert res.exit_code != 0
    assert "cannot read scenarios" in str(res.exception)


def test_llm_writer_eval_is_faithful_after_checking() -> None:
    """Against a stand-in model that answers every scenario with planted hallucinations."""
    fake = FakeOpenAI()
    try:
        answer = {"summary": "The incident started at 03:17 and Lena Fischer fixed it for 4812 users.",
                  "root_cause": "kafka and dns failed together.", "detection": "An alert fired.",
                  "resolution": "Responders rolled back the change.", "went_well": "People helped.",
                  "went_wrong": "Grace Kim was paged at 22:58."}
        scenarios = load_scenarios()
        fake.answers.extend([("ok", answer)] * len(scenarios))
        report = evaluate(scenarios, [DeterministicWriter(), LLMWriter(base_url=fake.url, model="fake")])
    finally:
        fake.close()
    llm = report["writers"]["llm"]
    assert llm["faithfulness"] == 1.0
    assert llm["action_items_found"] == report["writers"]["deterministic"]["action_items_found"]
    assert all("Lena" not in str(r["unsupported"]) for r in report["rows"])


def test_draft_show_and_export(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    for k, v in {"WARROOM_MODE": "test", "WARROOM_DATABASE_URL": url, "WARROOM_DATA_DIR": str(tmp_path),
                 "WARROOM_EMBEDDER": "hash"}.items():
        monkeypatch.setenv(k, v)
    db = Database(url)
    db.upgrade()
    with db.session() as s:
        seed(s)
        iid = load_history(s, expand(load_scenarios()[1]))
    res = runner.invoke(app, ["postmortem", "draft", str(iid)])
    assert res.exit_code == 0, res.output
    assert "## Action items" in res.output and "node-local DNS cache" in res.output
    res = runner.invoke(app, ["postmortem", "show", str(iid)])
    assert res.exit_code == 0 and "# Postmortem: Internal DNS lookups failing" in res.output
    res = runner.invoke(app, ["postmortem", "draft", "999999"])
    assert res.exit_code != 0 and "no incident #999999" in str(res.exception)
    out = tmp_path / "export"
    res = runner.invoke(app, ["postmortem", "export", str(out), "--status", "latest"])
    assert res.exit_code == 0, res.output
    files = sorted(p.name for p in out.iterdir())
    assert f"incident-{iid}-postmortem-internal-dns-lookups-failing-for-some-pods.md" in files
    assert len(files) == 13  # 12 published in the sample world + the new draft
    res = runner.invoke(app, ["postmortem", "export", str(tmp_path / "pub")])
    assert res.exit_code == 0 and len(list((tmp_path / "pub").iterdir())) == 12
    assert runner.invoke(app, ["postmortem", "export", str(out), "--status", "final"]).exit_code != 0
