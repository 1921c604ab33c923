"""The SQLite database: one file, versioned schema, serialized access.

The schema version lives in ``PRAGMA user_version``. ``MIGRATIONS`` is an
ordered list; opening a database applies the steps it has not seen yet, each
in its own transaction, after copying the file to ``<name>.v<N>.bak``.
A file that is not a database, or one written by a newer app, is reported
with :class:`DatabaseError` and left exactly as it was.

One connection is shared by the UI thread and the worker threads that feed it
metrics; every use goes through a re-entrant lock.
"""
from __future__ import annotations

import contextlib
import sqlite3
import threading
from pathlib import Path
from typing import Any, Iterable, Iterator

_V1 = """
CREATE TABLE projects (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP
);
CREATE TABLE datasets (
    id INTEGER PRIMARY KEY,
    project_id INTEGER REFERENCES projects(id),
    name TEXT NOT NULL,
    path TEXT NOT NULL,
    num_samples INTEGER,
    channels INTEGER,
    sample_rate INTEGER,
    duration REAL,
    created_at TIMESTAMP
);
CREATE TABLE experiments (
    id INTEGER PRIMARY KEY,
    project_id INTEGER,
    name TEXT NOT NULL,
    dataset_id INTEGER,
    config TEXT,
    status TEXT DEFAULT 'running',
    started_at TIMESTAMP,
    completed_at TIMESTAMP,
    metrics TEXT,
    FOREIGN KEY (project_id) REFERENCES projects(id),
    FOREIGN KEY (dataset_id) REFERENCES datasets(id)
);
"""

# v2: what history, logs, re-attach and resume need. Metric points are
# appended (one row per key and step), never rewritten as one JSON blob.
_V2 = """
CREATE TABLE metric_points (
    experiment_id INTEGER NOT NULL REFERENCES experiments(id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    step INTEGER NOT NULL,
    value REAL NOT NULL,
    PRIMARY KEY (experiment_id, key, step)
) WITHOUT ROWID;
CREATE TABLE experiment_events (
    id INTEGER PRIMARY KEY,
    experiment_id INTEGER NOT NULL REFERENCES experiments(id) ON DELETE CASCADE,
    at TIMESTAMP NOT NULL,
    kind TEXT NOT NULL,
    step INTEGER,
    detail TEXT
);
ALTER TABLE experiments ADD COLUMN out_dir TEXT;
ALTER TABLE experiments ADD COLUMN log_path TEXT;
ALTER TABLE experiments ADD COLUMN pid INTEGER;
ALTER TABLE experiments ADD COLUMN pid_started_at REAL;
ALTER TABLE experiments ADD COLUMN current_step INTEGER DEFAULT 0;
ALTER TABLE experiments ADD COLUMN error TEXT;
CREATE INDEX experiments_status ON experiments(status);
"""

# v3: exported models.
_V3 = """
CREATE TABLE exports (
    id INTEGER PRIMARY KEY,
    experiment_id INTEGER NOT NULL REFERENCES experiments(id) ON DELETE CASCADE,
    path TEXT NOT NULL,
    streaming INTEGER NOT NULL,
    fidelity REAL,
    step INTEGER,
    size_bytes INTEGER,
    created_at TIMESTAMP NOT NULL
);
"""

# v4: the run controller. RAVE's run folder as the launcher printed it (stored, not
# guessed), the queue order of queued runs, and the token that marks the launcher's
# own output lines (a line without it is RAVE's or the person's text, never trusted).
_V4 = """
ALTER TABLE experiments ADD COLUMN run_dir TEXT;
ALTER TABLE experiments ADD COLUMN queue_pos INTEGER;
ALTER TABLE experiments ADD COLUMN launch_token TEXT;
CREATE INDEX experiments_queue ON experiments(queue_pos) WHERE queue_pos IS NOT NULL;
"""

MIGRATIONS: list[str] = [_V1, _V2, _V3, _V4]
SCHEMA_VERSION = len(MIGRATIONS)


class DatabaseError(Exception):
    """A database the app cannot use; the message says what to do."""


def _probe_uri(path: Path) -> str:
    """A read-only URI for ``path`` (percent-encoded: '#', '?' and '%' are legal in
    folder names). ``immutable`` when no other connection is using the file, so
    that looking at a WAL database does not leave -wal/-shm files behind."""
    uri = path.resolve().as_uri() + "?mode=ro"
    side = [path.with_name(path.name + suffix) for suffix in ("-wal", "-journal")]
    if not any(p.exists() for p in side):
        uri += "&immutable=1"
    return uri


