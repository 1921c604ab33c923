"""The wizard's parameters page: "stop on NaN", and the warning when this computer's
chosen GPU has less memory than RAVE's README asks for the chosen config (GPU
names as nvidia-smi gives them, their memory from a stand-in NVIDIA library)."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
from PyQt6.QtWidgets import QDialog

from test_backend.test_system_monitor import BrokenNVML, FakeNVML

from rave_gui.backend.datasets import DatasetManager
from rave_gui.backend.machines import MachineManager
from rave_gui.backend.system_monitor import NVML, gpu_memory_totals
from rave_gui.backend.training import TrainingManager
from rave_gui.ui.dialogs.new_training import (
    PAGE_CONFIG, PAGE_CONFIRM, PAGE_PARAMETERS, NewTrainingWizard, confirmation_page, parameters_page,
)

GIB = 2**30
_ALIVE: list = []


class BoardsNVML(FakeNVML):
    """NVIDIA's library for boards of the given total memory (bytes)."""

    def __init__(self, totals):
        self.totals = list(totals)

    def nvmlDeviceGetCount(self):
        return len(self.totals)

    def nvmlDeviceGetMemoryInfo(self, handle):
        return SimpleNamespace(used=0, total=self.totals[handle])


@pytest.fixture(autouse=True)
def rave_found(monkeypatch):
    monkeypatch.setattr(confirmation_page, "find_rave", lambda *a, **k: "/opt/rave-env/bin/rave")
    yield
    _ALIVE.clear()


@pytest.fixture
def nvml_reads(monkeypatch):
    """Stand in for this computer's NVIDIA library: boards of the given memory (None: no NVIDIA driver).
    Returns the list of reads made, to check the library is read once."""
    reads = []

    def install(totals):
        library = BrokenNVML() if totals is None else BoardsNVML(totals)
        monkeypatch.setattr(parameters_page, "gpu_memory_totals",
                            lambda: reads.append(1) or gpu_memory_totals(NVML(library)))
    install.reads = reads
    return install


def to_parameters(qtbot, db, fake_dataset, gpus, base="v2"):
    DatasetManager(db).register(fake_dataset)
    wizard = NewTrainingWizard(db, gpus=list(gpus))
    qtbot.addWidget(wizard)
    _ALIVE.append(wizard)
    wizard.show()
    wizard.dataset_page.table.selectRow(0)
    wizard.next()
    assert wizard.currentId() == PAGE_CONFIG
    wizard.config_page.set_base_config(base)
    wizard.next()
    assert wizard.currentId() == PAGE_PARAMETERS
    wizard.parameters_page.name_edit.setText("my run")
    return wizard


def shown_warning(wizard) -> str | None:
    """The memory warning's text, None while its row is hidden."""
    page = wizard.parameters_page
    return page.memory_warning.text() if page.memory_warning.isVisible() else None


def test_a_gpu_below_the_configs_minimum_is_warned_about_not_refused(qtbot, db, fake_dataset, nvml_reads):
    nvml_reads([12 * GIB, 80 * GIB])
    wizard = to_parameters(qtbot, db, fake_dataset, ["NVIDIA GeForce RTX 3060", "NVIDIA A100"])
    page = wizard.parameters_page
    assert page.device() == "auto"
    text = shown_warning(wizard)
    assert text == ("⚠ GPU 0 (NVIDIA GeForce RTX 3060) has 12.0 GB of memory, less than the 16 GB RAVE asks "
                    "for v2: choose a smaller config (v2_small needs 8 GB), or expect the run to stop with a "
                    "CUDA out-of-memory error, at once or when phase 2 starts (it needs more memory). A smaller "
                    "batch size helps a little.")
    page.set_device("gpu:1")                   # 80 GB: enough
    assert shown_warning(wizard) is None
    page.set_device("cpu")
    assert shown_warning(wizard) is None
    page.set_device("gpu:0")
    assert shown_warning(wizard) == text
    assert len(nvml_reads.reads) == 1          # the library is read once per wizard
    wizard.next()                              # a warning, not a refusal
    assert wizard.currentId() == PAGE_CONFIRM
    assert wizard.get_config()["device"] == "gpu:0"


def test_the_warning_follows_the_config_chosen_on_the_config_page(qtbot, db, fake_dataset, nvml_reads):
    nvml_reads([12 * GIB])
    wizard = to_parameters(qtbot, db, fake_dataset, ["RTX 3060"], base="v2_small")
    assert shown_warning(wizard) is None       # v2_small asks for 8 GB
    wizard.back()
    wizard.config_page.set_base_config("v3")
    wizard.next()
    assert "less than the 32 GB RAVE asks for v3: choose a smaller config (v2_small needs 8 GB)" in \
        shown_warning(wizard)
    wizard.back()
    wizard.config_page.set_base_config("discrete_v3")  # not in RAVE's table: nothing is said
    wizard.next()
    assert shown_warning(wizard) is None


def test_no_warning_without_an_nvidia_library_or_for_another_machine(qtbot, db, fake_dataset, nvml_reads):
    nvml_reads(None)                           # nvidia-smi listed a GPU, NVML does not answer: no guess
    wizard = to_parameters(qtbot, db, fake_dataset, ["RTX 3060"])
    assert shown_warning(wizard) is None

    nvml_reads([4 * GIB])
    machine = MachineManager(db).add("lab box", "me@lab")
    db.execute("UPDATE machines SET gpus = '[\"NVIDIA T600\"]' WHERE id = ?", (machine,))
    _ALIVE.clear()
    wizard = NewTrainingWizard(db, gpus=["RTX 3060"])
    qtbot.addWidget(wizard)
    _ALIVE.append(wizard)
    wizard.show()
    wizard.next()
    wizard.next()
    page = wizard.parameters_page
    assert "GPU 0 (RTX 3060) has 4.0 GB" in shown_warning(wizard)
    page.set_machine(machine)                  # its GPUs' memory is not known here
    page.set_device("gpu:0")
    assert shown_warning(wizard) is None


def test_without_any_gpu_the_library_is_not_even_read(qtbot, db, fake_dataset, nvml_reads):
    nvml_reads([4 * GIB])
    wizard = to_parameters(qtbot, db, fake_dataset, [])
    assert shown_warning(wizard) is None and nvml_reads.reads == []


def test_unticking_stop_on_nan_yields_a_config_that_does_not_stop(qtbot, db, fake_dataset, nvml_reads, tmp_path):
    nvml_reads(None)
    wizard = to_parameters(qtbot, db, fake_dataset, [])
    page = wizard.parameters_page
    assert page.stop_on_nan.isChecked() and page.extra_config() == {"stop_on_nan": True}
    page.stop_on_nan.setChecked(False)
    assert page.extra_config() == {"stop_on_nan": False}
    wizard.next()
    wizard.accept()
    assert wizard.result() == QDialog.DialogCode.Accepted.value
    manager = TrainingManager(db, runs_root=tmp_path / "runs", gpus=[])
    exp_id = manager.start_training(wizard.get_config())
    assert manager.get_experiment(exp_id)["config"]["stop_on_nan"] is False
