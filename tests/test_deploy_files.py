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


def test_slack_manifest_subscribes_to_what_the_bot_listens_for() -> None:
    """An event or command missing from the app manifest is a feature silently dead in a real workspace: every
    skill command is registered, every event the listeners handle is subscribed, each with its scope."""
    import re

    from bot import slack_app
    from skills.registry import default_registry

    manifest = yaml.safe_load((ROOT / "slack-app-manifest.yaml").read_text())
    registered = {c["command"] for c in manifest["features"]["slash_commands"]}
    wanted = {c.split()[0] for skill in default_registry().skills for c in skill.commands}
    assert wanted <= registered, f"commands not in the manifest: {wanted - registered}"
    # Without should_escape Slack sends "@bob" as plain words: "/incident assign 12 @bob" could name nobody.
    assert [c["command"] for c in manifest["features"]["slash_commands"] if c.get("should_escape") is not True] == []
    events = set(manifest["settings"]["event_subscriptions"]["bot_events"])
    source = Path(slack_app.__file__).read_text()
    handled = set(re.findall(r'@app\.event\("(\w+)"\)', source))
    for group in re.findall(r"@app\.event\(re\.compile\(r\"\^\(([\w|]+)\)\$\"\)\)", source):
        handled |= set(group.split("|"))
    handled = {("message.channels" if e == "message" else e) for e in handled}
    assert handled <= events, f"handled but not subscribed: {handled - events}"
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    from bot.slack_client import REQUIRED_SCOPES

    assert scopes == set(REQUIRED_SCOPES), "the manifest and the start-up scope check must ask for the same"
    needs = {"app_mention": "app_mentions:read", "message.channels": "channels:history",
             "message.groups": "groups:history", "message.im": "im:history", "reaction_added": "reactions:read",
             "pin_added": "pins:read", "file_shared": "files:read", "member_joined_channel": "channels:read"}
    assert all(needs[e] in scopes for e in events if e in needs), scopes
