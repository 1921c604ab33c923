"""A look that follows the system's light or dark setting.

Fusion everywhere (the same widgets on Linux, macOS and Windows), with a dark
palette when the desktop says dark (``QStyleHints.colorScheme``, Qt 6.5+), and
again whenever the person switches while the app runs.
"""
from __future__ import annotations

from PyQt6.QtCore import Qt
from PyQt6.QtGui import QColor, QPalette

_DARK = {
    QPalette.ColorRole.Window: "#2b2d31", QPalette.ColorRole.WindowText: "#e6e6e6",
    QPalette.ColorRole.Base: "#1f2023", QPalette.ColorRole.AlternateBase: "#2b2d31",
    QPalette.ColorRole.ToolTipBase: "#3a3d42", QPalette.ColorRole.ToolTipText: "#e6e6e6",
    QPalette.ColorRole.Text: "#e6e6e6", QPalette.ColorRole.Button: "#34373c",
    QPalette.ColorRole.ButtonText: "#e6e6e6", QPalette.ColorRole.BrightText: "#ff6b6b",
    QPalette.ColorRole.Highlight: "#3d7bd9", QPalette.ColorRole.HighlightedText: "#ffffff",
    QPalette.ColorRole.Link: "#7fb2ff", QPalette.ColorRole.PlaceholderText: "#8a8d93",
}


def dark_palette() -> QPalette:
    palette = QPalette()
    for role, color in _DARK.items():
        palette.setColor(role, QColor(color))
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.WindowText, QPalette.ColorRole.ButtonText):
        palette.setColor(QPalette.ColorGroup.Disabled, role, QColor("#7a7d83"))
    return palette


def apply_theme(app, scheme: Qt.ColorScheme | None = None) -> Qt.ColorScheme:
    """Fusion, dark or light as the system says (or as ``scheme`` says); returns the scheme used."""
    app.setStyle("Fusion")
    if scheme is None:
        scheme = app.styleHints().colorScheme()
    palette = dark_palette() if scheme == Qt.ColorScheme.Dark else app.style().standardPalette()
    app.setPalette(palette)
    return scheme


def follow_system_theme(app) -> None:
    apply_theme(app)
    app.styleHints().colorSchemeChanged.connect(lambda scheme: apply_theme(app, scheme))
