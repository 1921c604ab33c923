"""Reading a run's metric history fast: a columnar copy beside the history table.

``metric_points`` (one row per key and step) stays the truth. Reading 2 000 000
rows out of it costs seconds in Python (~1 µs a row), so this module keeps, in
the same database, ``metric_chunks``: for each run and key, consecutive points
packed as two little-endian arrays (``int64`` steps, ``float64`` values), at most
``CHUNK`` points each. A chunk covering steps ``first_step..last_step`` holds
*every* stored point of its key in that range, in step order.

It can never serve stale data: triggers on ``metric_points`` delete the chunk
whose range holds a point that is inserted, changed or deleted (a re-logged
value, a ``resume_training`` trim, a deleted run), in the same transaction as
the change. Points appended after a chunk's last step leave it valid; they
are read from the table. Reading is one transaction: the chunks, then the
points no chunk covers (which then become chunks, when the database may be
written). A missing or dropped chunk table is simply rebuilt.

Plain Python over sqlite3 and numpy (no Qt): ``TrainingManager.get_metric_history``
calls ``read_history``.
"""
from __future__ import annotations

import itertools
import sqlite3
import time
from collections.abc import Sequence
from typing import Iterable

import numpy as np

CHUNK = 16_384  # points per chunk (256 KiB of steps and values)
MIN_CACHED = 2_048  # a key with fewer points is read from the table (a few ms): no chunk
PACK_EVERY_S = 1.0  # pack_tails: at most this often per run
EXACT_FLOAT = 2 ** 53  # steps below this survive a trip through float64

SCHEMA = """
CREATE TABLE IF NOT EXISTS metric_chunks (
    id INTEGER PRIMARY KEY,
    experiment_id INTEGER NOT NULL REFERENCES experiments(id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    first_step INTEGER NOT NULL,
    last_step INTEGER NOT NULL,
    n INTEGER NOT NULL,
    steps BLOB NOT NULL,
    vals BLOB NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS metric_chunks_span ON metric_chunks(experiment_id, key, first_step);
CREATE TRIGGER IF NOT EXISTS metric_chunks_stale_on_insert AFTER INSERT ON metric_points BEGIN
    {delete_new}
END;
CREATE TRIGGER IF NOT EXISTS metric_chunks_stale_on_update AFTER UPDATE ON metric_points BEGIN
    {delete_old}
    {delete_new}
END;
CREATE TRIGGER IF NOT EXISTS metric_chunks_stale_on_delete AFTER DELETE ON metric_points BEGIN
    {delete_old}
END;
"""
# the chunk whose range holds the point: the last one starting at or before its step
_DELETE = """DELETE FROM metric_chunks WHERE id = (
        SELECT id FROM metric_chunks WHERE experiment_id = {r}.experiment_id AND key = {r}.key
        AND first_step <= {r}.step ORDER BY first_step DESC LIMIT 1) AND last_step >= {r}.step;"""
SCHEMA = SCHEMA.format(delete_new=_DELETE.format(r="NEW"), delete_old=_DELETE.format(r="OLD"))
_TRIGGERS = ("metric_chunks_stale_on_insert", "metric_chunks_stale_on_update",
             "metric_chunks_stale_on_delete")


class HistorySeries(Sequence):
    """One key's history: a sequence of ``(step, value)`` tuples (``int``,
    ``float``), equal to the list of them, backed by two numpy arrays ``steps``
    (int64) and ``values`` (float64) for whoever can use them whole."""

    __slots__ = ("steps", "values")

    def __init__(self, steps: np.ndarray, values: np.ndarray):
        self.steps, self.values = steps, values

    def __len__(self) -> int:
        return int(self.steps.size)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return list(zip(self.steps[index].tolist(), self.values[index].tolist()))
        return int(self.steps[index]), float(self.values[index])

    def __iter__(self):
        return zip(self.steps.tolist(), self.values.tolist())

    def __eq__(self, other):
        if isinstance(other, HistorySeries):
            return bool(np.array_equal(self.steps, other.steps) and np.array_equal(self.values, other.values))
        if isinstance(other, (list, tuple)):
            return list(self) == list(other)
        return NotImplemented

    __hash__ = None

    def __repr__(self) -> str:
        head = ", ".join(map(repr, self[:3])) + (", ..." if len(self) > 3 else "")
        return f"HistorySeries([{head}], {len(self)} points)"