def _read_user_version(path: Path) -> int:
    """Read the schema version without writing a byte to the file (or next to it)."""
    try:
        conn = sqlite3.connect(_probe_uri(path), uri=True)
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            objects = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise DatabaseError(
            f"The database file {path} is damaged or is not a RAVE GUI database ({exc}). "
            "It was left untouched: move it aside (or restore a .bak copy next to it) "
            "and start the app again."
        ) from exc
    if version == 0 and objects:
        raise DatabaseError(
            f"The file {path} is an SQLite database, but not one RAVE GUI wrote "
            "(it has tables and no RAVE GUI schema version). It was left untouched: "
            "move it aside, or choose another data folder with --data-dir."
        )
    return int(version)


class Database:
    """Open (creating or migrating) the SQLite file at ``path``."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._lock = threading.RLock()
        existing = self.path.exists() and self.path.stat().st_size > 0
        version = _read_user_version(self.path) if existing else 0
        if version > SCHEMA_VERSION:
            raise self._too_new(version)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(
            str(self.path), check_same_thread=False, isolation_level=None, timeout=30
        )
        try:
            self._conn.row_factory = sqlite3.Row
            self._conn.execute("PRAGMA foreign_keys = ON")
            # read again through the real connection: another instance may have
            # written between the probe and now
            version = int(self._conn.execute("PRAGMA user_version").fetchone()[0])
            if version > SCHEMA_VERSION:
                raise self._too_new(version)
            if existing and 0 < version < SCHEMA_VERSION:
                # before anything else touches the file (the WAL switch included)
                self.backup(self.path.with_name(f"{self.path.name}.v{version}.bak"))
            self._conn.execute("PRAGMA journal_mode = WAL")
            self._conn.execute("PRAGMA synchronous = NORMAL")
            self._migrate(version)
        except sqlite3.Error as exc:
            self._conn.close()
            raise DatabaseError(
                f"The database {self.path} could not be opened or upgraded from schema "
                f"{version} ({exc}). A copy from before the upgrade is next to it "
                f"({self.path.name}.v{version}.bak) when there was one to make; "
                "restore it, or move the file aside and start the app again."
            ) from exc
        except BaseException:
            self._conn.close()
            raise

    def _too_new(self, version: int) -> DatabaseError:
        return DatabaseError(
            f"The database {self.path} was written by a newer RAVE GUI "
            f"(schema {version}, this app knows up to {SCHEMA_VERSION}). "
            "It was left untouched: update RAVE GUI to open it.")

    # -- schema -----------------------------------------------------------
    def _migrate(self, current: int) -> None:
        for number, script in enumerate(MIGRATIONS, start=1):
            if number <= current:
                continue
            with self.transaction() as conn:
                for statement in _statements(script):
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {number}")

    @property
    def schema_version(self) -> int:
        return int(self.query_one("PRAGMA user_version")[0])

    def backup(self, target: str | Path) -> Path:
        target = Path(target)
        with self._lock:
            dest = sqlite3.connect(str(target))
            try:
                self._conn.backup(dest)
            finally:
                dest.close()
        return target

    # -- access -----------------------------------------------------------
    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """All-or-nothing block; nests (inner blocks join the outer one)."""
        with self._lock:
            if self._conn.in_transaction:
                yield self._conn
                return
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
                self._conn.execute("COMMIT")
            except BaseException:
                # a failed statement may have ended the transaction itself
                # (INSERT OR ROLLBACK, SQLITE_FULL): a second ROLLBACK would then
                # raise and hide the real error. A failed COMMIT is rolled back too,
                # or every later block would silently join a transaction never committed.
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise

    def execute(self, sql: str, params: Iterable[Any] | dict = ()) -> sqlite3.Cursor:
        with self.transaction() as conn:
            return conn.execute(sql, params)

    def executemany(self, sql: str, rows: Iterable[Iterable[Any]]) -> None:
        with self.transaction() as conn:
            conn.executemany(sql, rows)

    def query(self, sql: str, params: Iterable[Any] | dict = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    def query_one(self, sql: str, params: Iterable[Any] | dict = ()) -> sqlite3.Row | None:
        with self._lock:
            return self._conn.execute(sql, params).fetchone()

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def _statements(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]
