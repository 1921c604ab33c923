"""A stand-in for TrainingProcess: its signals and control methods, driven by a test."""
from __future__ import annotations

from PyQt6.QtCore import QObject, pyqtSignal


class FakeProcess(QObject):
    output = pyqtSignal(str)
    progress = pyqtSignal(int, str)
    finished = pyqtSignal(bool, str)
    metrics_update = pyqtSignal(dict)
    step_update = pyqtSignal(int, int)

    def __init__(self):
        super().__init__()
        self.stop_calls = self.start_calls = 0
        self.running = False

    def start(self):
        self.start_calls += 1
        self.running = True

    def stop(self):
        self.stop_calls += 1
        self.running = False

    def wait(self, *_):
        return True

    def isRunning(self):
        return self.running
