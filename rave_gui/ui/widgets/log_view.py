"""A read-only log viewer that follows new lines unless the person scrolled up."""
from __future__ import annotations

from PyQt6.QtGui import QFont
from PyQt6.QtWidgets import QPlainTextEdit

MAX_LINES = 5000


class LogView(QPlainTextEdit):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.setReadOnly(True)
        self.setMaximumBlockCount(MAX_LINES)
        self.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        font = QFont("monospace")
        font.setStyleHint(QFont.StyleHint.TypeWriter)
        self.setFont(font)

    def at_bottom(self) -> bool:
        bar = self.verticalScrollBar()
        return bar.value() >= bar.maximum() - 2

    def append_line(self, line: str) -> None:
        bar = self.verticalScrollBar()
        follow = self.at_bottom()
        keep = bar.value()
        self.appendPlainText(line)
        if follow:
            bar.setValue(bar.maximum())
        else:
            bar.setValue(keep)

    def set_lines(self, lines: list[str]) -> None:
        self.setPlainText("\n".join(lines[-MAX_LINES:]))
        self.verticalScrollBar().setValue(self.verticalScrollBar().maximum())
