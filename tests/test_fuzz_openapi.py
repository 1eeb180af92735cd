"""Property-based fuzzing of the REST API with schemathesis, driven by the app's own OpenAPI document.

Every operation in ``/openapi.json`` is called in-process (ASGI, no network) with generated valid and
invalid input, once with valid credentials and once without. No response may be a 5xx, every response
must match what the document promises (status code, content type, headers, body schema), and input that
breaks the document must be refused with a 4xx. Below the fuzzing, one regression test per defect it found.

The operations are read from the live document, so a new endpoint is fuzzed without touching this file.
schemathesis' pytest loader for fixtures (``schemathesis.pytest.from_fixture``) does not run under pytest 9.2
(it reads ``Node._nodeid``, which pytest removed), so each operation is driven here through the public
``APIOperation.as_strategy`` + ``Case.call_and_validate`` API instead.

A deeper run: ``WARROOM_TEST_FUZZ_EXAMPLES=500 .venv/bin/pytest tests/test_fuzz_openapi.py``; a failure prints
the failing request as a curl command and the Hypothesis seed that reproduces it (``--hypothesis-seed=N``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.python import asgi as st_asgi
from sqlalchemy import func, select

from bot.app import create_app
from bot.standin.server import SlackStandIn
from knowledge.db import Database
from knowledge.models import RiskReading
from knowledge.seed import seed
from tests.conftest import BOT_TOKEN, make_settings
from tests.risk_support import risk_model_dir  # noqa: F401 - fixture

KB_TOKEN = "kb-token-fuzz-0123456789"
# Per operation, per generation mode (valid / invalid input), per auth variant.
MAX_EXAMPLES = int(os.environ.get("WARROOM_TEST_FUZZ_EXAMPLES", "40"))

CONFIG = schemathesis.Config.from_dict({
    "checks": {
        # Schema-valid bodies may still break a rule JSON Schema cannot say ("at least two metrics", "window or
        # prometheus, not both", a query of only punctuation, one payload format per webhook source), so a 422
        # on generated valid data is no bug. Every other built-in check stays on.
        "positive_data_acceptance": {"enabled": False},
    },
})


class Credentials(requests.auth.AuthBase):
    """Valid credentials for whichever door a request goes to; webhook signatures cover the exact bytes sent."""

    def __init__(self, webhook_secrets: dict[str, str]) -> None:
        self.webhook_secrets = webhook_secrets

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        path = (r.path_url or "").split("?")[0]
        if path.startswith("/webhooks/"):
            source = path.rsplit("/", 1)[-1]
            secret = self.webhook_secrets.get(source, "no-such-source")
            body = r.body or b""
            body = body.encode() if isinstance(body, str) else body
            if source == "pagerduty":
                r.headers["X-PagerDuty-Signature"] = "v1=" + hmac.new(secret.encode(), body,
                                                                      hashlib.sha256).hexdigest()
            else:
                r.headers["Authorization"] = f"Bearer {secret}"
        else:
            r.headers["Authorization"] = f"Bearer {KB_TOKEN}"
        return r


@dataclass
class Env:
    app: Any
    db: Database
    credentials: Credentials


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, risk_model_dir: Path) -> Iterator[Env]:  # noqa: F811
    """The real app over a migrated, seeded SQLite knowledge base; schemathesis' ASGI client runs its lifespan."""
    tmp = tmp_path_factory.mktemp("fuzz-openapi")
    with SlackStandIn(token=BOT_TOKEN) as standin:
        cfg = make_settings(tmp, standin, kb_token=KB_TOKEN, warm_models=False, model_dir=risk_model_dir)
        database = Database(cfg.database_url)
        database.upgrade()
        with database.session() as s:
            seed(s)
        app = create_app(cfg)
        try:
            yield Env(app, database, Credentials({k: v.get_secret_value() for k, v in cfg.webhook_secrets.items()}))
        finally:
            # The lifespan (worker pool, intake) was started by schemathesis' ASGI client on its first request.
            st_asgi.shutdown_lifespans()


@pytest.fixture(scope="module")
def api_schema(env: Env) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_asgi("/openapi.json", env.app, config=CONFIG)


def _operations(schema: schemathesis.BaseSchema) -> list[schemathesis.APIOperation]:
    # .ok() raises on an operation schemathesis cannot read: then the document itself is broken.
    return [result.ok() for result in schema.get_all_operations()]


def _excluded_checks(case: schemathesis.Case) -> list[Any]:
    if (case.path_parameters or {}).get("source") == "grafana":
        # Grafana's numeric fields (orgId, values) are read leniently on purpose ("3" is 3): an alert must not be
        # lost over how a third-party tool spells a number. Everything else is checked for Grafana too.
        return [schemathesis.checks.negative_data_rejection]
    return []


