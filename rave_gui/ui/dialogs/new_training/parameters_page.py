"""Page 3 of the New Training wizard: run name, steps, batch, validation, where it
trains (this computer or an SSH host of the Machines page) and on which device."""
from __future__ import annotations

from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import QComboBox, QFormLayout, QLineEdit, QSpinBox, QVBoxLayout, QWizardPage

from rave_gui.backend.machines import THIS_COMPUTER
from rave_gui.backend.rave_catalogue import learning_rate_field, learning_rate_schedule
from rave_gui.backend.training import DEFAULTS, validate_name
from rave_gui.ui.widgets.messages import error_label, hint_label, set_error


class TrainingParametersPage(QWizardPage):
    """Run name, steps, batch, the learning rate RAVE fixes (shown, not editable),
    validation interval and device."""

    def __init__(self, gpus: list[str], parent=None, machines: list[dict] | None = None):
        super().__init__(parent)
        self.setTitle("Training parameters")
        self.setSubTitle("How long and on what RAVE trains.")
        self.gpus = list(gpus)
        self.machines = list(machines or [])

        self.name_edit = QLineEdit()
        self.name_edit.setPlaceholderText("e.g. my voice v2")
        self.name_edit.setMaxLength(1000)
        self.name_error = error_label()
        self.name_edit.textChanged.connect(self._name_changed)

        self.max_steps = QSpinBox()
        self.max_steps.setRange(1, 100_000_000)
        self.max_steps.setSingleStep(10_000)
        self.max_steps.setGroupSeparatorShown(True)
        self.max_steps.setValue(DEFAULTS["max_steps"])

        self.batch_size = QSpinBox()
        self.batch_size.setRange(1, 1024)
        self.batch_size.setValue(DEFAULTS["batch_size"])

        self.learning_rate = QLineEdit(learning_rate_field())
        self.learning_rate.setReadOnly(True)
        self.learning_rate.setEnabled(False)
        self.lr_explanation = hint_label(
            f"Set by RAVE: acids-rave 2.3.1 hard-codes its optimisers ({learning_rate_schedule()}); "
            "no flag or gin binding changes them, so this field cannot be edited.")
        self.learning_rate.setToolTip(self.lr_explanation.text())

        self.val_every = QSpinBox()
        self.val_every.setRange(1, 100_000_000)
        self.val_every.setSingleStep(1_000)
        self.val_every.setGroupSeparatorShown(True)
        self.val_every.setValue(DEFAULTS["val_every"])
        val_hint = hint_label("RAVE validates, saves a checkpoint and logs audio every this many steps.")

        self.machine_combo = QComboBox()
        self.machine_combo.addItem(THIS_COMPUTER, None)
        for machine in self.machines:
            self.machine_combo.addItem(f"{machine['name']} (SSH: {machine['host']})", machine["id"])
        self.machine_hint = hint_label("Add SSH hosts (a GPU server) on the Machines page.")
        self.device_combo = QComboBox()
        self.device_hint = hint_label()
        self._fill_devices()
        self.machine_combo.currentIndexChanged.connect(self._fill_devices)

        outer = QVBoxLayout(self)
        form = QFormLayout()
        outer.addLayout(form)
        outer.addStretch(1)
        form.addRow("Run name:", self.name_edit)
        form.addRow("", self.name_error)
        form.addRow("Max steps:", self.max_steps)
        form.addRow("Batch size:", self.batch_size)
        form.addRow("Learning rate:", self.learning_rate)
        form.addRow("", self.lr_explanation)
        form.addRow("Validate every (steps):", self.val_every)
        form.addRow("", val_hint)
        form.addRow("Train on:", self.machine_combo)
        form.addRow("", self.machine_hint)
        form.addRow("Device:", self.device_combo)
        form.addRow("", self.device_hint)

    # -- values ----------------------------------------------------------------
    def run_name(self) -> str:
        """The validated name (stripped), or '' when it is not valid."""
        try:
            return validate_name(self.name_edit.text())
        except ValueError:
            return ""

    def name_problem(self) -> str:
        """The sentence saying what is wrong with the name ('' when fine)."""
        try:
            validate_name(self.name_edit.text())
        except ValueError as exc:
            return str(exc)
        return ""

    def device(self) -> str:
        return self.device_combo.currentData()

    # -- where it trains ----------------------------------------------------------------
    def machine_id(self) -> int | None:
        """None: this computer; else the id of a machine of the Machines page."""
        return self.machine_combo.currentData()

    def machine(self) -> dict | None:
        machine_id = self.machine_id()
        return next((m for m in self.machines if m["id"] == machine_id), None)

    def set_machine(self, machine_id: int | None) -> None:
        index = self.machine_combo.findData(machine_id)
        if index < 0:
            raise ValueError(f"No machine {machine_id!r} here.")
        self.machine_combo.setCurrentIndex(index)

    def machine_gpus(self) -> list[str]:
        """The GPUs of the chosen machine (this computer's, or what its last
        connection test found)."""
        machine = self.machine()
        return self.gpus if machine is None else list(machine.get("gpus") or [])

    def _fill_devices(self, *_args) -> None:
        machine = self.machine()
        gpus = self.machine_gpus()
        where = "this computer" if machine is None else machine["name"]
        previous = self.device_combo.currentData()
        self.device_combo.clear()
        self.device_combo.addItem("Auto", "auto")
        self.device_combo.addItem("CPU", "cpu")
        for index, name in enumerate(gpus):
            self.device_combo.addItem(f"GPU {index}: {name}", f"gpu:{index}")
        self.device_combo.setItemData(0, "The first GPU if there is one, else the CPU.",
                                      Qt.ItemDataRole.ToolTipRole)
        if machine is not None and machine.get("gpus") is None:
            self.device_hint.setText(f"{where}'s GPUs are not known yet: test its connection on the Machines "
                                     "page. Auto uses its first GPU if it has one.")
        elif gpus:
            self.device_hint.setText(f"{len(gpus)} GPU(s) found on {where}; Auto uses GPU 0.")
        else:
            self.device_hint.setText(f"No NVIDIA GPU found on {where} (nvidia-smi): training runs on the CPU, "
                                     "which is very slow.")
        if machine is not None:
            self.machine_hint.setText(f"Runs over SSH on {machine['name']}, in {machine['work_dir']}; the "
                                      "dataset is copied there once (rsync), the app follows the run live.")
        else:
            self.machine_hint.setText("Add SSH hosts (a GPU server) on the Machines page.")
        index = self.device_combo.findData(previous)
        self.device_combo.setCurrentIndex(max(0, index))

    def set_device(self, value: str) -> None:
        index = self.device_combo.findData(value)
        if index < 0:
            raise ValueError(f"No device {value!r} here.")
        self.device_combo.setCurrentIndex(index)

    # -- wizard ----------------------------------------------------------------
    def initializePage(self) -> None:
        self.name_edit.setFocus()

    def _name_changed(self, _text: str = "") -> None:
        set_error(self.name_error, self.name_problem())
        self.completeChanged.emit()

    def isComplete(self) -> bool:
        return not self.name_problem()

    def validatePage(self) -> bool:
        self._name_changed()
        return self.isComplete()
