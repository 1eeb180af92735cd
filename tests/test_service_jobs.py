"""Heavy work as jobs: training queued from the CLI, run by the app's worker pool; job state visible."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from bot.cli import CliError, app
from knowledge.models import Job
from tests.conftest import Live


def _cli(live: Live, monkeypatch: pytest.MonkeyPatch, *args: str) -> tuple[int, str]:
    s = live.services.settings
    monkeypatch.setenv("WARROOM_MODE", "test")
    monkeypatch.setenv("WARROOM_DATABASE_URL", s.database_url)
    monkeypatch.setenv("WARROOM_DATA_DIR", str(s.data_dir))
    try:
        res = CliRunner().invoke(app, list(args), catch_exceptions=False)
    except CliError as exc:
        return 1, str(exc)
    return res.exit_code, res.stdout


def test_training_queued_from_the_cli_runs_in_the_worker(live: Live, monkeypatch: pytest.MonkeyPatch) -> None:
    models = live.services.settings.models_path
    assert not (models / "routing").exists()
    code, out = _cli(live, monkeypatch, "train", "queue", "routing")
    assert code == 0, out
    job_id = json.loads(out.strip().splitlines()[-1])["queued"]
    live.services.runner.notify()
    live.drain(timeout=120)
    with live.db.session() as s:
        job = s.get(Job, job_id)
        assert job is not None and job.status == "done", job and job.last_error
    assert any((models / "routing").iterdir())  # the artifact and its origin record
    code, out = _cli(live, monkeypatch, "jobs")
    assert code == 0 and '"done"' in out


def test_unknown_model_is_refused_and_a_bad_payload_fails_for_good(live: Live,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    code, out = _cli(live, monkeypatch, "train", "queue", "astrology")
    assert code != 0 and "unknown model 'astrology'" in out
    ref = live.services.runner.submit("model.train", {"model": "astrology"})
    live.drain(timeout=60)
    with live.db.session() as s:
        job = s.scalar(select(Job).where(Job.id == ref.id))
        assert job is not None and job.status == "failed" and job.attempts == 1  # permanent: no retries
        assert "unknown model" in (job.last_error or "")
    code, out = _cli(live, monkeypatch, "jobs")
    assert f"failed #{ref.id} model.train attempts=1" in out
