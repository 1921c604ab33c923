"""ModelsTableModel: the models library, one row per ``.ts``.

It holds the ids (``ModelLibrary.ids``) and fetches a row only when the view asks
for it, keeping it until the next refresh or ``refresh_model`` (Anki's browser
table). What runs on a model right now (a check) is shown through
``set_activity``; the model never starts anything.
"""
from __future__ import annotations

import datetime as _dt
from typing import Any

from PyQt6.QtCore import QAbstractTableModel, QModelIndex, Qt
from PyQt6.QtGui import QColor

COLUMNS = ("Name", "Status", "From", "Step", "Validation", "Streaming", "Fidelity", "Latent dims",
           "Sample rate", "Channels", "Size", "Date", "Location")
ID_ROLE = Qt.ItemDataRole.UserRole
STATUS_TEXT = {"ok": "\u2713 Works", "broken": "\u2717 Broken", "unchecked": "Not checked",
               "missing": "File missing"}
_COLORS = {"broken": QColor("#c0392b"), "missing": QColor("#b9770e")}
_RIGHT = {3, 4, 6, 7, 8, 9, 10}


def _date(value) -> str:
    if not value:
        return "\u2014"
    try:
        return _dt.datetime.fromisoformat(str(value)).strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return str(value)


def source_text(model: dict) -> str:
    if model.get("source") == "import":
        return "Imported"
    run = model.get("run_name") or "a deleted run"
    checkpoint = model.get("checkpoint")
    return f"{run} \u00b7 {checkpoint}" if checkpoint else run


def cell_text(model: dict, column: int) -> str:
    dash = "\u2014"
    if column == 0:
        return model["display_name"]
    if column == 1:
        return STATUS_TEXT.get(model["status"], model["status"])
    if column == 2:
        return source_text(model)
    if column == 3:
        return f"{model['step']:,}" if model.get("step") is not None else dash
    if column == 4:
        return f"{model['validation']:.4g}" if model.get("validation") is not None else dash
    if column == 5:
        return {1: "yes", 0: "no"}.get(model.get("streaming"), "?")
    if column == 6:
        return f"{model['fidelity']:g}" if model.get("fidelity") is not None else dash
    if column == 7:
        latent, full = model.get("latent_size"), model.get("full_latent_size")
        if latent is None:
            return dash
        return f"{latent} of {full}" if full else str(latent)
    if column == 8:
        return f"{model['sample_rate']:,} Hz" if model.get("sample_rate") else dash
    if column == 9:
        return str(model["channels"]) if model.get("channels") else dash
    if column == 10:
        size = model.get("size_bytes")
        return f"{size / 1e6:.1f} MB" if size else dash
    if column == 11:
        return _date(model.get("created_at"))
    if column == 12:
        return model["path"]
    return ""


class ModelsTableModel(QAbstractTableModel):
    def __init__(self, library, parent=None):
        super().__init__(parent)
        self.library = library
        self._ids: list[int] = []
        self._rows: dict[int, dict] = {}
        self._activity: dict[int, str] = {}
        self.fetched = 0   # rows read from the library since the last refresh (for tests)

    # -- content -------------------------------------------------------------------------
    def refresh(self) -> None:
        self.beginResetModel()
        self._ids = self.library.ids()
        self._rows.clear()
        self.fetched = 0
        self.endResetModel()

    def refresh_model(self, model_id: int) -> None:
        """Read one model again (after a check, a rename)."""
        self._rows.pop(model_id, None)
        row = self.row_of(model_id)
        if row >= 0:
            self.dataChanged.emit(self.index(row, 0), self.index(row, len(COLUMNS) - 1))

    def set_activity(self, model_id: int, text: str) -> None:
        """What runs on a model now ("Checking… 40 %"), shown as its status; "" clears."""
        if text:
            self._activity[model_id] = text
        else:
            self._activity.pop(model_id, None)
        self.refresh_model(model_id)

    def model_at(self, row: int) -> dict | None:
        if not 0 <= row < len(self._ids):
            return None
        model_id = self._ids[row]
        if model_id not in self._rows:
            model = self.library.get(model_id)
            if model is None:
                return None
            self._rows[model_id] = model
            self.fetched += 1
        return self._rows[model_id]

    def id_at(self, row: int) -> int | None:
        return self._ids[row] if 0 <= row < len(self._ids) else None

    def row_of(self, model_id: int) -> int:
        try:
            return self._ids.index(model_id)
        except ValueError:
            return -1

    # -- Qt model ---------------------------------------------------------------------------
    def rowCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: N802 - Qt's name
        return 0 if parent.isValid() else len(self._ids)

    def columnCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: N802 - Qt's name
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation, role=Qt.ItemDataRole.DisplayRole) -> Any:  # noqa: N802
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return COLUMNS[section]
        return None

    def data(self, index: QModelIndex, role=Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        model_id = self.id_at(index.row())
        if role == ID_ROLE:
            return model_id
        model = self.model_at(index.row())
        if model is None:
            return None
        column = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            if column == 1 and model_id in self._activity:
                return self._activity[model_id]
            return cell_text(model, column)
        if role == Qt.ItemDataRole.ToolTipRole:
            if column == 1:
                if model["status"] == "missing":
                    return f"The file is no longer at {model['path']}. Put it back, or remove the model."
                return model.get("check_message") or "Not checked yet."
            if column == 12:
                return model["path"]
            if column == 7:
                return ("Latent dimensions the model exposes (of the encoder's full size): the knobs nn~ and "
                        "the VST show. RAVE rounds the fidelity's count up to a power of two.")
        if role == Qt.ItemDataRole.ForegroundRole and column == 1:
            return _COLORS.get(model["status"])
        if role == Qt.ItemDataRole.TextAlignmentRole and column in _RIGHT:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None
