"""The run's checkpoints: file, step, validation loss, size, time; best and resume marked."""
from __future__ import annotations

import datetime as _dt

from PyQt6.QtCore import pyqtSignal
from PyQt6.QtWidgets import (QAbstractItemView, QHBoxLayout, QPushButton, QTableWidget,
                             QTableWidgetItem, QVBoxLayout, QWidget)

HEADERS = ("File", "Step", "Validation loss", "Size", "Saved", "")


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


class CheckpointsView(QWidget):
    """A small static table (QTableWidget is fine: a run has a handful)."""

    delete_requested = pyqtSignal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.table = QTableWidget(0, len(HEADERS))
        self.table.setHorizontalHeaderLabels(HEADERS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.delete_button = QPushButton("Delete selected checkpoint")
        self.delete_button.clicked.connect(self._delete_selected)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(self.delete_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table)
        layout.addLayout(row)
        self._checkpoints: list[dict] = []

    def set_checkpoints(self, checkpoints: list[dict]) -> None:
        self._checkpoints = list(checkpoints)
        self.table.setRowCount(len(checkpoints))
        for r, c in enumerate(checkpoints):
            marks = ", ".join(m for m, on in (("best", c["best"]), ("resume starts here", c["resume"])) if on)
            cells = (f"{c['version']}/{c['file']}", "" if c["step"] is None else f"{c['step']:,}",
                     "" if c["validation"] is None else f"{c['validation']:.4g}", _size(c["size"]),
                     _dt.datetime.fromtimestamp(c["mtime"]).strftime("%Y-%m-%d %H:%M"), marks)
            for col, text in enumerate(cells):
                self.table.setItem(r, col, QTableWidgetItem(text))
        self.table.resizeColumnsToContents()

    def checkpoints(self) -> list[dict]:
        return list(self._checkpoints)

    def _delete_selected(self) -> None:
        rows = self.table.selectionModel().selectedRows()
        if rows:
            self.delete_requested.emit(self._checkpoints[rows[0].row()]["path"])