def read_history(db, experiment_id: int, keys: Iterable[str] | None = None) -> dict[str, HistorySeries]:
    """``{key: HistorySeries}`` of a run, sorted by key then step; ``keys`` limits
    the keys. Uses (and completes) the chunks when the database may be written."""
    keys = None if keys is None else list(dict.fromkeys(keys))
    if keys == []:
        return {}
    if getattr(db, "read_only", False) or not ensure_schema(db):
        return _read_plain(db, experiment_id, keys)  # the table alone, written nowhere
    with db.transaction() as conn:  # one snapshot; the chunks it completes are written with it
        return _read_chunked(conn, experiment_id, keys)


def ensure_schema(db) -> bool:
    """Create the chunk table and its triggers if missing; False when that is impossible."""
    known = getattr(db, "_history_chunks_ready", False)
    if known:
        return True
    try:
        with db.transaction() as conn:
            have = {r[0] for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE name IN ('metric_chunks', ?, ?, ?)", _TRIGGERS)}
            if have != {"metric_chunks", *_TRIGGERS}:
                if "metric_chunks" in have:  # a part is missing: start again from nothing
                    conn.execute("DELETE FROM metric_chunks")
                for statement in _statements(SCHEMA):
                    conn.execute(statement)
    except Exception as exc:  # noqa: BLE001 - a cache: without it, the table is read
        if not _is_database_error(exc):
            raise
        return False
    db._history_chunks_ready = True
    return True


def pack_tails(db, experiment_id: int, min_new: int = MIN_CACHED, *, force: bool = False) -> int:
    """Keep a live run's cache warm: pack each key's points after its last chunk
    once there are ``min_new`` of them (at most every ``PACK_EVERY_S`` per run
    unless ``force``), so that opening the run later reads chunks, not rows.
    Meant for the writer of the history, inside or after its transaction
    (``update_training_metrics``). Returns the points packed."""
    now = time.monotonic()
    last = _last_pack.get((id(db), experiment_id))
    if not force and last is not None and now - last < PACK_EVERY_S:
        return 0
    _last_pack[(id(db), experiment_id)] = now
    if getattr(db, "read_only", False) or not ensure_schema(db):
        return 0
    packed = 0
    with db.transaction() as conn:
        for key in _keys_of(conn, experiment_id):
            chunk = conn.execute("SELECT id, last_step, n, steps, vals FROM metric_chunks WHERE experiment_id = ?"
                                 " AND key = ? ORDER BY first_step DESC LIMIT 1", (experiment_id, key)).fetchone()
            after = None if chunk is None else chunk[1]
            waiting = conn.execute("SELECT count(*) FROM metric_points WHERE experiment_id = ? AND key = ?"
                                   + ("" if after is None else " AND step > ?"),
                                   (experiment_id, key) if after is None else (experiment_id, key, after)).fetchone()[0]
            if waiting < min_new:
                continue
            tail = _points(conn, experiment_id, key, after, None)
            if chunk is None:
                _pack(conn, experiment_id, key, [tail], 0, None)
            else:
                n = chunk[2]
                last_chunk = (np.frombuffer(chunk[3], dtype="<i8", count=n),
                              np.frombuffer(chunk[4], dtype="<f8", count=n))
                pieces = [last_chunk, tail]
                _pack(conn, experiment_id, key, pieces, 1, (chunk[0], chunk[1], 0, n))
            packed += tail[0].size
    return packed


_last_pack: dict = {}


def drop_chunks(db, experiment_id: int | None = None) -> None:
    """Forget the chunks (of one run, or all): they are rebuilt at the next read."""
    if not ensure_schema(db):
        return
    if experiment_id is None:
        db.execute("DELETE FROM metric_chunks")
    else:
        db.execute("DELETE FROM metric_chunks WHERE experiment_id = ?", (experiment_id,))


# -- reading ------------------------------------------------------------------------------------
def _keys_of(conn, experiment_id: int) -> list[str]:
    """The run's keys, by a skip scan of the primary key (a few index seeks, not a scan)."""
    found, last = [], None
    while True:
        row = conn.execute("SELECT key FROM metric_points WHERE experiment_id = ?"
                           + ("" if last is None else " AND key > ?") + " ORDER BY key LIMIT 1",
                           (experiment_id,) if last is None else (experiment_id, last)).fetchone()
        if row is None:
            return found
        last = row[0]
        found.append(last)


def _points(conn, experiment_id: int, key: str, after: int | None, before: int | None):
    """(steps int64, values float64) of ``key`` with ``after < step < before``."""
    sql = "SELECT step, value FROM metric_points WHERE experiment_id = ? AND key = ?"
    params: list = [experiment_id, key]
    if after is not None:
        sql += " AND step > ?"
        params.append(after)
    if before is not None:
        sql += " AND step < ?"
        params.append(before)
    rows = conn.execute(sql + " ORDER BY step", params).fetchall()
    flat = np.fromiter(itertools.chain.from_iterable(rows), dtype=float, count=2 * len(rows))
    steps, values = flat[0::2], flat[1::2].copy()
    if steps.size and abs(steps).max() >= EXACT_FLOAT:  # huge steps: exact, the slow way
        return np.array([s for s, _ in rows], dtype=np.int64), values
    return steps.astype(np.int64), values


class _Queries:
    """``conn.execute(...).fetchall()/fetchone()`` through ``Database.query``/``query_one``."""

    def __init__(self, db):
        self.db = db

    def execute(self, sql, params=()):
        return _Rows(self.db.query(sql, params))


class _Rows(list):
    def fetchall(self):
        return self

    def fetchone(self):
        return self[0] if self else None


def _read_plain(db, experiment_id: int, keys) -> dict[str, HistorySeries]:
    conn = _Queries(db)
    out = {}
    for key in sorted(keys if keys is not None else _keys_of(conn, experiment_id)):
        steps, values = _points(conn, experiment_id, key, None, None)
        if steps.size:
            out[key] = HistorySeries(steps, values)
    return out


def _read_chunked(conn, experiment_id: int, keys) -> dict[str, HistorySeries]:
    chunks: dict[str, list] = {}
    sql = "SELECT id, key, first_step, last_step, n, steps, vals FROM metric_chunks WHERE experiment_id = ?"
    for row in conn.execute(sql + " ORDER BY key, first_step", (experiment_id,)):
        chunks.setdefault(row[1], []).append(row)
    out = {}
    for key in sorted(keys if keys is not None else _keys_of(conn, experiment_id)):
        pieces, gaps, previous = [], [], None
        for chunk_id, _, first, last, n, steps, vals in chunks.get(key, ()):
            gap = _points(conn, experiment_id, key, None if previous is None else previous[1], first)
            if gap[0].size:
                pieces.append(gap)
                gaps.append((len(pieces) - 1, previous))
            pieces.append((np.frombuffer(steps, dtype="<i8", count=n),
                           np.frombuffer(vals, dtype="<f8", count=n)))
            previous = (chunk_id, last, len(pieces) - 1, n)
        tail = _points(conn, experiment_id, key, None if previous is None else previous[1], None)
        if tail[0].size:
            pieces.append(tail)
            gaps.append((len(pieces) - 1, previous))
        if not pieces:
            continue
        if previous is not None or sum(p[0].size for p in pieces) >= MIN_CACHED:
            for index, before in reversed(gaps):  # pack what the table alone had into chunks
                _pack(conn, experiment_id, key, pieces, index, before)
        steps = np.concatenate([p[0] for p in pieces]) if len(pieces) > 1 else pieces[0][0]
        values = np.concatenate([p[1] for p in pieces]) if len(pieces) > 1 else pieces[0][1]
        out[key] = HistorySeries(steps, values)
    return out


def _pack(conn, experiment_id: int, key: str, pieces: list, index: int, before) -> None:
    """Store ``pieces[index]`` (points no chunk covered) as chunks; a short chunk
    just before them (``before``: id, last step, piece index, n) is merged in."""
    steps, values = pieces[index]
    if before is not None and before[3] < CHUNK and before[2] == index - 1:
        chunk_id, _, at, _ = before
        steps = np.concatenate((pieces[at][0], steps))
        values = np.concatenate((pieces[at][1], values))
        conn.execute("DELETE FROM metric_chunks WHERE id = ?", (chunk_id,))
    for start in range(0, steps.size, CHUNK):
        s, v = steps[start:start + CHUNK], values[start:start + CHUNK]
        conn.execute("INSERT INTO metric_chunks (experiment_id, key, first_step, last_step, n, steps, vals)"
                     " VALUES (?, ?, ?, ?, ?, ?, ?)",
                     (experiment_id, key, int(s[0]), int(s[-1]), int(s.size),
                      s.astype("<i8").tobytes(), v.astype("<f8").tobytes()))


def _statements(script: str) -> list[str]:
    """The statements of ``script`` (triggers kept whole)."""
    out, current = [], []
    for line in script.strip().splitlines():
        current.append(line)
        text = "\n".join(current).strip()
        if text.endswith(";") and (not text.upper().startswith("CREATE TRIGGER") or text.endswith("END;")):
            out.append(text)
            current = []
    return out


def _is_database_error(exc: BaseException) -> bool:
    """A failure of the database (locked, read-only, damaged), not of this code."""
    if isinstance(exc, sqlite3.Error):
        return True
    return type(exc).__name__ == "DatabaseError" and isinstance(exc.__cause__, sqlite3.Error)
