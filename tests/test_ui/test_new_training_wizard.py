"""NewTrainingWizard: four pages driven with next() and the widgets' setters."""
from __future__ import annotations

import shlex
from pathlib import Path

import pytest
from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import QApplication, QLabel, QWizard

from rave_gui.backend.datasets import DatasetManager
from rave_gui.backend.rave_cli import BROKEN_CONFIGS, RAVE_CONFIGS, RAVE_MODIFIERS, RaveNotFound
from rave_gui.backend.training import TrainingManager, validate_name
from rave_gui.core.signals import app_signals
from rave_gui.ui.dialogs.new_training import confirmation_page
from rave_gui.ui.dialogs.new_training import (
    PAGE_CONFIG, PAGE_CONFIRM, PAGE_DATASET, PAGE_PARAMETERS, ConfigSelectionPage, ConfirmationPage,
    DatasetSelectionPage, NewTrainingWizard, TrainingParametersPage, phase_1_duration,
)

NEXT = QWizard.WizardButton.NextButton
FAKE_RAVE = Path("/opt/rave-env/bin/rave")
_ALIVE: list = []  # qtbot.addWidget holds only a weak reference: keep each wizard for its test


@pytest.fixture(autouse=True)
def rave_found(monkeypatch):
    """Commands name a fixed `rave`, whatever this machine has installed."""
    monkeypatch.setattr(confirmation_page, "find_rave", lambda *a, **k: FAKE_RAVE)
    yield
    _ALIVE.clear()


def make_dataset(tmp_path: Path, name: str, seconds: float = 29.72154195011338, channels: int = 1) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    (folder / "metadata.yaml").write_text(f"channels: {channels}\nlazy: false\nn_seconds: {seconds}\nsr: 44100\n")
    (folder / "data.mdb").write_bytes(b"\0" * 16)
    return folder


def make_wizard(qtbot, db, gpus=("NVIDIA H200",)) -> NewTrainingWizard:
    wizard = NewTrainingWizard(db, gpus=list(gpus))
    qtbot.addWidget(wizard)
    _ALIVE.append(wizard)
    wizard.show()
    assert wizard.currentId() == PAGE_DATASET
    return wizard


def drive_to_confirmation(wizard, name="my run", *, base="v2", modifiers=(), overrides="",
                          max_steps=None, batch=None, device=None, val_every=None):
    wizard.dataset_page.table.selectRow(0)
    wizard.next()
    assert wizard.currentId() == PAGE_CONFIG
    wizard.config_page.set_base_config(base)
    wizard.config_page.set_modifiers(modifiers)
    wizard.config_page.set_overrides(overrides)
    wizard.next()
    assert wizard.currentId() == PAGE_PARAMETERS
    params = wizard.parameters_page
    params.name_edit.setText(name)
    if max_steps is not None:
        params.max_steps.setValue(max_steps)
    if batch is not None:
        params.batch_size.setValue(batch)
    if device is not None:
        params.set_device(device)
    if val_every is not None:
        params.val_every.setValue(val_every)
    wizard.next()
    assert wizard.currentId() == PAGE_CONFIRM
    return wizard.confirmation_page


# -- structure -------------------------------------------------------------------
def test_pages_exist_in_order_with_titles(qtbot, db):
    wizard = make_wizard(qtbot, db)
    assert wizard.pageIds() == [PAGE_DATASET, PAGE_CONFIG, PAGE_PARAMETERS, PAGE_CONFIRM] == [0, 1, 2, 3]
    kinds = [DatasetSelectionPage, ConfigSelectionPage, TrainingParametersPage, ConfirmationPage]
    for page_id, kind in zip(wizard.pageIds(), kinds):
        assert isinstance(wizard.page(page_id), kind)
    assert [wizard.page(i).title() for i in wizard.pageIds()] == [
        "Choose a dataset", "Choose the model", "Training parameters", "Review and start"]
    assert wizard.windowTitle() == "New Training"


# -- page 1: dataset -----------------------------------------------------------------
def test_empty_state_blocks_next(qtbot, db):
    wizard = make_wizard(qtbot, db)
    page = wizard.dataset_page
    assert not page.empty_label.isHidden()
    assert "No datasets yet: create one on the Datasets page" in page.empty_label.text()
    assert page.table.isHidden()
    assert not page.isComplete()
    assert not wizard.button(NEXT).isEnabled()
    wizard.next()
    assert wizard.currentId() == PAGE_DATASET
    assert "No datasets yet" in page.error_label.text()


