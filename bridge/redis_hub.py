"""The session store on Redis, for several bridge processes serving one conversation.

Per call_id (the ``{call_id}`` hash tag keeps a session's keys on one cluster slot):

=========================  ======  ==========================================================
``bridge:{id}:meta``       hash    ``epoch``, ``seq`` (the last seq given out), ``envelope``
``bridge:{id}:log``        stream  one entry per message, id ``<seq>-0``, field ``f``: the frame
``bridge:{id}:keys``       zset    de-dup key -> seq (kept for twice the history)
``bridge:{id}:ids``        zset    message id -> seq (for ``find``)
``bridge:{id}:answered``   hash    seq of a choices message -> the option picked
``bridge:{id}:statuses``   hash    seq of a person's message -> its latest status frame
``bridge:{id}:live``       pubsub  ``"<seq> <epoch> <frame>"``, seq 0 for a status frame
=========================  ======  ==========================================================

Every write is one Lua script, so two processes appending to one call_id at once never
reuse or skip a seq, and a message is published only once it is stored. Every script
refreshes the idle expiry of all the keys together; sessions with local sockets are
refreshed periodically as well. A session *is* its epoch: keys found without one (an
expiry caught half-way) are wiped and the session starts over under a new epoch.

Fan-out: one pub/sub connection per process, subscribed to the channels of the call_ids
that have local sockets. Pub/sub may drop frames (a reconnect, a slow subscriber); sockets
then see a seq gap and fill it from the stream, and after every (re)subscription the
latest message is pushed again so a socket that missed the tail of a conversation notices.
A frame of another epoch than the one local sockets replayed means Redis lost the session
(restarted without persistence): those sockets are closed to re-sync.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, cast

import orjson
from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import OutOfMemoryError, ReadOnlyError, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from bridge.airudder import Envelope
from bridge.config import Settings
from bridge.frames import DeliveryStatus, StatusFrame
from bridge.hub import Frame, Hub, Outbox, Refused, Replay, StoreUnavailable
from bridge.widget import WIDGET_MESSAGE, ReplyTo, WidgetMessage, frame_parts

log = logging.getLogger(__name__)

PREFIX = "bridge:"
# Redis is down, loading, full or a read-only replica after a fail-over: try again later.
UNAVAILABLE = (RedisConnectionError, RedisTimeoutError, OSError, OutOfMemoryError, ReadOnlyError)
RECONNECT_DELAYS = (0.05, 5.0)  # pub/sub back-off: first and longest wait, doubling between

# Shared head of every script. KEYS are the six of SessionKeys, in that order.
_SESSION = """
local function open_session(epoch)
  local current = redis.call('HGET', KEYS[1], 'epoch')
  if current then return current end
  redis.call('DEL', KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6])
  redis.call('HSET', KEYS[1], 'epoch', epoch, 'seq', 0)
  return epoch
end
local function touch(ttl)
  for i = 1, #KEYS do redis.call('PEXPIRE', KEYS[i], ttl) end
end
"""

# ARGV: ttl_ms, limit, new epoch, channel, envelope|'', answer seq|'', answer option,
# then per item: de-dup key, message id, frame head, frame tail (the seq goes between).
_APPEND = (
    _SESSION
    + """
local ttl, limit = tonumber(ARGV[1]), tonumber(ARGV[2])
local epoch = open_session(ARGV[3])
local last = tonumber(redis.call('HGET', KEYS[1], 'seq'))
local first = last - redis.call('XLEN', KEYS[2]) + 1
local fresh = false
for i = 8, #ARGV, 4 do
  if not redis.call('ZSCORE', KEYS[3], ARGV[i]) then fresh = true end
end
if ARGV[6] ~= '' and fresh then
  if redis.call('HEXISTS', KEYS[5], ARGV[6]) == 1 then return {'already_answered'} end
  redis.call('HSET', KEYS[5], ARGV[6], ARGV[7])
