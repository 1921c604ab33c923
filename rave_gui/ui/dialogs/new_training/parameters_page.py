"""Page 3 of the New Training wizard: run name, steps, batch, validation, device."""
from __future__ import annotations

from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import QComboBox, QFormLayout, QLineEdit, QSpinBox, QVBoxLayout, QWizardPage

from rave_gui.backend.rave_catalogue import learning_rate_field, learning_rate_schedule
from rave_gui.backend.training import DEFAULTS, validate_name
from rave_gui.ui.widgets.messages import error_label, hint_label, set_error


class TrainingParametersPage(QWizardPage):
    """Run name, steps, batch, the learning rate RAVE fixes (shown, not editable),
    validation interval and device."""

    def __init__(self, gpus: list[str], parent=None):
        super().__init__(parent)
        self.setTitle("Training parameters")
        self.setSubTitle("How long and on what RAVE trains.")
        self.gpus = list(gpus)

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

        self.device_combo = QComboBox()
        self.device_combo.addItem("Auto", "auto")
        self.device_combo.addItem("CPU", "cpu")
        for index, name in enumerate(self.gpus):
            self.device_combo.addItem(f"GPU {index}: {name}", f"gpu:{index}")
        self.device_combo.setItemData(0, "The first GPU if there is one, else the CPU.",
                                      Qt.ItemDataRole.ToolTipRole)
        self.device_hint = hint_label(
            f"{len(self.gpus)} GPU(s) found; Auto uses GPU 0." if self.gpus else
            "No NVIDIA GPU found (nvidia-smi): training runs on the CPU, which is very slow.")

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
