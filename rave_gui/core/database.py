"""The SQLite database: one file, versioned schema, serialized access.

The schema version lives in ``PRAGMA user_version``. ``MIGRATIONS`` is an
ordered list; opening a database applies the steps it has not seen yet, each
in its own transaction, after copying the file to ``<name>.v<N>.bak``.
A file that is not a database, one that fails SQLite's ``quick_check``, or one
written by a newer app, is reported with :class:`DatabaseError` and left exactly
as it was; :func:`restore_backup` puts the newest backup in its place (the file's
health and backups live in ``database_file``). After a healthy open the app keeps
``<name>.last-good.bak`` (once per app start).

One connection is shared by the UI thread and the worker threads that feed it
metrics; every use goes through a re-entrant lock. A write that fails for a
reason outside the app (a read-only file, a full disk, a lock held by another
program) raises :class:`DatabaseError` with a sentence that says what to do.
"""
from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from pathlib import Path
from typing import Any, Iterable, Iterator

from rave_gui.core.database_file import (  # noqa: F401 (public API, re-exported)
    LAST_GOOD_SUFFIX, DatabaseDamaged, DatabaseError, backups, newest_backup, probe,
    restore_backup)

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

# v5: other machines (SSH hosts) and what a run there needs: where it lives on the
# host (its folder, RAVE's run folder, the dataset copy) and which process it is
# (pid, process group, start time as "boot-id:start-tick", launch token). A dataset
# registered by its path on a host belongs to that machine. No password, ever.
_V5 = """
CREATE TABLE machines (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL DEFAULT 'ssh' CHECK (kind IN ('ssh')),
    host TEXT NOT NULL,
    port INTEGER,
    user TEXT,
    ssh_config TEXT,
    python TEXT NOT NULL,
    work_dir TEXT NOT NULL,
    gpus TEXT,
    cpus INTEGER,
    checked_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL
);
CREATE TABLE remote_runs (
    experiment_id INTEGER PRIMARY KEY REFERENCES experiments(id) ON DELETE CASCADE,
    machine_id INTEGER REFERENCES machines(id) ON DELETE SET NULL,
    out_dir TEXT NOT NULL,
    run_dir TEXT,
    dataset_path TEXT,
    pid INTEGER,
    pgid INTEGER,
    pid_start TEXT,
    token TEXT
);
ALTER TABLE datasets ADD COLUMN machine_id INTEGER REFERENCES machines(id);
"""

# v6: the models library. Exports widened: an imported model has no run, a model outlives
# its run (ON DELETE SET NULL, the run's name kept), and each row carries its checkpoint and
# what the model check reported. SQLite cannot change a foreign key in place: the table is
# rebuilt (create, copy, drop, rename), every column and row kept (``backend/models.py``).
_V6 = """CREATE TABLE exports_v2 (
    id INTEGER PRIMARY KEY,
    experiment_id INTEGER REFERENCES experiments(id) ON DELETE SET NULL,
    path TEXT NOT NULL,
    streaming INTEGER,
    fidelity REAL,
    step INTEGER,
    size_bytes INTEGER,
    created_at TIMESTAMP NOT NULL,
    name TEXT,
    source TEXT NOT NULL DEFAULT 'export' CHECK (source IN ('export', 'import')),
    run_name TEXT,
    checkpoint TEXT,
    validation REAL,
    latent_size INTEGER,
    full_latent_size INTEGER,
    sample_rate INTEGER,
    channels INTEGER,
    check_status TEXT NOT NULL DEFAULT 'unchecked' CHECK (check_status IN ('unchecked', 'ok', 'broken')),
    check_message TEXT,
    checked_at TIMESTAMP
);
INSERT INTO exports_v2 (id, experiment_id, path, streaming, fidelity, step, size_bytes, created_at, run_name)
    SELECT e.id, e.experiment_id, e.path, e.streaming, e.fidelity, e.step, e.size_bytes, e.created_at, x.name
    FROM exports AS e LEFT JOIN experiments AS x ON x.id = e.experiment_id;
DROP TABLE exports;
ALTER TABLE exports_v2 RENAME TO exports;
CREATE INDEX exports_experiment ON exports(experiment_id);
CREATE INDEX exports_path ON exports(path)
"""

# v7: Slurm clusters. A machine whose ``slurm`` holds settings (JSON: partition, account,
# GPUs, CPUs, memory, time limit, margin, modules, setup and extra #SBATCH lines) is a
# cluster reached through its login node; a run there keeps its current job id.
_V7 = """
ALTER TABLE machines ADD COLUMN slurm TEXT;
ALTER TABLE remote_runs ADD COLUMN job_id TEXT
"""

