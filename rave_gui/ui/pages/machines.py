"""The Machines page: where runs can train. "This computer", SSH hosts and Slurm clusters.

A Slurm cluster is added like an SSH host (its login node) with the settings its
jobs ask for (partition, account, GPUs, CPUs, memory, time limit, checkpoint
margin, modules, setup lines, extra ``#SBATCH`` lines, where exports run); its
"Test connection" adds the Slurm commands and ``sinfo`` of the partition.

Add, edit and remove hosts; "Test connection" runs the checks off the UI thread
(``ConnectionTest``, a QThread) and shows each as a sentence; an unknown host key
is shown with its fingerprint for the person to accept or not. A dataset that
lives on a host can be registered by its path there.

Dialogs and message boxes open with ``open()`` (never ``exec()``) so the tests can
drive them; errors stay in ``last_error``.
"""
from __future__ import annotations

from PyQt6.QtCore import Qt, QThread, QTimer, pyqtSignal
from PyQt6.QtWidgets import (QAbstractItemView, QComboBox, QDialog, QDialogButtonBox, QFileDialog,
                             QFormLayout, QGroupBox, QHBoxLayout, QHeaderView, QInputDialog, QLabel, QLayout, QLineEdit,
                             QListWidget, QListWidgetItem, QMessageBox, QPlainTextEdit, QPushButton, QSpinBox,
                             QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from rave_gui.backend import connection_check
from rave_gui.backend.machines import THIS_COMPUTER, MachineManager
from rave_gui.backend.slurm import DEFAULTS as SLURM_DEFAULTS
from rave_gui.backend.rave_cli import detect_gpus
from rave_gui.backend.ssh import accept_host_key
from rave_gui.ui.widgets.messages import error_label, hint_label, set_error

HEADERS = ("Name", "Host", "Python", "Work folder", "GPUs")
MARKS = {"ok": "\u2714", "warning": "\u26a0", "error": "\u2716"}


class ConnectionTest(QThread):
    """Runs ``connection_check.test_connection`` (seconds of ssh) off the UI thread."""
    done = pyqtSignal(object)  # list of Check, or an Exception

    def __init__(self, target, python: str, work_dir: str, parent=None, slurm: dict | None = None):
        super().__init__(parent)
        self.target, self.python, self.work_dir, self.slurm = target, python, work_dir, slurm

    def run(self) -> None:
        try:
            result = connection_check.test_connection(self.target, self.python, self.work_dir, slurm=self.slurm)
        except Exception as exc:  # noqa: BLE001 - reported as a sentence
            result = exc
        self.done.emit(result)


class RemoteDatasetRegistration(QThread):
    done = pyqtSignal(object)  # dataset id, or an Exception

    def __init__(self, machines: MachineManager, machine_id: int, path: str, parent=None):
        super().__init__(parent)
        self.machines, self.machine_id, self.path = machines, machine_id, path

    def run(self) -> None:
        try:
            result = self.machines.register_remote_dataset(self.machine_id, self.path)
        except Exception as exc:  # noqa: BLE001
            result = exc
        self.done.emit(result)


class SlurmFields(QGroupBox):
    """The settings a Slurm cluster's jobs ask for (``backend/slurm.py``)."""

    def __init__(self, settings: dict | None, parent=None):
        super().__init__("Slurm cluster: submit jobs from this login node", parent)
        self.setCheckable(True)
        self.setChecked(settings is not None)
        s = {**SLURM_DEFAULTS, **(settings or {})}
        self.partition_edit = QLineEdit(s["partition"])
        self.partition_edit.setPlaceholderText("e.g. gpu (sinfo -s lists them)")
        self.account_edit = QLineEdit(s["account"])
        self.account_edit.setPlaceholderText("optional: the account jobs are charged to")
        self.gpus_spin = QSpinBox()
        self.gpus_spin.setRange(0, 16)
        self.gpus_spin.setValue(int(s["gpus"]))
        self.cpus_spin = QSpinBox()
        self.cpus_spin.setRange(1, 256)
        self.cpus_spin.setValue(int(s["cpus"]))
        self.mem_edit = QLineEdit(s["mem"])
        self.mem_edit.setPlaceholderText("e.g. 32G (empty: the partition's default)")
        self.time_edit = QLineEdit(s["time"])
        self.time_edit.setPlaceholderText("e.g. 24:00:00 or 2-00:00:00")
        self.margin_spin = QSpinBox()
        self.margin_spin.setRange(30, 86_400)
        self.margin_spin.setSuffix(" s")
        self.margin_spin.setValue(int(s["margin"]))
        self.modules_edit = QLineEdit(" ".join(s["modules"]))
        self.modules_edit.setPlaceholderText("optional: e.g. cuda/12.1 python/3.11")
        self.setup_edit = QPlainTextEdit(s["setup"])
        self.setup_edit.setPlaceholderText("optional shell lines, e.g. source ~/venvs/rave/bin/activate")
        self.setup_edit.setFixedHeight(54)
        self.extra_edit = QPlainTextEdit(s["extra"])
        self.extra_edit.setPlaceholderText("optional, e.g. #SBATCH --qos=long")
        self.extra_edit.setFixedHeight(54)
        self.export_combo = QComboBox()
        self.export_combo.addItem("on the login node", "login")
        self.export_combo.addItem("as a short job (srun)", "job")
        self.export_combo.setCurrentIndex(max(0, self.export_combo.findData(s["export"])))
        self.body = QWidget()  # shown only for a cluster: an SSH host's dialog stays short
        form = QFormLayout(self.body)
        form.setContentsMargins(0, 0, 0, 0)
        outer = QVBoxLayout(self)
        outer.addWidget(self.body)
        self.body.setVisible(self.isChecked())
        self.toggled.connect(self.body.setVisible)
        form.addRow("Partition:", self.partition_edit)
        form.addRow("Account:", self.account_edit)
        form.addRow("GPUs per job:", self.gpus_spin)
        form.addRow("CPUs per job:", self.cpus_spin)
        form.addRow("Memory per job:", self.mem_edit)
        form.addRow("Time limit:", self.time_edit)
        form.addRow("Checkpoint margin:", self.margin_spin)
        form.addRow("", hint_label("Slurm warns the job this long before its time limit: the training saves a "
                                   "checkpoint and the app submits the next job, until max steps."))
        form.addRow("Modules:", self.modules_edit)
        form.addRow("Setup lines:", self.setup_edit)
        form.addRow("Extra #SBATCH lines:", self.extra_edit)
        form.addRow("Export:", self.export_combo)

    def settings(self) -> dict | None:
        if not self.isChecked():
            return None
        return dict(partition=self.partition_edit.text(), account=self.account_edit.text(),
                    gpus=self.gpus_spin.value(), cpus=self.cpus_spin.value(), mem=self.mem_edit.text(),
                    time=self.time_edit.text(), margin=self.margin_spin.value(),
                    modules=self.modules_edit.text(), setup=self.setup_edit.toPlainText(),
                    extra=self.extra_edit.toPlainText(), export=self.export_combo.currentData())


class MachineDialog(QDialog):
    """Add or edit an SSH host or a Slurm cluster. ``saved(id)`` once the record is written."""
    saved = pyqtSignal(int)

    def __init__(self, machines: MachineManager, machine: dict | None = None, parent=None, slurm: bool = False):
        super().__init__(parent)
        self.machines = machines
        self.machine = machine
        slurm = bool(machine.get("slurm")) if machine else slurm
        self.setWindowTitle("Edit machine" if machine else ("Add a Slurm cluster" if slurm else "Add an SSH host"))
        self.name_edit = QLineEdit(machine["name"] if machine else "")
        self.name_edit.setPlaceholderText("e.g. lab GPU server")
        host = ""
        if machine:
            host = (f"{machine['user']}@" if machine.get("user") else "") + machine["host"] + \
                (f":{machine['port']}" if machine.get("port") else "")
        self.host_edit = QLineEdit(host)
        self.host_edit.setPlaceholderText("an alias from ~/.ssh/config, or user@host[:port]")
        self.config_edit = QLineEdit((machine or {}).get("ssh_config") or "")
        self.config_edit.setPlaceholderText("optional: another ssh config file (default ~/.ssh/config)")
        browse = QPushButton("Browse\u2026")
        browse.clicked.connect(self._browse_config)
        self.python_edit = QLineEdit(machine["python"] if machine else "python3")
        self.python_edit.setPlaceholderText("e.g. ~/venvs/rave/bin/python")
        self.work_edit = QLineEdit(machine["work_dir"] if machine else "~/rave-gui")
        self.error = error_label()
        config_row = QHBoxLayout()
        config_row.addWidget(self.config_edit, 1)
        config_row.addWidget(browse)
        form = QFormLayout()
        form.addRow("Name:", self.name_edit)
        form.addRow("Host:", self.host_edit)
        form.addRow("", hint_label("Your own ssh is used: keys, agent, jump hosts and ~/.ssh/config work as in "
                                   "a terminal. No password is stored or asked: use a key (ssh-copy-id)."))
        form.addRow("SSH config file:", config_row)
        form.addRow("Remote Python:", self.python_edit)
        form.addRow("", hint_label("The Python (or venv's bin/python) on the host that has acids-rave."))
        form.addRow("Remote work folder:", self.work_edit)
        form.addRow("", hint_label("Datasets, runs and the app's launcher go there (on a cluster: a shared "
                                   "folder the compute nodes see)."))
        self.slurm_box = SlurmFields((machine or {}).get("slurm") or ({} if slurm else None))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.save)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.setSizeConstraint(QLayout.SizeConstraint.SetMinimumSize)  # never squeezed below its fields
        layout.addLayout(form)
        layout.addWidget(self.slurm_box)
        layout.addWidget(self.error)
        layout.addWidget(buttons)
        self._fit()
        self.slurm_box.toggled.connect(lambda _on: QTimer.singleShot(0, self._fit))

    def _fit(self) -> None:
        """As tall as its fields want (wrapped hints make Qt's minimum too small)."""
        self.resize(max(560, self.width() if self.isVisible() else 0), self.sizeHint().height())

    def _browse_config(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "SSH config file")
        if path:
            self.config_edit.setText(path)

    def fields(self) -> dict:
        return dict(name=self.name_edit.text(), host=self.host_edit.text(),
                    ssh_config=self.config_edit.text().strip() or None, python=self.python_edit.text(),
                    work_dir=self.work_edit.text(), slurm=self.slurm_box.settings())

    def save(self) -> bool:
        """Write the record (``False`` and a sentence under the form when a field will not do)."""
        fields = self.fields()
        try:
            if self.machine:
                fields.update(user=None, port=None)  # both come from the host field
                self.machines.update(self.machine["id"], **fields)
                machine_id = self.machine["id"]
            else:
                machine_id = self.machines.add(**fields)
        except ValueError as exc:
            set_error(self.error, str(exc))
            return False
        set_error(self.error, "")
        self.saved.emit(machine_id)
        self.accept()
        return True


