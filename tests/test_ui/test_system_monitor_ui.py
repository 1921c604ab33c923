"""The status-bar monitor samples off the UI thread and shows a line."""
from __future__ import annotations

import threading

from rave_gui.backend.system_monitor import NVML
from rave_gui.ui.widgets.system_monitor import SystemMonitor, SystemMonitorLabel

from test_backend.test_system_monitor import FakeNVML  # noqa: E402


def test_the_monitor_samples_in_a_thread_and_the_label_follows(qtbot, tmp_path):
    threads = []
    monitor = SystemMonitor(tmp_path, interval=0.05, nvml=NVML(FakeNVML()))
    monitor.sampled.connect(lambda s: threads.append(threading.get_ident()))
    label = SystemMonitorLabel(monitor)
    qtbot.addWidget(label)
    monitor.start()
    try:
        qtbot.waitUntil(lambda: len(threads) >= 3, timeout=10_000)
    finally:
        monitor.stop()
    assert "GPU0 87%" in label.text() and monitor.last is not None
    assert threading.get_ident() in set(threads)  # delivered on the GUI thread
