"""The status-bar monitor samples off the UI thread and shows a line."""
from __future__ import annotations

import os
import threading

import rave_gui.backend.system_monitor as backend
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


def test_the_runs_given_are_measured_in_the_sampler_thread(qtbot, tmp_path, monkeypatch):
    """FakeNVML lists this process on GPU 1 (3 GB): a run whose pid is this one 'uses' it."""
    samples, measured_in = [], []
    real = backend.run_gpu_usage

    def spy(s, pids):
        measured_in.append(threading.get_ident())
        return real(s, pids)
    monkeypatch.setattr(backend, "run_gpu_usage", spy)
    monitor = SystemMonitor(tmp_path, interval=0.05, nvml=NVML(FakeNVML()))
    monitor.sampled.connect(samples.append)
    monitor.set_runs({5: [os.getpid()]})
    assert monitor.runs() == {5: [os.getpid()]}
    monitor.start()
    try:
        qtbot.waitUntil(lambda: any(s.runs for s in samples), timeout=10_000)
        monitor.set_runs({})  # the run ended: the next samples leave it out
        count = len(samples)
        qtbot.waitUntil(lambda: len(samples) > count + 1, timeout=10_000)
    finally:
        monitor.stop()
    measured = next(s for s in samples if s.runs)
    assert measured.runs == {5: {1: 3 * 10**9}}
    assert backend.describe_run_gpu_memory(measured, 5) == "3.0 GB on GPU 1 (of 80.0 GB)"
    assert samples[-1].runs == {}
    assert measured_in and threading.get_ident() not in set(measured_in)  # measured off the UI thread