MIGRATIONS: list[str] = [_V1, _V2, _V3, _V4, _V5, _V6, _V7]
SCHEMA_VERSION = len(MIGRATIONS)
DEFAULT_TIMEOUT = 30.0
# SQLite's primary result codes (the low byte of an extended code)
_SQLITE_ERROR, _SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_READONLY = 1, 5, 6, 8
_SQLITE_IOERR, _SQLITE_CORRUPT, _SQLITE_FULL, _SQLITE_CANTOPEN, _SQLITE_NOTADB = 10, 11, 13, 14, 26
# files opened (and backed up) in this process: the rolling backup is made once per app start
_backed_up: set[Path] = set()


def _error_code(exc: sqlite3.Error) -> int | None:
    """SQLite's primary result code (Python 3.11+), or one guessed from the message."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF
    text = str(exc).lower()
    for needle, guess in (("readonly", _SQLITE_READONLY), ("read-only", _SQLITE_READONLY),
                          ("disk is full", _SQLITE_FULL), ("locked", _SQLITE_BUSY),
                          ("busy", _SQLITE_BUSY), ("malformed", _SQLITE_CORRUPT)):
        if needle in text:
            return guess
    return None


def _writable(path: Path) -> bool:
    """Whether this user may write the file (when it exists) and its folder."""
    return ((not path.exists() or os.access(path, os.W_OK))
            and os.access(path.parent, os.W_OK | os.X_OK))


def _outside_cause(exc: sqlite3.Error, path: Path, read_only: bool) -> str | None:
    """The sentence for a failure caused outside the app (permissions, a full disk,
    another program's lock), or None when the cause is something else."""
    code = _error_code(exc)
    if code in (_SQLITE_CANTOPEN, _SQLITE_IOERR) and not _writable(path):
        code = _SQLITE_READONLY  # SQLite cannot create the -wal/-shm files next to it
    if code == _SQLITE_READONLY and read_only:
        return (f"The database {path} was opened read-only; make the change in a RAVE GUI "
                "window that opened it normally.")
    if code == _SQLITE_READONLY:
        return (f"The database file {path} is read-only; fix its permissions (it may have "
                "been created with sudo: give it and its folder back to your user), or choose "
                "another data folder with --data-dir.")
    if code == _SQLITE_FULL:
        return (f"The disk holding {path} is full; free some space (old checkpoints and "
                "exports take the most), then try again.")
    if code in (_SQLITE_BUSY, _SQLITE_LOCKED):
        return (f"The database {path} is busy (another program holds a lock on it); close "
                "other programs that use it (another RAVE GUI, an SQLite browser), then try again.")
    return None


def _translatable(exc: BaseException) -> bool:
    """An SQLite failure of the file or the disk, not of the app's own SQL: constraint
    violations (IntegrityError), misuse and SQL errors (SQLITE_ERROR) stay as they are."""
    if type(exc) is not sqlite3.DatabaseError and not isinstance(exc, sqlite3.OperationalError):
        return False
    return getattr(exc, "sqlite_errorcode", None) is None or _error_code(exc) != _SQLITE_ERROR


@contextlib.contextmanager
def immediate_transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` … ``COMMIT`` on an autocommit connection, rolled back on any failure."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        # a failed statement may have ended the transaction itself
        # (INSERT OR ROLLBACK, SQLITE_FULL): a second ROLLBACK would then
        # raise and hide the real error. A failed COMMIT is rolled back too,
        # or every later block would silently join a transaction never committed.
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


class Database:
    """Open (creating, checking or migrating) the SQLite file at ``path``.

    ``read_only`` opens an existing file without writing to it (no migration, no
    backup; every write fails with a sentence); ``timeout`` is how many seconds a
    write waits for another program's lock before it gives up."""

    def __init__(self, path: str | Path, *, read_only: bool = False,
                 timeout: float = DEFAULT_TIMEOUT):
        self.path = Path(path)
        self.read_only = read_only
        self.last_good_backup: Path | None = None
        self._lock = threading.RLock()
        existing = self.path.exists() and self.path.stat().st_size > 0
        if read_only and not existing:
            raise DatabaseError(f"The database {self.path} does not exist, so it cannot be opened "
                                "read-only. Start RAVE GUI normally once to create it.")
        version = probe(self.path) if existing else 0
        if version > SCHEMA_VERSION:
            raise self._too_new(version)
        try:
            if read_only:
                self._conn = sqlite3.connect(self.path.resolve().as_uri() + "?mode=ro", uri=True,
                                             check_same_thread=False, isolation_level=None,
                                             timeout=timeout)
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._conn = sqlite3.connect(str(self.path), check_same_thread=False,
                                             isolation_level=None, timeout=timeout)
        except (sqlite3.Error, OSError) as exc:
            outside = isinstance(exc, sqlite3.Error) and _outside_cause(exc, self.path, read_only)
            raise DatabaseError(outside or (
                f"The database {self.path} could not be opened ({exc}). Check that its folder "
                "exists and that you may write to it, or choose another data folder with "
                "--data-dir.")) from exc
        try:
            self._conn.row_factory = sqlite3.Row
            self._conn.execute("PRAGMA foreign_keys = ON")
            # read again through the real connection: another instance may have
            # written between the probe and now
            version = int(self._conn.execute("PRAGMA user_version").fetchone()[0])
            if version > SCHEMA_VERSION:
                raise self._too_new(version)
            if read_only:
                if version < SCHEMA_VERSION:
                    raise DatabaseError(
                        f"The database {self.path} needs an upgrade (schema {version} to "
                        f"{SCHEMA_VERSION}), which a read-only open cannot do. Start RAVE GUI "
                        "normally once to upgrade it.")
                return
            if existing and 0 < version < SCHEMA_VERSION:
                # before anything else touches the file (the WAL switch included)
                self.backup(self.path.with_name(f"{self.path.name}.v{version}.bak"))
            self._conn.execute("PRAGMA journal_mode = WAL")
            self._conn.execute("PRAGMA synchronous = NORMAL")
            self._migrate(version)
        except sqlite3.Error as exc:
            self._conn.close()
            raise self._open_failed(version, exc) from exc
        except BaseException:
            self._conn.close()
            raise
        if existing:
            self._keep_last_good()

    def _too_new(self, version: int) -> DatabaseError:
        return DatabaseError(
            f"The database {self.path} was written by a newer RAVE GUI "
            f"(schema {version}, this app knows up to {SCHEMA_VERSION}). "
            "It was left untouched: update RAVE GUI to open it.")

    def _open_failed(self, version: int, exc: sqlite3.Error) -> DatabaseError:
        outside = _outside_cause(exc, self.path, self.read_only)
        if outside:
            return DatabaseError(outside)
        bak = self.path.with_name(f"{self.path.name}.v{version}.bak")
        if version and bak.is_file():
            what_now = (f"A copy from before the upgrade is next to it ({bak.name}): restore "
                        "it, or move the file aside and start the app again.")
        else:
            what_now = ("Move the file aside and start the app again, or choose another data "
                        "folder with --data-dir.")
        return DatabaseError(f"The database {self.path} could not be opened or upgraded from "
                             f"schema {version} ({exc}). {what_now}")

    def _keep_last_good(self) -> None:
        """Copy a healthy file to ``<name>.last-good.bak``: once per app start, and
        only when it holds something worth keeping (a dataset or an experiment).
        A copy that cannot be made (a full disk) does not stop the app."""
        key = self.path.resolve()
        if key in _backed_up:
            return
        _backed_up.add(key)
        target = self.path.with_name(self.path.name + LAST_GOOD_SUFFIX)
        partial = target.with_name(target.name + ".partial")
        try:
            if not self.query_one("SELECT EXISTS (SELECT 1 FROM datasets) "
                                  "OR EXISTS (SELECT 1 FROM experiments)")[0]:
                return
            partial.unlink(missing_ok=True)
            self.backup(partial)
            os.replace(partial, target)
        except (sqlite3.Error, OSError):
            with contextlib.suppress(OSError):
                partial.unlink(missing_ok=True)
            return
        self.last_good_backup = target

    # -- schema -----------------------------------------------------------
    def _migrate(self, current: int) -> None:
        for number, script in enumerate(MIGRATIONS, start=1):
            if number <= current:
                continue
            with self._transaction() as conn:
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
        """All-or-nothing block; nests (inner blocks join the outer one). A failure of
        the file or the disk (read-only, full, locked, damaged) is rolled back and
        raised as :class:`DatabaseError` with a sentence; the SQLite error is its cause."""
        try:
            with self._transaction() as conn:
                yield conn
        except sqlite3.Error as exc:
            if not _translatable(exc):
                raise
            raise self._write_failed(exc) from exc

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self._conn.in_transaction:
                yield self._conn
                return
            with immediate_transaction(self._conn) as conn:
                yield conn

    def _write_failed(self, exc: sqlite3.Error) -> DatabaseError:
        outside = _outside_cause(exc, self.path, self.read_only)
        if outside:
            return DatabaseError(outside + " The last change was not saved.")
        if _error_code(exc) in (_SQLITE_CORRUPT, _SQLITE_NOTADB):
            return DatabaseError(
                f"The database {self.path} is damaged ({exc}); the last change was not saved. "
                "Close RAVE GUI and start it again: it checks the file and says how to "
                "restore the last good copy.")
        return DatabaseError(
            f"The database {self.path} could not be written ({exc}); the last change was not "
            "saved. Check the disk and the folder's permissions, then try again.")

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
