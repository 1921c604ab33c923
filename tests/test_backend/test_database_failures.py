"""The database when the file or the disk fails: read-only, full, locked by another
process, damaged. Real files and real processes; every failure is a sentence."""
from __future__ import annotations

import hashlib
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rave_gui.core import database as database_module
from rave_gui.core.database import (LAST_GOOD_SUFFIX, Database, DatabaseDamaged, DatabaseError,
                                    restore_backup)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def siblings(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir() if p.name.startswith(path.name))


def count(path: Path, table: str = "projects") -> int:
    """Rows as another connection sees them (what really reached the file)."""
    conn = sqlite3.connect(path)
    try:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    finally:
        conn.close()


def assert_sentence(message: str) -> None:
    assert message.endswith(".") and not message[0].islower() and "Traceback" not in message


def worth_keeping(path: Path, rows: int = 3000) -> None:
    """A database with a dataset, an experiment and enough metric points for many pages."""
    db = Database(path)
    db.execute("INSERT INTO datasets (name, path) VALUES ('drums', '/d')")
    db.execute("INSERT INTO experiments (name, dataset_id) VALUES ('first', 1)")
    db.executemany("INSERT INTO metric_points VALUES (1, ?, ?, ?)",
                   [(key, step, 0.5) for key in ("a", "b", "c") for step in range(rows)])
    db.close()


def test_database_error_is_a_value_error():
    assert issubclass(DatabaseError, ValueError) and issubclass(DatabaseDamaged, DatabaseError)


# -- writes that fail -------------------------------------------------------------

def test_write_to_a_read_only_database_is_a_sentence(tmp_path):
    path = tmp_path / "db.sqlite3"
    Database(path).close()
    db = Database(path, read_only=True)
    try:
        assert db.query_one("SELECT count(*) FROM projects")[0] == 0  # reading works
        with pytest.raises(DatabaseError) as info:
            db.execute("INSERT INTO projects (name) VALUES ('x')")
        message = str(info.value)
        assert "read-only" in message and str(path) in message and "not saved" in message
        assert_sentence(message)
        assert isinstance(info.value.__cause__, sqlite3.OperationalError)
        assert not db._conn.in_transaction
        with pytest.raises(DatabaseError):  # executemany too
            db.executemany("INSERT INTO projects (name) VALUES (?)", [("a",), ("b",)])
    finally:
        db.close()
    assert count(path) == 0


def test_read_only_open_neither_creates_nor_upgrades(tmp_path):
    with pytest.raises(DatabaseError, match="does not exist"):
        Database(tmp_path / "none.sqlite3", read_only=True)
    assert not (tmp_path / "none.sqlite3").exists()


def test_a_full_database_is_a_sentence_and_nothing_is_half_written(db):
    """SQLITE_FULL for real: the file may not grow past its current size."""
    db.execute("INSERT INTO projects (name) VALUES ('kept')")
    pages = db.query_one("PRAGMA page_count")[0]
    db._conn.execute(f"PRAGMA max_page_count = {pages + 1}")
    with pytest.raises(DatabaseError) as info:
        db.executemany("INSERT INTO projects (name) VALUES (?)", [("x" * 2000,)] * 50)
    message = str(info.value)
    assert "full" in message and "free some space" in message and str(db.path) in message
    assert_sentence(message)
    assert info.value.__cause__.sqlite_errorname == "SQLITE_FULL"
    assert db.query_one("SELECT count(*) FROM projects")[0] == 1
    assert not db._conn.in_transaction


HOLD_LOCK = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
conn.execute("INSERT INTO projects (name) VALUES ('other process')")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
conn.execute("ROLLBACK")
"""


def test_a_lock_held_by_another_process_is_a_sentence(tmp_path):
    path = tmp_path / "db.sqlite3"
    db = Database(path, timeout=0.3)
    child = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(path), "4"],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "locked"
        started = time.monotonic()
        with pytest.raises(DatabaseError) as info:
            db.execute("INSERT INTO projects (name) VALUES ('mine')")
        assert time.monotonic() - started < 3  # the short timeout, not 30 s
        message = str(info.value)
        assert "busy" in message and "another program" in message and str(path) in message
        assert_sentence(message)
        assert info.value.__cause__.sqlite_errorname in ("SQLITE_BUSY", "SQLITE_LOCKED")
    finally:
        child.kill()
        child.wait(timeout=10)
        child.stdout.close()
    db.execute("INSERT INTO projects (name) VALUES ('after')")  # works once the lock is gone
    assert [r["name"] for r in db.query("SELECT name FROM projects")] == ["after"]
    db.close()


def test_mistakes_in_the_apps_own_sql_stay_sqlite_errors(db):
    """Bugs are not dressed up as the person's problem: they reach the crash log as they are."""
    with pytest.raises(sqlite3.OperationalError) as info:
        db.execute("INSERT INTO no_such_table VALUES (1)")
    assert not isinstance(info.value, DatabaseError)
    with pytest.raises(sqlite3.IntegrityError):
        db.execute("INSERT INTO experiments (name, dataset_id) VALUES ('x', 999)")


# -- an open or an upgrade that fails ----------------------------------------------------

def v3_database(path: Path) -> None:
    conn = sqlite3.connect(path)
    for script in database_module.MIGRATIONS[:3]:
        for statement in database_module._statements(script):
            conn.execute(statement)
    conn.execute("PRAGMA user_version = 3")
    conn.commit()
    conn.close()


