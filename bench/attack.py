"""``python -m bench.attack --port P``: the attacker of the under-attack workload, a process
of its own on the load generator's core, sending only to 127.0.0.1.

Unauthenticated, as anyone on the internet could: ``--bombs`` threads each post a gzip
bomb (about 1 GB of zeros in under 1 MiB, as ``tests/test_edge.py`` builds it), read the
answer (413 expected) and post the next, continuously; ``--stalled`` threads each hold a
connection that sent a callback's headers and one byte of a 1 MB body, read the answer
(408 expected, after ``BRIDGE_BODY_TIMEOUT``) and open the next. Bounded: it stops when
its stdin closes, after ``--seconds``, or after ``--max-requests``, whichever comes first.

Prints one JSON line once the bomb is built and the stalled connections are open
(``{"ready": true}``), one with the counts so far for each line read on stdin, and one
with the counts when it stops.
"""

from __future__ import annotations

import argparse
import json
import socket
import struct
import sys
import threading
import time
import zlib
from collections import Counter

MiB = 1 << 20
WAIT = 15.0  # bounds every read
STALLED_HEAD = (
    b"POST /webhooks/airudder HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    b"Content-Type: application/json\r\nContent-Length: 1000000\r\n\r\n{"
)


def gzip_bomb(megabytes: int = 953) -> bytes:
    """A valid gzip stream of ``megabytes`` MiB of zeros, about 1/1000 of that in size (a
    copy of ``tests.test_edge.bomb``: after a full flush every MiB of zeros compresses to
    the very same bytes)."""
    deflate = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    block = deflate.compress(bytes(MiB)) + deflate.flush(zlib.Z_FULL_FLUSH)
    crc = 0
    for _ in range(megabytes):
        crc = zlib.crc32(bytes(MiB), crc)
    head, tail = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff", struct.pack("<II", crc, 0)
    return head + block * megabytes + b"\x03\x00" + tail


def bomb_request(body: bytes) -> bytes:
    head = (
        b"POST /webhooks/airudder HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        b"Content-Type: application/json\r\nContent-Encoding: gzip\r\n"
        b"Content-Length: %d\r\n\r\n" % len(body)
    )
    return head + body


def status_of(sock: socket.socket) -> str:
    """Read to the end: the answer's status code, "closed" (EOF without an answer) or
    "error" (reset, timeout)."""
    answer = b""
    try:
        while chunk := sock.recv(65536):
            answer += chunk
    except OSError:
        if not answer:
            return "error"
    if not answer:
        return "closed"
    parts = answer.split(b" ", 2)
    return parts[1].decode("latin-1") if len(parts) > 1 else "garbage"


class Attack:
    def __init__(self, port: int, deadline: float, max_requests: int) -> None:
        self.port = port
        self.deadline = deadline
        self.max_requests = max_requests
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.bombs: Counter[str] = Counter()
        self.stalled: Counter[str] = Counter()
        self.started = 0
        self.opened = threading.Semaphore(0)

    def _go(self) -> bool:
        """Whether to send one more request (and count it)."""
        with self.lock:
            if self.stop.is_set() or time.monotonic() > self.deadline:
                return False
            if self.started >= self.max_requests:
                return False
            self.started += 1
            return True

    def _connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=WAIT)

    def bomber(self, request: bytes) -> None:
        while self._go():
            try:
                with self._connect() as sock:
                    sock.sendall(request)
                    status = status_of(sock)
            except OSError:
                status = "error"
            with self.lock:
                self.bombs[status] += 1

    def staller(self) -> None:
        first = True
        while self._go():
            try:
                with self._connect() as sock:
                    sock.sendall(STALLED_HEAD)
                    if first:
                        self.opened.release()
                        first = False
                    status = status_of(sock)
            except OSError:
                status = "error"
            with self.lock:
                self.stalled[status] += 1
        if first:
            self.opened.release()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.attack", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--bombs", type=int, default=4, help="bombs in flight at once")
    parser.add_argument("--stalled", type=int, default=50, help="stalled bodies held")
    parser.add_argument("--seconds", type=float, default=120.0, help="stop after this long")
    parser.add_argument("--max-requests", type=int, default=100_000)
    args = parser.parse_args()

    body = gzip_bomb()
    request = bomb_request(body)
    attack = Attack(args.port, time.monotonic() + args.seconds, args.max_requests)
    threads = [threading.Thread(target=attack.staller, daemon=True) for _ in range(args.stalled)]
    threads += [
        threading.Thread(target=attack.bomber, args=(request,), daemon=True)
        for _ in range(args.bombs)
    ]
    cpu0, t0 = time.process_time(), time.monotonic()
    for thread in threads:
        thread.start()
    for _ in range(args.stalled):
        attack.opened.acquire(timeout=WAIT)
    print(json.dumps({"ready": True, "bomb_bytes": len(body)}), flush=True)

    # A line on stdin: print the counts so far (the workload's phases); stdin closed (or
    # the deadline): stop and wait for the threads.
    def watch_stdin() -> None:
        for _ in sys.stdin:
            with attack.lock:
                counts = {"bombs": dict(attack.bombs), "stalled": dict(attack.stalled)}
            print(json.dumps(counts), flush=True)
        attack.stop.set()

    threading.Thread(target=watch_stdin, daemon=True).start()
    while not attack.stop.is_set() and time.monotonic() < attack.deadline:
        attack.stop.wait(0.1)
    attack.stop.set()
    for thread in threads:
        thread.join(WAIT * 2)
    wall = time.monotonic() - t0
    with attack.lock:
        report = {
            "seconds": round(wall, 1),
            "bomb_bytes": len(body),
            "bomb_inflated_mb": 953,
            "bombs_in_flight": args.bombs,
            "stalled_held": args.stalled,
            "bombs": dict(attack.bombs),
            "stalled": dict(attack.stalled),
            "requests": attack.started,
            "attacker_cpu_percent": round(100 * (time.process_time() - cpu0) / wall, 1),
        }
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
