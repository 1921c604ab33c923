"""Application-wide signals: one QObject every page can listen to.

Backend code emits these; pages subscribe. Only QtCore is used here. What
happens to runs comes from the ``RunController`` (``run_changed``), not from here.
"""
from __future__ import annotations

from PyQt6.QtCore import QObject, pyqtSignal


class AppSignals(QObject):
    dataset_added = pyqtSignal(int)
    dataset_removed = pyqtSignal(int)

    _instance: "AppSignals | None" = None

    @classmethod
    def instance(cls) -> "AppSignals":
        if cls._instance is None:
            cls._instance = cls()
        return cls._instance


def app_signals() -> AppSignals:
    """The singleton (created on first use)."""
    return AppSignals.instance()
