"""Start-up: --version and --help need no display; the window opens on a data dir; a bad
data folder or a second window on the same one is a sentence, not a traceback."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PyQt6 import sip

from rave_gui import __version__


def _run(*args, **env):
    clean = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    return subprocess.run([sys.executable, "-m", "rave_gui", *args], capture_output=True, text=True,
                          timeout=60, env={**clean, **env})


def test_version_without_a_display():
    out = _run("--version")
    assert out.returncode == 0 and out.stdout.strip() == f"rave-gui {__version__}"


def test_help_without_a_display():
    out = _run("--help")
    assert out.returncode == 0 and "--data-dir" in out.stdout and "RAVE" in out.stdout


def test_a_damaged_database_is_reported_and_left_alone(tmp_path):
    bad = tmp_path / "rave_gui.sqlite3"
    bad.write_bytes(b"this is not sqlite" * 100)
    before = bad.read_bytes()
    out = _run("--data-dir", str(tmp_path), QT_QPA_PLATFORM="offscreen")
    assert out.returncode == 2
    assert "damaged" in out.stderr and "left untouched" in out.stderr
    assert bad.read_bytes() == before


def test_main_window_has_training_and_datasets_pages(qtbot, db):
    from rave_gui.main_window import MainWindow
    from rave_gui.ui.pages.datasets import DatasetsPage
    from rave_gui.ui.pages.machines import MachinesPage
    from rave_gui.ui.pages.models import ModelsPage
    from rave_gui.ui.pages.training import TrainingPage
    window = MainWindow(db)
    try:
        assert [window.sidebar.item(i).text() for i in range(window.sidebar.count())] == [
            "Training", "Datasets", "Models", "Machines"]
        assert isinstance(window.pages.widget(0), TrainingPage)
        assert isinstance(window.pages.widget(1), DatasetsPage)
        assert isinstance(window.pages.widget(2), ModelsPage)
        assert isinstance(window.pages.widget(3), MachinesPage)
        window.sidebar.setCurrentRow(1)
        assert window.pages.currentIndex() == 1
    finally:
        # destroyed now, not at some later garbage collection: its pages listen to the
        # app-wide signals and would answer the next test's signals on a closed database
        window.close()
        sip.delete(window)


# -- a data folder that cannot be used ------------------------------------------------

def assert_said_without_traceback(out, code: int, *words: str) -> None:
    assert out.returncode == code, (out.returncode, out.stderr)
    assert "Traceback" not in out.stderr
    for word in words:
        assert word in out.stderr, out.stderr


def test_a_file_in_the_way_of_the_data_folder_is_a_sentence(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    out = _run("--data-dir", str(blocker / "data"), QT_QPA_PLATFORM="offscreen")
    assert_said_without_traceback(out, 2, "rave-gui: The data folder", str(blocker), "--data-dir",
                                  "RAVE_GUI_DATA_DIR", "Not a directory")
    assert blocker.read_text() == "x"


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux /proc")
def test_a_folder_that_cannot_be_written_is_a_sentence():
    """/proc is a folder in which even root cannot create a file."""
    out = _run("--data-dir", "/proc", QT_QPA_PLATFORM="offscreen")
    assert_said_without_traceback(out, 2, "The data folder /proc cannot be written", "--data-dir")


def test_a_symlink_loop_as_data_folder_is_a_sentence(tmp_path):
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    out = _run("--data-dir", str(tmp_path / "a" / "data"), QT_QPA_PLATFORM="offscreen")
    assert_said_without_traceback(out, 2, "The data folder", "--data-dir")


# -- one window per data folder -----------------------------------------------------------

def _start(data_dir: Path) -> subprocess.Popen:
    clean = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    return subprocess.Popen([sys.executable, "-m", "rave_gui", "--data-dir", str(data_dir)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**clean, "QT_QPA_PLATFORM": "offscreen"})


def _lock_owner(lock: Path) -> int | None:
    try:
        first = lock.read_text().splitlines()[0]
    except (OSError, IndexError):
        return None
    return int(first) if first.isdigit() else None


def _wait_for_owner(lock: Path, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while _lock_owner(lock) != proc.pid:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the app never took the lock"
        time.sleep(0.1)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.communicate(timeout=30)


def test_a_second_window_on_the_same_data_folder_is_refused(tmp_path):
    lock = tmp_path / "rave-gui.lock"
    first = _start(tmp_path)
    try:
        _wait_for_owner(lock, first)
        second = subprocess.run([sys.executable, "-m", "rave_gui", "--data-dir", str(tmp_path)],
                                capture_output=True, text=True, timeout=60,
                                env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
        assert_said_without_traceback(
            second, 3, f"RAVE GUI is already open with the data folder {tmp_path.resolve()} "
                       f"(process {first.pid}). Switch to that window, or start this one with "
                       "another --data-dir.")
        assert first.poll() is None  # the first window is untouched
        assert _lock_owner(lock) == first.pid
    finally:
        first.kill()  # SIGKILL: a crash, the lock file stays behind
        first.communicate(timeout=30)
    assert _lock_owner(lock) == first.pid

    third = _start(tmp_path)
    try:
        _wait_for_owner(lock, third)  # the stale lock of the dead process is taken over
        time.sleep(1)
        assert third.poll() is None
    finally:
        _stop(third)


# -- a damaged database at start ---------------------------------------------------------

def test_a_damaged_database_is_restored_from_its_backup_when_the_person_says_yes(tmp_path, monkeypatch):
    from rave_gui.app import open_database
    from rave_gui.core import database
    from rave_gui.core.database import Database, DatabaseDamaged

    monkeypatch.setattr(database, "_backed_up", set())
    path = tmp_path / "rave_gui.sqlite3"
    db = Database(path)
    db.execute("INSERT INTO datasets (name, path) VALUES ('drums', '/d')")
    db.executemany("INSERT INTO projects (name) VALUES (?)", [("p" * 500,)] * 200)
    db.close()
    Database(path).close()  # the start that keeps the last good copy
    path.write_bytes(path.read_bytes()[:-1000])
    asked: list[str] = []

    with pytest.raises(DatabaseDamaged):  # "No": nothing is touched
        open_database(path, lambda message: asked.append(message) or False)
    assert "last-good.bak" in asked[0] and not list(tmp_path.glob("*.damaged-*"))

    db = open_database(path, lambda message: True)
    try:
        assert db.query_one("SELECT name FROM datasets")[0] == "drums"
    finally:
        db.close()
    assert len(list(tmp_path.glob("rave_gui.sqlite3.damaged-*"))) == 1
