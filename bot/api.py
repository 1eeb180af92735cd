"""REST API for monitoring systems: ``POST /api/v1/risk`` and ``POST /api/v1/risk/batch``.

JSON in, JSON out. Every input is validated before the model sees it: NaN, infinities, strings
where numbers belong, negative or absurd values (cpu=500), unknown fields, empty windows, one-point
series and batches over 1,000 items get a 422 whose ``detail`` names the field.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Coroutine
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PrivateAttr, StrictFloat, model_validator

from knowledge.risk_store import add_reading
from skills.risk_engine import (
    MAX_WINDOW_POINTS,
    Assessment,
    MetricWindow,
    RiskEngine,
    RiskInputError,
    get_engine,
    validate_snapshot,
    validate_window,
)

__all__ = ["router", "RiskRequest", "RiskResponse", "BatchRequest", "BatchResponse", "ErrorOut", "JsonInt", "MAX_BATCH"]

MAX_BATCH = 1000


def _finite(obj: Any) -> Any:
    """Errors echo the input; NaN or infinity in it must not break the JSON of the 422 itself."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    return obj


class _SafeValidationRoute(APIRoute):
    """Answers validation errors with a 422 whose JSON is always valid (and short for huge inputs)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as exc:
                errors = [{k: v for k, v in e.items() if k != "input" or len(str(v)) < 200}
                          for e in exc.errors()[:20]]
                return JSONResponse({"detail": _finite(jsonable_encoder(errors))}, status_code=422)

        return route


router = APIRouter(prefix="/api/v1", tags=["failure risk"], route_class=_SafeValidationRoute)


def _json_integer(value: object) -> object:
    # JSON numbers only: left alone, pydantic reads true as 1 and "3" as 3 (3.0 stays fine, as in JSON Schema).
    if isinstance(value, bool | str):
        raise ValueError("must be a JSON number, not a string or true/false")
    return value


JsonInt = Annotated[int, BeforeValidator(_json_integer)]
"""An integer field that takes JSON numbers only (shared with the other REST doors)."""


def _pct(hi: float, what: str) -> Any:
    return Field(default=None, ge=0, le=hi, strict=True, description=what)


class Metrics(BaseModel):
    """A snapshot of the core metrics; give at least two (or a window)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    cpu_usage: float | None = _pct(100, "CPU utilisation, percent 0-100")
    memory_usage: float | None = _pct(100, "memory utilisation, percent 0-100")
    disk_usage: float | None = _pct(100, "disk utilisation, percent 0-100")
    network_latency_ms: float | None = _pct(600_000, "network latency to dependencies, ms")
    error_count: float | None = _pct(10_000_000, "errors per minute")
    response_time_ms: float | None = _pct(600_000, "response time (e.g. p95), ms")
    active_connections: float | None = _pct(10_000_000, "open connections")


Series = Annotated[list[Annotated[float, Field(strict=True, allow_inf_nan=False)]],
                   Field(min_length=3, max_length=MAX_WINDOW_POINTS)]


class Window(BaseModel):
    """Recent samples (oldest first) of one or more core metrics, all the same length (>= 3)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    series: dict[str, Series] = Field(min_length=1, max_length=7, description="metric name -> samples")
    minutes: list[Annotated[float, Field(strict=True)]] | None = Field(
        default=None, description="sample times in minutes (default: every 5 minutes)")


class PromSeries(BaseModel):
    metric: dict[str, str]
    values: list[tuple[StrictFloat, str]] = Field(min_length=3, max_length=MAX_WINDOW_POINTS)


class PromData(BaseModel):
    resultType: Literal["matrix"]  # noqa: N815 - Prometheus' own field name
    result: list[PromSeries] = Field(min_length=1, max_length=7)


class PromRange(BaseModel):
    """A Prometheus ``query_range`` response; each series' ``__name__`` must name a core metric."""

    status: Literal["success"]
    data: PromData


