"""JSON answers, and the middleware that turns every refusal or failure into one:
``{"error": code, "detail": ...}`` with a status, never a bare 500 or a traceback page."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import HttpVersion11, hdrs, web
from pydantic import ValidationError

from bridge.keys import METRICS
from bridge.refusals import Refusal, StoreUnavailable
from bridge.vendor import airudder

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_HTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    408: "body_timeout",
    413: "body_too_large",
    415: "unsupported_encoding",
}


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


def json_error(status: int, code: str, detail: Any) -> web.Response:
    return json_response({"error": code, "detail": detail}, status)


def validation_detail(exc: ValidationError) -> list[dict[str, str]]:
    return [
        {"path": airudder.error_path(e["loc"]) or "(body)", "message": e["msg"]}
        for e in exc.errors(include_url=False, include_input=False)
    ]


def invalid_body(exc: ValidationError, code: str) -> Refusal:
    """A body that failed validation: 400 when it is not JSON at all, else 422 with the
    path of every field at fault (``code`` names what the body was meant to be)."""
    if any(e["type"] == "json_invalid" for e in exc.errors()):
        return Refusal("invalid_json", "the body is not valid JSON")
    return _Invalid(code, validation_detail(exc))


class _Invalid(Refusal):
    status = 422

    def __init__(self, code: str, fields: list[dict[str, str]]) -> None:
        super().__init__(code, "the body does not match the expected shape")
        self.fields = fields


async def expect(request: web.BaseRequest) -> web.StreamResponse | None:
    """Every route's ``Expect`` handler (it runs before the middleware): 100-continue as
    aiohttp does; anything else refused in the JSON format (aiohttp's own refusal is plain
    text, and fails on a value that is not UTF-8)."""
    if request.version != HttpVersion11:
        return None
    if request.headers.get(hdrs.EXPECT, "").lower() == "100-continue":
        await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        request.writer.output_size = 0  # the answer's own head is still to come
        return None
    return json_error(417, "expectation_failed", "only Expect: 100-continue is understood")


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _HTTP_CODES.get(exc.status, exc.reason.lower().replace(" ", "_"))
        request.app[METRICS].rejections.labels(code).inc()
        return json_error(exc.status, code, exc.text or exc.reason)
    except Refusal as refusal:
        request.app[METRICS].rejections.labels(refusal.code).inc()
        call_id = request.match_info.get("call_id")
        if isinstance(refusal, StoreUnavailable):
            log.warning("store unavailable on %s %s: %s", request.method, request.path, refusal)
        else:
            log.info("refused %s: %s", request.path, refusal.code, extra={"call_id": call_id})
        detail = refusal.fields if isinstance(refusal, _Invalid) else refusal.detail
        return json_error(refusal.status, refusal.code, detail)
    except UnicodeError as exc:  # a header or parameter no check caught: still the sender's
        log.info("undecodable request %s %s: %s", request.method, request.path, exc)
        return json_error(400, "bad_request", "the request holds bytes that cannot be decoded")
    except ConnectionError as exc:  # the client went away mid-request: nobody to answer
        log.debug("client disconnected on %s %s: %r", request.method, request.path, exc)
        return json_error(400, "client_disconnected", "the connection was lost")
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return json_error(500, "internal_error", "unexpected error; it has been logged")
