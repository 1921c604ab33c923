"""The Training page driven by a fake training process (no rave run here; the
real end-to-end GUI run is tests/test_e2e/test_gui_e2e.py)."""
from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from PyQt6 import sip
from PyQt6.QtCore import QCoreApplication, QEvent, Qt
from PyQt6.QtWidgets import QMessageBox, QPushButton

from fake_process import FakeProcess, FakeProcessFactory  # tests/ helper

from rave_gui.backend.runs import RunController
from rave_gui.backend.training import TrainingManager
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
def manager(db, tmp_path):
    """A machine without a GPU (one CPU slot): the queue does not depend on this computer."""
    return TrainingManager(db, runs_root=tmp_path / "runs", gpus=[])


@pytest.fixture
def page(qtbot, db, manager, fake_rave):
    widget = TrainingPage(db, manager=manager)
    # every launch builds a FakeProcess: no test here ever starts a real `rave train`
    widget.controller.process_factory = FakeProcessFactory()
    widget.resize(1200, 800)
    widget.show()
    qtbot.waitExposed(widget)
    yield widget
    dispose(widget)


@pytest.fixture
def factory(page) -> FakeProcessFactory:
    """What the page's controller built for each launch (start, start now, resume, the queue)."""
    return page.controller.process_factory


@pytest.fixture
def main_window(qtbot, db, fake_rave):
    from rave_gui.main_window import MainWindow
    window = MainWindow(db)
    window.runs.process_factory = FakeProcessFactory()
    window.show()
    qtbot.waitExposed(window)
    yield window
    window.confirm_stop = lambda count: True
    dispose(window)


def config(dataset_id, name="run", max_steps=60, **extra) -> dict:
    return {"name": name, "dataset_id": dataset_id, "max_steps": max_steps, **extra}


def new_experiment(manager, dataset_id, name="run", max_steps=60, status="starting", **extra) -> int:
    """A run record (no process): ``starting`` as start_training leaves it, or ``running``."""
    exp_id = manager.start_training(config(dataset_id, name, max_steps, **extra))
    if status == "running":
        manager.set_status(exp_id, "running")
    return exp_id


def live_run(page, manager, dataset_id, name="run", max_steps=60, started=True):
    """A run whose (fake) process the page's controller holds; ``started``: the
    process reported in, so the run is ``running`` (else still ``starting``)."""
    exp_id = new_experiment(manager, dataset_id, name, max_steps)
    fake = FakeProcess(exp_id)
    page.controller.adopt(exp_id, fake, device="cpu")
    fake.start()
    if started:
        fake.report_started()
    return exp_id, fake


def report_step(manager, exp_id, fake, step, total):
    """What TrainingProcess does for a launcher step line: store it, then say it."""
    manager.set_current_step(exp_id, step)
    fake.step_update.emit(step, total)


def give_checkpoint(manager, exp_id, name="stopped-step=8.ckpt", step=8) -> Path:
    """A RAVE run folder with one checkpoint (and the launcher's index entry)."""
    exp = manager.get_experiment(exp_id)
    run_dir = Path(exp["out_dir"]) / f"{exp['name']}_0a1b2c3d"
    folder = run_dir / "version_0" / "checkpoints"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(b"\0" * 32)
    with open(folder / "rave-gui-index.jsonl", "a") as fh:
        fh.write(json.dumps({"file": name, "step": step, "validation": None, "time": 0}) + "\n")
    manager.set_run_dir(exp_id, run_dir)
    return folder / name


def cell(page, exp_id, column):
    return page.model.index(page.model.row_of(exp_id), COLUMNS.index(column)).data()


def table_ids(page):
    return [page.model.experiment_at(row)["id"] for row in range(page.model.rowCount())]


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


def click(qtbot, button):
    assert button.isVisible() and button.isEnabled(), f"{button.text()!r} cannot be clicked"
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def queue_button(page, text) -> QPushButton:
    return next(b for b in page.queue_buttons if b.text() == text)


# ---- structure ------------------------------------------------------------------

def test_layout_table_tabs_and_buttons(page):
    left, right = page.splitter.sizes()
    assert left > 0 and right > 0
    assert 0.35 <= left / (left + right) <= 0.45
    assert page.splitter.orientation() == Qt.Orientation.Horizontal
    headers = [page.model.headerData(c, Qt.Orientation.Horizontal) for c in range(page.model.columnCount())]
    assert headers == ["Name", "Status", "Started", "Steps", "Actions"]
    assert page.table.model() is page.model
    assert page.table.itemDelegateForColumn(COL_ACTIONS) is page.actions
    assert [page.tabs.tabText(i) for i in range(page.tabs.count())] == [
        "Metrics", "Log", "Configuration", "Checkpoints", "Audio"]
    assert page.tabs.widget(0) is page.plot and page.tabs.widget(1) is page.log_view
    assert page.tabs.widget(3) is page.checkpoints
    assert page.config_view.isReadOnly() and page.log_view.isReadOnly()
    buttons = {b.text() for b in page.findChildren(QPushButton)}
    assert {"New Training…", "Stop", "Resume", "Export for nn~ / VST…"} <= buttons
    assert [b.text() for b in page.queue_buttons] == ["Start now", "Move up", "Move down"]
    assert isinstance(page.controller, RunController) and page.manager is page.controller.manager
    # nothing selected: the details are blank and no action is possible
    assert page.selected_id is None
    assert page.status_label.text() == page.step_label.text() == "–"
    assert not any(b.isEnabled() for b in (page.stop_button, page.resume_button, page.export_button))
    assert not any(b.isVisible() for b in page.queue_buttons)


