"""The Datasets page: the preprocessed datasets, and ways to add or remove one.

Dialogs open with ``open()`` (never ``exec()``) so the tests can drive them;
errors appear in a message box and stay in ``last_error``.
"""
from __future__ import annotations

from pathlib import Path

from PyQt6.QtCore import QUrl, Qt, pyqtSlot
from PyQt6.QtGui import QDesktopServices
from PyQt6.QtWidgets import (QAbstractItemView, QCheckBox, QFileDialog, QHBoxLayout, QHeaderView,
                             QLabel, QMessageBox, QPushButton, QStackedWidget, QTableView,
                             QVBoxLayout, QWidget)

from rave_gui.backend.datasets import DatasetManager, count_examples
from rave_gui.core.signals import app_signals
from rave_gui.ui.dialogs.new_dataset import NewDatasetDialog
from rave_gui.ui.models.datasets_model import DatasetsTableModel

EMPTY_TEXT = "Add a folder of audio to get started"
EMPTY_HINT = ("RAVE GUI turns it into a dataset with `rave preprocess`. "
              "Already have a preprocessed folder? Import it instead.")


class DatasetsPage(QWidget):
    def __init__(self, db, parent=None):
        super().__init__(parent)
        self.db = db
        self.manager = DatasetManager(db)
        self.model = DatasetsTableModel(self)
        self.new_dialog: NewDatasetDialog | None = None
        self.remove_box: QMessageBox | None = None
        self.last_error: str | None = None
        self._build()
        signals = app_signals()
        signals.dataset_added.connect(self._on_datasets_changed)
        signals.dataset_removed.connect(self._on_datasets_changed)
        self.refresh()

    def _build(self) -> None:
        self.new_button = QPushButton("New from audio\u2026")
        self.import_button = QPushButton("Import preprocessed folder\u2026")
        self.reveal_button = QPushButton("Reveal in file manager")
        self.remove_button = QPushButton("Remove\u2026")
        self.new_button.clicked.connect(self.open_new_dialog)
        self.import_button.clicked.connect(self._pick_import_folder)
        self.reveal_button.clicked.connect(self.reveal_selected)
        self.remove_button.clicked.connect(self.ask_remove_selected)
        toolbar = QHBoxLayout()
        for button in (self.new_button, self.import_button, self.reveal_button, self.remove_button):
            toolbar.addWidget(button)
        toolbar.addStretch()

        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setSectionResizeMode(5, QHeaderView.ResizeMode.Stretch)
        self.table.selectionModel().selectionChanged.connect(self._update_buttons)
        table_page = QWidget()
        table_layout = QVBoxLayout(table_page)
        table_layout.addLayout(toolbar)
        table_layout.addWidget(self.table)

        self.empty_label = QLabel(EMPTY_TEXT)
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_label.setStyleSheet("font-size: 16pt;")
        hint = QLabel(EMPTY_HINT)
        hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        hint.setWordWrap(True)
        self.empty_new_button = QPushButton("New from audio\u2026")
        self.empty_new_button.clicked.connect(self.open_new_dialog)
        self.empty_import_button = QPushButton("Import preprocessed folder\u2026")
        self.empty_import_button.clicked.connect(self._pick_import_folder)
        empty_page = QWidget()
        empty = QVBoxLayout(empty_page)
        empty.addStretch()
        empty.addWidget(self.empty_label)
        empty.addWidget(hint)
        for button in (self.empty_new_button, self.empty_import_button):
            row = QHBoxLayout()
            row.addStretch()
            row.addWidget(button)
            row.addStretch()
            empty.addLayout(row)
        empty.addStretch()

        self.stack = QStackedWidget()
        self.stack.addWidget(empty_page)
        self.stack.addWidget(table_page)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.stack)

    # -- content ---------------------------------------------------------------------
    def refresh(self) -> None:
        keep = self.selected_dataset_id()
        rows = self.manager.list_datasets()
        for row in rows:
            row["examples"] = count_examples(row["path"])
        self.model.set_datasets(rows)
        self.stack.setCurrentIndex(1 if rows else 0)
        if keep is not None:
            self.select_dataset(keep)
        self._update_buttons()

    def is_empty_state(self) -> bool:
        return self.stack.currentIndex() == 0

    @pyqtSlot(int)
    def _on_datasets_changed(self, _dataset_id: int) -> None:
        self.refresh()

    def selected_dataset_id(self) -> int | None:
        rows = self.table.selectionModel().selectedRows()
        ds = self.model.dataset_at(rows[0].row()) if rows else None
        return ds["id"] if ds else None

    def select_dataset(self, dataset_id: int) -> bool:
        row = self.model.row_of(dataset_id)
        if row < 0:
            return False
        self.table.selectRow(row)
        return True

    def _update_buttons(self, *_args) -> None:
        selected = self.selected_dataset_id() is not None
        self.reveal_button.setEnabled(selected)
        self.remove_button.setEnabled(selected)

    # -- actions -------------------------------------------------------------------------
    def open_new_dialog(self) -> NewDatasetDialog:
        dialog = NewDatasetDialog(self.db, self)
        dialog.accepted.connect(lambda: self._dataset_created(dialog.dataset_id))
        dialog.finished.connect(dialog.deleteLater)
        self.new_dialog = dialog
        dialog.open()
        return dialog

    def _dataset_created(self, dataset_id: int | None) -> None:
        self.refresh()
        if dataset_id is not None:
            self.select_dataset(dataset_id)

    def _pick_import_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Import a preprocessed RAVE dataset")
        if path:
            self.import_folder(path)

    def import_folder(self, path) -> int | None:
        """Register a folder ``rave preprocess`` wrote; None (and a message) if refused."""
        try:
            dataset_id = self.manager.register(path)
        except (ValueError, OSError) as exc:  # OSError: a folder that fails while it is read
            self.show_error("Could not import the dataset", str(exc))
            return None
        app_signals().dataset_added.emit(dataset_id)
        self.select_dataset(dataset_id)
        return dataset_id

    def reveal_selected(self) -> bool:
        dataset = self.manager.get_dataset(self.selected_dataset_id() or -1)
        if dataset is None:
            return False
        folder = Path(dataset["path"])
        try:
            present = folder.is_dir()
        except OSError:
            present = False
        if not present:
            self.show_error("Folder not found", f"The folder {folder} no longer exists. "
                            "Remove the dataset, or put its folder back.")
            return False
        return QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))

    def ask_remove_selected(self) -> QMessageBox | None:
        """Confirm (with "also delete the files"), or say why it cannot be removed."""
        dataset_id = self.selected_dataset_id()
        if dataset_id is None:
            return None
        blocker = self.manager.removal_blocker(dataset_id)
        if blocker:
            self.show_error("Cannot remove the dataset", blocker)
            return None
        name = self.manager.get_dataset(dataset_id)["name"]
        box = QMessageBox(QMessageBox.Icon.Question, "Remove dataset",
                          f"Remove \u201c{name}\u201d from the list?",
                          QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel, self)
        # parented to the box: setCheckBox alone leaves the check box owned by Python
        box.setCheckBox(QCheckBox("Also delete the files (data.mdb, lock.mdb, metadata.yaml)", box))
        box.finished.connect(lambda _result: self._remove_answered(box, dataset_id))
        self.remove_box = box
        box.open()
        return box

    def _remove_answered(self, box: QMessageBox, dataset_id: int) -> None:
        if box.clickedButton() is box.button(QMessageBox.StandardButton.Yes):
            self.remove_dataset(dataset_id, box.checkBox().isChecked())
        self.remove_box = None
        box.deleteLater()

    def remove_dataset(self, dataset_id: int, delete_files: bool = False) -> bool:
        try:
            self.manager.remove_dataset(dataset_id, delete_files=delete_files)
        except (ValueError, OSError) as exc:
            self.show_error("Cannot remove the dataset", str(exc))
            if self.manager.get_dataset(dataset_id) is None:  # removed; only the files stayed
                app_signals().dataset_removed.emit(dataset_id)
            return False
        app_signals().dataset_removed.emit(dataset_id)
        return True

    def show_error(self, title: str, message: str) -> QMessageBox:
        self.last_error = message
        box = QMessageBox(QMessageBox.Icon.Warning, title, message, QMessageBox.StandardButton.Ok, self)
        box.finished.connect(box.deleteLater)
        box.open()
        return box
