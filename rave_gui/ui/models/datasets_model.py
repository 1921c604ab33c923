"""DatasetsTableModel: the datasets the Datasets page lists, one row each.

It holds the rows ``DatasetManager.list_datasets`` returns (plus the example
count read from each LMDB) and formats them; it never touches the database.
"""
from __future__ import annotations

import datetime as _dt
from typing import Any

from PyQt6.QtCore import QAbstractTableModel, QModelIndex, Qt

from rave_gui.core.formatting import format_channels, format_clock

COLUMNS = ("Name", "Duration", "Examples", "Channels", "Sample rate", "Path", "Created", "Used by")
ID_ROLE = Qt.ItemDataRole.UserRole
_RIGHT = {1, 2, 4, 7}


def format_duration(seconds: float | None) -> str:
    """h:mm:ss rounded to the second (``0:00:30`` for 29.7 s)."""
    return format_clock(None if seconds is None else round(float(seconds)))


def format_created(value: str | None) -> str:
    if not value:
        return "\u2014"
    try:
        return _dt.datetime.fromisoformat(str(value)).strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return str(value)


class DatasetsTableModel(QAbstractTableModel):
    def __init__(self, parent=None):
        super().__init__(parent)
        self._rows: list[dict] = []

    # -- content -----------------------------------------------------------------
    def set_datasets(self, rows: list[dict]) -> None:
        self.beginResetModel()
        self._rows = [dict(r) for r in rows]
        self.endResetModel()

    def dataset_at(self, row: int) -> dict | None:
        return dict(self._rows[row]) if 0 <= row < len(self._rows) else None

    def row_of(self, dataset_id: int) -> int:
        for row, ds in enumerate(self._rows):
            if ds["id"] == dataset_id:
                return row
        return -1

    # -- Qt model ------------------------------------------------------------------
    def rowCount(self, parent: QModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: QModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation, role=Qt.ItemDataRole.DisplayRole) -> Any:
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return COLUMNS[section]
        return None

    def data(self, index: QModelIndex, role=Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        ds = self._rows[index.row()]
        column = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(ds, column)
        if role == ID_ROLE:
            return ds["id"]
        if role == Qt.ItemDataRole.ToolTipRole:
            if column == 5:
                return ds.get("path")
            if column == 2:
                return ("Examples RAVE stored (each 2 \u00d7 num_signal samples); "
                        f"{int(ds.get('num_samples') or 0):,} samples in all.")
            if column == 7:
                return "Experiments that train on this dataset."
        if role == Qt.ItemDataRole.TextAlignmentRole and column in _RIGHT:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    @staticmethod
    def _text(ds: dict, column: int) -> str:
        if column == 0:
            return ds.get("name") or ""
        if column == 1:
            return format_duration(ds.get("duration"))
        if column == 2:
            examples = ds.get("examples")
            return f"{examples:,}" if examples is not None else "\u2014"
        if column == 3:
            return format_channels(ds.get("channels"))
        if column == 4:
            return f"{int(ds.get('sample_rate') or 0):,} Hz"
        if column == 5:
            return ds.get("path") or ""
        if column == 6:
            return format_created(ds.get("created_at"))
        used = int(ds.get("used_by") or 0)
        return f"{used} experiment{'s' if used != 1 else ''}"
