"""TrainingProcess: the QThread that runs (or re-attaches to) ``rave train``.

Numbers come from two places. Stdout carries no losses in RAVE 2.3.1, only
tqdm bars and the launcher's ``[rave-gui:TOKEN] step=N/M`` lines, which give
the step as it happens (a line without this launch's token is never trusted).
The losses are read from the run's TensorBoard event files
(``events.RunEventsFollower``), polled while the process lives; every point
goes through ``TrainingManager.update_training_metrics`` into the history and
out through ``metrics_update``.

The thread never writes a run's status: it says how the run ended
(``final_status``, then the design card's ``finished(bool, str)``) and the
``RunController`` applies it on the main thread. A database hiccup (locked,
full disk) never ends the training: points wait in memory and are written
when the database answers again, and ``warning`` tells the person.
"""
from __future__ import annotations

import os
import secrets
import time
from pathlib import Path

import psutil
from PyQt6.QtCore import pyqtSignal

from rave_gui.backend import rave_cli
from rave_gui.backend.datasets import read_metadata
from rave_gui.backend.events import RunEventsFollower
from rave_gui.backend.log_parsing import explain_failure, parse_fit_end, parse_launcher_line, parse_progress_line
from rave_gui.backend.run_paths import RunPaths
from rave_gui.core.process import ProcessThread


def process_start_time(pid: int) -> float | None:
    try:
        return psutil.Process(pid).create_time()
    except (psutil.Error, OSError):
        return None


