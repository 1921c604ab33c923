"""The Machines page: the list, add / edit / remove, and "Test connection" off the
UI thread against the real loopback sshd, with the host-key prompt."""
from __future__ import annotations

import sys

import pytest
from PyQt6.QtWidgets import QMessageBox
from sshd_fixture import remove_control_dir

from rave_gui.backend.datasets import DatasetManager
from rave_gui.backend.machines import THIS_COMPUTER, MachineManager
from rave_gui.backend.training import TrainingManager
from rave_gui.ui.pages.machines import MachinesPage


@pytest.fixture
def page(qtbot, db):
    widget = MachinesPage(db)
    widget._local_gpus = []
    widget.refresh()
    qtbot.addWidget(widget)
    yield widget
    widget.shutdown()
    for machine in widget.machines.list():
        widget.machines.target(machine).close_master()
    remove_control_dir(widget.machines.data_dir)


def names(page):
    return [page.table.item(r, 0).text() for r in range(page.table.rowCount())]


def test_lists_this_computer_first_and_the_hosts(page, db):
    assert names(page) == [THIS_COMPUTER]
    MachineManager(db).add("box", "me@box:2222", python="~/venv/bin/python")
    page.refresh()
    assert names(page) == [THIS_COMPUTER, "box"]
    assert page.table.item(1, 1).text() == "me@box:2222" and page.table.item(1, 4).text() == "not tested yet"
    page.table.selectRow(0)
    assert not page.edit_button.isEnabled() and not page.test_button.isEnabled()  # this computer: nothing to edit
    page.table.selectRow(1)
    assert page.edit_button.isEnabled() and page.test_button.isEnabled()


def test_add_dialog_refuses_then_saves(page, qtbot):
    dialog = page.open_add_dialog()
    dialog.name_edit.setText("lab")
    dialog.host_edit.setText("-oProxyCommand=evil")
    assert not dialog.save() and "cannot start with a dash" in dialog.error.text()
    assert names(page) == [THIS_COMPUTER]
    dialog.host_edit.setText("me@gpu.lab:2200")
    dialog.python_edit.setText("~/rave/bin/python")
    assert dialog.save()
    assert names(page) == [THIS_COMPUTER, "lab"] and page.selected_machine_id() is not None
    edit = page.open_edit_dialog()
    assert edit.host_edit.text() == "me@gpu.lab:2200"
    edit.work_edit.setText("/scratch/rave")
    assert edit.save()
    assert page.machines.get(page.selected_machine_id())["work_dir"] == "/scratch/rave"


def test_remove_asks_and_is_refused_while_a_run_uses_it(page, db, fake_dataset, qtbot):
    machine_id = MachineManager(db).add("box", "box")
    page.refresh()
    page.select_machine(machine_id)
    ds = DatasetManager(db).register(fake_dataset)
    TrainingManager(db, gpus=[]).enqueue_training(dict(name="r", dataset_id=ds, device="cpu", machine_id=machine_id))
    assert page.ask_remove_selected() is None and "queued" in page.last_error
    db.execute("UPDATE experiments SET status = 'failed'")
    box = page.ask_remove_selected()
    box.button(QMessageBox.StandardButton.Yes).click()
    assert names(page) == [THIS_COMPUTER]


@pytest.mark.ssh
def test_test_connection_off_the_ui_thread_with_the_host_key_prompt(page, db, loopback_sshd, qtbot):
    loopback_sshd.known_hosts.write_text("")
    machine_id = MachineManager(db).add("loopback", loopback_sshd.alias, python=sys.executable,
                                        work_dir=str(loopback_sshd.work_dir), ssh_config=str(loopback_sshd.client_config))
    page.refresh()
    page.select_machine(machine_id)
    test = page.test_selected()
    assert test is not None and not page.test_button.isEnabled()   # one test at a time
    qtbot.waitUntil(lambda: page.key_box is not None and page.key_box.isVisible(), timeout=30_000)
    assert loopback_sshd.host_fingerprint() in page.key_box.text()
    assert str(loopback_sshd.known_hosts) in page.key_box.text()
    page.key_box.button(QMessageBox.StandardButton.Cancel).click()
    assert "not accepted" in page.status_label.text() and loopback_sshd.known_hosts.read_text() == ""
    qtbot.waitUntil(lambda: not test.isRunning(), timeout=10_000)

    page.key_box = None
    page.test_selected()
    qtbot.waitUntil(lambda: page.key_box is not None and page.key_box.isVisible(), timeout=30_000)
    page.accept_key_button.click()                                    # accepted: the test runs again
    qtbot.waitUntil(lambda: len(page.check_sentences()) == 7, timeout=30_000)
    sentences = page.check_sentences()
    assert any("rave 2.3.1" in s for s in sentences) and any("no NVIDIA GPU" in s for s in sentences)
    assert page.status_label.text() == "Everything a run needs is there."
    assert page.table.item(1, 4).text() == "none"                      # the GPUs it found, stored
    qtbot.waitUntil(lambda: not page.test.isRunning(), timeout=10_000)