def test_empty_state_until_a_run_exists(page, manager, dataset_id):
    assert page.model.rowCount() == 0
    assert page.empty_label.isVisible() and "New Training" in page.empty_label.text()
    live_run(page, manager, dataset_id)
    assert page.model.rowCount() == 1
    assert not page.empty_label.isVisible()


# ---- a live run -------------------------------------------------------------------

def test_a_new_run_is_starting_until_its_process_reports_in(qtbot, page, manager, dataset_id, factory):
    with qtbot.waitSignal(page.run_started, timeout=1000) as started:
        exp_id = page.start_run(config(dataset_id, "fresh", max_steps=60))
    assert started.args == [exp_id] and page.last_error is None
    assert factory.calls == [(exp_id, False)]
    process = factory.last(exp_id)
    assert process.start_calls == 1 and process.launch["device"] == "cpu"
    assert page.controller.live_ids() == [exp_id]
    assert page.selected_id == exp_id and selected_rows(page) == [page.model.row_of(exp_id)]
    assert manager.get_experiment(exp_id)["status"] == "starting"
    assert cell(page, exp_id, "Status") == "starting" and cell(page, exp_id, "Actions") == "Stop"
    assert page.status_label.text() == "starting" and page.stop_button.isEnabled()
    assert not page.resume_button.isEnabled() and not page.export_button.isEnabled()
    process.report_started()
    assert manager.get_experiment(exp_id)["status"] == "running"
    assert cell(page, exp_id, "Status") == "running" and page.status_label.text() == "running"


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
    report_step(manager, exp_id, fake, 8, 60)
    assert cell(page, exp_id, "Actions") == "Stop"
    click_action(qtbot, page, exp_id)
    assert fake.stop_calls == 1 and fake.stop_requested
    # the launcher saves its stop checkpoint: the run is stopping until its process ends
    assert manager.get_experiment(exp_id)["status"] == "stopping"
    assert manager.is_active(exp_id) and page.live_runs() == [exp_id]
    assert cell(page, exp_id, "Status") == "stopping…"
    assert cell(page, exp_id, "Actions") == ""
    assert page.status_label.text() == "stopping (saving step 8)"
    assert not any(b.isEnabled() for b in (page.stop_button, page.resume_button, page.export_button))
    click_action(qtbot, page, exp_id)  # nothing to click while it saves
    assert fake.stop_calls == 1

    fake.finish("stopped", False, "Stopped at step 8.")
    assert manager.get_experiment(exp_id)["status"] == "stopped"
    assert manager.get_experiment(exp_id)["error"] is None  # a stop is not a failure
    assert not manager.is_active(exp_id) and page.live_runs() == []
    assert cell(page, exp_id, "Status") == "stopped"
    assert cell(page, exp_id, "Actions") == "Resume"
    assert page.status_label.text() == "stopped"
    assert not page.stop_button.isEnabled() and page.resume_button.isEnabled()
    assert page.export_button.isEnabled()


def test_clicking_resume_in_the_table_relaunches(qtbot, page, manager, dataset_id, factory):
    exp_id, fake = live_run(page, manager, dataset_id)
    report_step(manager, exp_id, fake, 8, 60)
    page.stop_experiment(exp_id)
    give_checkpoint(manager, exp_id, "stopped-step=8.ckpt", step=8)  # the launcher's stop checkpoint
    fake.finish("stopped", False, "Stopped at step 8.")
    assert cell(page, exp_id, "Actions") == "Resume"
    click_action(qtbot, page, exp_id)
    assert factory.calls == [(exp_id, True)] and page.last_error is None
    resumed = factory.last(exp_id)
    assert resumed.start_calls == 1 and page.controller.live_run(exp_id).process is resumed
    assert manager.get_experiment(exp_id)["status"] == "starting"
    assert cell(page, exp_id, "Actions") == "Stop" and page.selected_id == exp_id
    assert page.step_label.text() == "8 / 60"
    resumed.report_started()
    assert cell(page, exp_id, "Status") == "running" and page.status_label.text() == "running"
    assert fake.stop_calls == 1  # the old process is not touched again


def test_clicking_an_empty_actions_cell_does_nothing(qtbot, page, manager, dataset_id, factory):
    exp_id = new_experiment(manager, dataset_id, "orphan", status="running")  # no process held
    page.model.refresh()
    assert cell(page, exp_id, "Actions") == ""
    click_action(qtbot, page, exp_id)
    assert manager.get_experiment(exp_id)["status"] == "running" and page.last_error is None
    assert factory.calls == []


def test_finished_signal_updates_the_row(qtbot, page, manager, dataset_id):
    exp_id, fake = live_run(page, manager, dataset_id)
    page.select_experiment(exp_id)
    report_step(manager, exp_id, fake, 60, 60)
    fake.finish("completed", True, "Completed 60 steps.")
    assert not page.controller.is_live(exp_id) and not manager.is_active(exp_id)
    assert manager.get_experiment(exp_id)["status"] == "completed"
    assert cell(page, exp_id, "Status") == "completed" and cell(page, exp_id, "Actions") == "Resume"
    assert page.status_label.text() == "completed"
    assert page.export_button.isEnabled() and page.resume_button.isEnabled()
    assert not page.stop_button.isEnabled()


