"""The window, driven like a person would: wizard -> real `rave train` on the CPU ->
real loss points in the plot -> a second run stopped from its table row."""
from __future__ import annotations

import pytest
from PyQt6.QtCore import Qt

from rave_gui.backend.datasets import DatasetManager
from rave_gui.core.database import Database
from rave_gui.ui.models.experiments_model import COL_ACTIONS

pytestmark = pytest.mark.e2e


def test_wizard_run_plot_and_stop_from_table(qtbot, tmp_path, rave_dataset):
    from rave_gui.main_window import MainWindow
    db = Database(tmp_path / "gui.sqlite3")
    ds_id = DatasetManager(db).register(rave_dataset, name="tones")
    window = MainWindow(db)
    window.confirm_stop = lambda count: True  # closing (even after a failure) stops the runs, no dialog
    qtbot.addWidget(window)
    window.show()
    page = window.training_page

    wizard = page.open_new_training()
    assert wizard.select_dataset(ds_id)
    wizard.next()
    wizard.config_page.set_base_config("v2_small")
    wizard.next()
    params = wizard.parameters_page
    params.name_edit.setText("gui run")
    params.max_steps.setValue(30)
    params.batch_size.setValue(2)
    params.val_every.setValue(10)
    params.set_device("cpu")
    wizard.next()
    assert "--max_steps 30" in wizard.confirmation_page.command_text()
    wizard.accept()
    qtbot.waitUntil(lambda: page.selected_id is not None, timeout=10_000)
    first = page.selected_id
    assert page.manager.get_experiment(first)["name"] == "gui run"

    # real validation losses (RAVE validates every 10 steps here) reach the plot live
    qtbot.waitUntil(lambda: len(page.plot.get_history().get("val_loss", ([], []))[0]) >= 1, timeout=600_000)
    steps, values = page.plot.get_history()["val_loss"]
    assert steps[0] == 9 and values[0] > 0
    assert page.progress_bar.value() > 0 and "/ 30" in page.step_label.text()

    # a second run, stopped with the Stop button of its row
    second = page.start_run(dict(name="second", dataset_id=ds_id, base_config="v2_small", max_steps=5000,
                                 batch_size=2, device="cpu", val_every=1000))
    assert second is not None
    qtbot.waitUntil(lambda: (page.manager.get_experiment(second)["current_step"] or 0) >= 3, timeout=600_000)
    row = page.model.row_of(second)
    index = page.model.index(row, COL_ACTIONS)
    assert index.data() == "Stop"
    assert page.model.index(page.model.row_of(first), COL_ACTIONS).data() in ("Stop", "Resume")
    rect = page.table.visualRect(index)
    qtbot.mouseClick(page.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert page.manager.get_experiment(second)["status"] == "stopping"  # saving its checkpoint
    assert page.model.index(row, 1).data() == "stopping…"
    assert page.status_label.text().startswith("stopping (saving step") or page.selected_id != second
    assert window.runs.live_ids().count(second) == 1  # the close dialog counts it
    qtbot.waitUntil(lambda: second not in page.live_runs(), timeout=30_000)
    assert page.manager.get_experiment(second)["status"] == "stopped"
    assert page.model.index(page.model.row_of(second), COL_ACTIONS).data() == "Resume"

    qtbot.waitUntil(lambda: first not in page.live_runs(), timeout=600_000)
    exp = page.manager.get_experiment(first)
    assert exp["status"] == "completed", exp.get("error")
    page.select_experiment(first)
    assert "completed" in page.status_label.text()
    assert page.log_view.toPlainText().count("max_steps=30") >= 1
    assert not any(line.rstrip().endswith("/30") and "[rave-gui" in line
                   for line in page.log_view.toPlainText().splitlines())  # no per-step launcher lines
    # the Audio tab: RAVE's validation audio at the global steps of the validations (every 10 steps)
    page.tabs.setCurrentWidget(page.audio_view)
    qtbot.waitUntil(lambda: len(page.audio_view.validations) >= 3, timeout=30_000)
    assert [v.step for v in page.audio_view.validations][:3] == [9, 19, 29]
    original, reconstruction = page.audio_view.validations[0].pairs[0]
    assert original.shape == reconstruction.shape and abs(original).max() > 0
    window.close()
    db.close()