def test_openapi_document_lists_the_rest_api(api_schema: schemathesis.BaseSchema) -> None:
    labels = {op.label for op in _operations(api_schema)}
    assert {"POST /api/v1/risk", "POST /api/v1/risk/batch", "POST /api/v1/similar", "POST /webhooks/{source}",
            "GET /healthz", "GET /readyz", "GET /api/v1/freezes", "POST /api/v1/freezes",
            "DELETE /api/v1/freezes/{freeze_id}"} <= labels, labels
    raw = api_schema.raw_schema["paths"]
    hook = raw["/webhooks/{source}"]["post"]
    assert "requestBody" in hook and hook["parameters"][0]["schema"]["enum"] == sorted(
        ["alertmanager", "generic", "grafana", "pagerduty"])
    assert {"200", "202", "400", "401", "404", "413", "422", "503"} <= set(hook["responses"])
    assert {"400", "401", "403", "422"} <= set(raw["/api/v1/similar"]["post"]["responses"])
    assert {"400", "401", "403", "404", "422"} <= set(raw["/api/v1/risk"]["post"]["responses"])


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
@pytest.mark.parametrize("auth", ["with_auth", "without_auth"])
def test_every_operation_survives_fuzzing(api_schema: schemathesis.BaseSchema, env: Env, auth: str,
                                          mode: GenerationMode) -> None:
    credentials = env.credentials if auth == "with_auth" else None
    failures: list[str] = []
    fuzzed: list[str] = []
    for operation in _operations(api_schema):
        if operation.label == "POST /slack/events":
            continue  # signed Slack payloads: fuzzed in tests/test_fuzz_parsers.py (not in the document today)

        @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                         HealthCheck.data_too_large])
        @given(case=operation.as_strategy(generation_mode=mode))
        def fuzz(case: schemathesis.Case) -> None:
            response = case.call(auth=credentials)
            excluded = _excluded_checks(case)
            if response.status_code == 413:
                # A body over the door's 1 MiB limit is refused whole (413, in the document); schemathesis's
                # "invalid data must be rejected" check lists other 4xx codes only, so it would count it as accepted.
                excluded = [*excluded, schemathesis.checks.negative_data_rejection]
            case.validate_response(response, excluded_checks=excluded)

        try:
            fuzz()
        except Unsatisfiable:
            # Nothing in this operation can be made invalid (no body, no parameters): nothing to fuzz negatively.
            assert mode is GenerationMode.NEGATIVE, f"{operation.label}: no valid input can be generated"
            continue
        except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - one run reports every failing operation
            failures.append(f"{operation.label} ({auth}, {mode}):\n{exc}")
        fuzzed.append(operation.label)
    assert not failures, "\n\n".join(failures)
    assert len(fuzzed) >= (6 if mode is GenerationMode.POSITIVE else 4), fuzzed


# Regression tests for what the fuzzing found; each also checks the answer against the document.

def _call(api_schema: schemathesis.BaseSchema, env: Env, method: str, path: str, *, auth: bool = True,
          **case: Any) -> schemathesis.Response:
    c = api_schema[path][method].Case(**case)
    response = c.call(auth=env.credentials if auth else None)
    c.validate_response(response, excluded_checks=[schemathesis.checks.negative_data_rejection])
    return response


def _locs(response: schemathesis.Response) -> list[list[Any]]:
    return [e["loc"] for e in response.json()["detail"]]


def test_similar_unsearchable_query_is_a_documented_422(api_schema: schemathesis.BaseSchema, env: Env) -> None:
    # Was {"detail": "<string>"}, against the document's 422 schema (a list of errors naming the field).
    r = _call(api_schema, env, "POST", "/api/v1/similar", body={"text": "?!"})
    assert r.status_code == 422 and _locs(r) == [["body", "text"]]
    assert "nothing to search for" in r.json()["detail"][0]["msg"]


def test_similar_refusals_are_documented(api_schema: schemathesis.BaseSchema, env: Env) -> None:
    # 401 (no or wrong token) and 400 (body not UTF-8) were missing from the document.
    assert _call(api_schema, env, "POST", "/api/v1/similar", auth=False, body={"text": "disk"}).status_code == 401
    c = api_schema["/api/v1/similar"]["POST"].Case(body={"text": "disk"})
    r = c.call(auth=env.credentials, data=b'{"text": "\xff\xfe"}')
    assert r.status_code == 400
    c.validate_response(r, excluded_checks=[schemathesis.checks.negative_data_rejection])


@pytest.mark.parametrize("field, value", [("since", -3428), ("until", 2026), ("until", "0"), ("since", "1700000000"),
                                          ("k", "5"), ("k", True), ("max_severity", "2"), ("resolved_only", 1)])
def test_similar_refuses_values_of_the_wrong_json_type(api_schema: schemathesis.BaseSchema, env: Env,
                                                       field: str, value: Any) -> None:
    # Were accepted: a number as a date (2026 meant 1970-01-01T00:33:46), a string of digits as a date ("0", found by
    # a deeper fuzzing run), a string or true as a number.
    r = _call(api_schema, env, "POST", "/api/v1/similar", body={"text": "kafka disk full", field: value})
    assert r.status_code == 422 and _locs(r)[0] == ["body", field], (r.status_code, r.text[:300])