@pytest.mark.ssh
def test_failed_checks_are_sentences(page, db, trusted_sshd, qtbot):
    machine_id = MachineManager(db).add("nowhere", f"{trusted_sshd.alias}-closed", python=sys.executable,
                                        work_dir="/tmp", ssh_config=str(trusted_sshd.client_config))
    page.refresh()
    page.select_machine(machine_id)
    page.test_selected()
    qtbot.waitUntil(lambda: bool(page.check_sentences()), timeout=30_000)
    assert page.check_sentences()[0].startswith("\u2716  Nothing answers")
    assert page.status_label.text() == "1 problem(s): see below."
    qtbot.waitUntil(lambda: not page.test.isRunning(), timeout=10_000)


@pytest.mark.ssh
def test_register_a_dataset_on_the_host(page, db, trusted_sshd, fake_dataset, qtbot):
    import shutil
    machine_id = MachineManager(db).add("loopback", trusted_sshd.alias, python=sys.executable,
                                        work_dir=str(trusted_sshd.work_dir), ssh_config=str(trusted_sshd.client_config))
    target = trusted_sshd.work_dir / "page dataset"
    shutil.copytree(fake_dataset, target, dirs_exist_ok=True)
    page.refresh()
    worker = page.register_dataset(machine_id, str(target))
    qtbot.waitUntil(lambda: "registered" in page.status_label.text(), timeout=30_000)
    worker.wait(5000)
    assert db.query_one("SELECT machine_id FROM datasets WHERE path = ?", (str(target),))[0] == machine_id


@pytest.mark.slurm
def test_add_a_slurm_cluster_then_test_it_with_sinfo(page, db, trusted_sshd, loopback_slurm, qtbot):
    cluster = loopback_slurm
    dialog = page.open_add_slurm_dialog()
    assert dialog.windowTitle() == "Add a Slurm cluster" and dialog.slurm_box.isChecked()
    dialog.name_edit.setText("loopback hpc")
    dialog.host_edit.setText(trusted_sshd.alias)
    dialog.config_edit.setText(str(trusted_sshd.client_config))
    dialog.python_edit.setText(sys.executable)
    dialog.work_edit.setText(str(trusted_sshd.work_dir / "hpc work"))
    dialog.slurm_box.partition_edit.setText("debug; reboot")
    assert not dialog.save() and "not a Slurm name" in dialog.error.text()
    dialog.slurm_box.partition_edit.setText(cluster.partition)
    dialog.slurm_box.gpus_spin.setValue(0)
    dialog.slurm_box.time_edit.setText("1:00:00")
    dialog.slurm_box.setup_edit.setPlainText(cluster.shell_setup())
    assert dialog.save(), dialog.error.text()
    machine = page.machines.get(page.selected_machine_id())
    assert machine["slurm"]["partition"] == cluster.partition and machine["slurm"]["time"] == "1:00:00"
    row = names(page).index("loopback hpc")
    assert page.table.item(row, 1).text().startswith("Slurm via ")
    page.test_selected()
    qtbot.waitUntil(lambda: page.test is not None and not page.test.isRunning() and bool(page.check_sentences()),
                    timeout=60_000)
    sentences = page.check_sentences()
    assert page.status_label.text() == "Everything a run needs is there.", sentences
    assert any(s.startswith("\u2714  Partition " + cluster.partition) and "1 node(s)" in s for s in sentences)
    assert any("sbatch, squeue" in s for s in sentences)
    # a partition that does not exist: said at once, with what to do
    page.machines.update(machine["id"], slurm={"partition": "nowhere"})
    page.test_selected()
    qtbot.waitUntil(lambda: page.test is not None and not page.test.isRunning() and
                    any("nowhere" in s for s in page.check_sentences()), timeout=60_000)
    assert any(s.startswith("\u2716  Slurm lists no partition 'nowhere'") for s in page.check_sentences())


def test_the_slurm_fields_show_only_for_a_cluster_and_the_dialog_fits_them(page, qtbot):
    dialog = page.open_add_dialog()
    qtbot.waitExposed(dialog)
    assert not dialog.slurm_box.isChecked() and not dialog.slurm_box.body.isVisible()
    assert dialog.fields()["slurm"] is None
    short = dialog.height()
    dialog.slurm_box.setChecked(True)
    qtbot.waitUntil(lambda: dialog.height() >= dialog.sizeHint().height() > short)
    assert dialog.slurm_box.body.isVisible()
    assert dialog.fields()["slurm"]["time"] == "24:00:00"
