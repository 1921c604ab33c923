"""TrainingProcess: the QThread that runs (or re-attaches to) ``rave train``.

Numbers come from two places. Stdout carries no losses in RAVE 2.3.1, only
tqdm bars and the launcher's ``[rave-gui] step=N/M`` lines, which give the
step as it happens. The losses are read from the run's TensorBoard event
files (``events.RunEventsFollower``), polled while the process lives; every
point goes through ``TrainingManager.update_training_metrics`` into the
history and out through ``metrics_update``.
"""
from __future__ import annotations

import collections
import os
import time
from pathlib import Path

import psutil
from PyQt6.QtCore import pyqtSignal

from rave_gui.backend import rave_cli
from rave_gui.backend.checkpoints import list_checkpoints
from rave_gui.backend.datasets import read_metadata
from rave_gui.backend.events import RunEventsFollower
from rave_gui.backend.log_parsing import explain_failure, parse_fit_end, parse_metrics, parse_progress_line
from rave_gui.core.process import ProcessThread
from rave_gui.core.signals import app_signals

TAIL_LINES = 40


def find_run_dir(out_dir: str | Path) -> Path | None:
    """The ``NAME_<hash>`` folder RAVE created inside an experiment's own output folder."""
    out = Path(out_dir)
    if not out.is_dir():
        return None
    runs = [p for p in out.iterdir() if p.is_dir() and ((p / "config.gin").exists() or any(p.glob("version_*")))]
    return max(runs, key=lambda p: p.stat().st_mtime) if runs else None


def process_start_time(pid: int) -> float | None:
    try:
        return psutil.Process(pid).create_time()
    except (psutil.Error, OSError):
        return None


