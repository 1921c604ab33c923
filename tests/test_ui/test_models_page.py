"""The Models page with records (no real model): the list, statuses, rename, delete
with confirmation, reveal, import + check, the Try panel, the export dialog.

Checks and tries run real child processes, but of a tiny fake tool instead of
torch: ``FAKE_PYTHON`` stands where the Python of ``rave`` would, and answers as
``model_check`` / ``model_try`` do (a model whose file starts with ``GOOD`` works)."""
from __future__ import annotations

import json
import stat
import sys
import time
import wave
from pathlib import Path

import numpy as np
import pytest
from PyQt6 import sip
from PyQt6.QtCore import QCoreApplication, QEvent, Qt
from PyQt6.QtWidgets import QMessageBox

from rave_gui.backend.models import ModelLibrary, apply_models_migration
from rave_gui.backend.runs import RunController
from rave_gui.ui.models.models_table import COLUMNS
from rave_gui.ui.pages.models import ModelsPage

FAKE_TOOL = r'''
import json, os, sys, wave
script, args = os.path.basename(sys.argv[1]), sys.argv[2:]
print("progress: 50 working", flush=True)
if script == "model_check.py":
    good = open(args[0], "rb").read(4) == b"GOOD"
    print(json.dumps({"ok": True, "message": "Works: 4 latent dimensions.", "latent_size": 4,
                      "full_latent_size": 128, "sample_rate": 44100, "channels": 1, "streaming": True}
                     if good else {"ok": False, "message": "torch.jit.load could not open it: export it again."}))
    sys.exit(0 if good else 1)
model, src, out = args[:3]
copy = args[args.index("--input-copy") + 1]
with wave.open(src, "rb") as w:
    params, frames = w.getparams(), w.readframes(w.getnframes())
import array
half = array.array("h", frames)
half = array.array("h", (v // 2 for v in half))
for path, data in ((out, half.tobytes()), (copy, frames)):
    with wave.open(path, "wb") as w:
        w.setparams(params)
        w.writeframes(data)
print(json.dumps({"ok": True, "message": "Done: 1.00 s at 44,100 Hz on the CPU.", "output": out,
                  "input_copy": copy, "sample_rate": 44100, "channels": 1, "frames": params.nframes}))
'''


@pytest.fixture
def fake_python(tmp_path) -> str:
    tool = tmp_path / "fake_tool.py"
    tool.write_text(FAKE_TOOL)
    exe = tmp_path / "fake-python"
    exe.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{tool}" "$@"\n')
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    return str(exe)


@pytest.fixture
def library(db) -> ModelLibrary:
    apply_models_migration(db)
    return ModelLibrary(db)


def dispose(widget) -> None:
    for box in widget.findChildren(QMessageBox):
        box.done(0)
    widget.shutdown()
    widget.close()
    widget.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    assert sip.isdeleted(widget)


@pytest.fixture
def make_page(qtbot, db, library, fake_python):
    pages = []

    def make(controller=None, auto_check=False):
        page = ModelsPage(db, controller=controller, auto_check=auto_check, python=fake_python)
        page.resize(1200, 800)
        page.show()
        qtbot.waitExposed(page)
        pages.append(page)
        return page
    yield make
    for page in pages:
        dispose(page)


