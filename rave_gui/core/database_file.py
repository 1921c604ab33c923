"""The database file on disk: its health check, its backups, and restoring one.

:func:`probe` reads a file's schema version and runs SQLite's ``quick_check``
through a read-only connection, so a damaged file is reported without a byte
written to it or next to it. Backups sit next to the file: ``<name>.v<N>.bak``
(before an upgrade) and ``<name>.last-good.bak`` (after a healthy start);
:func:`restore_backup` puts the newest in place of a damaged file.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import os
import re
import shutil
import sqlite3
from pathlib import Path

LAST_GOOD_SUFFIX = ".last-good.bak"
_QUICK_CHECK_LINES = 3


class DatabaseError(ValueError):
    """A database the app cannot use or write; the message says what to do."""


class DatabaseDamaged(DatabaseError):
    """A database file that fails SQLite's checks. ``backup`` is the newest backup
    next to it (None when there is none), for the app to offer :func:`restore_backup`."""

    def __init__(self, message: str, path: Path, backup: Path | None):
        super().__init__(message)
        self.path = path
        self.backup = backup


def backups(db_path: str | Path) -> list[Path]:
    """The backups next to ``db_path`` (``.last-good.bak``, ``.v<N>.bak``), newest first."""
    path = Path(db_path)
    pattern = re.compile(re.escape(path.name) + r"\.(last-good|v\d+)\.bak")
    found = []
    try:
        for candidate in path.parent.iterdir():
            if pattern.fullmatch(candidate.name) and candidate.is_file():
                found.append((candidate.stat().st_mtime, candidate))
    except OSError:  # the folder cannot be listed, or a file went while it was
        pass
    return [candidate for _, candidate in sorted(found, reverse=True)]


def newest_backup(db_path: str | Path) -> Path | None:
    found = backups(db_path)
    return found[0] if found else None


def _saved_at(path: Path) -> str:
    return _dt.datetime.fromtimestamp(path.stat().st_mtime).strftime("%Y-%m-%d %H:%M")


def _restore_hint(path: Path) -> str:
    """What to do about a damaged file: restore the newest backup, or start afresh."""
    backup = newest_backup(path)
    if backup is None:
        return ("There is no backup next to it: move it aside and start the app again "
                "(with an empty database), or choose another data folder with --data-dir.")
    return (f"The newest backup is {backup.name} (saved {_saved_at(backup)}): to restore it, close "
            f"RAVE GUI, rename {path.name} to keep it aside, and copy {backup.name} to {path.name} "
            "(RAVE GUI offers to do this when it starts in a window).")


def _damaged(path: Path, what: str) -> DatabaseDamaged:
    return DatabaseDamaged(f"The database file {path} {what}. It was left untouched. "
                           f"{_restore_hint(path)}", path, newest_backup(path))


def _probe_uri(path: Path) -> str:
    """A read-only URI for ``path`` (percent-encoded: '#', '?' and '%' are legal in
    folder names). ``immutable`` when no other connection is using the file, so
    that looking at a WAL database does not leave -wal/-shm files behind."""
    uri = path.resolve().as_uri() + "?mode=ro"
    side = [path.with_name(path.name + suffix) for suffix in ("-wal", "-journal")]
    if not any(p.exists() for p in side):
        uri += "&immutable=1"
    return uri


def _quick_check_problems(conn: sqlite3.Connection) -> list[str]:
    """The first lines ``PRAGMA quick_check`` reports, or [] when the file is healthy."""
    rows = conn.execute(f"PRAGMA quick_check({_QUICK_CHECK_LINES})").fetchall()
    lines = [line.strip() for row in rows for line in str(row[0]).splitlines()]
    lines = [line for line in lines if line and not line.startswith("*** in database")]
    return [] if lines == ["ok"] else lines[:_QUICK_CHECK_LINES]


def probe(path: Path) -> int:
    """Check the file and read its schema version without writing a byte to it
    (or next to it); :class:`DatabaseDamaged` when SQLite finds it damaged."""
    try:
        conn = sqlite3.connect(_probe_uri(path), uri=True)
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            objects = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
            problems = _quick_check_problems(conn)
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise _damaged(path, f"is damaged or is not a RAVE GUI database ({exc})") from exc
    if problems:
        raise _damaged(path, "is damaged (SQLite's check says: " + "; ".join(problems)[:300] + ")")
    if version == 0 and objects:
        raise DatabaseError(
            f"The file {path} is an SQLite database, but not one RAVE GUI wrote "
            "(it has tables and no RAVE GUI schema version). It was left untouched: "
            "move it aside, or choose another data folder with --data-dir."
        )
    return int(version)


def restore_backup(db_path: str | Path) -> Path:
    """Put the newest backup in the place of a damaged database file.

    The damaged file (with its -wal/-shm/-journal) is moved aside to
    ``<name>.damaged-<timestamp>``, never deleted; returns that path.
    :class:`DatabaseError` with a sentence when there is no usable backup."""
    path = Path(db_path)
    backup = newest_backup(path)
    if backup is None:
        raise DatabaseError(f"There is no backup of {path} next to it. Move the file aside and "
                            "start the app again (with an empty database).")
    try:
        probe(backup)
    except DatabaseError as exc:
        raise DatabaseError(f"The backup {backup} cannot be used either (it is damaged or not "
                            f"a RAVE GUI database). Move {path.name} aside and start the app "
                            "again (with an empty database).") from exc
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    aside = path.with_name(f"{path.name}.damaged-{stamp}")
    number = 1
    while aside.exists():
        number += 1
        aside = path.with_name(f"{path.name}.damaged-{stamp}-{number}")
    incoming = path.with_name(path.name + ".restoring")
    try:
        shutil.copy2(backup, incoming)  # first, so that a failure leaves everything in place
        for suffix in ("", "-wal", "-shm", "-journal"):
            current = path.with_name(path.name + suffix)
            if current.exists():
                os.replace(current, aside.with_name(aside.name + suffix))
        os.replace(incoming, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            incoming.unlink(missing_ok=True)
        raise DatabaseError(f"The backup {backup} could not be put in place of {path} "
                            f"({exc.strerror or exc}). Check the folder's permissions and free "
                            "space, then try again.") from exc
    return aside
