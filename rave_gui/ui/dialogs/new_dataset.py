"""The "New dataset from audio" dialog: folders in, ``rave preprocess`` out.

Nothing here blocks: folder pickers only open from buttons, the process runs
in its thread, and the tests drive ``add_folder``, ``create`` and ``cancel``.
"""
from __future__ import annotations

import re
from pathlib import Path

from PyQt6.QtWidgets import (QCheckBox, QComboBox, QDialog, QFileDialog, QFormLayout, QHBoxLayout,
                             QLabel, QLineEdit, QListWidget, QProgressBar, QPushButton,
                             QVBoxLayout, QWidget)

from rave_gui.backend.datasets import DatasetManager
from rave_gui.backend.rave_cli import RaveNotFound

SAMPLE_RATES = (44100, 22050, 32000, 48000)
CHANNELS_TIP = ("For a mono dataset RAVE keeps the first (left) channel of stereo files; "
               "for a stereo dataset it duplicates mono files.")
LAZY_TIP = ("Store only the file list and decode the audio with ffmpeg during training: "
            "fast to create and small on disk, but training reads slower.")


class NewDatasetDialog(QDialog):
    def __init__(self, db, parent=None):
        super().__init__(parent)
        self.setWindowTitle("New dataset from audio")
        self.manager = DatasetManager(db)
        self.datasets_dir = Path(db.path).parent / "datasets"
        self.logs_dir = Path(db.path).parent / "logs"
        self.log_path: Path | None = None
        self.dataset_id: int | None = None
        self.process = None
        self.num_signal: int | None = None  # RAVE's default; tests set a small one
        self._output_edited = False
        self._close_when_done = False
        self._build()
        self._update_buttons()

    # -- layout ----------------------------------------------------------------------
    def _build(self) -> None:
        self.folder_list = QListWidget()
        self.folder_list.setMinimumHeight(90)
        self.add_button = QPushButton("Add folder\u2026")
        self.remove_folder_button = QPushButton("Remove")
        self.add_button.clicked.connect(self._pick_folder)
        self.remove_folder_button.clicked.connect(self.remove_selected_folder)
        self.folder_list.itemSelectionChanged.connect(self._update_buttons)
        folder_buttons = QVBoxLayout()
        folder_buttons.addWidget(self.add_button)
        folder_buttons.addWidget(self.remove_folder_button)
        folder_buttons.addStretch()
        folders = QHBoxLayout()
        folders.addWidget(self.folder_list, 1)
        folders.addLayout(folder_buttons)

        self.name_edit = QLineEdit()
        self.name_edit.setPlaceholderText("e.g. my_voice")
        self.name_edit.textChanged.connect(self._name_changed)
        self.output_edit = QLineEdit()
        self.output_edit.textEdited.connect(self._output_typed)
        self.browse_button = QPushButton("Browse\u2026")
        self.browse_button.clicked.connect(self._pick_output)
        output = QHBoxLayout()
        output.addWidget(self.output_edit, 1)
        output.addWidget(self.browse_button)
        self.channels_combo = QComboBox()
        self.channels_combo.addItem("1 (mono)", 1)
        self.channels_combo.addItem("2 (stereo)", 2)
        self.channels_combo.setToolTip(CHANNELS_TIP)
        self.rate_combo = QComboBox()
        for rate in SAMPLE_RATES:
            self.rate_combo.addItem(f"{rate:,} Hz", rate)
        self.lazy_check = QCheckBox("Lazy (decode audio during training)")
        self.lazy_check.setToolTip(LAZY_TIP)

        form = QFormLayout()
        form.addRow("Audio folders:", folders)
        form.addRow("Name:", self.name_edit)
        form.addRow("Output folder:", self._wrap(output))
        form.addRow("Channels:", self.channels_combo)
        form.addRow("Sample rate:", self.rate_combo)
        form.addRow("", self.lazy_check)

        self.error_label = QLabel()
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet("color: #b00020;")
        self.error_label.hide()
        self.status_label = QLabel()
        self.status_label.setWordWrap(True)
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 100)
        self.progress_bar.hide()
        self.create_button = QPushButton("Create")
        self.create_button.setDefault(True)
        self.create_button.clicked.connect(self.create)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self._cancel_clicked)
        buttons = QHBoxLayout()
        buttons.addStretch()
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.create_button)

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.error_label)
        layout.addWidget(self.status_label)
        layout.addWidget(self.progress_bar)
        layout.addLayout(buttons)
        self.resize(620, 420)

    @staticmethod
    def _wrap(layout) -> QWidget:
        widget = QWidget()
        layout.setContentsMargins(0, 0, 0, 0)
        widget.setLayout(layout)
        return widget

    # -- inputs ----------------------------------------------------------------------
    def folders(self) -> list[str]:
        return [self.folder_list.item(i).text() for i in range(self.folder_list.count())]

    def add_folder(self, path) -> None:
        path = str(Path(path).expanduser())
        if path not in self.folders():
            self.folder_list.addItem(path)
        if not self.name_edit.text().strip():
            self.name_edit.setText(Path(path).name)
        self._update_buttons()

    def remove_selected_folder(self) -> None:
        for item in self.folder_list.selectedItems():
            self.folder_list.takeItem(self.folder_list.row(item))
        self._update_buttons()

    def set_output_folder(self, path) -> None:
        self._output_edited = True
        self.output_edit.setText(str(path))

    def _pick_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Add a folder of audio")
        if path:
            self.add_folder(path)

    def _pick_output(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Folder for the dataset", str(self.datasets_dir))
        if path:
            self.set_output_folder(path)

    def _name_changed(self, name: str) -> None:
        if not self._output_edited:
            self.output_edit.setText(str(self.datasets_dir / name.strip()) if name.strip() else "")

    def _output_typed(self, _text: str) -> None:
        self._output_edited = True

    # -- running -----------------------------------------------------------------------
    def is_running(self) -> bool:
        return self.process is not None and self.process.isRunning()

    def create(self) -> bool:
        """Check the inputs and start ``rave preprocess``; False (with the sentence shown) if refused."""
        if self.is_running():
            return False
        self.show_error(None)
        slug = re.sub(r"[^\w.-]+", "_", self.name_edit.text().strip()) or "dataset"
        self.log_path = self.logs_dir / f"preprocess-{slug}.log"
        try:
            self.process = self.manager.create_from_audio(
                self.folders(), self.output_edit.text().strip(), self.name_edit.text(),
                channels=self.channels_combo.currentData(), sample_rate=self.rate_combo.currentData(),
                num_signal=self.num_signal, lazy=self.lazy_check.isChecked(), log_path=self.log_path)
        except (ValueError, OSError, RaveNotFound) as exc:
            self.show_error(str(exc))
            return False
        self.status_label.setText(self.process.plan.summary())
        self.process.progress.connect(self._on_progress)
        self.process.finished.connect(self._on_finished)
        self.progress_bar.setValue(0)
        self.progress_bar.show()
        self.process.start()
        self._update_buttons()
        return True

    def _cancel_clicked(self) -> None:
        """While RAVE runs, Cancel stops it and the dialog stays; otherwise it closes."""
        if self.is_running():
            self.cancel()
        else:
            self.reject()

    def cancel(self) -> None:
        if self.is_running():
            self.cancel_button.setEnabled(False)
            self.status_label.setText("Cancelling\u2026")
            self.process.stop()

    def _on_progress(self, percent: int, text: str) -> None:
        self.progress_bar.setValue(percent)
        self.progress_bar.setFormat(f"%p%  \u2014  {text}")

    def _on_finished(self, ok: bool, message: str) -> None:
        process, self.process = self.process, None
        if process is not None:
            process.wait()
        self._update_buttons()
        if ok:
            self.dataset_id = process.dataset_id
            self.status_label.setText(message)
            self.accept()
            return
        self.progress_bar.hide()
        self.status_label.clear()
        cancelled = process is not None and process.stop_requested and not process.failure
        if process is not None and process.pid and not cancelled:  # RAVE ran and failed
            message += f" The full output is in {self.log_path}."
        self.show_error(message)
        if self._close_when_done:
            super().reject()

    def reject(self) -> None:
        """Escape / closing the window: while RAVE runs, stop it (it cleans up), then close."""
        if self.is_running():
            self._close_when_done = True
            self.cancel()
            return
        super().reject()

    def closeEvent(self, event) -> None:
        if self.is_running():
            event.ignore()
            self.reject()
            return
        super().closeEvent(event)

    # -- state ---------------------------------------------------------------------------
    def show_error(self, message: str | None) -> None:
        self.error_label.setText(message or "")
        self.error_label.setVisible(bool(message))

    def error_text(self) -> str:
        return self.error_label.text()

    def _update_buttons(self) -> None:
        running = self.is_running()
        for widget in (self.folder_list, self.add_button, self.name_edit, self.output_edit,
                       self.browse_button, self.channels_combo, self.rate_combo, self.lazy_check):
            widget.setEnabled(not running)
        self.remove_folder_button.setEnabled(not running and bool(self.folder_list.selectedItems()))
        self.create_button.setEnabled(not running)
        self.cancel_button.setEnabled(True)
