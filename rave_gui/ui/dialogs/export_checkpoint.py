"""ExportCheckpointDialog: ``rave export`` options plus the run, the checkpoint
(best, last or any listed one) and a preview of what the fidelity keeps.

``options()`` is what ``CheckpointExportProcess`` takes (through
``RunController.export``): output_dir, streaming, fidelity, checkpoint, verify.
A run on another machine (``config["machine_id"]``) is exported there by
``RemoteExportProcess``, which takes RAVE's own choice and no check: the dialog
says so and its options are only the first three.
"""
from __future__ import annotations

from PyQt6.QtWidgets import QCheckBox, QComboBox, QDialogButtonBox, QLabel

from rave_gui.backend.model_export import (FIDELITY_KEYS, checkpoint_options, full_latent_size_of_run,
                                           fidelity_preview, resolve_checkpoint)
from rave_gui.backend.run_state import LIVE
from rave_gui.ui.dialogs.export_dialog import ExportDialog
from rave_gui.ui.widgets.messages import hint_label


def exportable_runs(manager) -> list[dict]:
    """Runs that are not running or queued (whether they have a checkpoint shows in the dialog)."""
    return [e for e in manager.list_experiments() if e["status"] not in LIVE and e["status"] != "queued"
            and e.get("out_dir")]


class ExportCheckpointDialog(ExportDialog):
    def __init__(self, manager, experiment_id: int | None = None, parent=None):
        self.manager = manager
        runs = exportable_runs(manager)
        if experiment_id is None and runs:
            experiment_id = runs[0]["id"]
        default = str(manager.paths(experiment_id).export_dir) if experiment_id is not None else ""
        super().__init__(default, parent)
        self.setWindowTitle("Export a checkpoint for nn~ / VST")
        form = self.layout()
        self.run_combo = QComboBox()
        for exp in runs:
            self.run_combo.addItem(f"{exp['name']} ({exp['status']})", exp["id"])
        if experiment_id is not None and self.run_combo.findData(experiment_id) < 0:
            exp = manager.get_experiment(experiment_id)
            self.run_combo.addItem(f"{exp['name']} ({exp['status']})" if exp else f"run {experiment_id}",
                                   experiment_id)
        self.run_combo.setCurrentIndex(max(0, self.run_combo.findData(experiment_id)))
        self.checkpoint_combo = QComboBox()
        self.checkpoint_combo.setToolTip("RAVE's own choice is the newest checkpoint file; best.ckpt has the "
                                         "lowest validation loss.")
        self.preview = hint_label()
        self.preview.setObjectName("fidelity_preview")
        self.verify = QCheckBox("Check the model after export (loads it in torch and runs audio through it)")
        self.verify.setChecked(True)
        self.problem = QLabel("")
        self.problem.setWordWrap(True)
        form.insertRow(0, "Run:", self.run_combo)
        form.insertRow(1, "Checkpoint:", self.checkpoint_combo)
        # two lines reserved: a wrapped label in a form row does not grow its row by itself
        self.preview.setMinimumHeight(2 * self.preview.fontMetrics().lineSpacing() + 6)
        form.insertRow(4, self.preview)
        form.insertRow(6, self.verify)
        form.insertRow(7, self.problem)
        self.run_combo.currentIndexChanged.connect(self._run_changed)
        self.checkpoint_combo.currentIndexChanged.connect(self.update_preview)
        self.fidelity.valueChanged.connect(self.update_preview)
        self._history: dict = {}
        self._run_dir = None
        self.remote = False
        self._run_changed()

    @property
    def experiment_id(self) -> int | None:
        return self.run_combo.currentData()

    def _run_changed(self, *_args) -> None:
        self.checkpoint_combo.blockSignals(True)
        self.checkpoint_combo.clear()
        exp = self.manager.get_experiment(self.experiment_id) if self.experiment_id is not None else None
        self._run_dir = self.manager.paths(exp).run_dir if exp else None
        self._history = self.manager.get_metric_history(exp["id"], FIDELITY_KEYS) if exp else {}
        self.remote = bool(exp and exp["config"].get("machine_id") is not None)
        options = checkpoint_options(self._run_dir) if self._run_dir and not self.remote else []
        for key, label in options:
            self.checkpoint_combo.addItem(label, key)
        if self.remote:
            self.checkpoint_combo.addItem("RAVE's choice (the newest checkpoint, on the machine it trained on)")
        self.checkpoint_combo.setEnabled(not self.remote)
        self.verify.setVisible(not self.remote)
        self.checkpoint_combo.blockSignals(False)
        if exp is not None and self.sender() is self.run_combo:
            self.output.setText(str(self.manager.paths(exp).export_dir))
        ready = bool(options) or self.remote
        self.problem.setText("" if ready else "This run has no checkpoint on this computer to export.")
        self.problem.setVisible(not ready)
        self.findChild(QDialogButtonBox).button(QDialogButtonBox.StandardButton.Ok).setEnabled(ready)
        self.update_preview()

    def update_preview(self, *_args) -> str:
        key = self.checkpoint_combo.currentData()
        step = None
        if key is not None and self._run_dir is not None:
            try:
                step = resolve_checkpoint(self._run_dir, key).get("step")
            except ValueError:
                step = None
        preview = fidelity_preview(self._history, round(self.fidelity.value(), 3), step,
                                   full_latent_size_of_run(self._run_dir) if self._run_dir else None)
        self.preview.setText(preview["sentence"])
        return preview["sentence"]

    def options(self) -> dict:
        if self.remote:
            return super().options()
        return {**super().options(), "checkpoint": self.checkpoint_combo.currentData() or "last",
                "verify": self.verify.isChecked()}
