"""Page 4 of the New Training wizard: the summary, the exact command (for a run on
another machine, the one the host runs), the warnings; the config is validated
once more before the wizard is accepted."""
from __future__ import annotations

from pathlib import Path

from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import (
    QApplication, QFormLayout, QFrame, QHBoxLayout, QLabel, QPlainTextEdit, QPushButton, QScrollArea,
    QVBoxLayout, QWidget, QWizardPage,
)

from rave_gui.backend import remote_layout, slurm
from rave_gui.backend.rave_catalogue import learning_rate_summary
from rave_gui.backend.rave_cli import RaveNotFound, display_command, find_rave, train_command
from rave_gui.backend.training import TrainingManager
from rave_gui.backend.training_rules import compute_warnings
from rave_gui.core.formatting import format_channels, format_duration
from rave_gui.ui.widgets.messages import error_label, hint_label, set_error, warning_label

EXPERIMENT_FOLDER = "<experiment folder>"


class ConfirmationPage(QWizardPage):
    """Summary, the exact command, warnings; validates before the wizard is accepted
    ("Start now" or "Add to queue")."""

    def __init__(self, db, parent=None):
        super().__init__(parent)
        self.db = db
        self.setTitle("Review and start")
        self.setSubTitle("Check the settings, then start the run now or add it to the queue.")
        self._warnings: list[str] = []
        self._summary: dict[str, str] = {}
        self.validated: dict | None = None

        self.summary_form = QFormLayout()
        self.warnings_box = QVBoxLayout()
        self.command_edit = QPlainTextEdit()
        self.command_edit.setReadOnly(True)
        self.command_edit.setMaximumHeight(84)
        self.command_edit.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
        self.copy_button = QPushButton("Copy")
        self.copy_button.setToolTip("Copy the command (or a cluster's batch script) to the clipboard")
        self.copy_button.clicked.connect(self.copy_command)
        self.command_note = hint_label()
        self.error_label = error_label()

        command_row = QHBoxLayout()
        command_row.addWidget(self.command_edit, 1)
        command_row.addWidget(self.copy_button, 0, Qt.AlignmentFlag.AlignTop)

        review = QWidget()
        review_layout = QVBoxLayout(review)
        review_layout.setContentsMargins(0, 0, 0, 0)
        review_layout.addLayout(self.warnings_box)
        review_layout.addLayout(self.summary_form)
        review_layout.addStretch(1)
        self.review_area = QScrollArea()
        self.review_area.setWidgetResizable(True)
        self.review_area.setFrameShape(QFrame.Shape.NoFrame)
        self.review_area.setWidget(review)

        layout = QVBoxLayout(self)
        layout.addWidget(self.review_area, 1)
        layout.addWidget(QLabel("The command that will run:"))
        layout.addLayout(command_row)
        layout.addWidget(self.command_note)
        layout.addWidget(self.error_label)

    def _manager(self) -> TrainingManager:
        return TrainingManager(self.db, gpus=self.wizard().gpus)

    # -- content ---------------------------------------------------------------
    def initializePage(self) -> None:
        wizard = self.wizard()
        cfg = wizard.get_config()
        dataset = wizard.selected_dataset() or {}
        self.validated = None

        self._summary = {
            "Dataset": (f"{dataset.get('name', '?')} ({format_duration(dataset.get('duration'))}, "
                        f"{format_channels(dataset.get('channels'))}, "
                        f"{int(dataset.get('sample_rate') or 0):,} Hz)"),
            "Base config": cfg["base_config"],
            "Modifiers": ", ".join(cfg["modifiers"]) or "none",
            "Overrides": "; ".join(cfg["overrides"]) or "none",
            "Run name": cfg["name"],
            "Max steps": f"{cfg['max_steps']:,}",
            "Batch size": str(cfg["batch_size"]),
            "Learning rate": learning_rate_summary(),
            "Validate every": f"{cfg['val_every']:,} steps",
            "Train on": wizard.parameters_page.machine_combo.currentText(),
            "Device": wizard.parameters_page.device_combo.currentText(),
            "Stop on NaN": "yes" if cfg.get("stop_on_nan", True) else "no",
        }
        while self.summary_form.rowCount():
            self.summary_form.removeRow(0)
        for key, value in self._summary.items():
            label = QLabel(value)
            label.setTextFormat(Qt.TextFormat.PlainText)
            label.setWordWrap(True)
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            self.summary_form.addRow(f"{key}:", label)

        manager = self._manager()
        machine = wizard.parameters_page.machine()
        gpus = wizard.parameters_page.machine_gpus()
        self.command_edit.setMaximumHeight(84)
        if machine is not None and machine.get("slurm"):  # the batch script it submits, and how it goes on
            rave_missing = ""
            settings = machine["slurm"]
            self.command_edit.setMaximumHeight(260)
            self.command_edit.setPlainText(slurm.preview(machine, cfg, dataset))
            self.command_note.setText(
                f"It is submitted to Slurm on {machine['name']} (reach its login node with: "
                f"{remote_layout.ssh_line(machine)}), partition {settings['partition']}, in a new folder under "
                f"{machine['work_dir']}/runs. {settings['margin']} s before each job's time limit "
                f"({settings['time']}) the training saves a checkpoint and the app submits the next job with "
                "--ckpt, until max steps: one run, one history. The dataset is copied once to "
                f"{machine['work_dir']}/datasets with rsync unless it lives there already.")
        elif machine is not None:  # RAVE runs there: the command the host runs, the ssh line to reach it
            rave_missing = ""
            self.command_edit.setPlainText(remote_layout.display_command(machine, cfg, dataset))
            self.command_note.setText(
                f"It runs on {machine['name']} (reach it with: {remote_layout.ssh_line(machine)}), in a new "
                f"folder under {machine['work_dir']}/runs, through the app's launcher (stop checkpoint, progress "
                "lines; the flags are the same). The dataset is copied once to "
                f"{machine['work_dir']}/datasets with rsync, unless it lives there already; the app mirrors "
                "the log and the losses back as the run goes.")
        else:
            try:
                rave = find_rave()
                rave_missing = ""
            except RaveNotFound as exc:
                rave, rave_missing = Path("rave"), str(exc)
            argv = train_command(rave, cfg, dataset, EXPERIMENT_FOLDER, launcher=False, gpus=wizard.gpus)
            self.command_edit.setPlainText(display_command(argv))
            self.command_note.setText(
                f"{EXPERIMENT_FOLDER} is a new folder under {manager.runs_root}, named after the experiment's "
                "number. The app runs RAVE's own entry point through a small launcher that adds a stop "
                "checkpoint and progress lines; the flags are the same.")

        self._set_warnings(compute_warnings(cfg, dataset, wizard.config_page.phase_1(), gpus, rave_missing))
        try:
            manager.validate_config(cfg)
            set_error(self.error_label, "")
        except ValueError as exc:
            set_error(self.error_label, str(exc))

    def _set_warnings(self, warnings: list[str]) -> None:
        self._warnings = list(warnings)
        while self.warnings_box.count():
            item = self.warnings_box.takeAt(0)
            if item.widget() is not None:
                item.widget().hide()
                item.widget().deleteLater()
        for text in self._warnings:
            self.warnings_box.addWidget(warning_label(text))

    def warnings(self) -> list[str]:
        return list(self._warnings)

    def summary(self) -> dict[str, str]:
        return dict(self._summary)

    def command_text(self) -> str:
        return self.command_edit.toPlainText()

    def copy_command(self) -> None:
        QApplication.clipboard().setText(self.command_text())

    def validatePage(self) -> bool:
        try:
            self.validated = self._manager().validate_config(self.wizard().get_config())
        except ValueError as exc:
            self.validated = None
            set_error(self.error_label, str(exc))
            return False
        set_error(self.error_label, "")
        return True
