"""ExperimentsTableModel: the experiments table (Qt model/view), loaded lazily.

The model holds every experiment's id in the table's order, but shows (Qt's
``canFetchMore``/``fetchMore``) and reads records a page of ``PAGE`` rows at a
time, as a view scrolls to them: a table of 1 000 runs opens with one page
read, and a view sizing its columns to their contents looks at the shown rows
only. Updates touch what changed: ``refresh`` inserts, removes and re-reads
the shown rows and signals only the rows whose cells changed.
"""
from __future__ import annotations

import datetime as _dt

from PyQt6.QtCore import QAbstractTableModel, QModelIndex, Qt

from rave_gui.backend.experiment_list import experiment_ids, experiments_by_id
from rave_gui.backend.run_state import RESUMABLE, describe

COLUMNS = ("Name", "Status", "Started", "Steps", "Actions")
COL_NAME, COL_STATUS, COL_STARTED, COL_STEPS, COL_ACTIONS = range(5)
ID_ROLE = Qt.ItemDataRole.UserRole + 1
PAGE = 100  # rows shown, and records read, at a time
_DISPLAY, _TOOLTIP = Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole
_ROLES = frozenset((_DISPLAY, _TOOLTIP, ID_ROLE))


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
    """Rows are experiment dicts (as ``TrainingManager.get_experiment`` returns).

    Only runs whose process the app holds get a Stop action; finished ones get
    Resume; queued ones Start now (the queue order is the table's order).
    """

    def __init__(self, manager, parent=None):
        super().__init__(parent)
        self.manager = manager
        #: health alerts per run ({id: {kind: sentence}}), shared with the RunController
        self.alerts: dict[int, dict[str, str]] = {}
        #: what a live run's process is doing ({id: sentence}: a Slurm job's wait), shared with the RunController
        self.notes: dict[int, str] = {}
        self._ids: list[int] = []          # every experiment, in the table's order
        self._index_of: dict[int, int] | None = {}  # id -> its place in _ids (see _index)
        self._shown = 0                    # rows 0.._shown-1 are in the model (fetchMore)
        self._rows: dict[int, dict] = {}   # the records read so far
        self._text: dict[int, tuple] = {}  # id -> (name, started, steps): the cells' strings
        self._seen: dict[int, tuple] = {}  # id -> what its row showed when last signalled
        self.refresh()

    # -- data -------------------------------------------------------------
    def refresh(self) -> None:
        """Re-read the table. Rows that come or go are inserted or removed (not a
        model reset), so the view keeps its selection and current row; a changed
        order is a reset. The shown rows are re-read; rows whose cells changed
        are signalled."""
        new_ids = experiment_ids(self.manager)
        old_ids = list(self._ids)
        new_set, old_set = set(new_ids), set(old_ids)
        if not old_ids or [i for i in old_ids if i in new_set] != [i for i in new_ids if i in old_set]:
            self.beginResetModel()  # the first read, or a new order
            self._set_ids(new_ids)
            self._shown = min(len(new_ids), max(PAGE, self._shown))
            self._rows, self._text = {}, {}
            self._read(self._ids[:self._shown])
            self._seen = {i: self._cells(i) for i in self._ids[:self._shown]}
            self.endResetModel()
            return
        for row in reversed(range(len(old_ids))):
            if old_ids[row] not in new_set:
                shown = row < self._shown
                if shown:
                    self.beginRemoveRows(QModelIndex(), row, row)
                del old_ids[row]
                self._set_ids(old_ids)
                if shown:
                    self._shown -= 1
                    self.endRemoveRows()
        for row, exp_id in enumerate(new_ids):
            if exp_id not in old_set:
                shown = row < self._shown or (row == self._shown and self._shown < PAGE)
                if shown:
                    self.beginInsertRows(QModelIndex(), row, row)
                old_ids.insert(row, exp_id)
                self._set_ids(old_ids)
                if shown:
                    self._read([exp_id])
                    self._seen[exp_id] = self._cells(exp_id)
                    self._shown += 1
                    self.endInsertRows()
        self._set_ids(new_ids)
        self._show_up_to(min(PAGE, len(new_ids)) - 1)  # rows removed: the first page stays full
        self._rows, self._text = {}, {}
        self._read(self._ids[:self._shown])
        now = {i: self._cells(i) for i in self._ids[:self._shown]}
        changed = [row for row, i in enumerate(self._ids[:self._shown]) if self._seen.get(i) != now[i]]
        self._seen = now
        for first, last in _runs(changed):
            self.dataChanged.emit(self.index(first, 0), self.index(last, len(COLUMNS) - 1))

    def rowCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else self._shown

    def columnCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(COLUMNS)

    def canFetchMore(self, parent=QModelIndex()) -> bool:
        return not parent.isValid() and self._shown < len(self._ids)

    def fetchMore(self, parent=QModelIndex()) -> None:
        if parent.isValid():
            return
        self._show_up_to(min(len(self._ids), self._shown + PAGE) - 1)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):
        if role == _DISPLAY and orientation == Qt.Orientation.Horizontal:
            return COLUMNS[section] if 0 <= section < len(COLUMNS) else None
        return None

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if role not in _ROLES:  # most of what a view asks (fonts, colours, sizes): nothing
            return None
        row = index.row()
        if not index.isValid() or not 0 <= row < self._shown:
            return None
        exp_id = self._ids[row]
        if role == ID_ROLE:
            return exp_id
        exp = self._record(row)
        if exp is None:
            return None
        flags = self.alerts.get(exp_id)
        if role == _TOOLTIP:  # the whole story; the cells stay short
            lines = [*(flags or {}).values(), *([exp["error"]] if exp.get("error") else [])]
            if self.notes.get(exp_id) and exp["status"] in ("starting", "running"):
                lines.insert(0, self.notes[exp_id])
            if exp["status"] == "stopping":
                lines.insert(0, describe(exp["status"], exp.get("current_step")))
            return "\n".join(lines) or None
        col = index.column()
        if col == COL_STATUS:
            status = f"queued #{self._queue_rank(exp_id)}" if exp["status"] == "queued" else (
                "stopping…" if exp["status"] == "stopping" else exp["status"])
            if exp["status"] in ("starting", "running") and self.notes.get(exp_id, "").startswith("pending"):
                status = "pending (Slurm)"  # the tooltip says why
            return f"⚠ {status}" if flags else status
        if col == COL_ACTIONS:
            return self.action_for(exp)
        text = self._text.get(exp_id)
        if text is None:
            text = self._text[exp_id] = _texts(exp)
        return text[(COL_NAME, COL_STARTED, COL_STEPS).index(col)] if col in (COL_NAME, COL_STARTED, COL_STEPS) \
            else None

    def _queue_rank(self, experiment_id: int) -> int:
        """Its place in the queue (queued rows come first, in queue order)."""
        rank = 0
        for exp_id in self._ids:
            exp = self._rows.get(exp_id) or self._record(self._index[exp_id])
            if exp is None or exp["status"] != "queued":
                continue
            rank += 1
            if exp_id == experiment_id:
                return rank
        return 0

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
        """Every experiment (shown or not), in the table's order."""
        self._read([i for i in self._ids if i not in self._rows])
        return [self._rows[i] for i in self._ids if i in self._rows]

    def experiment_at(self, row: int) -> dict | None:
        return self._record(row) if 0 <= row < self._shown else None

    def row_of(self, experiment_id: int) -> int:
        """Its row (shown from now on, with the rows before it), or -1."""
        row = self._index.get(experiment_id, -1)
        if row >= self._shown:
            self._show_up_to(row)
        return row

    def update_experiment(self, experiment_id: int) -> None:
        """Re-read one row (status or step changed)."""
        exp = self.manager.get_experiment(experiment_id)
        row = self._index.get(experiment_id, -1)
        if row < 0 or exp is None:
            self.refresh()
            return
        self._rows[experiment_id] = exp
        self._text.pop(experiment_id, None)
        if row < self._shown:
            self._seen[experiment_id] = self._cells(experiment_id)
            self.dataChanged.emit(self.index(row, 0), self.index(row, len(COLUMNS) - 1))

    def set_step(self, experiment_id: int, step: int) -> None:
        row = self._index.get(experiment_id, -1)
        exp = self._rows.get(experiment_id)
        if row < 0 or exp is None:
            return  # not read yet: it will be read with its step
        exp["current_step"] = step
        self._text.pop(experiment_id, None)
        if row < self._shown:
            self._seen[experiment_id] = self._cells(experiment_id)
            idx = self.index(row, COL_STEPS)
            self.dataChanged.emit(idx, idx)

    # -- reading ----------------------------------------------------------------------------
    def _set_ids(self, ids: list[int]) -> None:
        self._ids = list(ids)
        self._index_of = None  # rebuilt when next asked

    @property
    def _index(self) -> dict[int, int]:
        if self._index_of is None:
            self._index_of = {exp_id: row for row, exp_id in enumerate(self._ids)}
        return self._index_of

    def _show_up_to(self, row: int) -> None:
        """Show rows up to ``row`` (Qt's fetchMore), reading their records."""
        if row < self._shown:
            return
        first = self._shown
        self.beginInsertRows(QModelIndex(), first, row)
        self._shown = row + 1
        self._read([i for i in self._ids[first:row + 1] if i not in self._rows])
        self._seen.update((i, self._cells(i)) for i in self._ids[first:row + 1])
        self.endInsertRows()

    def _record(self, row: int) -> dict | None:
        exp_id = self._ids[row]
        exp = self._rows.get(exp_id)
        if exp is None:  # a page around it, in one query
            start = row - row % PAGE
            self._read([i for i in self._ids[start:start + PAGE] if i not in self._rows])
            exp = self._rows.get(exp_id)
        return exp

    def _read(self, ids: list[int]) -> None:
        if ids:
            self._rows.update(experiments_by_id(self.manager, ids))

    def _cells(self, exp_id: int) -> tuple | None:
        """What the row shows (its cells, tooltip and action), to tell a change."""
        exp = self._rows.get(exp_id)
        if exp is None:
            return None
        return (_texts(exp), exp["status"], exp.get("error"), self.action_for(exp),
                tuple(sorted((self.alerts.get(exp_id) or {}).items())), self.notes.get(exp_id))


def _texts(exp: dict) -> tuple[str, str, str]:
    """The Name, Started and Steps cells of a row."""
    total = (exp.get("config") or {}).get("max_steps")
    done = count(exp.get("current_step") or 0)
    return exp["name"], short_time(exp.get("started_at")), f"{done} / {count(total)}" if total else done


def _runs(rows: list[int]):
    """Consecutive runs (first, last) of sorted row numbers."""
    start = prev = None
    for row in rows:
        if start is None:
            start = prev = row
        elif row == prev + 1:
            prev = row
        else:
            yield start, prev
            start = prev = row
    if start is not None:
        yield start, prev
