"""The Models page: every exported ``.ts`` (this app's exports and files imported
from disk), whether it works, and a place to hear it on your own sound.

The table lists the library (``ModelLibrary``) lazily; a model is checked in a
subprocess with torch when it arrives (an import, an export, one never checked)
and again on request, and a failed check shows as "Broken" with its sentence:
nothing is hidden. Rename, delete (record, or record and file) and reveal act
on the selected model; "Export a run…" exports a chosen checkpoint through the
RunController. The "Try it" panel below reconstructs an audio file with the
selected model. Every process belongs to ``ModelJobs`` or the RunController; the
page only calls them. Dialogs open with ``open()`` so tests can drive them;
errors appear in a message box and stay in ``last_error``.
"""
from __future__ import annotations

from pathlib import Path

from PyQt6.QtCore import Qt, QUrl
from PyQt6.QtGui import QDesktopServices
from PyQt6.QtWidgets import (QAbstractItemView, QCheckBox, QDialog, QDialogButtonBox, QFileDialog, QFormLayout,
                             QHBoxLayout, QHeaderView, QLabel, QLineEdit, QMessageBox, QPushButton, QSplitter,
                             QTableView, QVBoxLayout, QWidget)

from rave_gui.backend.model_tool_process import ModelJobs
from rave_gui.backend.models import ModelLibrary
from rave_gui.ui.models.models_table import ModelsTableModel
from rave_gui.ui.widgets.messages import hint_label
from rave_gui.ui.widgets.try_panel import TryPanel

EMPTY_HINT = ("No models yet. Export a run (Training page, or \u201cExport a run\u2026\u201d here), or import "
              "a .ts file you already have.")


