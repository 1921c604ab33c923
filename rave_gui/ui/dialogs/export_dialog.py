"""ExportDialog: options for `rave export` (streaming, fidelity, output folder)."""
from __future__ import annotations

from PyQt6.QtWidgets import (QCheckBox, QDialog, QDialogButtonBox, QDoubleSpinBox, QFileDialog,
                             QFormLayout, QHBoxLayout, QLabel, QLineEdit, QPushButton, QWidget)


class ExportDialog(QDialog):
    def __init__(self, default_output: str, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Export for nn~ / VST")
        form = QFormLayout(self)
        self.streaming = QCheckBox("Streaming (needed by nn~ and the RAVE VST for real-time use)")
        self.streaming.setChecked(True)
        self.fidelity = QDoubleSpinBox()
        self.fidelity.setRange(0.1, 0.999)
        self.fidelity.setDecimals(3)
        self.fidelity.setSingleStep(0.01)
        self.fidelity.setValue(0.95)
        self.fidelity.setToolTip("Share of the latent variance kept (RAVE's --fidelity, variational models)")
        self.output = QLineEdit(default_output)
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        row = QWidget()
        box = QHBoxLayout(row)
        box.setContentsMargins(0, 0, 0, 0)
        box.addWidget(self.output, 1)
        box.addWidget(browse)
        form.addRow(self.streaming)
        form.addRow("Fidelity:", self.fidelity)
        form.addRow("Output folder:", row)
        form.addRow(QLabel("The export runs in the background; the .ts file's path appears when it is done."))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Export")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export to", self.output.text())
        if folder:
            self.output.setText(folder)

    def options(self) -> dict:
        return {"output_dir": self.output.text().strip() or None, "streaming": self.streaming.isChecked(),
                "fidelity": round(self.fidelity.value(), 3)}
