"""The SQLite store's file: its directory (private, locked), the schema and its versions,
and the statements the writer runs (see :mod:`.sqlite_writer` for where: commits that do
not fsync run on the event loop, the rest on its thread)."""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bridge.config import StartupError
from bridge.store.memory import _Queued, _Session
from bridge.store.seen import Record
from bridge.vendor.airudder import Envelope

DB_NAME = "bridge.sqlite3"
LOCK_NAME = "lock"

# (SQL, parameters): a tuple runs once, a list of tuples runs as executemany.
Op = tuple[str, tuple[Any, ...] | list[tuple[Any, ...]]]
VACUUM: Op = ("PRAGMA incremental_vacuum", ())  # recorded after deletes: give pages back


def _v1(conn: sqlite3.Connection) -> None:
    """The first schema. A message's row is also its de-duplication key (a new key always
    gets a new seq): one row per message, written once; when the history is trimmed its
    frame goes and the key stays, until the keys (2 x the history) are trimmed too. A
    session's last seq is its last row's, its idle clock the later of its row's and its
    last message's times: appending a message writes nothing else."""
    _script(
        conn,
        """
        CREATE TABLE sessions (
            call_id TEXT PRIMARY KEY, epoch TEXT NOT NULL, touched REAL NOT NULL, envelope BLOB
        ) WITHOUT ROWID;
        CREATE TABLE messages (
            call_id TEXT NOT NULL, seq INTEGER NOT NULL, key TEXT NOT NULL, at REAL NOT NULL,
            id TEXT, frame BLOB,
            PRIMARY KEY (call_id, seq)
        );
        CREATE TABLE answered (
            call_id TEXT NOT NULL, seq INTEGER NOT NULL, option_id TEXT NOT NULL,
            PRIMARY KEY (call_id, seq)
        ) WITHOUT ROWID;
        CREATE TABLE statuses (
            call_id TEXT NOT NULL, seq INTEGER NOT NULL, frame BLOB NOT NULL,
            PRIMARY KEY (call_id, seq)
        ) WITHOUT ROWID;
        CREATE TABLE queue (
            call_id TEXT NOT NULL, seq INTEGER NOT NULL, body BLOB NOT NULL,
            queued_at REAL NOT NULL, failed INTEGER NOT NULL,
            PRIMARY KEY (call_id, seq)
        ) WITHOUT ROWID;
        """,
    )
    # messages has a rowid: WITHOUT ROWID tables are slow with rows of frames' size
    # (~0.5-2 KB), and a message row is written once and read only at start.


def _v2(conn: sqlite3.Connection) -> None:
    """De-duplication keys in a table of their own, outliving the session (see
    :mod:`.seen`); a message row is now only the history. Version 1's keys move over with
    their seq as ordinal (the sessions' base is 0)."""
    _script(
        conn,
        """
        CREATE TABLE seen (
            call_id TEXT NOT NULL, ordinal INTEGER NOT NULL, key TEXT NOT NULL, at REAL NOT NULL,
            PRIMARY KEY (call_id, ordinal)
        ) WITHOUT ROWID;
        INSERT INTO seen (call_id, ordinal, key, at) SELECT call_id, seq, key, at FROM messages;
        DELETE FROM messages WHERE frame IS NULL
        """,
    )


def _script(conn: sqlite3.Connection, script: str) -> None:
    """Statements one by one: ``executescript`` would commit the migration's transaction."""
    for statement in script.split(";"):
        if statement.strip():
            conn.execute(statement)


