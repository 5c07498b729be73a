"""Side-by-side benchmark of the bridge, a bare aiohttp floor (B0) and python-socketio
(B1 in memory, B2 on Redis). Run it with ``python -m bench`` (see ``--help``)."""
