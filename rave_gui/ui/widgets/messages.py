"""The app's one look for messages under a form: errors, warnings, hints.

An error label is hidden while it has nothing to say; ``set_error`` shows it
with a sentence and hides it again for ''.
"""
from __future__ import annotations

from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import QLabel

ERROR_COLOR = "#c0392b"
WARNING_COLOR = "#b9770e"
WARNING_SIGN = "\u26a0 "


def error_label(text: str = "") -> QLabel:
    """A red, wrapping, selectable label, hidden until ``set_error`` gives it text."""
    label = QLabel()
    label.setObjectName("error")
    label.setWordWrap(True)
    label.setTextFormat(Qt.TextFormat.PlainText)
    label.setStyleSheet(f"color: {ERROR_COLOR};")
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    label.setText(text)
    if not text:
        label.hide()      # not setVisible(True) otherwise: a parentless label would open a window
    return label


def set_error(label: QLabel, text: str) -> None:
    """Show ``text`` in ``label``; hide the label when ``text`` is empty."""
    label.setText(text or "")
    label.setVisible(bool(text))


def warning_label(text: str) -> QLabel:
    """An amber "⚠ text" label (object name ``warning``)."""
    label = QLabel(WARNING_SIGN + text)
    label.setObjectName("warning")
    label.setTextFormat(Qt.TextFormat.PlainText)
    label.setWordWrap(True)
    label.setStyleSheet(f"color: {WARNING_COLOR};")
    return label


def hint_label(text: str = "") -> QLabel:
    """A muted, wrapping label for explanations beside a field."""
    label = QLabel(text)
    label.setWordWrap(True)
    label.setStyleSheet("color: palette(dark);")
    return label
