"""ExperimentsTableModel: the experiments table (Qt model/view)."""
from __future__ import annotations

from PyQt6.QtCore import QAbstractTableModel, QModelIndex, Qt

from rave_gui.backend.run_state import RESUMABLE, describe

COLUMNS = ("Name", "Status", "Started", "Steps", "Actions")
COL_NAME, COL_STATUS, COL_STARTED, COL_STEPS, COL_ACTIONS = range(5)
ID_ROLE = Qt.ItemDataRole.UserRole + 1


class ExperimentsTableModel(QAbstractTableModel):
    """Rows are experiment dicts from ``TrainingManager.list_experiments``.

    Only runs whose process the app holds get a Stop action; finished ones get
    Resume; queued ones Start now (the queue order is the table's order).
    """

    def __init__(self, manager, parent=None):
        super().__init__(parent)
        self.manager = manager
        #: health alerts per run ({id: {kind: sentence}}), shared with the RunController
        self.alerts: dict[int, dict[str, str]] = {}
        self._rows: list[dict] = []
        self.refresh()

    # -- data -------------------------------------------------------------
    def refresh(self) -> None:
        """Re-read every row. Rows that come or go are inserted or removed (not
        a model reset), so the view keeps its selection and current row."""
        rows = self.manager.list_experiments()
        old_ids = [exp["id"] for exp in self._rows]
        new_ids = [exp["id"] for exp in rows]
        old_set, new_set = set(old_ids), set(new_ids)
        if [i for i in old_ids if i in new_set] != [i for i in new_ids if i in old_set]:  # reordered
            self.beginResetModel()
            self._rows = rows
            self.endResetModel()
            return
        for row in reversed(range(len(old_ids))):
            if old_ids[row] not in new_set:
                self.beginRemoveRows(QModelIndex(), row, row)
                del self._rows[row]
                self.endRemoveRows()
        for row, exp in enumerate(rows):
            if exp["id"] not in old_set:
                self.beginInsertRows(QModelIndex(), row, row)
                self._rows.insert(row, exp)
                self.endInsertRows()
        self._rows = rows
        if rows:
            self.dataChanged.emit(self.index(0, 0), self.index(len(rows) - 1, len(COLUMNS) - 1))

    def rowCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return COLUMNS[section] if 0 <= section < len(COLUMNS) else None
        return None

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        exp = self._rows[index.row()]
        if role == ID_ROLE:
            return exp["id"]
        flags = self.alerts.get(exp["id"])
        if role == Qt.ItemDataRole.ToolTipRole and (exp.get("error") or flags):
            return "\n".join([*(flags or {}).values(), *([exp["error"]] if exp.get("error") else [])])
        if role != Qt.ItemDataRole.DisplayRole:
            return None
        col = index.column()
        if col == COL_NAME:
            return exp["name"]
        if col == COL_STATUS:
            if flags:
                return "⚠ " + ", ".join(sorted(flags)) + " · " + describe(exp["status"], exp.get("current_step"))
            if exp["status"] == "queued":
                return f"queued #{self._queue_rank(exp['id'])}"
            return describe(exp["status"], exp.get("current_step"))
        if col == COL_STARTED:
            return (exp.get("started_at") or "").replace("T", " ")[:16]
        if col == COL_STEPS:
            total = (exp.get("config") or {}).get("max_steps")
            return f"{exp.get('current_step') or 0:,} / {total:,}" if total else f"{exp.get('current_step') or 0:,}"
        if col == COL_ACTIONS:
            return self.action_for(exp)
        return None

    def _queue_rank(self, experiment_id: int) -> int:
        queued = [e["id"] for e in self._rows if e["status"] == "queued"]
        return queued.index(experiment_id) + 1 if experiment_id in queued else 0

    def action_for(self, exp: dict) -> str:
        if exp["status"] in ("starting", "running") and self.manager.is_active(exp["id"]):
            return "Stop"
        if exp["status"] == "queued":
            return "Start now"
        if exp["status"] in RESUMABLE and exp.get("started_at"):  # a run removed from the queue never ran
            return "Resume"
        return ""

    # -- lookups and row updates -----------------------------------------------------
    def experiments(self) -> list[dict]:
        return list(self._rows)

    def experiment_at(self, row: int) -> dict | None:
        return self._rows[row] if 0 <= row < len(self._rows) else None

    def row_of(self, experiment_id: int) -> int:
        for row, exp in enumerate(self._rows):
            if exp["id"] == experiment_id:
                return row
        return -1

    def update_experiment(self, experiment_id: int) -> None:
        """Re-read one row (status or step changed)."""
        row = self.row_of(experiment_id)
        exp = self.manager.get_experiment(experiment_id)
        if row < 0 or exp is None:
            self.refresh()
            return
        self._rows[row] = exp
        self.dataChanged.emit(self.index(row, 0), self.index(row, len(COLUMNS) - 1))

    def set_step(self, experiment_id: int, step: int) -> None:
        row = self.row_of(experiment_id)
        if row < 0:
            return
        self._rows[row]["current_step"] = step
        idx = self.index(row, COL_STEPS)
        self.dataChanged.emit(idx, idx)
