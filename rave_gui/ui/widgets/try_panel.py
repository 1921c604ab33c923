"""The "Try it" panel: hear a model on your own sound before Max or a DAW.

Pick an audio file (or a validation example of the model's run), optionally move
the first latent dimensions as the RAVE VST does (scale and bias), and run:
``ModelJobs.try_model`` reconstructs it in a subprocess with torch (GPU when
there is one), with progress and Cancel. The original (as the model heard it:
its rate, its channels) and the result play through ``AudioPlayer`` with an A/B
switch that keeps the position; waveform and spectrogram of both are drawn once
per result; Save writes the result as WAV.
"""
from __future__ import annotations

import concurrent.futures
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure
from PyQt6.QtCore import QTimer
from PyQt6.QtWidgets import (QButtonGroup, QCheckBox, QComboBox, QDoubleSpinBox, QFileDialog, QGridLayout,
                             QHBoxLayout, QLabel, QProgressBar, QPushButton, QVBoxLayout, QWidget)

from rave_gui.backend.audio import decode_wav, envelope, read_validation_audio, save_wav, spectrogram_db
from rave_gui.ui.widgets.audio_view import AudioPlayer, audio_worker
from rave_gui.ui.widgets.messages import error_label, hint_label, set_error

SIDES = ("original", "result")
MAX_CONTROLS = 4
AUDIO_FILTER = "Audio (*.wav *.flac *.ogg *.aif *.aiff *.mp3 *.m4a *.opus);;All files (*)"


def _latest_examples(run_dir: str, channels: int) -> list[tuple[str, np.ndarray, int]]:
    """(label, original, sample rate) of the newest validation's examples (worker thread)."""
    validations = read_validation_audio(run_dir, channels=channels)
    if not validations:
        return []
    v = validations[-1]
    where = f"step {v.step:,}" if v.step is not None else f"validation {v.counter + 1}"
    return [(f"Validation example {i + 1} ({where})", original, v.sample_rate)
            for i, (original, _reconstruction) in enumerate(v.pairs)]


