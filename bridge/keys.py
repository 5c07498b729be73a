"""Typed keys for everything the application shares between handlers."""

from __future__ import annotations

from aiohttp import web

from bridge.config import Settings
from bridge.hub import Hub
from bridge.limits import SocketSlots
from bridge.metrics import Metrics

SETTINGS = web.AppKey("settings", Settings)
HUB = web.AppKey("hub", Hub)
METRICS = web.AppKey("metrics", Metrics)
SOCKETS = web.AppKey("sockets", set[web.WebSocketResponse])
SLOTS = web.AppKey("socket_slots", SocketSlots)
