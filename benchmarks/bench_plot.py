"""Benchmark MetricsPlot: redraw cost vs history length, and event-loop stalls
while metrics stream in at 10 000 points per second.

    .venv/bin/python benchmarks/bench_plot.py

Prints a markdown table and writes benchmarks/results/plot.json.
"""
from __future__ import annotations

import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
from PyQt6.QtWidgets import QApplication  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from rave_gui.ui.widgets.metrics_plot import REDRAW_MS, MetricsPlot  # noqa: E402
from _shared import environment, run_with_heartbeat, synthetic_point  # noqa: E402 (benchmarks/ helper)

RESULTS = Path(__file__).resolve().parent / "results" / "plot.json"
SIZES = (1_000, 100_000, 1_000_000)
REPEATS = 7
FEED_SECONDS, FEED_EVERY_MS, FEED_BATCH, HEARTBEAT_MS = 5.0, 10, 100, 5


def make_history(n: int, rng) -> dict:
    steps = np.arange(n, dtype=float)
    loss = 5.0 * np.exp(-steps / max(1, n / 5)) + rng.normal(0, 0.1, n).cumsum() / np.sqrt(n) + 1
    return {"loss": (steps, loss),
            "val_loss": (steps[::100], loss[::100] + 0.2),
            "feature_matching": (steps, loss / 3),
            "lr": (steps, 1e-3 * 0.5 ** (steps / max(1, n / 4)))}


def bench_redraw(app, smoothing: int) -> dict:
    rng = np.random.default_rng(0)
    out = {}
    for n in SIZES:
        plot = MetricsPlot()
        plot.resize(1000, 700)
        plot.show()
        app.processEvents()
        plot.smooth_slider.setValue(smoothing)
        plot.set_history(make_history(n, rng))
        wall, cpu = [], []
        for i in range(REPEATS):
            # a new point each time, as in a live run, so caches cannot hide the work
            plot.update_metrics({"step": n + i, "loss": 1.0, "feature_matching": 0.3, "lr": 1e-4})
            t0, c0 = time.perf_counter(), time.process_time()
            plot.redraw_now()  # refresh artists + synchronous canvas.draw()
            wall.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        out[n] = {"wall_ms": round(statistics.median(wall) * 1000, 1),
                  "cpu_ms": round(statistics.median(cpu) * 1000, 1)}
        plot.close()
        plot.deleteLater()
        app.processEvents()
    return out


def bench_stream(app) -> dict:
    plot = MetricsPlot()
    plot.resize(1000, 700)
    plot.show()
    app.processEvents()
    draws = []
    plot.canvas.frame_drawn.connect(lambda: draws.append(time.perf_counter()))  # full, sliced or blit
    state = {"step": 0}
    rng = np.random.default_rng(1)
    rate = FEED_BATCH * 1000 / FEED_EVERY_MS  # points per second

    def feed(t0):
        # catch up on time lost to stalls, so the rate really is `rate` points per second
        due = int((time.perf_counter() - t0) * rate) - state["step"]
        batch = [synthetic_point(state["step"] + i, rng) for i in range(max(0, due))]
        state["step"] += len(batch)
        if batch:
            plot.update_metrics(batch)

    loop = run_with_heartbeat(app, feed, FEED_EVERY_MS, HEARTBEAT_MS, FEED_SECONDS)
    elapsed = loop.pop("elapsed")
    loop.pop("cpu")
    plot.close()
    return {"seconds": round(elapsed, 2), "points_fed": state["step"],
            "points_per_second": round(state["step"] / elapsed), "draws": len(draws), **loop}


def main() -> None:
    app = QApplication.instance() or QApplication([])
    redraw = bench_redraw(app, smoothing=0)
    redraw_smooth = bench_redraw(app, smoothing=60)
    stream = bench_stream(app)

    print(f"Median of {REPEATS} redraw_now() calls (refresh + synchronous canvas.draw()), "
          "wall clock / CPU time of this process:\n")
    print("| points in history | no smoothing: wall ms | CPU ms | smoothing 0.6: wall ms | CPU ms |")
    print("|---:|---:|---:|---:|---:|")
    for n in SIZES:
        a, b = redraw[n], redraw_smooth[n]
        print(f"| {n:,} | {a['wall_ms']} | {a['cpu_ms']} | {b['wall_ms']} | {b['cpu_ms']} |")
    print()
    print(f"| streaming {FEED_BATCH} points every {FEED_EVERY_MS} ms for {FEED_SECONDS:.0f} s "
          f"| value |")
    print("|---|---:|")
    for key, value in stream.items():
        print(f"| {key} | {value} |")

    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({
        "redraw_median": {str(n): v for n, v in redraw.items()},
        "redraw_median_smoothing_0.6": {str(n): v for n, v in redraw_smooth.items()},
        "stream": stream,
        "config": {"repeats": REPEATS, "redraw_ms": REDRAW_MS, "feed_every_ms": FEED_EVERY_MS,
                   "feed_batch": FEED_BATCH, "heartbeat_ms": HEARTBEAT_MS,
                   "keys_per_point": 6},
        "env": environment(),
    }, indent=2) + "\n")
    print(f"\nwrote {RESULTS}")


if __name__ == "__main__":
    main()