class RiskRequest(BaseModel):
    """One service's metrics: a snapshot, a window, or a Prometheus range (the window's last samples win)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"service": "checkout", "metrics": {"cpu_usage": 92, "memory_usage": 88, "error_count": 40}}]})
    service: str | None = Field(default=None, max_length=100, pattern=r"^[\w.-]+$")
    incident_id: JsonInt | None = Field(default=None, ge=1, description="store the reading on this incident")
    metrics: Metrics | None = None
    window: Window | None = None
    prometheus: PromRange | None = None
    _snapshot: dict[str, float] = PrivateAttr(default_factory=dict)
    _window: MetricWindow | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _check(self) -> RiskRequest:
        try:
            self._snapshot, self._window = self.parsed()
        except RiskInputError as exc:
            raise ValueError(str(exc)) from None
        return self

    def parsed(self) -> tuple[dict[str, float], MetricWindow | None]:
        """The validated snapshot and window (raises RiskInputError)."""
        if self.window is not None and self.prometheus is not None:
            raise RiskInputError("give either window or prometheus, not both")
        win: MetricWindow | None = None
        if self.window is not None:
            win = validate_window(self.window.series, self.window.minutes)
        elif self.prometheus is not None:
            win = _from_prometheus(self.prometheus)
        given = {k: v for k, v in (self.metrics.model_dump() if self.metrics else {}).items() if v is not None}
        if win is None and len(given) < 2:
            raise RiskInputError("give metrics with at least two values (e.g. cpu_usage and memory_usage), "
                                 "or a window, or a prometheus range")
        return validate_snapshot(given, min_metrics=0), win


def _from_prometheus(p: PromRange) -> MetricWindow:
    series: dict[str, list[float]] = {}
    times: list[float] | None = None
    for i, s in enumerate(p.data.result):
        name = s.metric.get("__name__") or s.metric.get("name")
        if not name:
            raise RiskInputError(f"prometheus.data.result[{i}].metric has no __name__")
        vals = []
        for j, (_, v) in enumerate(s.values):
            try:
                x = float(v)
            except ValueError:
                raise RiskInputError(f"prometheus.data.result[{i}].values[{j}] = {v[:20]!r} is not a number") from None
            if not math.isfinite(x):
                raise RiskInputError(f"prometheus.data.result[{i}].values[{j}] is {v}; need a finite number")
            vals.append(x)
        series[name] = vals
        t = [ts / 60.0 for ts, _ in s.values]
        times = times or t
    return validate_window(series, times)


class FactorOut(BaseModel):
    metric: str
    value: float
    unit: str
    contribution: float = Field(description="how much this input raises the probability (occlusion)")


class RiskResponse(BaseModel):
    service: str | None
    probability: float = Field(description="calibrated probability of a failure within the next hour")
    band: Literal["CRITICAL", "HIGH", "MEDIUM", "LOW", "MINIMAL"]
    factors: list[FactorOut]
    recommendations: list[str]
    missing_inputs: list[str] = Field(description="inputs not given, assumed at their healthy level")
    early_warnings: list[str]
    anomalies: list[str]
    model_version: str


class ErrorOut(BaseModel):
    """An error with a reason for a person."""

    detail: str


_BAD_BODY = {400: {"model": ErrorOut, "description": "The body cannot be read (e.g. it is not UTF-8)"}}


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    items: list[RiskRequest] = Field(min_length=1, max_length=MAX_BATCH)


class BatchResponse(BaseModel):
    model_version: str
    results: list[RiskResponse]


def _engine(request: Request) -> RiskEngine:
    return get_engine(request.app.state.services.ctx.model_dir)


def _out(service: str | None, a: Assessment) -> RiskResponse:
    d = a.as_dict()
    return RiskResponse(service=service, **d)  # type: ignore[arg-type]


def _store(request: Request, req: RiskRequest, a: Assessment) -> None:
    from knowledge.models import Incident

    db = request.app.state.services.db
    with db.session() as s:
        if s.get(Incident, req.incident_id) is None:
            raise HTTPException(404, detail=f"incident_id {req.incident_id}: no such incident")
        add_reading(s, probability=a.probability, band=a.band, model_version=a.model_version, source="api",
                    inputs=a.inputs, factors=a.as_dict()["factors"],  # type: ignore[arg-type]
                    service_name=req.service, incident_id=req.incident_id)


@router.post("/risk", response_model=RiskResponse, summary="Failure risk of one service",
             responses={**_BAD_BODY, 404: {"model": ErrorOut, "description": "incident_id names no incident"}})
def risk(req: RiskRequest, request: Request) -> RiskResponse:
    """Calibrated failure probability, band, per-input factors and recommendations for one input."""
    snap, win = req._snapshot, req._window  # noqa: SLF001 - validated in the model
    a = _engine(request).assess(snap, win, detail=win is not None)
    if req.incident_id is not None:
        _store(request, req, a)
    return _out(req.service, a)


@router.post("/risk/batch", response_model=BatchResponse, summary="Failure risk of up to 1,000 inputs",
             responses=_BAD_BODY)
def risk_batch(req: BatchRequest, request: Request) -> BatchResponse:
    """The same as ``/risk`` for many inputs in one model call (no detector details, nothing stored)."""
    if any(it.incident_id is not None for it in req.items):
        raise HTTPException(422, detail=[{"loc": ["body", "items", "incident_id"], "type": "value_error",
                                          "msg": "the batch endpoint does not store readings; "
                                                 "use /api/v1/risk with incident_id"}])
    engine = _engine(request)
    found = engine.assess_many([it._snapshot for it in req.items],  # noqa: SLF001
                               [it._window for it in req.items])  # noqa: SLF001
    return BatchResponse(model_version=engine.version,
                         results=[_out(it.service, a) for it, a in zip(req.items, found, strict=True)])