def test_a_failed_run_says_why(qtbot, page, manager, dataset_id):
    exp_id, fake = live_run(page, manager, dataset_id)
    page.select_experiment(exp_id)
    fake.finish("failed", False, "CUDA out of memory.")
    assert manager.get_experiment(exp_id)["status"] == "failed"
    assert cell(page, exp_id, "Status") == "failed" and cell(page, exp_id, "Actions") == "Resume"
    index = page.model.index(page.model.row_of(exp_id), COLUMNS.index("Status"))
    assert index.data(Qt.ItemDataRole.ToolTipRole) == "CUDA out of memory."
    assert page.status_label.text() == "failed: CUDA out of memory."
    assert page.live_runs() == []


def test_a_warning_reaches_the_page_and_the_run_goes_on(qtbot, page, manager, dataset_id):
    exp_id, fake = live_run(page, manager, dataset_id)
    page.select_experiment(exp_id)
    text = "The app cannot write this run's history to its database (database is locked)."
    with qtbot.waitSignal(page.controller.warning, timeout=1000) as warned:
        fake.warning.emit(text)
    assert warned.args == [exp_id, text]
    assert page.last_warning == text
    assert page.last_error is None and not page.findChildren(QMessageBox)  # no dialog: nothing to answer
    assert manager.get_experiment(exp_id)["status"] == "running" and page.live_runs() == [exp_id]
    assert page.status_label.text() == "running"


def test_a_checkpoint_saved_refreshes_the_checkpoints_tab(qtbot, page, manager, dataset_id):
    exp_id, fake = live_run(page, manager, dataset_id)
    page.select_experiment(exp_id)
    assert page.checkpoints.checkpoints() == []
    path = give_checkpoint(manager, exp_id, "epoch-epoch=0000.ckpt", step=10)
    fake.checkpoint_saved.emit(str(path))
    # coalesced (a flood of validations never stalls the window), then shown
    qtbot.waitUntil(lambda: [c["path"] for c in page.checkpoints.checkpoints()] == [str(path)], timeout=3000)
    assert page.checkpoints.checkpoints()[0]["step"] == 10


# ---- past runs and the controller's signals ----------------------------------------------------

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
    stored = json.loads(config_json)
    assert stored["name"] == "past" and stored["max_steps"] == 300 and stored["batch_size"] == 4
    assert stored["dataset_id"] == dataset_id
    assert '"loss": 1.5' in text  # the final metrics
    assert "started at step 0" in text and "completed at step 150" in text  # the history of the run
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


def test_run_changed_refreshes_the_row(qtbot, page, manager, dataset_id):
    exp_id = new_experiment(manager, dataset_id, "watched", status="running")
    other, fake = live_run(page, manager, dataset_id, "other")
    page.model.refresh()
    page.select_experiment(exp_id)
    assert cell(page, exp_id, "Status") == "running"
    manager.update_experiment_status(exp_id, "failed", "CUDA out of memory.")
    page.controller.run_changed.emit(exp_id, "status")
    assert cell(page, exp_id, "Status") == "failed" and cell(page, exp_id, "Actions") == "Resume"
    assert page.status_label.text() == "failed: CUDA out of memory."
    assert cell(page, other, "Status") == "running"
    # the other run's process ends with a reason: its row says so too
    fake.finish("failed", False, "boom")
    assert cell(page, other, "Status") == "failed"
    assert manager.get_experiment(other)["error"] == "boom"


def test_a_deleted_page_no_longer_answers_the_controller(qtbot, db, manager, dataset_id):
    """The controller outlives a page (the main window owns it): a deleted page
    must not be called by its signals."""
    controller = RunController(manager)
    exp_id = new_experiment(manager, dataset_id, "watched")
    widget = TrainingPage(db, controller=controller)
    seen = []
    widget.model.dataChanged.connect(lambda *args: seen.append(args))
    controller.run_changed.emit(exp_id, "status")
    assert seen, "a living page refreshes the row"
    dispose(widget)
    seen.clear()
    for what in ("status", "queue", "checkpoints", "export"):
        controller.run_changed.emit(exp_id, what)  # would raise if still connected
    controller.step_changed.emit(exp_id, 5, 60)
    controller.metrics_added.emit(exp_id, {"step": 5, "loss": 1.0})
    controller.log_line.emit(exp_id, "a line")
    controller.export_progress.emit(exp_id, 50, "script model")
    controller.export_done.emit(exp_id, False, "boom")
    controller.warning.emit(exp_id, "careful")
    assert seen == []
    controller.deleteLater()


def test_a_run_left_running_by_an_earlier_session_is_interrupted(qtbot, db, manager, dataset_id, fake_rave):
    exp_id = new_experiment(manager, dataset_id, "left behind", status="running")  # its process is gone
    widget = TrainingPage(db, manager=manager)
    try:
        assert manager.get_experiment(exp_id)["status"] == "interrupted"
        assert widget.controller.live_ids() == []
        assert cell(widget, exp_id, "Status") == "interrupted"
        assert cell(widget, exp_id, "Actions") == "Resume"
        index = widget.model.index(widget.model.row_of(exp_id), COLUMNS.index("Status"))
        assert "cannot be resumed" in index.data(Qt.ItemDataRole.ToolTipRole)  # it saved no checkpoint
    finally:
        dispose(widget)


