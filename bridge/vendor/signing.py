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
    return Verifier(secrets, scheme).authentic(body, header)


class Verifier:
    """Checks ``X-AIRudder-Sign`` on every callback, against every configured secret (so
    the time taken does not tell which one matched). Made once: each secret's keyed HMAC
    state is copied per body, cheaper than keying a new one, and no setting is read per
    callback."""

    def __init__(self, secrets: list[bytes], scheme: SignScheme) -> None:
        self.scheme = scheme
        self.secrets = secrets
        self._keyed = [hmac.new(secret, digestmod=hashlib.sha256) for secret in secrets]

    @classmethod
    def of(cls, settings: Settings) -> Verifier:
        return cls(settings.signing_secrets(), settings.signing_scheme)

    def authentic(self, body: bytes, header: str | None) -> bool:
        """``body`` may be trusted: ``header`` verifies, or no secret is set (development)."""
        if not self.secrets:
            return True
        if not header or not header.isascii():  # every signature is ASCII; "\xff" is none
            return False
        given = header.strip()
        if self.scheme is SignScheme.HMAC_SHA256_HEX:
            given = given.lower().removeprefix("sha256=")
        expected = given.encode()
        ok = False
        for secret, keyed in zip(self.secrets, self._keyed, strict=True):
            ok |= hmac.compare_digest(expected, self._signature(body, secret, keyed))
        return ok

    def _signature(self, body: bytes, secret: bytes, keyed: hmac.HMAC) -> bytes:
        if self.scheme is SignScheme.STATIC:
            return secret
        mac = keyed.copy()
        mac.update(body)
        if self.scheme is SignScheme.HMAC_SHA256_BASE64:
            return base64.b64encode(mac.digest())
        return mac.hexdigest().encode()


def signed_headers(body: bytes, settings: Settings) -> dict[str, str]:
    """JSON headers for ``body``, signed with the first configured secret (if any)."""
    headers = {"Content-Type": "application/json"}
    secrets = settings.signing_secrets()
    if secrets:
        headers[HEADER] = sign(body, secrets[0], settings.signing_scheme)
    return headers
