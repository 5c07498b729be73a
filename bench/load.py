"""The load generator: signed callbacks out (aiohttp client), frames in (raw WebSocket
clients, :mod:`bench.rawws`), latency from the send time that travels in each message.

Every callback carries the seed's list message with ``[bench n=N t=T]`` appended to its
text: N makes each callback unique (the bridge drops retried duplicates), T is
``time.monotonic_ns()`` at send time. Sender and receivers are one process, so one clock.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import time
from dataclasses import dataclass, field

import aiohttp
import orjson

from bench import rawws
from bench.servers import SECRET
from bridge.config import SignScheme
from bridge.demo import samples
from bridge.vendor import signing

MARK = re.compile(rb"\[bench n=\d+ t=(\d+)\]")
REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=10)
CONNECT_TIMEOUT = 30.0
DRAIN_SECONDS = 3.0  # after the last callback, how long late frames may still arrive
MAX_BEHIND = 2.0  # a fixed-rate run this far behind its schedule stops: "overloaded"


def call_ids(count: int, prefix: str = "call") -> list[str]:
    return [f"{prefix}-{i:05d}" for i in range(count)]


class Callbacks:
    """Signed callback bodies, round-robin over the call_ids."""

    def __init__(self, ids: list[str]) -> None:
        message = samples.sample_message("list")
        message["content"]["interactive"]["body"]["text"] += " [bench __MARK__]"
        self.template = orjson.dumps(samples.callback("__CALL__", message))
        self.ids = [i.encode() for i in ids]
        self.counter = itertools.count()
        self.secret = SECRET.encode()

    def next(self) -> tuple[int, bytes, dict[str, str]]:
        """(index of the call_id, body, headers) of a fresh callback stamped now."""
        n = next(self.counter)
        index = n % len(self.ids)
        mark = f"n={n} t={time.monotonic_ns()}".encode()
        body = self.template.replace(b"__CALL__", self.ids[index]).replace(b"__MARK__", mark)
        sign = signing.sign(body, self.secret, SignScheme.HMAC_SHA256_HEX)
        return index, body, {"Content-Type": "application/json", "X-AIRudder-Sign": sign}


@dataclass
class Recorder:
    """Latencies of the message frames stamped at or after ``record_from``."""

    record_from: int = 2**63  # nothing is recorded until the measurement starts
    latencies_ns: list[int] = field(default_factory=list)
    sent_ns: list[int] = field(default_factory=list)
    frames: int = 0

    def on_message(self, data: bytes) -> None:
        now = time.monotonic_ns()
        self.frames += 1
        match = MARK.search(data)
        if match:
            sent = int(match.group(1))
            if sent >= self.record_from:
                self.latencies_ns.append(now - sent)
                self.sent_ns.append(sent)

    def percentiles(self) -> dict[str, float | None]:
        return {
            "p50_ms": _quantile_ms(self.latencies_ns, 0.50),
            "p99_ms": _quantile_ms(self.latencies_ns, 0.99),
            "p999_ms": _quantile_ms(self.latencies_ns, 0.999),
            "p99_window_median_ms": self.window_median_p99(),
        }

    def window_median_p99(self, window_ns: int = 1_000_000_000) -> float | None:
        """The median of the p99s of each second: a neighbour's burst on a shared
        machine spoils a second or two, not the figure."""
        windows: dict[int, list[int]] = {}
        for sent, latency in zip(self.sent_ns, self.latencies_ns, strict=True):
            windows.setdefault(sent // window_ns, []).append(latency)
        p99s = sorted(p for w in windows.values() if (p := _quantile_ms(w, 0.99)) is not None)
        return p99s[len(p99s) // 2] if p99s else None


def _quantile_ms(values_ns: list[int], q: float) -> float | None:
    if not values_ns:
        return None
    ordered = sorted(values_ns)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1e6, 3)


class Receivers:
    """Subscribed sockets: ``per_call`` for each call_id, of which the first
    ``stalled_calls`` call_ids have their last socket stalled (never reading).

    They are :mod:`bench.rawws` sockets: the frame is handled in ``data_received``,
    with no task switch per message, so the load generator's one core goes to sending."""

    def __init__(self, port: int, socketio: bool, recorder: Recorder) -> None:
        self.port = port
        self.socketio = socketio
        self.recorder = recorder
        self.active: list[rawws.RawSocket] = []
        self.stalled: list[rawws.RawSocket] = []
        self.active_per_call: list[int] = []

    async def open(self, ids: list[str], per_call: int, stalled_calls: int = 0) -> None:
        self.active_per_call = [per_call - (1 if i < stalled_calls else 0) for i in range(len(ids))]
        gate = asyncio.Semaphore(64)

        async def one(call_id: str, stall: bool) -> None:
            async with gate:
                socket = await rawws.connect(
                    self.port,
                    call_id,
                    socketio=self.socketio,
                    stall=stall,
                    on_message=None if stall else self.recorder.on_message,
                )
                (self.stalled if stall else self.active).append(socket)

        jobs = [
            one(call_id, stall=(i < stalled_calls and k == per_call - 1))
            for i, call_id in enumerate(ids)
            for k in range(per_call)
        ]
        async with asyncio.timeout(CONNECT_TIMEOUT + len(jobs) / 50):
            await asyncio.gather(*jobs)

    @property
    def closed_early(self) -> int:
        return sum(1 for s in self.active if s.closed.done())

    def close(self) -> None:
        rawws.close_all(self.active + self.stalled)


