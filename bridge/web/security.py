"""Who may open a socket (origin, widget token) and the headers every page leaves with.

``admit`` runs before a WebSocket upgrade, so a refused browser gets a plain HTTP answer
(401/403 with JSON ``{"error", "detail"}``) and never a frame of the session.
``on_response_prepare`` adds the browser-side protections to every response: a
Content-Security-Policy without inline script on pages, and CORS on widget assets so
the allowed sites can embed them.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from aiohttp import web

from bridge import tokens
from bridge.config import Settings
from bridge.keys import SETTINGS
from bridge.refusals import Refusal

log = logging.getLogger(__name__)

STATIC_PREFIX = "/static/"


def _origin_allowed(request: web.Request, settings: Settings) -> bool:
    """The page that opens a socket must be on an allowed site or on the bridge itself.

    Browsers always send Origin on a WebSocket handshake and a page cannot forge it, which
    is what stops cross-site WebSocket hijacking; a request without Origin is not from a
    browser page, so the widget token (not the origin) is what guards it."""
    allowed = settings.origins()
    origin = request.headers.get("Origin")
    if not allowed or origin is None:
        return True
    origin = origin.strip().rstrip("/").lower()
    if origin in allowed:
        return True
    parts = urlsplit(origin)  # the bridge's own pages: http(s) on its host, not ftp://
    return parts.scheme in ("http", "https") and parts.netloc == request.host.lower()


def admit(request: web.Request, call_id: str) -> int | None:
    """Check a socket handshake for ``call_id``: the expiry of its widget token (None when
    tokens are off), or :class:`Refusal`."""
    settings = request.app[SETTINGS]
    if not _origin_allowed(request, settings):
        raise Refusal(
            "origin_not_allowed",
            "this site may not open the chat (BRIDGE_ALLOWED_ORIGINS)",
            status=403,
        )
    secrets = settings.widget_secrets()
    if not secrets:
        return None
    return tokens.verify(request.query.get("token"), call_id, secret=secrets)


def content_security_policy(settings: Settings) -> str:
    """No inline script anywhere; media may come from any http(s) URL because the bot's
    images, videos and audio live on the vendor's hosts; the full-page chat may be framed
    only by the allowed origins (by any site when none are listed: development, as for
    sockets and widget assets)."""
    allowed = settings.origins()
    ancestors = " ".join(["'self'", *sorted(allowed)]) if allowed else "*"
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' https: http: data:",
            "media-src 'self' https: http:",
            "connect-src 'self'",  # CSP3: 'self' covers ws:/wss: to this host
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            f"frame-ancestors {ancestors}",
        ]
    )


async def on_response_prepare(request: web.Request, response: web.StreamResponse) -> None:
    settings = request.app[SETTINGS]
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
    # The header as set, not response.content_type (which parses it): runs on every answer.
    if headers.get("Content-Type", "").startswith("text/html"):
        headers["Content-Security-Policy"] = content_security_policy(settings)
    if request.raw_path.startswith(STATIC_PREFIX):
        _cors(request, response, settings)


def _cors(request: web.Request, response: web.StreamResponse, settings: Settings) -> None:
    """Widget assets may be loaded by the allowed sites (``<script crossorigin>``, fetch)."""
    response.headers["Cross-Origin-Resource-Policy"] = "cross-origin"
    if not settings.origins():
        response.headers["Access-Control-Allow-Origin"] = "*"
        return
    response.headers["Vary"] = "Origin"
    origin = request.headers.get("Origin")
    if origin is not None and _origin_allowed(request, settings):
        response.headers["Access-Control-Allow-Origin"] = origin


async def _warn_when_open(app: web.Application) -> None:
    if not app[SETTINGS].widget_secrets():
        log.warning(
            "BRIDGE_WIDGET_SECRET is not set: anyone who knows a call_id can join its "
            "session (development)"
        )
    if not app[SETTINGS].origins():
        log.warning("BRIDGE_ALLOWED_ORIGINS is empty: pages on any site may open sockets")
    if app[SETTINGS].demo_enabled() and app[SETTINGS].signing_secrets():
        log.warning("BRIDGE_DEMO is on: anyone can have sample callbacks signed and posted")


def setup(app: web.Application) -> None:
    app.on_response_prepare.append(on_response_prepare)
    app.on_startup.append(_warn_when_open)
