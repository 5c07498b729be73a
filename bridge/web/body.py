"""Reading a request body: bounded in time and in size, compressed or not.

The server runs with aiohttp's ``auto_decompress`` off (``bridge.web.server``), so a body
arrives as it was sent. ``read_body`` takes at most ``BRIDGE_MAX_BODY_BYTES`` of it within
``BRIDGE_BODY_TIMEOUT`` seconds, then inflates ``gzip`` or ``deflate`` into at most
``BRIDGE_MAX_BODY_BYTES`` of output: a compression bomb costs the time to inflate the limit
(about a millisecond per MiB), never its full size. Any other encoding is refused (415). All
of this happens before the signature is checked, and every refusal is a JSON answer.
"""

from __future__ import annotations

import asyncio
import zlib

from aiohttp import hdrs, web

from bridge.keys import SETTINGS, VERIFIER
from bridge.refusals import Refusal
from bridge.vendor import signing

GZIP = 16 + zlib.MAX_WBITS
ZLIB = zlib.MAX_WBITS
RAW_DEFLATE = -zlib.MAX_WBITS
# Content-Encoding -> the zlib window bits that read it ("deflate" is zlib-wrapped by the
# RFC, raw by some senders: both are read). Brotli and zstd: the vendor does not use them.
ENCODINGS = {"gzip": GZIP, "x-gzip": GZIP, "deflate": ZLIB}
IDENTITY = ("", "identity")


def too_large(limit: int) -> Refusal:
    return Refusal("body_too_large", f"the body is larger than {limit} bytes", status=413)


def _window(header: str | None) -> int | None:
    """The window bits for ``header``, None for no encoding, or a 415."""
    name = (header or "").strip().lower()
    if name in IDENTITY:
        return None
    if name in ENCODINGS:
        return ENCODINGS[name]
    raise Refusal(
        "unsupported_encoding",
        "Content-Encoding must be gzip, deflate or identity (one of them)",
        status=415,
    )


async def read_body(request: web.Request) -> bytes:
    """The body, decoded; :class:`Refusal` (400, 408, 413, 415) when it cannot be had."""
    settings = request.app[SETTINGS]
    limit = settings.max_body_bytes
    window = _window(request.headers.get(hdrs.CONTENT_ENCODING))
    if request.content_length is not None and request.content_length > limit:
        raise too_large(limit)  # without reading a byte of it
    try:
        if request.content.is_eof():  # it all came with the head: nothing to wait for
            raw = request.content.read_nowait()
            if len(raw) > limit:  # chunked: no Content-Length said so beforehand
                raise too_large(limit)
        else:
            async with asyncio.timeout(settings.body_timeout):
                raw = await request.read()  # stops past client_max_size (= limit): 413
    except TimeoutError:
        raise Refusal(
            "body_timeout",
            f"the body did not arrive within {settings.body_timeout:g} s",
            status=408,
        ) from None
    except web.RequestPayloadError:  # a broken chunked encoding, a short body
        raise Refusal("bad_body", "the body is malformed or incomplete") from None
    except web.HTTPRequestEntityTooLarge:
        raise too_large(limit) from None
    if window is None:
        return raw
    return inflate(raw, window, limit)


async def read_signed(request: web.Request) -> bytes:
    """The body, once its ``X-AIRudder-Sign`` verifies (or no secret is set: development);
    401 ``bad_signature`` otherwise. Checked on the raw bytes, before any parsing."""
    body = await read_body(request)
    if not request.app[VERIFIER].authentic(body, request.headers.get(signing.HEADER)):
        raise Refusal("bad_signature", f"{signing.HEADER} is missing or does not match", status=401)
    return body


def inflate(raw: bytes, window: int, limit: int) -> bytes:
    """``raw`` decompressed: at most ``limit`` bytes are ever produced."""
    try:
        return _inflate(raw, window, limit)
    except zlib.error:
        if window != ZLIB:
            raise _bad_encoding() from None
    try:
        return _inflate(raw, RAW_DEFLATE, limit)  # "deflate" sent without its zlib header
    except zlib.error:
        raise _bad_encoding() from None


def _inflate(raw: bytes, window: int, limit: int) -> bytes:
    inflater = zlib.decompressobj(window)
    out = inflater.decompress(raw, limit + 1)
    if len(out) > limit:
        raise too_large(limit)
    if not inflater.eof or inflater.unused_data:
        raise zlib.error("truncated, or data after the compressed stream")
    return out


def _bad_encoding() -> Refusal:
    return Refusal("bad_encoding", "the body is not valid for its Content-Encoding")