@dataclass
class SendResult:
    ok: int  # 200s answered inside the measured window
    errors: int
    seconds: float
    expected_frames: int  # frames the active sockets should get for the measured callbacks
    total_ok: int = 0  # 200s including the warm-up

    @property
    def rate(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0


class Sender:
    def __init__(self, port: int, callbacks: Callbacks, active_per_call: list[int]) -> None:
        self.url = f"http://127.0.0.1:{port}/webhooks/airudder"
        self.callbacks = callbacks
        self.active_per_call = active_per_call or [0] * len(callbacks.ids)

    async def _post(self, session: aiohttp.ClientSession) -> tuple[bool, int]:
        """One signed callback: (answered 200, index of its call_id)."""
        index, body, headers = self.callbacks.next()
        try:
            async with session.post(self.url, data=body, headers=headers) as resp:
                await resp.read()
                return resp.status == 200, index
        except (aiohttp.ClientError, TimeoutError):
            return False, index

    def _count(self, result: SendResult, ok: bool, index: int, measured: bool = True) -> None:
        result.total_ok += ok
        if not measured:
            return
        if ok:
            result.ok += 1
            result.expected_frames += self.active_per_call[index]
        else:
            result.errors += 1

    def _session(self, concurrency: int) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(limit=concurrency)
        return aiohttp.ClientSession(connector=connector, timeout=REQUEST_TIMEOUT)

    async def max_rate(
        self, concurrency: int, warmup: float, seconds: float, recorder: Recorder
    ) -> SendResult:
        """As fast as the server answers, ``concurrency`` callbacks in flight."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        measure_from, end = start + warmup, start + warmup + seconds
        result = SendResult(0, 0, seconds, 0)

        async def worker() -> None:
            while loop.time() < end:
                ok, index = await self._post(session)
                self._count(result, ok, index, measure_from <= loop.time() < end)

        async def start_measuring() -> None:
            await asyncio.sleep(warmup)
            recorder.record_from = time.monotonic_ns()

        async with self._session(concurrency) as session:
            await asyncio.gather(start_measuring(), *(worker() for _ in range(concurrency)))
        return result

    async def fixed_rate(
        self, rate: float, max_inflight: int, warmup: float, seconds: float, recorder: Recorder
    ) -> tuple[SendResult, float]:
        """Callbacks at ``rate`` per second on a schedule (at most ``max_inflight`` in
        flight); returns the result and how far behind schedule the last one went out.
        A run that falls ``MAX_BEHIND`` seconds behind stops early (the server, or this
        load generator, cannot keep the rate)."""
        loop = asyncio.get_running_loop()
        warm_count, total = int(rate * warmup), int(rate * (warmup + seconds))
        result = SendResult(0, 0, seconds, 0)
        gate = asyncio.Semaphore(max_inflight)
        pending: set[asyncio.Task[None]] = set()
        lag = 0.0

        async def one(measured: bool) -> None:
            try:
                ok, index = await self._post(session)
            finally:
                gate.release()
            self._count(result, ok, index, measured)

        async with self._session(max_inflight) as session:
            start, measured_start = loop.time(), None
            for i in range(total):
                lag = loop.time() - (start + i / rate)
                if lag < 0:
                    await asyncio.sleep(-lag)
                elif lag > MAX_BEHIND:
                    break
                if i == warm_count:
                    recorder.record_from = time.monotonic_ns()
                    measured_start = loop.time()
                await gate.acquire()
                task = asyncio.create_task(one(i >= warm_count))
                pending.add(task)
                task.add_done_callback(pending.discard)
            result.seconds = 0.0 if measured_start is None else loop.time() - measured_start
            if pending:
                await asyncio.wait(pending, timeout=REQUEST_TIMEOUT.total)
        return result, max(lag, 0.0)


async def drain(recorder: Recorder, expected: int, limit: float = DRAIN_SECONDS) -> None:
    """Wait (bounded) for the frames still on their way."""
    for _ in range(int(limit / 0.05)):
        if len(recorder.latencies_ns) >= expected:
            return
        await asyncio.sleep(0.05)
