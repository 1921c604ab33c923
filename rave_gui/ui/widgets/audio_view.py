"""The Audio tab of a run: listen to RAVE's validation audio, original against reconstruction.

The event files are read by ``ValidationAudioFollower`` on a worker thread (one
poll at a time); the results come back through a queued signal and only the GUI
thread touches widgets. The selected validation's examples are decoded when it is
selected, and the four plots (waveform and spectrogram of both sides) are drawn
only when the selection changes.

Playback uses QtMultimedia's ``QAudioSink`` pulling PCM from a small QIODevice
that holds both sides of the example (in the output device's format when it does
not take the audio's own): switching between original and reconstruction while
playing keeps the position (an A/B test), and Loop wraps without a restart.
Without an output device, or without QtMultimedia, Play says so in a sentence.
"""
from __future__ import annotations

import concurrent.futures
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure
from PyQt6.QtCore import QIODevice, QObject, QTimer, pyqtSignal
from PyQt6.QtWidgets import (QButtonGroup, QCheckBox, QComboBox, QFileDialog, QHBoxLayout, QLabel,
                             QListWidget, QMenu, QPushButton, QSplitter, QToolButton, QVBoxLayout,
                             QWidget)

from rave_gui.backend.audio import (Validation, ValidationAudioFollower, envelope, save_wav,
                                    spectrogram_db, to_pcm)
from rave_gui.backend.rave_catalogue import N_SIGNAL
from rave_gui.ui.widgets.messages import error_label, set_error

SIDES = ("original", "reconstruction")
NO_DEVICE = "No audio output device was found; save the example as WAV to listen to it elsewhere."
NO_VALIDATIONS = ("No validation audio yet: RAVE writes it at every validation "
                  "(every val_every steps).")
_EXECUTOR: concurrent.futures.ThreadPoolExecutor | None = None


def audio_worker() -> concurrent.futures.ThreadPoolExecutor:
    """The one worker thread that reads validation audio off the GUI thread (the Audio
    tab and the Models page's Try panel); results are collected on the GUI thread."""
    global _EXECUTOR
    if _EXECUTOR is None:
        _EXECUTOR = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="validation-audio")
    return _EXECUTOR


def validation_label(v: Validation, loss: float | None) -> str:
    where = f"  (version_{v.version})" if v.version else ""
    if v.step is None:
        return f"Validation {v.counter + 1} of version_{v.version} (step unknown)"
    text = f"Step {v.step:,}"
    if loss is not None:
        text += f"   validation loss {loss:.4g}"
    return text + where


class _PcmSource(QIODevice):
    """The two sides of an example as PCM, read by the audio sink from one
    position: switching the side keeps the position (A/B), looping wraps it."""

    def __init__(self, sides: list[bytes], frame_bytes: int, active: int, loop: bool, parent=None):
        super().__init__(parent)
        self.sides, self.frame_bytes, self.active, self.loop = sides, frame_bytes, active, loop
        self.pos_bytes = 0

    def readData(self, maxlen: int) -> bytes:  # noqa: N802 - Qt's name
        data = self.sides[self.active]
        if self.pos_bytes >= len(data):
            if not self.loop:
                return b""
            self.pos_bytes = 0
        n = min(maxlen, len(data) - self.pos_bytes)
        n -= n % self.frame_bytes
        chunk = data[self.pos_bytes:self.pos_bytes + n]
        self.pos_bytes += n
        return chunk

    def writeData(self, data) -> int:  # noqa: N802 - Qt's name
        return -1

    def isSequential(self) -> bool:  # noqa: N802 - Qt's name
        return True

    def bytesAvailable(self) -> int:  # noqa: N802 - Qt's name
        left = len(self.sides[self.active]) - self.pos_bytes
        return (left if not self.loop else len(self.sides[self.active])) + super().bytesAvailable()

    def finished(self) -> bool:
        return not self.loop and self.pos_bytes >= len(self.sides[self.active])


