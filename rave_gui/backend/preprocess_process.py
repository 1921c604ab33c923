"""PreprocessProcess: ``rave preprocess`` in a QThread, with progress and clean-up.

Progress is the ``dataset length: 0:00:29.72`` RAVE prints, over the length
the plan expects. RAVE hangs instead of exiting when a worker fails, so the
lines that announce it end the run. On failure or cancel the half-written
output folder is removed (only what this run wrote); on success the dataset
is registered and ``dataset_created`` carries its id.
"""
from __future__ import annotations

import math
import re
import shutil
from collections import deque
from pathlib import Path

import yaml
from PyQt6.QtCore import pyqtSignal

from rave_gui.backend.audio_scan import format_seconds
from rave_gui.backend.log_parsing import parse_preprocess_line
from rave_gui.backend.preprocess import INSTALL_FFMPEG, PreprocessPlan, preprocess_command
from rave_gui.core.process import ProcessThread
from rave_gui.core.signals import app_signals

# multiprocessing's error callback prints the exception tuple: "(TypeError('...'),)"
# (on the same line as the last tqdm bar: "... 1it [00:00,  1.76it/s](TypeError('...'),)")
_WORKER_ERROR = re.compile(r"\((?P<kind>\w+(?:Error|Exception))\((?P<detail>.*)\),\)\s*$")
_NO_FILES = "No valid file found in"
CANCELLED = "Cancelled: the dataset was not created and the half-written folder was removed."
CANCELLED_BEFORE = "Cancelled before RAVE started: nothing was written."


def explain_worker_error(kind: str, detail: str) -> str:
    if kind == "FileNotFoundError":
        return ("RAVE could not start ffmpeg or ffprobe to read the audio. " + INSTALL_FFMPEG)
    if kind == "TypeError" and "NoneType" in detail:
        return ("ffprobe could not read one of the audio files, and RAVE stopped. "
                "Remove or convert files that do not play, then try again.")
    return (f"RAVE's preprocessing failed while reading the audio ({kind}: {detail}). "
            "Check that every file plays, then try again.")


class PreprocessProcess(ProcessThread):
    dataset_created = pyqtSignal(int)

    interrupt_timeout = 3.0
    terminate_timeout = 3.0

    def __init__(self, plan: PreprocessPlan, manager, name: str, rave: Path,
                 log_path=None, parent=None):
        super().__init__(log_path=log_path, parent=parent)
        self.plan = plan
        self.manager = manager
        self.name = name
        self.rave = Path(rave)
        self.dataset_id: int | None = None
        self.seconds_written: float | None = None
        self.failure: str | None = None
        self.tail: deque[str] = deque(maxlen=40)
        self._owned_output: bool | None = None  # None: nothing touched yet

    # -- before ----------------------------------------------------------------
    def prepare(self) -> None:
        out = self.plan.output_dir
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            raise ValueError(f"The output folder {out} is no longer empty. Choose a new folder.")
        self._owned_output = not out.exists()
        out.parent.mkdir(parents=True, exist_ok=True)

    def build_command(self) -> list[str]:
        if self.stop_requested:
            raise ValueError(CANCELLED_BEFORE)
        return preprocess_command(self.rave, self.plan)

    def on_started(self, pid: int) -> None:
        self.progress.emit(0, "Starting RAVE (loading PyTorch takes a few seconds)...")

    # -- during ----------------------------------------------------------------
    def handle_line(self, line: str) -> None:
        match = _WORKER_ERROR.search(line)
        if match:
            self.tail.append(line)
            self._fail(explain_worker_error(match["kind"], match["detail"]))
            return
        seconds = parse_preprocess_line(line)
        if seconds is not None:
            if seconds != self.seconds_written:
                self.seconds_written = seconds
                expected = self.plan.expected_seconds
                percent = int(min(99, 100 * seconds / expected)) if expected > 0 else 0
                self.progress.emit(percent, f"{format_seconds(seconds)} of "
                                            f"{format_seconds(expected)} written")
            return
        self.tail.append(line)
        if _NO_FILES in line:
            self._fail("RAVE found no audio files in the folders. Add audio files "
                       "(.wav, .flac, .mp3...) and try again.")

    def _fail(self, sentence: str) -> None:
        if self.failure is None:
            self.failure = sentence
            self.stop()  # RAVE would wait forever

    # -- after -----------------------------------------------------------------
    def outcome(self, returncode: int) -> tuple[bool, str]:
        if self.failure:
            return self._give_up(self.failure)
        if self.stop_requested:
            return self._give_up(CANCELLED)
        if returncode != 0:
            return self._give_up(self._explain_exit(returncode))
        written = self._written_seconds()
        if written is None:
            return self._give_up("RAVE finished without writing metadata.yaml, so the dataset "
                                 "is incomplete. See the log, then try again.")
        if written <= 0:
            return self._give_up(
                "RAVE finished but wrote no usable examples (the dataset length is 0). "
                "Check that ffmpeg can play the files and that there is more than "
                f"{2 * self.plan.example_seconds:.0f} s of audio, then try again.")
        try:
            self.dataset_id = self.manager.register(self.plan.output_dir, self.name)
        except ValueError as exc:
            return self._give_up(str(exc))
        self.progress.emit(100, f"{format_seconds(written)} written")
        self.dataset_created.emit(self.dataset_id)
        app_signals().dataset_added.emit(self.dataset_id)
        return True, (f"The dataset \u201c{self.name}\u201d is ready: {format_seconds(written)} "
                      f"of audio in {self.plan.output_dir}.")

    def _written_seconds(self) -> float | None:
        """``n_seconds`` from the metadata.yaml RAVE wrote; None when there is no
        usable one (missing, not a mapping, not a finite number)."""
        meta = self.plan.output_dir / "metadata.yaml"
        try:
            data = yaml.safe_load(meta.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError, ValueError, RecursionError):
            return None
        if data is None:
            data = {}
        if not isinstance(data, dict):
            return None
        seconds = data.get("n_seconds") or 0.0
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
            return None
        try:
            seconds = float(seconds)
        except OverflowError:  # an int too large for a float
            return None
        return seconds if math.isfinite(seconds) else None

    def _explain_exit(self, returncode: int) -> str:
        try:
            from rave_gui.backend.log_parsing import explain_failure
            reason = explain_failure(list(self.tail), returncode)
        except ImportError:  # pragma: no cover - older log_parsing
            reason = f"RAVE exited with code {returncode}."
        return f"Preprocessing failed: {reason}"

    def _give_up(self, sentence: str) -> tuple[bool, str]:
        self.remove_output()
        return False, sentence

    def remove_output(self) -> None:
        """Remove what this run wrote: the folder it created, or the files in the
        folder that was empty before."""
        out = self.plan.output_dir
        if self._owned_output is None or not out.is_dir():
            return
        if self._owned_output:
            shutil.rmtree(out, ignore_errors=True)
            return
        for child in out.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child, ignore_errors=True)
            else:
                child.unlink(missing_ok=True)
