"""The wizard's "Train on" choice: the machine's devices, ``machine_id`` in the
config, and the command the host runs on the confirmation page."""
from __future__ import annotations

import json

import pytest

from rave_gui.backend.datasets import DatasetManager
from rave_gui.backend.machines import THIS_COMPUTER, MachineManager
from rave_gui.backend.training import TrainingManager
from rave_gui.ui.dialogs.new_training import PAGE_CONFIRM, PAGE_PARAMETERS, NewTrainingWizard


@pytest.fixture
def setup(qtbot, db, fake_dataset):
    DatasetManager(db).register(fake_dataset, name="voice")
    machines = MachineManager(db)
    tested = machines.add("lab box", "me@lab:2222", python="~/venvs/rave/bin/python", work_dir="~/rave work")
    db.execute("UPDATE machines SET gpus = ?, cpus = 32 WHERE id = ?", (json.dumps(["NVIDIA H100", "NVIDIA H100"]),
                                                                         tested))
    untested = machines.add("new box", "newbox")
    wizard = NewTrainingWizard(db, gpus=[])
    qtbot.addWidget(wizard)
    wizard.show()
    wizard.dataset_page.table.selectRow(0)
    wizard.next()
    wizard.next()
    assert wizard.currentId() == PAGE_PARAMETERS
    wizard.parameters_page.name_edit.setText("far 'away'")
    return wizard, tested, untested


def devices(page):
    return [page.device_combo.itemData(i) for i in range(page.device_combo.count())]


def test_train_on_lists_this_computer_and_the_machines(setup):
    wizard, tested, untested = setup
    page = wizard.parameters_page
    assert [page.machine_combo.itemText(i) for i in range(3)] == [
        THIS_COMPUTER, "lab box (SSH: lab)", "new box (SSH: newbox)"]
    assert devices(page) == ["auto", "cpu"] and "No NVIDIA GPU found on this computer" in page.device_hint.text()
    assert "machine_id" not in wizard.get_config()
    page.set_machine(tested)
    assert devices(page) == ["auto", "cpu", "gpu:0", "gpu:1"] and "2 GPU(s) found on lab box" in page.device_hint.text()
    page.set_device("gpu:1")
    cfg = wizard.get_config()
    assert cfg["machine_id"] == tested and cfg["device"] == "gpu:1"
    assert TrainingManager(wizard.db, gpus=[]).validate_config(cfg)["machine_id"] == tested
    page.set_machine(untested)
    assert devices(page) == ["auto", "cpu"] and "not known yet" in page.device_hint.text()
    assert wizard.get_config()["device"] == "auto"  # gpu:1 is not there


def test_confirmation_shows_the_command_the_host_runs(setup):
    wizard, tested, _ = setup
    wizard.parameters_page.set_machine(tested)
    wizard.parameters_page.set_device("gpu:0")
    wizard.next()
    assert wizard.currentId() == PAGE_CONFIRM
    page = wizard.confirmation_page
    command = page.command_text()
    assert command.startswith("cd ~/'rave work/runs/<experiment folder>' && ~/venvs/rave/bin/rave train ")
    assert "--db_path ~/'rave work/datasets/voice-<fingerprint>'" in command and "--gpu 0" in command
    assert "--workers 8" in command and "--name 'far '\"'\"'away'\"'\"''" in command
    assert "ssh -p 2222 me@lab" in page.command_note.text()
    assert page.summary()["Train on"] == "lab box (SSH: lab)"
    assert not any("GPU" in w and "no" in w.lower() for w in page.warnings())  # the host has GPUs
    assert page.validatePage() and page.validated["machine_id"] == tested


def test_a_slurm_cluster_shows_its_batch_script(setup):
    wizard, _, _ = setup
    machines = MachineManager(wizard.db)
    cluster = machines.add("hpc", "me@login.hpc", python="~/rave/bin/python", work_dir="/scratch/me/rave gui",
                           slurm={"partition": "gpu", "account": "lab", "gpus": 2, "cpus": 16, "mem": "64G",
                                  "time": "2-00:00:00", "margin": 600, "modules": "cuda/12.1",
                                  "extra": "#SBATCH --qos=long"})
    wizard.parameters_page.machines = machines.list()
    wizard.parameters_page.machine_combo.addItem("hpc (Slurm: gpu via login.hpc)", cluster)
    page = wizard.parameters_page
    page.set_machine(cluster)
    assert devices(page) == ["auto", "cpu", "gpu:0", "gpu:1"] and "asks for 2 GPU(s)" in page.device_hint.text()
    assert "partition gpu" in page.machine_hint.text()
    wizard.next()
    confirm = wizard.confirmation_page
    script = confirm.command_text()
    assert script.startswith("# submitted with: cd '/scratch/me/rave gui/runs/<experiment folder>' && sbatch")
    for line in ("#SBATCH --partition=gpu", "#SBATCH --account=lab", "#SBATCH --gres=gpu:2", "#SBATCH --mem=64G",
                 "#SBATCH --time=2-00:00:00", "#SBATCH --signal=B:USR1@600", "#SBATCH --qos=long",
                 "module load cuda/12.1"):
        assert line in script.splitlines(), line
    assert "\"$HOME\"/rave/bin/python '/scratch/me/rave gui/rave-gui/rave_launcher-<version>.py' train" in script
    assert "--gpu 0" in script and "--name 'far '\"'\"'away'\"'\"''" in script
    assert "600 s before each job's time limit" in confirm.command_note.text()
    assert confirm.validatePage() and confirm.validated["machine_id"] == cluster


def test_the_machine_list_names_a_cluster(qtbot, db, fake_dataset):
    DatasetManager(db).register(fake_dataset, name="voice")
    MachineManager(db).add("hpc", "me@login.hpc", slurm={"partition": "a100"})
    wizard = NewTrainingWizard(db, gpus=[])
    qtbot.addWidget(wizard)
    combo = wizard.parameters_page.machine_combo
    assert combo.itemText(1) == "hpc (Slurm: a100 via login.hpc)"
