"""Signing and verifying the ``X-AIRudder-Sign`` header, both ways: callbacks the vendor
sends us, and the person's messages we send the bot (the demo bot checks them like a real
one would). The scheme is a setting because the vendor's spec does not say (DESIGN.md 2)."""

from __future__ import annotations

import base64
import hashlib
import hmac

from bridge.config import Settings, SignScheme

HEADER = "X-AIRudder-Sign"


def sign(body: bytes, secret: bytes, scheme: SignScheme) -> str:
    """The header value a sender with ``secret`` puts on ``body``."""
    if scheme is SignScheme.STATIC:
        return secret.decode()
    digest = hmac.digest(secret, body, hashlib.sha256)  # one-shot: no HMAC object
    if scheme is SignScheme.HMAC_SHA256_BASE64:
        return base64.b64encode(digest).decode()
    return digest.hex()


def verify(body: bytes, header: str | None, secrets: list[bytes], scheme: SignScheme) -> bool:
    """True when ``header`` is a valid signature of ``body`` under any of ``secrets``."""
    if not header or not header.isascii():  # every signature is ASCII; "\xff" is none
        return False
    given = header.strip()
    if scheme is SignScheme.HMAC_SHA256_HEX:
        given = given.lower().removeprefix("sha256=")
    # Check every secret, so the time taken does not tell which one matched.
    ok = False
    for secret in secrets:
        ok |= hmac.compare_digest(given.encode(), sign(body, secret, scheme).encode())
    return ok


def signed_headers(body: bytes, settings: Settings) -> dict[str, str]:
    """JSON headers for ``body``, signed with the first configured secret (if any)."""
    headers = {"Content-Type": "application/json"}
    secrets = settings.signing_secrets()
    if secrets:
        headers[HEADER] = sign(body, secrets[0], settings.signing_scheme)
    return headers


def authentic(body: bytes, header: str | None, settings: Settings) -> bool:
    """``body`` may be trusted: its header verifies, or no secret is set (development)."""
    secrets = settings.signing_secrets()
    return not secrets or verify(body, header, secrets, settings.signing_scheme)
