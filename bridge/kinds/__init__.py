"""Content kinds: one module per kind family, each with its vendor content model(s), its
widget message model(s) and the pure translation between them, registered once.

Every public module of this package is imported here, in name order, so a new family is
one new file (see "Adding a message kind" in the README); the vendor and widget unions
are derived from what is registered (``_registry.py``).
"""

from __future__ import annotations

import importlib
import pkgutil

from bridge.kinds._base import Head, MessageBase, WidgetData, Wire
from bridge.kinds._registry import (
    Kind,
    VendorContent,
    WidgetUnion,
    kinds,
    rebuild_on_change,
    register,
    translate,
    unregister,
)

__all__ = [
    "Head",
    "Kind",
    "MessageBase",
    "VendorContent",
    "WidgetData",
    "WidgetUnion",
    "Wire",
    "kinds",
    "rebuild_on_change",
    "register",
    "translate",
    "unregister",
]

for _module in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    if not _module.startswith("_"):
        importlib.import_module(f"{__name__}.{_module}")
