"""The Training page driven by a fake training process (no rave run here; the
real end-to-end GUI run is tests/test_e2e/test_gui_e2e.py)."""
from __future__ import annotations

import json
import os
import stat

import pytest
from PyQt6 import sip
from PyQt6.QtCore import QCoreApplication, QEvent, Qt
from PyQt6.QtWidgets import QMessageBox, QPushButton

from fake_process import FakeProcess  # tests/ helper

from rave_gui.core.signals import app_signals
from rave_gui.ui.models.experiments_model import COL_ACTIONS, COLUMNS
from rave_gui.ui.pages.training import TrainingPage

TQDM_LINE = "Epoch 0:  33%|███▎      | 1/3 [00:01<00:02,  1.12s/it, v_num=0]"


@pytest.fixture
def fake_rave(tmp_path, monkeypatch):
    """A `rave` the page can find whatever this environment holds (it is never run)."""
    path = tmp_path / "bin" / "rave"
    path.parent.mkdir()
    path.write_text("#!/bin/sh\nexit 3\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("RAVE_GUI_RAVE", str(path))
    return path


def close_message_boxes(page) -> None:
    for box in page.findChildren(QMessageBox):
        box.done(0)


def dispose(widget) -> None:
    """Close and delete now, before the database closes: a page left for a later
    deleteLater would still answer the application-wide signals of the next test."""
    close_message_boxes(widget)
    widget.close()
    widget.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    assert sip.isdeleted(widget)


@pytest.fixture
def page(qtbot, db, manager, fake_rave):
    widget = TrainingPage(db, manager=manager)
    widget.resize(1200, 800)
    widget.show()
    qtbot.waitExposed(widget)
    yield widget
    dispose(widget)


@pytest.fixture
def main_window(qtbot, db, fake_rave):
    from rave_gui.main_window import MainWindow
    window = MainWindow(db)
    window.show()
    qtbot.waitExposed(window)
    yield window
    window.confirm_stop = lambda count: True
    dispose(window)


def new_experiment(manager, dataset_id, name="run", max_steps=60, **extra) -> int:
    return manager.start_training({"name": name, "dataset_id": dataset_id, "max_steps": max_steps, **extra})


def live_run(page, manager, dataset_id, name="run", max_steps=60):
    exp_id = new_experiment(manager, dataset_id, name, max_steps)
    fake = FakeProcess()
    page.attach(exp_id, fake)
    return exp_id, fake


def cell(page, exp_id, column):
    return page.model.index(page.model.row_of(exp_id), COLUMNS.index(column)).data()


def selected_rows(page):
    return [index.row() for index in page.table.selectionModel().selectedRows()]


def history_points(page, key):
    steps, values = page.plot.history[key]
    return list(zip(steps.tolist(), values.tolist()))


def click_action(qtbot, page, exp_id):
    index = page.model.index(page.model.row_of(exp_id), COL_ACTIONS)
    rect = page.table.visualRect(index)
    assert rect.isValid() and rect.width() > 10, "the Actions cell is not on screen"
    qtbot.mouseClick(page.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())


# ---- structure ------------------------------------------------------------------

def test_layout_table_tabs_and_buttons(page):
    left, right = page.splitter.sizes()
    assert left > 0 and right > 0
    assert 0.25 <= left / (left + right) <= 0.35
    assert page.splitter.orientation() == Qt.Orientation.Horizontal
    headers = [page.model.headerData(c, Qt.Orientation.Horizontal) for c in range(page.model.columnCount())]
    assert headers == ["Name", "Status", "Started", "Steps", "Actions"]
    assert page.table.model() is page.model
    assert page.table.itemDelegateForColumn(COL_ACTIONS) is page.actions
    assert [page.tabs.tabText(i) for i in range(page.tabs.count())] == [
        "Metrics", "Log", "Configuration", "Checkpoints"]
    assert page.tabs.widget(0) is page.plot and page.tabs.widget(1) is page.log_view
    assert page.tabs.widget(3) is page.checkpoints
    assert page.config_view.isReadOnly() and page.log_view.isReadOnly()
    buttons = {b.text() for b in page.findChildren(QPushButton)}
    assert {"New Training…", "Stop", "Resume", "Export for nn~ / VST…"} <= buttons
    # nothing selected: the details are blank and no action is possible
    assert page.selected_id is None
    assert page.status_label.text() == page.step_label.text() == "–"
    assert not any(b.isEnabled() for b in (page.stop_button, page.resume_button, page.export_button))


def test_empty_state_until_a_run_exists(page, manager, dataset_id):
    assert page.model.rowCount() == 0
    assert page.empty_label.isVisible() and "New Training" in page.empty_label.text()
    live_run(page, manager, dataset_id)
    assert page.model.rowCount() == 1
    assert not page.empty_label.isVisible()


# ---- a live run -------------------------------------------------------------------

def test_live_metrics_steps_and_log(qtbot, page, manager, dataset_id):
    exp_id, fake = live_run(page, manager, dataset_id, "live", max_steps=60)
    page.select_experiment(exp_id)
    assert page.selected_id == exp_id and selected_rows(page) == [page.model.row_of(exp_id)]
    assert page.name_label.text() == "live" and page.status_label.text() == "running"
    assert page.stop_button.isEnabled() and not page.resume_button.isEnabled()
    assert not page.export_button.isEnabled()
    assert cell(page, exp_id, "Actions") == "Stop"

    fake.metrics_update.emit({"step": 49, "loss": 3.2, "val_loss": 4.1})
    fake.metrics_update.emit({"step": 99, "loss": 2.5})
    page.plot.redraw_now()
    assert history_points(page, "loss") == [(49.0, 3.2), (99.0, 2.5)]
    assert history_points(page, "val_loss") == [(49.0, 4.1)]
    raw_loss = page.plot._lines["loss"][0]
    assert list(raw_loss.get_xdata()) == [49.0, 99.0] and raw_loss.get_visible()

    fake.step_update.emit(30, 60)
    assert page.step_label.text() == "30 / 60"
    assert page.progress_bar.value() == 50
    assert cell(page, exp_id, "Steps") == "30 / 60"

    fake.output.emit("Train dataset: 91 examples")
    fake.output.emit(TQDM_LINE)
    fake.output.emit("Epoch 0:  66%|██████▌   | 2/3 [00:02<00:01,  1.10s/it, v_num=0]")
    fake.output.emit("[rave-gui] step=30 loss=2.5")
    text = page.log_view.toPlainText()
    assert "Train dataset: 91 examples" in text and "[rave-gui] step=30 loss=2.5" in text
    assert "33%" not in text and "|" not in text and "v_num" not in text


def test_log_follows_new_lines_unless_scrolled_up(qtbot, page, manager, dataset_id):
    exp_id, fake = live_run(page, manager, dataset_id)
    page.select_experiment(exp_id)
    page.tabs.setCurrentWidget(page.log_view)
    bar = page.log_view.verticalScrollBar()
    for i in range(300):
        fake.output.emit(f"line {i}")
    assert bar.maximum() > 50, "the log should need scrolling"
    assert bar.value() == bar.maximum() and page.log_view.at_bottom()
    fake.output.emit("line 300")
    assert bar.value() == bar.maximum()
    bar.setValue(10)  # the person scrolls up to read
    maximum = bar.maximum()
    for i in range(301, 320):
        fake.output.emit(f"line {i}")
    assert bar.maximum() > maximum and bar.value() == 10
    bar.setValue(bar.maximum())  # back at the bottom: follow again
    fake.output.emit("line 320")
    assert bar.value() == bar.maximum()
    assert page.log_view.toPlainText().splitlines()[-1] == "line 320"


def test_clicking_stop_in_the_table_stops_the_run(qtbot, page, manager, dataset_id):
    exp_id, fake = live_run(page, manager, dataset_id)
    page.select_experiment(exp_id)
    assert cell(page, exp_id, "Actions") == "Stop"
    click_action(qtbot, page, exp_id)
    assert fake.stop_calls == 1
    assert manager.get_experiment(exp_id)["status"] == "stopped"
    assert not manager.is_active(exp_id)
    assert cell(page, exp_id, "Status") == "stopped"
    assert cell(page, exp_id, "Actions") == "Resume"
    assert page.status_label.text() == "stopped"
    assert not page.stop_button.isEnabled() and page.resume_button.isEnabled()
    assert page.live_runs() == []


def test_clicking_resume_in_the_table_relaunches(qtbot, page, manager, dataset_id, monkeypatch):
    exp_id, fake = live_run(page, manager, dataset_id)
    manager.stop_training(exp_id)
    fake.finished.emit(False, "Stopped at step 0.")
    page.model.update_experiment(exp_id)
    launched = []

    def fake_launch(experiment_id, resume=False):
        process = FakeProcess()
        launched.append((experiment_id, resume))
        page.attach(experiment_id, process)
        process.start()
        return process
    monkeypatch.setattr(page, "launch", fake_launch)
    click_action(qtbot, page, exp_id)
    assert launched == [(exp_id, True)]
    assert manager.get_experiment(exp_id)["status"] == "running"
    assert cell(page, exp_id, "Actions") == "Stop" and page.selected_id == exp_id


def test_clicking_an_empty_actions_cell_does_nothing(qtbot, page, manager, dataset_id):
    exp_id = new_experiment(manager, dataset_id, "orphan")  # running, but no process held
    page.model.refresh()
    assert cell(page, exp_id, "Actions") == ""
    click_action(qtbot, page, exp_id)
    assert manager.get_experiment(exp_id)["status"] == "running" and page.last_error is None


def test_finished_signal_updates_the_row(qtbot, page, manager, dataset_id):
    exp_id, fake = live_run(page, manager, dataset_id)
    page.select_experiment(exp_id)
    # what TrainingProcess does in its thread before it emits finished
    manager.unregister_process(exp_id, fake)
    manager.update_experiment_status(exp_id, "completed")
    fake.finished.emit(True, "Completed 60 steps.")
    assert exp_id not in page.live
    assert cell(page, exp_id, "Status") == "completed" and cell(page, exp_id, "Actions") == "Resume"
    assert page.status_label.text() == "completed"
    assert page.export_button.isEnabled() and page.resume_button.isEnabled()


# ---- past runs and application signals ----------------------------------------------------------

def test_selecting_a_past_run_shows_its_history_and_config(qtbot, page, manager, dataset_id):
    exp_id = new_experiment(manager, dataset_id, "past", max_steps=300, batch_size=4)
    manager.update_training_metrics(exp_id, [{"step": 50, "loss": 3.0, "lr": 1e-3},
                                             {"step": 100, "loss": 2.0, "val_loss": 2.7},
                                             {"step": 150, "loss": 1.5}])
    manager.update_experiment_status(exp_id, "completed")
    page.model.refresh()
    page.select_experiment(exp_id)
    assert page.selected_id == exp_id
    assert history_points(page, "loss") == [(50.0, 3.0), (100.0, 2.0), (150.0, 1.5)]
    assert history_points(page, "val_loss") == [(100.0, 2.7)]
    assert history_points(page, "lr") == [(50.0, 1e-3)]
    assert page.step_label.text() == "150 / 300" and page.progress_bar.value() == 50
    assert page.status_label.text() == "completed"
    text = page.config_view.toPlainText()
    config_json = text.split("Configuration:\n", 1)[1].split("\n\nFinal metrics:", 1)[0]
    config = json.loads(config_json)
    assert config["name"] == "past" and config["max_steps"] == 300 and config["batch_size"] == 4
    assert config["dataset_id"] == dataset_id
    assert '"loss": 1.5' in text  # the final metrics
    # another selection replaces the plot's data, with one synchronous draw
    other = new_experiment(manager, dataset_id, "empty")
    page.model.refresh()
    draws = []
    page.plot.canvas.mpl_connect("draw_event", draws.append)
    page.select_experiment(other)
    assert page.plot.history == {} and len(draws) == 1
    assert not page.plot._lines["loss"][0].get_visible()
    page.select_experiment(exp_id)
    assert "loss" in page.plot.history
    page.table.clearSelection()  # nothing selected: blank details, empty plot
    assert page.selected_id is None and page.config_view.toPlainText() == ""
    assert page.name_label.text() == "–" and page.plot.history == {}


def test_stored_log_is_shown_without_progress_bars(qtbot, page, manager, dataset_id):
    exp_id = new_experiment(manager, dataset_id, "logged")
    manager.update_experiment_status(exp_id, "stopped")
    log = manager.get_experiment(exp_id)["log_path"]
    os.makedirs(os.path.dirname(log), exist_ok=True)
    with open(log, "w") as fh:
        fh.write("first line\n" + TQDM_LINE + "\r" + TQDM_LINE.replace("1/3", "2/3") + "\nlast line\n")
    page.model.refresh()
    page.select_experiment(exp_id)
    assert page.log_view.toPlainText().splitlines() == ["first line", "last line"]


def test_experiment_changed_refreshes_the_row(qtbot, page, manager, dataset_id):
    exp_id = new_experiment(manager, dataset_id, "watched")
    other = new_experiment(manager, dataset_id, "other")
    page.model.refresh()
    page.select_experiment(exp_id)
    assert cell(page, exp_id, "Status") == "running"
    manager.update_experiment_status(exp_id, "failed", "CUDA out of memory.")
    app_signals().experiment_changed.emit(exp_id)
    assert cell(page, exp_id, "Status") == "failed" and cell(page, exp_id, "Actions") == "Resume"
    assert page.status_label.text() == "failed: CUDA out of memory."
    assert cell(page, other, "Status") == "running"
    # the training_failed signal, with its reason, also reaches the row
    manager.update_experiment_status(other, "failed", "boom")
    app_signals().training_failed.emit(other, "boom")
    assert cell(page, other, "Status") == "failed"


def test_a_deleted_page_no_longer_answers_application_signals(qtbot, db, manager, dataset_id):
    exp_id = new_experiment(manager, dataset_id, "watched")
    widget = TrainingPage(db, manager=manager)
    seen = []
    widget.model.dataChanged.connect(lambda *args: seen.append(args))
    app_signals().experiment_changed.emit(exp_id)
    assert seen, "a living page refreshes the row"
    dispose(widget)
    seen.clear()
    for signal in ("training_completed", "training_stopped", "experiment_changed"):
        getattr(app_signals(), signal).emit(exp_id)
    app_signals().training_failed.emit(exp_id, "boom")  # would raise if still connected
    assert seen == []


def test_resuming_a_completed_run_asks_for_more_steps(qtbot, page, manager, dataset_id, monkeypatch):
    from PyQt6.QtWidgets import QInputDialog
    exp_id = new_experiment(manager, dataset_id, "done", max_steps=60)
    manager.set_current_step(exp_id, 60)
    manager.update_experiment_status(exp_id, "completed")
    page.model.refresh()
    asked = []
    answer = (0, False)

    def get_int(parent, title, label, value, low, high, step):
        asked.append((value, low))
        return answer
    monkeypatch.setattr(QInputDialog, "getInt", get_int)
    monkeypatch.setattr(page, "launch", lambda e, resume=False: page.attach(e, FakeProcess()))
    assert page.resume_experiment(exp_id) is None  # cancelled
    assert asked == [(120, 61)] and manager.get_experiment(exp_id)["status"] == "completed"
    answer = (90, True)
    page.resume_experiment(exp_id)
    exp = manager.get_experiment(exp_id)
    assert exp["status"] == "running" and exp["config"]["max_steps"] == 90
    assert page.selected_id == exp_id and page.step_label.text() == "60 / 90"


def test_a_deleted_selected_run_leaves_blank_details(qtbot, page, manager, dataset_id):
    keep = new_experiment(manager, dataset_id, "keep")
    gone = new_experiment(manager, dataset_id, "gone")
    newest = new_experiment(manager, dataset_id, "newest")  # so that SQLite reuses no id
    for exp_id in (keep, gone, newest):
        manager.update_experiment_status(exp_id, "stopped")
    page.model.refresh()
    page.select_experiment(gone)
    assert page.name_label.text() == "gone"
    manager.delete_experiment(gone)
    app_signals().experiment_changed.emit(gone)
    assert page.model.rowCount() == 2 and page.model.row_of(gone) == -1
    assert page.selected_id is None and page.name_label.text() == "–"
    assert not page.resume_button.isEnabled()


# ---- refusals, with a sentence ------------------------------------------------------------------

def test_start_run_with_an_invalid_config_is_refused(qtbot, page, manager, dataset_id):
    assert page.start_run({"name": "", "dataset_id": dataset_id}) is None
    assert page.last_error == "Give the run a name."
    assert manager.list_experiments() == [] and page.model.rowCount() == 0
    assert page.findChildren(QMessageBox), "the reason is shown to the person"
    close_message_boxes(page)
    assert page.start_run({"name": "ok", "dataset_id": dataset_id, "max_steps": 0}) is None
    assert "Max steps" in page.last_error and manager.list_experiments() == []


def test_resume_of_a_running_run_is_refused(qtbot, page, manager, dataset_id):
    exp_id, fake = live_run(page, manager, dataset_id)
    assert page.resume_experiment(exp_id) is None
    assert page.last_error == "This run is still running."
    assert fake.stop_calls == 0 and page.live[exp_id].process is fake


def test_export_without_checkpoint_is_refused(qtbot, page, manager, dataset_id):
    exp_id, fake = live_run(page, manager, dataset_id, "nockpt")
    page.stop_experiment(exp_id)
    fake.finished.emit(False, "Stopped at step 0.")
    page.select_experiment(exp_id)
    assert page.export_button.isEnabled()
    process = page.export_experiment(exp_id)
    assert process is not None
    qtbot.waitUntil(lambda: page.last_error is not None, timeout=10_000)
    assert "no checkpoint" in page.last_error and page.last_error.startswith("Export failed:")
    assert exp_id not in page.exports
    assert process.wait(5000)
    assert page.export_button.isEnabled() and page.export_label.text() == ""


# ---- two live runs -------------------------------------------------------------------------------

def test_two_live_runs_keep_their_own_state(qtbot, page, manager, dataset_id):
    first, fake_a = live_run(page, manager, dataset_id, "first", max_steps=100)
    second, fake_b = live_run(page, manager, dataset_id, "second", max_steps=200)
    page.select_experiment(first)
    fake_a.metrics_update.emit({"step": 10, "loss": 1.0})
    # the second run's points are stored (TrainingProcess does that) and emitted
    points_b = [{"step": 20, "loss": 9.0}, {"step": 40, "loss": 8.0, "val_loss": 8.5}]
    manager.update_training_metrics(second, points_b)
    for point in points_b:
        fake_b.metrics_update.emit(point)
    fake_b.step_update.emit(40, 200)
    fake_b.output.emit("second run line")
    page.plot.redraw_now()
    assert history_points(page, "loss") == [(10.0, 1.0)]
    assert "val_loss" not in page.plot.history
    assert page.step_label.text() == "0 / 100"
    assert "second run line" not in page.log_view.toPlainText()
    assert cell(page, second, "Steps") == "40 / 200" and cell(page, first, "Steps") == "0 / 100"
    assert page.live[second].step == 40 and page.live[first].step == 0

    page.select_experiment(second)
    assert page.selected_id == second
    assert history_points(page, "loss") == [(20.0, 9.0), (40.0, 8.0)]
    assert history_points(page, "val_loss") == [(40.0, 8.5)]
    assert page.step_label.text() == "40 / 200" and page.progress_bar.value() == 20
    fake_a.metrics_update.emit({"step": 20, "loss": 0.9})
    fake_b.metrics_update.emit({"step": 60, "loss": 7.0})
    assert history_points(page, "loss") == [(20.0, 9.0), (40.0, 8.0), (60.0, 7.0)]
    # stopping one leaves the other running
    page.stop_experiment(second)
    assert fake_b.stop_calls == 1 and fake_a.stop_calls == 0
    assert page.live_runs() == [first]


def test_attaching_a_run_keeps_the_selected_row(qtbot, page, manager, dataset_id):
    first, _ = live_run(page, manager, dataset_id, "first")
    page.select_experiment(first)
    second, _ = live_run(page, manager, dataset_id, "second")
    assert page.selected_id == first
    assert selected_rows(page) == [page.model.row_of(first)]


# ---- closing the window with live runs -----------------------------------------------------------

def test_main_window_close_asks_before_stopping_live_runs(main_window, dataset_id):
    window, page = main_window, main_window.training_page
    runs = [live_run(page, page.manager, dataset_id, name) for name in ("a", "b")]
    asked = []

    def refuse(count):
        asked.append(count)
        return False
    window.confirm_stop = refuse
    assert window.close() is False
    assert asked == [2] and window.isVisible()
    assert sorted(page.live_runs()) == sorted(e for e, _ in runs)
    assert all(fake.stop_calls == 0 for _, fake in runs)

    window.confirm_stop = lambda count: asked.append(count) or True
    assert window.close() is True
    assert asked == [2, 2] and not window.isVisible()
    assert all(fake.stop_calls == 1 for _, fake in runs)
    assert page.live_runs() == []
    assert {page.manager.get_experiment(e)["status"] for e, _ in runs} == {"stopped"}


def test_main_window_closes_without_asking_when_nothing_runs(main_window):
    main_window.confirm_stop = lambda count: pytest.fail("nothing runs: no question")
    assert main_window.close() is True
