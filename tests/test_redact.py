"""Secrets are masked before anything is stored, shown or sent to an LLM: the credential shapes of env files,
configs, JSON and XML logs, URLs and command lines; log text that only looks like them is left alone; and hostile
input cannot make masking slow (a key-like run is matched whole, never backtracked into)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy import select

from knowledge.models import Alert, Incident, WebhookInbox
from skills.redact import MASK, mask_json_text, mask_secrets
from tests.conftest import live_with
from tests.test_intake_webhooks import post, wait_processed

LEAKS = {  # line -> the secret value that must not survive
    '{"password": "hunter2", "user": "bob"}': "hunter2",
    "DB_PASSWORD=hunter2 started": "hunter2",
    "PGPASSWORD=hunter2 psql -h db": "hunter2",
    "export API_TOKEN=abcd1234efgh": "abcd1234efgh",
    "SECRET_KEY=django-insecure-abc123": "django-insecure-abc123",
    "client_secret: 7f9a8b7c6d5e": "7f9a8b7c6d5e",
    "apiToken => 'abc123xyz'": "abc123xyz",
    "clientSecret=zz9Top": "zz9Top",
    "<db_password>hunter2</db_password>": "hunter2",
    "mysql --password hunter2 -h db": "hunter2",
    "redis://:hunter2@redis:6379/0": "hunter2",
    "postgres://app:hunter2@db:5432/app": "hunter2",
    "x-api-key: abcdef0123456789": "abcdef0123456789",
    "Authorization: Bearer abcdefghijklmnop": "abcdefghijklmnop",
    "posting to https://hooks.slack.com/services/T0001/B0002/abcdefghijklmnopqrstuvwx": "abcdefghijklmnopqrstuvwx",
    "stripe key sk_live_51HabcdefghijklmnopqrstuvWXYZ": "sk_live_51HabcdefghijklmnopqrstuvWXYZ",
    "google AIzaSyA1234567890abcdefghijklmnopqrstu": "AIzaSyA1234567890abcdefghijklmnopqrstu",
    "gitlab glpat-abcdefghij1234567890": "glpat-abcdefghij1234567890",
    "npm_abcdefghijklmnopqrstuvwxyz0123456789 published": "npm_abcdefghijklmnopqrstuvwxyz0123456789",
    "SG.abcdefghijklmnopqrstuv.abcdefghijklmnopqrstuvwxyz0123456789": "abcdefghijklmnopqrstuvwxyz0123456789",
    "AccountName=acct;AccountKey=abc123def456ghi789==;EndpointSuffix=core.windows.net": "abc123def456ghi789==",
    "GET https://acct.blob.core.windows.net/c/f?sv=2020&sig=abcDEF%2Bghi&se=2026": "abcDEF%2Bghi",
    "slack token xoxb-1111-2222-abcdefghijkl": "xoxb-1111-2222-abcdefghijkl",
    "github ghp_abcdefghijklmnopqrstuvwxyz0123": "ghp_abcdefghijklmnopqrstuvwxyz0123",
    "aws AKIAABCDEFGHIJKLMNOP": "AKIAABCDEFGHIJKLMNOP",
    "login ok, password=123456": "123456",  # a number is a password too, under a password's name
    "DB_PASSWORD: 20242024": "20242024",
}
KEPT = (  # log text that only looks like a credential
    "usage: total_tokens: 20, prompt_tokens=12",
    "max_tokens=100 temperature=0.2",
    "keys: 5 evicted in 3 s",
    "monkey business as usual",
    "ERROR connection to db-primary:5432 refused",
    "the token expired at 10:42",
    "sigio_handler: sigio_handler_active != 0",
    "wtoken = AppWindowToken{9f4ef63}",
    "observeValueForKeyPath:ofObject:change:context: failed",
    "NSErrorFailingURLKey=https://gsp-ssl.ls.apple.com/dispatcher.arpc",
    "tagKey=KSChannelID brandPath=/Users/x/Brand.plist",
)


def test_credentials_are_masked_and_their_names_kept() -> None:
    for line, secret in LEAKS.items():
        masked = mask_secrets(line)
        assert secret not in masked and MASK in masked, (line, masked)
        assert mask_secrets(masked) == masked  # masking twice (a note built from masked text) changes nothing
    assert mask_secrets("DB_PASSWORD=hunter2 started") == "DB_PASSWORD=[REDACTED] started"  # what leaked, said
    assert mask_secrets('{"password": "hunter2"}') == '{"password": "[REDACTED]"}'  # a quoted value stays quoted


def test_terminal_colour_codes_do_not_hide_a_secret() -> None:
    # Coloured logs (kubectl, CI, a TTY logger): the escape code between "Bearer" and the token hid it.
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"
    for line in (f"Authorization: Bearer \x1b[2m{jwt}\x1b[0m", f"\x1b[33mtoken\x1b[0m=\x1b[1m{jwt}\x1b[0m",
                 f"pass\x1b[0mword=\x1b]8;;http://x\x07{jwt}\x1b]8;;\x07"):
        masked = mask_secrets(line)
        assert jwt not in masked and MASK in masked and "\x1b" not in masked, (line, masked)
    body = json.dumps({"alerts": [{"annotations": {"description": f"curl -H 'Authorization: Bearer \x1b[2m{jwt}'"}}]})
    assert jwt not in mask_json_text(body) and MASK in mask_json_text(body)


def test_a_json_body_is_masked_and_stays_json() -> None:
    body = json.dumps({"groupKey": "{}:{alertname=\"DbDown\"}", "alerts": [{"annotations": {
        "description": "DB_PASSWORD=hunter2 on boot", "api_key": "abc", "max_tokens": 5, "dedup_key": "k-1"}}]})
    masked = json.loads(mask_json_text(body))
    ann = masked["alerts"][0]["annotations"]
    assert ann == {"description": "DB_PASSWORD=[REDACTED] on boot", "api_key": MASK, "max_tokens": 5,
                   "dedup_key": "k-1"}
    assert masked["groupKey"] == '{}:{alertname="DbDown"}'
    assert mask_json_text("not json, password=x") == "not json, password=[REDACTED]"
    assert mask_json_text('{"status": "firing"}') == '{"status": "firing"}'  # nothing to mask: untouched


def test_look_alikes_are_left_alone() -> None:
    for line in KEPT:
        assert mask_secrets(line) == line


def test_hostile_input_is_masked_in_linear_time() -> None:
    # Runs of key characters with a trigger word: a backtracking pattern took 3 s for 10,000 characters here
    # (quadratic: hours for these); matched whole, each is a fraction of a second. Correctness is what is asserted.
    for line in ("a-" * 100_000 + " key", "a_b." * 50_000 + " token", "<password>" * 20_000,
                 "password=" * 20_000, "x" * 200_000 + " secret=abc"):
        masked = mask_secrets(line)
        assert len(masked) <= len(line) + len(MASK) * line.count("=") + 8
    assert mask_secrets("x" * 200_000 + " secret=abc").endswith("secret=" + MASK)


def test_an_alert_full_of_credentials_leaves_none_in_the_database_or_slack(tmp_path: Path, standin: Any) -> None:
    """Through the real door: an Alertmanager alert whose description and log excerpt carry env, JSON and URL
    secrets; neither the stored alert and incident, nor the delivery kept once processed, nor anything posted to
    Slack holds one of them."""
    leaks = dict(list(LEAKS.items())[:12])
    body = {"version": "4", "status": "firing", "receiver": "warroom", "groupKey": "{}:{alertname=\"DbDown\"}",
            "alerts": [{"status": "firing", "fingerprint": "leaky-1",
                        "labels": {"alertname": "DbDown", "service": "payments-api", "severity": "critical"},
                        "annotations": {"summary": "payments-api cannot reach its database",
                                        "description": "\n".join(leaks), "logs": "\n".join(leaks)},
                        "startsAt": "2026-12-02T08:00:00Z"}]}
    with live_with(tmp_path, standin, warm_models=False) as live:
        assert post(live, "alertmanager", body).status_code == 202
        wait_processed(live)
        live.drain()
        with live.db.session() as s:
            stored = json.dumps([[a.summary, a.labels, a.annotations] for a in s.scalars(select(Alert))])
            stored += json.dumps([r.body for r in s.scalars(select(WebhookInbox))])  # the delivery, once processed
            stored += json.dumps([[i.title, i.description, i.findings] for i in s.scalars(select(Incident))],
                                 default=str)
        sent = json.dumps([c.args for c in standin.calls], default=str)
    assert "payments-api cannot reach its database" in stored and "[REDACTED]" in stored
    for secret in leaks.values():
        assert secret not in stored, secret
        assert secret not in sent, secret