def test_resuming_a_completed_run_asks_for_more_steps(qtbot, page, manager, dataset_id, factory, monkeypatch):
    from PyQt6.QtWidgets import QInputDialog
    exp_id = new_experiment(manager, dataset_id, "done", max_steps=60)
    manager.set_current_step(exp_id, 60)
    manager.update_experiment_status(exp_id, "completed")
    give_checkpoint(manager, exp_id, "last.ckpt", step=None)
    page.model.refresh()
    asked = []
    answer = (0, False)

    def get_int(parent, title, label, value, low, high, step):
        asked.append((value, low))
        return answer
    monkeypatch.setattr(QInputDialog, "getInt", get_int)
    assert page.resume_experiment(exp_id) is False  # cancelled
    assert asked == [(120, 61)] and manager.get_experiment(exp_id)["status"] == "completed"
    assert factory.calls == []
    answer = (90, True)
    assert page.resume_experiment(exp_id) is True
    exp = manager.get_experiment(exp_id)
    assert exp["status"] == "starting" and exp["config"]["max_steps"] == 90
    assert factory.calls == [(exp_id, True)]
    assert page.selected_id == exp_id and page.step_label.text() == "60 / 90"
    factory.last(exp_id).report_started()
    assert page.status_label.text() == "running" and cell(page, exp_id, "Steps") == "60 / 90"


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
    page.controller.run_changed.emit(gone, "status")
    assert page.model.rowCount() == 2 and page.model.row_of(gone) == -1
    assert page.selected_id is None and page.name_label.text() == "–"
    assert not page.resume_button.isEnabled()


# ---- refusals, with a sentence ------------------------------------------------------------------

def test_start_run_with_an_invalid_config_is_refused(qtbot, page, manager, dataset_id, factory):
    assert page.start_run({"name": "", "dataset_id": dataset_id}) is None
    assert page.last_error == "Give the run a name."
    assert manager.list_experiments() == [] and page.model.rowCount() == 0
    assert page.findChildren(QMessageBox), "the reason is shown to the person"
    close_message_boxes(page)
    assert page.start_run({"name": "ok", "dataset_id": dataset_id, "max_steps": 0}) is None
    assert "Max steps" in page.last_error and manager.list_experiments() == []
    assert page.start_run({"name": "ok", "dataset_id": dataset_id, "max_steps": 0}, queue=True) is None
    assert manager.list_experiments() == [] and factory.calls == []


def test_resume_of_a_running_run_is_refused(qtbot, page, manager, dataset_id, factory):
    exp_id, fake = live_run(page, manager, dataset_id)
    assert page.resume_experiment(exp_id) is False
    assert page.last_error == "This run is still running."
    assert fake.stop_calls == 0 and page.controller.live_run(exp_id).process is fake
    assert factory.calls == []


def test_resume_of_a_stopping_run_is_refused(qtbot, page, manager, dataset_id, factory):
    exp_id, fake = live_run(page, manager, dataset_id)
    page.stop_experiment(exp_id)
    give_checkpoint(manager, exp_id)
    assert page.resume_experiment(exp_id) is False
    assert "still stopping" in page.last_error
    assert factory.calls == [] and manager.get_experiment(exp_id)["status"] == "stopping"
    close_message_boxes(page)
    fake.finish()  # the checkpoint is saved: now it can be resumed
    assert page.resume_experiment(exp_id) is True and factory.calls == [(exp_id, True)]


def test_export_without_checkpoint_is_refused(qtbot, page, manager, dataset_id, monkeypatch):
    exp_id, fake = live_run(page, manager, dataset_id, "nockpt")
    page.stop_experiment(exp_id)
    fake.finish("stopped", False, "Stopped at step 0.")
    page.select_experiment(exp_id)
    assert page.export_button.isEnabled()
    started = []
    export = page.controller.export
    monkeypatch.setattr(page.controller, "export", lambda *args: started.append(export(*args)) or started[-1])
    assert page.export_experiment(exp_id) is True
    assert len(started) == 1 and page.controller.exporting(exp_id)
    qtbot.waitUntil(lambda: page.last_error is not None, timeout=10_000)
    assert "no checkpoint" in page.last_error and page.last_error.startswith("Export failed:")
    assert not page.controller.exporting(exp_id)
    assert started[0].wait(5000)
    qtbot.waitUntil(lambda: page.export_button.isEnabled(), timeout=3000)
    assert page.export_label.text() == ""


def test_export_of_a_live_run_is_refused(qtbot, page, manager, dataset_id):
    exp_id, fake = live_run(page, manager, dataset_id)
    assert page.export_experiment(exp_id) is False
    assert "Stop the run" in page.last_error and not page.controller.exporting(exp_id)


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
    live = page.controller.live_run
    assert live(second).step == 40 and live(first).step == 0

    page.select_experiment(second)
    assert page.selected_id == second
    assert history_points(page, "loss") == [(20.0, 9.0), (40.0, 8.0)]
    assert history_points(page, "val_loss") == [(40.0, 8.5)]
    assert page.step_label.text() == "40 / 200" and page.progress_bar.value() == 20
    fake_a.metrics_update.emit({"step": 20, "loss": 0.9})
    fake_b.metrics_update.emit({"step": 60, "loss": 7.0})
    assert history_points(page, "loss") == [(20.0, 9.0), (40.0, 8.0), (60.0, 7.0)]
    # stopping one (the details panel's Stop) leaves the other running
    click(qtbot, page.stop_button)
    assert fake_b.stop_calls == 1 and fake_a.stop_calls == 0
    assert cell(page, second, "Status") == "stopping…"
    assert cell(page, first, "Status") == "running"
    assert sorted(page.live_runs()) == sorted([first, second])  # it still saves its checkpoint
    fake_b.finish()
    assert page.live_runs() == [first]
    assert cell(page, second, "Status") == "stopped" and cell(page, first, "Status") == "running"


