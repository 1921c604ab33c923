"""RunController: the one owner of every live process (training and export).

The pages render and call it; they never start, stop or kill a process. It

* starts runs now (``start``) or puts them in the queue (``enqueue``), and
  starts queued runs when their device is free: one run per GPU (``gpu:N``;
  ``auto`` takes the first free GPU, or a CPU slot on a machine without one),
  ``cpu_slots`` CPU runs at a time. The queue lives in the database;
* registers each process with the ``TrainingManager`` (the design card's
  ``register_process`` / ``stop_training``);
* applies every status change on the main thread, through the state machine
  (``TrainingManager.set_status``): a worker thread computes how its run
  ended, the controller writes it;
* watches each live run's health (``health``: NaN, stalled, disk, memory) and
  stops a run that goes NaN when its config says so;
* tells the UI what changed: ``run_changed(id, what)`` with ``what`` one of
  "status", "step", "metrics", "log", "checkpoints", "export", "queue", "health", plus
  the data signals ``step_changed``, ``metrics_added``, ``log_line``,
  ``export_progress``, ``export_done`` and ``warning``.

A QObject (QtCore only, as the design card allows for the backend's threads).
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from PyQt6.QtCore import QCoreApplication, QObject, QTimer, pyqtSignal

from rave_gui.backend import rave_cli
from rave_gui.backend.health import (STALL_MINUTES, disk_alert, expected_checkpoint_bytes, memory_alert,
                                     nan_alert, stall_alert)
from rave_gui.backend.run_state import LIVE, TransitionError
from rave_gui.core.process_group import end_group

log = logging.getLogger(__name__)


@dataclass
class LiveRun:
    """What the controller keeps for a run whose process it holds."""
    process: object
    device: str
    total: int
    step: int = 0
    started: float = field(default_factory=time.monotonic)
    first_step: int | None = None   # the first step this process reported (for the rate)
    progressed: float = field(default_factory=time.monotonic)  # when the step last moved

    def eta_seconds(self) -> float | None:
        """Seconds to the end at the rate measured since this process's first step
        (its start-up, a resume's checkpoint loading, is not counted)."""
        if self.first_step is None:
            return None
        elapsed = time.monotonic() - self.started
        done = self.step - self.first_step
        if elapsed <= 0 or done <= 0:
            return None
        return (self.total - self.step) / (done / elapsed)


class RunController(QObject):
    run_changed = pyqtSignal(int, str)
    step_changed = pyqtSignal(int, int, int)      # experiment id, step, total
    metrics_added = pyqtSignal(int, dict)         # experiment id, one step's metrics
    log_line = pyqtSignal(int, str)               # experiment id, one line of output
    export_progress = pyqtSignal(int, int, str)   # experiment id, percent, what
    export_done = pyqtSignal(int, bool, str)      # experiment id, ok, path or reason
    warning = pyqtSignal(int, str)                # experiment id, a sentence (the run goes on)
    health_changed = pyqtSignal(int, str, str)    # experiment id, kind, sentence ("" when cleared)

    def __init__(self, manager, cpu_slots: int = 1, parent=None, *, rave: str | None = None,
                 launcher: bool = True):
        super().__init__(parent)
        self.manager = manager
        self.cpu_slots = max(1, int(cpu_slots))
        self.rave = rave
        self.launcher = launcher
        #: builds the process of a run (tests put a stand-in here)
        self.process_factory = None
        #: start queued runs when their device is free
        self.autostart = True
        self._runs: dict[int, LiveRun] = {}
        self._exports: dict[int, object] = {}
        self._ending: list = []          # threads that said finished and may still be returning
        self._closing = False
        self._reaper = QTimer(self)
        self._reaper.setInterval(200)
        self._reaper.timeout.connect(self._reap)
        self._schedule_timer = QTimer(self)
        self._schedule_timer.setSingleShot(True)
        self._schedule_timer.setInterval(0)
        self._schedule_timer.timeout.connect(self.schedule)
        #: health alerts per run: {experiment id: {kind: sentence}} (``health`` rules)
        self.health: dict[int, dict[str, str]] = {}
        #: what a live run's process is doing beyond its status ({id: sentence}: a Slurm job's wait)
        self.notes: dict[int, str] = {}
        self.stall_minutes = STALL_MINUTES
        self._health_timer = QTimer(self)
        self._health_timer.setInterval(30_000)
        self._health_timer.timeout.connect(self.check_health)
        self._health_timer.start()

    # -- what runs ------------------------------------------------------------------
    def live_ids(self) -> list[int]:
        return list(self._runs)

    def is_live(self, experiment_id: int) -> bool:
        return experiment_id in self._runs

    def live_run(self, experiment_id: int) -> LiveRun | None:
        return self._runs.get(experiment_id)

    def queued(self) -> list[int]:
        return self.manager.queued()

    def exporting(self, experiment_id: int) -> bool:
        return experiment_id in self._exports

    # -- starting -------------------------------------------------------------------
    def start(self, config: dict) -> int:
        """Validate, record and launch now; ``ValueError``/``RaveNotFound`` with a
        sentence, and nothing written, when it cannot."""
        self._find_local_rave(config)
        exp_id = self.manager.start_training(config)
        self._launch(exp_id)
        return exp_id

    def enqueue(self, config: dict) -> int:
        """Validate and record at the end of the queue; it starts when its device is free."""
        self._find_local_rave(config)
        exp_id = self.manager.enqueue_training(config)
        self.run_changed.emit(exp_id, "status")
        self._schedule_timer.start()
        return exp_id

    def _find_local_rave(self, config) -> None:
        """Before anything is written: a run here needs this computer's ``rave`` (a run on
        another machine uses the host's; a config that is not a dict is refused by the manager)."""
        if not isinstance(config, dict) or config.get("machine_id") is None:
            rave_cli.find_rave(self.rave)

    def start_queued(self, experiment_id: int) -> None:
        """Start a queued run now, whatever else runs."""
        self._claim(experiment_id)
        self._launch(experiment_id)

    def move(self, experiment_id: int, delta: int) -> None:
        self.manager.move_queued(experiment_id, delta)
        self.run_changed.emit(experiment_id, "queue")

    def resume(self, experiment_id: int, max_steps: int | None = None) -> None:
        self.manager.resume_training(experiment_id, max_steps=max_steps)
        self._launch(experiment_id, resume=True)

    def _claim(self, experiment_id: int) -> None:
        """queued -> starting, atomically: a queued run never starts twice."""
        try:
            self.manager.set_status(experiment_id, "starting")
        except TransitionError:
            raise ValueError("This run is no longer in the queue.") from None

    def _device_for(self, config: dict, busy: set[str]) -> str | None:
        """The device a run would take now, or None when it must wait. A run on
        another machine (``machine_id``) takes ``m<id>:<device>``: one at a time
        per device there (``auto`` counts as one device)."""
        wanted = config.get("device", "auto")
        if config.get("machine_id") is not None:
            if self._on_slurm(config["machine_id"]):
                return f"m{config['machine_id']}:slurm"  # the cluster schedules: never wait here
            key = f"m{config['machine_id']}:{wanted}"
            return None if key in {run.device for run in self._runs.values()} else key
        gpus = self.manager.gpus
        if wanted == "cpu" or (wanted == "auto" and not gpus):
            cpu_busy = sum(1 for run in self._runs.values() if run.device == "cpu")
            return "cpu" if cpu_busy < self.cpu_slots else None
        if wanted.startswith("gpu:"):
            return None if wanted in busy else wanted
        return next((f"gpu:{i}" for i in range(len(gpus)) if f"gpu:{i}" not in busy), None)

    def _on_slurm(self, machine_id) -> bool:
        from rave_gui.backend.machines import MachineManager, is_slurm
        return is_slurm(MachineManager(self.manager.db).get(machine_id)) if isinstance(machine_id, int) else False

    def _busy_gpus(self) -> set[str]:
        return {run.device for run in self._runs.values() if run.device.startswith("gpu:")}

    def _launch(self, experiment_id: int, resume: bool = False, attach_pid: int | None = None) -> None:
        exp = self.manager.get_experiment(experiment_id)
        slot = self._device_for(exp["config"], self._busy_gpus()) or self._fallback_device(exp["config"])
        device = slot.split(":", 1)[1] if slot.startswith("m") else slot
        if device == "slurm":
            device = exp["config"].get("device", "auto")
        factory = self.process_factory
        if factory is None:
            from rave_gui.backend.executors import training_process_class
            factory = training_process_class(exp, self.manager.db)
        try:
            process = factory(self.manager, experiment_id, resume=resume, rave=self.rave,
                              launcher=self.launcher, attach_pid=attach_pid, device=device)
        except Exception as exc:
            if exp["status"] == "starting":
                self.manager.set_status(experiment_id, "failed", f"The run could not be launched: {exc}")
                self.run_changed.emit(experiment_id, "status")
            raise
        self.adopt(experiment_id, process, device=slot)
        process.start()

    def _fallback_device(self, config: dict) -> str:
        wanted = config.get("device", "auto")
        if config.get("machine_id") is not None:
            return f"m{config['machine_id']}:{wanted}"
        if wanted != "auto":
            return wanted
        return "gpu:0" if self.manager.gpus else "cpu"

    def adopt(self, experiment_id: int, process, device: str | None = None) -> None:
        """Hold ``process`` as the run's live process: register it, follow its signals."""
        exp = self.manager.get_experiment(experiment_id)
        device = device or self._fallback_device(exp["config"])
        self.manager.register_process(experiment_id, process)
        for kind in list(self.health.get(experiment_id, {})):  # a new process: a fresh watch
            self._flag(experiment_id, kind, "")
        self._runs[experiment_id] = LiveRun(process, device, total=int(exp["config"].get("max_steps", 0)),
                                            step=int(exp.get("current_step") or 0))
        e = experiment_id
        process.output.connect(lambda line, e=e: self._on_line(e, line))
        process.step_update.connect(lambda step, total, e=e, p=process: self._on_step(e, p, step, total))
        process.metrics_update.connect(lambda metrics, e=e: self._on_metrics(e, metrics))
        process.finished.connect(lambda ok, message, e=e, p=process: self._on_finished(e, p, ok, message))
        for name, slot in (("started_pid", lambda pid, e=e, p=process: self._on_started(e, p)),
                           ("warning", lambda text, e=e: self.warning.emit(e, text)),
                           ("status_note", lambda text, e=e, p=process: self._on_note(e, p, text)),
                           ("checkpoint_saved", lambda _path, e=e: self.run_changed.emit(e, "checkpoints"))):
            signal = getattr(process, name, None)
            if signal is not None:
                signal.connect(slot)
        self.run_changed.emit(experiment_id, "status")

    # -- the queue ------------------------------------------------------------------
    def schedule(self) -> list[int]:
        """Start the queued runs whose device is free, in queue order. Returns their ids."""
        if self._closing or not self.autostart:
            return []
        started = []
        for exp_id in self.manager.queued():
            exp = self.manager.get_experiment(exp_id)
            if exp is None or self._device_for(exp["config"], self._busy_gpus()) is None:
                continue
            try:
                self._claim(exp_id)
                self._launch(exp_id)
            except Exception as exc:  # noqa: BLE001 - one bad queued run must not block the others
                self.warning.emit(exp_id, f"The queued run could not start: {exc}")
                self.run_changed.emit(exp_id, "status")
                continue
            started.append(exp_id)
        return started

    # -- stopping ---------------------------------------------------------------------
    def stop(self, experiment_id: int) -> None:
        """Stop a live run (it saves a stop checkpoint: ``stopping``, then
        ``stopped``), or take a queued run off the queue (it never starts)."""
        exp = self.manager.get_experiment(experiment_id)
        if exp is None:
            raise ValueError(f"There is no experiment {experiment_id}.")
        if exp["status"] == "queued" or experiment_id in self._runs:
            self.manager.stop_training(experiment_id)
            self.run_changed.emit(experiment_id, "status")
            return
        raise ValueError(f"This run is not running (it is {exp['status']}).")

    def cluster_ids(self) -> list[int]:
        """The live runs whose process can let go of a Slurm job (it goes on without the app)."""
        return [e for e, run in self._runs.items() if hasattr(run.process, "detach")]

    def stop_all(self, timeout: float = 60.0, keep_cluster_jobs: bool = False) -> None:
        """Stop every run (each saves a stop checkpoint) and export, and wait for
        them: nothing is left running behind a closed window. Queued runs stay
        queued for the next start. ``keep_cluster_jobs``: runs on a Slurm cluster
        are let go instead (their jobs go on; the next start follows them again,
        and resubmits one that reached its time limit meanwhile)."""
        self._closing = True
        if keep_cluster_jobs:
            for exp_id in self.cluster_ids():
                self._runs[exp_id].process.detach()
        for exp_id in list(self._runs):
            if keep_cluster_jobs and exp_id in self.cluster_ids():
                continue
            try:
                self.stop(exp_id)
            except ValueError:
                pass
        for export in list(self._exports.values()):
            export.stop()
        deadline = time.monotonic() + timeout
        while (self._runs or self._exports) and time.monotonic() < deadline:
            QCoreApplication.processEvents()
            time.sleep(0.02)
        for process in [run.process for run in self._runs.values()] + list(self._exports.values()):
            if getattr(process, "pid", None):
                end_group(process.pid)  # did not stop in time: end the whole group
            elif hasattr(process, "abandon"):
                process.abandon()  # a run on another machine: stop following it (it may go on there)
            process.wait(10_000)
        QCoreApplication.processEvents()
        for process in self._ending:
            process.wait(5_000)
        self._ending.clear()

    # -- the process's signals (main thread) -----------------------------------------------
    def _on_started(self, experiment_id: int, process) -> None:
        run = self._runs.get(experiment_id)
        if run is None or run.process is not process:
            return
        try:
            exp = self.manager.get_experiment(experiment_id)
            if exp is not None and exp["status"] == "starting":
                self.manager.set_status(experiment_id, "running")
        except Exception as exc:  # noqa: BLE001 - the run goes on; its record catches up
            self.warning.emit(experiment_id, f"The run started, but the app could not record it: {exc}")
            self._retry_status(experiment_id, "running", None)
        self.run_changed.emit(experiment_id, "status")

    def _on_note(self, experiment_id: int, process, text: str) -> None:
        """What a run's process is doing beyond its status (a Slurm job waiting in the
        queue, and why); "" clears it."""
        run = self._runs.get(experiment_id)
        if run is None or run.process is not process:
            return
        if text:
            self.notes[experiment_id] = text
            if text.startswith(("submitted", "pending")):
                run.first_step = None  # a new job: the rate (ETA) restarts with its first step
        else:
            self.notes.pop(experiment_id, None)
        self.run_changed.emit(experiment_id, "status")

    def _on_line(self, experiment_id: int, line: str) -> None:
        self.log_line.emit(experiment_id, line)
        alert = memory_alert(line)
        if alert:
            self._flag(experiment_id, "memory", alert)

    def _on_step(self, experiment_id: int, process, step: int, total: int) -> None:
        run = self._runs.get(experiment_id)
        if run is None or run.process is not process:
            return
        if run.first_step is None:
            run.first_step, run.started = step, time.monotonic()
        if step != run.step:
            run.progressed = time.monotonic()
            if "stalled" in self.health.get(experiment_id, {}):
                self._flag(experiment_id, "stalled", "")
        run.step, run.total = step, total
        self.step_changed.emit(experiment_id, step, total)
        self.run_changed.emit(experiment_id, "step")

    def _on_metrics(self, experiment_id: int, metrics: dict) -> None:
        alert = nan_alert(metrics)
        if alert and "nan" not in self.health.get(experiment_id, {}):
            self._flag(experiment_id, "nan", alert)
            exp = self.manager.get_experiment(experiment_id)
            if exp is not None and exp["config"].get("stop_on_nan") and exp["status"] in ("starting", "running"):
                self.warning.emit(experiment_id, "The run went NaN and was stopped (its stop checkpoint is saved).")
                self.stop(experiment_id)
        self.metrics_added.emit(experiment_id, metrics)
        self.run_changed.emit(experiment_id, "metrics")
        if "val_loss" in metrics:  # RAVE saves its checkpoints at validation
            self.run_changed.emit(experiment_id, "checkpoints")

    def _on_finished(self, experiment_id: int, process, ok: bool, message: str) -> None:
        run = self._runs.get(experiment_id)
        if run is None or run.process is not process:
            return
        del self._runs[experiment_id]
        self.notes.pop(experiment_id, None)
        self.manager.unregister_process(experiment_id, process)
        if getattr(process, "detached", False):  # its job goes on: the run stays live for the next start
            self._ending.append(process)
            self._reaper.start()
            self.run_changed.emit(experiment_id, "status")
            return
        status = getattr(process, "final_status", None) or ("completed" if ok else "failed")
        error = None if ok or getattr(process, "stop_requested", False) else message
        try:
            exp = self.manager.get_experiment(experiment_id)
            if exp is not None and exp["status"] in LIVE:
                self.manager.set_status(experiment_id, status, error)
        except Exception as exc:  # noqa: BLE001 - the record could not be written: say so, try later
            log.warning("run %s ended %s but its status could not be recorded: %s", experiment_id, status, exc)
            self.warning.emit(experiment_id, f"The run ended ({status}), but the app could not record it: {exc}")
            self._retry_status(experiment_id, status, error)
        self._ending.append(process)
        self._reaper.start()
        self.run_changed.emit(experiment_id, "status")
        self._schedule_timer.start()

    def _retry_status(self, experiment_id: int, status: str, error: str | None, attempt: int = 1) -> None:
        def again():
            try:
                exp = self.manager.get_experiment(experiment_id)
                if status == "running":
                    if exp is not None and exp["status"] == "starting" and self.is_live(experiment_id):
                        self.manager.set_status(experiment_id, status, error)
                elif exp is not None and exp["status"] in LIVE and not self.is_live(experiment_id):
                    self.manager.set_status(experiment_id, status, error)
                self.run_changed.emit(experiment_id, "status")
            except Exception:  # noqa: BLE001
                if attempt < 60:
                    self._retry_status(experiment_id, status, error, attempt + 1)
        QTimer.singleShot(min(30_000, 1000 * attempt), again)

    def _reap(self) -> None:
        """Forget threads that have returned (never block the GUI thread in wait())."""
        self._ending = [p for p in self._ending if p.isRunning()]
        if not self._ending:
            self._reaper.stop()

    # -- health ---------------------------------------------------------------------------
    def _flag(self, experiment_id: int, kind: str, sentence: str) -> None:
        """Raise (or with "" clear) one health alert of a run; a raised one is also an event."""
        flags = self.health.setdefault(experiment_id, {})
        if flags.get(kind, "") == sentence:
            return
        if sentence:
            flags[kind] = sentence
            run = self._runs.get(experiment_id)
            try:
                self.manager.record_event(experiment_id, f"alert: {kind}", run.step if run else None, sentence)
            except Exception:  # noqa: BLE001 - the alert still shows
                pass
        else:
            flags.pop(kind, None)
        self.health_changed.emit(experiment_id, kind, sentence)
        self.run_changed.emit(experiment_id, "health")

    def check_health(self) -> None:
        """The periodic rules: a live run without step progress, a disk too full for
        the next checkpoint."""
        now = time.monotonic()
        for exp_id, run in list(self._runs.items()):
            exp = self.manager.get_experiment(exp_id)
            if exp is None or exp["status"] != "running":
                continue
            if self.notes.get(exp_id, "").startswith("pending"):
                run.progressed = now  # a job waiting in Slurm's queue (after a resubmission) is not stalled
            stalled = stall_alert(now - run.progressed, self.stall_minutes)
            if stalled or "stalled" in self.health.get(exp_id, {}):
                self._flag(exp_id, "stalled", stalled or "")
            paths = self.manager.paths(exp)
            # a run on another machine writes its checkpoints there, not on this disk
            disk = None if exp["config"].get("machine_id") is not None else \
                disk_alert(paths.out_dir, expected_checkpoint_bytes(paths.checkpoints()))
            if disk or "disk" in self.health.get(exp_id, {}):
                self._flag(exp_id, "disk", disk or "")

    # -- resume after a restart ----------------------------------------------------------
    def reattach_all(self) -> tuple[list[int], list[int]]:
        """Follow again the runs an earlier session left training; end the dead
        ones (``interrupted``, or what their files say); start the queue."""
        alive, interrupted = self.manager.recover_runs()
        attached = []
        for exp_id, pid in alive:
            exp = self.manager.get_experiment(exp_id)
            if exp["status"] == "starting":
                self.manager.set_status(exp_id, "running")
            self._launch(exp_id, attach_pid=pid)
            attached.append(exp_id)
        for exp_id in interrupted:
            self.run_changed.emit(exp_id, "status")
        self._schedule_timer.start()
        return attached, interrupted

    # -- export -------------------------------------------------------------------------
    def export(self, experiment_id: int, options: dict | None = None):
        """Run ``rave export`` in the background (``options``: output_dir,
        streaming, fidelity); ``export_done`` says how it went."""
        from rave_gui.backend.executors import export_process_class
        exp = self.manager.get_experiment(experiment_id)
        if exp is None:
            raise ValueError(f"There is no experiment {experiment_id}.")
        ExportProcess = export_process_class(exp, self.manager.db)
        if experiment_id in self._runs or exp["status"] in LIVE:
            raise ValueError("Stop the run (or let it finish) before exporting it.")
        if experiment_id in self._exports:
            raise ValueError("This run is already being exported.")
        process = ExportProcess(self.manager, experiment_id, **(options or {}))
        self._exports[experiment_id] = process
        e = experiment_id
        process.progress.connect(lambda pct, what, e=e: self.export_progress.emit(e, pct, what))
        process.finished.connect(lambda ok, message, e=e, p=process: self._on_export_finished(e, p, ok, message))
        process.start()
        self.run_changed.emit(experiment_id, "export")
        return process

    def _on_export_finished(self, experiment_id: int, process, ok: bool, message: str) -> None:
        if self._exports.get(experiment_id) is process:
            del self._exports[experiment_id]
        self._ending.append(process)
        self._reaper.start()
        self.export_done.emit(experiment_id, ok, message)
        self.run_changed.emit(experiment_id, "export")
