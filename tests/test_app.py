"""Start-up: --version and --help need no display; the window opens on a data dir."""
from __future__ import annotations

import os
import subprocess
import sys

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
    from rave_gui.ui.pages.training import TrainingPage
    window = MainWindow(db)
    qtbot.addWidget(window)
    assert [window.sidebar.item(i).text() for i in range(window.sidebar.count())] == ["Training", "Datasets"]
    assert isinstance(window.pages.widget(0), TrainingPage)
    assert isinstance(window.pages.widget(1), DatasetsPage)
    window.sidebar.setCurrentRow(1)
    assert window.pages.currentIndex() == 1
