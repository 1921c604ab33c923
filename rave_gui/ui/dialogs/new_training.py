"""The "New Training" wizard: dataset, RAVE config, parameters, confirmation.

Four ``QWizardPage`` subclasses, each preparing itself in ``initializePage``
and refusing to move on in ``validatePage`` (``QWizard.next()`` does not look
at ``isComplete``, so both say the same). The wizard never starts anything:
when it is accepted, ``get_config()`` returns exactly the dictionary
``TrainingManager.start_training`` takes, already checked with
``TrainingManager.validate_config`` so the wizard and the backend agree.
"""
from __future__ import annotations

from pathlib import Path

from PyQt6.QtCore import Qt, pyqtSlot
from PyQt6.QtWidgets import (
    QAbstractItemView, QApplication, QCheckBox, QComboBox, QFormLayout, QFrame, QGridLayout,
    QHBoxLayout, QHeaderView, QLabel, QLineEdit, QPlainTextEdit, QPushButton, QScrollArea, QSpinBox,
    QTableWidget, QTableWidgetItem, QToolButton, QVBoxLayout, QWidget, QWizard, QWizardPage,
)

from rave_gui.backend.datasets import DatasetManager
from rave_gui.backend.rave_cli import (
    RAVE_CONFIGS, RAVE_DIS_LR, RAVE_GEN_LR, RAVE_MODIFIERS, RaveNotFound,
    detect_gpus, display_command, find_rave, phase_1_duration, train_command,
)
from rave_gui.backend.training import DEFAULTS, OVERRIDE_RE, TrainingManager, validate_name
from rave_gui.core.signals import app_signals

PAGE_DATASET, PAGE_CONFIG, PAGE_PARAMETERS, PAGE_CONFIRM = range(4)

BASE_CONFIGS = ("v1", "v2", "v3", "discrete")
MAIN_MODIFIERS = ("causal", "snake", "noise")
N_SIGNAL = 131_072          # `rave train --n_signal` default: samples per training example
EXPERIMENT_FOLDER = "<experiment folder>"
EMPTY_DATASETS = "No datasets yet: create one on the Datasets page."

CONFIG_HELP = {
    "v1": "The original RAVE (2021).",
    "v2": "RAVE v2: the recommended starting point.",
    "v3": "v2 with adaptive instance normalisation, snake activations and the Descript discriminator.",
    "discrete": "A discrete (quantised) latent space, for use with a prior; phase 1 lasts 200 000 steps.",
    "v2_small": "A smaller v2: faster, for small datasets or testing.",
    "v2_nopqmf": "v2 without the PQMF filter bank.",
    "v2_nopqmf_small": "Does not load in acids-rave 2.3.1 (its gin file fails to parse): use v2_small.",
    "discrete_v3": "discrete with snake activations and the Descript discriminator.",
    "raspberry": "A light config for the Raspberry Pi.",
    "onnx": "A config whose model exports to ONNX.",
}
MODIFIER_HELP = {
    "causal": "Causal convolutions: lower latency for real-time use, slightly lower quality.",
    "snake": "Snake (periodic) activations in the encoder and generator.",
    "noise": "Adds a noise generator to the decoder: helps noisy and percussive sounds.",
    "adain": "Adaptive instance normalisation in the encoder and generator.",
    "descript_discriminator": "Uses the Descript audio codec's discriminator.",
    "spectral_discriminator": "Adds a multi-scale spectral discriminator.",
    "spherical": "A spherical latent space (16 dimensions); phase 1 lasts 200 000 steps.",
    "wasserstein": "A Wasserstein (noise-augmented) encoder, 16 latents; phase 1 lasts 200 000 steps.",
    "hybrid": "A mel-spectrogram encoder with a recurrent generator (includes v2 again).",
    "normalize_ambient": "Compresses the training audio (dynamic range augmentation).",
}


