"""REST API for monitoring systems: ``POST /api/v1/risk`` and ``POST /api/v1/risk/batch``.

Authorised with ``Authorization: Bearer <WARROOM_KB_TOKEN>`` (:mod:`bot.api_auth`); without a configured token
the endpoints answer 403.

JSON in, JSON out. Every input is validated before the model sees it: NaN, infinities, strings
where numbers belong, negative or absurd values (cpu=500), unknown fields, empty windows, one-point
series and batches over 1,000 items get a 422 whose ``detail`` names the field.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Callable, Coroutine
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PrivateAttr, StrictFloat, model_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.api_auth import auth_errors, require_token
from bot.batching import MicroBatcher
from bot.group_commit import GroupCommit
from knowledge.models import MAX_ID
from knowledge.risk_store import add_readings
from models.risk_features import canonical_name
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

__all__ = ["router", "RiskRequest", "RiskResponse", "BatchRequest", "BatchResponse", "ErrorOut", "JsonInt", "MAX_BATCH",
           "SafeValidationRoute"]

MAX_BATCH = 1000


def _finite(obj: Any) -> Any:
    """Errors echo the input; NaN or infinity in it, or a lone surrogate ("\udcff", which no UTF-8 can hold), must not
    break the JSON of the 422 itself."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    if isinstance(obj, str):
        return obj.encode("utf-8", "replace").decode("utf-8")
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    return obj


class SafeValidationRoute(APIRoute):
    """Answers validation errors with a 422 whose JSON is always valid (and short for huge inputs)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as exc:
                errors = [{k: v for k, v in e.items() if k != "input" or len(str(v)) < 200} for e in exc.errors()[:20]]
                return JSONResponse({"detail": _finite(jsonable_encoder(errors))}, status_code=422)

        return route


router = APIRouter(prefix="/api/v1", tags=["failure risk"], route_class=SafeValidationRoute,
                   dependencies=[Depends(require_token)])


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


Series = Annotated[
    list[Annotated[float, Field(strict=True, allow_inf_nan=False)]], Field(min_length=3, max_length=MAX_WINDOW_POINTS)
]


class Window(BaseModel):
    """Recent samples (oldest first) of one or more core metrics, all the same length (>= 3)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    series: dict[str, Series] = Field(min_length=1, max_length=7, description="metric name -> samples")
    minutes: list[Annotated[float, Field(strict=True)]] | None = Field(
        default=None, description="sample times in minutes (default: every 5 minutes)"
    )


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

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"service": "checkout", "metrics": {"cpu_usage": 92, "memory_usage": 88, "error_count": 40}}]
        },
    )
    service: str | None = Field(default=None, max_length=100, pattern=r"^[\w.-]+$")
    # le: a bigger number names no incident (a 21-digit one was a 500, found by schemathesis, 2026-12-03)
    incident_id: JsonInt | None = Field(default=None, ge=1, le=MAX_ID, description="store the reading on this incident")
    metrics: Metrics | None = None
    window: Window | None = None
    prometheus: PromRange | None = None
    _snapshot: dict[str, float] = PrivateAttr(default_factory=dict)
    _window: MetricWindow | None = PrivateAttr(default=None)
    _notes: list[str] = PrivateAttr(default_factory=list)

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
            win, self._notes = _from_prometheus(self.prometheus)
        given = {k: v for k, v in (self.metrics.model_dump() if self.metrics else {}).items() if v is not None}
        if win is None and len(given) < 2:
            raise RiskInputError(
                "give metrics with at least two values (e.g. cpu_usage and memory_usage), "
                "or a window, or a prometheus range"
            )
        return validate_snapshot(given, min_metrics=0), win


def _labels(metric: dict[str, str]) -> str:
    return "{" + ", ".join(f'{k}="{v[:40]}"' for k, v in sorted(metric.items()) if k != "__name__")[:120] + "}"


