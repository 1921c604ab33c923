"""Page 2 of the New Training wizard: RAVE's base config, modifiers and gin overrides."""
from __future__ import annotations

from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import (
    QCheckBox, QComboBox, QFormLayout, QGridLayout, QHBoxLayout, QLabel, QPlainTextEdit, QToolButton,
    QVBoxLayout, QWidget, QWizardPage,
)

from rave_gui.backend.rave_catalogue import (
    MAIN_MODIFIERS, config_help, main_and_more_modifiers, modifier_help, offered_configs,
)
from rave_gui.backend.rave_cli import BROKEN_CONFIGS, RAVE_CONFIGS, RAVE_MODIFIERS, phase_1_duration
from rave_gui.backend.training import DEFAULTS
from rave_gui.backend.training_rules import parse_overrides
from rave_gui.ui.widgets.messages import error_label, hint_label, set_error


class ConfigSelectionPage(QWizardPage):
    """RAVE's base config (the ones that load), modifiers and extra gin overrides."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setTitle("Choose the model")
        self.setSubTitle("RAVE's configuration files, as `rave train --config` takes them.")

        self.config_combo = QComboBox()
        first, others = offered_configs()
        for name in first:
            self._add_config(name)
        if others:
            self.config_combo.insertSeparator(self.config_combo.count())
            for name in others:
                self._add_config(name)
        self.config_help = hint_label()
        self.config_combo.currentIndexChanged.connect(self._changed)

        self.modifier_boxes: dict[str, QCheckBox] = {}
        main, more = main_and_more_modifiers()
        main_row = QHBoxLayout()
        for name in main:
            main_row.addWidget(self._modifier_box(name))
        main_row.addStretch(1)

        self.more_button = QToolButton()
        self.more_button.setText("More modifiers")
        self.more_button.setCheckable(True)
        self.more_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.more_button.setArrowType(Qt.ArrowType.RightArrow)
        self.more_widget = QWidget()
        grid = QGridLayout(self.more_widget)
        grid.setContentsMargins(16, 0, 0, 0)
        for i, name in enumerate(more):
            grid.addWidget(self._modifier_box(name), i // 2, i % 2)
        self.more_widget.setVisible(False)
        self.more_button.toggled.connect(self._toggle_more)

        self.overrides_edit = QPlainTextEdit()
        self.overrides_edit.setPlaceholderText("One gin binding a line, e.g.\nPHASE_1_DURATION=200000")
        self.overrides_edit.setTabChangesFocus(True)
        self.overrides_edit.setMaximumHeight(110)
        self.overrides_edit.textChanged.connect(self._changed)
        self.overrides_error = error_label()
        self.phase_label = hint_label()

        layout = QVBoxLayout(self)
        form = QFormLayout()
        form.addRow("Base config:", self.config_combo)
        form.addRow("", self.config_help)
        layout.addLayout(form)
        layout.addWidget(QLabel("Modifiers (added after the base config, in this order):"))
        layout.addLayout(main_row)
        layout.addWidget(self.more_button)
        layout.addWidget(self.more_widget)
        layout.addWidget(QLabel("Extra gin overrides (`--override`), one per line:"))
        layout.addWidget(self.overrides_edit)
        layout.addWidget(self.overrides_error)
        layout.addWidget(self.phase_label)
        layout.addStretch(1)

        self.set_base_config(DEFAULTS["base_config"])
        self._changed()

    def _add_config(self, name: str) -> None:
        self.config_combo.addItem(name, name)
        self.config_combo.setItemData(self.config_combo.count() - 1, config_help(name),
                                      Qt.ItemDataRole.ToolTipRole)

    def _modifier_box(self, name: str) -> QCheckBox:
        box = QCheckBox(name)
        box.setToolTip(modifier_help(name))
        box.toggled.connect(self._changed)
        self.modifier_boxes[name] = box
        return box

    def _toggle_more(self, shown: bool) -> None:
        self.more_widget.setVisible(shown)
        self.more_button.setArrowType(Qt.ArrowType.DownArrow if shown else Qt.ArrowType.RightArrow)

    # -- values ----------------------------------------------------------------
    def base_config(self) -> str:
        return self.config_combo.currentData()

    def set_base_config(self, name: str) -> None:
        index = self.config_combo.findData(name)
        if index < 0:
            raise ValueError(BROKEN_CONFIGS.get(name) or f"Unknown base config {name!r}.")
        self.config_combo.setCurrentIndex(index)

    def modifiers(self) -> list[str]:
        """Checked modifiers, in RAVE_MODIFIERS order."""
        return [m for m in RAVE_MODIFIERS if m in self.modifier_boxes and self.modifier_boxes[m].isChecked()]

    def set_modifiers(self, names) -> None:
        names = set(names)
        unknown = names - set(self.modifier_boxes)
        if unknown:
            raise ValueError(f"Unknown modifier(s): {', '.join(sorted(unknown))}.")
        for name, box in self.modifier_boxes.items():
            box.setChecked(name in names)
        if names - set(MAIN_MODIFIERS):
            self.more_button.setChecked(True)

    def overrides(self) -> list[str]:
        """The gin bindings typed by the user (valid lines only)."""
        return parse_overrides(self.overrides_edit.toPlainText())[0]

    def override_errors(self) -> list[str]:
        return parse_overrides(self.overrides_edit.toPlainText())[1]

    def set_overrides(self, overrides) -> None:
        self.overrides_edit.setPlainText(overrides if isinstance(overrides, str) else "\n".join(overrides))

    def phase_1(self) -> int | None:
        return phase_1_duration(self.base_config(), self.modifiers(), self.overrides())

    # -- wizard ----------------------------------------------------------------
    def _changed(self, *_args) -> None:
        self.config_help.setText(config_help(self.base_config() or ""))
        set_error(self.overrides_error, "\n".join(self.override_errors()))
        phase = self.phase_1()
        self.phase_label.setText(
            f"With this choice RAVE's adversarial phase 2 starts after {phase:,} steps "
            "(PHASE_1_DURATION); the generator's learning rate decays until then." if phase else "")
        self.completeChanged.emit()

    def isComplete(self) -> bool:
        return (self.base_config() in RAVE_CONFIGS and self.base_config() not in BROKEN_CONFIGS
                and not self.override_errors())

    def validatePage(self) -> bool:
        self._changed()
        return self.isComplete()