# The statements the store records (see bridge.store.sqlite).
SESSION = "INSERT OR REPLACE INTO sessions (call_id, epoch, touched, envelope) VALUES (?, ?, ?, ?)"
ENVELOPE = "UPDATE sessions SET envelope = ? WHERE call_id = ?"
TOUCH = "UPDATE sessions SET touched = ? WHERE call_id = ?"
MESSAGE = "INSERT INTO messages (call_id, seq, key, at, id, frame) VALUES (?, ?, ?, ?, ?, ?)"
# Out of the history (its key is in seen); a bounded range.
UNSHOW = "DELETE FROM messages WHERE call_id = ? AND seq >= ? AND seq < ?"
SEEN = "INSERT OR REPLACE INTO seen (call_id, ordinal, key, at) VALUES (?, ?, ?, ?)"
UNSEE = "DELETE FROM seen WHERE call_id = ? AND ordinal < ?"  # keys go oldest first
UNSEE_ALL = "DELETE FROM seen WHERE call_id = ?"
ANSWER = "INSERT INTO answered (call_id, seq, option_id) VALUES (?, ?, ?)"
STATUS = "INSERT OR REPLACE INTO statuses (call_id, seq, frame) VALUES (?, ?, ?)"
QUEUE = "INSERT INTO queue (call_id, seq, body, queued_at, failed) VALUES (?, ?, ?, ?, 0)"
UNQUEUE = "DELETE FROM queue WHERE call_id = ? AND seq = ?"
FAIL = "UPDATE queue SET failed = ? WHERE call_id = ? AND seq = ?"
# What memory's trim drops of these: below the history, unless still queued for the bot.
UNMARK = {
    table: f"DELETE FROM {table} WHERE call_id = ? AND seq < ? "  # noqa: S608 - constant names
    "AND seq NOT IN (SELECT seq FROM queue WHERE call_id = ?1)"
    for table in ("answered", "statuses")
}


# MIGRATIONS[n] turns a version-n file into version n+1; a new file is version 0.
MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {0: _v1, 1: _v2}
SCHEMA_VERSION = 2
# Each table's columns as this version reads them (a later version may add more).
COLUMNS = {
    "sessions": "call_id, epoch, touched, envelope",
    "messages": "call_id, seq, key, at, id, frame",
    "answered": "call_id, seq, option_id",
    "statuses": "call_id, seq, frame",
    "queue": "call_id, seq, body, queued_at, failed",
    "seen": "call_id, ordinal, key, at",
}
TABLES = tuple(table for table in COLUMNS if table != "seen")  # a session's; seen outlives it


def lock_directory(directory: Path) -> int:
    """Create ``directory`` (0700) if needed and lock it for this process's life: the
    returned descriptor holds the lock until closed. Two processes writing one file would
    each believe their memory is the whole truth."""
    try:
        if not directory.is_dir():
            directory.mkdir(mode=0o700, parents=True)
            directory.chmod(0o700)  # mkdir's mode is filtered by the umask
        fd = os.open(directory / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise StartupError(f"cannot use the data directory {directory}: {exc}") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise StartupError(
            f"the data directory {directory} is in use by another process (set BRIDGE_DATA_DIR "
            "to give each process its own, or BRIDGE_REDIS_URL to share sessions)"
        ) from None
    return fd


def connect(directory: Path, synchronous: str = "NORMAL") -> sqlite3.Connection:
    """Open (creating, 0600) and migrate the database; for the writer thread only."""
    path = directory / DB_NAME
    # Created before SQLite sees it, so it is private from the first byte; SQLite gives
    # the -wal and -shm files the database file's permissions.
    os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600))
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        # Lets freed pages go back to the file system (``VACUUM``), not only be reused. It
        # takes effect only on a new, empty file, before WAL mode is set: a no-op later.
        conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(f"PRAGMA synchronous = {synchronous}")
        conn.execute("PRAGMA journal_size_limit = 67108864")  # the WAL shrinks back to 64 MB
        _migrate(conn, directory)
    except sqlite3.Error as exc:
        conn.close()
        raise StartupError(f"cannot open the store {path}: {exc}") from exc
    except BaseException:
        conn.close()
        raise
    return conn