def _from_prometheus(p: PromRange) -> tuple[MetricWindow, list[str]]:
    """The window of a ``query_range`` answer, on the sample times every series has (a missed scrape leaves a
    time out of one series), and notes on what was left out."""
    named: dict[str, tuple[int, dict[float, float]]] = {}
    for i, s in enumerate(p.data.result):
        name = s.metric.get("__name__") or s.metric.get("name")
        if not name:
            raise RiskInputError(f"prometheus.data.result[{i}].metric has no __name__")
        key = canonical_name(name) or name  # an unknown name is refused by validate_window, naming it
        if key in named:  # two pods' cpu_usage: which one is at risk is the caller's question, not ours to pick
            j = named[key][0]
            raise RiskInputError(
                f"prometheus.data.result[{j}] and [{i}] are both {key} ({_labels(p.data.result[j].metric)} and "
                f"{_labels(s.metric)}): aggregate them in the query (e.g. max by (service) (...)), or send one "
                "request per instance")
        samples: dict[float, float] = {}
        for j, (ts, v) in enumerate(s.values):
            try:
                x = float(v)
            except ValueError:
                raise RiskInputError(f"prometheus.data.result[{i}].values[{j}] = {v[:20]!r} is not a number") from None
            if not math.isfinite(x):
                raise RiskInputError(f"prometheus.data.result[{i}].values[{j}] is {v}; need a finite number")
            if ts in samples:
                raise RiskInputError(f"prometheus.data.result[{i}].values[{j}] repeats the time {ts}")
            samples[ts] = x
        named[key] = (i, samples)
    common = sorted(set.intersection(*(set(d) for _, d in named.values())))
    short = {k: len(d) - len(common) for k, (_, d) in named.items() if len(d) > len(common)}
    notes = []
    if short:
        if len(common) < 3:
            raise RiskInputError(f"the series have only {len(common)} sample time(s) in common; a window needs 3: "
                                 "query them in one query_range call (one start, end and step)")
        notes.append("prometheus: left out the sample times that not every series has ("
                     + ", ".join(f"{k}: {n} of {n + len(common)} samples" for k, n in short.items()) + ")")
    window = validate_window({k: [d[t] for t in common] for k, (_, d) in named.items()}, [t / 60.0 for t in common])
    return window, notes


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
    notes: list[str] = Field(default_factory=list, description="what was left out of the input before it was read "
                             "(e.g. Prometheus sample times that not every series has)")


class ErrorOut(BaseModel):
    """An error with a reason for a person."""

    detail: str


_BAD_BODY = {400: {"model": ErrorOut, "description": "The body cannot be read (e.g. it is not UTF-8)"},
             **auth_errors(ErrorOut)}


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    items: list[RiskRequest] = Field(min_length=1, max_length=MAX_BATCH)


class BatchResponse(BaseModel):
    model_version: str
    results: list[RiskResponse]


def _engine(request: Request) -> RiskEngine:
    return get_engine(request.app.state.services.ctx.model_dir)


class _ModelLane:
    """Concurrent single requests share one model call (``bot.batching.MicroBatcher``). The model is row-wise,
    so an input's answer does not depend on its batch. Per-request costs that this removes: a thread hop and
    the model's fixed cost per call. Snapshots only: about a millisecond for a full batch, cheaper on the event
    loop than a thread hop (and its GIL hand-over) per batch; windows run the detector, in a thread.
    """

    def __init__(self, engine: RiskEngine, max_batch: int = 64) -> None:
        self.engine = engine
        self.calls = 0  # model calls (for the benchmark's report)
        self._batcher: MicroBatcher[tuple[dict[str, float], MetricWindow | None], Assessment] = MicroBatcher(
            self._run, max_batch=max_batch, in_thread=lambda items: any(w is not None for _, w in items))

    async def assess(self, snapshot: dict[str, float], window: MetricWindow | None) -> Assessment:
        return await self._batcher.submit((snapshot, window))

    def _run(self, items: list[tuple[dict[str, float], MetricWindow | None]]) -> list[Assessment]:
        self.calls += 1
        # detail=True adds the detector panels only where there is a window, as one request alone would.
        return self.engine.assess_many([s for s, _ in items], [w for _, w in items], detail=True)


