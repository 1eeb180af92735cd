"""The REST API's one credential: ``Authorization: Bearer <WARROOM_KB_TOKEN>``.

The knowledge-base pages take the same token (as a login cookie). Without a configured token the API is off
(403); a missing or wrong token is a 401, checked before the body is validated so that an anonymous caller
learns nothing about the schema and can store nothing (``/api/v1/risk`` with ``incident_id`` writes a reading
onto an incident)."""

from __future__ import annotations

import hmac
from typing import Annotated, Any

from fastapi import Header, HTTPException, Request

__all__ = ["require_token", "auth_errors"]


def require_token(request: Request, authorization: Annotated[str | None, Header()] = None) -> None:
    token = request.app.state.services.settings.kb_token
    if token is None or not token.get_secret_value():
        raise HTTPException(403, "the REST API is off: set WARROOM_KB_TOKEN and send it as a Bearer token")
    given = (authorization or "")[7:].strip() if (authorization or "").lower().startswith("bearer ") else ""
    if not hmac.compare_digest(given.encode(), token.get_secret_value().encode()):
        raise HTTPException(401, "missing or wrong Bearer token")


def auth_errors(error_model: Any) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI ``responses`` entries of the two refusals."""
    return {401: {"model": error_model, "description": "Missing or wrong Bearer token"},
            403: {"model": error_model, "description": "The REST API is off (no WARROOM_KB_TOKEN configured)"}}