def _migrate(conn: sqlite3.Connection, directory: Path) -> None:
    version: int = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise StartupError(
            f"the store in {directory} has schema version {version}, newer than this bridge "
            f"knows ({SCHEMA_VERSION}): run a newer bridge or use another data directory"
        )
    while version < SCHEMA_VERSION:
        conn.execute("BEGIN IMMEDIATE")
        try:
            MIGRATIONS[version](conn)
            version += 1
            conn.execute(f"PRAGMA user_version = {version}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise


def commit(conn: sqlite3.Connection, ops: Sequence[Op]) -> None:
    """Run ``ops`` in order as one transaction: all of them are stored or none."""
    conn.execute("BEGIN")
    try:
        vacuum = False
        for sql, params in ops:
            if sql == VACUUM[0]:
                vacuum = True
            elif type(params) is list:
                conn.executemany(sql, params)
            else:
                conn.execute(sql, params)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    if vacuum:
        conn.execute(VACUUM[0]).fetchall()  # each step frees one page: run it to the end


@dataclass(slots=True)
class Rows:
    """A set of sessions as stored, table by table, each sorted by (call_id, seq)."""

    sessions: list[tuple[str, str, float, bytes | None]] = field(default_factory=list)
    messages: list[tuple[str, int, str, float, str | None, bytes | None]] = field(
        default_factory=list
    )
    answered: list[tuple[str, int, str]] = field(default_factory=list)
    statuses: list[tuple[str, int, bytes]] = field(default_factory=list)
    queue: list[tuple[str, int, bytes, float, int]] = field(default_factory=list)
    seen: list[tuple[str, int, str, float]] = field(default_factory=list)


def read(conn: sqlite3.Connection, call_ids: Sequence[str] | None = None) -> Rows:
    """Every session, or those of ``call_ids``."""
    rows = Rows()
    where: str = ""
    params: tuple[str, ...] = ()
    if call_ids is not None:
        where = f"WHERE call_id IN ({','.join('?' * len(call_ids))})"
        params = tuple(call_ids)
    for table, columns in COLUMNS.items():
        by = {"sessions": "touched", "seen": "call_id, ordinal"}.get(table, "call_id, seq")
        sql = f"SELECT {columns} FROM {table} {where} ORDER BY {by}"  # noqa: S608
        getattr(rows, table).extend(conn.execute(sql, params))
    return rows


def build(rows: Rows) -> tuple[dict[str, _Session], dict[str, Record]]:
    """Sessions as memory keeps them, and the de-duplication keys, from their rows."""
    now, since = time.monotonic(), time.time()
    records: dict[str, Record] = {}
    for call_id, ordinal, key, at in rows.seen:
        record = records.get(call_id)
        if record is None:
            record = records[call_id] = Record()
        record.keys[key] = ordinal
        record.at = max(record.at, at)
    sessions: dict[str, _Session] = {}
    for call_id, epoch, touched, envelope in rows.sessions:
        sessions[call_id] = _Session(
            epoch=epoch,
            envelope=Envelope.model_validate_json(envelope) if envelope else None,
            touched=touched,  # Unix time until the messages are read
        )
    for call_id, seq, _, at, id_, frame in rows.messages:
        session = sessions[call_id]
        session.last_seq = seq
        session.touched = max(session.touched, at)
        if frame is not None:
            session.history.append((seq, id_ or "", frame))
            session.nbytes += len(frame)
    for call_id, seq, option_id in rows.answered:
        sessions[call_id].answered[seq] = option_id
    for call_id, seq, frame in rows.statuses:
        sessions[call_id].statuses[seq] = frame
    for call_id, seq, body, queued_at, failed in rows.queue:
        sessions[call_id].queue.append(_Queued(seq, body, queued_at, bool(failed)))
    for call_id, session in sessions.items():  # idle since then: on this process's clock
        session.touched = now - max(0.0, since - session.touched)
        # The newest key is the last message's (a new key always gets a new seq), if any.
        record = records.get(call_id)
        newest = next(reversed(record.keys.values())) if record else 0
        session.base = newest - session.last_seq
    # Least recently touched first, as memory keeps them (eviction reads from the front).
    return dict(sorted(sessions.items(), key=lambda pair: pair[1].touched)), records


def delete(call_ids: Sequence[str]) -> list[Op]:
    """Forget sessions on disk, every table."""
    params = [(call_id,) for call_id in call_ids]
    return [(f"DELETE FROM {table} WHERE call_id = ?", params) for table in TABLES]  # noqa: S608


def close(conn: sqlite3.Connection) -> None:
    with contextlib.suppress(sqlite3.Error):  # a clean stop leaves no WAL to replay
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
