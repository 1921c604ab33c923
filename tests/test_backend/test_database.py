"""The SQLite database: new files, migrations, files it must not touch, transactions."""
from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
from pathlib import Path

import pytest

from rave_gui.core.database import MIGRATIONS, SCHEMA_VERSION, Database, DatabaseError


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def siblings(path: Path) -> list[str]:
    """Every file in the folder whose name starts with the database's name."""
    return sorted(p.name for p in path.parent.iterdir() if p.name.startswith(path.name))


def build_v1(path: Path) -> None:
    """A database as the first release wrote it: v1 schema, one dataset, one experiment."""
    conn = sqlite3.connect(path)
    for statement in (s.strip() for s in MIGRATIONS[0].split(";")):
        if statement:
            conn.execute(statement)
    conn.execute("PRAGMA user_version = 1")
    conn.execute("INSERT INTO projects (id, name) VALUES (1, 'p')")
    conn.execute("INSERT INTO datasets (id, project_id, name, path, num_samples, channels, sample_rate)"
                 " VALUES (1, 1, 'drums', '/data/drums', 1000, 1, 44100)")
    conn.execute("INSERT INTO experiments (id, project_id, name, dataset_id, config, status, metrics)"
                 " VALUES (7, 1, 'first run', 1, '{\"max_steps\": 10}', 'completed', '{\"loss\": 1.5}')")
    conn.commit()
    conn.close()


def real_database(path: Path, rows: int = 3000) -> None:
    """A current database big enough to span many pages (so it can be truncated)."""
    db = Database(path)
    db.execute("INSERT INTO datasets (name, path) VALUES ('d', '/d')")
    db.execute("INSERT INTO experiments (name, dataset_id) VALUES ('e', 1)")
    db.executemany("INSERT INTO metric_points VALUES (1, ?, ?, ?)",
                   [(key, step, 0.5) for key in ("a", "b", "c") for step in range(rows)])
    db.close()
    assert siblings(path) == [path.name]  # a clean close leaves no -wal/-shm


# -- a new file ----------------------------------------------------------------

