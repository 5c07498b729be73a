"""Widget tokens are standard JWTs: made without the bridge's code they verify, and the
bridge refuses what a JWT must not be (another alg, another aud, no exp)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import shutil
import subprocess
import time
from typing import Any

import pytest

from bridge import tokens
from tests.servers import ROOT

SECRET = "jwt-test-secret-with-thirty-two-b"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hand_made(claims: dict[str, Any], header: dict[str, Any] | None = None,
              secret: str = SECRET, digest: Any = hashlib.sha256) -> str:  # fmt: skip
    """A JWT from the RFC alone: no PyJWT, no bridge code."""
    head = b64(json.dumps(header or {"alg": "HS256", "typ": "JWT"}).encode())
    body = b64(json.dumps(claims).encode())
    signature = hmac.new(secret.encode(), f"{head}.{body}".encode(), digest).digest()
    return f"{head}.{body}.{b64(signature)}"


def claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {"sub": "c-1", "aud": tokens.AUDIENCE, "iat": now, "exp": now + 60}
    return {k: v for k, v in {**base, **changes}.items() if v is not None}


def test_a_token_made_from_the_rfc_alone_verifies() -> None:
    assert tokens.verify(hand_made(claims()), "c-1", secret=SECRET) > time.time()


def test_the_security_docs_node_example_mints_a_token_the_bridge_accepts() -> None:
    node = shutil.which("node")
    assert node, "node is not installed (scripts/test installs it)"
    doc = (ROOT / "docs" / "security.md").read_text()
    match = re.search(r"<!-- mint-node -->\s*```js\n(.*?)```", doc, re.S)
    assert match, "the Node example in docs/security.md is gone"
    done = subprocess.run(
        [node, "--input-type=module", "-e", match.group(1), "c-1"],
        env={"BRIDGE_WIDGET_SECRET": f"{SECRET},old-secret"},
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    token = done.stdout.strip()
    assert tokens.verify(token, "c-1", secret=[SECRET]) > time.time()
    with pytest.raises(tokens.TokenError) as refused:
        tokens.verify(token, "c-2", secret=SECRET)
    assert refused.value.code == "token_wrong_call"


@pytest.mark.parametrize(
    ("token", "code"),
    [
        (hand_made(claims(aud="another-service")), "token_invalid"),
        (hand_made(claims(aud=None)), "token_invalid"),
        (hand_made(claims(exp=None)), "token_invalid"),
        (hand_made(claims(sub=None)), "token_invalid"),
        (hand_made(claims(exp=int(time.time()) - 1)), "token_expired"),
        (hand_made(claims(), secret="another-secret-of-thirty-two-byt"), "token_invalid"),
        (hand_made(claims(), {"alg": "HS512"}, digest=hashlib.sha512), "token_invalid"),
        (hand_made(claims(), {"alg": "none"}).rsplit(".", 1)[0] + ".", "token_invalid"),
        (hand_made(claims(exp="soon")), "token_invalid"),
    ],
    ids=["aud", "no-aud", "no-exp", "no-sub", "expired", "secret", "hs512", "none", "exp-str"],
)
def test_what_a_widget_token_must_not_be_is_refused(token: str, code: str) -> None:
    with pytest.raises(tokens.TokenError) as refused:
        tokens.verify(token, "c-1", secret=SECRET)
    assert refused.value.code == code


def test_mint_is_a_plain_hs256_jwt() -> None:
    token = tokens.mint("c-1", 60, secret=[SECRET, "old"])
    head, body, signature = token.split(".")
    pad = lambda s: s + "=" * (-len(s) % 4)  # noqa: E731
    assert json.loads(base64.urlsafe_b64decode(pad(head))) == {"alg": "HS256", "typ": "JWT"}
    payload = json.loads(base64.urlsafe_b64decode(pad(body)))
    assert payload["sub"] == "c-1" and payload["aud"] == tokens.AUDIENCE
    assert payload["exp"] - payload["iat"] == 60
    expected = hmac.new(SECRET.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    assert signature == b64(expected)