def test_dataset_page_lists_info_and_selects_the_only_dataset(qtbot, db, fake_dataset):
    ds_id = DatasetManager(db).register(fake_dataset, name="voice")
    wizard = make_wizard(qtbot, db)
    page = wizard.dataset_page
    assert page.empty_label.isHidden() and not page.table.isHidden()
    assert page.table.rowCount() == 1
    row = [page.table.item(0, c).text() for c in range(page.table.columnCount())]
    assert row == ["voice", "1,310,720", "1 (mono)", "44,100 Hz", "29.7 s"]

    assert page.selected_dataset_id() == ds_id      # the only dataset: nothing to choose
    assert page.isComplete() and wizard.button(NEXT).isEnabled()
    wizard.next()
    assert wizard.currentId() == PAGE_CONFIG


def test_dataset_page_is_incomplete_until_one_of_several_is_selected(qtbot, db, fake_dataset, tmp_path):
    ds_id = DatasetManager(db).register(fake_dataset, name="voice")
    DatasetManager(db).register(make_dataset(tmp_path, "drums"), name="drums")
    wizard = make_wizard(qtbot, db)
    page = wizard.dataset_page
    assert page.table.rowCount() == 2
    assert page.selected_dataset() is None
    assert not page.isComplete()
    assert not wizard.button(NEXT).isEnabled()
    wizard.next()
    assert wizard.currentId() == PAGE_DATASET
    assert page.error_label.text() == "Select the dataset to train on."

    assert page.select_dataset(ds_id)
    assert page.isComplete()
    assert page.error_label.isHidden()
    assert wizard.button(NEXT).isEnabled()
    assert wizard.selected_dataset()["id"] == ds_id
    wizard.next()
    assert wizard.currentId() == PAGE_CONFIG


def test_dataset_list_refreshes_on_dataset_added(qtbot, db, tmp_path):
    wizard = make_wizard(qtbot, db)
    page = wizard.dataset_page
    assert page.table.rowCount() == 0

    manager = DatasetManager(db)
    first = manager.register(make_dataset(tmp_path, "first"))
    assert page.table.rowCount() == 0          # only the signal refreshes the page
    app_signals().dataset_added.emit(first)
    assert page.table.rowCount() == 1
    assert page.empty_label.isHidden() and not page.table.isHidden()
    page.select_dataset(first)

    second = manager.register(make_dataset(tmp_path, "second", seconds=60.0, channels=2))
    app_signals().dataset_added.emit(second)
    assert page.table.rowCount() == 2
    names = {page.table.item(r, 0).text() for r in range(2)}
    assert names == {"first", "second"}
    assert page.selected_dataset_id() == first   # the selection survives the refresh
    assert page.isComplete()


def test_closed_wizard_stops_listening(qtbot, db, tmp_path):
    wizard = make_wizard(qtbot, db)
    wizard.reject()
    assert not wizard.isVisible()
    ds_id = DatasetManager(db).register(make_dataset(tmp_path, "later"))
    app_signals().dataset_added.emit(ds_id)
    assert wizard.dataset_page.table.rowCount() == 0
    wizard.show()                               # shown again: up to date and listening
    assert wizard.dataset_page.table.rowCount() == 1
    other = DatasetManager(db).register(make_dataset(tmp_path, "other"))
    app_signals().dataset_added.emit(other)
    assert wizard.dataset_page.table.rowCount() == 2


# -- page 2: config ----------------------------------------------------------------------
def test_config_combo_lists_base_configs_first_then_the_rest(qtbot, db):
    page = make_wizard(qtbot, db).config_page
    combo = page.config_combo
    texts = [combo.itemText(i) for i in range(combo.count())]
    assert texts[:4] == ["v1", "v2", "v3", "discrete"]
    assert texts[4] == ""  # separator
    assert combo.itemData(4, Qt.ItemDataRole.AccessibleDescriptionRole) == "separator"
    assert texts[5:] == [c for c in RAVE_CONFIGS if c not in ("v1", "v2", "v3", "discrete")
                         and c not in BROKEN_CONFIGS]
    assert page.base_config() == "v2"


