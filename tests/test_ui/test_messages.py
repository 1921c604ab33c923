"""ui.widgets.messages: the one look for errors, warnings and hints."""
from __future__ import annotations

from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import QVBoxLayout, QWidget

from rave_gui.ui.widgets.messages import error_label, hint_label, set_error, warning_label


def test_error_label_hides_until_it_has_something_to_say(qtbot):
    host = QWidget()
    qtbot.addWidget(host)
    label = error_label()
    QVBoxLayout(host).addWidget(label)
    host.show()
    assert label.isHidden() and label.text() == ""
    set_error(label, "Select the dataset to train on.")
    assert label.isVisible() and label.text() == "Select the dataset to train on."
    assert label.textFormat() == Qt.TextFormat.PlainText      # "<experiment folder>" stays text
    set_error(label, "")
    assert label.isHidden() and label.text() == ""


def test_labels_created_with_text_open_no_window(qtbot):
    label = error_label("Something went wrong.")
    qtbot.addWidget(label)
    assert label.text() == "Something went wrong." and not label.isVisible()
    warning = warning_label("Careful.")
    qtbot.addWidget(warning)
    assert warning.objectName() == "warning" and warning.text() == "\u26a0 Careful."
    hint = hint_label("A hint.")
    qtbot.addWidget(hint)
    assert hint.wordWrap() and hint.text() == "A hint."
