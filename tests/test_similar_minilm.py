"""The real all-MiniLM-L6-v2 encoder behind the search (slow: loads the model)."""

from __future__ import annotations

import pytest

from bot.settings import Settings
from knowledge.db import Database
from knowledge.search import index_dir, search
from skills.base import SkillContext


@pytest.mark.slow
def test_minilm_search_finds_paraphrases(db: Database, settings: Settings) -> None:
    s = settings.model_copy(update={"embedder": "minilm"})
    ctx = SkillContext(db=db, data_dir=s.data_dir, model_dir=s.models_path, settings=s)
    hits = search(ctx, text="checkout is down because the database ran out of connections", kinds=("incident",))
    assert hits[0].key == "incident:101" and hits[0].dense > 0.4
    hits = search(ctx, text="pods cannot resolve hostnames inside the cluster", kinds=("incident",), k=3)
    assert hits[0].key == "incident:106"
    meta = (index_dir(ctx) / "meta.json").read_text()
    assert '"encoder": "all-MiniLM-L6-v2"' in meta and '"dim": 384' in meta


@pytest.mark.slow
def test_loading_the_model_prints_no_progress_bar(capfd: pytest.CaptureFixture[str]) -> None:
    """`warroom similar` and the server's log printed "Loading weights: 100%|███..." on every model load."""
    from transformers.utils import logging as hf_logging

    from knowledge.embedder import MiniLMEncoder

    vec = MiniLMEncoder().encode_queries(["disk full on postgres-main"])
    assert vec.shape == (1, 384)
    out, err = capfd.readouterr()
    assert "Loading weights" not in out + err and "it/s" not in out + err
    assert hf_logging.is_progress_bar_enabled(), "the setting is put back for other users of transformers"