def test_adopting_a_run_keeps_the_selected_row(qtbot, page, manager, dataset_id):
    first, _ = live_run(page, manager, dataset_id, "first")
    page.select_experiment(first)
    second, _ = live_run(page, manager, dataset_id, "second")
    assert page.selected_id == first
    assert selected_rows(page) == [page.model.row_of(first)]


# ---- the queue --------------------------------------------------------------------------------------

def test_queued_runs_show_their_place_and_move_up_and_down(qtbot, page, manager, dataset_id, factory):
    page.controller.autostart = False
    first = page.start_run(config(dataset_id, "first"), queue=True)
    second = page.start_run(config(dataset_id, "second"), queue=True)
    qtbot.wait(20)  # the controller's scheduling turn: nothing starts
    assert factory.calls == [] and page.controller.queued() == [first, second]
    assert table_ids(page) == [first, second]
    assert cell(page, first, "Status") == "queued #1" and cell(page, second, "Status") == "queued #2"
    assert cell(page, first, "Actions") == cell(page, second, "Actions") == "Start now"
    assert cell(page, first, "Started") == ""
    # start_run selected the new row; the details offer the queue's actions
    assert page.selected_id == second and page.status_label.text() == "queued"
    assert page.stop_button.text() == "Remove from queue" and page.stop_button.isEnabled()
    assert all(b.isVisible() for b in page.queue_buttons)
    assert not page.resume_button.isEnabled() and not page.export_button.isEnabled()

    click(qtbot, queue_button(page, "Move up"))
    assert page.controller.queued() == [second, first]
    assert table_ids(page) == [second, first]
    assert cell(page, second, "Status") == "queued #1" and cell(page, first, "Status") == "queued #2"
    assert page.selected_id == second and page.name_label.text() == "second"

    click(qtbot, queue_button(page, "Move down"))
    assert page.controller.queued() == [first, second]
    assert table_ids(page) == [first, second]
    assert cell(page, first, "Status") == "queued #1" and cell(page, second, "Status") == "queued #2"
    assert page.last_error is None and factory.calls == []


def test_moving_a_queued_run_keeps_it_selected(qtbot, page, manager, dataset_id):
    page.controller.autostart = False
    page.start_run(config(dataset_id, "first"), queue=True)
    second = page.start_run(config(dataset_id, "second"), queue=True)
    assert selected_rows(page) == [page.model.row_of(second)]
    click(qtbot, queue_button(page, "Move up"))
    assert page.selected_id == second
    assert selected_rows(page) == [page.model.row_of(second)], "the moved row stays selected"


def test_the_other_queued_rows_are_repainted_with_their_new_place(qtbot, page, manager, dataset_id):
    page.controller.autostart = False
    first = page.start_run(config(dataset_id, "first"), queue=True)
    second = page.start_run(config(dataset_id, "second"), queue=True)
    status_column = COLUMNS.index("Status")
    repainted = []
    page.model.modelReset.connect(lambda: repainted.append("all"))
    page.model.dataChanged.connect(lambda top_left, bottom_right, *_: repainted.append(
        (top_left.row(), bottom_right.row(), top_left.column(), bottom_right.column())))
    page.controller.stop(first)  # taken off the queue: the second becomes the first
    row = page.model.row_of(second)
    assert cell(page, second, "Status") == "queued #1"
    assert any(change == "all" or (change[0] <= row <= change[1] and change[2] <= status_column <= change[3])
               for change in repainted), "the view still shows 'queued #2'"


def test_removing_a_queued_run_means_it_never_starts(qtbot, page, manager, dataset_id, factory):
    busy, fake = live_run(page, manager, dataset_id, "busy")  # holds the one CPU slot
    removed = page.start_run(config(dataset_id, "removed"), queue=True)
    waiting = page.start_run(config(dataset_id, "waiting"), queue=True)
    qtbot.wait(20)
    assert factory.calls == [], "the CPU is busy: the queued runs wait"
    assert cell(page, removed, "Status") == "queued #1" and cell(page, waiting, "Status") == "queued #2"
    page.select_experiment(removed)
    assert page.stop_button.text() == "Remove from queue"
    click(qtbot, page.stop_button)
    assert manager.get_experiment(removed)["status"] == "stopped"
    assert page.controller.queued() == [waiting]
    assert cell(page, removed, "Status") == "stopped"
    assert page.status_label.text() == "stopped" and page.stop_button.text() == "Stop"
    assert not page.stop_button.isEnabled() and not any(b.isVisible() for b in page.queue_buttons)
    assert [e["kind"] for e in manager.get_events(removed)] == ["queued", "removed from queue"]
    assert cell(page, waiting, "Status") == "queued #1"
    assert page.controller.live_ids() == [busy] and fake.stop_calls == 0  # the live run goes on
    # the CPU frees up: the waiting run starts, the removed one never does
    fake.finish("completed", True, "Completed 60 steps.")
    qtbot.waitUntil(lambda: factory.calls != [], timeout=3000)
    qtbot.wait(50)
    assert factory.calls == [(waiting, False)]
    assert manager.get_experiment(removed)["status"] == "stopped"
    assert cell(page, waiting, "Status") == "starting" and cell(page, waiting, "Actions") == "Stop"
    assert page.controller.live_ids() == [waiting]