def test_similar_still_takes_what_the_document_allows(api_schema: schemathesis.BaseSchema, env: Env) -> None:
    body = {"text": "kafka broker disk full", "k": 3.0, "max_severity": 4, "since": "2020-01-01",
            "until": "2030-01-01T00:00:00Z", "resolved_only": False}
    r = _call(api_schema, env, "POST", "/api/v1/similar", body=body)
    assert r.status_code == 200 and len(r.json()["hits"]) <= 3, r.text[:300]


def test_risk_incident_id_true_is_not_incident_1(api_schema: schemathesis.BaseSchema, env: Env) -> None:
    with env.db.session() as s:
        before = s.scalar(select(func.count()).select_from(RiskReading))
    metrics = {"cpu_usage": 90, "memory_usage": 80}
    for bad in (True, "1"):
        r = _call(api_schema, env, "POST", "/api/v1/risk", body={"incident_id": bad, "metrics": metrics})
        assert r.status_code == 422 and ["body", "incident_id"] in _locs(r), r.text
    r = _call(api_schema, env, "POST", "/api/v1/risk", body={"incident_id": 987654, "metrics": metrics})
    assert r.status_code == 404  # documented now, with its reason
    with env.db.session() as s:
        assert s.scalar(select(func.count()).select_from(RiskReading)) == before


def test_risk_unreadable_body_is_a_documented_400(api_schema: schemathesis.BaseSchema, env: Env) -> None:
    for path in ("/api/v1/risk", "/api/v1/risk/batch"):
        c = api_schema[path]["POST"].Case(body={})
        r = c.call(data=b"\x16K\xff\xfel")
        assert r.status_code == 400 and r.json()["detail"]
        c.validate_response(r, excluded_checks=[schemathesis.checks.negative_data_rejection])


@pytest.mark.parametrize("alert", [{"name": "HighLatency", "severity": True},
                                   {"name": "HighLatency", "severity": False},
                                   {"name": "HighLatency", "metrics": {"cpu_usage": True}},
                                   {"name": "HighLatency", "metrics": {"cpu_usage": "ninety"}},
                                   {"name": "HighLatency", "metrics": {"cpu_usage": "NaN"}},
                                   {"name": "HighLatency", "fingerprint": True},
                                   {"name": "HighLatency", "starts_at": False}])
def test_generic_webhook_refuses_booleans_for_numbers(api_schema: schemathesis.BaseSchema, env: Env,
                                                     alert: dict[str, Any]) -> None:
    # Were accepted: "severity": false opened a SEV1 incident; true counted as a metric value of 1.0.
    r = _call(api_schema, env, "POST", "/webhooks/{source}", path_parameters={"source": "generic"},
              body={"alerts": [alert]})
    assert r.status_code == 422, r.text
    field = next(iter(k for k in alert if k != "name"))
    assert field in r.json()["error"] and r.json()["fields"], r.text


def test_generic_webhook_reads_what_senders_write_as_documented(api_schema: schemathesis.BaseSchema,
                                                               env: Env) -> None:
    # Were refused with 422 (and the alert lost): a quoted number, label values 3 and true, a numeric fingerprint,
    # null text, one log string, a start in Unix milliseconds. The document says so, and the answer matches it.
    alert = {"name": "QuotedNumbers", "metrics": {"cpu_usage": "97", "error_count": 3}, "fingerprint": 4021,
             "labels": {"replica": 3, "canary": True, "zone": None}, "summary": None, "logs": "ERROR a\nERROR b",
             "starts_at": 1764756000000}
    c = api_schema["/webhooks/{source}"]["POST"].Case(path_parameters={"source": "generic"}, body={"alerts": [alert]})
    r = c.call(auth=env.credentials)
    c.validate_response(r)  # every check: accepted data the document calls invalid would fail here
    assert r.status_code == 202 and r.json()["alerts"] == 1, r.text


def test_generic_webhook_takes_a_whole_float_where_a_number_is_allowed(api_schema: schemathesis.BaseSchema,
                                                                      env: Env) -> None:
    # Was a 500 (a deeper fuzzing run): 1800.0 for a service id became the int 1800, whose length was then checked.
    c = api_schema["/webhooks/{source}"]["POST"].Case(path_parameters={"source": "generic"},
                                                      body={"name": "FloatIds", "service": 1800.0, "fingerprint": 10.0})
    r = c.call(auth=env.credentials)
    c.validate_response(r)
    assert r.status_code == 202 and r.json()["alerts"] == 1, r.text


def test_generic_webhook_accepts_documented_severities(api_schema: schemathesis.BaseSchema, env: Env) -> None:
    for i, severity in enumerate(("critical", 2, 2.0, "3", None)):
        alert = {"name": f"FuzzRegression{i}", "severity": severity, "metrics": {"cpu_usage": 93, "error_count": 1.5}}
        r = _call(api_schema, env, "POST", "/webhooks/{source}", path_parameters={"source": "generic"},
                  body=json.loads(json.dumps({"alerts": [alert]})))
        assert r.status_code == 202 and r.json()["alerts"] == 1, (severity, r.text)