end
if ARGV[5] ~= '' then redis.call('HSET', KEYS[1], 'envelope', ARGV[5]) end
local seqs = {'ok'}
for i = 8, #ARGV, 4 do
  local seq = redis.call('ZSCORE', KEYS[3], ARGV[i])
  if seq then
    seq = tonumber(seq)
  else
    seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
    local frame = ARGV[i + 2] .. seq .. ARGV[i + 3]
    redis.call('XADD', KEYS[2], 'MAXLEN', limit, seq .. '-0', 'f', frame)
    redis.call('ZADD', KEYS[3], seq, ARGV[i])
    redis.call('ZADD', KEYS[4], seq, ARGV[i + 1])
    redis.call('PUBLISH', ARGV[4], seq .. ' ' .. epoch .. ' ' .. frame)
  end
  seqs[#seqs + 1] = seq
end
last = tonumber(redis.call('HGET', KEYS[1], 'seq'))
local kept = last - redis.call('XLEN', KEYS[2]) + 1
for seq = first, kept - 1 do
  redis.call('HDEL', KEYS[5], seq)
  redis.call('HDEL', KEYS[6], seq)
end
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', '(' .. kept)
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', '(' .. (kept - limit))
touch(ttl)
return seqs
"""
)

# ARGV: ttl_ms, new epoch, after|'', epoch|''. Returns epoch, last seq, recovered (0/1),
# the frames after the start (they always end at the last seq) and all status frames.
_REPLAY = (
    _SESSION
    + """
local epoch = open_session(ARGV[2])
local last = tonumber(redis.call('HGET', KEYS[1], 'seq'))
local first = last - redis.call('XLEN', KEYS[2]) + 1
local after = tonumber(ARGV[3])
local recovered = after ~= nil and (ARGV[4] == '' or ARGV[4] == epoch)
  and first <= after + 1 and after <= last
local start = 0
if recovered then start = after end
local frames = {}
for _, entry in ipairs(redis.call('XRANGE', KEYS[2], (start + 1) .. '-0', '+')) do
  frames[#frames + 1] = entry[2][2]
end
touch(tonumber(ARGV[1]))
return {epoch, last, recovered and 1 or 0, start, frames, redis.call('HGETALL', KEYS[6])}
"""
)

# ARGV: ttl_ms, new epoch, channel, seq, status frame.
_STATUS = (
    _SESSION
    + """
local epoch = open_session(ARGV[2])
redis.call('HSET', KEYS[6], ARGV[4], ARGV[5])
redis.call('PUBLISH', ARGV[3], '0 ' .. epoch .. ' ' .. ARGV[5])
touch(tonumber(ARGV[1]))
return 1
"""
)


_KEY_SUFFIXES = ("meta", "log", "keys", "ids", "answered", "statuses")


class SessionKeys(NamedTuple):
    meta: str
    log: str
    dedup: str
    ids: str
    answered: str
    statuses: str

    @classmethod
    def of(cls, call_id: str) -> SessionKeys:
        base = f"{PREFIX}{{{call_id}}}:"
        return cls(*(base + name for name in _KEY_SUFFIXES))


def channel(call_id: str) -> str:
    return f"{PREFIX}{{{call_id}}}:live"


def call_id_of(channel_name: bytes) -> str:
    return channel_name.decode()[len(PREFIX) + 1 : -len("}:live")]


def _entry(entry: Any) -> tuple[int, bytes]:
    """(seq, frame) of a stream entry ``(b"<seq>-0", {b"f": frame})``."""
    entry_id, fields = entry
    return int(entry_id.split(b"-")[0]), cast(bytes, fields[b"f"])


@contextlib.contextmanager
def _available() -> Iterator[None]:
    """Redis not answering becomes :class:`StoreUnavailable` (a 503 for the vendor)."""
    try:
        yield
    except UNAVAILABLE as exc:
        raise StoreUnavailable(f"Redis is unavailable: {exc}") from exc


def _new_epoch() -> str:
    return secrets.token_hex(8)


@dataclass
class _Confirmation:
    done: asyncio.Future[None]
    catch_up: bool  # nobody waited for this subscription: push the latest message when it is on


class RedisHub(Hub):
    def __init__(self, settings: Settings) -> None:
        assert settings.redis_url, "RedisHub needs settings.redis_url"
        self.history_limit = settings.history_limit
        self.ttl_ms = max(1, round(settings.session_ttl * 1000))
        self.timeout = settings.redis_timeout
        # Retrying a script is safe: a retried append finds its de-dup keys and stores nothing.
        self.redis = Redis.from_url(
            settings.redis_url,
            socket_timeout=settings.redis_timeout,
            socket_connect_timeout=settings.redis_timeout,
            retry=Retry(ExponentialBackoff(cap=0.2, base=0.02), 2),
        )
        # The listener owns its reconnects (with back-off): its client never retries.
        self._listen_client = Redis.from_url(
            settings.redis_url,
            socket_connect_timeout=settings.redis_timeout,
            retry=Retry(NoBackoff(), 0),
        )
        self._append = self.redis.register_script(_APPEND)
        self._replay = self.redis.register_script(_REPLAY)
        self._status = self.redis.register_script(_STATUS)
        self._local: dict[str, set[Outbox]] = {}
        # The epoch each local socket replayed; a socket is bound by the first replay of its
        # call_id after it subscribed (Connection.start subscribes, then replays).
        self._epochs: dict[Outbox, bytes] = {}
        self._unbound: dict[str, list[Outbox]] = {}
        self._pubsub: PubSub | None = None
        self._pubsub_lock = asyncio.Lock()  # keeps SUBSCRIBE/UNSUBSCRIBE in call order
        # One per SUBSCRIBE sent, resolved in order by Redis's confirmations.
        self._confirming: dict[str, deque[_Confirmation]] = {}
        self._refresh_every = min(settings.sweep_interval, settings.session_ttl / 3)
        self._tasks: set[asyncio.Task[None]] = set()
        self._first_attempt = asyncio.Event()  # the listener tried to connect once

    @classmethod
    async def connect(cls, settings: Settings) -> RedisHub:
        """A hub with its listener running. Redis being down now is not fatal: ``/readyz``
        says so, and everything recovers when it is back."""
        hub = cls(settings)
        hub._spawn(hub._listen(), "redis listener")
        hub._spawn(hub._refresh(), "redis expiry refresh")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(hub._first_attempt.wait(), hub.timeout)
        if hub._pubsub is None:
            log.error("Redis is not reachable (yet): /readyz answers 503 until it is")
        return hub

    def _spawn(self, coro: Any, name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _script(self, script: Any, call_id: str, args: list[Any]) -> Any:
        with _available():
            return await script(keys=list(SessionKeys.of(call_id)), args=args)

    async def append(
        self,
        call_id: str,
        items: Sequence[tuple[str, WidgetMessage]],
        *,
        envelope: Envelope | None = None,
        answer: ReplyTo | None = None,
    ) -> list[int]:
        args: list[Any] = [
            self.ttl_ms,
            self.history_limit,
            _new_epoch(),
            channel(call_id),
            envelope.model_dump_json() if envelope else "",
            answer.seq if answer else "",
            answer.option_id if answer else "",
        ]
        for key, draft in items:
            args.extend((key, draft.id, *frame_parts(draft)))
        reply = await self._script(self._append, call_id, args)
        if reply[0] == b"already_answered":
            assert answer is not None
            raise Refused("already_answered", f"message {answer.seq} was answered already")
        return [int(seq) for seq in reply[1:]]

    async def replay(self, call_id: str, after: int | None, epoch: str | None) -> Replay:
        args = [self.ttl_ms, _new_epoch(), "" if after is None else after, epoch or ""]
        got_epoch, last, recovered, start, stored, statuses = await self._script(
            self._replay, call_id, args
        )
        first = last - len(stored) + 1
        frames: list[Frame] = [(first + i, frame) for i, frame in enumerate(stored)]
        by_seq = sorted(
            (int(seq), frame) for seq, frame in zip(statuses[::2], statuses[1::2], strict=True)
        )
        frames += [(None, frame) for seq, frame in by_seq if seq > start]
        for outbox in self._unbound.pop(call_id, ()):
            self._epochs[outbox] = got_epoch
        return Replay(frames, last, got_epoch.decode(), bool(recovered))

    async def find(self, call_id: str, ref: int | str) -> WidgetMessage | None:
        session = SessionKeys.of(call_id)
        with _available():
            if isinstance(ref, int):
                seq = ref
            else:
                score = await self.redis.zscore(session.ids, ref)
                if score is None:
                    return None
                seq = int(score)
            if seq < 1:
                return None
            entries = await self.redis.xrange(session.log, f"{seq}-0", f"{seq}-0")
        if not entries:
            return None
        _, frame = _entry(entries[0])
        return WIDGET_MESSAGE.validate_python(orjson.loads(frame)["message"])

    async def set_status(
        self, call_id: str, seq: int, status: DeliveryStatus, detail: str | None = None
    ) -> None:
        frame = StatusFrame(seq=seq, status=status, detail=detail).encode()
        args = [self.ttl_ms, _new_epoch(), channel(call_id), seq, frame]
        await self._script(self._status, call_id, args)

    async def envelope(self, call_id: str) -> Envelope | None:
        with _available():
            raw = await self.redis.hget(SessionKeys.of(call_id).meta, "envelope")
        return Envelope.model_validate_json(raw) if raw else None

    async def ping(self) -> bool:
        try:
            return bool(await asyncio.wait_for(self.redis.ping(), self.timeout))
        except (RedisError, OSError, TimeoutError):
            return False

    # Fan-out ---------------------------------------------------------------------------

    async def subscribe(self, call_id: str, outbox: Outbox) -> None:
        """Returns once Redis confirms the subscription (or after the timeout), so that a
        replay read next cannot miss a message published in between."""
        outboxes = self._local.setdefault(call_id, set())
        outboxes.add(outbox)
        self._unbound.setdefault(call_id, []).append(outbox)
        if len(outboxes) == 1:
            await self._pubsub_command("subscribe", call_id)
        pending = self._confirming.get(call_id)
        if pending:
            confirmation = pending[-1]
            try:
                await asyncio.wait_for(asyncio.shield(confirmation.done), self.timeout)
            except TimeoutError:
                log.warning("no pub/sub confirmation for %s yet; catching up later", call_id)
                confirmation.catch_up = True

    async def unsubscribe(self, call_id: str, outbox: Outbox) -> None:
        outboxes = self._local.get(call_id)
        if outboxes is None:
            return
        outboxes.discard(outbox)
        self._epochs.pop(outbox, None)
        if outbox in self._unbound.get(call_id, ()):
            self._unbound[call_id].remove(outbox)
        if not outboxes:
            del self._local[call_id]
            self._unbound.pop(call_id, None)
            await self._pubsub_command("unsubscribe", call_id)

    async def _pubsub_command(self, command: str, call_id: str) -> None:
        """SUBSCRIBE or UNSUBSCRIBE on the listener's connection. No connection, or a broken
        one: the listener subscribes everything local when it is back, then catches up."""
        async with self._pubsub_lock:
            if self._pubsub is None:
                return
            if command == "subscribe":
                # Expected before it is asked for: the listener can read the confirmation
                # before this await returns, and drops one nobody expects (then the
                # socket waited the whole timeout). A failed command is confirmed by the
                # listener's _confirm_all() when it loses the connection.
                self._expect_confirmation(call_id, catch_up=False)
            try:
                await getattr(self._pubsub, command)(channel(call_id))
            except UNAVAILABLE as exc:
                log.debug("pub/sub %s %s failed: %s", command, call_id, exc)

    async def _listen(self) -> None:
        delay = RECONNECT_DELAYS[0]
        while True:
            pubsub = self._listen_client.pubsub()
            try:
                await pubsub.connect()  # type: ignore[no-untyped-call]
                async with self._pubsub_lock:
                    self._pubsub = pubsub
                    if self._local:
                        await pubsub.subscribe(*map(channel, self._local))
                        for call_id in self._local:
                            self._expect_confirmation(call_id, catch_up=True)
                self._first_attempt.set()
                if delay > RECONNECT_DELAYS[0]:
                    log.info("Redis pub/sub connected again")
                delay = RECONNECT_DELAYS[0]
                while True:
                    message = await pubsub.get_message(timeout=None)
                    if message is not None:
                        self._dispatch(message)
            except UNAVAILABLE as exc:
                first_failure = delay == RECONNECT_DELAYS[0]
                log.log(
                    logging.WARNING if first_failure else logging.DEBUG,
                    "Redis pub/sub unavailable (%s); retrying in %.2fs",
                    exc,
                    delay,
                )
            except Exception:  # fan-out must never stop for good: log it, start over
                log.exception("Redis pub/sub listener failed; restarting in %.2fs", delay)
            finally:
                self._first_attempt.set()
                self._pubsub = None
                self._confirm_all()  # nothing more comes on this connection
                await pubsub.aclose()  # type: ignore[no-untyped-call]
            await asyncio.sleep(delay)
            delay = min(delay * 2, RECONNECT_DELAYS[1])

    def _expect_confirmation(self, call_id: str, catch_up: bool) -> None:
        done = asyncio.get_running_loop().create_future()
        self._confirming.setdefault(call_id, deque()).append(_Confirmation(done, catch_up))

    def _confirm(self, call_id: str) -> None:
        pending = self._confirming.get(call_id)
        if not pending:
            return
        confirmation = pending.popleft()
        if not pending:
            del self._confirming[call_id]
        confirmation.done.set_result(None)
        if confirmation.catch_up:
            # Messages published before this moment were missed: resend the latest.
            self._spawn(self._catch_up(call_id), f"catch up {call_id}")

    def _confirm_all(self) -> None:
        """The connection is gone: stop waiting (the reconnect subscribes and catches up)."""
        for pending in self._confirming.values():
            for confirmation in pending:
                confirmation.done.set_result(None)
        self._confirming.clear()

    def _dispatch(self, message: dict[str, Any]) -> None:
        call_id = call_id_of(message["channel"])
        if message["type"] == "subscribe":
            self._confirm(call_id)
            return
        if message["type"] != "message":
            return
        seq, epoch, frame = message["data"].split(b" ", 2)
        self._deliver(call_id, epoch, int(seq) or None, frame)

    def _deliver(self, call_id: str, epoch: bytes, seq: int | None, frame: bytes) -> None:
        for outbox in list(self._local.get(call_id, ())):
            if self._epochs.get(outbox, epoch) == epoch:
                outbox.push(seq, frame)
            else:  # Redis lost the session this socket shows: it must re-sync
                outbox.stop("reset")

    async def _catch_up(self, call_id: str) -> None:
        """Push the latest stored message to the local sockets: one that has it drops it,
        one that is behind sees the gap and fills it from the stream."""
        session = SessionKeys.of(call_id)
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.hget(session.meta, "epoch")
                pipe.xrevrange(session.log, count=1)
                epoch, latest = await pipe.execute()
        except UNAVAILABLE as exc:
            log.debug("catch-up of %s failed: %s", call_id, exc)
            return
        if epoch is None or not latest:
            return  # nothing stored (yet): the next append's epoch tells
        self._deliver(call_id, epoch, *_entry(latest[0]))

    async def _refresh(self) -> None:
        """A session somebody watches here does not expire while they watch."""
        while True:
            await asyncio.sleep(self._refresh_every)
            watched = list(self._local)
            if not watched:
                continue
            try:
                async with self.redis.pipeline(transaction=False) as pipe:
                    for call_id in watched:
                        for key in SessionKeys.of(call_id):
                            pipe.pexpire(key, self.ttl_ms)
                    await pipe.execute()
            except UNAVAILABLE as exc:
                log.debug("expiry refresh failed: %s", exc)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._listen_client.aclose()
        await self.redis.aclose()