def test_start_now_starts_a_queued_run(qtbot, page, manager, dataset_id, factory):
    busy, _ = live_run(page, manager, dataset_id, "busy")  # the CPU is taken: the queue waits
    by_button = page.start_run(config(dataset_id, "by button"), queue=True)
    by_table = page.start_run(config(dataset_id, "by table"), queue=True)
    qtbot.wait(20)
    assert factory.calls == []
    page.select_experiment(by_button)
    click(qtbot, queue_button(page, "Start now"))  # whatever else runs
    assert factory.calls == [(by_button, False)] and factory.last(by_button).start_calls == 1
    assert manager.get_experiment(by_button)["status"] == "starting"
    assert cell(page, by_button, "Status") == "starting" and cell(page, by_button, "Actions") == "Stop"
    assert page.status_label.text() == "starting"
    assert page.stop_button.text() == "Stop" and page.stop_button.isEnabled()
    assert not any(b.isVisible() for b in page.queue_buttons)
    assert page.controller.queued() == [by_table]
    # the table's "Start now" does the same
    assert cell(page, by_table, "Actions") == "Start now"
    click_action(qtbot, page, by_table)
    assert factory.calls == [(by_button, False), (by_table, False)]
    assert manager.get_experiment(by_table)["status"] == "starting" and page.controller.queued() == []
    assert sorted(page.controller.live_ids()) == sorted([busy, by_button, by_table])
    assert page.last_error is None


def test_a_queued_run_that_cannot_launch_fails_with_a_warning(qtbot, page, manager, dataset_id, factory):
    page.controller.autostart = False
    broken = page.start_run(config(dataset_id, "broken"), queue=True)
    fine = page.start_run(config(dataset_id, "fine"), queue=True)

    def refuse_the_first(manager_, experiment_id, **launch):
        if experiment_id == broken:
            raise ValueError("The dataset of this run was removed.")
        return factory(manager_, experiment_id, **launch)
    page.controller.process_factory = refuse_the_first
    page.controller.autostart = True
    page.controller.schedule()
    assert manager.get_experiment(broken)["status"] == "failed"
    assert "The dataset of this run was removed." in manager.get_experiment(broken)["error"]
    assert cell(page, broken, "Status") == "failed"
    assert page.last_warning.startswith("The queued run could not start")
    assert factory.calls == [(fine, False)], "one bad queued run does not block the others"
    assert cell(page, fine, "Status") == "starting"


# ---- closing the window with live runs -----------------------------------------------------------

def test_main_window_close_asks_before_stopping_live_runs(main_window, dataset_id):
    window, page = main_window, main_window.training_page
    assert page.controller is window.runs
    runs = [live_run(page, page.manager, dataset_id, name) for name in ("a", "b", "c")]
    (saving, saving_fake), (running, _), (finished, finished_fake) = runs
    page.stop_experiment(saving)  # still saving its stop checkpoint: it counts
    finished_fake.finish("completed", True, "Completed 60 steps.")  # ended: it does not
    assert page.manager.get_experiment(saving)["status"] == "stopping"
    asked = []

    def refuse(count):
        asked.append(count)
        return False
    window.confirm_stop = refuse
    assert window.close() is False
    assert asked == [2] and window.isVisible()
    assert sorted(page.live_runs()) == sorted([saving, running])
    assert runs[1][1].stop_calls == 0
    assert page.manager.get_experiment(running)["status"] == "running"

    for _, fake in runs:
        fake.finish_on_stop = True  # each saves its checkpoint, then ends
    window.confirm_stop = lambda count: asked.append(count) or True
    assert window.close() is True
    assert asked == [2, 2] and not window.isVisible()
    assert saving_fake.stop_requested and runs[1][1].stop_calls == 1
    assert page.live_runs() == []
    assert {page.manager.get_experiment(e)["status"] for e in (saving, running)} == {"stopped"}
    assert page.manager.get_experiment(finished)["status"] == "completed"


def test_main_window_closes_without_asking_when_nothing_runs(main_window, dataset_id):
    main_window.runs.autostart = False
    page = main_window.training_page
    queued = page.start_run(config(dataset_id, "later"), queue=True)
    main_window.confirm_stop = lambda count: pytest.fail("nothing runs: no question")
    assert main_window.close() is True
    assert page.manager.get_experiment(queued)["status"] == "queued"  # it waits for the next start


def test_a_warning_shows_in_the_main_window_status_bar(main_window, dataset_id):
    page = main_window.training_page
    exp_id, fake = live_run(page, page.manager, dataset_id)
    text = "The database answers again; this run's history is saved."
    fake.warning.emit(text)
    assert page.last_warning == text
    assert main_window.statusBar().currentMessage() == text
    fake.finish("completed", True, "Completed 60 steps.")


# ---- health alerts -------------------------------------------------------------------

