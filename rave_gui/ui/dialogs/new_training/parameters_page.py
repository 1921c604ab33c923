"""Page 3 of the New Training wizard: run name, steps, batch, validation, "stop on
NaN", where it trains (this computer or an SSH host of the Machines page) and on
which device, with a warning when this computer's chosen GPU has less memory than
RAVE asks for the chosen config."""
from __future__ import annotations

from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import QCheckBox, QComboBox, QFormLayout, QLineEdit, QSpinBox, QVBoxLayout, QWidget, QWizardPage

from rave_gui.backend.machines import THIS_COMPUTER
from rave_gui.backend.rave_catalogue import learning_rate_field, learning_rate_schedule
from rave_gui.backend.system_monitor import gpu_memory_totals
from rave_gui.backend.training import DEFAULTS, validate_name
from rave_gui.backend.training_rules import chosen_gpu, gpu_memory_warning
from rave_gui.ui.widgets.messages import WARNING_SIGN, error_label, hint_label, set_error, warning_label


def stacked(field: QWidget, *below: QWidget) -> QWidget:
    """``field`` with the labels that explain it underneath, as one form field."""
    box = QWidget()
    layout = QVBoxLayout(box)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.setSpacing(4)
    layout.addWidget(field)
    for widget in below:
        layout.addWidget(widget)
    return box


class TrainingParametersPage(QWizardPage):
    """Run name, steps, batch, the learning rate RAVE fixes (shown, not editable),
    validation interval, "stop on NaN", machine and device. ``extra_config()`` is what
    this page adds to the wizard's config ("stop_on_nan")."""

    def __init__(self, gpus: list[str], parent=None, machines: list[dict] | None = None):
        super().__init__(parent)
        self.setTitle("Training parameters")
        self.setSubTitle("How long and on what RAVE trains.")
        self.gpus = list(gpus)
        self.machines = list(machines or [])
        #: this computer's GPUs' total memory (bytes, NVML), read when first needed
        self._gpu_memory: list[int] | None = None

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

        self.stop_on_nan = QCheckBox("Stop the run if a loss becomes NaN or infinite")
        self.stop_on_nan.setChecked(bool(DEFAULTS["stop_on_nan"]))
        nan_hint = hint_label("A diverged run only wastes its device's time: stopped, it keeps its earlier "
                              "checkpoints to resume from. Either way the run is flagged in the table.")
        self.stop_on_nan.setToolTip(nan_hint.text())

        self.machine_combo = QComboBox()
        self.machine_combo.addItem(THIS_COMPUTER, None)
        for machine in self.machines:
            kind = f"Slurm: {machine['slurm']['partition']} via {machine['host']}" if machine.get("slurm") else \
                f"SSH: {machine['host']}"
            self.machine_combo.addItem(f"{machine['name']} ({kind})", machine["id"])
        self.machine_hint = hint_label("Add SSH hosts (a GPU server) or Slurm clusters on the Machines page.")
        self.device_combo = QComboBox()
        self.device_hint = hint_label()
        self.memory_warning = warning_label("")
        self._fill_devices()
        self.machine_combo.currentIndexChanged.connect(self._fill_devices)
        self.device_combo.currentIndexChanged.connect(self._update_memory_warning)

        self.memory_warning.hide()

        outer = QVBoxLayout(self)
        form = QFormLayout()
        outer.addLayout(form)
        outer.addStretch(1)
        # each field with the sentences under it in one box: QFormLayout sizes a wrapped label
        # given a row of its own by its narrow size hint (tall gaps), a box by its real width
        form.addRow("Run name:", stacked(self.name_edit, self.name_error))
        form.addRow("Max steps:", self.max_steps)
        form.addRow("Batch size:", self.batch_size)
        form.addRow("Learning rate:", stacked(self.learning_rate, self.lr_explanation))
        form.addRow("Validate every (steps):", stacked(self.val_every, val_hint))
        form.addRow("If it diverges:", stacked(self.stop_on_nan, nan_hint))
        form.addRow("Train on:", stacked(self.machine_combo, self.machine_hint))
        form.addRow("Device:", stacked(self.device_combo, self.device_hint, self.memory_warning))
        self.form = form
        self._update_memory_warning()

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

    def extra_config(self) -> dict:
        """What this page adds to the wizard's ``get_config()``: the "stop on NaN" choice."""
        return {"stop_on_nan": self.stop_on_nan.isChecked()}

    # -- the GPU's memory against RAVE's minimum ------------------------------------------
    def base_config(self) -> str:
        """The config chosen on the wizard's config page (RAVE's default outside a wizard)."""
        wizard = self.wizard()
        config_page = getattr(wizard, "config_page", None)
        return (config_page.base_config() if config_page is not None else None) or DEFAULTS["base_config"]

    def gpu_memory(self) -> list[int]:
        """This computer's GPUs' total memory (bytes), read once from NVIDIA's library."""
        if self._gpu_memory is None:
            self._gpu_memory = list(gpu_memory_totals())
        return self._gpu_memory

    def memory_problem(self) -> str:
        """The warning sentence when this computer's chosen GPU has less memory than RAVE
        asks for the chosen config ('' otherwise, and for another machine: its GPUs'
        memory is not known here)."""
        device = self.device() or "cpu"
        if self.machine() is not None or chosen_gpu(device, self.gpus) is None:
            return ""
        return gpu_memory_warning(self.base_config(), device, self.gpus, self.gpu_memory())

    def _update_memory_warning(self, *_args) -> None:
        text = self.memory_problem()
        self.memory_warning.setText(WARNING_SIGN + text if text else "")
        if hasattr(self, "form"):   # in its box (never a window of its own)
            self.memory_warning.setVisible(bool(text))

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
        if machine is not None and machine.get("slurm"):
            settings = machine["slurm"]
            self.device_hint.setText(f"Each job on {where} asks for {settings['gpus']} GPU(s) (its Slurm settings); "
                                     + ("Auto uses the job's first GPU." if gpus else "it trains on the CPU."))
        elif machine is not None and machine.get("gpus") is None:
            self.device_hint.setText(f"{where}'s GPUs are not known yet: test its connection on the Machines "
                                     "page. Auto uses its first GPU if it has one.")
        elif gpus:
            self.device_hint.setText(f"{len(gpus)} GPU(s) found on {where}; Auto uses GPU 0.")
        else:
            self.device_hint.setText(f"No NVIDIA GPU found on {where} (nvidia-smi): training runs on the CPU, "
                                     "which is very slow.")
        if machine is not None and machine.get("slurm"):
            self.machine_hint.setText(f"Submitted as Slurm jobs to partition {machine['slurm']['partition']} from "
                                      f"{machine['name']}'s login node, in {machine['work_dir']}; resubmitted at each "
                                      "time limit until max steps; the app follows the run live.")
        elif machine is not None:
            self.machine_hint.setText(f"Runs over SSH on {machine['name']}, in {machine['work_dir']}; the "
                                      "dataset is copied there once (rsync), the app follows the run live.")
        else:
            self.machine_hint.setText("Add SSH hosts (a GPU server) or Slurm clusters on the Machines page.")
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
        self._update_memory_warning()  # the config page's choice may have changed

    def _name_changed(self, _text: str = "") -> None:
        set_error(self.name_error, self.name_problem())
        self.completeChanged.emit()

    def isComplete(self) -> bool:
        return not self.name_problem()

    def validatePage(self) -> bool:
        self._name_changed()
        return self.isComplete()