def test_broken_configs_are_not_offered(qtbot, db):
    page = make_wizard(qtbot, db).config_page
    combo = page.config_combo
    offered = {combo.itemData(i) for i in range(combo.count())}
    assert BROKEN_CONFIGS and not offered & set(BROKEN_CONFIGS)
    for name, sentence in BROKEN_CONFIGS.items():
        with pytest.raises(ValueError) as exc:
            page.set_base_config(name)
        assert str(exc.value) == sentence
    assert page.base_config() == "v2"


def test_config_page_returns_modifiers_and_overrides(qtbot, db, fake_dataset):
    DatasetManager(db).register(fake_dataset)
    wizard = make_wizard(qtbot, db)
    wizard.dataset_page.table.selectRow(0)
    wizard.next()
    page = wizard.config_page
    assert set(page.modifier_boxes) == set(RAVE_MODIFIERS)
    assert page.more_widget.isHidden()
    page.more_button.click()
    assert not page.more_widget.isHidden()

    page.set_base_config("discrete")
    page.modifier_boxes["causal"].setChecked(True)
    page.modifier_boxes["noise"].setChecked(True)
    page.modifier_boxes["spectral_discriminator"].setChecked(True)
    assert page.modifiers() == ["causal", "noise", "spectral_discriminator"]
    page.overrides_edit.setPlainText("PHASE_1_DURATION=200000\n\n# a comment\n  rave.RAVE.n_channels = 1  \n")
    assert page.overrides() == ["PHASE_1_DURATION=200000", "rave.RAVE.n_channels = 1"]
    assert page.isComplete() and page.overrides_error.isHidden()

    page.overrides_edit.appendPlainText("not a binding")
    assert not page.isComplete()
    assert not wizard.button(NEXT).isEnabled()
    assert "'not a binding' is not a gin binding" in page.overrides_error.text()
    wizard.next()
    assert wizard.currentId() == PAGE_CONFIG

    page.set_overrides(["PHASE_1_DURATION=300000"])
    assert page.isComplete()
    wizard.next()
    assert wizard.currentId() == PAGE_PARAMETERS
    cfg = wizard.get_config()
    assert cfg["base_config"] == "discrete"
    assert cfg["modifiers"] == ["causal", "noise", "spectral_discriminator"]
    assert cfg["overrides"] == ["PHASE_1_DURATION=300000"]


def test_phase_1_follows_configs_modifiers_and_overrides():
    assert phase_1_duration("v2") == 1_000_000
    assert phase_1_duration("discrete") == 200_000
    assert phase_1_duration("v2_nopqmf_small") == 500_000             # bound directly in its gin file
    assert phase_1_duration("v2", ["wasserstein"]) == 200_000
    assert phase_1_duration("v2", ["spherical"], ["PHASE_1_DURATION=50000"]) == 200_000
    assert phase_1_duration("v2", [], ["PHASE_1_DURATION = 300_000"]) == 300_000
    assert phase_1_duration("v2", [], ["rave.RAVE.phase_1_duration=42"]) == 42
    assert phase_1_duration("v2_nopqmf", [], ["PHASE_1_DURATION=10"]) == 1_000_000


# -- page 3: parameters ----------------------------------------------------------------------
def to_parameters(qtbot, db, fake_dataset, gpus=("NVIDIA H200",)):
    DatasetManager(db).register(fake_dataset)
    wizard = make_wizard(qtbot, db, gpus)
    wizard.dataset_page.table.selectRow(0)
    wizard.next()
    wizard.next()
    assert wizard.currentId() == PAGE_PARAMETERS
    return wizard


@pytest.mark.parametrize("name", ["", "   ", "../x", "-x", "a" * 200])
def test_bad_run_name_blocks_next_with_the_sentence(qtbot, db, fake_dataset, name):
    wizard = to_parameters(qtbot, db, fake_dataset)
    page = wizard.parameters_page
    page.name_edit.setText("fine")
    assert page.isComplete() and page.name_error.isHidden()
    page.name_edit.setText(name)
    with pytest.raises(ValueError) as exc:
        validate_name(name)
    assert page.name_error.text() == str(exc.value)
    assert not page.name_error.isHidden()
    assert not page.isComplete()
    assert not wizard.button(NEXT).isEnabled()
    wizard.next()
    assert wizard.currentId() == PAGE_PARAMETERS