class AudioPlayer(QObject):
    """Plays one example (its two sides) through the default output; never blocks."""

    finished = pyqtSignal()
    failed = pyqtSignal(str)      # a sentence: the output stopped with an error while playing

    def __init__(self, parent=None):
        super().__init__(parent)
        self._sink = self._source = None
        self._key = None          # the arrays being played (by identity)
        self._loop = False
        self._frames = 0          # frames of one side, in the output's rate

    def set_loop(self, loop: bool) -> None:
        self._loop = bool(loop)
        if self._source is not None:
            self._source.loop = self._loop

    def is_playing(self) -> bool:
        return self._sink is not None

    def position(self) -> float:
        """Where playback is, as a fraction of the example (about: what was handed to the output)."""
        if self._source is None or not self._frames:
            return 0.0
        return (self._source.pos_bytes / self._source.frame_bytes) / self._frames

    def play(self, sides: tuple[np.ndarray, np.ndarray], active: int, sample_rate: int) -> str:
        """Play ``sides[active]``; when these sides are already playing, switch to
        it at the same position. Returns '' or a sentence saying why it cannot."""
        if self._sink is not None and self._key == tuple(map(id, sides)):
            self._source.active = active
            return ""
        try:
            from PyQt6.QtMultimedia import QAudioFormat, QAudioSink
        except ImportError as exc:  # a Qt without its multimedia libraries
            return (f"Audio playback is not available here (QtMultimedia could not load: {exc}); "
                    "save the example as WAV to listen to it elsewhere.")
        device = self._output_device()
        if device is None:
            return NO_DEVICE
        self.stop()
        channels = 1 if sides[0].ndim == 1 else sides[0].shape[0]
        fmt = QAudioFormat()
        fmt.setSampleRate(int(sample_rate))
        fmt.setChannelCount(channels)
        fmt.setSampleFormat(QAudioFormat.SampleFormat.Int16)
        kind = "int16"
        if not device.isFormatSupported(fmt):   # play it in the device's own format
            fmt = device.preferredFormat()
            kinds = {QAudioFormat.SampleFormat.Int32: "int32", QAudioFormat.SampleFormat.Float: "float",
                     QAudioFormat.SampleFormat.UInt8: "uint8"}
            kind = kinds.get(fmt.sampleFormat(), "int16")
            if kind == "int16":
                fmt.setSampleFormat(QAudioFormat.SampleFormat.Int16)
        pcm = [to_pcm(side, sample_rate, fmt.sampleRate(), fmt.channelCount(), kind) for side in sides]
        frame_bytes = fmt.bytesPerFrame()
        self._frames = len(pcm[0]) // frame_bytes
        self._source = _PcmSource(pcm, frame_bytes, active, self._loop, self)
        self._source.open(QIODevice.OpenModeFlag.ReadOnly)
        self._key = tuple(map(id, sides))
        sink = self._sink = QAudioSink(device, fmt, self)
        sink.stateChanged.connect(self._state_changed)
        sink.start(self._source)
        if sink.error().name != "NoError":
            error = sink.error().name
            self.stop()
            return (f"The audio output {device.description()!r} could not start ({error}); "
                    "save the example as WAV to listen to it elsewhere.")
        return ""

    @staticmethod
    def _output_device():
        """The default audio output, else the first one, else None."""
        from PyQt6.QtMultimedia import QMediaDevices
        device = QMediaDevices.defaultAudioOutput()
        if device.isNull():
            outputs = QMediaDevices.audioOutputs()
            device = outputs[0] if outputs else None
        return device

    def stop(self) -> None:
        sink, self._sink, self._key = self._sink, None, None
        if sink is not None:
            sink.stateChanged.disconnect(self._state_changed)
            sink.stop()
            sink.deleteLater()
        if self._source is not None:
            self._source.close()
            self._source.deleteLater()
        self._source = None

    def _state_changed(self, state) -> None:
        if self._sink is None:
            return
        if state.name == "IdleState" and self._source.finished():
            QTimer.singleShot(0, self._end)    # not inside the sink's own signal
        elif state.name == "StoppedState" and self._sink.error().name != "NoError":
            error = self._sink.error().name
            QTimer.singleShot(0, lambda: self._fail(error))

    def _fail(self, error: str) -> None:
        if self._sink is not None:
            self.stop()
            self.failed.emit(f"Playback stopped: the audio output reported {error} (was the device "
                             "unplugged?). Press Play to try again, or save the example as WAV.")

    def _end(self) -> None:
        if self._sink is not None and self._source.finished():
            self.stop()
            self.finished.emit()


