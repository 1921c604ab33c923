"""The model scripts as processes the UI can follow and cancel, and their owner.

``ModelCheckProcess`` runs ``model_check`` on one ``.ts``; ``ModelTryProcess``
runs ``model_try`` (the reconstruction of an audio file). Both are
``ProcessThread``s: progress from the script's ``progress:`` lines, ``stop()``
ends the whole process group, ``result`` holds the script's JSON (or a sentence
built from its output when it printed none).

``ModelJobs`` (a QObject, like the RunController for runs) owns them: checks
run one at a time from a queue, one try at a time; results are written to the
library on the main thread (workers compute, the main thread applies). The
Models page calls it; it never starts a process itself.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

from PyQt6.QtCore import QCoreApplication, QObject, QTimer, pyqtSignal

from rave_gui.backend.model_tools import check_command, no_result, parse_progress, parse_result, try_command
from rave_gui.core.process import ProcessThread


class _ScriptProcess(ProcessThread):
    what = "script"

    def __init__(self, command: list[str], parent=None):
        super().__init__(command=command, parent=parent)
        self.result: dict | None = None

    def handle_line(self, line: str) -> None:
        step = parse_progress(line)
        if step is not None:
            self.progress.emit(*step)
            return
        parsed = parse_result(line)
        if parsed is not None:
            self.result = parsed

    def outcome(self, returncode: int) -> tuple[bool, str]:
        if self.stop_requested:
            self.result = {"ok": False, "message": f"The {self.what} was cancelled.", "cancelled": True}
            return False, self.result["message"]
        if self.result is None:
            self.result = no_result(list(self.tail), returncode, self.what)
        return bool(self.result["ok"]), str(self.result["message"])


class ModelCheckProcess(_ScriptProcess):
    """``python model_check.py MODEL.ts``; ``result`` is its JSON."""
    what = "check"

    def __init__(self, model_path, model_id: int | None = None, python: str | None = None, parent=None):
        super().__init__(check_command(model_path, python), parent=parent)
        self.model_path = str(model_path)
        self.model_id = model_id


class ModelTryProcess(_ScriptProcess):
    """``python model_try.py MODEL.ts IN OUT.wav ...``; ``result`` is its JSON."""
    what = "try"

    def __init__(self, model_path, audio_in, audio_out, *, scale=(), bias=(), device: str = "auto",
                 input_copy=None, python: str | None = None, parent=None):
        super().__init__(try_command(model_path, audio_in, audio_out, scale=scale, bias=bias, device=device,
                                     input_copy=input_copy, python=python), parent=parent)
        self.audio_out, self.input_copy = str(audio_out), input_copy and str(input_copy)


class ModelJobs(QObject):
    check_started = pyqtSignal(int)              # model id
    check_progress = pyqtSignal(int, int, str)   # model id, percent, what
    check_done = pyqtSignal(int, bool, str)      # model id, ok, sentence
    try_progress = pyqtSignal(int, str)          # percent, what
    try_done = pyqtSignal(bool, str, dict)       # ok, sentence, the script's result

    def __init__(self, library, work_dir=None, python: str | None = None, parent=None):
        super().__init__(parent)
        self.library = library
        self.python = python
        self.work_dir = Path(work_dir) if work_dir else Path(tempfile.mkdtemp(prefix="rave-gui-try-"))
        self._queue: list[int] = []
        self._check: ModelCheckProcess | None = None
        self._try: ModelTryProcess | None = None
        self._ending: list[ProcessThread] = []
        self._tries = 0
        self._reaper = QTimer(self)
        self._reaper.setInterval(200)
        self._reaper.timeout.connect(self._reap)

    # -- checks -----------------------------------------------------------------------------
    @property
    def checking_id(self) -> int | None:
        return self._check.model_id if self._check is not None else None

    def is_checking(self, model_id: int) -> bool:
        return model_id == self.checking_id or model_id in self._queue

    def verify(self, model_id: int) -> None:
        """Check a model (now, or after the checks before it)."""
        model = self.library.get(model_id)
        if model is None:
            raise ValueError("That model is no longer in the library.")
        if model["missing"]:
            raise ValueError(f"The file {model['path']} is missing: put it back, or remove the model.")
        if not self.is_checking(model_id):
            self._queue.append(model_id)
        self._next_check()

    def verify_unchecked(self) -> list[int]:
        """Queue every model never checked (exports from before the check, from
        another machine, new imports). Returns their ids."""
        ids = [i for i in self.library.unchecked_ids() if not self.is_checking(i)]
        self._queue += ids
        self._next_check()
        return ids

    def cancel_check(self) -> None:
        """Cancel the running check and empty the queue."""
        self._queue.clear()
        if self._check is not None:
            self._check.stop()

    def _next_check(self) -> None:
        if self._check is not None or not self._queue:
            return
        model_id = self._queue.pop(0)
        model = self.library.get(model_id)
        if model is None or model["missing"]:
            self._next_check()
            return
        process = ModelCheckProcess(model["path"], model_id, python=self.python)
        self._check = process
        process.progress.connect(lambda pct, what, m=model_id: self.check_progress.emit(m, pct, what))
        process.finished.connect(lambda ok, message, p=process: self._check_finished(p, ok, message))
        process.start()
        self.check_started.emit(model_id)

    def _check_finished(self, process: ModelCheckProcess, ok: bool, message: str) -> None:
        if self._check is process:
            self._check = None
        self._retire(process)
        result = process.result or {"ok": False, "message": message}
        if not result.get("cancelled") and self.library.get(process.model_id) is not None:
            self.library.record_check(process.model_id, result)
        self.check_done.emit(process.model_id, bool(result.get("ok")), str(result.get("message", message)))
        self._next_check()

    # -- tries --------------------------------------------------------------------------------
    def is_trying(self) -> bool:
        return self._try is not None

    def try_model(self, model_id: int, audio_in, *, scale=(), bias=(), device: str = "auto") -> ModelTryProcess:
        """Reconstruct ``audio_in`` with the model, in the background; ``try_done``
        brings the result (``output``: the WAV; ``input_copy``: the input as the
        model heard it, for the A/B)."""
        if self._try is not None:
            raise ValueError("A try is already running; wait for it or cancel it.")
        model = self.library.get(model_id)
        if model is None:
            raise ValueError("That model is no longer in the library.")
        if model["missing"]:
            raise ValueError(f"The file {model['path']} is missing: put it back, or remove the model.")
        if not Path(audio_in).is_file():
            raise ValueError(f"The audio file {audio_in} does not exist; choose another one.")
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self._tries += 1
        stem = f"try-{model_id}-{int(time.time())}-{self._tries}"
        for old in self.work_dir.glob("try-*.wav"):   # one try's files at a time
            old.unlink(missing_ok=True)
        process = ModelTryProcess(model["path"], audio_in, self.work_dir / f"{stem}.wav", scale=scale, bias=bias,
                                  device=device, input_copy=self.work_dir / f"{stem}-input.wav", python=self.python)
        self._try = process
        process.progress.connect(self.try_progress)
        process.finished.connect(lambda ok, message, p=process: self._try_finished(p, ok, message))
        process.start()
        return process

    def cancel_try(self) -> None:
        if self._try is not None:
            self._try.stop()

    def _try_finished(self, process: ModelTryProcess, ok: bool, message: str) -> None:
        if self._try is process:
            self._try = None
        self._retire(process)
        self.try_done.emit(ok, message, dict(process.result or {}))

    # -- ending ------------------------------------------------------------------------------
    def _retire(self, process: ProcessThread) -> None:
        self._ending.append(process)
        self._reaper.start()

    def _reap(self) -> None:
        self._ending = [p for p in self._ending if p.isRunning()]
        if not self._ending:
            self._reaper.stop()

    def stop_all(self, timeout: float = 20.0) -> None:
        """Cancel everything and wait for the threads (a closing window leaves nothing running)."""
        self._queue.clear()
        running = [p for p in (self._check, self._try) if p is not None]
        for process in running:
            process.stop()
        deadline = time.monotonic() + timeout
        while (self._check is not None or self._try is not None) and time.monotonic() < deadline:
            QCoreApplication.processEvents()
            time.sleep(0.02)
        for process in running + self._ending:
            process.wait(5_000)
        self._ending.clear()