def parse_overrides(text: str) -> tuple[list[str], list[str]]:
    """Gin bindings from the text (one a line; blank lines and ``#`` comments
    skipped) and a sentence for each line that is not a binding."""
    bindings, errors = [], []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("--override"):
            errors.append(f"Line {number}: write only the binding, without --override.")
        elif not OVERRIDE_RE.match(line):
            errors.append(f"Line {number}: {line!r} is not a gin binding; write it as NAME=value "
                          "(for example PHASE_1_DURATION=200000).")
        else:
            bindings.append(line)
    return bindings, errors


def _rough_duration(seconds: float) -> str:
    if seconds >= 2 * 86_400:
        return f"{seconds / 86_400:.1f} days"
    if seconds >= 2 * 3600:
        return f"{seconds / 3600:.1f} hours"
    return f"{max(1, round(seconds / 60))} minutes"


def format_duration(seconds) -> str:
    seconds = float(seconds or 0.0)
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def format_channels(channels) -> str:
    channels = int(channels or 0)
    return {1: "1 (mono)", 2: "2 (stereo)"}.get(channels, str(channels))


def format_lr(value: float) -> str:
    """1e-4 rather than 0.0001."""
    text = f"{value:.0e}"
    mantissa, exponent = text.split("e")
    return f"{mantissa}e{int(exponent)}"


def _hint(text: str = "") -> QLabel:
    label = QLabel(text)
    label.setWordWrap(True)
    label.setStyleSheet("color: palette(dark);")
    return label


def _error_label() -> QLabel:
    label = QLabel()
    label.setWordWrap(True)
    label.setStyleSheet("color: #c0392b;")
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    label.hide()
    return label


def _set_error(label: QLabel, text: str) -> None:
    label.setText(text)
    label.setVisible(bool(text))


