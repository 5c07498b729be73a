"""Typed keys for everything the application shares between handlers."""

from __future__ import annotations

import asyncio

import aiohttp
from aiohttp import web

from bridge.config import Settings
from bridge.hub import Hub
from bridge.limits import SocketSlots
from bridge.metrics import Metrics
from bridge.upstream import Forwarder

SETTINGS = web.AppKey("settings", Settings)
HUB = web.AppKey("hub", Hub)
METRICS = web.AppKey("metrics", Metrics)
SOCKETS = web.AppKey("sockets", set[web.WebSocketResponse])
SLOTS = web.AppKey("socket_slots", SocketSlots)
HTTP = web.AppKey("http", aiohttp.ClientSession)
FORWARDER = web.AppKey("forwarder", Forwarder)
BACKGROUND = web.AppKey("background", set[asyncio.Task[None]])
