"""What the memory and SQLite stores remember of acknowledged messages, outliving the
history and the session: each one's de-duplication key, per call_id, so that a retried or
replayed callback is acknowledged and shows nothing new (docs/security.md, "Replayed
callbacks"). Also the per-message size check every store makes before it changes anything.

A key maps to its *ordinal*: the n-th key remembered for that call_id. A session's messages
have ordinal ``base + seq`` (a new key always gets a new seq), so a remembered key names a
message of the session's current life when its ordinal is above the session's ``base``.

Bounds: the newest ``per_call`` keys of a conversation, ``total`` in all (the least recently
active conversation loses its oldest first), and a conversation's keys go together once it
has had no new message for ``retention`` seconds.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from bridge.refusals import Refusal
from bridge.widget import Draft, WidgetMessage

# Told that call_id's keys below an ordinal (None: all of them) are forgotten.
OnDrop = Callable[[str, int | None], None]


def encoded(items: Sequence[tuple[str, WidgetMessage | Draft]], limit: int) -> list[Draft]:
    """Each item's message as a :class:`Draft`, or ``Refusal`` (413) naming the first one
    whose frame is over ``limit`` bytes: checked before anything is stored."""
    drafts = [m if isinstance(m, Draft) else Draft.of(m) for _, m in items]
    for index, draft in enumerate(drafts):
        if draft.size() > limit:
            raise Refusal(
                "message_too_large",
                f"messages.{index}: the message is {draft.size()} bytes as sent to "
                f"browsers, over BRIDGE_MAX_MESSAGE_BYTES ({limit}); nothing was stored",
                status=413,
            )
    return drafts


@dataclass(slots=True)
class Record:
    keys: OrderedDict[str, int] = field(default_factory=OrderedDict)  # key -> ordinal, oldest first
    at: float = 0.0  # Unix time its last key was added


class Seen:
    def __init__(self, retention: float, per_call: int, total: int, on_drop: OnDrop) -> None:
        self.retention, self.per_call, self.total = retention, per_call, total
        self.on_drop = on_drop
        self.records: OrderedDict[str, Record] = OrderedDict()  # least recently added first
        self.count = 0

    def keys(self, call_id: str) -> dict[str, int]:
        record = self.records.get(call_id)
        return record.keys if record is not None else {}

    def newest(self, call_id: str) -> int:
        """The highest ordinal remembered for ``call_id`` (0: none)."""
        record = self.records.get(call_id)
        return next(reversed(record.keys.values()), 0) if record is not None else 0

    def add(self, call_id: str, new: dict[str, int], now: float) -> None:
        """Remember keys with their ordinals (ascending), then apply the bounds."""
        record = self.records.get(call_id)
        if record is None:
            record = self.records[call_id] = Record()
        else:
            self.records.move_to_end(call_id)
        record.at = now
        record.keys.update(new)
        self.count += len(new)
        if len(record.keys) > self.per_call:
            self._drop_oldest(call_id, record, len(record.keys) - self.per_call)
        self._bound_total()

    def _bound_total(self) -> None:
        while self.count > self.total:
            oldest, record = next(iter(self.records.items()))
            self._drop_oldest(oldest, record, self.count - self.total)

    def _drop_oldest(self, call_id: str, record: Record, n: int) -> None:
        if n >= len(record.keys):
            self.count -= len(record.keys)
            del self.records[call_id]
            self.on_drop(call_id, None)
            return
        for _ in range(n):
            record.keys.popitem(last=False)
        self.count -= n
        self.on_drop(call_id, next(iter(record.keys.values())))

    def expire(self, now: float) -> int:
        """Forget the conversations quiet for longer than the retention."""
        expired = 0
        while self.records:
            call_id, record = next(iter(self.records.items()))
            if now - record.at <= self.retention:
                break
            self.count -= len(record.keys)
            del self.records[call_id]
            self.on_drop(call_id, None)
            expired += 1
        return expired

    def forget(self, call_id: str) -> None:
        record = self.records.pop(call_id, None)
        if record is not None:
            self.count -= len(record.keys)

    def load(self, records: dict[str, Record], now: float) -> None:
        """Records read back (SQLite), then the bounds as the settings want them now."""
        for call_id, record in sorted(records.items(), key=lambda pair: pair[1].at):
            self.records[call_id] = record
            self.count += len(record.keys)
        self.expire(now)
        for call_id, record in list(self.records.items()):
            if len(record.keys) > self.per_call:
                self._drop_oldest(call_id, record, len(record.keys) - self.per_call)
        self._bound_total()