class TryPanel(QWidget):
    def __init__(self, jobs, parent=None):
        super().__init__(parent)
        self.jobs = jobs
        self.model: dict | None = None
        self.input_path: str | None = None
        self.result: dict | None = None
        self.sides: tuple[np.ndarray, np.ndarray] | None = None
        self.sample_rate = 44100
        self._side = "original"
        self._examples: list[tuple[str, np.ndarray, int]] = []
        self._future: concurrent.futures.Future | None = None
        self._generation = 0
        self._collect = QTimer(self)
        self._collect.setInterval(50)
        self._collect.timeout.connect(self._collect_examples)

        self.model_label = QLabel("Select a model above to try it.")
        self.model_label.setWordWrap(True)
        self.file_button = QPushButton("Audio file\u2026")
        self.file_button.clicked.connect(self._pick_file)
        self.example_combo = QComboBox()
        self.example_combo.setToolTip("Or an example of the model's run (the newest validation's originals).")
        self.example_combo.activated.connect(self._use_example)
        self.input_label = QLabel("No audio chosen.")
        self.input_label.setWordWrap(True)
        self.device_combo = QComboBox()
        self.device_combo.addItem("GPU when there is one", "auto")
        self.device_combo.addItem("CPU", "cpu")
        self.run_button = QPushButton("Hear it")
        self.run_button.clicked.connect(self.start)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        self.progress = QProgressBar()
        self.progress.setRange(0, 100)
        self.status_label = QLabel("")
        self.status_label.setWordWrap(True)
        self.error = error_label()

        self.scale_spins: list[QDoubleSpinBox] = []
        self.bias_spins: list[QDoubleSpinBox] = []
        self.control_labels: list[QLabel] = []
        controls = QGridLayout()
        controls.addWidget(hint_label("Latent controls (as in the RAVE VST): scale and bias of the first "
                                      "dimensions."), 0, 0, 1, 5)
        for i in range(MAX_CONTROLS):
            label = QLabel(f"Dimension {i + 1}")
            scale, bias = QDoubleSpinBox(), QDoubleSpinBox()
            scale.setRange(-4.0, 4.0), scale.setSingleStep(0.1), scale.setValue(1.0)
            bias.setRange(-4.0, 4.0), bias.setSingleStep(0.1), bias.setValue(0.0)
            scale.setPrefix("scale "), bias.setPrefix("bias ")
            controls.addWidget(label, i + 1, 0)
            controls.addWidget(scale, i + 1, 1)
            controls.addWidget(bias, i + 1, 2)
            self.control_labels.append(label)
            self.scale_spins.append(scale)
            self.bias_spins.append(bias)
        reset = QPushButton("Reset controls")
        reset.clicked.connect(self.reset_controls)
        controls.addWidget(reset, 1, 3)

        self.player = AudioPlayer(self)
        self.player.finished.connect(lambda: self._update_controls())
        self.player.failed.connect(lambda text: (set_error(self.error, text), self._update_controls()))
        self.original_button = QPushButton("Original")
        self.result_button = QPushButton("Result")
        self.ab_group = QButtonGroup(self)
        for side, button in zip(SIDES, (self.original_button, self.result_button)):
            button.setCheckable(True)
            button.setToolTip(f"Play the {side}; switching while playing keeps the position (A/B).")
            button.clicked.connect(lambda _=False, s=side: self.play(s))
            self.ab_group.addButton(button)
        self.result_button.setChecked(True)
        self.loop_check = QCheckBox("Loop")
        self.loop_check.toggled.connect(self.player.set_loop)
        self.stop_button = QPushButton("Stop")
        self.stop_button.clicked.connect(self.stop)
        self.save_button = QPushButton("Save result as WAV\u2026")
        self.save_button.clicked.connect(lambda: self.save_result())

        self.figure = Figure(figsize=(6, 3.2))
        self.canvas = FigureCanvasQTAgg(self.figure)
        axes = self.figure.subplots(2, 2, sharex=True)
        self.wave_axes, self.spec_axes = list(axes[0]), list(axes[1])
        self.figure.subplots_adjust(left=0.09, right=0.98, top=0.9, bottom=0.14, hspace=0.35, wspace=0.22)
        for ax, title in zip(self.wave_axes, ("Original", "Result")):
            ax.set_title(title, fontsize=9)
            ax.set_ylim(-1.05, 1.05)
        for ax in self.wave_axes + self.spec_axes:
            ax.tick_params(labelsize=7)
        self._lines = [ax.plot([], [], linewidth=0.6)[0] for ax in self.wave_axes]
        self._images = [ax.imshow(np.zeros((2, 2), np.float32), origin="lower", aspect="auto", cmap="magma",
                                  visible=False) for ax in self.spec_axes]

        source = QHBoxLayout()
        for widget in (self.file_button, self.example_combo):
            source.addWidget(widget)
        source.addWidget(self.input_label, 1)
        run = QHBoxLayout()
        for widget in (QLabel("Run on:"), self.device_combo, self.run_button, self.cancel_button):
            run.addWidget(widget)
        run.addWidget(self.progress, 1)
        playback = QHBoxLayout()
        for widget in (self.original_button, self.result_button, self.loop_check, self.stop_button,
                       self.save_button):
            playback.addWidget(widget)
        playback.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.model_label)
        layout.addLayout(source)
        layout.addLayout(controls)
        layout.addLayout(run)
        layout.addWidget(self.status_label)
        layout.addWidget(self.error)
        layout.addLayout(playback)
        layout.addWidget(self.canvas, 1)
        jobs.try_progress.connect(self._on_progress)
        jobs.try_done.connect(self._on_done)
        self.set_model(None)

    # -- what to try ---------------------------------------------------------------------------
    def set_model(self, model: dict | None, run_dir: str | None = None, channels: int = 1) -> None:
        """The model to try; ``run_dir`` (its run) offers that run's validation examples."""
        self.model = model
        self._generation += 1
        self._examples = []
        self.example_combo.clear()
        self.example_combo.setEnabled(False)
        if model is None:
            self.model_label.setText("Select a model above to try it.")
        else:
            self.model_label.setText(f"Try \u201c{model['display_name']}\u201d on your own sound: it encodes the "
                                     "audio and decodes it again (timbre transfer).")
        latent = (model or {}).get("latent_size") or MAX_CONTROLS
        for i, widgets in enumerate(zip(self.control_labels, self.scale_spins, self.bias_spins)):
            for widget in widgets:
                widget.setVisible(i < min(latent, MAX_CONTROLS))
        if model is not None and run_dir:
            self.example_combo.addItem("Reading the run's validation examples\u2026")
            self._future = audio_worker().submit(_latest_examples, run_dir, channels)
            self._future_generation = self._generation
            self._collect.start()
        else:
            self.example_combo.addItem("No validation examples")
        self._update_controls()

    def set_input(self, path: str | None) -> None:
        self.input_path = str(path) if path else None
        self.input_label.setText(Path(path).name if path else "No audio chosen.")
        self.input_label.setToolTip(str(path or ""))
        self._update_controls()

    def _pick_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Audio to try the model on", str(Path.home()), AUDIO_FILTER)
        if path:
            self.set_input(path)

    def _collect_examples(self) -> None:
        future = self._future
        if future is None or not future.done():
            return
        self._collect.stop()
        self._future = None
        if self._future_generation != self._generation:
            return
        try:
            self._examples = future.result()
        except Exception:  # noqa: BLE001 - no examples to offer; files remain
            self._examples = []
        self.example_combo.clear()
        if self._examples:
            self.example_combo.addItem("Or a validation example\u2026")
            self.example_combo.addItems([label for label, _audio, _rate in self._examples])
            self.example_combo.setEnabled(True)
        else:
            self.example_combo.addItem("No validation examples")

    def _use_example(self, index: int) -> None:
        if not 1 <= index <= len(self._examples):
            return
        label, audio, rate = self._examples[index - 1]
        self.jobs.work_dir.mkdir(parents=True, exist_ok=True)
        path = save_wav(self.jobs.work_dir / f"validation-example-{index}.wav", audio, rate)
        self.set_input(str(path))
        self.input_label.setText(label)

    def reset_controls(self) -> None:
        for spin in self.scale_spins:
            spin.setValue(1.0)
        for spin in self.bias_spins:
            spin.setValue(0.0)

    def controls(self) -> tuple[list[float], list[float]]:
        n = sum(1 for spin in self.scale_spins if not spin.isHidden())
        return ([s.value() for s in self.scale_spins[:n]], [b.value() for b in self.bias_spins[:n]])

    # -- running ----------------------------------------------------------------------------------
    def start(self) -> bool:
        if self.model is None or not self.input_path:
            set_error(self.error, "Choose a model and an audio file first.")
            return False
        self.stop()
        scale, bias = self.controls()
        try:
            self.jobs.try_model(self.model["id"], self.input_path, scale=scale, bias=bias,
                                device=self.device_combo.currentData())
        except (ValueError, OSError) as exc:
            set_error(self.error, str(exc))
            return False
        set_error(self.error, "")
        self.progress.setValue(0)
        self.status_label.setText("Starting\u2026 (loading torch and the model takes a few seconds)")
        self._update_controls()
        return True

    def cancel(self) -> None:
        self.jobs.cancel_try()

    def _on_progress(self, percent: int, what: str) -> None:
        self.progress.setValue(percent)
        self.status_label.setText(f"Running: {what}")

    def _on_done(self, ok: bool, message: str, result: dict) -> None:
        self._update_controls()
        if not ok:
            self.progress.setValue(0)
            self.status_label.setText("")
            set_error(self.error, message)
            return
        try:
            original, rate = decode_wav(Path(result["input_copy"]).read_bytes())
            output, _ = decode_wav(Path(result["output"]).read_bytes())
        except (OSError, ValueError, KeyError, TypeError) as exc:
            set_error(self.error, f"The result could not be read back ({exc}).")
            return
        self.result, self.sample_rate = result, rate
        self.sides = tuple(side[0] if side.shape[0] == 1 else side for side in (original, output))
        self.progress.setValue(100)
        self.status_label.setText(message)
        set_error(self.error, "")
        self._draw()
        self._update_controls()

    # -- listening ----------------------------------------------------------------------------------
    def play(self, side: str) -> bool:
        self._side = side
        (self.original_button if side == "original" else self.result_button).setChecked(True)
        if self.sides is None:
            return False
        problem = self.player.play(self.sides, SIDES.index(side), self.sample_rate)
        set_error(self.error, problem)
        self._update_controls()
        return not problem

    def stop(self) -> None:
        self.player.stop()
        self._update_controls()

    def save_result(self, path: str | None = None) -> str | None:
        if not self.result:
            return None
        if path is None:
            start = str(Path.home() / f"{self.model['display_name'] if self.model else 'model'}-try.wav")
            path, _ = QFileDialog.getSaveFileName(self, "Save the result as WAV", start, "WAV audio (*.wav)")
            if not path:
                return None
        if not path.lower().endswith(".wav"):
            path += ".wav"
        try:   # from memory: the next try replaces the files of this one
            save_wav(path, self.sides[1], self.sample_rate)
        except (OSError, ValueError) as exc:
            set_error(self.error, f"Could not save {path}: {getattr(exc, 'strerror', None) or exc}. "
                      "Choose another folder.")
            return None
        self.status_label.setText(f"Saved the result to {path}.")
        return path

    def _draw(self) -> None:
        specs = [spectrogram_db(side) for side in self.sides]
        top = max(float(s.max()) for s in specs)
        rate = self.sample_rate
        duration = self.sides[0].shape[-1] / rate
        for ax, line, side in zip(self.wave_axes, self._lines, self.sides):
            mono = side if side.ndim == 1 else side.mean(axis=0)
            start, lo, hi = envelope(mono, 800)
            line.set_data(np.repeat(start / rate, 2), np.column_stack([lo, hi]).ravel())
            ax.set_xlim(0, duration)
        for ax, image, spec in zip(self.spec_axes, self._images, specs):
            image.set_data(spec)
            image.set_extent((0, duration, 0, rate / 2000))
            image.set_clim(top - 80, top)
            image.set_visible(True)
            ax.set_ylim(0, rate / 2000)
        self.canvas.draw_idle()

    def _update_controls(self) -> None:
        running = self.jobs.is_trying()
        self.run_button.setEnabled(not running and self.model is not None and bool(self.input_path)
                                   and self.model.get("status") != "missing")
        self.cancel_button.setEnabled(running)
        have = self.sides is not None
        for widget in (self.original_button, self.result_button, self.save_button):
            widget.setEnabled(have)
        self.stop_button.setEnabled(self.player.is_playing())

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        self.player.stop()
        super().closeEvent(event)
