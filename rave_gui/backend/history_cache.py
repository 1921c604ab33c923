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

Rows are read without a Python object per row: SQLite concatenates a range's
steps and (scaled to exact integers) values as text, which numpy parses; a read
of 2 000 000 rows thus costs a few tenths of a second, and creates no garbage for
the collector to walk. The fallback (math functions missing) reads tuples.

A run recorded before the cache existed (nothing packed yet) is the one slow
case. ``read_history(..., max_table_rows=N)`` says so (None) instead of reading
for seconds; ``read_overview`` then gives a look at it in milliseconds (index
seeks: a few thousand points per key, whatever the run's length), and
``BackgroundLoad`` packs it off the caller's thread, on a connection of its own,
one chunk per short transaction (a writer elsewhere waits a few ms at most),
then reads it whole. Every later open reads chunks.

Plain Python over sqlite3 and numpy (no Qt): ``TrainingManager.get_metric_history``
calls ``read_history``; ``MetricsPlot.load_history`` the rest.
"""
from __future__ import annotations

import itertools
import math
import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from rave_gui.core.database import DEFAULT_TIMEOUT, immediate_transaction

CHUNK = 16_384  # points per chunk (256 KiB of steps and values)
MIN_CACHED = 2_048  # a key with fewer points is read from the table (a few ms): no chunk
PACK_EVERY_S = 1.0  # pack_tails: at most this often per run
EXACT_FLOAT = 2 ** 53  # steps below this survive a trip through float64
OVERVIEW_POINTS = 1_500  # read_overview: points per key (the plot draws 4 000 at most)
FEW_ROWS = 256  # a range this short is read as tuples (one query, not two)

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


def read_history(db, experiment_id: int, keys: Iterable[str] | None = None, *,
                 max_table_rows: int | None = None) -> dict[str, HistorySeries] | None:
    """``{key: HistorySeries}`` of a run, sorted by key then step; ``keys`` limits
    the keys. Uses (and completes) the chunks when the database may be written.
    ``max_table_rows``: None (nothing read, nothing written) when more points than
    that would come from the table rather than the chunks (a run not cached yet)."""
    keys = None if keys is None else list(dict.fromkeys(keys))
    if keys == []:
        return {}
    budget = _Budget(max_table_rows)
    try:
        if getattr(db, "read_only", False) or not ensure_schema(db):
            return _read_plain(db, experiment_id, keys, budget)  # the table alone, written nowhere
        with db.transaction() as conn:  # one snapshot; the chunks it completes are written with it
            return _read_chunked(conn, experiment_id, keys, budget)
    except _OverBudget:  # raised inside the transaction: rolled back, nothing packed
        return None


def read_overview(db, experiment_id: int, points: int = OVERVIEW_POINTS) -> dict[str, HistorySeries]:
    """A look at a run in milliseconds whatever its length: per key, the first
    point at or after each of ``points`` evenly spaced steps, and the last point
    (a key with fewer than ``2 * points`` points: all of them). Index seeks only,
    no write. Not the history: the points between are left out (``read_history``)."""
    conn = _Queries(db)
    out = {}
    for key in sorted(_keys_of(conn, experiment_id)):
        short = conn.execute("SELECT count(*) FROM (SELECT 1 FROM metric_points WHERE experiment_id = ?"
                             " AND key = ? LIMIT ?)", (experiment_id, key, 2 * points)).fetchone()[0]
        if short < 2 * points:
            steps, values = _points(conn, experiment_id, key, None, None)
        else:
            first, last = (conn.execute(f"SELECT {end}(step) FROM metric_points WHERE experiment_id = ? AND key = ?",
                                        (experiment_id, key)).fetchone()[0] for end in ("min", "max"))  # seeks
            rows = conn.execute(_SAMPLE, {"e": experiment_id, "k": key, "first": first, "last": last,
                                          "w": max(1, (last - first) // points)}).fetchall()
            rows.append(conn.execute("SELECT step, value FROM metric_points WHERE experiment_id = ? AND key = ?"
                                     " AND step = ?", (experiment_id, key, last)).fetchone())
            steps = np.array([r[0] for r in rows if r is not None], dtype=np.int64)
            values = np.array([r[1] for r in rows if r is not None], dtype=float)
            steps, unique = np.unique(steps, return_index=True)  # a gap in the steps: the same point twice
            values = values[unique]
        if steps.size:
            out[key] = HistorySeries(steps, values)
    return out


# the first point at or after each of first, first + w, ... (two index seeks each)
_SAMPLE = """WITH RECURSIVE b(s) AS (SELECT :first UNION ALL SELECT s + :w FROM b WHERE s + :w <= :last)
SELECT p.step, p.value FROM b JOIN metric_points p ON p.experiment_id = :e AND p.key = :k AND p.step = (
    SELECT step FROM metric_points WHERE experiment_id = :e AND key = :k AND step >= b.s ORDER BY step LIMIT 1)"""


def warm(db, experiment_id: int, cancel: threading.Event | None = None) -> int:
    """Pack the points of a run that no chunk covers, ``CHUNK`` at a time, each in a
    transaction of its own (a few ms: a writer elsewhere is never held up for long);
    a key's last ``MIN_CACHED`` points or fewer stay in the table, as ``pack_tails``
    leaves them. Stops after the current chunk once ``cancel`` is set. Returns the
    points packed. For a run recorded before the cache existed, off the UI thread
    (``BackgroundLoad``)."""
    if getattr(db, "read_only", False) or not ensure_schema(db):
        return 0
    packed = 0
    for key in _keys_of(_Queries(db), experiment_id):
        done = None  # every point of the key up to this step is in a chunk
        while not (cancel is not None and cancel.is_set()):
            with db.transaction() as conn:
                done, n = _pack_next(conn, experiment_id, key, done)
            packed += n
            if not n:
                break
    return packed


def _pack_next(conn, experiment_id: int, key: str, done: int | None) -> tuple[int | None, int]:
    """Pack the first at most ``CHUNK`` uncovered points of ``key`` after step
    ``done``; returns the new ``done`` and how many were packed (0: none left)."""
    base = "SELECT first_step, last_step FROM metric_chunks WHERE experiment_id = ? AND key = ?"
    while True:
        if done is not None:  # a chunk holding `done` (another reader may have merged some)
            row = conn.execute(base + " AND first_step <= ? ORDER BY first_step DESC LIMIT 1",
                               (experiment_id, key, done)).fetchone()
            if row is not None and row[1] > done:
                done = row[1]
        after = conn.execute(base + ("" if done is None else " AND first_step > ?") + " ORDER BY first_step LIMIT 1",
                             (experiment_id, key) if done is None else (experiment_id, key, done)).fetchone()
        before = None if after is None else after[0]
        steps, values = _points(conn, experiment_id, key, done, before, limit=CHUNK)
        if steps.size and (before is not None or steps.size >= MIN_CACHED):
            _insert_chunk(conn, experiment_id, key, steps, values)
            return int(steps[-1]), int(steps.size)
        if after is None:
            return done, 0
        done = after[1]  # nothing between: on to the gap after the next chunk


class BackgroundLoad:
    """Read a run's history on a thread of its own: ``warm`` it (so that the next
    read, and every later open, reads chunks), then ``read_history``; then
    ``done(history, None)``, or ``done(None, error)``, called on that thread. The
    thread opens its own connection to ``db``'s file: the caller's connection (and
    its lock) stays free. ``cancel()`` stops it after the current chunk, without a
    call to ``done``."""

    def __init__(self, db, experiment_id: int, done: Callable[[dict | None, BaseException | None], None]):
        self.experiment_id = experiment_id
        self._path, self._read_only = Path(db.path), bool(getattr(db, "read_only", False))
        self._timeout = DEFAULT_TIMEOUT
        self._done = done
        self._cancel = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"history-{experiment_id}", daemon=True)
        self.thread.start()

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def _run(self) -> None:
        try:
            own = _Connection(self._path, self._read_only, self._timeout)
            try:
                warm(own, self.experiment_id, self._cancel)
                history = None if self.cancelled else read_history(own, self.experiment_id)
            finally:
                own.close()
        except Exception as exc:  # noqa: BLE001 - handed to the caller, whatever it is
            if not self.cancelled:
                self._done(None, exc)
            return
        if not self.cancelled:
            self._done(history, None)


class _Connection:
    """What ``read_history`` and ``warm`` use of ``Database`` (``transaction``,
    ``query``, ``read_only``), over a connection of a worker thread's own. Not a
    ``Database``: opening one checks the whole file first (seconds on a large one)."""

    def __init__(self, path: Path, read_only: bool, timeout: float):
        self.path, self.read_only = path, read_only
        uri = path.resolve().as_uri() + ("?mode=ro" if read_only else "")
        self._conn = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=timeout,
                                     check_same_thread=False)
        self._conn.execute("PRAGMA foreign_keys = ON")  # a run deleted meanwhile: no orphan chunks

    def transaction(self):
        return immediate_transaction(self._conn)

    def query(self, sql, params=()):
        return self._conn.execute(sql, params).fetchall()

    def close(self) -> None:
        self._conn.close()


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


def _points(conn, experiment_id: int, key: str, after: int | None, before: int | None,
            limit: int | None = None, budget: "_Budget | None" = None):
    """(steps int64, values float64) of ``key`` with ``after < step < before``, in
    step order: the first ``limit`` of them; ``budget`` is charged their number."""
    where, params = "experiment_id = ? AND key = ?", [experiment_id, key]
    if after is not None:
        where += " AND step > ?"
        params.append(after)
    if before is not None:
        where += " AND step < ?"
        params.append(before)
    if limit is not None:  # the limit as a step: the range stays a plain index range
        row = conn.execute(f"SELECT step FROM metric_points WHERE {where} ORDER BY step LIMIT 1 OFFSET ?",
                           (*params, limit - 1)).fetchone()
        if row is not None:
            where += " AND step <= ?"
            params.append(row[0])
    n, low, high = conn.execute("SELECT count(*), min(abs(value)) FILTER (WHERE value != 0), max(abs(value))"
                                f" FROM metric_points WHERE {where}", params).fetchone()
    if budget is not None:
        budget.charge(n)
    if n == 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=float)
    if n >= FEW_ROWS:
        try:
            read = _concatenated(conn, where, params, n, low, high)
        except sqlite3.OperationalError:  # no math functions in this SQLite: tuples
            read = None
        if read is not None:
            return read
    return _tuples(conn.execute(f"SELECT step, value FROM metric_points WHERE {where} ORDER BY step",
                                params).fetchall())


def _concatenated(conn, where: str, params: list, n: int, low, high):
    """The range read as text, no Python object per row: the steps, and each value
    as an integer ``m`` and a power ``k`` of two with value = m * 2**-k, exactly
    (a double times a power of two is exact; ``m`` below 2**62 is an exact integer).
    None when what came back does not add up (a write between two statements of a
    read outside a transaction)."""
    e_low = math.frexp(low)[1] - 1 if low is not None else 0  # 2**e <= |v| < 2**(e+1)
    e_high = math.frexp(high)[1] - 1 if low is not None else 0
    k = 52 - e_low  # v * 2**k: a multiple of 2**(e(v) - e_low), an integer for every v
    if e_high - e_low <= 9 and k <= 1000:  # and below 2**(e_high - e_low + 53) <= 2**62: one k
        count, steps, scaled, low_now, high_now = conn.execute(
            "SELECT count(*), group_concat(step), group_concat(CAST(value * ? AS INTEGER)),"
            f" min(abs(value)) FILTER (WHERE value != 0), max(abs(value)) FROM metric_points WHERE {where}",
            (math.ldexp(1.0, k), *params)).fetchone()
        if (low_now, high_now) != (low, high):  # a value written meanwhile: k may not fit it
            return None
        powers = k
    else:  # magnitudes far apart (a learning rate over decades): k per value, |m| in [2**59, 2**62)
        count, steps, powers, scaled = conn.execute(
            "SELECT count(*), group_concat(step), group_concat(k),"
            " group_concat(CAST(value * power(2.0, k / 2) * power(2.0, k - k / 2) AS INTEGER)) FROM"
            " (SELECT step, value, CASE WHEN value = 0 THEN 0 ELSE 60 - CAST(floor(log2(abs(value))) AS INTEGER)"
            f" END AS k FROM metric_points WHERE {where})", params).fetchone()
        powers = _ints(powers)
    steps, scaled = _ints(steps), _ints(scaled)
    if not count == n == steps.size == scaled.size or (not np.isscalar(powers) and powers.size != n):
        return None
    values = np.ldexp(scaled.astype(np.float64), -np.asarray(powers, dtype=np.int64).astype(np.int32))
    if steps.size > 1 and not np.all(steps[1:] > steps[:-1]):  # SQLite chose another order
        order = np.argsort(steps, kind="stable")
        steps, values = steps[order], values[order]
    return steps, values


def _ints(text) -> np.ndarray:
    if not text:
        return np.empty(0, dtype=np.int64)
    return np.fromstring(text, dtype=np.int64, sep=",")


def _tuples(rows) -> tuple[np.ndarray, np.ndarray]:
    flat = np.fromiter(itertools.chain.from_iterable(rows), dtype=float, count=2 * len(rows))
    steps, values = flat[0::2], flat[1::2].copy()
    if steps.size and abs(steps).max() >= EXACT_FLOAT:  # huge steps: exact, the slow way
        return np.array([s for s, _ in rows], dtype=np.int64), values
    return steps.astype(np.int64), values


class _OverBudget(Exception):
    """More rows to read from the table than ``read_history``'s ``max_table_rows``."""


