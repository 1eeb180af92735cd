"""REST API of the failure risk, over HTTP against the live app: good input, batches, and every bad input."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from bot.api import BatchResponse, RiskResponse
from bot.settings import Settings
from bot.standin.server import SlackStandIn
from knowledge.models import Incident, RiskReading
from tests.conftest import Live, live_with
from tests.risk_support import risk_model_dir  # noqa: F401 - fixture


@pytest.fixture
def settings(tmp_path: Path, standin: SlackStandIn, risk_model_dir: Path) -> Settings:  # noqa: F811
    from tests.conftest import make_settings  # type: ignore[import-not-found]

    return make_settings(tmp_path, standin, model_dir=risk_model_dir, kb_token=TOKEN)


TOKEN = "risk-api-token-0123456789"


def post(live: Live, path: str, body: Any = None, raw: str | None = None, token: str | None = TOKEN
         ) -> httpx.Response:
    content = raw if raw is not None else json.dumps(body)
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
    return httpx.post(f"{live.url}/api/v1/{path}", content=content, headers=headers, timeout=60)


def test_snapshot_gives_probability_band_factors_and_version(live: Live) -> None:
    r = post(
        live,
        "risk",
        {
            "service": "api",
            "metrics": {"cpu_usage": 97, "memory_usage": 96, "error_count": 90, "response_time_ms": 5000},
        },
    )
    assert r.status_code == 200, r.text
    body = r.json()
    RiskResponse.model_validate(body)  # the handler writes its JSON directly: it must still be the documented model
    assert r.headers["content-type"] == "application/json"
    assert 0.0 <= body["probability"] <= 1.0 and body["band"] in ("CRITICAL", "HIGH")
    assert body["factors"][0]["contribution"] > 0 and body["recommendations"]
    assert body["model_version"].startswith("risk-") and "disk_usage" in body["missing_inputs"]
    low = post(
        live,
        "risk",
        {"metrics": {"cpu_usage": 20, "memory_usage": 30, "disk_usage": 30, "error_count": 0, "response_time_ms": 80}},
    ).json()
    assert low["probability"] < body["probability"] and low["band"] in ("MINIMAL", "LOW")


def test_window_and_prometheus_range(live: Live) -> None:
    mem = [50 + i * 1.3 for i in range(36)]
    r = post(live, "risk", {"service": "db", "window": {"series": {"memory_usage": mem, "cpu_usage": [30.0] * 36}}})
    assert r.status_code == 200, r.text
    assert "memory_usage" in r.json()["anomalies"] + r.json()["early_warnings"]
    prom = {
        "status": "success",
        "data": {
            "resultType": "matrix",
            "result": [
                {
                    "metric": {"__name__": "disk_usage"},
                    "values": [[1700000000 + 60 * i, str(60 + i)] for i in range(30)],
                },
                {"metric": {"__name__": "cpu_usage"}, "values": [[1700000000 + 60 * i, "25"] for i in range(30)]},
            ],
        },
    }
    r = post(live, "risk", {"service": "db", "prometheus": prom})
    assert r.status_code == 200, r.text
    assert {f["metric"] for f in r.json()["factors"]} == {"disk_usage", "cpu_usage"}


def _range(*series: tuple[dict[str, str], list[tuple[float, str]]]) -> dict[str, Any]:
    return {"status": "success", "data": {"resultType": "matrix", "result": [
        {"metric": labels, "values": [list(v) for v in values]} for labels, values in series]}}


def test_a_prometheus_range_with_a_missed_scrape_is_read_on_the_times_every_series_has(live: Live) -> None:
    """It was a 422 ("same number of samples"): a scrape missed once in one series, which Prometheus answers by
    leaving that time out of that series, made the whole range unreadable."""
    t0 = 1_700_000_000
    disk = [(t0 + 60 * i, str(60 + i)) for i in range(30)]
    cpu = [(t0 + 60 * i, "25") for i in range(30) if i not in (7, 8)]  # two scrapes missed
    r = post(live, "risk", {"service": "db", "prometheus": _range(({"__name__": "disk_usage"}, disk),
                                                                  ({"__name__": "cpu_usage"}, cpu))})
    assert r.status_code == 200, r.text
    body = r.json()
    RiskResponse.model_validate(body)
    assert body["notes"] == ["prometheus: left out the sample times that not every series has (disk_usage: 2 of 30 "
                             "samples)"]
    # the same reading as a window of the 28 common times: nothing made up for the missing ones
    kept = [v for i, (_, v) in enumerate(disk) if i not in (7, 8)]
    same = post(live, "risk", {"service": "db", "window": {"series": {"disk_usage": [float(v) for v in kept],
                                                                      "cpu_usage": [25.0] * 28},
                                                           "minutes": [ts / 60 for ts, _ in cpu]}}).json()
    assert (body["probability"], body["anomalies"], body["early_warnings"]) == (
        same["probability"], same["anomalies"], same["early_warnings"]) and same["notes"] == []


@pytest.mark.parametrize(("result", "named"), [
    # two pods' series of one metric: the second silently replaced the first
    ([({"__name__": "cpu_usage", "pod": "api-1"}, [(60 * i, "20") for i in range(5)]),
      ({"__name__": "cpu_usage", "pod": "api-2"}, [(60 * i, "99") for i in range(5)])],
     'result[0] and [1] are both cpu_usage ({pod="api-1"} and {pod="api-2"}): aggregate them'),
    ([({"__name__": "cpu"}, [(60 * i, "20") for i in range(5)]),  # an alias of the same metric
      ({"__name__": "cpu_usage"}, [(60 * i, "30") for i in range(5)])], "both cpu_usage"),
    ([({"__name__": "cpu_usage"}, [(60 * i, "20") for i in range(5)]),
      ({"__name__": "memory_usage"}, [(60 * i + 30, "50") for i in range(5)])], "only 0 sample time(s) in common"),
    ([({"__name__": "cpu_usage"}, [(0, "1"), (60, "2"), (60, "3"), (120, "4")])], "values[2] repeats the time 60"),
])
def test_a_prometheus_range_it_cannot_read_as_one_window_is_422(live: Live, result: list[Any], named: str) -> None:
    assert named.replace('"', '\\"') in _detail(post(live, "risk", {"prometheus": _range(*result)}))  # JSON quoting


def test_batch_of_1000_in_order(live: Live) -> None:
    items = [{"service": f"s{i}", "metrics": {"cpu_usage": i % 100, "memory_usage": 40}} for i in range(1000)]
    r = post(live, "risk/batch", {"items": items})
    assert r.status_code == 200, r.text
    BatchResponse.model_validate(r.json())
    res = r.json()["results"]
    assert len(res) == 1000 and res[7]["service"] == "s7" and res[99]["factors"][0]["metric"] == "cpu_usage"


def _new_incident(live: Live, title: str, service: str) -> int:
    with live.db.session() as s:
        inc = Incident(title=title, service_name=service)
        s.add(inc)
        s.flush()
        return inc.id


def test_incident_id_stores_a_reading(live: Live) -> None:
    iid = _new_incident(live, "db slow", "db")
    r = post(live, "risk", {"service": "db", "incident_id": iid, "metrics": {"cpu_usage": 90, "disk_usage": 97}})
    assert r.status_code == 200, r.text
    assert post(live, "risk", {"incident_id": 99999, "metrics": {"cpu_usage": 9, "disk_usage": 9}}).status_code == 404
    with live.db.session() as s:
        (row,) = s.scalars(select(RiskReading)).all()
        assert row.incident_id == iid and row.source == "api" and row.inputs["disk_usage"] == 97.0


def test_without_the_token_nothing_is_answered_or_stored(live: Live, tmp_path: Path, standin: SlackStandIn,
                                                        risk_model_dir: Path) -> None:  # noqa: F811
    """Anyone who could reach the port could write readings onto incidents: the API now takes the REST token."""
    iid = _new_incident(live, "db slow", "db")
    body = {"service": "db", "incident_id": iid, "metrics": {"cpu_usage": 90, "disk_usage": 97}}
    for token in (None, "wrong-token", TOKEN + "x"):
        for path, b in (("risk", body), ("risk/batch", {"items": [body]}), ("risk", {"not": "valid"})):
            r = post(live, path, b, token=token)
            assert r.status_code == 401 and "Bearer token" in r.json()["detail"], (token, path, r.text)
    with live.db.session() as s:
        assert s.scalars(select(RiskReading)).all() == []
    assert post(live, "risk", body).status_code == 200  # the right token still works
    with live_with(tmp_path / "off", standin, model_dir=risk_model_dir, kb_token=None) as off:
        r = post(off, "risk", {"metrics": {"cpu_usage": 90, "disk_usage": 97}})
        assert r.status_code == 403 and "WARROOM_KB_TOKEN" in r.json()["detail"]


def _bodies(n: int, **extra: Any) -> list[dict[str, Any]]:
    return [
        {
            "service": f"s{i}",
            "metrics": {"cpu_usage": (i * 37) % 101, "memory_usage": (i * 53) % 101, "error_count": i * 3},
            **extra,
        }
        for i in range(n)
    ]


def test_concurrent_requests_get_the_answer_each_would_get_alone(live: Live) -> None:
    bodies = _bodies(64) + [{"service": "w", "window": {"series": {"memory_usage": [50 + i * 1.3 for i in range(36)]}}}]
    alone = [post(live, "risk", b).json() for b in bodies[:8] + bodies[-1:]]
    with ThreadPoolExecutor(16) as pool:  # concurrent requests share model calls (bot.api._ModelLane)
        together = list(pool.map(lambda b: post(live, "risk", b), bodies))
    assert [r.status_code for r in together] == [200] * len(bodies)
    for b, r in zip(bodies, together, strict=True):
        assert RiskResponse.model_validate(r.json()).service == b["service"]
    assert [r.json() for r in together[:8] + together[-1:]] == alone
    lane = live.server.app.state.risk_lane
    assert 1 <= lane.calls <= len(bodies) + len(alone)


def test_concurrent_stored_readings_are_all_committed_and_a_bad_incident_is_404(live: Live) -> None:
    iid = _new_incident(live, "api slow", "api")
    bodies = _bodies(40, incident_id=iid) + _bodies(4, incident_id=99999)
    with ThreadPoolExecutor(16) as pool:  # readings are committed together (bot.group_commit), answered after
        codes = [r.status_code for r in pool.map(lambda b: post(live, "risk", b), bodies)]
    assert codes == [200] * 40 + [404] * 4
    with live.db.session() as s:
        rows = s.scalars(select(RiskReading).where(RiskReading.incident_id == iid)).all()
        assert sorted(r.service_name for r in rows) == sorted(f"s{i}" for i in range(40))
        assert all(r.source == "api" and r.factors and r.created_at is not None for r in rows)
        assert s.scalars(select(RiskReading).where(RiskReading.incident_id == 99999)).first() is None


def _detail(r: httpx.Response) -> str:
    assert r.status_code == 422, (r.status_code, r.text[:300])
    return json.dumps(r.json()["detail"])


@pytest.mark.parametrize(
    "body, named",
    [
        ({"metrics": {"cpu_usage": 500, "memory_usage": 3}}, "cpu_usage"),
        ({"metrics": {"cpu_usage": -1, "memory_usage": 3}}, "cpu_usage"),
        ({"metrics": {"cpu_usage": "85", "memory_usage": 3}}, "cpu_usage"),
        ({"metrics": {"cpu_usage": 85}}, "at least two"),
        ({}, "at least two"),
        ({"metrics": {"cpu_usage": 85, "memory": 3}}, "memory"),
        ({"window": {"series": {}}}, "series"),
        ({"window": {"series": {"cpu_usage": [50.0]}}}, "cpu_usage"),
        ({"window": {"series": {"cpu_usage": [1.0, 2.0, 3.0], "memory_usage": [1.0, 2.0, 3.0, 4.0]}}}, "same number"),
        ({"window": {"series": {"cpuz": [1.0, 2.0, 3.0]}}}, "cpuz"),
        ({"window": {"series": {"cpu": [1.0, 2.0, 3.0], "cpu_usage": [9.0, 9.0, 9.0]}}}, "cpu and cpu_usage are both"),
        ({"window": {"series": {"cpu_usage": [1.0, 2.0, 300.0]}}}, "cpu_usage=300"),
        ({"service": "bad name!", "metrics": {"cpu_usage": 1, "memory_usage": 1}}, "service"),
        ({"incident_id": 119935002584300945408, "metrics": {"cpu_usage": 1, "memory_usage": 1}}, "incident_id"),
        ({"incident_id": 2**31, "metrics": {"cpu_usage": 1, "memory_usage": 1}}, "incident_id"),
        (
            {
                "prometheus": {
                    "status": "success",
                    "data": {
                        "resultType": "matrix",
                        "result": [{"metric": {"__name__": "cpu_usage"}, "values": [[1, "1"], [2, "NaN"], [3, "2"]]}],
                    },
                }
            },
            "values[1]",
        ),
    ],
)
def test_bad_bodies_are_422_naming_the_field(live: Live, body: dict, named: str) -> None:
    assert named in _detail(post(live, "risk", body))


def test_nan_and_malformed_json_are_422(live: Live) -> None:
    assert "cpu_usage" in _detail(post(live, "risk", raw='{"metrics": {"cpu_usage": NaN, "memory_usage": 3}}'))
    assert "cpu_usage" in _detail(post(live, "risk", raw='{"metrics": {"cpu_usage": Infinity, "memory_usage": 3}}'))
    assert post(live, "risk", raw="{not json").status_code == 422
    assert post(live, "risk", raw="[1, 2]").status_code == 422


def test_batch_limits(live: Live) -> None:
    one = {"metrics": {"cpu_usage": 50, "memory_usage": 50}}
    assert "1000" in _detail(post(live, "risk/batch", {"items": [one] * 10_000}))
    assert "items" in _detail(post(live, "risk/batch", {"items": []}))
    bad = [one] * 5 + [{"metrics": {"cpu_usage": 500, "memory_usage": 1}}]
    detail = post(live, "risk/batch", {"items": bad}).json()["detail"]
    assert detail[0]["loc"][:3] == ["body", "items", 5] and "cpu_usage" in json.dumps(detail)


def test_openapi_describes_the_risk_api(live: Live) -> None:
    spec = httpx.get(f"{live.url}/openapi.json", timeout=30).json()
    assert "/api/v1/risk" in spec["paths"] and "/api/v1/risk/batch" in spec["paths"]
    for path in ("/api/v1/risk", "/api/v1/risk/batch"):
        assert {"401", "403"} <= set(spec["paths"][path]["post"]["responses"])
    assert "RiskResponse" in spec["components"]["schemas"]