def model_file(folder: Path, name: str, good: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes((b"GOOD" if good else b"BAD!") + b"\0" * 2000)
    return path


def cell(page, model_id, column, role=Qt.ItemDataRole.DisplayRole):
    return page.model.data(page.model.index(page.model.row_of(model_id), COLUMNS.index(column)), role)


def tone(path: Path, seconds: float = 1.0, rate: int = 44100) -> Path:
    t = np.arange(int(seconds * rate)) / rate
    data = (0.4 * np.sin(2 * np.pi * 220 * t) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(rate)
        w.writeframes(data.tobytes())
    return path


# -- the list ------------------------------------------------------------------------------------

def test_models_are_listed_with_their_status(make_page, library, tmp_path):
    good = library.import_file(model_file(tmp_path / "m", "flute.ts"))
    broken = library.import_file(model_file(tmp_path / "m", "cracked.ts", good=False))
    library.record_check(good, {"ok": True, "message": "Works: 4 latent dimensions.", "latent_size": 4,
                                "full_latent_size": 128, "sample_rate": 48000, "channels": 2, "streaming": True})
    library.record_check(broken, {"ok": False, "message": "torch.jit.load could not open it."})
    gone_path = model_file(tmp_path / "m", "gone.ts")
    gone = library.import_file(gone_path)
    gone_path.unlink()
    page = make_page()
    assert page.model.rowCount() == 3 and not page.empty_label.isVisible()
    assert cell(page, good, "Status") == "\u2713 Works" and cell(page, good, "Latent dims") == "4 of 128"
    assert cell(page, good, "Sample rate") == "48,000 Hz" and cell(page, good, "Channels") == "2"
    assert cell(page, good, "Streaming") == "yes" and cell(page, good, "From") == "Imported"
    assert cell(page, broken, "Status") == "\u2717 Broken"                      # shown, not hidden
    assert cell(page, broken, "Status", Qt.ItemDataRole.ToolTipRole) == "torch.jit.load could not open it."
    assert cell(page, broken, "Status", Qt.ItemDataRole.ForegroundRole) is not None
    assert cell(page, gone, "Status") == "File missing"
    page.select_model(broken)
    assert "torch.jit.load could not open it." in page.detail_label.text()
    page.select_model(gone)
    assert "missing" in page.detail_label.text() and not page.check_button.isEnabled()
    assert page.rename_button.isEnabled() and page.delete_button.isEnabled()


def test_an_export_shows_its_run_and_checkpoint(make_page, library, db, tmp_path):
    db.execute("INSERT INTO experiments (name, status, out_dir) VALUES ('cello', 'completed', ?)", (str(tmp_path),))
    exp = dict(db.query_one("SELECT * FROM experiments"))
    model_id = library.record_export(exp, model_file(tmp_path / "export", "cello_best_streaming.ts"), True, 0.95,
                                     {"file": "best.ckpt", "step": 1200, "validation": 3.125})
    page = make_page()
    assert cell(page, model_id, "From") == "cello \u00b7 best.ckpt"
    assert cell(page, model_id, "Step") == "1,200" and cell(page, model_id, "Validation") == "3.125"
    assert cell(page, model_id, "Fidelity") == "0.95" and cell(page, model_id, "Status") == "Not checked"


def test_the_table_reads_rows_lazily(make_page, library, db, tmp_path):
    folder = tmp_path / "many"
    folder.mkdir()
    db.executemany("INSERT INTO exports (path, created_at, source, name) VALUES (?, ?, 'import', ?)",
                   [(str(folder / f"m{i}.ts"), f"2025-01-01T00:{i // 60:02d}:{i % 60:02d}", f"m{i}")
                    for i in range(500)])
    page = make_page()
    assert page.model.rowCount() == 500
    QCoreApplication.processEvents()
    assert 0 < page.model.fetched < 100      # only what the view showed


def test_empty_library_says_what_to_do(make_page):
    page = make_page()
    assert page.empty_label.isVisible() and "import" in page.empty_label.text()
    assert not page.rename_button.isEnabled() and not page.export_button.isEnabled()


# -- rename, delete, reveal --------------------------------------------------------------------------

def test_rename_through_the_dialog(qtbot, make_page, library, tmp_path):
    path = model_file(tmp_path / "m", "flute.ts")
    model_id = library.import_file(path)
    page = make_page()
    page.select_model(model_id)
    dialog = page.ask_rename_selected()
    assert dialog.name_edit.text() == "flute"
    dialog.name_edit.setText("Breathy flute")
    dialog.rename_file.setChecked(True)
    dialog.accept()
    assert cell(page, model_id, "Name") == "Breathy flute"
    assert Path(library.get(model_id)["path"]).name == "Breathy flute.ts" and not path.exists()
    page.select_model(model_id)
    page.ask_rename_selected().name_edit.setText("  ")
    page.rename_dialog.accept()
    assert "needs a name" in page.last_error and cell(page, model_id, "Name") == "Breathy flute"


def test_delete_asks_first_and_cancel_keeps_everything(make_page, library, tmp_path):
    path = model_file(tmp_path / "m", "flute.ts")
    model_id = library.import_file(path)
    page = make_page()
    page.select_model(model_id)
    box = page.ask_delete_selected()
    assert "stays on disk" in box.text()
    box.checkBox().setChecked(True)
    assert "cannot be undone" in box.text() and str(path.resolve()) in box.text()
    box.button(QMessageBox.StandardButton.Cancel).click()
    assert library.get(model_id) is not None and path.exists()


def test_delete_the_record_only(make_page, library, tmp_path):
    path = model_file(tmp_path / "m", "flute.ts")
    model_id = library.import_file(path)
    page = make_page()
    page.select_model(model_id)
    page.ask_delete_selected().button(QMessageBox.StandardButton.Yes).click()
    assert library.get(model_id) is None and path.exists() and page.model.rowCount() == 0


def test_delete_the_record_and_the_file(make_page, library, tmp_path):
    path = model_file(tmp_path / "m", "flute.ts")
    model_id = library.import_file(path)
    page = make_page()
    page.select_model(model_id)
    box = page.ask_delete_selected()
    box.checkBox().setChecked(True)
    box.button(QMessageBox.StandardButton.Yes).click()
    assert library.get(model_id) is None and not path.exists()


def test_reveal_opens_the_folder(make_page, library, tmp_path, monkeypatch):
    from rave_gui.ui.pages import models as page_module
    opened = []
    monkeypatch.setattr(page_module.QDesktopServices, "openUrl", lambda url: opened.append(url) or True)
    model_id = library.import_file(model_file(tmp_path / "exports", "flute.ts"))
    page = make_page()
    page.select_model(model_id)
    assert page.reveal_selected()
    assert [Path(u.toLocalFile()) for u in opened] == [(tmp_path / "exports").resolve()]


# -- import and check (a tiny fake tool in place of torch) ---------------------------------------------

def test_import_checks_the_model(qtbot, make_page, library, tmp_path):
    page = make_page(auto_check=True)
    with qtbot.waitSignal(page.jobs.check_done, timeout=60_000) as done:
        model_id = page.import_model(model_file(tmp_path / "m", "flute.ts"))
    assert done.args[:2] == [model_id, True]
    assert cell(page, model_id, "Status") == "\u2713 Works" and cell(page, model_id, "Latent dims") == "4 of 128"
    assert "Works: 4 latent dimensions." in page.detail_label.text()


def test_a_broken_import_is_listed_as_broken_with_its_sentence(qtbot, make_page, tmp_path):
    page = make_page(auto_check=True)
    with qtbot.waitSignal(page.jobs.check_done, timeout=60_000) as done:
        model_id = page.import_model(model_file(tmp_path / "m", "cracked.ts", good=False))
    assert done.args[:2] == [model_id, False]
    assert cell(page, model_id, "Status") == "\u2717 Broken"
    assert "export it again" in page.detail_label.text()


def test_import_refuses_a_file_that_is_not_a_model(make_page, tmp_path):
    page = make_page()
    (tmp_path / "notes.txt").write_text("x")
    assert page.import_model(tmp_path / "notes.txt") is None and "not a .ts file" in page.last_error


def test_unchecked_models_are_checked_one_after_the_other(qtbot, make_page, library, tmp_path):
    ids = [library.import_file(model_file(tmp_path / "m", f"m{i}.ts", good=i != 1)) for i in range(3)]
    page = make_page(auto_check=True)
    qtbot.waitUntil(lambda: all(library.get(i)["status"] != "unchecked" for i in ids), timeout=60_000)
    qtbot.waitUntil(lambda: page.jobs.checking_id is None, timeout=10_000)
    assert [library.get(i)["status"] for i in ids] == ["ok", "broken", "ok"]


# -- try it ------------------------------------------------------------------------------------------

def test_try_a_model_on_a_file_then_save_the_result(qtbot, make_page, library, tmp_path):
    model_id = library.import_file(model_file(tmp_path / "m", "flute.ts"))
    page = make_page()
    page.select_model(model_id)
    panel = page.try_panel
    assert not panel.run_button.isEnabled()          # no audio yet
    panel.set_input(str(tone(tmp_path / "voice.wav")))
    assert panel.run_button.isEnabled()
    with qtbot.waitSignal(page.jobs.try_done, timeout=60_000) as done:
        assert panel.start()
    assert done.args[0] is True, done.args[1]
    original, result = panel.sides
    assert original.shape == result.shape == (44100,)
    assert np.allclose(result, original / 2, atol=1e-3)
    assert panel.original_button.isEnabled() and panel.save_button.isEnabled()
    assert "Done" in panel.status_label.text()
    saved = panel.save_result(str(tmp_path / "out" / "heard"))
    assert saved is None and "Could not save" in panel.error.text()   # no such folder: a sentence
    (tmp_path / "out").mkdir()
    saved = panel.save_result(str(tmp_path / "out" / "heard"))
    assert saved.endswith("heard.wav") and Path(saved).stat().st_size > 44100


def test_try_refuses_a_missing_audio_file(make_page, library, tmp_path):
    model_id = library.import_file(model_file(tmp_path / "m", "flute.ts"))
    page = make_page()
    page.select_model(model_id)
    page.try_panel.set_input(str(tmp_path / "nothing.wav"))
    assert not page.try_panel.start() and "does not exist" in page.try_panel.error.text()


def test_latent_controls_follow_the_model(make_page, library, tmp_path):
    model_id = library.import_file(model_file(tmp_path / "m", "flute.ts"))
    library.record_check(model_id, {"ok": True, "message": "Works.", "latent_size": 2})
    page = make_page()
    page.select_model(model_id)
    page.try_panel.scale_spins[1].setValue(1.5)
    assert page.try_panel.controls() == ([1.0, 1.5], [0.0, 0.0])


# -- export a run ----------------------------------------------------------------------------------

def test_the_export_dialog_offers_checkpoints_and_previews_the_fidelity(make_page, db, tmp_path, fake_dataset):
    from rave_gui.backend.datasets import DatasetManager
    from rave_gui.backend.training import TrainingManager
    manager = TrainingManager(db, runs_root=tmp_path / "runs", gpus=[])
    controller = RunController(manager)
    dataset_id = DatasetManager(db).register(fake_dataset)
    exp_id = manager.start_training({"name": "cello", "dataset_id": dataset_id, "max_steps": 60})
    manager.set_status(exp_id, "failed")
    run = Path(manager.get_experiment(exp_id)["out_dir"]) / "cello_0a1b2c3d4e"
    folder = run / "version_0" / "checkpoints"
    folder.mkdir(parents=True)
    (run / "config.gin").write_text("LATENT_SIZE = 128\n")
    for name, step in (("best.ckpt", 19), ("epoch-epoch=0039.ckpt", 39)):
        (folder / name).write_bytes(b"\0")
        with open(folder / "rave-gui-index.jsonl", "a") as index:
            index.write(json.dumps({"file": name, "step": step, "validation": 3.0}) + "\n")
        time.sleep(0.01)
    manager.set_run_dir(exp_id, run)
    manager.update_training_metrics(exp_id, [{"step": 19, "fidelity_0.95": 5.0, "fidelity_0.9": 2.0},
                                             {"step": 39, "fidelity_0.95": 12.0, "fidelity_0.9": 3.0}])
    page = make_page(controller=controller)
    exported = []
    controller.export = lambda e, options: exported.append((e, options))
    dialog = page.open_export_dialog()
    assert dialog.experiment_id == exp_id and dialog.checkpoint_combo.count() == 4
    assert dialog.checkpoint_combo.currentData() == "best"
    assert "keep 8 latent dimensions" in dialog.preview.text()            # 5 needed at step 19 -> 8
    dialog.checkpoint_combo.setCurrentIndex(1)                            # last: step 39
    assert "keep 16 latent dimensions" in dialog.preview.text()
    dialog.fidelity.setValue(0.92)
    assert "between 4 and 16" in dialog.preview.text()
    dialog.checkpoint_combo.setCurrentIndex(0)
    dialog.accept()
    assert exported == [(exp_id, {"output_dir": str(manager.paths(exp_id).export_dir), "streaming": True,
                                  "fidelity": 0.92, "checkpoint": "best", "verify": True})]


def test_a_run_on_another_machine_is_exported_with_raves_own_choice(make_page, db, tmp_path, fake_dataset):
    from rave_gui.backend.datasets import DatasetManager
    from rave_gui.backend.training import TrainingManager
    from rave_gui.ui.dialogs.export_checkpoint import ExportCheckpointDialog
    manager = TrainingManager(db, runs_root=tmp_path / "runs", gpus=[])
    dataset_id = DatasetManager(db).register(fake_dataset)
    remote = manager.start_training({"name": "far", "dataset_id": dataset_id, "max_steps": 60})
    live = manager.start_training({"name": "busy", "dataset_id": dataset_id, "max_steps": 60})
    manager.set_status(remote, "completed")
    db.execute("UPDATE experiments SET config = json_set(config, '$.machine_id', 7) WHERE id = ?", (remote,))
    dialog = ExportCheckpointDialog(manager)
    assert [dialog.run_combo.itemData(i) for i in range(dialog.run_combo.count())] == [remote]  # not the live one
    assert dialog.remote and not dialog.checkpoint_combo.isEnabled() and dialog.verify.isHidden()
    assert "RAVE's choice" in dialog.checkpoint_combo.currentText()
    assert set(dialog.options()) == {"output_dir", "streaming", "fidelity"}   # what RemoteExportProcess takes
    assert live != remote
    dialog.deleteLater()