def test_new_file_is_at_latest_version_with_foreign_keys_and_wal(tmp_path):
    path = tmp_path / "sub" / "new.sqlite3"  # parent folder created too
    db = Database(path)
    try:
        assert path.exists()
        assert db.schema_version == SCHEMA_VERSION == len(MIGRATIONS)
        assert db.query_one("PRAGMA foreign_keys")[0] == 1
        assert db.query_one("PRAGMA journal_mode")[0] == "wal"
        tables = {r[0] for r in db.query("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert {"projects", "datasets", "experiments", "metric_points", "experiment_events",
                "exports"} <= tables
        # foreign keys are enforced, not only declared
        with pytest.raises(sqlite3.IntegrityError):
            db.execute("INSERT INTO experiments (name, dataset_id) VALUES ('x', 999)")
    finally:
        db.close()
    assert not list(tmp_path.glob("sub/*.bak"))  # nothing to back up for a new file


def test_reopening_current_database_keeps_rows_and_makes_no_backup(tmp_path):
    path = tmp_path / "db.sqlite3"
    db = Database(path)
    db.execute("INSERT INTO projects (name) VALUES ('kept')")
    db.close()
    db = Database(path)
    try:
        assert [r["name"] for r in db.query("SELECT name FROM projects")] == ["kept"]
        assert db.schema_version == SCHEMA_VERSION
    finally:
        db.close()
    assert not list(tmp_path.glob("*.bak"))


def test_path_with_uri_characters(tmp_path):
    """'#', '?' and '%' are legal in folder names; the read-only probe must not
    mistake them for URI syntax (it used to open a stray file and read version 0)."""
    folder = tmp_path / "My #1 ?music% 100"
    folder.mkdir()
    path = folder / "db.sqlite3"
    db = Database(path)
    db.execute("INSERT INTO projects (name) VALUES ('p')")
    db.close()
    before = sorted(os.listdir(tmp_path))
    db = Database(path)
    try:
        assert db.query_one("SELECT count(*) FROM projects")[0] == 1
    finally:
        db.close()
    assert sorted(os.listdir(tmp_path)) == before
    assert siblings(path) == [path.name]


# -- migrations ---------------------------------------------------------------

def test_v1_database_is_migrated_with_rows_kept_and_a_v1_backup(tmp_path):
    path = tmp_path / "rave_gui.sqlite3"
    build_v1(path)
    db = Database(path)
    try:
        assert db.schema_version == SCHEMA_VERSION
        exp = db.query_one("SELECT * FROM experiments WHERE id = 7")
        assert (exp["name"], exp["dataset_id"], exp["status"]) == ("first run", 1, "completed")
        assert exp["config"] == '{"max_steps": 10}' and exp["metrics"] == '{"loss": 1.5}'
        assert exp["current_step"] == 0 and exp["out_dir"] is None  # v2 columns, defaults
        assert db.query_one("SELECT name, num_samples FROM datasets")[:] == ("drums", 1000)
        # the new columns and tables are usable
        db.execute("UPDATE experiments SET out_dir = '/runs/7', pid = 42, error = 'x' WHERE id = 7")
        db.execute("INSERT INTO metric_points VALUES (7, 'loss', 10, 0.5)")
        db.execute("INSERT INTO experiment_events (experiment_id, at, kind) VALUES (7, 'now', 'started')")
        db.execute("INSERT INTO exports (experiment_id, path, streaming, created_at) VALUES (7, '/m.ts', 1, 'now')")
        assert db.query_one("SELECT out_dir, pid FROM experiments WHERE id = 7")[:] == ("/runs/7", 42)
        assert db.query_one("SELECT value FROM metric_points")[0] == 0.5
        # ON DELETE CASCADE works on the migrated file
        db.execute("DELETE FROM experiments WHERE id = 7")
        assert db.query_one("SELECT count(*) FROM metric_points")[0] == 0
        # v6: a model outlives its run (ON DELETE SET NULL; the models library keeps it)
        assert db.query_one("SELECT experiment_id FROM exports")[0] is None
    finally:
        db.close()

    backup = tmp_path / "rave_gui.sqlite3.v1.bak"
    assert backup.is_file()
    conn = sqlite3.connect(f"{backup.as_uri()}?mode=ro", uri=True)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
        assert conn.execute("SELECT name FROM experiments WHERE id = 7").fetchone()[0] == "first run"
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert tables == {"projects", "datasets", "experiments"}
        columns = {r[1] for r in conn.execute("PRAGMA table_info(experiments)")}
        assert "out_dir" not in columns
    finally:
        conn.close()


def test_v2_database_migrates_one_step_and_backs_up_as_v2(tmp_path):
    path = tmp_path / "db.sqlite3"
    conn = sqlite3.connect(path)
    for script in MIGRATIONS[:2]:
        for statement in (s.strip() for s in script.split(";")):
            if statement:
                conn.execute(statement)
    conn.execute("PRAGMA user_version = 2")
    conn.commit()
    conn.close()
    Database(path).close()
    assert (tmp_path / "db.sqlite3.v2.bak").is_file()
    assert not (tmp_path / "db.sqlite3.v1.bak").exists()


# -- files it must refuse and leave alone -------------------------------------------

def assert_refused_untouched(path: Path, *words: str) -> str:
    digest, names = sha256(path), siblings(path)
    with pytest.raises(DatabaseError) as info:
        Database(path)
    message = str(info.value)
    assert sha256(path) == digest
    assert siblings(path) == names  # no -wal, -shm or .bak appeared
    assert str(path) in message and message.rstrip().endswith(".")
    for word in words:
        assert word in message
    return message


def test_newer_schema_is_refused_and_left_untouched(tmp_path):
    path = tmp_path / "db.sqlite3"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE future (x)")
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.commit()
    conn.close()
    message = assert_refused_untouched(path, "newer", "update")
    assert str(SCHEMA_VERSION + 1) in message


def test_newer_schema_in_wal_mode_leaves_no_wal_files(tmp_path):
    """What a newer RAVE GUI really leaves behind: a WAL-mode file, closed cleanly."""
    path = tmp_path / "db.sqlite3"
    db = Database(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    db.close()
    assert siblings(path) == [path.name]
    assert_refused_untouched(path, "newer")


@pytest.mark.parametrize("content", [
    b"this is a text file, not a database\n" * 50,
    bytes(range(256)) * 64,
    b"SQLite format 3\x00" + b"\xff" * 4000,
], ids=["text", "random", "bad-header"])
def test_file_that_is_not_a_database_is_refused_and_untouched(tmp_path, content):
    path = tmp_path / "db.sqlite3"
    path.write_bytes(content)
    assert_refused_untouched(path, "damaged")


@pytest.mark.parametrize("fraction", [0.02, 0.5, 0.97])
def test_truncated_database_is_refused_and_untouched(tmp_path, fraction):
    source = tmp_path / "full.sqlite3"
    real_database(source)
    data = source.read_bytes()
    assert len(data) > 40_000
    path = tmp_path / "db.sqlite3"
    path.write_bytes(data[: int(len(data) * fraction)])
    assert_refused_untouched(path, "damaged")


def test_foreign_sqlite_database_is_refused(tmp_path):
    path = tmp_path / "db.sqlite3"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE projects (x)")  # someone else's schema, user_version 0
    conn.commit()
    conn.close()
    assert_refused_untouched(path, "not one RAVE GUI wrote")


def test_empty_file_is_treated_as_new(tmp_path):
    path = tmp_path / "db.sqlite3"
    path.touch()
    db = Database(path)
    try:
        assert db.schema_version == SCHEMA_VERSION
    finally:
        db.close()


# -- transactions ------------------------------------------------------------------

def count(db, table="projects") -> int:
    return db.query_one(f"SELECT count(*) FROM {table}")[0]


def test_transaction_commits(db):
    with db.transaction() as conn:
        conn.execute("INSERT INTO projects (name) VALUES ('a')")
        conn.execute("INSERT INTO projects (name) VALUES ('b')")
    assert count(db) == 2
    # visible to another connection: really committed
    other = sqlite3.connect(db.path)
    try:
        assert other.execute("SELECT count(*) FROM projects").fetchone()[0] == 2
    finally:
        other.close()


def test_transaction_rolls_back_on_exception(db):
    with pytest.raises(RuntimeError, match="boom"):
        with db.transaction() as conn:
            conn.execute("INSERT INTO projects (name) VALUES ('a')")
            assert count(db) == 1  # inside, the row is there
            raise RuntimeError("boom")
    assert count(db) == 0
    assert not db._conn.in_transaction
    db.execute("INSERT INTO projects (name) VALUES ('after')")  # the connection still works
    assert count(db) == 1


def test_nested_transactions_join_the_outer_one(db):
    with db.transaction() as outer:
        outer.execute("INSERT INTO projects (name) VALUES ('outer')")
        with db.transaction() as inner:
            assert inner is outer
            inner.execute("INSERT INTO projects (name) VALUES ('inner')")
        db.execute("INSERT INTO projects (name) VALUES ('via execute')")  # nests too
        assert db._conn.in_transaction  # the inner block did not commit early
    assert count(db) == 3

    with pytest.raises(ValueError):
        with db.transaction() as outer:
            outer.execute("INSERT INTO projects (name) VALUES ('x')")
            with db.transaction() as inner:
                inner.execute("INSERT INTO projects (name) VALUES ('y')")
                raise ValueError("inner failed")
    assert count(db) == 3  # the whole outer block was rolled back


def test_error_that_ends_the_transaction_itself_is_not_masked(db):
    """INSERT OR ROLLBACK aborts the transaction inside SQLite; the context manager
    must re-raise that IntegrityError, not 'cannot rollback - no transaction is active'."""
    db.execute("INSERT INTO projects (id, name) VALUES (1, 'a')")
    with pytest.raises(sqlite3.IntegrityError):
        with db.transaction() as conn:
            conn.execute("INSERT INTO projects (name) VALUES ('b')")
            conn.execute("INSERT OR ROLLBACK INTO projects (id, name) VALUES (1, 'dup')")
    assert count(db) == 1
    assert not db._conn.in_transaction
    with db.transaction() as conn:  # and the next block starts (and commits) cleanly
        conn.execute("INSERT INTO projects (name) VALUES ('c')")
    assert count(db) == 2


def test_concurrent_writes_and_reads_from_two_threads(db):
    db.execute("INSERT INTO datasets (name, path) VALUES ('d', '/d')")
    db.execute("INSERT INTO experiments (name, dataset_id) VALUES ('e', 1)")
    errors: list[BaseException] = []
    per_thread = 200

    def writer(key: str) -> None:
        try:
            for step in range(per_thread):
                with db.transaction() as conn:
                    conn.execute("INSERT INTO metric_points VALUES (1, ?, ?, ?)", (key, step, float(step)))
                    conn.execute("UPDATE experiments SET current_step = ? WHERE id = 1", (step,))
                db.query("SELECT * FROM metric_points WHERE key = ? ORDER BY step DESC LIMIT 5", (key,))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(k,)) for k in ("loss", "fidelity")]
    for t in threads:
        t.start()
    for _ in range(50):  # the "UI thread" reads meanwhile
        db.query_one("SELECT count(*) FROM metric_points")
    for t in threads:
        t.join(timeout=30)
    assert not errors, errors
    assert count(db, "metric_points") == 2 * per_thread
