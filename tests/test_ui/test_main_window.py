"""The window a new person meets: default size, getting started, shortcuts,
notifications, the status bar, and a layout that is remembered."""
from __future__ import annotations

import pytest
from PyQt6 import sip
from PyQt6.QtCore import QCoreApplication, QEvent, Qt
from PyQt6.QtGui import QKeySequence

from fake_process import FakeProcess  # tests/ helper

from rave_gui.backend.datasets import DatasetManager
from rave_gui.main_window import PAGE_DATASETS, MainWindow
from rave_gui.ui.models.experiments_model import COL_ACTIONS


def open_window(qtbot, db):
    window = MainWindow(db, monitor=False)
    window.confirm_stop = lambda count: True
    window.show()
    qtbot.waitExposed(window)
    return window


def close(window):
    window.close()
    window.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    assert sip.isdeleted(window)


@pytest.fixture
def dataset(db, fake_dataset):
    return DatasetManager(db).register(fake_dataset, name="voice")


def live(window, dataset, name, step=123_456, total=500_000):
    manager = window.runs.manager
    exp_id = manager.start_training({"name": name, "dataset_id": dataset, "max_steps": total, "device": "cpu"})
    fake = FakeProcess(exp_id)
    fake.finish_on_stop = True  # closing the window stops it at once
    window.runs.adopt(exp_id, fake, device="cpu")
    fake.report_started()
    manager.set_current_step(exp_id, step)
    fake.step_update.emit(step, total)
    return exp_id, fake


def test_at_the_default_size_the_whole_actions_column_is_visible(qtbot, db, dataset):
    window = open_window(qtbot, db)
    try:
        assert (window.width(), window.height()) == (1280, 800)
        ids = [live(window, dataset, f"a rather long run name number {i}")[0] for i in range(3)]
        page = window.training_page
        table = page.table
        for exp_id in ids:
            rect = table.visualRect(page.model.index(page.model.row_of(exp_id), COL_ACTIONS))
            assert rect.isValid() and rect.left() >= 0 and rect.right() <= table.viewport().width()
            assert page.model.index(page.model.row_of(exp_id), COL_ACTIONS).data() == "Stop"
        assert table.horizontalScrollBar().maximum() == 0 or not table.horizontalScrollBar().isVisible()
        assert "2 running" not in window.runs_summary.text() and "3 running" in window.runs_summary.text()
    finally:
        close(window)


def test_getting_started_leads_to_datasets_when_there_is_none(qtbot, db):
    window = open_window(qtbot, db)
    try:
        page = window.training_page
        assert page.empty_label.isVisible() and "needs a dataset" in page.empty_label.text()
        qtbot.mouseClick(page.empty_button, Qt.MouseButton.LeftButton)
        assert window.sidebar.currentRow() == PAGE_DATASETS and window.pages.currentWidget() is window.datasets_page
        assert window.sidebar.item(0).icon().isNull() is False  # the sidebar has icons
        assert not window.windowIcon().isNull()
    finally:
        close(window)


def test_shortcuts_new_training_and_stop(qtbot, db, dataset, monkeypatch):
    window = open_window(qtbot, db)
    try:
        exp_id, fake = live(window, dataset, "shortcut")
        window.training_page.select_experiment(exp_id)
        stop, new = window.shortcuts["stop"], window.shortcuts["new"]
        assert stop.key().toString() == "Ctrl+." and new.key() == QKeySequence(QKeySequence.StandardKey.New)
        stop.activated.emit()  # (offscreen key events do not reach QShortcut under pytest-qt)
        assert fake.stop_calls == 1 and window.runs.manager.get_experiment(exp_id)["status"] == "stopping"
        new.activated.emit()
        assert window.training_page.wizard is not None and window.training_page.wizard.isVisible()
        window.training_page.wizard.reject()
        fake.finish()
    finally:
        close(window)


def test_notifications_when_a_run_ends_and_they_can_be_switched_off(qtbot, db, dataset):
    window = open_window(qtbot, db)
    try:
        exp_id, fake = live(window, dataset, "notified", step=60, total=60)
        fake.finish("completed", True, "Completed 60 steps.")
        qtbot.waitUntil(lambda: bool(window.notifications), timeout=5000)
        assert window.notifications[-1] == ("Training completed", "notified reached step 60.")
        window.settings.setValue("notifications", False)
        other, fake2 = live(window, dataset, "quiet")
        fake2.finish("failed", False, "boom")
        qtbot.wait(100)
        assert len(window.notifications) == 1
    finally:
        close(window)


def test_window_size_and_splitter_are_remembered(qtbot, db):
    window = open_window(qtbot, db)
    window.resize(1300, 700)
    window.training_page.splitter.setSizes([500, 500])
    sizes = window.training_page.splitter.sizes()
    close(window)
    again = open_window(qtbot, db)
    try:
        assert (again.width(), again.height()) == (1300, 700)
        assert again.training_page.splitter.sizes() == sizes
    finally:
        close(again)