class MachinesPage(QWidget):
    """This computer and the SSH hosts runs can train on."""
    machines_changed = pyqtSignal()

    def __init__(self, db, parent=None):
        super().__init__(parent)
        self.db = db
        self.machines = MachineManager(db)
        self.dialog: MachineDialog | None = None
        self.key_box: QMessageBox | None = None
        self.remove_box: QMessageBox | None = None
        self.test: ConnectionTest | None = None
        self.registration: RemoteDatasetRegistration | None = None
        self.last_checks: list = []
        self.last_error: str | None = None
        self._local_gpus: list[str] | None = None
        self._build()
        self.refresh()

    def _build(self) -> None:
        self.add_button = QPushButton("Add SSH host\u2026")
        self.add_slurm_button = QPushButton("Add Slurm cluster\u2026")
        self.add_slurm_button.clicked.connect(self.open_add_slurm_dialog)
        self.edit_button = QPushButton("Edit\u2026")
        self.remove_button = QPushButton("Remove\u2026")
        self.test_button = QPushButton("Test connection")
        self.dataset_button = QPushButton("Register a dataset on this host\u2026")
        self.add_button.clicked.connect(self.open_add_dialog)
        self.edit_button.clicked.connect(self.open_edit_dialog)
        self.remove_button.clicked.connect(self.ask_remove_selected)
        self.test_button.clicked.connect(self.test_selected)
        self.dataset_button.clicked.connect(self._ask_dataset_path)
        toolbar = QHBoxLayout()
        for button in (self.add_button, self.add_slurm_button, self.edit_button, self.remove_button, self.test_button,
                       self.dataset_button):
            toolbar.addWidget(button)
        toolbar.addStretch()
        self.table = QTableWidget(0, len(HEADERS))
        self.table.setHorizontalHeaderLabels(HEADERS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.itemSelectionChanged.connect(self._update_buttons)
        self.status_label = QLabel()
        self.status_label.setWordWrap(True)
        self.checks_list = QListWidget()
        self.checks_list.setWordWrap(True)
        self.error = error_label()
        layout = QVBoxLayout(self)
        layout.addLayout(toolbar)
        layout.addWidget(self.table, 2)
        layout.addWidget(self.status_label)
        layout.addWidget(self.checks_list, 1)
        layout.addWidget(self.error)

    # -- the list ------------------------------------------------------------------------------
    def local_gpus(self) -> list[str]:
        if self._local_gpus is None:
            self._local_gpus = detect_gpus()
        return self._local_gpus

    def refresh(self) -> None:
        selected = self.selected_machine_id()
        rows = [None] + self.machines.list()
        self.table.setRowCount(len(rows))
        for row, machine in enumerate(rows):
            if machine is None:
                gpus = self.local_gpus()
                values = (THIS_COMPUTER, "(here)", "the app's own", "the app's data folder",
                          ", ".join(gpus) if gpus else "none")
            else:
                host = (f"{machine['user']}@" if machine.get("user") else "") + machine["host"] + \
                    (f":{machine['port']}" if machine.get("port") else "")
                gpus = machine.get("gpus")
                shown = "not tested yet" if gpus is None else (", ".join(gpus) if gpus else "none")
                if machine.get("slurm"):
                    settings = machine["slurm"]
                    host = f"Slurm via {host}"
                    shown = (f"partition {settings['partition']}: {settings['gpus']} GPU(s), {settings['cpus']} "
                             f"CPUs, {settings['time']} per job")
                values = (machine["name"], host, machine["python"], machine["work_dir"], shown)
            for column, value in enumerate(values):
                item = QTableWidgetItem(value)
                item.setData(Qt.ItemDataRole.UserRole, None if machine is None else machine["id"])
                self.table.setItem(row, column, item)
        if selected is not None:
            self.select_machine(selected)
        self._update_buttons()

    def selected_machine_id(self) -> int | None:
        rows = self.table.selectionModel().selectedRows() if self.table.selectionModel() else []
        if not rows:
            return None
        item = self.table.item(rows[0].row(), 0)
        return item.data(Qt.ItemDataRole.UserRole) if item else None

    def select_machine(self, machine_id: int | None) -> bool:
        for row in range(self.table.rowCount()):
            if self.table.item(row, 0).data(Qt.ItemDataRole.UserRole) == machine_id:
                self.table.selectRow(row)
                return True
        return False

    def _update_buttons(self) -> None:
        remote = self.selected_machine_id() is not None
        busy = self.test is not None and self.test.isRunning()
        for button in (self.edit_button, self.remove_button, self.dataset_button):
            button.setEnabled(remote)
        self.test_button.setEnabled(remote and not busy)

    # -- add / edit / remove ---------------------------------------------------------------------
    def open_add_dialog(self) -> MachineDialog:
        return self._open_dialog(None)

    def open_add_slurm_dialog(self) -> MachineDialog:
        return self._open_dialog(None, slurm=True)

    def open_edit_dialog(self) -> MachineDialog | None:
        machine_id = self.selected_machine_id()
        return self._open_dialog(self.machines.get(machine_id)) if machine_id is not None else None

    def _open_dialog(self, machine: dict | None, slurm: bool = False) -> MachineDialog:
        self.dialog = MachineDialog(self.machines, machine, self, slurm=slurm)
        self.dialog.saved.connect(self._saved)
        self.dialog.open()
        return self.dialog

    def _saved(self, machine_id: int) -> None:
        self.refresh()
        self.select_machine(machine_id)
        self.machines_changed.emit()

    def ask_remove_selected(self) -> QMessageBox | None:
        machine_id = self.selected_machine_id()
        if machine_id is None:
            return None
        blocker = self.machines.removal_blocker(machine_id)
        if blocker:
            self._show_error(blocker)
            return None
        machine = self.machines.get(machine_id)
        box = QMessageBox(QMessageBox.Icon.Question, "Remove machine",
                          f"Forget {machine['name']}? Its runs stay in the list; nothing on the host is deleted.",
                          QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel, self)
        box.finished.connect(lambda _r, b=box, m=machine_id: self._remove_answered(b, m))
        self.remove_box = box
        box.open()
        return box

    def _remove_answered(self, box: QMessageBox, machine_id: int) -> None:
        if box.clickedButton() is box.button(QMessageBox.StandardButton.Yes):
            self.remove_machine(machine_id)

    def remove_machine(self, machine_id: int) -> bool:
        try:
            self.machines.remove(machine_id)
        except ValueError as exc:
            self._show_error(str(exc))
            return False
        self.refresh()
        self.machines_changed.emit()
        return True

    # -- test connection ---------------------------------------------------------------------------
    def test_selected(self) -> ConnectionTest | None:
        machine_id = self.selected_machine_id()
        if machine_id is None or (self.test is not None and self.test.isRunning()):
            return None
        machine = self.machines.get(machine_id)
        self.checks_list.clear()
        self.status_label.setText(f"Testing the connection to {machine['name']}\u2026")
        self.test = ConnectionTest(self.machines.target(machine), machine["python"], machine["work_dir"], self,
                                   slurm=machine.get("slurm"))
        self.test.done.connect(lambda result, m=machine_id: self._tested(m, result))
        self.test.finished.connect(self._update_buttons)
        self.test.start()
        self._update_buttons()
        return self.test

    def _tested(self, machine_id: int, result) -> None:
        if isinstance(result, Exception):
            self.status_label.setText("The test could not run.")
            self._show_error(str(result))
            return
        self.last_checks = list(result)
        self.machines.record_checks(machine_id, self.last_checks)
        for check in self.last_checks:
            item = QListWidgetItem(f"{MARKS.get(check.status, '')}  {check.message}")
            item.setData(Qt.ItemDataRole.UserRole, check.status)
            self.checks_list.addItem(item)
        problems = connection_check.problems(self.last_checks)
        self.status_label.setText("Everything a run needs is there." if not problems else
                                  f"{len(problems)} problem(s): see below.")
        self.refresh()
        self.machines_changed.emit()
        key = next((c.data.get("host_key") for c in self.last_checks if c.data.get("host_key")), None)
        if key is not None:
            self._ask_host_key(machine_id, key)

    def check_sentences(self) -> list[str]:
        return [self.checks_list.item(i).text() for i in range(self.checks_list.count())]

    def _ask_host_key(self, machine_id: int, key) -> QMessageBox:
        machine = self.machines.get(machine_id)
        box = QMessageBox(QMessageBox.Icon.Question, "Unknown host key",
                          f"{machine['name']} presents a host key this computer has not seen before:\n\n"
                          + "\n".join(key.fingerprints)
                          + f"\n\nAccept it only if it is your server's. It will be added to {key.known_hosts}.",
                          QMessageBox.StandardButton.NoButton, self)
        self.accept_key_button = box.addButton("Accept", QMessageBox.ButtonRole.AcceptRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.finished.connect(lambda _r, b=box, m=machine_id, k=key: self._key_answered(b, m, k))
        self.key_box = box
        box.open()
        return box

    def _key_answered(self, box: QMessageBox, machine_id: int, key) -> None:
        if box.clickedButton() is not self.accept_key_button:
            self.status_label.setText("The host key was not accepted; the app cannot use this machine.")
            return
        try:
            accept_host_key(key)
        except OSError as exc:
            self._show_error(f"The host key could not be saved in {key.known_hosts} ({exc}).")
            return
        self.select_machine(machine_id)
        self.test_selected()

    # -- a dataset that lives on the host ------------------------------------------------------------
    def _ask_dataset_path(self) -> None:
        machine_id = self.selected_machine_id()
        if machine_id is None:
            return
        path, ok = QInputDialog.getText(self, "Register a dataset on this host",
                                        "Path of a preprocessed dataset on the host (it stays there):")
        if ok and path.strip():
            self.register_dataset(machine_id, path.strip())

    def register_dataset(self, machine_id: int, path: str) -> RemoteDatasetRegistration:
        self.status_label.setText(f"Reading {path} on the host\u2026")
        self.registration = RemoteDatasetRegistration(self.machines, machine_id, path, self)
        self.registration.done.connect(self._dataset_registered)
        self.registration.start()
        return self.registration

    def _dataset_registered(self, result) -> None:
        if isinstance(result, Exception):
            self.status_label.setText("")
            self._show_error(str(result))
            return
        self.status_label.setText("The dataset is registered; it trains on this host only.")
        from rave_gui.core.signals import app_signals
        app_signals().dataset_added.emit(int(result))

    # -- errors ---------------------------------------------------------------------------------------
    def _show_error(self, message: str) -> None:
        self.last_error = message
        set_error(self.error, message)

    def shutdown(self) -> None:
        """Wait for a test still running (the window is closing)."""
        for thread in (self.test, self.registration):
            if thread is not None:
                thread.wait(60_000)