# ---------------------------------------------------------------------------
class DatasetSelectionPage(QWizardPage):
    """Page 1: the dataset to train on (one row must be selected)."""

    COLUMNS = ("Name", "Samples", "Channels", "Sample rate", "Duration")

    def __init__(self, db, parent=None):
        super().__init__(parent)
        self.db = db
        self.setTitle("Choose a dataset")
        self.setSubTitle("The preprocessed audio RAVE will learn from.")
        self._datasets: list[dict] = []

        self.table = QTableWidget(0, len(self.COLUMNS))
        self.table.setHorizontalHeaderLabels(self.COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for col in range(1, len(self.COLUMNS)):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        self.table.itemSelectionChanged.connect(self._selection_changed)
        self.table.doubleClicked.connect(self._double_clicked)

        self.empty_label = QLabel(EMPTY_DATASETS)
        self.empty_label.setWordWrap(True)
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.details = _hint()
        self.error_label = _error_label()

        layout = QVBoxLayout(self)
        layout.addWidget(self.table)
        layout.addWidget(self.empty_label)
        layout.addWidget(self.details)
        layout.addWidget(self.error_label)

        self._listening = False
        self.listen(True)
        self.refresh()

    # -- data ------------------------------------------------------------------
    def refresh(self) -> None:
        """Reload the datasets from the database, keeping the selection."""
        keep = self.selected_dataset_id()
        self._datasets = DatasetManager(self.db).list_datasets()
        self.table.blockSignals(True)
        self.table.clearSelection()
        self.table.setRowCount(len(self._datasets))
        for row, ds in enumerate(self._datasets):
            values = (ds["name"], f"{int(ds['num_samples'] or 0):,}", format_channels(ds["channels"]),
                      f"{int(ds['sample_rate'] or 0):,} Hz", format_duration(ds["duration"]))
            for col, value in enumerate(values):
                item = QTableWidgetItem(value)
                item.setData(Qt.ItemDataRole.UserRole, ds["id"])
                item.setToolTip(str(ds["path"]))
                if col:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(row, col, item)
        self.table.blockSignals(False)
        has_any = bool(self._datasets)
        self.table.setVisible(has_any)
        self.empty_label.setVisible(not has_any)
        if keep is None or not self.select_dataset(keep):
            self._selection_changed()

    def listen(self, on: bool) -> None:
        """Follow ``app_signals().dataset_added`` (on while the wizard is open)."""
        if on and not self._listening:
            app_signals().dataset_added.connect(self._on_dataset_added)
        elif not on and self._listening:
            app_signals().dataset_added.disconnect(self._on_dataset_added)
        self._listening = on

    @pyqtSlot(int)
    def _on_dataset_added(self, dataset_id: int) -> None:
        self.refresh()

    def datasets(self) -> list[dict]:
        return list(self._datasets)

    def selected_dataset(self) -> dict | None:
        rows = self.table.selectionModel().selectedRows() if self.table.selectionModel() else []
        if not rows:
            return None
        row = rows[0].row()
        return dict(self._datasets[row]) if 0 <= row < len(self._datasets) else None

    def selected_dataset_id(self) -> int | None:
        ds = self.selected_dataset()
        return ds["id"] if ds else None

    def select_dataset(self, dataset_id: int) -> bool:
        """Select the row of ``dataset_id``; False when it is not listed."""
        for row, ds in enumerate(self._datasets):
            if ds["id"] == dataset_id:
                self.table.selectRow(row)
                return True
        return False

    # -- wizard ----------------------------------------------------------------
    def _selection_changed(self) -> None:
        ds = self.selected_dataset()
        if ds:
            _set_error(self.error_label, "")
            self.details.setText(f"{ds['name']}: {ds['path']}")
        else:
            self.details.setText("")
        self.completeChanged.emit()

    def initializePage(self) -> None:
        if not self._listening:      # the wizard was closed and is shown again
            self.listen(True)
            self.refresh()

    def _double_clicked(self, _index) -> None:
        if self.wizard() is not None and self.isComplete():
            self.wizard().next()

    def isComplete(self) -> bool:
        return self.selected_dataset() is not None

    def validatePage(self) -> bool:
        if self.selected_dataset() is None:
            _set_error(self.error_label, "Select the dataset to train on."
                       if self._datasets else EMPTY_DATASETS)
            return False
        return True


# ---------------------------------------------------------------------------
class ConfigSelectionPage(QWizardPage):
    """Page 2: RAVE's base config, modifiers and extra gin overrides."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setTitle("Choose the model")
        self.setSubTitle("RAVE's configuration files, as `rave train --config` takes them.")

        self.config_combo = QComboBox()
        others = [c for c in RAVE_CONFIGS if c not in BASE_CONFIGS]
        for name in [c for c in BASE_CONFIGS if c in RAVE_CONFIGS]:
            self.config_combo.addItem(name, name)
            self.config_combo.setItemData(self.config_combo.count() - 1, CONFIG_HELP.get(name, ""),
                                          Qt.ItemDataRole.ToolTipRole)
        if others:
            self.config_combo.insertSeparator(self.config_combo.count())
            for name in others:
                self.config_combo.addItem(name, name)
                self.config_combo.setItemData(self.config_combo.count() - 1, CONFIG_HELP.get(name, ""),
                                              Qt.ItemDataRole.ToolTipRole)
        self.config_help = _hint()
        self.config_combo.currentIndexChanged.connect(self._changed)

        self.modifier_boxes: dict[str, QCheckBox] = {}
        main_row = QHBoxLayout()
        for name in [m for m in MAIN_MODIFIERS if m in RAVE_MODIFIERS]:
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
        for i, name in enumerate(m for m in RAVE_MODIFIERS if m not in MAIN_MODIFIERS):
            grid.addWidget(self._modifier_box(name), i // 2, i % 2)
        self.more_widget.setVisible(False)
        self.more_button.toggled.connect(self._toggle_more)

        self.overrides_edit = QPlainTextEdit()
        self.overrides_edit.setPlaceholderText("One gin binding a line, e.g.\nPHASE_1_DURATION=200000")
        self.overrides_edit.setTabChangesFocus(True)
        self.overrides_edit.setMaximumHeight(110)
        self.overrides_edit.textChanged.connect(self._changed)
        self.overrides_error = _error_label()
        self.phase_label = _hint()

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

    def _modifier_box(self, name: str) -> QCheckBox:
        box = QCheckBox(name)
        box.setToolTip(MODIFIER_HELP.get(name, ""))
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
            raise ValueError(f"Unknown base config {name!r}.")
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
        self.config_help.setText(CONFIG_HELP.get(self.base_config() or "", ""))
        _set_error(self.overrides_error, "\n".join(self.override_errors()))
        phase = self.phase_1()
        self.phase_label.setText(
            f"With this choice RAVE's adversarial phase 2 starts after {phase:,} steps "
            "(PHASE_1_DURATION); the generator's learning rate decays until then." if phase else "")
        self.completeChanged.emit()

    def isComplete(self) -> bool:
        return self.base_config() in RAVE_CONFIGS and not self.override_errors()

    def validatePage(self) -> bool:
        self._changed()
        return self.isComplete()


# ---------------------------------------------------------------------------
class TrainingParametersPage(QWizardPage):
    """Page 3: run name, steps, batch, (fixed) learning rate, validation, device."""

    def __init__(self, gpus: list[str], parent=None):
        super().__init__(parent)
        self.setTitle("Training parameters")
        self.setSubTitle("How long and on what RAVE trains.")
        self.gpus = list(gpus)

        self.name_edit = QLineEdit()
        self.name_edit.setPlaceholderText("e.g. my voice v2")
        self.name_edit.setMaxLength(1000)
        self.name_error = _error_label()
        self.name_edit.textChanged.connect(self._name_changed)

        self.max_steps = QSpinBox()
        self.max_steps.setRange(1, 100_000_000)
        self.max_steps.setSingleStep(10_000)
        self.max_steps.setGroupSeparatorShown(True)
        self.max_steps.setValue(DEFAULTS["max_steps"])

        self.batch_size = QSpinBox()
        self.batch_size.setRange(1, 1024)
        self.batch_size.setValue(DEFAULTS["batch_size"])

        self.learning_rate = QLineEdit(format_lr(DEFAULTS["learning_rate"]))
        self.learning_rate.setReadOnly(True)
        self.learning_rate.setEnabled(False)
        gen_start, gen_end = RAVE_GEN_LR
        self.lr_explanation = _hint(
            f"Fixed by RAVE: acids-rave 2.3.1 hard-codes its optimisers (generator Adam {format_lr(gen_start)} "
            f"decaying linearly to {format_lr(gen_end)} over phase 1, discriminator {format_lr(RAVE_DIS_LR)}); "
            "no flag or gin binding changes them, so this field cannot be edited.")
        self.learning_rate.setToolTip(self.lr_explanation.text())

        self.val_every = QSpinBox()
        self.val_every.setRange(1, 100_000_000)
        self.val_every.setSingleStep(1_000)
        self.val_every.setGroupSeparatorShown(True)
        self.val_every.setValue(DEFAULTS["val_every"])
        val_hint = _hint("RAVE validates, saves a checkpoint and logs audio every this many steps.")

        self.device_combo = QComboBox()
        self.device_combo.addItem("Auto", "auto")
        self.device_combo.addItem("CPU", "cpu")
        for index, name in enumerate(self.gpus):
            self.device_combo.addItem(f"GPU {index}: {name}", f"gpu:{index}")
        self.device_combo.setItemData(0, "The first GPU if there is one, else the CPU.",
                                      Qt.ItemDataRole.ToolTipRole)
        self.device_hint = _hint(
            f"{len(self.gpus)} GPU(s) found; Auto uses GPU 0." if self.gpus else
            "No NVIDIA GPU found (nvidia-smi): training runs on the CPU, which is very slow.")

        outer = QVBoxLayout(self)
        form = QFormLayout()
        outer.addLayout(form)
        outer.addStretch(1)
        form.addRow("Run name:", self.name_edit)
        form.addRow("", self.name_error)
        form.addRow("Max steps:", self.max_steps)
        form.addRow("Batch size:", self.batch_size)
        form.addRow("Learning rate:", self.learning_rate)
        form.addRow("", self.lr_explanation)
        form.addRow("Validate every (steps):", self.val_every)
        form.addRow("", val_hint)
        form.addRow("Device:", self.device_combo)
        form.addRow("", self.device_hint)

    # -- values ----------------------------------------------------------------
    def run_name(self) -> str:
        """The validated name (stripped), or '' when it is not valid."""
        try:
            return validate_name(self.name_edit.text())
        except ValueError:
            return ""

    def name_problem(self) -> str:
        """The sentence saying what is wrong with the name ('' when fine)."""
        try:
            validate_name(self.name_edit.text())
        except ValueError as exc:
            return str(exc)
        return ""

    def device(self) -> str:
        return self.device_combo.currentData()

    def set_device(self, value: str) -> None:
        index = self.device_combo.findData(value)
        if index < 0:
            raise ValueError(f"No device {value!r} here.")
        self.device_combo.setCurrentIndex(index)

    # -- wizard ----------------------------------------------------------------
    def initializePage(self) -> None:
        self.name_edit.setFocus()

    def _name_changed(self, _text: str = "") -> None:
        _set_error(self.name_error, self.name_problem())
        self.completeChanged.emit()

    def isComplete(self) -> bool:
        return not self.name_problem()

    def validatePage(self) -> bool:
        self._name_changed()
        return self.isComplete()


# ---------------------------------------------------------------------------
class ConfirmationPage(QWizardPage):
    """Page 4: summary, the exact command, warnings; validates before Finish."""

    def __init__(self, db, parent=None):
        super().__init__(parent)
        self.db = db
        self.setTitle("Review and start")
        self.setSubTitle("Check the settings; Finish starts the training.")
        self._warnings: list[str] = []
        self._summary: dict[str, str] = {}

        self.summary_form = QFormLayout()
        self.warnings_box = QVBoxLayout()
        self.command_edit = QPlainTextEdit()
        self.command_edit.setReadOnly(True)
        self.command_edit.setMaximumHeight(84)
        self.command_edit.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
        self.copy_button = QPushButton("Copy")
        self.copy_button.setToolTip("Copy the command to the clipboard")
        self.copy_button.clicked.connect(self.copy_command)
        self.command_note = _hint()
        self.error_label = _error_label()

        command_row = QHBoxLayout()
        command_row.addWidget(self.command_edit, 1)
        command_row.addWidget(self.copy_button, 0, Qt.AlignmentFlag.AlignTop)

        review = QWidget()
        review_layout = QVBoxLayout(review)
        review_layout.setContentsMargins(0, 0, 0, 0)
        review_layout.addLayout(self.warnings_box)
        review_layout.addLayout(self.summary_form)
        review_layout.addStretch(1)
        self.review_area = QScrollArea()
        self.review_area.setWidgetResizable(True)
        self.review_area.setFrameShape(QFrame.Shape.NoFrame)
        self.review_area.setWidget(review)

        layout = QVBoxLayout(self)
        layout.addWidget(self.review_area, 1)
        layout.addWidget(QLabel("The command that will run:"))
        layout.addLayout(command_row)
        layout.addWidget(self.command_note)
        layout.addWidget(self.error_label)

    # -- content ---------------------------------------------------------------
    def initializePage(self) -> None:
        wizard: NewTrainingWizard = self.wizard()
        cfg = wizard.get_config()
        dataset = wizard.selected_dataset() or {}
        config_page: ConfigSelectionPage = wizard.page(PAGE_CONFIG)
        params: TrainingParametersPage = wizard.page(PAGE_PARAMETERS)

        self._summary = {
            "Dataset": (f"{dataset.get('name', '?')} ({format_duration(dataset.get('duration'))}, "
                        f"{format_channels(dataset.get('channels'))}, "
                        f"{int(dataset.get('sample_rate') or 0):,} Hz)"),
            "Base config": cfg["base_config"],
            "Modifiers": ", ".join(cfg["modifiers"]) or "none",
            "Overrides": "; ".join(cfg["overrides"]) or "none",
            "Run name": cfg["name"],
            "Max steps": f"{cfg['max_steps']:,}",
            "Batch size": str(cfg["batch_size"]),
            "Learning rate": f"{format_lr(cfg['learning_rate'])} (fixed by RAVE)",
            "Validate every": f"{cfg['val_every']:,} steps",
            "Device": params.device_combo.currentText(),
        }
        while self.summary_form.rowCount():
            self.summary_form.removeRow(0)
        for key, value in self._summary.items():
            label = QLabel(value)
            label.setWordWrap(True)
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            self.summary_form.addRow(f"{key}:", label)

        try:
            rave = find_rave()
            rave_missing = ""
        except RaveNotFound as exc:
            rave, rave_missing = Path("rave"), str(exc)
        argv = train_command(rave, cfg, dataset, EXPERIMENT_FOLDER, launcher=False, gpus=wizard.gpus)
        self.command_edit.setPlainText(display_command(argv))
        runs_root = TrainingManager(self.db).runs_root
        self.command_note.setText(
            f"{EXPERIMENT_FOLDER} is a new folder under {runs_root}, named after the experiment's number. "
            "The app runs RAVE's own entry point through a small launcher that adds a stop checkpoint "
            "and progress lines; the flags are the same.")

        self._set_warnings(self._compute_warnings(cfg, dataset, config_page.phase_1(), wizard.gpus,
                                                  rave_missing))
        try:
            TrainingManager(self.db).validate_config(cfg)
            _set_error(self.error_label, "")
        except ValueError as exc:
            _set_error(self.error_label, str(exc))

    @staticmethod
    def _compute_warnings(cfg: dict, dataset: dict, phase_1: int | None, gpus: list[str],
                          rave_missing: str) -> list[str]:
        out = []
        steps = cfg["max_steps"]
        if phase_1 and steps <= phase_1:
            shorter = max(1, steps // 2)
            knob = "PHASE_1_DURATION"    # some configs bind phase_1_duration directly: the macro does nothing
            if phase_1_duration(cfg["base_config"], cfg["modifiers"],
                                [*cfg["overrides"], f"{knob}={shorter}"]) != shorter:
                knob = "RAVE.phase_1_duration"
            out.append(
                f"Training stops after {steps:,} steps, before RAVE's adversarial phase 2 begins at step "
                f"{phase_1:,}: the model never gets the adversarial fine-tuning that makes it sound sharp. "
                f"Raise max steps above {phase_1:,}, or shorten phase 1 with an override such as "
                f"{knob}={shorter}.")
        if cfg["device"] in ("auto", "cpu") and not gpus:
            out.append(
                "No GPU found: training runs on the CPU, which is very slow (about one step per second "
                "for v2_small at batch 2 on a 2-core CPU; "
                f"{steps:,} steps would take roughly {_rough_duration(steps)} at that pace).")
        elif cfg["device"] == "cpu":
            out.append(f"You chose the CPU although {len(gpus)} GPU(s) are present: training will be much slower.")
        samples = int(dataset.get("num_samples") or 0)
        batch = cfg["batch_size"]
        examples = samples // N_SIGNAL
        train_examples = max(examples * 98 // 100, 1) if examples else 0
        if train_examples < batch:
            sr = int(dataset.get("sample_rate") or 44_100)
            advice = (f"lower the batch size to {train_examples} or add more audio" if train_examples
                      else "add more audio")
            out.append(
                f"The dataset is shorter than one batch: {samples:,} samples make {examples} training "
                f"example(s) of {N_SIGNAL:,} samples ({N_SIGNAL / sr:.1f} s each), RAVE keeps 98% for "
                f"training and needs {batch} for one batch of {batch} (about "
                f"{batch * N_SIGNAL / sr:.0f} s of audio). RAVE drops incomplete batches, so the run "
                f"would have nothing to train on: {advice}.")
        if cfg["val_every"] > steps:
            out.append(
                f"RAVE validates every {cfg['val_every']:,} steps but the run stops after {steps:,}: "
                "it saves checkpoints only at validation, so the finished run would have no model to export.")
        path = dataset.get("path")
        if path and not (Path(path) / "metadata.yaml").is_file():
            out.append(f"The dataset folder {path} no longer holds metadata.yaml: RAVE would stop with "
                       "an error. Register the dataset again.")
        if rave_missing:
            out.append(rave_missing)
        return out

    def _set_warnings(self, warnings: list[str]) -> None:
        self._warnings = list(warnings)
        while self.warnings_box.count():
            item = self.warnings_box.takeAt(0)
            if item.widget() is not None:
                item.widget().hide()
                item.widget().deleteLater()
        for text in self._warnings:
            label = QLabel("⚠ " + text)
            label.setTextFormat(Qt.TextFormat.PlainText)
            label.setObjectName("warning")
            label.setWordWrap(True)
            label.setStyleSheet("color: #b9770e;")
            self.warnings_box.addWidget(label)

    def warnings(self) -> list[str]:
        return list(self._warnings)

    def summary(self) -> dict[str, str]:
        return dict(self._summary)

    def command_text(self) -> str:
        return self.command_edit.toPlainText()

    def copy_command(self) -> None:
        QApplication.clipboard().setText(self.command_text())

    def validatePage(self) -> bool:
        wizard: NewTrainingWizard = self.wizard()
        try:
            wizard._validated = TrainingManager(self.db).validate_config(wizard.get_config())
        except ValueError as exc:
            _set_error(self.error_label, str(exc))
            return False
        _set_error(self.error_label, "")
        return True


# ---------------------------------------------------------------------------
class NewTrainingWizard(QWizard):
    """Dataset -> config -> parameters -> confirmation. ``get_config()`` is
    what ``TrainingManager.start_training`` takes; the wizard starts nothing."""

    def __init__(self, db, parent=None, gpus: list[str] | None = None):
        super().__init__(parent)
        self.db = db
        self.gpus: list[str] = list(detect_gpus() if gpus is None else gpus)
        self._validated: dict | None = None
        self.setWindowTitle("New Training")
        self.setOption(QWizard.WizardOption.NoBackButtonOnStartPage, True)

        self.dataset_page = DatasetSelectionPage(db)
        self.config_page = ConfigSelectionPage()
        self.parameters_page = TrainingParametersPage(self.gpus)
        self.confirmation_page = ConfirmationPage(db)
        self.setPage(PAGE_DATASET, self.dataset_page)
        self.setPage(PAGE_CONFIG, self.config_page)
        self.setPage(PAGE_PARAMETERS, self.parameters_page)
        self.setPage(PAGE_CONFIRM, self.confirmation_page)
        self.setButtonText(QWizard.WizardButton.FinishButton, "Start training")
        self.resize(760, 620)

    def selected_dataset(self) -> dict | None:
        return self.dataset_page.selected_dataset()

    def done(self, result: int) -> None:
        super().done(result)        # QWizard refuses an accept whose last page does not validate
        if not self.isVisible():
            self.dataset_page.listen(False)

    def select_dataset(self, dataset_id: int) -> bool:
        """Preselect a dataset (e.g. "Train on this dataset" from the Datasets page)."""
        return self.dataset_page.select_dataset(dataset_id)

    def get_config(self) -> dict:
        """Exactly the dict ``TrainingManager.start_training`` takes."""
        params = self.parameters_page
        return {
            "name": params.name_edit.text().strip(),
            "dataset_id": self.dataset_page.selected_dataset_id(),
            "base_config": self.config_page.base_config(),
            "modifiers": self.config_page.modifiers(),
            "overrides": self.config_page.overrides(),
            "max_steps": params.max_steps.value(),
            "batch_size": params.batch_size.value(),
            "learning_rate": float(DEFAULTS["learning_rate"]),
            "device": params.device(),
            "val_every": params.val_every.value(),
        }

    def validated_config(self) -> dict | None:
        """The normalised config ``validate_config`` returned when Finish was pressed."""
        return self._validated
