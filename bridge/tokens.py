"""Widget tokens: which browser may join which session, and until when.

A website's back end mints a token for the ``call_id`` its visitor chats on and puts it in
the page; the widget sends it as ``?token=`` when it opens ``/ws/{call_id}``. A token is
``{"c": call_id, "e": expiry}`` signed with HMAC-SHA256 (itsdangerous) under
``BRIDGE_WIDGET_SECRET``. The secret setting is comma-separated for rotation: the first
secret signs, every listed secret verifies.

    from bridge import tokens
    token = tokens.mint(call_id, ttl=3600)   # secret from BRIDGE_WIDGET_SECRET
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from typing import Any

from itsdangerous import BadSignature, URLSafeSerializer

from bridge.config import Settings
from bridge.refusals import Refusal

# Separates these signatures from any other use of the same secret.
SALT = "airudder-bridge.widget-token"
MAX_TTL = 366 * 24 * 3600


class TokenError(Refusal):
    """A token that does not admit its bearer: ``code`` says why (401, or 403 for a token
    of another call_id)."""

    status = 401

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(code, detail, status=403 if code == "token_wrong_call" else None)


def _serializer(secrets: Sequence[bytes | str]) -> URLSafeSerializer:
    keys = [s.encode() if isinstance(s, str) else s for s in secrets]
    if not keys:
        raise ValueError("no widget secret: set BRIDGE_WIDGET_SECRET")
    # itsdangerous signs with the LAST key; our setting lists the signing secret first.
    return URLSafeSerializer(
        list(reversed(keys)), salt=SALT, signer_kwargs={"digest_method": hashlib.sha256}
    )


def mint(
    call_id: str,
    ttl: float = 3600,
    *,
    secret: bytes | str | Sequence[bytes | str] | None = None,
    now: float | None = None,
) -> str:
    """A token that lets its bearer join ``call_id`` for ``ttl`` seconds.

    ``secret`` defaults to ``BRIDGE_WIDGET_SECRET`` (its first entry signs)."""
    if not call_id:
        raise ValueError("call_id must not be empty")
    if not 0 < ttl <= MAX_TTL:
        raise ValueError(f"ttl must be between 1 second and {MAX_TTL} seconds")
    expires = int((time.time() if now is None else now) + ttl)
    return str(_serializer(_secret_list(secret)).dumps({"c": call_id, "e": expires}))


def verify(
    token: str | None,
    call_id: str,
    *,
    secret: bytes | str | Sequence[bytes | str] | None = None,
    now: float | None = None,
) -> int:
    """The token's expiry (Unix seconds) if it admits its bearer to ``call_id`` now;
    otherwise :class:`TokenError` with code ``token_missing``, ``token_invalid``,
    ``token_expired`` or ``token_wrong_call``."""
    if not token:
        raise TokenError("token_missing", "this session needs ?token= (minted for its call_id)")
    try:
        claims: Any = _serializer(_secret_list(secret)).loads(token)
    except BadSignature:
        raise TokenError("token_invalid", "the token is malformed or not signed by us") from None
    if not (
        isinstance(claims, dict)
        and isinstance(claims.get("c"), str)
        and isinstance(claims.get("e"), int)
    ):
        raise TokenError("token_invalid", "the token does not carry a call_id and expiry")
    if claims["c"] != call_id:
        raise TokenError("token_wrong_call", "the token was minted for another call_id")
    expires: int = claims["e"]
    if expires <= (time.time() if now is None else now):
        raise TokenError("token_expired", "the token has expired: fetch a new one")
    return expires


def _secret_list(secret: bytes | str | Sequence[bytes | str] | None) -> list[bytes | str]:
    if secret is None:  # the convenience form: BRIDGE_WIDGET_SECRET from the environment
        return list(Settings().widget_secrets())
    if isinstance(secret, bytes | str):
        return [secret]
    return list(secret)
