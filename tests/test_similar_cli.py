"""The similar-incident CLI: index rebuild/check, search, and the evaluation contract."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import app
from bot.settings import Settings
from knowledge.db import Database
from knowledge.models import Incident

runner = CliRunner()


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, settings: Settings, db: Database) -> Database:
    monkeypatch.setenv("WARROOM_MODE", "test")
    monkeypatch.setenv("WARROOM_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("WARROOM_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("WARROOM_EMBEDDER", "hash")
    return db


def _json_last(output: str) -> dict:
    return json.loads(output.strip().splitlines()[-1])


def test_index_rebuild_check_and_repair(env: Database, settings: Settings) -> None:
    res = runner.invoke(app, ["index", "rebuild"])
    assert res.exit_code == 0, res.output
    report = _json_last(res.output)
    assert report["rebuilt"] and report["total"] >= 24 and report["encoder"] == "hash-256/256"
    res = runner.invoke(app, ["index", "check"])
    assert res.exit_code == 0 and _json_last(res.output)["missing"] == 0
    with env.session() as s:
        s.add(Incident(id=800, title="etcd leader election storm", status="resolved"))
    res = runner.invoke(app, ["index", "check"])
    assert res.exit_code == 1 and _json_last(res.output)["missing"] == 1
    res = runner.invoke(app, ["index", "check", "--repair"])
    assert res.exit_code == 0 and _json_last(res.output)["repaired"]["added"] == 1
    assert runner.invoke(app, ["index", "check"]).exit_code == 0
    # a damaged file on disk is noticed and rebuilt
    (settings.data_dir / "vector_index" / "index.faiss").write_bytes(b"garbage")
    res = runner.invoke(app, ["index", "check"])
    assert res.exit_code == 1 and "checksum" in _json_last(res.output)["on_disk"]
    res = runner.invoke(app, ["index", "check", "--repair"])
    assert res.exit_code == 0 and _json_last(res.output)["repaired"]["rebuilt"]
    assert runner.invoke(app, ["index", "check"]).exit_code == 0


def test_similar_command(env: Database) -> None:
    res = runner.invoke(app, ["similar", "kafka broker disk full", "--json", "--k", "3"])
    assert res.exit_code == 0, res.output
    hits = _json_last(res.output)["hits"]
    assert hits[0]["service"] == "kafka" and len(hits) == 3
    res = runner.invoke(app, ["similar", "certificate expired", "--kind", "incident"])
    assert res.exit_code == 0 and "incident #103" in res.output and "fix:" in res.output


def test_similar_command_filters_like_slack(env: Database, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    res = runner.invoke(app, ["similar", "disk full", "--json", "--k", "8"])
    assert {"incident:105", "incident:109"} <= {h["key"] for h in _json_last(res.output)["hits"]}
    for args, kept, gone in ((["--since", "2026-06-01"], "incident:109", "incident:105"),
                             (["--until", "2026-06-01"], "incident:105", "incident:109"),
                             (["--only-service", "postgres-main"], "incident:105", "incident:109")):
        res = runner.invoke(app, ["similar", "disk full", "--json", "--k", "8", *args])
        assert res.exit_code == 0, res.output
        keys = {h["key"] for h in _json_last(res.output)["hits"]}
        assert kept in keys and gone not in keys, (args, keys)
    res = runner.invoke(app, ["similar", "disk full", "--only-service", "postgres-main", "--since", "2026-06-01",
                              "--kind", "incident"])
    assert res.exit_code == 0 and "nothing found (only service postgres-main, since Mon 01 Jun 2026" in res.output
    code, err = _main(monkeypatch, capsys, "similar", "disk full", "--since", "yesterday")
    assert code == 1 and "I cannot read `--since yesterday` as a time" in err and "Traceback" not in err


def _main(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """Run the console entry point (``warroom ...``) in-process; its exit code and stderr."""
    from bot.cli import main

    monkeypatch.setattr(sys, "argv", ["warroom", *args])
    with pytest.raises(SystemExit) as exc:
        main()
    return int(exc.value.code or 0), capsys.readouterr().err


def test_cli_bad_input_is_one_line_not_a_traceback(env: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    code, err = _main(monkeypatch, capsys, "similar", "   ")
    assert code == 1 and err.startswith("warroom: nothing to search for") and "Traceback" not in err
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{not json\n")
    for data in (bad, tmp_path / "missing.jsonl"):
        code, err = _main(monkeypatch, capsys, "eval", "similar", "--data", str(data), "--encoder", "hash",
                          "--runbooks", "none")
        assert code == 1 and err.startswith("warroom: ") and len(err.strip().splitlines()) == 1
    rows = tmp_path / "rows.jsonl"
    rows.write_text(json.dumps({"description": "x", "danluu_section": "A"}) + "\n")
    code, err = _main(monkeypatch, capsys, "eval", "similar", "--data", str(rows), "--encoder", "hash",
                      "--label-field", "nope")
    assert code == 1 and "'nope'" in err


def test_eval_contract_on_a_small_file(tmp_path: Path) -> None:
    topics = {"dns": "DNS resolution failed, resolver timeouts, SERVFAIL from CoreDNS",
              "disk": "disk full, volume out of space, log files filled the partition",
              "cert": "TLS certificate expired, HTTPS handshake errors, renewal failed"}
    rows = [{"text": f"{t} on host {i}", "label": k} for k, t in topics.items() for i in range(4)]
    rows.append({"text": "something odd", "label": "skip-me"})
    data = tmp_path / "pm.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows))
    res = runner.invoke(app, ["eval", "similar", "--data", str(data), "--json", "--encoder", "hash",
                              "--text-field", "text", "--label-field", "label", "--exclude-label", "skip-me"])
    assert res.exit_code == 0, res.output
    out = _json_last(res.output)
    for key in ("p_at_5", "mrr", "baseline_p_at_5", "baseline_mrr"):
        assert 0.0 <= out[key] <= 1.0
    assert out["n_queries"] == 12 and out["mrr"] == 1.0 and "runbooks" not in out


def test_eval_on_the_shared_postmortems_and_runbooks(shared_data: Path) -> None:
    res = runner.invoke(app, ["eval", "similar", "--data", str(shared_data / "postmortems" / "postmortems.jsonl"),
                              "--json", "--encoder", "hash"])
    assert res.exit_code == 0, res.output
    out = _json_last(res.output)
    assert out["n_queries"] == 71 and out["random_p_at_5"] == pytest.approx(0.438, abs=0.01)
    assert 0.55 <= out["baseline_p_at_5"] <= 0.67  # TF-IDF, documented at about 0.61
    assert out["runbooks"]["n_queries"] == 112 and out["runbooks"]["top1"] > out["runbooks"]["baseline_top1"] - 0.1