class TrainingProcess(ProcessThread):
    metrics_update = pyqtSignal(dict)
    step_update = pyqtSignal(int, int)
    started_pid = pyqtSignal(int)          # the training process runs (pid)
    checkpoint_saved = pyqtSignal(str)     # a checkpoint file was written

    #: seconds between two reads of the event files
    events_interval = 1.0
    #: a stop waits for the current step (and a validation) to end, then the checkpoint to be saved
    interrupt_timeout = 45.0
    #: points kept in memory while the database does not answer
    max_buffered = 200_000

    def __init__(self, manager, experiment_id: int, resume: bool = False, rave: str | None = None,
                 launcher: bool = True, attach_pid: int | None = None, device: str | None = None,
                 parent=None):
        exp = manager.get_experiment(experiment_id)
        if exp is None:
            raise ValueError(f"There is no experiment {experiment_id}.")
        self.token = exp.get("launch_token") if attach_pid else secrets.token_hex(8)
        env = dict(os.environ, RAVE_GUI_LOG_EVERY=str(int(exp["config"].get("log_every") or 50)),
                   RAVE_GUI_TOKEN=self.token or "")
        paths = RunPaths.of(exp)
        super().__init__(log_path=exp["log_path"] or paths.log, env=env, parent=parent)
        self.manager = manager
        self.experiment_id = experiment_id
        self.config = exp["config"]
        self.paths = paths
        self.out_dir = paths.out_dir
        self.total_steps = int(self.config["max_steps"])
        self.resume = resume
        self.rave_setting = rave
        self.launcher = launcher
        self.device = device
        self.step = int(exp.get("current_step") or 0)
        self.fit_ended = False
        self.final_status: str | None = None
        # a resumed process: the older versions' points after its checkpoint are an abandoned branch
        self.follower = RunEventsFollower(paths.run_dir, resume_from=self.step if resume else None)
        self._next_events = 0.0
        self._dataset: dict | None = None
        self.attach_pid = attach_pid
        self._shown_up_to = manager.last_step(experiment_id) if (resume or attach_pid) else -1
        self._unsaved: list[dict] = []   # points the database did not take yet
        self._complete_through = -1      # every step up to this one is fully written (step lines)
        self._db_trouble: str | None = None

    def run(self) -> None:
        if self.attach_pid is None:
            super().run()
            return
        # a training process started by an earlier session of the app: its log is
        # followed from the current end, its event files from the start (points
        # already stored are not counted twice, nor sent to the plot again)
        self._guard("recording the re-attach", self.manager.record_event, self.experiment_id, "reattached",
                    self.step)
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
        if self.resume and not self.paths.checkpoints():
            raise ValueError("This run has no checkpoint to resume from yet (RAVE writes one at the "
                             "first validation, or when the app stops it).")
        try:
            self.out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ValueError(f"The run folder {self.out_dir} cannot be created ({exc.strerror or exc}). "
                             "Check the permissions of the data folder, or choose another with --data-dir.")
        self._guard("recording the launch", self.manager.set_launch_token, self.experiment_id, self.token)

    def build_command(self) -> list[str]:
        ckpt = self.paths.run_dir if self.resume else None
        cfg = dict(self.config, device=self.device) if self.device else self.config
        return rave_cli.train_command(self.rave, cfg, self._dataset, self.out_dir,
                                      launcher=self.launcher, ckpt=ckpt)

    def on_started(self, pid: int) -> None:
        self.started_pid.emit(pid)
        self.manager.set_process_info(self.experiment_id, pid, process_start_time(pid))

    # -- while it runs --------------------------------------------------------------
    def handle_line(self, line: str) -> None:
        if parse_fit_end(line) is not None:
            self.fit_ended = True
        ours = parse_launcher_line(line, self.token)
        if ours is None:
            if "[rave-gui" not in line:
                bar = parse_progress_line(line)
                if bar is not None:
                    self.progress.emit(self._percent(), f"{bar['phase']} {bar['current']}/{bar['total']}")
            return
        if "run_dir" in ours:
            run_dir = Path(ours["run_dir"]).parent
            self.follower.run_dir = run_dir
            self.manager.set_run_dir(self.experiment_id, run_dir)
        elif "checkpoint" in ours or "saved" in ours:
            self.checkpoint_saved.emit(ours.get("checkpoint") or ours["saved"])
        elif "total" in ours:
            # printed at the end of a batch: the previous batch, its logging and any validation
            # after it are written by now, so the steps before it are complete in the event file
            self._complete_through = max(self._complete_through, ours["step"] - 2)
            self._set_step(ours["step"])

    def _set_step(self, step: int) -> None:
        if step < self.step and not self.resume:
            return
        self.step = step
        self.step_update.emit(step, self.total_steps)
        self.progress.emit(self._percent(), f"step {step}/{self.total_steps}")
        self.manager.set_current_step(self.experiment_id, step)

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
            self.follower.run_dir = self.paths.run_dir
        batch = self.follower.poll(final=final, complete_through=self._complete_through)
        late = self.follower.late_only
        for metrics in batch:
            if metrics["step"] > self._shown_up_to:  # the plot already has the stored history
                # a step sent before gets only its late points (a validation written after it)
                self.metrics_update.emit(late.get(metrics["step"], metrics))
        if batch and batch[-1]["step"] > self.step:
            self.step = batch[-1]["step"]
            self.step_update.emit(self.step, self.total_steps)
        self._store(batch)

    def _store(self, batch: list[dict]) -> None:
        """Write points to the history; while the database fails, keep them (bounded)
        and try again at the next poll. The training never pays for it."""
        pending = self._unsaved + batch
        if not pending:
            return
        try:
            self.manager.update_training_metrics(self.experiment_id, pending)
        except Exception as exc:  # noqa: BLE001 - locked, full disk, read-only: keep following
            self._unsaved = pending[-self.max_buffered:]
            text = str(exc)
            if text != self._db_trouble:
                self._db_trouble = text
                self.warning.emit(f"The app cannot write this run's history to its database ({text}). "
                                  f"The training goes on; {len(self._unsaved):,} point(s) wait in memory "
                                  "and are saved when the database answers again.")
            return
        self._unsaved = []
        if self._db_trouble is not None:
            self._db_trouble = None
            self.warning.emit("The database answers again; this run's history is saved.")

    # -- the end ------------------------------------------------------------------
    def outcome(self, returncode: int) -> tuple[bool, str]:
        self._guard("reading the last points", self.read_events, True)
        attached = self.attach_pid is not None
        if self.stop_requested:
            status, ok, message = "stopped", False, f"Stopped at step {self.step:,}."
        elif returncode == 0 and (self.fit_ended or self.step >= self.total_steps):
            status, ok, message = "completed", True, f"Completed {self.total_steps:,} steps."
            if self.step < self.total_steps:
                self._set_step(self.total_steps)
        elif attached:
            # a re-attached process's exit code is unknown: it ended without reaching its end
            status, ok, message = "failed", False, (
                explain_failure(list(self.tail), None) if any("Traceback" in ln for ln in self.tail) else
                f"The training process ended at step {self.step:,} without finishing (it was killed, "
                "or crashed without a message). Resume it to continue from its last checkpoint.")
        elif returncode == 0:
            status, ok, message = "stopped", False, f"RAVE was interrupted at step {self.step:,}."
        else:
            status, ok, message = "failed", False, explain_failure(list(self.tail), returncode)
        self._end(status)
        return ok, message

    def on_error(self, message: str) -> None:
        self._end("failed")

    def on_refused(self, message: str) -> None:
        self._end("stopped" if self.stop_requested else "failed")

    def _end(self, status: str) -> None:
        self.final_status = status
        self._guard("clearing the process record", self.manager.set_process_info, self.experiment_id, None, None)