def test_name_with_spaces_quotes_and_unicode_is_accepted(qtbot, db, fake_dataset):
    wizard = to_parameters(qtbot, db, fake_dataset)
    page = wizard.parameters_page
    page.name_edit.setText("my run 'ö'")
    assert page.name_error.isHidden()
    assert page.isComplete() and wizard.button(NEXT).isEnabled()
    wizard.next()
    assert wizard.currentId() == PAGE_CONFIRM
    assert wizard.get_config()["name"] == "my run 'ö'"


def test_parameter_defaults_and_fixed_learning_rate(qtbot, db, fake_dataset):
    page = to_parameters(qtbot, db, fake_dataset).parameters_page
    assert page.max_steps.value() == 500_000
    assert (page.max_steps.minimum(), page.max_steps.maximum()) == (1, 100_000_000)
    assert page.batch_size.value() == 8
    assert page.val_every.value() == 10_000
    # RAVE's generator starts at 1e-3 (RAVE.configure_optimizers): the field must not say 1e-4 alone
    assert page.learning_rate.text().startswith("1e-3") and "set by RAVE" in page.learning_rate.text()
    assert not page.learning_rate.isEnabled() and page.learning_rate.isReadOnly()
    explanation = page.lr_explanation.text()
    assert "1e-3" in explanation and "1e-4" in explanation and "hard-codes" in explanation


def test_device_combo_lists_injected_gpus(qtbot, db, fake_dataset):
    wizard = to_parameters(qtbot, db, fake_dataset, gpus=["NVIDIA H200", "RTX 4090"])
    combo = wizard.parameters_page.device_combo
    assert [combo.itemText(i) for i in range(combo.count())] == [
        "Auto", "CPU", "GPU 0: NVIDIA H200", "GPU 1: RTX 4090"]
    assert [combo.itemData(i) for i in range(combo.count())] == ["auto", "cpu", "gpu:0", "gpu:1"]
    wizard.parameters_page.set_device("gpu:1")
    assert wizard.get_config()["device"] == "gpu:1"


def test_device_combo_without_gpus(qtbot, db, fake_dataset):
    page = to_parameters(qtbot, db, fake_dataset, gpus=[]).parameters_page
    assert [page.device_combo.itemText(i) for i in range(page.device_combo.count())] == ["Auto", "CPU"]
    assert "No NVIDIA GPU found" in page.device_hint.text()


# -- page 4: confirmation -------------------------------------------------------------------
def test_confirmation_shows_the_exact_command_and_copies_it(qtbot, db, fake_dataset):
    DatasetManager(db).register(fake_dataset)
    wizard = make_wizard(qtbot, db, gpus=["NVIDIA H200", "RTX 4090"])
    page = drive_to_confirmation(wizard, name="my run 'ö'", modifiers=["causal"],
                                 overrides="PHASE_1_DURATION=200000", device="gpu:1")
    command = page.command_text()
    assert page.command_edit.isReadOnly()
    assert command.startswith("rave train ")
    assert "--channels 1" in command
    assert "--db_path" in command
    argv = shlex.split(command)
    assert argv[argv.index("--name") + 1] == "my run 'ö'"
    assert argv[argv.index("--db_path") + 1] == str(fake_dataset.resolve())
    assert argv[argv.index("--out_path") + 1] == "<experiment folder>"
    assert argv[argv.index("--gpu") + 1] == "1"
    assert argv[argv.index("--override") + 1] == "PHASE_1_DURATION=200000"
    assert [argv[i + 1] for i, a in enumerate(argv) if a == "--config"] == ["v2", "causal"]

    QApplication.clipboard().setText("something else")
    page.copy_button.click()
    assert QApplication.clipboard().text() == command

    summary = page.summary()
    assert summary["Run name"] == "my run 'ö'"
    assert summary["Modifiers"] == "causal"
    assert summary["Device"] == "GPU 1: RTX 4090"


