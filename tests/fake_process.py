"""A stand-in for TrainingProcess: its signals and control methods, driven by a test.

Like the real thread, a ``FakeProcess`` never writes a run's status: it says
how the run ended (``final_status``, then ``finished(ok, message)``) and the
``RunController`` applies it. ``stop()`` only asks (``stop_requested``): the
run stays ``stopping`` until the test calls ``finish`` (or, with
``finish_on_stop``, until the event loop runs once more, as a real stop
checkpoint would take a moment).

``FakeProcessFactory`` goes in ``RunController.process_factory``: it builds a
``FakeProcess`` for each launch and records it.
"""
from __future__ import annotations

from PyQt6.QtCore import QObject, QTimer, pyqtSignal


class FakeProcess(QObject):
    output = pyqtSignal(str)
    progress = pyqtSignal(int, str)
    finished = pyqtSignal(bool, str)
    warning = pyqtSignal(str)
    metrics_update = pyqtSignal(dict)
    step_update = pyqtSignal(int, int)
    started_pid = pyqtSignal(int)
    checkpoint_saved = pyqtSignal(str)
    status_note = pyqtSignal(str)          # as SlurmTrainingProcess: a job waiting in the queue

    #: what ``report_started`` announces; never stored in ``pid`` (the controller
    #: would end that process group if a fake did not stop in time)
    FAKE_PID = 999_999_999

    def __init__(self, experiment_id: int | None = None, **launch):
        super().__init__()
        self.experiment_id = experiment_id
        self.launch = launch                 # resume=, rave=, launcher=, attach_pid=, device=
        self.resume = bool(launch.get("resume", False))
        self.pid = None
        self.final_status: str | None = None
        self.stop_requested = False
        self.stop_calls = self.start_calls = 0
        self.running = False
        #: end ``stopped`` on the next turn of the event loop after stop()
        self.finish_on_stop = False
        self._finish_scheduled = False

    # -- what the controller calls ------------------------------------------------------
    def start(self):
        self.start_calls += 1
        self.running = True

    def stop(self):
        self.stop_calls += 1
        self.stop_requested = True
        if self.finish_on_stop and not self._finish_scheduled:
            self._finish_scheduled = True
            QTimer.singleShot(0, lambda: self.finish("stopped", False, "Stopped."))

    def wait(self, *_):
        return True

    def isRunning(self):
        return self.running

    # -- what a test drives ---------------------------------------------------------------
    def report_started(self) -> None:
        """The training process runs (the controller makes the run ``running``)."""
        self.running = True
        self.started_pid.emit(self.FAKE_PID)

    def finish(self, status: str | None = None, ok: bool | None = None, message: str = "") -> None:
        """End as TrainingProcess does: ``final_status``, then ``finished``.
        By default ``stopped`` after a stop, else ``completed``."""
        if status is None:
            status = "stopped" if self.stop_requested else "completed"
        if ok is None:
            ok = status == "completed"
        self.final_status = status
        self.running = False
        self.finished.emit(ok, message)


class FakeProcessFactory:
    """``RunController.process_factory``: one ``FakeProcess`` per launch, recorded."""

    def __init__(self):
        self.calls: list[tuple[int, bool]] = []      # (experiment id, resume)
        self.processes: list[FakeProcess] = []

    def __call__(self, manager, experiment_id, **launch) -> FakeProcess:
        process = FakeProcess(experiment_id, **launch)
        self.calls.append((experiment_id, process.resume))
        self.processes.append(process)
        return process

    def last(self, experiment_id: int | None = None) -> FakeProcess:
        found = [p for p in self.processes if experiment_id is None or p.experiment_id == experiment_id]
        assert found, f"no process was built for {experiment_id}"
        return found[-1]
