"""Compare and TensorBoard from the Training page: select runs in the table, click."""
from __future__ import annotations

import shutil
import urllib.request
from pathlib import Path

import psutil
from PyQt6.QtCore import QItemSelectionModel, Qt

from compare_runs_data import two_runs  # tests/ helper

from rave_gui.backend.runs import RunController
from rave_gui.ui.pages.training import TrainingPage

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "rave"


def select_rows(page, ids):
    sel = page.table.selectionModel()
    sel.clearSelection()
    for exp_id in ids:
        sel.select(page.model.index(page.model.row_of(exp_id), 0),
                   QItemSelectionModel.SelectionFlag.Select | QItemSelectionModel.SelectionFlag.Rows)


def make_page(qtbot, manager):
    page = TrainingPage(manager.db, controller=RunController(manager))
    page.open_browser = False
    qtbot.addWidget(page)
    page.show()
    return page


def test_compare_needs_two_runs_and_opens_with_the_selection(qtbot, tmp_path):
    db, manager, (a, b) = two_runs(tmp_path)
    page = make_page(qtbot, manager)
    select_rows(page, [a])
    assert not page.compare_button.isEnabled() and page.tensorboard_button.isEnabled()
    select_rows(page, [a, b])
    assert page.compare_button.isEnabled()
    assert page.selected_id in (a, b)  # the details follow one of them
    qtbot.mouseClick(page.compare_button, Qt.MouseButton.LeftButton)
    dialog = page.compare_dialog
    assert sorted(dialog.experiment_ids) == sorted([a, b])
    assert {(e, "loss") for e in (a, b)} <= set(dialog.lines)
    # a live point of one of them reaches the dialog through the controller
    before = len(dialog.lines[(a, "loss")].get_xdata())
    page.controller.metrics_added.emit(a, {"step": 10_000, "loss": 0.1})
    qtbot.waitUntil(lambda: len(dialog.lines[(a, "loss")].get_xdata()) == before + 1, timeout=5000)
    dialog.close()


def test_tensorboard_button_serves_the_selected_run_on_loopback_and_stops_with_the_page(qtbot, tmp_path):
    db, manager, (a, b) = two_runs(tmp_path)
    run_dir = Path(manager.get_experiment(a)["run_dir"])
    shutil.rmtree(run_dir)
    shutil.copytree(FIXTURES / "smoke_run", run_dir)  # real RAVE event files
    page = make_page(qtbot, manager)
    select_rows(page, [a])
    qtbot.mouseClick(page.tensorboard_button, Qt.MouseButton.LeftButton)
    assert page.tensorboard_button.text() == "Starting TensorBoard…"  # the window stays responsive
    qtbot.waitUntil(lambda: page.tensorboard_url is not None, timeout=60_000)
    url = page.tensorboard_url
    assert url.startswith("http://127.0.0.1:")
    with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(url + "data/runs", timeout=10) as r:
        assert "version_0" in r.read().decode()
    pid = page.tensorboard.pid
    page.close()
    page.tensorboard.stop()
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_tensorboard_for_a_run_without_files_says_so(qtbot, tmp_path):
    db, manager, (a, b) = two_runs(tmp_path)
    shutil.rmtree(manager.get_experiment(a)["run_dir"])
    page = make_page(qtbot, manager)
    assert page.open_tensorboard([a]) is False
    assert "no TensorBoard files yet" in page.last_error


def test_the_audio_tab_follows_the_selected_run(qtbot, tmp_path):
    """A stored run with RAVE's real event files: its validations, at their global steps."""
    db, manager, (a, b) = two_runs(tmp_path)
    run_dir = Path(manager.get_experiment(a)["run_dir"])
    shutil.rmtree(run_dir)
    shutil.copytree(FIXTURES / "smoke_run", run_dir)
    page = make_page(qtbot, manager)
    page.select_experiment(a)
    qtbot.waitUntil(lambda: len(page.audio_view.validations) == 3, timeout=10_000)
    assert [v.step for v in page.audio_view.validations] == [1, 3, 5]
    page.select_experiment(b)  # no event files: the tab is emptied
    qtbot.waitUntil(lambda: page.audio_view.validations == [], timeout=10_000)


def test_the_phase_marker_comes_from_the_runs_config_gin(qtbot, tmp_path):
    db, manager, (a, b) = two_runs(tmp_path)
    (Path(manager.get_experiment(a)["run_dir"]) / "config.gin").write_text("PHASE_1_DURATION = 60\n")
    page = make_page(qtbot, manager)
    page.select_experiment(a)
    assert page.plot.phase_1 == 60
    page.select_experiment(b)  # its config.gin names the macro without a value: predicted from the config
    from rave_gui.backend import rave_cli
    assert page.plot.phase_1 == rave_cli.phase_1_duration("v2")
