"""ErrorNotice: the crash guard's sentence, shown in a non-modal message box.

The crash guard calls ``notice.notify(sentence)`` on whatever thread failed;
the queued signal brings the sentence to the GUI thread, where one box shows
the latest error (a burst of errors updates it instead of piling up boxes).
"""
from __future__ import annotations

from PyQt6.QtCore import QObject, Qt, pyqtSignal, pyqtSlot
from PyQt6.QtWidgets import QMessageBox, QWidget


class ErrorNotice(QObject):
    raised = pyqtSignal(str)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.window: QWidget | None = None  # the box's parent, once the main window exists
        self.box: QMessageBox | None = None
        self.count = 0
        self.raised.connect(self._show, Qt.ConnectionType.QueuedConnection)

    def notify(self, sentence: str) -> None:
        """Thread-safe: the box opens on the GUI thread, after the failing code has unwound."""
        self.raised.emit(sentence)

    @pyqtSlot(str)
    def _show(self, sentence: str) -> None:
        self.count += 1
        if self.box is None:
            self.box = QMessageBox(QMessageBox.Icon.Warning, "RAVE GUI", sentence,
                                   QMessageBox.StandardButton.Ok, self.window)
            self.box.setWindowModality(Qt.WindowModality.NonModal)
            self.box.finished.connect(self._closed)
            self.box.show()
            return
        self.box.setText(f"{sentence}\n\n({self.count} errors since this box opened.)")

    def _closed(self, _result: int) -> None:
        self.box.deleteLater()
        self.box = None
        self.count = 0
