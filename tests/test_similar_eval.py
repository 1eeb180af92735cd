"""The postmortem evaluation: company names masked as a separate figure, per-label P@5."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from bot.cli import app
from knowledge.embedder import HashEncoder
from knowledge.search_eval import eval_postmortems, mask_names

runner = CliRunner()


def test_mask_names_whole_words_possessives_and_case() -> None:
    texts = [
        "Github and GitHub's outage took down Google Cloud; Google’s front end failed.",
        "An elastic load balancer failed at Elastic; AT&T and General Electric were fine.",
        "Gitlabs is not Gitlab, and re-Google is one word.",
    ]
    out = mask_names(texts, ["GitHub", "Google", "Elastic", "AT&T", "FirstEnergy / General Electric", "Gitlab", ""])
    assert out[0] == "the company and the company outage took down the company Cloud; the company front end failed."
    assert out[1] == "An elastic load balancer failed at the company; the company and the company were fine."
    assert out[2] == "Gitlabs is not the company, and re-Google is one word."
    assert mask_names(texts, []) == texts
    assert mask_names(["crates from rust-lang broke"], ["rust-lang"]) == ["crates from the company broke"]


def _rows() -> list[dict]:
    # Two causes, each reported by both companies: the company name is a signal unrelated to the label.
    causes = {
        "config": "a bad config push broke routing for {c} edge servers",
        "power": "a power failure at the {c} datacenter cut the generators",
    }
    rows = []
    for label, text in causes.items():
        for company in ("Acme", "Globex"):
            for i in range(3):
                rows.append(
                    {
                        "description": text.format(c=company) + f" (case {i})",
                        "danluu_section": label,
                        "company": company,
                    }
                )
    rows.append({"description": "unlabelled", "danluu_section": "Uncategorized", "company": "Initech"})
    return rows


def test_eval_reports_a_masked_figure_next_to_the_unmodified_one() -> None:
    res = eval_postmortems(
        _rows(),
        text_field="description",
        label_field="danluu_section",
        exclude_labels={"Uncategorized"},
        encoder=HashEncoder(),
    )
    assert res["n_queries"] == 12
    masked = res["masked"]
    assert masked["field"] == "company" and masked["texts_changed"] == 12
    for block in (res, masked):
        for key in ("p_at_5", "mrr", "baseline_p_at_5", "baseline_mrr", "dense_only_p_at_5", "bm25_only_p_at_5"):
            assert 0.0 <= block[key] <= 1.0
        assert set(block["per_label_p_at_5"]) == {"config", "power"}
        assert set(block["baseline_per_label_p_at_5"]) == {"config", "power"}
    # per-label figures average back to the overall one (6 queries per label)
    assert abs(sum(res["per_label_p_at_5"].values()) / 2 - res["p_at_5"]) < 0.002
    # without the company names the TF-IDF ranking can no longer be misled by them
    assert masked["baseline_p_at_5"] >= res["baseline_p_at_5"]
    none = eval_postmortems(
        _rows(),
        text_field="description",
        label_field="danluu_section",
        exclude_labels={"Uncategorized"},
        encoder=HashEncoder(),
        mask_field=None,
    )
    assert "masked" not in none and none["p_at_5"] == res["p_at_5"]


def test_cli_mask_field_option(tmp_path: Path) -> None:
    data = tmp_path / "pm.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in _rows()))
    res = runner.invoke(
        app, ["eval", "similar", "--data", str(data), "--json", "--encoder", "hash", "--runbooks", "none"]
    )
    assert res.exit_code == 0, res.output
    assert "company names masked (12 texts changed)" in res.output
    assert json.loads(res.output.strip().splitlines()[-1])["masked"]["texts_changed"] == 12
    res = runner.invoke(
        app,
        [
            "eval",
            "similar",
            "--data",
            str(data),
            "--json",
            "--encoder",
            "hash",
            "--runbooks",
            "none",
            "--mask-field",
            "none",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "masked" not in json.loads(res.output.strip().splitlines()[-1])