def test_a_run_that_goes_nan_is_flagged_and_stopped_then_a_stall_is_flagged(qtbot, page, manager, dataset_id):
    exp_id, fake = live_run(page, manager, dataset_id, "diverging")
    page.select_experiment(exp_id)
    assert not page.health_banner.isVisible()
    fake.metrics_update.emit({"step": 40, "loss": float("nan"), "kl": 0.1})
    assert "nan" in page.controller.health[exp_id]
    assert page.health_banner.isVisible() and "diverged" in page.health_banner.text()
    assert cell(page, exp_id, "Status").startswith("⚠ ")
    index = page.model.index(page.model.row_of(exp_id), 1)
    assert "diverged" in index.data(Qt.ItemDataRole.ToolTipRole)
    assert fake.stop_calls == 1  # stop_on_nan is the default: stopped with its checkpoint
    assert manager.get_experiment(exp_id)["status"] == "stopping"
    assert any(e["kind"] == "alert: nan" for e in manager.get_events(exp_id))

    other, fake2 = live_run(page, manager, dataset_id, "stuck")
    page.select_experiment(other)
    page.controller.stall_minutes = 0.0001  # 6 ms without a step
    qtbot.wait(20)
    page.controller.check_health()
    assert "stalled" in page.controller.health[other] and "looks stalled" in page.health_banner.text()
    report_step(manager, other, fake2, 3, 60)  # progress clears it
    assert "stalled" not in page.controller.health[other] and not page.health_banner.isVisible()
    assert fake2.stop_calls == 0


def test_a_config_that_is_not_a_dict_is_a_sentence(page, manager):
    for bad in (["name", "x"], None, "config"):
        with pytest.raises(ValueError, match="must be a dictionary"):
            page.controller.start(bad)
        with pytest.raises(ValueError, match="must be a dictionary"):
            page.controller.enqueue(bad)
    assert manager.list_experiments() == []


# ---- "stop on NaN" from the wizard -------------------------------------------------------

def run_the_wizard(page, name, stop_on_nan: bool | None):
    """Through the page's own wizard: the only dataset, v2, ``name``; "stop on NaN" as given."""
    from rave_gui.ui.dialogs.new_training import PAGE_CONFIRM, PAGE_PARAMETERS
    wizard = page.open_new_training()
    wizard.dataset_page.table.selectRow(0)
    wizard.next()
    wizard.next()
    assert wizard.currentId() == PAGE_PARAMETERS
    params = wizard.parameters_page
    params.name_edit.setText(name)
    params.max_steps.setValue(60)
    assert params.stop_on_nan.isVisible() and params.stop_on_nan.isChecked()  # the default: stop
    if stop_on_nan is not None:
        params.stop_on_nan.setChecked(stop_on_nan)
    wizard.next()
    assert wizard.currentId() == PAGE_CONFIRM
    wizard.accept()
    assert wizard.result() == wizard.DialogCode.Accepted.value
    exp = next(e for e in page.manager.list_experiments() if e["name"] == name)
    return exp


def test_unticking_stop_on_nan_in_the_wizard_keeps_a_nan_run_going(qtbot, page, manager, dataset_id, factory):
    exp = run_the_wizard(page, "keeps going", stop_on_nan=False)
    assert exp["config"]["stop_on_nan"] is False
    fake = factory.last(exp["id"])
    fake.report_started()
    fake.metrics_update.emit({"step": 40, "loss": float("nan")})
    assert "nan" in page.controller.health[exp["id"]]      # flagged all the same
    assert fake.stop_calls == 0 and manager.get_experiment(exp["id"])["status"] == "running"
    fake.finish("completed", True, "Completed 60 steps.")


def test_the_wizards_stop_on_nan_default_stops_a_nan_run(qtbot, page, manager, dataset_id, factory):
    exp = run_the_wizard(page, "stops", stop_on_nan=None)
    assert exp["config"]["stop_on_nan"] is True
    fake = factory.last(exp["id"])
    fake.report_started()
    fake.metrics_update.emit({"step": 40, "loss": float("inf")})
    assert fake.stop_calls == 1 and manager.get_experiment(exp["id"])["status"] == "stopping"
    fake.finish()


# ---- a live run's GPU memory (the system monitor, a stand-in NVML) ----------------------------

def gpu_memory_row(page) -> str | None:
    """The "GPU memory" row's text, None while the row is hidden."""
    return page.gpu_memory_label.text() if page.info_form.isRowVisible(page.gpu_memory_label) else None


@pytest.fixture
def training_process():
    """A real process standing for a run's `rave train` (its own session: nothing here signals our group)."""
    import subprocess
    import sys
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    yield proc
    proc.kill()
    proc.wait()


