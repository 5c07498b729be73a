"""Request parameters shared by the pages and the socket handshake."""

from __future__ import annotations

from aiohttp import web
from pydantic import TypeAdapter, ValidationError

from bridge.vendor import airudder

CALL_ID: TypeAdapter[str] = TypeAdapter(airudder.CallId)


def valid_call_id(raw: str) -> str:
    """``raw`` if it is a well-formed call_id; a JSON 400 otherwise."""
    try:
        return CALL_ID.validate_python(raw)
    except ValidationError:
        raise web.HTTPBadRequest(
            text="call_id must be 1-128 characters of A-Z a-z 0-9 _ . : @ -"
        ) from None


def query_int(request: web.Request, name: str) -> int | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:  # not "²" nor a full-width 5
        raise web.HTTPBadRequest(text=f"{name} must be a non-negative integer")
    return int(raw)
