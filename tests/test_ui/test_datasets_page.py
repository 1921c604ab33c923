"""The Datasets page and the New-dataset dialog, driven through their methods."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile
from PyQt6.QtWidgets import QMessageBox

from rave_gui.backend.datasets import DatasetManager
from rave_gui.core.signals import app_signals
from rave_gui.ui.dialogs.new_dataset import NewDatasetDialog
from rave_gui.ui.models.datasets_model import COLUMNS, format_duration
from rave_gui.ui.pages.datasets import EMPTY_TEXT, DatasetsPage


@pytest.fixture
def page(qtbot, db):
    widget = DatasetsPage(db)
    qtbot.addWidget(widget)
    widget.show()
    yield widget
    widget.close()


def cell(page, row: int, column: str) -> str:
    return page.model.index(row, COLUMNS.index(column)).data()


def close_message_boxes(page) -> None:
    for box in page.findChildren(QMessageBox):
        box.done(0)


def test_empty_state_guides_a_new_user(page):
    assert page.is_empty_state()
    assert page.empty_label.text() == EMPTY_TEXT and page.empty_label.isVisible()
    assert page.empty_new_button.isVisible() and not page.table.isVisible()


def test_rows_after_registering_a_dataset(qtbot, page, db, fake_dataset):
    dataset_id = DatasetManager(db).register(fake_dataset, name="voice")
    with qtbot.waitSignal(app_signals().dataset_added, timeout=1000):
        app_signals().dataset_added.emit(dataset_id)
    assert not page.is_empty_state() and page.table.isVisible()
    assert page.model.rowCount() == 1
    assert cell(page, 0, "Name") == "voice"
    assert cell(page, 0, "Duration") == "0:00:30" == format_duration(29.72)
    assert cell(page, 0, "Examples") == "\u2014"  # the fake data.mdb is no LMDB
    assert cell(page, 0, "Channels") == "1 (mono)"
    assert cell(page, 0, "Sample rate") == "44,100 Hz"
    assert cell(page, 0, "Path") == str(fake_dataset)
    assert cell(page, 0, "Used by") == "0 experiments"


def test_import_folder_and_its_errors(page, tmp_path, fake_dataset):
    assert page.import_folder(tmp_path / "missing") is None
    assert "does not exist" in page.last_error
    close_message_boxes(page)
    dataset_id = page.import_folder(fake_dataset)
    assert dataset_id is not None and page.selected_dataset_id() == dataset_id
    assert page.import_folder(fake_dataset) is None and "already registered" in page.last_error
    close_message_boxes(page)


def test_remove_refused_while_an_experiment_uses_it(page, db, fake_dataset):
    dataset_id = page.import_folder(fake_dataset)
    db.execute("INSERT INTO experiments (name, dataset_id, status) VALUES ('x', ?, 'running')", (dataset_id,))
    page.refresh()
    assert cell(page, 0, "Used by") == "1 experiment"
    page.select_dataset(dataset_id)
    assert page.ask_remove_selected() is None
    assert page.last_error == "The dataset is used by 1 experiment(s), 1 of them running. Delete those experiments first."
    assert page.remove_dataset(dataset_id) is False  # the backend refuses too
    assert DatasetManager(db).get_dataset(dataset_id) is not None
    close_message_boxes(page)


def test_remove_with_delete_files(qtbot, page, db, fake_dataset):
    dataset_id = page.import_folder(fake_dataset)
    page.select_dataset(dataset_id)
    box = page.ask_remove_selected()
    box.checkBox().setChecked(True)
    with qtbot.waitSignal(app_signals().dataset_removed, timeout=1000):
        box.button(QMessageBox.StandardButton.Yes).click()
    assert DatasetManager(db).get_dataset(dataset_id) is None
    assert not fake_dataset.exists() and page.is_empty_state()


# -- the dialog -----------------------------------------------------------------

@pytest.fixture
def dialog(qtbot, db):
    dlg = NewDatasetDialog(db)
    qtbot.addWidget(dlg)
    yield dlg
    if dlg.process is not None:
        dlg.process.stop()
        dlg.process.wait()


def test_dialog_needs_a_folder_and_a_good_name(dialog, db, tmp_path):
    assert dialog.create() is False
    assert dialog.error_text() == "Give the dataset a name."
    dialog.name_edit.setText("voice")
    assert dialog.output_edit.text() == str(Path(db.path).parent / "datasets" / "voice")
    assert dialog.create() is False
    assert dialog.error_text() == "Add at least one folder of audio files."
    dialog.name_edit.setText("bad/name")
    assert dialog.create() is False
    assert dialog.error_text() == "The dataset name cannot contain /: it becomes a folder name."
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.txt").write_text("x")
    dialog.name_edit.setText("docs")
    dialog.add_folder(tmp_path / "docs")
    assert dialog.folders() == [str(tmp_path / "docs")]
    assert dialog.create() is False and "It holds 1 .txt" in dialog.error_text()
    dialog.folder_list.setCurrentRow(0)
    dialog.remove_selected_folder()
    assert dialog.folders() == []


@pytest.mark.e2e
def test_dialog_creates_a_dataset_with_real_preprocess(qtbot, dialog, db, tmp_path):
    sr = 44100
    t = np.arange(2 * sr) / sr
    for i, name in enumerate(["a.wav", "sub/b.flac"]):
        path = tmp_path / "audio" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        soundfile.write(str(path), (0.3 * np.sin(2 * np.pi * 220 * (i + 1) * t)).astype("float32"), sr)
    dialog.add_folder(tmp_path / "audio")
    assert dialog.name_edit.text() == "audio"
    dialog.num_signal = 4096
    with qtbot.waitSignal(dialog.accepted, timeout=120_000):
        assert dialog.create() is True
        assert not dialog.progress_bar.isHidden()
    assert dialog.dataset_id is not None and dialog.process is None
    row = DatasetManager(db).get_dataset(dialog.dataset_id)
    assert row["name"] == "audio" and Path(row["path"]) == Path(db.path).parent / "datasets" / "audio"
    assert dialog.error_text() == ""


@pytest.mark.e2e
def test_dialog_cancel_keeps_it_open_with_the_sentence(qtbot, dialog, db, tmp_path):
    path = tmp_path / "audio" / "a.wav"
    path.parent.mkdir()
    soundfile.write(str(path), np.zeros(2 * 44100, dtype="float32") + 0.1, 44100)
    dialog.add_folder(path.parent)
    dialog.num_signal = 4096
    assert dialog.create() is True
    process = dialog.process
    qtbot.waitUntil(lambda: process.pid is not None, timeout=30_000)  # RAVE runs
    with qtbot.waitSignal(process.finished, timeout=60_000):
        dialog.cancel_button.click()  # while running: stop, stay open
    process.wait()
    assert dialog.error_text().startswith("Cancelled") and "full output" not in dialog.error_text()
    assert dialog.result() == 0 and dialog.dataset_id is None and dialog.create_button.isEnabled()
    assert DatasetManager(db).list_datasets() == [] and not (Path(db.path).parent / "datasets" / "audio").exists()


@pytest.mark.parametrize("case", ["infinite length", "symlink loop", "unreadable metadata"])
def test_import_of_an_odd_folder_is_a_message_not_a_crash(page, db, tmp_path, fake_dataset, case):
    if case == "infinite length":
        (fake_dataset / "metadata.yaml").write_text("channels: 1\nsr: 44100\nn_seconds: .inf\n")
        target = fake_dataset
    elif case == "symlink loop":
        (tmp_path / "a").symlink_to(tmp_path / "b")
        (tmp_path / "b").symlink_to(tmp_path / "a")
        target = tmp_path / "a" / "dataset"
    else:
        if not Path("/proc/self/mem").exists():
            pytest.skip("needs Linux /proc")
        (fake_dataset / "metadata.yaml").unlink()
        (fake_dataset / "metadata.yaml").symlink_to("/proc/self/mem")  # fails to read, even for root
        target = fake_dataset
    assert page.import_folder(target) is None
    assert page.last_error and page.last_error.endswith(".") and "Traceback" not in page.last_error
    assert db.query_one("SELECT count(*) FROM datasets")[0] == 0
    close_message_boxes(page)


def test_dialog_with_an_audio_folder_in_a_symlink_loop_shows_the_sentence(dialog, tmp_path):
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    dialog.name_edit.setText("voice")
    dialog.add_folder(tmp_path / "a" / "audio")
    assert dialog.create() is False
    assert "cannot be used" in dialog.error_text() and dialog.error_text().endswith(".")
    assert dialog.process is None