def test_a_live_runs_gpu_memory_is_shown_from_the_monitors_samples(qtbot, page, manager, dataset_id,
                                                                      tmp_path, training_process):
    from types import SimpleNamespace

    from test_backend.test_system_monitor import FakeNVML

    from rave_gui.backend.system_monitor import NVML
    from rave_gui.ui.widgets.system_monitor import SystemMonitor

    class RunOnGPU1(FakeNVML):
        def nvmlDeviceGetComputeRunningProcesses(self, handle):
            return [SimpleNamespace(pid=training_process.pid, usedGpuMemory=3 * 10**9)] if handle == 1 else []

    exp_id, fake = live_run(page, manager, dataset_id, "on the gpu")
    fake.attach_pid = training_process.pid   # as a TrainingProcess re-attached to a running `rave train`
    idle_id, idle = live_run(page, manager, dataset_id, "other")   # a live run with no pid known yet
    page.select_experiment(exp_id)
    assert gpu_memory_row(page) is None                            # nothing sampled yet: nothing said
    monitor = SystemMonitor(tmp_path, interval=0.05, nvml=NVML(RunOnGPU1()), parent=page)
    page.attach_monitor(monitor)
    assert monitor.runs() == {exp_id: [training_process.pid]}
    monitor.start()
    try:
        qtbot.waitUntil(lambda: gpu_memory_row(page) is not None, timeout=10_000)
        assert gpu_memory_row(page) == "3.0 GB on GPU 1 (of 80.0 GB)"
        assert page.gpu_memory_label.isVisible()
        page.select_experiment(idle_id)
        assert gpu_memory_row(page) is None                        # its pid is not known: not measured
        page.select_experiment(exp_id)
        assert gpu_memory_row(page) == "3.0 GB on GPU 1 (of 80.0 GB)"
        fake.finish("completed", True, "Completed 60 steps.")       # no longer live: nothing to show
        assert gpu_memory_row(page) is None
        assert monitor.runs() == {}
    finally:
        monitor.stop()
    idle.finish("completed", True, "Completed 60 steps.")


def test_without_an_nvidia_gpu_no_gpu_memory_is_shown(qtbot, page, manager, dataset_id, tmp_path,
                                                       training_process):
    from test_backend.test_system_monitor import BrokenNVML

    from rave_gui.backend.system_monitor import NVML
    from rave_gui.ui.widgets.system_monitor import SystemMonitor

    exp_id, fake = live_run(page, manager, dataset_id, "on the cpu")
    fake.attach_pid = training_process.pid
    page.select_experiment(exp_id)
    samples = []
    monitor = SystemMonitor(tmp_path, interval=0.05, nvml=NVML(BrokenNVML()), parent=page)
    monitor.sampled.connect(samples.append)
    page.attach_monitor(monitor)
    monitor.start()
    try:
        qtbot.waitUntil(lambda: len(samples) >= 3, timeout=10_000)
    finally:
        monitor.stop()
    assert page._gpu_sample is samples[-1] and samples[-1].gpus == []
    assert gpu_memory_row(page) is None and page.gpu_memory_label.text() == ""
    assert not page.gpu_memory_label.isVisible()
    fake.finish("completed", True, "Completed 60 steps.")


def test_the_main_windows_monitor_feeds_the_training_page(main_window):
    assert main_window.training_page.monitor is main_window.monitor


def test_a_slurm_job_waiting_in_the_queue_shows_why_and_is_not_stalled(qtbot, page, manager, dataset_id):
    exp_id, fake = live_run(page, manager, dataset_id, "on the cluster")
    assert cell(page, exp_id, "Status") == "running"
    report_step(manager, exp_id, fake, 3, 60)
    assert page.controller.live_run(exp_id).first_step == 3
    fake.status_note.emit("pending in Slurm's queue (job 12: Priority — other jobs come first)")
    assert cell(page, exp_id, "Status") == "pending (Slurm)"
    index = page.model.index(page.model.row_of(exp_id), COLUMNS.index("Status"))
    assert "job 12: Priority" in index.data(Qt.ItemDataRole.ToolTipRole)
    page.controller.stall_minutes = 0.0001
    qtbot.wait(20)
    page.controller.check_health()
    assert "stalled" not in page.controller.health.get(exp_id, {})  # waiting for a node is not a stall
    assert page.controller.live_run(exp_id).first_step is None  # a new job: its ETA starts afresh
    fake.status_note.emit("running on node7 (Slurm job 12)")
    assert cell(page, exp_id, "Status") == "running"
    assert "node7" in index.data(Qt.ItemDataRole.ToolTipRole)
    fake.status_note.emit("")
    assert not index.data(Qt.ItemDataRole.ToolTipRole)
    fake.finish("completed", ok=True)
    assert exp_id not in page.controller.notes


def test_a_long_run_recorded_before_the_history_cache_opens_with_an_overview(qtbot, page, manager, dataset_id,
                                                                               monkeypatch):
    """Selecting it shows an overview at once; the whole history follows from a
    background read (and is cached: the next selection is instant)."""
    from rave_gui.backend import history_cache
    from rave_gui.ui.widgets import metrics_plot
    monkeypatch.setattr(metrics_plot, "SYNC_TABLE_ROWS", 1_000)
    exp_id = new_experiment(manager, dataset_id, "long and old", max_steps=1_000_000)
    manager.update_training_metrics(exp_id, [{"step": 10 * (i + 1), "loss": 1.0 / (i + 1)} for i in range(5_000)])
    history_cache.drop_chunks(manager.db, exp_id)  # as recorded by an app without the cache
    other = new_experiment(manager, dataset_id, "other")
    with qtbot.waitSignal(page.plot.history_loaded, timeout=30_000):
        page.select_experiment(exp_id)
        assert page.plot.loading and 0 < page.plot.history["loss"][0].size < 5_000
    assert page.plot.history["loss"][0].size == 5_000 and not page.plot.loading
    page.select_experiment(other)
    page.select_experiment(exp_id)
    assert not page.plot.loading and page.plot.history["loss"][0].size == 5_000
