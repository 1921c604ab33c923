"""The status bar's system monitor: a label fed every 2 s by a sampler thread.

``SystemMonitor.set_runs`` tells the sampler which processes are the live runs'
on this computer: each sample then carries the GPU memory each run uses
(``Sample.runs``), read in the sampler thread like everything else.
"""
from __future__ import annotations

import threading

from PyQt6.QtCore import QObject, pyqtSignal
from PyQt6.QtWidgets import QLabel

from rave_gui.backend.system_monitor import NVML, Sample, format_summary, sample


class SystemMonitor(QObject):
    """Samples off the UI thread (a daemon thread) and emits ``sampled`` on the GUI thread."""

    sampled = pyqtSignal(object)

    def __init__(self, data_dir, interval: float = 2.0, nvml: NVML | None = None, parent=None):
        super().__init__(parent)
        self.data_dir, self.interval = data_dir, interval
        self._nvml = nvml
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._runs: dict[int, list[int]] = {}
        self._runs_lock = threading.Lock()
        self.last: Sample | None = None
        self.sampled.connect(self._keep)

    def _keep(self, s: Sample) -> None:
        self.last = s

    def set_runs(self, runs: dict[int, list[int]]) -> None:
        """The live runs on this computer: experiment id -> the pids of its process
        (its children are found when sampling). The next samples measure them."""
        with self._runs_lock:
            self._runs = {int(exp_id): [int(pid) for pid in pids] for exp_id, pids in runs.items()}

    def runs(self) -> dict[int, list[int]]:
        with self._runs_lock:
            return {exp_id: list(pids) for exp_id, pids in self._runs.items()}

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name="system-monitor", daemon=True)
            self._thread.start()

    def _loop(self) -> None:
        if self._nvml is None:
            self._nvml = NVML()
        while not self._stop.is_set():
            try:
                self.sampled.emit(sample(self.data_dir, self._nvml, self.runs()))
            except Exception:  # noqa: BLE001 - a monitor must never take the app down
                pass
            self._stop.wait(self.interval)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None


class SystemMonitorLabel(QLabel):
    def __init__(self, monitor: SystemMonitor, parent=None):
        super().__init__("…", parent)
        self.setToolTip("CPU, memory, free disk of the data folder and NVIDIA GPUs, every 2 s")
        monitor.sampled.connect(self.show_sample)

    def show_sample(self, s: Sample) -> None:
        self.setText(format_summary(s))
        if s.gpu_note:
            self.setToolTip(s.gpu_note)
