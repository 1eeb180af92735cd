"""REST door of the similar-incident search: ``POST /api/v1/similar``.

Authorised like the knowledge-base pages: ``Authorization: Bearer <WARROOM_KB_TOKEN>`` (without a
configured token the endpoint answers 403). JSON in, JSON out; bad input gets a 4xx with a reason (a 422
has FastAPI's usual shape, ``{"detail": [{"loc": [...], "msg": "...", "type": "..."}]}``).
"""

from __future__ import annotations

import datetime as dt
import re
import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from bot.api import ErrorOut, JsonInt, SafeValidationRoute
from bot.api_auth import auth_errors, require_token
from knowledge.search import SearchError, search

__all__ = ["router", "SimilarRequest"]

router = APIRouter(prefix="/api/v1", tags=["similar"], route_class=SafeValidationRoute,
                   dependencies=[Depends(require_token)])


def _iso_only(value: object) -> object:
    # pydantic would read a number as Unix time: "since": 2026 would silently mean 1970-01-01T00:33:46.
    # A string of digits is the same trap ("0" was read as 1970-01-01, a search "until 1970" found nothing).
    if value is not None and (not isinstance(value, str | dt.datetime)
                              or (isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+(?:\.\d*)?\s*", value))):
        raise ValueError("give an ISO 8601 date-time string, e.g. 2026-01-01T00:00:00Z")
    return value


IsoDateTime = Annotated[dt.datetime | None, BeforeValidator(_iso_only)]


class SimilarRequest(BaseModel):
    """A search: text plus optional signals and filters."""

    model_config = ConfigDict(extra="forbid")

    text: Annotated[str, Field(min_length=1, max_length=200_000)]
    k: Annotated[JsonInt, Field(ge=1, le=50)] = 5
    kinds: list[Literal["incident", "postmortem", "runbook"]] = Field(
        default_factory=lambda: ["incident", "postmortem", "runbook"], min_length=1)
    service: Annotated[str | None, Field(max_length=100)] = None
    alert_name: Annotated[str | None, Field(max_length=200)] = None
    log_lines: Annotated[list[Annotated[str, Field(max_length=2000)]], Field(max_length=50)] = Field(
        default_factory=list)
    filter_service: Annotated[str | None, Field(max_length=100)] = None
    since: IsoDateTime = None
    until: IsoDateTime = None
    max_severity: Annotated[JsonInt | None, Field(ge=1, le=4)] = None
    resolved_only: Annotated[bool, Field(strict=True)] = False


_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "The body cannot be read (e.g. it is not UTF-8)"},
    **auth_errors(ErrorOut),
}


@router.post("/similar", responses=_ERRORS)
def similar(body: SimilarRequest, request: Request) -> dict[str, Any]:
    """Similar past incidents, postmortems and runbooks, best first, with why they matched."""
    ctx = request.app.state.services.ctx
    t0 = time.perf_counter()
    try:
        hits = search(ctx, text=body.text, kinds=tuple(body.kinds), service=body.service,
                      alert_name=body.alert_name, log_lines=body.log_lines, filter_service=body.filter_service,
                      since=body.since.replace(tzinfo=None) if body.since else None,
                      until=body.until.replace(tzinfo=None) if body.until else None,
                      max_severity=body.max_severity, resolved_only=body.resolved_only, k=body.k)
    except SearchError as exc:
        # The body passed validation, so what is left is the query itself (e.g. only punctuation); answered in
        # the same shape as every other 422 of the API.
        raise HTTPException(422, [{"loc": ["body", "text"], "msg": str(exc), "type": "value_error"}]) from None
    return {"hits": [h.__dict__ for h in hits], "ms": round((time.perf_counter() - t0) * 1000, 1),
            "truncated": len(body.text) > 8000}