def test_plain_name_appears_verbatim_in_command(qtbot, db, fake_dataset):
    DatasetManager(db).register(fake_dataset)
    page = drive_to_confirmation(make_wizard(qtbot, db), name="drums_v2")
    assert "--name drums_v2" in page.command_text()
    assert "--max_steps 500000 --batch 8 --val_every 10000" in page.command_text()


def test_command_falls_back_to_plain_rave_when_not_installed(qtbot, db, fake_dataset, monkeypatch):
    def missing(*_a, **_k):
        raise RaveNotFound("The `rave` command was not found.")
    monkeypatch.setattr(confirmation_page, "find_rave", missing)
    DatasetManager(db).register(fake_dataset)
    page = drive_to_confirmation(make_wizard(qtbot, db), name="x")
    assert page.command_text().startswith("rave train --config v2 ")
    assert "The `rave` command was not found." in page.warnings()


def warning_labels(page) -> list[str]:
    return [label.text().removeprefix("⚠ ") for label in page.findChildren(QLabel, "warning")
            if not label.isHidden()]


def test_no_warnings_for_a_sound_setup(qtbot, db, fake_dataset):
    DatasetManager(db).register(fake_dataset)
    page = drive_to_confirmation(make_wizard(qtbot, db, gpus=["NVIDIA H200"]), name="ok",
                                 max_steps=2_000_000)
    assert page.warnings() == []
    assert warning_labels(page) == []


def test_warning_when_max_steps_end_before_phase_2(qtbot, db, fake_dataset):
    DatasetManager(db).register(fake_dataset)
    wizard = make_wizard(qtbot, db)
    page = drive_to_confirmation(wizard, name="short", max_steps=500_000)
    phase = [w for w in page.warnings() if "phase 2" in w]
    assert len(phase) == 1 and "1,000,000" in phase[0] and "PHASE_1_DURATION" in phase[0]
    assert warning_labels(page) == page.warnings()

    wizard.back()
    wizard.back()
    wizard.config_page.set_modifiers(["spherical"])     # binds phase_1_duration itself: 200 000
    wizard.next()
    wizard.parameters_page.max_steps.setValue(150_000)
    wizard.next()
    phase = [w for w in page.warnings() if "phase 2" in w]
    assert len(phase) == 1 and "200,000" in phase[0] and "RAVE.phase_1_duration=75000" in phase[0] and "rave.RAVE." not in phase[0]

    wizard.back()
    wizard.back()
    wizard.config_page.set_modifiers([])
    wizard.config_page.set_overrides("PHASE_1_DURATION=100000")
    wizard.next()
    wizard.next()
    assert wizard.currentId() == PAGE_CONFIRM
    assert not [w for w in page.warnings() if "phase 2" in w]
    assert warning_labels(page) == page.warnings()


def test_warning_when_no_gpu(qtbot, db, fake_dataset):
    DatasetManager(db).register(fake_dataset)
    page = drive_to_confirmation(make_wizard(qtbot, db, gpus=[]), name="cpu", max_steps=2_000_000)
    assert len(page.warnings()) == 1
    assert page.warnings()[0].startswith("No GPU found: training runs on the CPU, which is very slow")
    assert len(warning_labels(page)) == 1


def test_warning_when_dataset_shorter_than_a_batch(qtbot, db, fake_dataset):
    DatasetManager(db).register(fake_dataset)  # 1,310,720 samples: 10 examples of 131,072, 9 for training
    wizard = make_wizard(qtbot, db)
    page = drive_to_confirmation(wizard, name="tiny", max_steps=2_000_000, batch=16)
    short = [w for w in page.warnings() if "shorter than one batch" in w]
    assert len(short) == 1 and "lower the batch size to 9" in short[0]

    wizard.back()
    wizard.parameters_page.batch_size.setValue(8)
    wizard.next()
    assert not [w for w in page.warnings() if "shorter than one batch" in w]


def test_warning_when_validation_never_happens(qtbot, db, fake_dataset):
    DatasetManager(db).register(fake_dataset)
    page = drive_to_confirmation(make_wizard(qtbot, db), name="v", max_steps=5_000,
                                 overrides="PHASE_1_DURATION=1000")
    assert len(page.warnings()) == 1 and "saves checkpoints only at validation" in page.warnings()[0]