class TrainingProcess(ProcessThread):
    metrics_update = pyqtSignal(dict)
    step_update = pyqtSignal(int, int)

    #: seconds between two reads of the event files
    events_interval = 1.0
    #: a stop waits for the current step (and a validation) to end, then the checkpoint to be saved
    interrupt_timeout = 45.0

    def __init__(self, manager, experiment_id: int, resume: bool = False, rave: str | None = None,
                 launcher: bool = True, attach_pid: int | None = None, parent=None):
        exp = manager.get_experiment(experiment_id)
        if exp is None:
            raise ValueError(f"There is no experiment {experiment_id}.")
        env = dict(os.environ, RAVE_GUI_LOG_EVERY=str(int(exp["config"].get("log_every") or 50)))
        super().__init__(log_path=exp["log_path"], env=env, parent=parent)
        self.manager = manager
        self.experiment_id = experiment_id
        self.config = exp["config"]
        self.out_dir = Path(exp["out_dir"])
        self.total_steps = int(self.config["max_steps"])
        self.resume = resume
        self.rave_setting = rave
        self.launcher = launcher
        self.step = int(exp.get("current_step") or 0)
        self.fit_ended = False
        self.tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
        self.follower = RunEventsFollower(find_run_dir(self.out_dir))
        self._next_events = 0.0
        self._dataset: dict | None = None
        self.attach_pid = attach_pid
        self._shown_up_to = manager.last_step(experiment_id) if (resume or attach_pid) else -1

    def run(self) -> None:
        if self.attach_pid is None:
            super().run()
            return
        # a training process started by an earlier session of the app: its log is
        # followed from the current end, its event files from the start (points
        # already stored are not counted twice, nor sent to the plot again)
        try:
            self.manager.record_event(self.experiment_id, "reattached", self.step)
        except Exception as exc:  # noqa: BLE001 - report, never abort the app from a thread
            self._refuse(f"Could not re-attach to the run: {exc}.")
            return
        self.run_attached(self.attach_pid, Path(self.log_path))

    # -- before launch -----------------------------------------------------------
    def prepare(self) -> None:
        self.rave = rave_cli.find_rave(self.rave_setting)
        dataset = self.manager.db.query_one("SELECT * FROM datasets WHERE id = ?", (self.config["dataset_id"],))
        if dataset is None:
            raise ValueError("The dataset of this run was removed. Register it again on the Datasets page.")
        self._dataset = dict(dataset)
        meta = read_metadata(self._dataset["path"])  # raises a sentence if the folder is gone
        self._dataset["channels"] = meta["channels"]
        if self.resume and not list_checkpoints(find_run_dir(self.out_dir)):
            raise ValueError("This run has no checkpoint to resume from yet (RAVE writes one at the "
                             "first validation, or when the app stops it).")
        self.out_dir.mkdir(parents=True, exist_ok=True)

    def build_command(self) -> list[str]:
        ckpt = find_run_dir(self.out_dir) if self.resume else None
        return rave_cli.train_command(self.rave, self.config, self._dataset, self.out_dir,
                                      launcher=self.launcher, ckpt=ckpt)

    def on_started(self, pid: int) -> None:
        self.manager.set_process_info(self.experiment_id, pid, process_start_time(pid))
        app_signals().training_started.emit(self.experiment_id)

    # -- while it runs --------------------------------------------------------------
    def handle_line(self, line: str) -> None:
        self.tail.append(line)
        if parse_fit_end(line) is not None:
            self.fit_ended = True
        # the launcher's lines may follow a tqdm bar on the same line (no newline after \r)
        line, marker, ours = line.partition("[rave-gui]")
        bar = parse_progress_line(line)
        if bar is not None and not marker:
            self.progress.emit(self._percent(), f"{bar['phase']} {bar['current']}/{bar['total']}")
        if not marker:
            return
        if "run_dir=" in ours:
            self.follower.run_dir = Path(ours.split("run_dir=", 1)[1].strip()).parent
            return
        found = parse_metrics(ours)
        if "step" in found:
            self._set_step(found["step"])

    def _set_step(self, step: int) -> None:
        if step < self.step and not self.resume:
            return
        self.step = step
        self.manager.set_current_step(self.experiment_id, step)
        self.step_update.emit(step, self.total_steps)
        self.progress.emit(self._percent(), f"step {step}/{self.total_steps}")
        app_signals().training_progress.emit(self.experiment_id, step, self.total_steps)

    def _percent(self) -> int:
        return max(0, min(100, int(100 * self.step / max(1, self.total_steps))))

    def poll(self) -> None:
        now = time.monotonic()
        if now < self._next_events:
            return
        self._next_events = now + self.events_interval
        self.read_events(final=False)

    def read_events(self, final: bool) -> None:
        if self.follower.run_dir is None:
            self.follower.run_dir = find_run_dir(self.out_dir)
        batch = self.follower.poll(final=final)
        if not batch:
            return
        self.manager.update_training_metrics(self.experiment_id, batch)
        for metrics in batch:
            if metrics["step"] > self._shown_up_to:  # the plot already has the stored history
                self.metrics_update.emit(metrics)
        if batch[-1]["step"] > self.step:
            self._set_step(batch[-1]["step"])

    # -- the end ------------------------------------------------------------------
    def outcome(self, returncode: int) -> tuple[bool, str]:
        self.read_events(final=True)
        if self.stop_requested:
            status, ok, message = "stopped", False, f"Stopped at step {self.step}."
            self._finish(status, None)
            return ok, message
        elif returncode == 0 and (self.fit_ended or self.step >= self.total_steps):
            status, ok, message = "completed", True, f"Completed {self.total_steps} steps."
            if self.step < self.total_steps:
                self._set_step(self.total_steps)
        elif returncode == 0 and self.attach_pid is not None and any("Traceback" in ln for ln in self.tail):
            # a re-attached process's exit code is unknown: its output tells a crash
            status, ok, message = "failed", False, explain_failure(list(self.tail), None)
        elif returncode == 0:
            status, ok, message = "stopped", False, f"RAVE was interrupted at step {self.step}."
        else:
            status, ok, message = "failed", False, explain_failure(list(self.tail), returncode)
        self._finish(status, None if ok else message)
        return ok, message

    def on_error(self, message: str) -> None:
        self._finish("failed", message)

    def on_refused(self, message: str) -> None:
        self._finish("stopped" if self.stop_requested else "failed", message)

    def _finish(self, status: str, reason: str | None) -> None:
        exp = self.manager.get_experiment(self.experiment_id)
        if exp is not None and exp["status"] == "running":  # a stop already recorded itself
            self.manager.update_experiment_status(self.experiment_id, status, reason)
        self.manager.set_process_info(self.experiment_id, None, None)
        self.manager.unregister_process(self.experiment_id, self)
        signals = app_signals()
        if status == "completed":
            signals.training_completed.emit(self.experiment_id)
        elif status == "stopped":
            signals.training_stopped.emit(self.experiment_id)
        else:
            signals.training_failed.emit(self.experiment_id, reason or "")
        signals.experiment_changed.emit(self.experiment_id)
