"""Typed keys for everything the application shares between handlers."""

from __future__ import annotations

import aiohttp
from aiohttp import web

from bridge.config import Settings
from bridge.delivery.forwarder import Forwarder
from bridge.limits import SocketSlots
from bridge.live.fanout import Fanout
from bridge.metrics import Metrics
from bridge.store import Store
from bridge.vendor.signing import Verifier

SETTINGS = web.AppKey("settings", Settings)
STORE = web.AppKey("store", Store)
FANOUT = web.AppKey("fanout", Fanout)
METRICS = web.AppKey("metrics", Metrics)
SOCKETS = web.AppKey("sockets", set[web.WebSocketResponse])
SLOTS = web.AppKey("socket_slots", SocketSlots)
HTTP = web.AppKey("http", aiohttp.ClientSession)
FORWARDER = web.AppKey("forwarder", Forwarder)
VERIFIER = web.AppKey("verifier", Verifier)
