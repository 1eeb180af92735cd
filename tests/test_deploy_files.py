"""The deployment files cannot run here (no containers); check they are well-formed and name what they must."""

from __future__ import annotations

from pathlib import Path

import yaml

from bot.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def _env_names(env: dict[str, str] | list[dict[str, str]]) -> set[str]:
    return set(env) if isinstance(env, dict) else {e["name"] for e in env}


def test_compose_runs_bot_worker_postgres_redis_with_known_settings() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"bot", "worker", "postgres", "redis", "lb"} <= set(services)
    assert services["worker"]["command"][:2] == ["warroom", "worker"]
    known = {f"WARROOM_{name.upper()}" for name in Settings.model_fields}
    for name in ("bot", "worker"):
        env = _env_names(services[name]["environment"])
        assert env <= known, env - known  # a typo would stop the process at start
        assert services[name]["environment"]["WARROOM_JOB_BACKEND"] == "celery"
    assert "/readyz" in " ".join(services["bot"]["healthcheck"]["test"])
    nginx = (ROOT / "deploy" / "nginx.conf").read_text()
    assert "server bot:3000" in nginx and "proxy_pass http://warroom" in nginx


def test_kubernetes_manifests_have_probes_and_a_shared_volume() -> None:
    docs = list(yaml.safe_load_all((ROOT / "deploy" / "k8s" / "warroom.yaml").read_text()))
    kinds = {(d["kind"], d["metadata"]["name"]) for d in docs}
    assert {("Deployment", "warroom-bot"), ("Deployment", "warroom-worker"), ("Service", "warroom"),
            ("PersistentVolumeClaim", "warroom-data")} <= kinds
    known = {f"WARROOM_{name.upper()}" for name in Settings.model_fields}
    for d in docs:
        if d["kind"] != "Deployment":
            continue
        (c,) = d["spec"]["template"]["spec"]["containers"]
        assert _env_names(c["env"]) <= known
        assert d["spec"]["template"]["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"] == "warroom-data"
        if d["metadata"]["name"] == "warroom-bot":
            assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
            assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
