"""A push button drawn in a table cell (the experiments table's Actions)."""
from __future__ import annotations

from PyQt6.QtCore import QEvent, QRect, Qt, pyqtSignal
from PyQt6.QtWidgets import QApplication, QStyle, QStyledItemDelegate, QStyleOptionButton


class ActionButtonDelegate(QStyledItemDelegate):
    """Draws the cell's text as a button; a click emits ``clicked(row, text)``."""

    clicked = pyqtSignal(int, str)

    def paint(self, painter, option, index):
        text = index.data()
        if not text:
            super().paint(painter, option, index)
            return
        button = QStyleOptionButton()
        button.rect = QRect(option.rect.adjusted(2, 2, -2, -2))
        button.text = text
        button.state = QStyle.StateFlag.State_Enabled | QStyle.StateFlag.State_Raised
        QApplication.style().drawControl(QStyle.ControlElement.CE_PushButton, button, painter)

    def editorEvent(self, event, model, option, index):
        if event.type() == QEvent.Type.MouseButtonRelease and index.data():
            if event.button() == Qt.MouseButton.LeftButton and option.rect.contains(event.position().toPoint()):
                self.clicked.emit(index.row(), index.data())
                return True
        return super().editorEvent(event, model, option, index)
