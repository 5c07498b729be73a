"""Names in Redis, shared by the store (which writes and announces) and the fan-out (which
listens). Per call_id (the ``{call_id}`` hash tag keeps a session's keys on one slot, so
a clustered Redis keeps a conversation, its queue for the bot and its lease in one shard):

=========================  ======  ==========================================================
``bridge:{id}:meta``       hash    ``epoch``, ``seq`` (the last seq given out), ``envelope``
``bridge:{id}:log``        stream  one entry per message, id ``<seq>-0``, field ``f``: the frame
``bridge:{id}:keys``       zset    de-dup key -> base + seq; outlives the session (append.lua)
``bridge:{id}:ids``        zset    message id -> seq (for ``find``)
``bridge:{id}:answered``   hash    seq of a choices message -> the option picked
``bridge:{id}:statuses``   hash    seq of a person's message -> its latest status frame
``bridge:{id}:queue``      zset    seq -> seq: the person's messages waiting for the bot, in
                                   order (only while there are some: ``waiting`` SCANs these)
``bridge:{id}:outbox``     hash    ``<seq>``: the body to POST, ``<seq>:t``: when it was
                                   queued (Unix time), ``<seq>:f``: present once it gave up
``bridge:{id}:lease``      string  the process forwarding the conversation (expires: ``PX``)
``bridge:{id}:live``       pubsub  ``"<seq> <epoch> <frame>"``, seq 0 for a status frame
=========================  ======  ==========================================================

The store's scripts publish a frame on ``live`` in the same atomic step that stores it: a
subscriber never hears of a frame that is not stored, frames of one call_id are announced
in seq order across processes, and a callback costs one round trip.

Expiry: every script restarts the idle expiry of all the session's keys, except while the
queue's first message may still go to the bot: then they are made persistent (messages
waiting for the bot are kept until delivered or given up) and get their expiry back from
the script that empties the queue or gives up. The lease is not a session key: it has an
expiry of its own, and a session script never touches it.
"""

from __future__ import annotations

from typing import NamedTuple

PREFIX = "bridge:"
_KEY_SUFFIXES = ("meta", "log", "keys", "ids", "answered", "statuses", "queue", "outbox")
QUEUES = PREFIX + "{*}:queue"  # SCAN pattern: the conversations with a queue


class SessionKeys(NamedTuple):
    meta: str
    log: str
    dedup: str
    ids: str
    answered: str
    statuses: str
    queue: str
    outbox: str

    @classmethod
    def of(cls, call_id: str) -> SessionKeys:
        base = f"{PREFIX}{{{call_id}}}:"
        return cls(*(base + name for name in _KEY_SUFFIXES))


def lease(call_id: str) -> str:
    return f"{PREFIX}{{{call_id}}}:lease"


def call_id_of_queue(key: bytes) -> str:
    return key.decode()[len(PREFIX) + 1 : -len("}:queue")]


def channel(call_id: str) -> str:
    return f"{PREFIX}{{{call_id}}}:live"


def call_id_of(channel_name: bytes) -> str:
    return channel_name.decode()[len(PREFIX) + 1 : -len("}:live")]


def announcement(data: bytes) -> tuple[int | None, bytes, bytes]:
    """(seq or None for a status frame, epoch, frame) of a message on a ``live`` channel."""
    seq, epoch, frame = data.split(b" ", 2)
    return int(seq) or None, epoch, frame
