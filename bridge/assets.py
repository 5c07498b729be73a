"""Where the pages (``templates/``) and the widget (``static/``) are, installed or not.

In the repository they sit at the top, beside ``bridge/``; a built wheel carries them as
``bridge/templates`` and ``bridge/static`` (pyproject.toml's force-include). One lookup
serves both: the copy inside the package first, then the source checkout's.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def asset_dir(name: str) -> Path:
    """``templates`` or ``static``: the folder that holds it (the packaged copy first)."""
    for candidate in (PACKAGE_DIR / name, PACKAGE_DIR.parent / name):
        if candidate.is_dir():
            return candidate
    # Neither: name the packaged path, so that the settings check says what is missing.
    return PACKAGE_DIR / name
