"""Application-wide signals: one QObject every page can listen to.

Backend code emits these; pages subscribe. Only QtCore is used here.
"""
from __future__ import annotations

from PyQt6.QtCore import QObject, pyqtSignal


class AppSignals(QObject):
    training_started = pyqtSignal(int)          # experiment id
    training_progress = pyqtSignal(int, int, int)  # experiment id, step, total
    training_completed = pyqtSignal(int)
    training_stopped = pyqtSignal(int)
    training_failed = pyqtSignal(int, str)      # experiment id, reason
    experiment_changed = pyqtSignal(int)        # any status/record change
    dataset_added = pyqtSignal(int)
    dataset_removed = pyqtSignal(int)
    export_finished = pyqtSignal(int, bool, str)  # experiment id, ok, path or reason

    _instance: "AppSignals | None" = None

    @classmethod
    def instance(cls) -> "AppSignals":
        if cls._instance is None:
            cls._instance = cls()
        return cls._instance


def app_signals() -> AppSignals:
    """The singleton (created on first use)."""
    return AppSignals.instance()
