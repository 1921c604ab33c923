"""Pieces the Qt benchmarks share: the machine record, a RAVE-like metric point,
and the event-loop stall measurement."""
from __future__ import annotations

import gc
import os
import platform
import time

import matplotlib
import numpy as np
from PyQt6.QtCore import Qt, QTimer


def environment() -> dict:
    return {"python": platform.python_version(), "matplotlib": matplotlib.__version__,
            "numpy": np.__version__, "machine": platform.machine(),
            "cpus": os.cpu_count(), "load_avg_1min": round(os.getloadavg()[0], 2),
            "qpa": os.environ.get("QT_QPA_PLATFORM")}


def synthetic_point(step: int, rng) -> dict:
    """One step's metrics, shaped like what the app gets from a RAVE run."""
    return {"step": step, "loss": 3.0 / (1 + step / 1e4) + rng.random() * 0.1,
            "val_loss": 3.1 / (1 + step / 1e4), "feature_matching": 0.5,
            "multiband_spectral_distance": 2.0, "beta_factor": min(0.1, step / 1e5), "lr": 1e-3}


def run_with_heartbeat(app, feed, feed_every_ms: int, heartbeat_ms: int, seconds: float) -> dict:
    """Call ``feed(t0)`` every ``feed_every_ms`` for ``seconds`` while a
    ``heartbeat_ms`` timer measures the gaps of the event loop. Returns the wall
    and CPU seconds, the gap statistics (ms) and the collector's full passes
    meanwhile (``gc_full_passes``, the longest in ``gc_full_max_ms``).

    The garbage of what ran before (a closed plot's figure: ~8 000 objects, a
    60 ms full collection) is collected first: it is not this case's work, and
    would otherwise land in its worst gap whenever the collector's turn comes."""
    gc.collect()
    state = {"last": None, "gaps": []}
    passes: list[float] = []
    started = {}

    def collector(phase, info):
        if info["generation"] == 2:
            if phase == "start":
                started["t"] = time.perf_counter()
            elif "t" in started:
                passes.append(time.perf_counter() - started.pop("t"))

    def beat():
        now = time.perf_counter()
        if state["last"] is not None:
            state["gaps"].append(now - state["last"])
        state["last"] = now

    feeder, heartbeat = QTimer(), QTimer()
    for timer in (feeder, heartbeat):
        timer.setTimerType(Qt.TimerType.PreciseTimer)
    t0 = time.perf_counter()
    feeder.timeout.connect(lambda: feed(t0))
    heartbeat.timeout.connect(beat)
    c0 = time.process_time()
    gc.callbacks.append(collector)
    feeder.start(feed_every_ms)
    heartbeat.start(heartbeat_ms)
    QTimer.singleShot(int(seconds * 1000), Qt.TimerType.PreciseTimer, app.quit)
    try:
        app.exec()
    finally:
        gc.callbacks.remove(collector)
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    feeder.stop()
    heartbeat.stop()
    gaps = np.array(state["gaps"]) * 1000
    return {"elapsed": elapsed, "cpu": cpu, "heartbeats": int(gaps.size),
            "max_gap_ms": round(float(gaps.max()), 1),
            "p99_gap_ms": round(float(np.percentile(gaps, 99)), 1),
            "median_gap_ms": round(float(np.median(gaps)), 1),
            "gc_full_passes": len(passes), "gc_full_max_ms": round(max(passes, default=0.0) * 1000, 1)}
