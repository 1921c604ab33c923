"""Page 1 of the New Training wizard: the dataset to train on."""
from __future__ import annotations

from PyQt6.QtCore import Qt, pyqtSlot
from PyQt6.QtWidgets import (
    QAbstractItemView, QHeaderView, QLabel, QTableWidget, QTableWidgetItem, QVBoxLayout, QWizardPage,
)

from rave_gui.backend.datasets import DatasetManager
from rave_gui.core.formatting import format_channels, format_duration
from rave_gui.core.signals import app_signals
from rave_gui.ui.widgets.messages import error_label, hint_label, set_error

EMPTY_DATASETS = "No datasets yet: create one on the Datasets page."


class DatasetSelectionPage(QWizardPage):
    """The dataset to train on (one row must be selected; the only one is selected
    for you). Follows ``app_signals().dataset_added`` while the wizard is open."""

    COLUMNS = ("Name", "Samples", "Channels", "Sample rate", "Duration")

    def __init__(self, db, parent=None):
        super().__init__(parent)
        self.db = db
        self.setTitle("Choose a dataset")
        self.setSubTitle("The preprocessed audio RAVE will learn from.")
        self._datasets: list[dict] = []

        self.table = QTableWidget(0, len(self.COLUMNS))
        self.table.setHorizontalHeaderLabels(self.COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for col in range(1, len(self.COLUMNS)):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        self.table.itemSelectionChanged.connect(self._selection_changed)
        self.table.doubleClicked.connect(self._double_clicked)

        self.empty_label = QLabel(EMPTY_DATASETS)
        self.empty_label.setWordWrap(True)
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.details = hint_label()
        self.error_label = error_label()

        layout = QVBoxLayout(self)
        layout.addWidget(self.table)
        layout.addWidget(self.empty_label)
        layout.addWidget(self.details)
        layout.addWidget(self.error_label)

        self._listening = False
        self.listen(True)
        self.refresh()

    # -- data ------------------------------------------------------------------
    def refresh(self) -> None:
        """Reload the datasets from the database, keeping the selection
        (or selecting the dataset when there is only one)."""
        keep = self.selected_dataset_id()
        self._datasets = DatasetManager(self.db).list_datasets()
        self.table.blockSignals(True)
        self.table.clearSelection()
        self.table.setRowCount(len(self._datasets))
        for row, ds in enumerate(self._datasets):
            values = (ds["name"], f"{int(ds['num_samples'] or 0):,}", format_channels(ds["channels"]),
                      f"{int(ds['sample_rate'] or 0):,} Hz", format_duration(ds["duration"]))
            for col, value in enumerate(values):
                item = QTableWidgetItem(value)
                item.setData(Qt.ItemDataRole.UserRole, ds["id"])
                item.setToolTip(str(ds["path"]))
                if col:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(row, col, item)
        self.table.blockSignals(False)
        has_any = bool(self._datasets)
        self.table.setVisible(has_any)
        self.empty_label.setVisible(not has_any)
        if keep is not None and self.select_dataset(keep):
            return
        if len(self._datasets) == 1 and self.select_dataset(self._datasets[0]["id"]):
            return
        self._selection_changed()

    def listen(self, on: bool) -> None:
        """Follow ``app_signals().dataset_added`` (on while the wizard is open)."""
        if on and not self._listening:
            app_signals().dataset_added.connect(self._on_dataset_added)
        elif not on and self._listening:
            app_signals().dataset_added.disconnect(self._on_dataset_added)
        self._listening = on

    @pyqtSlot(int)
    def _on_dataset_added(self, dataset_id: int) -> None:
        self.refresh()

    def datasets(self) -> list[dict]:
        return list(self._datasets)

    def selected_dataset(self) -> dict | None:
        rows = self.table.selectionModel().selectedRows() if self.table.selectionModel() else []
        if not rows:
            return None
        row = rows[0].row()
        return dict(self._datasets[row]) if 0 <= row < len(self._datasets) else None

    def selected_dataset_id(self) -> int | None:
        ds = self.selected_dataset()
        return ds["id"] if ds else None

    def select_dataset(self, dataset_id: int) -> bool:
        """Select the row of ``dataset_id``; False when it is not listed."""
        for row, ds in enumerate(self._datasets):
            if ds["id"] == dataset_id:
                self.table.selectRow(row)
                return True
        return False

    # -- wizard ----------------------------------------------------------------
    def _selection_changed(self) -> None:
        ds = self.selected_dataset()
        if ds:
            set_error(self.error_label, "")
            self.details.setText(f"{ds['name']}: {ds['path']}")
        else:
            self.details.setText("")
        self.completeChanged.emit()

    def initializePage(self) -> None:
        if not self._listening:      # the wizard was closed and is shown again
            self.listen(True)
            self.refresh()

    def _double_clicked(self, _index) -> None:
        if self.wizard() is not None and self.isComplete():
            self.wizard().next()

    def isComplete(self) -> bool:
        return self.selected_dataset() is not None

    def validatePage(self) -> bool:
        if self.selected_dataset() is None:
            set_error(self.error_label, "Select the dataset to train on."
                      if self._datasets else EMPTY_DATASETS)
            return False
        return True
