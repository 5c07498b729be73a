"""``airudder-bridge forget CALL_ID``: delete one conversation everywhere.

A running bridge is asked over ``POST /admin/forget`` (signed); its store may be locked
(SQLite) or in its memory. When nobody answers, a store on disk or on Redis is opened and
the conversation deleted there directly."""

from __future__ import annotations

import asyncio

import aiohttp

from bridge.config import Settings
from bridge.store import open_store
from bridge.vendor import signing
from bridge.web import admin


def local_url(settings: Settings) -> str:
    wildcard = settings.host in ("", "0.0.0.0", "::")  # noqa: S104 - compared, not bound
    host = "127.0.0.1" if wildcard else settings.host
    return f"http://[{host}]:{settings.port}" if ":" in host else f"http://{host}:{settings.port}"


async def forget(settings: Settings, call_id: str, url: str | None = None) -> str:
    """What happened, in one line; raises RuntimeError with the reason when it could not."""
    body = admin.request_body(call_id)
    target = (url or local_url(settings)).rstrip("/") + admin.PATH
    timeout = aiohttp.ClientTimeout(total=10)
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as http,
            http.post(target, data=body, headers=signing.signed_headers(body, settings)) as resp,
        ):
            answer = await resp.json(content_type=None)
            if resp.status != 200:
                raise RuntimeError(f"{target} answered {resp.status}: {answer}")
            return _said(call_id, bool(answer.get("forgotten")))
    except aiohttp.ClientConnectionError:
        if settings.store_kind() == "memory":
            raise RuntimeError(f"no bridge answers at {target}; a memory store is gone") from None
    store = await open_store(settings)  # nobody serves it: delete it where it is kept
    try:
        return _said(call_id, await store.forget(call_id))
    finally:
        await store.close()


def _said(call_id: str, forgotten: bool) -> str:
    return f"forgot {call_id}" if forgotten else f"nothing was kept for {call_id}"


def run(settings: Settings, call_id: str, url: str | None) -> str:
    return asyncio.run(forget(settings, call_id, url))
