"""Settings and the CLI's one-line failures."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from bot.settings import SettingsError, load_settings


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("WARROOM_")}
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-c", "from bot.cli import main; main()", *args],
                          capture_output=True, text=True, env=full_env, timeout=120)


def test_placeholder_secrets_refused_in_production(monkeypatch: pytest.MonkeyPatch) -> None:
    for k in list(os.environ):
        if k.startswith("WARROOM_") and not k.startswith("WARROOM_TEST_"):
            monkeypatch.delenv(k)
    with pytest.raises(SettingsError) as err:
        load_settings()
    assert "WARROOM_SLACK_SIGNING_SECRET" in str(err.value)
    assert "\n" not in str(err.value)
    monkeypatch.setenv("WARROOM_WEBHOOK_PREVIOUS_SECRETS", '{"grafana": "short"}')  # an old secret is a secret too
    with pytest.raises(SettingsError) as err:
        load_settings()
    assert "WARROOM_WEBHOOK_PREVIOUS_SECRETS[grafana] (placeholder or shorter than 16)" in str(err.value)


def test_demo_mode_allows_placeholders_and_secrets_never_print() -> None:
    s = load_settings(mode="demo", slack_signing_secret="s3cr3t-value-xyz")
    assert "s3cr3t-value-xyz" not in repr(s)
    assert "s3cr3t-value-xyz" not in str(s.model_dump())


def test_short_webhook_secret_refused_in_production() -> None:
    with pytest.raises(SettingsError, match="WEBHOOK_SECRETS"):
        load_settings(slack_bot_token="xoxb-real-token", slack_signing_secret="a-real-signing-secret",
                      webhook_secrets={"alertmanager": "short"})


def test_short_kb_token_refused_in_production() -> None:
    # It guards the KB pages and the REST API, which stores risk readings onto incidents.
    with pytest.raises(SettingsError, match="WARROOM_KB_TOKEN"):
        load_settings(slack_bot_token="xoxb-real-token", slack_signing_secret="a-real-signing-secret",
                      kb_token="abc123")
    assert load_settings(slack_bot_token="xoxb-real-token", slack_signing_secret="a-real-signing-secret",
                         kb_token="a-long-enough-kb-token").kb_token is not None


def test_unknown_setting_is_one_line_and_nonzero() -> None:
    proc = _cli("db", "current", env={"WARROOM_MODE": "test", "WARROOM_NOPE": "1"})
    assert proc.returncode == 2
    assert proc.stderr.strip() == "warroom: unknown setting(s): WARROOM_NOPE"


def test_invalid_value_is_one_line() -> None:
    proc = _cli("db", "current", env={"WARROOM_MODE": "sometimes"})
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1
    assert proc.stderr.startswith("warroom: invalid setting mode:")


def test_unreachable_database_is_one_line_and_nonzero() -> None:
    proc = _cli("serve", env={"WARROOM_MODE": "test",
                              "WARROOM_DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:9/none"})
    assert proc.returncode == 1
    assert proc.stderr.startswith("warroom: database unavailable:")
    assert len(proc.stderr.strip().splitlines()) == 1


def test_offline_commands_need_no_slack_secrets_but_serve_does(tmp_path) -> None:  # type: ignore[no-untyped-def]
    env = {"WARROOM_DATA_DIR": str(tmp_path), "HF_HUB_OFFLINE": "1"}  # production mode, placeholder secrets
    upgraded = _cli("db", "upgrade", env=env)
    assert upgraded.returncode == 0, upgraded.stderr
    assert _cli("db", "current", env=env).stdout.strip() == "at head"
    refused = _cli("serve", "--port", "1", env=env)
    assert refused.returncode != 0 and "WARROOM_SLACK_SIGNING_SECRET" in refused.stderr
    assert load_settings(offline=True).mode == "production"  # offline only skips the secrets check


@pytest.mark.parametrize(("name", "value"), [("WARROOM_PAGERDUTY_API_URL", "ftp://api.pagerduty.com"),
                                             ("WARROOM_PAGERDUTY_FROM", "not-an-email")])
def test_pagerduty_write_back_settings_are_checked(name: str, value: str) -> None:
    proc = _cli("db", "current", env={"WARROOM_MODE": "test", name: value})
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert proc.stderr.startswith(f"warroom: invalid setting {name.removeprefix('WARROOM_').lower()}:")