def test_failed_upgrade_names_the_backup_it_made(tmp_path):
    path = tmp_path / "db.sqlite3"
    v3_database(path)
    conn = sqlite3.connect(path)
    conn.execute("ALTER TABLE experiments ADD COLUMN run_dir TEXT")  # v4 adds it: the upgrade fails
    conn.commit()
    conn.close()
    with pytest.raises(DatabaseError) as info:
        Database(path)
    message = str(info.value)
    assert (tmp_path / "db.sqlite3.v3.bak").is_file()
    assert "db.sqlite3.v3.bak" in message and "restore it" in message
    assert_sentence(message)


def test_failed_upgrade_without_a_backup_does_not_mention_one(tmp_path):
    path = tmp_path / "db.sqlite3"
    v3_database(path)
    (tmp_path / "db.sqlite3.v3.bak").mkdir()  # the copy cannot be made
    with pytest.raises(DatabaseError) as info:
        Database(path)
    message = str(info.value)
    assert ".bak" not in message and "Move the file aside" in message
    assert_sentence(message)


# -- a damaged file, its check and its backup --------------------------------------------

def truncate_last_page(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[:-1000])


def break_an_index_page(path: Path) -> None:
    """Overwrite the cell pointers of a leaf index page (metric_points is WITHOUT ROWID)."""
    data = bytearray(path.read_bytes())
    page_size = int.from_bytes(data[16:18], "big")
    leaves = [n for n in range(1, len(data) // page_size) if data[n * page_size] == 0x0A]
    page = leaves[len(leaves) // 2]
    data[page * page_size + 8: page * page_size + 24] = b"\xff" * 16
    path.write_bytes(bytes(data))


@pytest.fixture
def opened_once(tmp_path, monkeypatch) -> Path:
    """A database worth keeping, opened once more as the app does at start (which makes
    the rolling backup)."""
    monkeypatch.setattr(database_module, "_backed_up", set())
    path = tmp_path / "rave_gui.sqlite3"
    worth_keeping(path)
    db = Database(path)
    assert db.last_good_backup == tmp_path / ("rave_gui.sqlite3" + LAST_GOOD_SUFFIX)
    db.close()
    return path


@pytest.mark.parametrize("damage", [truncate_last_page, break_an_index_page], ids=["truncated", "index"])
def test_damaged_file_is_refused_and_the_backup_restores(opened_once, damage):
    path = opened_once
    backup = path.with_name(path.name + LAST_GOOD_SUFFIX)
    damage(path)
    damaged_bytes, names = path.read_bytes(), siblings(path)
    with pytest.raises(DatabaseDamaged) as info:
        Database(path)
    message = str(info.value)
    assert "damaged" in message and str(path) in message and "left untouched" in message
    assert backup.name in message and "copy" in message
    assert_sentence(message)
    assert info.value.backup == backup
    assert path.read_bytes() == damaged_bytes and siblings(path) == names  # untouched

    aside = restore_backup(path)
    assert aside.name.startswith(path.name + ".damaged-")
    assert aside.read_bytes() == damaged_bytes  # kept, never deleted
    db = Database(path)
    try:
        assert db.query_one("SELECT name FROM experiments")[0] == "first"
        assert db.query_one("SELECT count(*) FROM metric_points")[0] == 9000
        assert db.query_one("PRAGMA integrity_check")[0] == "ok"
    finally:
        db.close()


def test_quick_check_failure_is_reported_with_its_lines(opened_once):
    truncate_last_page(opened_once)
    with pytest.raises(DatabaseDamaged) as info:
        Database(opened_once)
    assert "SQLite's check says" in str(info.value)


def test_damaged_file_without_a_backup_says_how_to_start_afresh(tmp_path):
    path = tmp_path / "rave_gui.sqlite3"
    worth_keeping(path)  # new file: no backup is made
    truncate_last_page(path)
    with pytest.raises(DatabaseDamaged) as info:
        Database(path)
    assert info.value.backup is None
    assert "no backup" in str(info.value) and ".bak" not in str(info.value)
    with pytest.raises(DatabaseError, match="no backup"):
        restore_backup(path)
    assert siblings(path) == [path.name]


def test_restore_moves_the_wal_aside_too(opened_once):
    path = opened_once
    wal = path.with_name(path.name + "-wal")
    wal.write_bytes(b"stale journal of the damaged file")
    truncate_last_page(path)
    aside = restore_backup(path)
    assert not wal.exists()
    assert aside.with_name(aside.name + "-wal").read_bytes() == b"stale journal of the damaged file"
    Database(path).close()


def test_a_damaged_backup_is_not_restored(opened_once):
    path = opened_once
    truncate_last_page(path)
    truncate_last_page(path.with_name(path.name + LAST_GOOD_SUFFIX))
    before = sha256(path)
    with pytest.raises(DatabaseError, match="cannot be used either"):
        restore_backup(path)
    assert sha256(path) == before


def test_rolling_backup_once_per_start_and_only_when_worth_keeping(tmp_path, monkeypatch):
    monkeypatch.setattr(database_module, "_backed_up", set())
    path = tmp_path / "rave_gui.sqlite3"
    backup = path.with_name(path.name + LAST_GOOD_SUFFIX)
    Database(path).close()
    Database(path).close()
    assert not backup.exists()  # nothing in it worth a copy

    other = tmp_path / "kept.sqlite3"
    worth_keeping(other, rows=10)
    db = Database(other)
    assert db.last_good_backup is not None and db.last_good_backup.is_file()
    db.close()
    db.last_good_backup.unlink()
    Database(other).close()  # the same app start: not again
    assert not db.last_good_backup.exists()
    assert not list(tmp_path.glob("*.partial"))