class ModelsPage(QWidget):
    def __init__(self, db, controller=None, parent=None, *, auto_check: bool = True, python: str | None = None):
        super().__init__(parent)
        self.db = db
        self.controller = controller
        self.auto_check = auto_check
        self.library = ModelLibrary(db)
        self.jobs = ModelJobs(self.library, work_dir=Path(db.path).parent / "model-tries", python=python,
                              parent=self)
        self.manager = controller.manager if controller is not None else None
        self.model = ModelsTableModel(self.library, self)
        self.last_error: str | None = None
        self.delete_box: QMessageBox | None = None
        self.rename_dialog: QDialog | None = None
        self.export_dialog = None
        self._build()
        self.jobs.check_started.connect(lambda m: self.model.set_activity(m, "Checking\u2026"))
        self.jobs.check_progress.connect(lambda m, pct, _what: self.model.set_activity(m, f"Checking\u2026 {pct} %"))
        self.jobs.check_done.connect(self._on_check_done)
        if controller is not None:
            controller.export_done.connect(self._on_export_done)
        self.refresh()

    # -- building ----------------------------------------------------------------------------
    def _build(self) -> None:
        self.import_button = QPushButton("Import .ts\u2026")
        self.export_button = QPushButton("Export a run\u2026")
        self.rename_button = QPushButton("Rename\u2026")
        self.delete_button = QPushButton("Delete\u2026")
        self.reveal_button = QPushButton("Reveal in file manager")
        self.check_button = QPushButton("Check again")
        self.import_button.clicked.connect(self._pick_import)
        self.export_button.clicked.connect(lambda: self.open_export_dialog())
        self.rename_button.clicked.connect(self.ask_rename_selected)
        self.delete_button.clicked.connect(self.ask_delete_selected)
        self.reveal_button.clicked.connect(self.reveal_selected)
        self.check_button.clicked.connect(self.check_selected)
        self.export_button.setEnabled(self.controller is not None)
        self.export_button.setToolTip("Export from a chosen checkpoint (best, last or any), checked afterwards.")
        toolbar = QHBoxLayout()
        for button in (self.import_button, self.export_button, self.rename_button, self.delete_button,
                       self.reveal_button, self.check_button):
            toolbar.addWidget(button)
        toolbar.addStretch()

        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.setWordWrap(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.table.horizontalHeader().setStretchLastSection(True)
        for column, width in ((0, 220), (1, 110), (2, 200), (11, 130)):
            self.table.setColumnWidth(column, width)
        self.table.selectionModel().selectionChanged.connect(self._on_selection)
        self.table.doubleClicked.connect(lambda _index: self.ask_rename_selected())
        self.empty_label = hint_label(EMPTY_HINT)
        self.detail_label = QLabel("")
        self.detail_label.setWordWrap(True)
        self.detail_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.try_panel = TryPanel(self.jobs)
        top = QWidget()
        column = QVBoxLayout(top)
        column.setContentsMargins(0, 0, 0, 0)
        column.addLayout(toolbar)
        column.addWidget(self.empty_label)
        column.addWidget(self.table, 1)
        column.addWidget(self.detail_label)
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(top)
        splitter.addWidget(self.try_panel)
        splitter.setStretchFactor(0, 2)
        splitter.setStretchFactor(1, 3)
        layout = QVBoxLayout(self)
        layout.addWidget(splitter)

    # -- content -----------------------------------------------------------------------------
    def refresh(self) -> None:
        selected = self.selected_id()
        self.model.refresh()
        self.empty_label.setVisible(self.model.rowCount() == 0)
        if selected is not None:
            self.select_model(selected)
        self._on_selection()
        if self.auto_check:
            self.jobs.verify_unchecked()

    def selected_id(self) -> int | None:
        rows = self.table.selectionModel().selectedRows()
        return self.model.id_at(rows[0].row()) if rows else None

    def selected_model(self) -> dict | None:
        model_id = self.selected_id()
        return self.library.get(model_id) if model_id is not None else None

    def select_model(self, model_id: int) -> bool:
        row = self.model.row_of(model_id)
        if row < 0:
            return False
        self.table.selectRow(row)
        return True

    def _on_selection(self, *_args) -> None:
        model = self.selected_model()
        has = model is not None
        for button in (self.rename_button, self.delete_button, self.reveal_button):
            button.setEnabled(has)
        self.check_button.setEnabled(has and not model["missing"])
        if model is None:
            self.detail_label.setText("")
            self.try_panel.set_model(None)
            return
        self.detail_label.setText(self._details(model))
        run_dir = None
        if model.get("experiment_id") is not None and self.manager is not None:
            exp = self.manager.get_experiment(model["experiment_id"])
            run_dir = self.manager.paths(exp).run_dir if exp and exp.get("out_dir") else None
        if self.try_panel.model is None or self.try_panel.model.get("id") != model["id"]:
            self.try_panel.set_model(model, str(run_dir) if run_dir else None, model.get("channels") or 1)
        else:
            self.try_panel.model = model

    @staticmethod
    def _details(model: dict) -> str:
        if model["status"] == "missing":
            status = "The file is missing: put it back where it was, or delete the model from the library."
        elif model["status"] == "unchecked":
            status = "Not checked yet."
        else:
            status = model.get("check_message") or ""
        return f"{model['path']}\n{status}"

    # -- actions -----------------------------------------------------------------------------
    def _pick_import(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Import exported RAVE models", str(Path.home()),
                                                "TorchScript models (*.ts);;All files (*)")
        for path in paths:
            self.import_model(path)

    def import_model(self, path) -> int | None:
        """Add a .ts to the library and check it; None (and a message) if refused."""
        try:
            model_id = self.library.import_file(path)
        except ValueError as exc:
            self.show_error("Could not import the model", str(exc))
            return None
        self.model.refresh()
        self.empty_label.setVisible(False)
        self.select_model(model_id)
        if self.auto_check:
            self.jobs.verify(model_id)
        return model_id

    def check_selected(self) -> bool:
        model_id = self.selected_id()
        if model_id is None:
            return False
        try:
            self.jobs.verify(model_id)
        except ValueError as exc:
            self.show_error("Cannot check the model", str(exc))
            return False
        return True

    def reveal_selected(self) -> bool:
        model_id = self.selected_id()
        if model_id is None:
            return False
        folder = self.library.reveal_folder(model_id)
        return QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))

    def ask_rename_selected(self) -> QDialog | None:
        model = self.selected_model()
        if model is None:
            return None
        dialog = QDialog(self)
        dialog.setWindowTitle("Rename model")
        form = QFormLayout(dialog)
        dialog.name_edit = QLineEdit(model["display_name"])
        dialog.rename_file = QCheckBox(f"Also rename the file on disk ({Path(model['path']).name})")
        dialog.rename_file.setToolTip("Patches and projects that load the old file name will not find it.")
        form.addRow("Name:", dialog.name_edit)
        form.addRow(dialog.rename_file)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(dialog.accept)
        buttons.rejected.connect(dialog.reject)
        form.addRow(buttons)
        dialog.accepted.connect(lambda: self.rename_model(model["id"], dialog.name_edit.text(),
                                                          dialog.rename_file.isChecked()))
        dialog.finished.connect(dialog.deleteLater)
        self.rename_dialog = dialog
        dialog.open()
        return dialog

    def rename_model(self, model_id: int, name: str, rename_file: bool = False) -> bool:
        try:
            self.library.rename(model_id, name, rename_file=rename_file)
        except ValueError as exc:
            self.show_error("Could not rename the model", str(exc))
            return False
        self.model.refresh_model(model_id)
        self._on_selection()
        return True

    def ask_delete_selected(self) -> QMessageBox | None:
        """Confirm with the library's sentence; a check box adds the file."""
        model_id = self.selected_id()
        if model_id is None:
            return None
        box = QMessageBox(QMessageBox.Icon.Question, "Delete model", self.library.delete_question(model_id, False),
                          QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel, self)
        box.setCheckBox(QCheckBox("Also delete the .ts file from the disk", box))
        box.checkBox().toggled.connect(lambda on: box.setText(self.library.delete_question(model_id, on)))
        box.finished.connect(lambda _result: self._delete_answered(box, model_id))
        self.delete_box = box
        box.open()
        return box

    def _delete_answered(self, box: QMessageBox, model_id: int) -> None:
        if self.delete_box is not box:     # answered already
            return
        self.delete_box = None
        yes = box.clickedButton() is box.button(QMessageBox.StandardButton.Yes)
        delete_file = box.checkBox().isChecked()
        box.finished.disconnect()
        box.checkBox().toggled.disconnect()
        box.deleteLater()
        if yes:
            self.delete_model(model_id, delete_file)

    def delete_model(self, model_id: int, delete_file: bool = False) -> bool:
        try:
            self.library.delete(model_id, delete_file=delete_file)
        except ValueError as exc:
            self.show_error("Could not delete the model", str(exc))
            return False
        self.refresh()
        return True

    def open_export_dialog(self, experiment_id: int | None = None):
        """Export a run's checkpoint (through the RunController); the model appears here when done."""
        if self.controller is None:
            return None
        from rave_gui.ui.dialogs.export_checkpoint import ExportCheckpointDialog
        dialog = ExportCheckpointDialog(self.manager, experiment_id, self)
        if dialog.experiment_id is None:
            self.show_error("Nothing to export", "There is no finished or stopped run to export yet.")
            dialog.deleteLater()
            return None
        dialog.accepted.connect(lambda: self.export_run(dialog.experiment_id, dialog.options()))
        self.export_dialog = dialog
        dialog.open()
        return dialog

    def export_run(self, experiment_id: int, options: dict) -> bool:
        try:
            self.controller.export(experiment_id, options)
        except (ValueError, TypeError, OSError) as exc:
            self.show_error("Could not export", str(exc))
            return False
        return True

    # -- signals -------------------------------------------------------------------------------
    def _on_check_done(self, model_id: int, _ok: bool, _message: str) -> None:
        self.model.set_activity(model_id, "")
        if model_id == self.selected_id():
            self._on_selection()

    def _on_export_done(self, _experiment_id: int, _ok: bool, _message: str) -> None:
        self.refresh()   # a new model (or a re-export), checked already or queued for its check

    def show_error(self, title: str, message: str) -> QMessageBox:
        self.last_error = message
        box = QMessageBox(QMessageBox.Icon.Warning, title, message, QMessageBox.StandardButton.Ok, self)
        box.finished.connect(box.deleteLater)
        box.open()
        return box

    def shutdown(self) -> None:
        """Cancel checks and tries and wait for them (the window calls it when closing)."""
        self.try_panel.stop()
        self.jobs.stop_all()
