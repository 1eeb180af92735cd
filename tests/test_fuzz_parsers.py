"""Property-based tests (hypothesis) of the webhook and Slack payload parsers: no input makes a 500."""

from __future__ import annotations

import json
import urllib.parse
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from bot.app import _malformed_slack_body
from bot.webhook_schemas import SOURCES, parse_payload
from skills.intake import extract_log_lines, extract_metrics, severity_from
from tests.conftest import Live
from tests.test_intake_webhooks import load, post

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=40),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=30,
)


def _mutations(base: dict[str, Any]) -> st.SearchStrategy[Any]:
    """The real payload with one field replaced by anything, or removed."""
    def mutate(path_value: tuple[list[str], Any, bool]) -> Any:
        path, value, delete = path_value
        doc = json.loads(json.dumps(base))
        node = doc
        for key in path[:-1]:
            node = node[key] if isinstance(node, dict) else node[0]
        last = path[-1]
        if isinstance(node, dict):
            if delete:
                node.pop(last, None)
            else:
                node[last] = value
        return doc

    paths = []

    def walk(node: Any, prefix: list[str]) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                paths.append([*prefix, k])
                walk(v, [*prefix, k])
        elif isinstance(node, list) and node:
            walk(node[0], prefix)

    walk(base, [])
    return st.tuples(st.sampled_from(paths), json_values, st.booleans()).map(mutate)


@settings(max_examples=300, deadline=None)
@given(source=st.sampled_from(sorted(SOURCES)), data=json_values)
def test_parsers_accept_or_reject_cleanly(source: str, data: Any) -> None:
    try:
        alerts = parse_payload(source, data)
    except ValidationError:
        return
    assert isinstance(alerts, list)


@settings(max_examples=300, deadline=None)
@given(data=st.one_of(_mutations(load("alertmanager")), _mutations(load("grafana"))))
def test_mutated_real_alertmanager_payloads(data: Any) -> None:
    for source in ("alertmanager", "grafana"):
        try:
            for a in parse_payload(source, data):
                assert a.name and a.fingerprint and a.status in ("firing", "resolved") and 1 <= a.severity <= 4
        except ValidationError:
            pass


@settings(max_examples=200, deadline=None)
@given(data=_mutations(load("pagerduty")))
def test_mutated_real_pagerduty_payloads(data: Any) -> None:
    try:
        parse_payload("pagerduty", data)
    except ValidationError:
        pass


@settings(max_examples=300, deadline=None)
@given(body=st.binary(max_size=300), ctype=st.sampled_from(["application/json", "application/x-www-form-urlencoded",
                                                            "text/plain", ""]))
def test_slack_body_check_never_raises(body: bytes, ctype: str) -> None:
    problem = _malformed_slack_body(body, ctype)
    assert problem is None or isinstance(problem, str)


@settings(max_examples=300, deadline=None)
@given(labels=st.dictionaries(st.text(max_size=20), st.text(max_size=30), max_size=8), sev=json_values)
def test_extractors_total(labels: dict[str, str], sev: Any) -> None:
    metrics = extract_metrics(labels)
    assert all(isinstance(v, float) and v == v for v in metrics.values())
    assert isinstance(extract_log_lines(labels), tuple)
    assert 1 <= severity_from(sev) <= 4


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.one_of(json_values, _mutations(load("alertmanager"))))
def test_webhook_endpoint_never_500(live: Live, data: Any) -> None:
    for source in ("alertmanager", "generic"):
        resp = post(live, source, data)
        assert resp.status_code in (202, 400, 413, 422), (resp.status_code, resp.text)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fields=st.dictionaries(st.sampled_from(["command", "text", "user_id", "channel_id", "trigger_id", "payload",
                                               "type", "team_id"]), st.text(max_size=60), max_size=8),
       as_json=st.booleans())
def test_signed_slack_garbage_never_500(live: Live, fields: dict[str, str], as_json: bool) -> None:
    if as_json:
        body, ctype = json.dumps(fields), "application/json"
    else:
        body, ctype = urllib.parse.urlencode(fields), "application/x-www-form-urlencoded"
    resp: httpx.Response = live.driver.post(body, ctype)
    assert resp.status_code < 500, (resp.status_code, body[:200])
