# Frozen copy of rave_gui/ui/models/experiments_model.py at commit 9160fe8 (before issue 14), for side-by-side benchmarks only.
"""ExperimentsTableModel: the experiments table (Qt model/view)."""
from __future__ import annotations

import datetime as _dt

from PyQt6.QtCore import QAbstractTableModel, QModelIndex, Qt

from rave_gui.backend.run_state import RESUMABLE, describe

COLUMNS = ("Name", "Status", "Started", "Steps", "Actions")
COL_NAME, COL_STATUS, COL_STARTED, COL_STEPS, COL_ACTIONS = range(5)
ID_ROLE = Qt.ItemDataRole.UserRole + 1


def count(n: int) -> str:
    """Steps, short enough for the table: 1,234 · 123k · 1.5M."""
    n = int(n)
    if n < 10_000:
        return f"{n:,}"
    if n < 1_000_000:
        return f"{n / 1000:.0f}k" if n % 1000 == 0 or n >= 100_000 else f"{n / 1000:.1f}k"
    return f"{n / 1e6:.1f}M".replace(".0M", "M")


def short_time(iso: str | None) -> str:
    """'11-29 14:05' this year, '2025-11-29' before."""
    if not iso:
        return ""
    try:
        when = _dt.datetime.fromisoformat(iso)
    except ValueError:
        return iso[:16].replace("T", " ")
    return when.strftime("%m-%d %H:%M") if when.year == _dt.date.today().year else when.strftime("%Y-%m-%d")


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
        if role == Qt.ItemDataRole.ToolTipRole:  # the whole story; the cells stay short
            lines = [*(flags or {}).values(), *([exp["error"]] if exp.get("error") else [])]
            if exp["status"] == "stopping":
                lines.insert(0, describe(exp["status"], exp.get("current_step")))
            return "\n".join(lines) or None
        if role != Qt.ItemDataRole.DisplayRole:
            return None
        col = index.column()
        if col == COL_NAME:
            return exp["name"]
        if col == COL_STATUS:
            status = f"queued #{self._queue_rank(exp['id'])}" if exp["status"] == "queued" else (
                "stopping…" if exp["status"] == "stopping" else exp["status"])
            return f"⚠ {status}" if flags else status
        if col == COL_STARTED:
            return short_time(exp.get("started_at"))
        if col == COL_STEPS:
            total = (exp.get("config") or {}).get("max_steps")
            done = count(exp.get("current_step") or 0)
            return f"{done} / {count(total)}" if total else done
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