class AudioView(QWidget):
    """Validations on the left; examples, A/B playback, WAV export and plots on the right."""

    validations_changed = pyqtSignal(int)        # the number of validations listed

    def __init__(self, parent=None):
        super().__init__(parent)
        self._validations: list[Validation] = []
        self._val_losses: dict[int, float] = {}
        self._follower: ValidationAudioFollower | None = None
        self._run_dir: Path | None = None
        self._generation = 0
        self._in_flight = self._again = False
        self._pairs: list[tuple[np.ndarray, np.ndarray]] = []
        self._side = "original"
        self._status = ""
        # the worker's result is collected here, on the GUI thread: a worker never emits into
        # this view, which may be deleted while it reads (a race that crashed the process)
        self._futures: list[tuple[int, concurrent.futures.Future]] = []
        self._collect = QTimer(self)
        self._collect.setInterval(30)
        self._collect.timeout.connect(self._collect_results)

        self.list = QListWidget()
        self.list.currentRowChanged.connect(self._on_row)
        self.example_combo = QComboBox()
        self.example_combo.currentIndexChanged.connect(self._on_example)
        self.play_original_button = QPushButton("Play original")
        self.play_reconstruction_button = QPushButton("Play reconstruction")
        self.ab_group = QButtonGroup(self)
        self.ab_group.setExclusive(True)
        for side, button in zip(SIDES, (self.play_original_button, self.play_reconstruction_button)):
            button.setCheckable(True)
            button.setToolTip(f"Play the {side}; while playing, switching keeps the position (A/B).")
            button.clicked.connect(lambda _=False, s=side: self.play(s))
            self.ab_group.addButton(button)
        self.play_original_button.setChecked(True)
        self.loop_check = QCheckBox("Loop")
        self.loop_check.toggled.connect(lambda on: self.player.set_loop(on))
        self.stop_button = QPushButton("Stop")
        self.stop_button.clicked.connect(self.stop)
        self.save_button = QToolButton()
        self.save_button.setText("Save as WAV\u2026")
        self.save_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(self.save_button)
        menu.addAction("Original\u2026", lambda: self.save_as_wav("original"))
        menu.addAction("Reconstruction\u2026", lambda: self.save_as_wav("reconstruction"))
        self.save_button.setMenu(menu)
        self.status_label = QLabel()
        self.status_label.setWordWrap(True)
        self.note_label = QLabel()
        self.note_label.setWordWrap(True)
        self.note_label.hide()
        self.error = error_label()

        self.player = AudioPlayer(self)
        self.player.finished.connect(self._on_finished)
        self.player.failed.connect(lambda text: (self._set_error(text), self._update_controls()))

        self.figure = Figure(figsize=(6, 3.6))
        self.canvas = FigureCanvasQTAgg(self.figure)
        axes = self.figure.subplots(2, 2, sharex=True)
        self.wave_axes, self.spec_axes = list(axes[0]), list(axes[1])
        self.figure.subplots_adjust(left=0.09, right=0.98, top=0.92, bottom=0.12, hspace=0.3, wspace=0.22)
        self._setup_axes()

        controls = QHBoxLayout()
        for widget in (self.example_combo, self.play_original_button, self.play_reconstruction_button,
                       self.loop_check, self.stop_button, self.save_button):
            controls.addWidget(widget)
        controls.addStretch(1)
        right = QWidget()
        column = QVBoxLayout(right)
        column.setContentsMargins(0, 0, 0, 0)
        column.addLayout(controls)
        column.addWidget(self.note_label)
        column.addWidget(self.canvas, 1)
        splitter = QSplitter()
        splitter.addWidget(self.list)
        splitter.addWidget(right)
        splitter.setStretchFactor(1, 3)
        layout = QVBoxLayout(self)
        layout.addWidget(splitter, 1)
        layout.addWidget(self.status_label)
        layout.addWidget(self.error)
        self._update_controls()

    # -- public API ------------------------------------------------------------------------------

    @property
    def validations(self) -> list[Validation]:
        return list(self._validations)

    def set_run(self, run_dir: str | None, n_signal: int = N_SIGNAL, channels: int = 1,
                val_losses: dict[int, float] | None = None) -> None:
        """Show a run's validation audio (read on a worker thread); None clears."""
        self.stop()
        self._generation += 1
        self._in_flight = self._again = False
        self._validations, self._pairs = [], []
        self._val_losses = dict(val_losses or {})
        self._run_dir = Path(run_dir) if run_dir else None
        self._follower = ValidationAudioFollower(run_dir, n_signal, channels) if run_dir else None
        self.list.blockSignals(True)
        self.list.clear()
        self.list.blockSignals(False)
        self.example_combo.blockSignals(True)
        self.example_combo.clear()
        self.example_combo.blockSignals(False)
        set_error(self.error, "")
        self.note_label.hide()
        self._clear_plots()
        self._set_status("Reading the validation audio of this run\u2026" if run_dir else "")
        self._update_controls()
        self.validations_changed.emit(0)
        if self._follower is not None:
            self._submit()

    def refresh(self, val_losses: dict[int, float] | None = None) -> None:
        """Look for new validations (cheap: reads only what was appended). New
        validation losses, when given, relabel the list."""
        if val_losses:
            self._val_losses.update(val_losses)
            for row, v in enumerate(self._validations):
                self.list.item(row).setText(validation_label(v, self._loss(v)))
        if self._follower is None:
            return
        if self._in_flight:
            self._again = True
        else:
            self._submit()

    def select(self, index: int) -> None:
        self.list.setCurrentRow(index)

    def selected(self) -> Validation | None:
        row = self.list.currentRow()
        return self._validations[row] if 0 <= row < len(self._validations) else None

    def current_side(self) -> str:
        """Which side the A/B toggle is on: "original" or "reconstruction"."""
        return self._side

    def play(self, which: str) -> bool:
        """Play the selected example's original or reconstruction (from the same
        position when switching sides during playback). False, with a sentence
        in the status, when it cannot."""
        if which not in SIDES:
            raise ValueError(f"which must be one of {SIDES}, not {which!r}")
        self._set_side(which)
        v, pair = self.selected(), self._current_pair()
        if v is None or pair is None:
            self._set_error("Select a validation first.")
            return False
        problem = self.player.play(pair, SIDES.index(which), v.sample_rate)
        if problem:
            self._set_error(problem)
            self._update_controls()
            return False
        set_error(self.error, "")
        self._set_status(f"Playing the {which} of example {self.example_combo.currentIndex() + 1} "
                         f"({self._where(v)}).")
        self._update_controls()
        return True

    def stop(self) -> None:
        was = self.player.is_playing()
        self.player.stop()
        if was:
            self._set_status("Stopped.")
        self._update_controls()

    def is_playing(self) -> bool:
        return self.player.is_playing()

    def status_text(self) -> str:
        return " ".join(t for t in (self._status, self.error.text()) if t)

    def save_as_wav(self, which: str | None = None) -> str | None:
        """Ask for a file name and save the selected example's original or
        reconstruction (the A/B side when None). Returns the path, or None."""
        which = which or self._side
        v, pair = self.selected(), self._current_pair()
        if v is None or pair is None:
            self._set_error("Select a validation first.")
            return None
        example = self.example_combo.currentIndex() + 1
        name = (f"{self._run_dir.name if self._run_dir else 'run'}_"
                f"{'step' + str(v.step) if v.step is not None else 'v%d_val%d' % (v.version, v.counter + 1)}"
                f"_example{example}_{which}.wav")
        start = str((self._run_dir or Path.home()) / name)
        path, _ = QFileDialog.getSaveFileName(self, f"Save the {which} as WAV", start, "WAV audio (*.wav)")
        if not path:
            return None
        if not path.lower().endswith(".wav"):
            path += ".wav"
        try:
            save_wav(path, pair[SIDES.index(which)], v.sample_rate)
        except (OSError, ValueError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc)
            self._set_error(f"Could not save {path}: {reason}. Choose another folder or file name.")
            return None
        set_error(self.error, "")
        self._set_status(f"Saved the {which} of example {example} ({self._where(v)}) to {path}.")
        return path

    # -- reading (worker thread -> GUI thread) ---------------------------------------------------

    def _submit(self) -> None:
        self._in_flight = True
        self._futures.append((self._generation, audio_worker().submit(self._follower.poll)))
        self._collect.start()

    def _collect_results(self) -> None:
        while self._futures and self._futures[0][1].done():
            generation, future = self._futures.pop(0)
            try:
                result, error = future.result(), None
            except Exception as exc:  # noqa: BLE001 - reported as a sentence, the detail kept
                result, error = [], exc
            self._on_polled(generation, result, error)
        if not self._futures:
            self._collect.stop()

    def _on_polled(self, generation: int, new: list, error) -> None:
        if generation != self._generation:
            return
        self._in_flight = False
        if error is not None:
            self._set_error(f"Could not read the validation audio of this run ({error}). "
                            "It is read again at the next refresh.")
        first = not self._validations
        if not new and first:
            self._set_status("" if error is not None else NO_VALIDATIONS)
        if new:
            self._validations += new
            self.list.addItems([validation_label(v, self._loss(v)) for v in new])
            if first:                 # the newest validation is the one a person wants to hear
                self.select(len(self._validations) - 1)
            self.validations_changed.emit(len(self._validations))
        if self._again:
            self._again = False
            self._submit()

    # -- selection and plots ---------------------------------------------------------------------

    def _on_row(self, row: int) -> None:
        self.player.stop()
        self._pairs = []
        self.example_combo.blockSignals(True)
        self.example_combo.clear()
        v = self.selected()
        if v is not None:
            try:
                self._pairs = v.pairs
                set_error(self.error, "")
            except (OSError, ValueError) as exc:
                self._set_error(f"Could not read this validation's audio ({exc}).")
            self.example_combo.addItems([f"Example {i + 1}" for i in range(len(self._pairs))])
            self.note_label.setText(v.channels_note)
            self.note_label.setVisible(bool(v.channels_note))
            self._set_status(f"{self._where(v).capitalize()}: {len(self._pairs)} example(s) of "
                             f"{v.n_signal / v.sample_rate:.2f} s at {v.sample_rate:,} Hz.")
        self.example_combo.blockSignals(False)
        self._on_example(0 if self._pairs else -1)

    def _on_example(self, index: int) -> None:
        if self.player.is_playing():
            self.stop()
        pair, v = self._current_pair(), self.selected()
        if pair is None or v is None:
            self._clear_plots()
        else:
            self._draw(pair, v.sample_rate)
        self._update_controls()

    def _current_pair(self):
        index = self.example_combo.currentIndex()
        return self._pairs[index] if 0 <= index < len(self._pairs) else None

    def _setup_axes(self) -> None:
        """The artists are made once; a selection only sets their data (no ``Axes.clear``)."""
        self._drawn = False
        self._wave_lines: list[list] = [[], []]
        self._images = []
        for ax, title in zip(self.wave_axes, ("Original", "Reconstruction")):
            ax.set_title(title, fontsize=9)
            ax.set_ylim(-1.05, 1.05)
        for ax in self.spec_axes:
            self._images.append(ax.imshow(np.zeros((2, 2), np.float32), origin="lower", aspect="auto",
                                          cmap="magma", interpolation="nearest", visible=False))
            ax.set_xlabel("seconds", fontsize=7)
        for ax in self.wave_axes + self.spec_axes:
            ax.tick_params(labelsize=7)
        self.wave_axes[0].set_ylabel("amplitude", fontsize=7)
        self.spec_axes[0].set_ylabel("kHz", fontsize=7)

    def _clear_plots(self) -> None:
        if not self._drawn:
            return
        self._drawn = False
        for lines in self._wave_lines:
            for line in lines:
                line.set_data([], [])
        for image in self._images:
            image.set_visible(False)
        self.canvas.draw_idle()

    def _draw(self, pair, sample_rate: int) -> None:
        specs = [spectrogram_db(side) for side in pair]
        top = max(float(s.max()) for s in specs)
        duration = pair[0].shape[-1] / sample_rate
        for ax, lines, side in zip(self.wave_axes, self._wave_lines, pair):
            rows = side if side.ndim > 1 else side[None, :]
            while len(lines) < len(rows):
                lines.append(ax.plot([], [], linewidth=0.6, alpha=0.9 if not lines else 0.6)[0])
            for ch, line in enumerate(lines):
                if ch < len(rows):     # min and max of each run, zig-zagged: the waveform's outline
                    start, lo, hi = envelope(rows[ch], 800)
                    line.set_data(np.repeat(start / sample_rate, 2), np.column_stack([lo, hi]).ravel())
                else:
                    line.set_data([], [])
            ax.set_xlim(0, duration)
        for image, spec in zip(self._images, specs):
            image.set_data(spec)
            image.set_extent((0, duration, 0, sample_rate / 2000))
            image.set_clim(top - 80, top)
            image.set_visible(True)
        for ax in self.spec_axes:
            ax.set_ylim(0, sample_rate / 2000)
        self._drawn = True
        self.canvas.draw_idle()

    # -- small helpers ---------------------------------------------------------------------------

    def _loss(self, v: Validation) -> float | None:
        return v.val_loss if v.val_loss is not None else self._val_losses.get(v.step)

    @staticmethod
    def _where(v: Validation) -> str:
        return f"step {v.step:,}" if v.step is not None else f"validation {v.counter + 1} of version_{v.version}"

    def _set_side(self, which: str) -> None:
        self._side = which
        button = self.play_original_button if which == "original" else self.play_reconstruction_button
        button.setChecked(True)

    def _set_status(self, text: str) -> None:
        self._status = text
        self.status_label.setText(text)

    def _set_error(self, text: str) -> None:
        set_error(self.error, text)

    def _on_finished(self) -> None:
        self._set_status("Finished playing.")
        self._update_controls()

    def _update_controls(self) -> None:
        has_audio = self._current_pair() is not None
        for widget in (self.play_original_button, self.play_reconstruction_button, self.save_button,
                       self.example_combo):
            widget.setEnabled(has_audio)
        self.stop_button.setEnabled(self.player.is_playing())

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        self.player.stop()
        super().closeEvent(event)
