"""The look follows the system's light or dark setting."""
from __future__ import annotations

from PyQt6.QtCore import Qt
from PyQt6.QtGui import QPalette
from PyQt6.QtWidgets import QApplication

from rave_gui.ui.theme import apply_theme


def test_dark_and_light(qapp):
    before = (qapp.style().name(), QApplication.palette())
    try:
        assert apply_theme(qapp, Qt.ColorScheme.Dark) == Qt.ColorScheme.Dark
        window = QApplication.palette().color(QPalette.ColorRole.Window)
        text = QApplication.palette().color(QPalette.ColorRole.WindowText)
        assert qapp.style().name().lower() == "fusion"
        assert window.lightness() < 80 and text.lightness() > 180
        apply_theme(qapp, Qt.ColorScheme.Light)
        assert QApplication.palette().color(QPalette.ColorRole.Window).lightness() > 180
    finally:
        qapp.setStyle(before[0])
        qapp.setPalette(before[1])