async def _lane(request: Request) -> _ModelLane:
    state = request.app.state
    lane = getattr(state, "risk_lane", None)
    if lane is None:  # the first request: loading (or, the very first time, training) happens off the loop
        lane = state.risk_lane = _ModelLane(await asyncio.to_thread(_engine, request))
    return lane  # type: ignore[no-any-return]


def _write_readings(session: Session, items: list[tuple[RiskRequest, Assessment]]) -> list[bool]:
    """Store the readings of one group commit; False for an item whose incident does not exist."""
    from knowledge.models import Incident

    ids = {req.incident_id for req, _ in items}
    known = set(session.scalars(select(Incident.id).where(Incident.id.in_(ids))))
    add_readings(
        session,
        [
            {
                "probability": a.probability,
                "band": a.band,
                "model_version": a.model_version,
                "source": "api",
                "inputs": a.inputs,
                "factors": a.as_dict()["factors"],
                "service_name": req.service,
                "incident_id": req.incident_id,
            }
            for req, a in items
            if req.incident_id in known
        ],
    )
    return [req.incident_id in known for req, _ in items]


def _readings(request: Request) -> GroupCommit[tuple[RiskRequest, Assessment], bool]:
    """Concurrent readings are committed together (bot.group_commit); each response waits for its commit."""
    state = request.app.state
    writer = getattr(state, "risk_readings", None)
    if writer is None:
        writer = state.risk_readings = GroupCommit(state.services.db, _write_readings)
    return writer  # type: ignore[no-any-return]


def _out_dict(req: RiskRequest, a: Assessment) -> dict[str, object]:
    """The ``RiskResponse`` of one assessment as plain JSON values."""
    return {"service": req.service, **a.as_dict(), "notes": req._notes}  # noqa: SLF001 - set by its validator


def _json(body: object) -> Response:
    # The handlers return the documented response models' fields built from the engine's own types, so the
    # bytes are written directly instead of validating them again (tests check them against the models).
    return Response(json.dumps(body, separators=(",", ":"), allow_nan=False), media_type="application/json")


@router.post(
    "/risk",
    response_model=RiskResponse,
    summary="Failure risk of one service",
    responses={**_BAD_BODY, 404: {"model": ErrorOut, "description": "incident_id names no incident"}},
)
async def risk(req: RiskRequest, request: Request) -> Response:
    """Calibrated failure probability, band, per-input factors and recommendations for one input.

    With ``incident_id`` the reading is stored on that incident, and the answer comes after its commit."""
    a = await (await _lane(request)).assess(req._snapshot, req._window)  # noqa: SLF001 - validated in the model
    if req.incident_id is not None and not await _readings(request).submit((req, a)):
        raise HTTPException(404, detail=f"incident_id {req.incident_id}: no such incident")
    return _json(_out_dict(req, a))


@router.post(
    "/risk/batch", response_model=BatchResponse, summary="Failure risk of up to 1,000 inputs", responses=_BAD_BODY
)
def risk_batch(req: BatchRequest, request: Request) -> Response:
    """The same as ``/risk`` for many inputs in one model call (no detector details, nothing stored)."""
    if any(it.incident_id is not None for it in req.items):
        raise HTTPException(
            422,
            detail=[
                {
                    "loc": ["body", "items", "incident_id"],
                    "type": "value_error",
                    "msg": "the batch endpoint does not store readings; use /api/v1/risk with incident_id",
                }
            ],
        )
    engine = _engine(request)
    found = engine.assess_many(
        [it._snapshot for it in req.items],  # noqa: SLF001
        [it._window for it in req.items],  # noqa: SLF001
    )
    return _json(
        {
            "model_version": engine.version,
            "results": [_out_dict(it, a) for it, a in zip(req.items, found, strict=True)],
        }
    )