# -- result -------------------------------------------------------------------------------
def test_get_config_is_what_start_training_takes(qtbot, db, fake_dataset):
    ds_id = DatasetManager(db).register(fake_dataset)
    wizard = make_wizard(qtbot, db, gpus=["NVIDIA H200"])
    drive_to_confirmation(wizard, name="  my run 'ö'  ", base="v3", modifiers=["causal", "snake"],
                          overrides="PHASE_1_DURATION=200000\n", max_steps=300_000, batch=4,
                          device="gpu:0", val_every=5_000)
    expected = {"name": "my run 'ö'", "dataset_id": ds_id, "base_config": "v3",
                "modifiers": ["causal", "snake"], "overrides": ["PHASE_1_DURATION=200000"],
                "max_steps": 300_000, "batch_size": 4, "learning_rate": 1e-4, "device": "gpu:0",
                "val_every": 5_000, "stop_on_nan": True}
    assert wizard.get_config() == expected
    manager = TrainingManager(db, gpus=["NVIDIA H200"])    # the GPU the wizard was given
    validated = manager.validate_config(wizard.get_config())
    assert {k: validated[k] for k in expected} == expected

    wizard.accept()
    assert wizard.result() == QWizard.DialogCode.Accepted
    assert wizard.validated_config()["name"] == "my run 'ö'"
    assert wizard.start_mode == "now"
    exp_id = manager.start_training(wizard.get_config())
    assert manager.get_experiment(exp_id)["config"]["base_config"] == "v3"


def test_finish_is_refused_with_the_backend_sentence(qtbot, db, fake_dataset):
    ds_id = DatasetManager(db).register(fake_dataset)
    wizard = make_wizard(qtbot, db)
    page = drive_to_confirmation(wizard, name="gone")
    assert page.error_label.isHidden()
    DatasetManager(db).remove_dataset(ds_id)   # removed elsewhere while the wizard is open
    wizard.accept()
    assert wizard.isVisible() and wizard.result() != QWizard.DialogCode.Accepted
    assert wizard.currentId() == PAGE_CONFIRM
    assert page.error_label.text() == f"Dataset {ds_id} does not exist; pick one from the Datasets page."
    assert not page.error_label.isHidden()


# -- RAVE's real learning rates --------------------------------------------------------------
def test_confirmation_says_what_rave_really_uses_for_the_learning_rate(qtbot, db, fake_dataset):
    DatasetManager(db).register(fake_dataset)
    page = drive_to_confirmation(make_wizard(qtbot, db), name="lr")
    text = page.summary()["Learning rate"]
    assert "fixed by RAVE" not in text and not text.startswith("1e-4")
    assert "set by RAVE" in text and "Adam" in text and "1e-3 for the generator" in text
    shown = [label.text() for label in page.findChildren(QLabel)]
    assert text in shown


# -- overrides a paste can break -------------------------------------------------------------
@pytest.mark.parametrize("bad", ["PHASE_1_DURATION=200000\x00", "RAVE.latent_size=\x1b[0m8",
                                 "PHASE_1_DURATION=\x7f1", "A=1\x0bB=2"])
def test_override_with_a_control_character_is_refused(qtbot, db, fake_dataset, bad):
    DatasetManager(db).register(fake_dataset)
    wizard = make_wizard(qtbot, db)
    wizard.next()
    page = wizard.config_page
    page.set_overrides("PHASE_1_DURATION=100000\n" + bad)
    assert not page.isComplete()
    assert not wizard.button(NEXT).isEnabled()
    assert "Line 2:" in page.overrides_error.text()
    assert "control character" in page.overrides_error.text() or "line break" in page.overrides_error.text()
    assert page.overrides() == ["PHASE_1_DURATION=100000"]
    wizard.next()
    assert wizard.currentId() == PAGE_CONFIG
    assert all("\x00" not in o for o in wizard.get_config()["overrides"])


# -- Start now / Add to queue ----------------------------------------------------------------
FINISH = QWizard.WizardButton.FinishButton
QUEUE = QWizard.WizardButton.CustomButton1


