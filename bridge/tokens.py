"""Widget tokens: which browser may join which session, and until when.

A website's back end mints a token for the ``call_id`` its visitor chats on and puts it in
the page; the widget sends it as ``?token=`` when it opens ``/ws/{call_id}``. A token is a
standard JWT (RFC 7519) signed with HS256 under ``BRIDGE_WIDGET_SECRET``, so any JWT
library can mint one (docs/security.md: Python, Node, PHP):

    header  {"alg": "HS256", "typ": "JWT"}
    claims  {"sub": call_id, "aud": "airudder-bridge:widget", "exp": expiry, "iat": now}

``sub``, ``aud`` and ``exp`` are required; ``aud`` keeps tokens made with the same secret
for other purposes out, and only HS256 is accepted (never ``none``). The secret setting is
comma-separated for rotation: the first secret signs, every listed secret verifies.

    from bridge import tokens
    token = tokens.mint(call_id, ttl=3600)   # secret from BRIDGE_WIDGET_SECRET
"""

from __future__ import annotations

import contextlib
import os
import time
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import jwt
from pydantic import TypeAdapter, ValidationError

from bridge.refusals import Refusal
from bridge.vendor.airudder import CallId

ALGORITHM = "HS256"
AUDIENCE = "airudder-bridge:widget"
MAX_TTL = 366 * 24 * 3600
SECRET_VARIABLE = "BRIDGE_WIDGET_SECRET"  # noqa: S105 - its name, not a secret
_CALL_ID: TypeAdapter[str] = TypeAdapter(CallId)

Secret = bytes | str | Sequence[bytes | str] | None


class TokenError(Refusal):
    """A token that does not admit its bearer: ``code`` says why (401, or 403 for a token
    of another call_id)."""

    status = 401

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(code, detail, status=403 if code == "token_wrong_call" else None)


def mint(
    call_id: str, ttl: float = 3600, *, secret: Secret = None, now: float | None = None
) -> str:
    """A token that lets its bearer join ``call_id`` for ``ttl`` seconds.

    ``secret`` defaults to ``BRIDGE_WIDGET_SECRET`` (its first entry signs). A call_id the
    bridge would refuse (1-128 of ``A-Z a-z 0-9 _ . : @ -``) is a ValueError here too."""
    try:
        _CALL_ID.validate_python(call_id)
    except ValidationError:
        raise ValueError("call_id must be 1-128 characters of A-Z a-z 0-9 _ . : @ -") from None
    if not 0 < ttl <= MAX_TTL:
        raise ValueError(f"ttl must be between 1 second and {MAX_TTL} seconds")
    issued = int(time.time() if now is None else now)
    claims = {"sub": call_id, "aud": AUDIENCE, "iat": issued, "exp": int(issued + ttl)}
    with _short_keys_allowed():
        return jwt.encode(claims, _secret_list(secret)[0], algorithm=ALGORITHM)


def verify(
    token: str | None, call_id: str, *, secret: Secret = None, now: float | None = None
) -> int:
    """The token's expiry (Unix seconds) if it admits its bearer to ``call_id`` now;
    otherwise :class:`TokenError` with code ``token_missing``, ``token_invalid``,
    ``token_expired`` or ``token_wrong_call``."""
    if not token:
        raise TokenError("token_missing", "this session needs ?token= (minted for its call_id)")
    claims = _decode(token, _secret_list(secret))
    expires, subject = claims.get("exp"), claims.get("sub")
    if not isinstance(expires, int | float) or isinstance(expires, bool):
        raise TokenError("token_invalid", "the token's exp is not a number")
    if subject != call_id:
        raise TokenError("token_wrong_call", "the token was minted for another call_id")
    if expires <= (time.time() if now is None else now):
        raise TokenError("token_expired", "the token has expired: fetch a new one")
    return int(expires)


def _decode(token: str, secrets: list[bytes]) -> dict[str, Any]:
    for key in secrets:
        try:
            with _short_keys_allowed():
                claims: dict[str, Any] = jwt.decode(
                    token,
                    key,
                    algorithms=[ALGORITHM],
                    audience=AUDIENCE,
                    # exp is checked below against `now`, so that tests can move the clock.
                    options={"require": ["sub", "aud", "exp"], "verify_exp": False},
                )
            return claims
        except jwt.InvalidSignatureError:
            continue  # maybe the next secret (rotation)
        except jwt.InvalidAudienceError:
            raise TokenError("token_invalid", f"the token's aud is not {AUDIENCE}") from None
        except jwt.MissingRequiredClaimError as exc:
            raise TokenError("token_invalid", f"the token has no {exc.claim} claim") from None
        except jwt.InvalidTokenError:
            break
    raise TokenError("token_invalid", "the token is malformed or not signed by us")


def secrets_from_env() -> list[bytes]:
    """``BRIDGE_WIDGET_SECRET``'s secrets, read alone: no other setting can break minting."""
    raw = os.environ.get(SECRET_VARIABLE, "")
    return [s.strip().encode() for s in raw.split(",") if s.strip()]


def _secret_list(secret: Secret) -> list[bytes]:
    if secret is None:  # the convenience form: BRIDGE_WIDGET_SECRET from the environment
        found = secrets_from_env()
    elif isinstance(secret, bytes | str):
        found = [secret.encode() if isinstance(secret, str) else secret]
    else:
        found = [s.encode() if isinstance(s, str) else s for s in secret]
    if not found:
        raise ValueError(f"no widget secret: set {SECRET_VARIABLE}")
    return found


@contextlib.contextmanager
def _short_keys_allowed() -> Iterator[None]:
    """RFC 7518 asks for 32-byte HS256 keys; the settings check warns about a shorter
    BRIDGE_WIDGET_SECRET once at start-up instead of PyJWT on every token."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", jwt.InsecureKeyLengthWarning)
        yield