class _Budget:
    def __init__(self, rows: int | None):
        self.left = rows

    def charge(self, n: int) -> None:
        if self.left is not None:
            self.left -= n
            if self.left < 0:
                raise _OverBudget


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


def _read_plain(db, experiment_id: int, keys, budget: _Budget) -> dict[str, HistorySeries]:
    conn = _Queries(db)
    out = {}
    for key in sorted(keys if keys is not None else _keys_of(conn, experiment_id)):
        steps, values = _points(conn, experiment_id, key, None, None, budget=budget)
        if steps.size:
            out[key] = HistorySeries(steps, values)
    return out


def _read_chunked(conn, experiment_id: int, keys, budget: _Budget) -> dict[str, HistorySeries]:
    chunks: dict[str, list] = {}
    sql = "SELECT id, key, first_step, last_step, n, steps, vals FROM metric_chunks WHERE experiment_id = ?"
    for row in conn.execute(sql + " ORDER BY key, first_step", (experiment_id,)):
        chunks.setdefault(row[1], []).append(row)
    out = {}
    for key in sorted(keys if keys is not None else _keys_of(conn, experiment_id)):
        pieces, gaps, previous = [], [], None
        for chunk_id, _, first, last, n, steps, vals in chunks.get(key, ()):
            gap = _points(conn, experiment_id, key, None if previous is None else previous[1], first,
                          budget=budget)
            if gap[0].size:
                pieces.append(gap)
                gaps.append((len(pieces) - 1, previous))
            pieces.append((np.frombuffer(steps, dtype="<i8", count=n),
                           np.frombuffer(vals, dtype="<f8", count=n)))
            previous = (chunk_id, last, len(pieces) - 1, n)
        tail = _points(conn, experiment_id, key, None if previous is None else previous[1], None,
                       budget=budget)
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
        _insert_chunk(conn, experiment_id, key, steps[start:start + CHUNK], values[start:start + CHUNK])


def _insert_chunk(conn, experiment_id: int, key: str, steps: np.ndarray, values: np.ndarray) -> None:
    conn.execute("INSERT INTO metric_chunks (experiment_id, key, first_step, last_step, n, steps, vals)"
                 " VALUES (?, ?, ?, ?, ?, ?, ?)",
                 (experiment_id, key, int(steps[0]), int(steps[-1]), int(steps.size),
                  steps.astype("<i8").tobytes(), values.astype("<f8").tobytes()))


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