def test_add_to_queue_shows_only_on_the_last_page(qtbot, db, fake_dataset):
    DatasetManager(db).register(fake_dataset)
    wizard = make_wizard(qtbot, db)
    assert wizard.buttonText(FINISH) == "Start now"
    assert wizard.buttonText(QUEUE) == "Add to queue"
    for expected in (PAGE_DATASET, PAGE_CONFIG, PAGE_PARAMETERS):
        assert wizard.currentId() == expected
        assert not wizard.button(QUEUE).isVisible()
        if expected == PAGE_PARAMETERS:
            wizard.parameters_page.name_edit.setText("q")
        wizard.next()
    assert wizard.currentId() == PAGE_CONFIRM
    assert wizard.button(QUEUE).isVisible() and wizard.button(QUEUE).isEnabled()
    assert wizard.button(FINISH).isVisible()
    wizard.back()
    assert not wizard.button(QUEUE).isVisible()


def finish_with(qtbot, wizard, button) -> list[str]:
    """Click ``button`` for real; return the start modes seen by ``accepted`` listeners."""
    seen: list[str] = []
    wizard.accepted.connect(lambda: seen.append(wizard.start_mode))
    qtbot.mouseClick(wizard.button(button), Qt.MouseButton.LeftButton)
    return seen


def test_start_now_button_accepts_with_start_mode_now(qtbot, db, fake_dataset):
    DatasetManager(db).register(fake_dataset)
    wizard = make_wizard(qtbot, db)
    drive_to_confirmation(wizard, name="now")
    with qtbot.waitSignal(wizard.accepted, timeout=2000):
        seen = finish_with(qtbot, wizard, FINISH)
    assert seen == ["now"]
    assert wizard.result() == QWizard.DialogCode.Accepted and not wizard.isVisible()
    assert wizard.start_mode == "now"
    assert wizard.validated_config()["name"] == "now"


def test_add_to_queue_button_accepts_with_start_mode_queue(qtbot, db, fake_dataset):
    DatasetManager(db).register(fake_dataset)
    wizard = make_wizard(qtbot, db)
    drive_to_confirmation(wizard, name="later")
    with qtbot.waitSignal(wizard.accepted, timeout=2000):
        seen = finish_with(qtbot, wizard, QUEUE)
    assert seen == ["queue"]
    assert wizard.result() == QWizard.DialogCode.Accepted and not wizard.isVisible()
    assert wizard.start_mode == "queue"
    assert wizard.validated_config()["name"] == "later"
    assert TrainingManager(db, gpus=wizard.gpus).validate_config(wizard.get_config())["name"] == "later"


def test_add_to_queue_is_refused_like_start_now(qtbot, db, fake_dataset):
    ds_id = DatasetManager(db).register(fake_dataset)
    wizard = make_wizard(qtbot, db)
    page = drive_to_confirmation(wizard, name="gone")
    DatasetManager(db).remove_dataset(ds_id)
    seen = finish_with(qtbot, wizard, QUEUE)
    assert seen == [] and wizard.isVisible() and wizard.currentId() == PAGE_CONFIRM
    assert wizard.start_mode == "now"            # nothing was chosen
    assert wizard.validated_config() is None
    assert page.error_label.text() == f"Dataset {ds_id} does not exist; pick one from the Datasets page."
    assert not page.error_label.isHidden()


def test_start_now_after_a_refused_queue_starts_now(qtbot, db, fake_dataset, tmp_path):
    DatasetManager(db).register(fake_dataset, name="voice")
    DatasetManager(db).register(make_dataset(tmp_path, "drums", seconds=60.0), name="drums")
    wizard = make_wizard(qtbot, db)
    drive_to_confirmation(wizard, name="x", max_steps=2_000_000)
    first = wizard.dataset_page.selected_dataset_id()
    DatasetManager(db).remove_dataset(first)
    assert finish_with(qtbot, wizard, QUEUE) == [] and wizard.isVisible()

    for _ in range(3):
        wizard.back()
    assert wizard.currentId() == PAGE_DATASET
    wizard.dataset_page.refresh()
    assert wizard.dataset_page.selected_dataset() is not None   # the one left is selected
    for _ in range(3):
        wizard.next()
    assert wizard.currentId() == PAGE_CONFIRM
    assert finish_with(qtbot, wizard, FINISH) == ["now"]
    assert wizard.start_mode == "now" and wizard.validated_config()["dataset_id"] != first
