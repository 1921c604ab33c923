"""Benchmark the Training page as a whole: event-loop stalls while a (fake)
training process floods it with metrics, steps and log lines; redraw cost with
a million points in the plot; selecting a stored run with a long history.

    .venv/bin/python benchmarks/bench_page.py [--quick]

The process is a QObject with TrainingProcess's signals (no rave run), so what
is measured is the page: its slots, the table, the log view and the plot.
Prints a markdown table and writes benchmarks/results/page.json.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
from PyQt6.QtWidgets import QApplication  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from fake_process import FakeProcess  # noqa: E402 (the tests' stand-in for TrainingProcess)
from rave_gui.backend.datasets import DatasetManager  # noqa: E402
from rave_gui.backend.training import TrainingManager  # noqa: E402
from rave_gui.core.database import Database  # noqa: E402
from rave_gui.ui.pages.training import TrainingPage  # noqa: E402
from rave_gui.ui.widgets.metrics_plot import REDRAW_MS  # noqa: E402
from _shared import environment, run_with_heartbeat, synthetic_point  # noqa: E402 (benchmarks/ helper)

RESULTS = Path(__file__).resolve().parent / "results" / "page.json"
FEED_EVERY_MS, POINTS_PER_SECOND, HEARTBEAT_MS = 10, 10_000, 5
BIG_HISTORY = 1_000_000
STORED_STEPS, STORED_KEYS = 20_000, 10  # a 1M-step run logged every 50 steps, 10 metrics
KEYS = ("loss", "val_loss", "feature_matching", "multiband_spectral_distance", "beta_factor", "lr")
TQDM = "Epoch {e}:  33%|███▎      | {s}/3000 [00:01<00:02,  1.12s/it, v_num=0]"


def make_page(folder: Path):
    db = Database(folder / "bench.sqlite3")
    dataset = folder / "dataset"
    dataset.mkdir()
    (dataset / "metadata.yaml").write_text("channels: 1\nlazy: false\nn_seconds: 30.0\nsr: 44100\n")
    (dataset / "data.mdb").write_bytes(b"\0" * 16)
    manager = TrainingManager(db, runs_root=folder / "runs")
    dataset_id = DatasetManager(db).register(dataset, name="voice")
    page = TrainingPage(db, manager=manager)
    page.resize(1400, 900)
    page.show()
    return db, manager, dataset_id, page


def bench_flood(app, manager, dataset_id, page, seconds: float) -> dict:
    exp_id = manager.start_training({"name": "flood", "dataset_id": dataset_id, "max_steps": 100_000_000})
    fake = FakeProcess(exp_id)
    page.controller.adopt(exp_id, fake, device="cpu")
    page.select_experiment(exp_id)
    assert page.selected_id == exp_id
    app.processEvents()
    draws = []
    page.plot.canvas.frame_drawn.connect(lambda: draws.append(time.perf_counter()))  # full, sliced or blit
    rng = np.random.default_rng(1)
    state = {"step": 0, "ticks": 0}

    def feed(t0):
        # catch up on time lost to stalls, so the rate really is POINTS_PER_SECOND
        due = int((time.perf_counter() - t0) * POINTS_PER_SECOND) - state["step"]
        for _ in range(max(0, due)):
            fake.metrics_update.emit(synthetic_point(state["step"], rng))
            state["step"] += 1
        fake.step_update.emit(state["step"], 100_000_000)
        fake.output.emit(TQDM.format(e=0, s=state["ticks"] % 3000))  # dropped by the page
        fake.output.emit(f"[rave-gui] step={state['step']} loss={rng.random():.4f}")
        state["ticks"] += 1

    loop = run_with_heartbeat(app, feed, FEED_EVERY_MS, HEARTBEAT_MS, seconds)
    elapsed = loop.pop("elapsed")
    cpu = loop.pop("cpu")
    points = page.plot.history["loss"][0].size
    assert points == state["step"], (points, state["step"])  # every point reached the plot
    log_lines = page.log_view.document().blockCount()
    return {"seconds": round(elapsed, 2), "points_fed": state["step"],
            "points_per_second": round(state["step"] / elapsed),
            "signals_per_second": round((state["step"] + 3 * state["ticks"]) / elapsed),
            "feed_ticks": state["ticks"], "draws": len(draws), "log_lines": log_lines,
            "step_label": page.step_label.text(), "cpu_percent": round(100 * cpu / elapsed), **loop}


def bench_slot_costs(manager, dataset_id, page) -> dict:
    """CPU time of the page's slots per signal (a figure that machine load hardly changes)."""
    exp_id = manager.start_training({"name": "costs", "dataset_id": dataset_id, "max_steps": 100_000_000})
    fake = FakeProcess(exp_id)
    page.controller.adopt(exp_id, fake, device="cpu")
    page.select_experiment(exp_id)
    rng = np.random.default_rng(3)
    points = [synthetic_point(i, rng) for i in range(5000)]
    cases = {"metrics_update_us": (lambda i: fake.metrics_update.emit(points[i]), len(points)),
             "step_update_us": (lambda i: fake.step_update.emit(i, 100_000_000), 300),
             "output_line_us": (lambda i: fake.output.emit(f"[rave-gui] step={i} loss=1.0"), 1000),
             "progress_bar_line_us": (lambda i: fake.output.emit(TQDM.format(e=0, s=i)), 1000)}
    out = {}
    for name, (emit, n) in cases.items():
        c0 = time.process_time()
        for i in range(n):
            emit(i)
        out[name] = round((time.process_time() - c0) / n * 1e6, 1)
    page.plot._timer.stop()
    return out


def bench_big_history(app, page, repeats: int) -> dict:
    page.tabs.setCurrentWidget(page.plot)
    rng = np.random.default_rng(0)
    steps = np.arange(BIG_HISTORY, dtype=float)
    loss = 5.0 * np.exp(-steps / 2e5) + rng.normal(0, 0.1, BIG_HISTORY).cumsum() / 1e3 + 1
    history = {"loss": (steps, loss), "val_loss": (steps[::100], loss[::100] + 0.2),
               "feature_matching": (steps, loss / 3), "lr": (steps, 1e-3 * 0.5 ** (steps / 2.5e5))}
    t0 = time.perf_counter()
    page.plot.set_history(history)  # replaces the data and draws once
    set_history_ms = (time.perf_counter() - t0) * 1000
    app.processEvents()
    wall, cpu = [], []
    for i in range(repeats):
        # a new point each time, as in a live run, so no cache hides the work
        page.plot.update_metrics({"step": BIG_HISTORY + i, "loss": 1.0, "feature_matching": 0.3,
                                  "lr": 1e-4})
        t0, c0 = time.perf_counter(), time.process_time()
        page.plot.redraw_now()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    assert page.plot.history["loss"][0].size == BIG_HISTORY + repeats
    return {"points_per_series": BIG_HISTORY, "series": len(history),
            "set_history_ms": round(set_history_ms, 1),
            "redraw_median_wall_ms": round(statistics.median(wall) * 1000, 1),
            "redraw_median_cpu_ms": round(statistics.median(cpu) * 1000, 1),
            "redraw_max_wall_ms": round(max(wall) * 1000, 1), "repeats": repeats}


def bench_select_stored(app, manager, dataset_id, page, repeats: int) -> dict:
    exp_id = manager.start_training({"name": "stored", "dataset_id": dataset_id,
                                     "max_steps": STORED_STEPS * 50})
    rng = np.random.default_rng(2)
    keys = KEYS + tuple(f"extra_{i}" for i in range(STORED_KEYS - len(KEYS)))
    batch = [{"step": s * 50, **{k: float(v) for k, v in zip(keys, rng.random(len(keys)))}}
             for s in range(1, STORED_STEPS + 1)]
    t0 = time.perf_counter()
    manager.update_training_metrics(exp_id, batch)
    store_ms = (time.perf_counter() - t0) * 1000
    manager.update_experiment_status(exp_id, "completed")
    page.model.refresh()
    other = page.model.experiment_at(0 if page.model.experiment_at(0)["id"] != exp_id else 1)["id"]
    wall = []
    for _ in range(repeats):
        page.select_experiment(other)
        app.processEvents()
        t0 = time.perf_counter()
        page.select_experiment(exp_id)  # history from SQLite, log, config, checkpoints
        wall.append(time.perf_counter() - t0)
        assert page.selected_id == exp_id
        assert page.plot.history["loss"][0].size == STORED_STEPS
    t0 = time.perf_counter()
    manager.get_metric_history(exp_id)
    query_ms = (time.perf_counter() - t0) * 1000
    return {"stored_points": STORED_STEPS * STORED_KEYS, "store_ms": round(store_ms, 1),
            "history_query_ms": round(query_ms, 1),
            "select_median_ms": round(statistics.median(wall) * 1000, 1),
            "select_max_ms": round(max(wall) * 1000, 1), "repeats": repeats}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 s of flooding, 3 repeats")
    args = parser.parse_args()
    seconds, repeats = (2.0, 3) if args.quick else (5.0, 5)
    app = QApplication.instance() or QApplication([])
    with tempfile.TemporaryDirectory(prefix="rave-gui-bench-") as tmp:
        db, manager, dataset_id, page = make_page(Path(tmp))
        flood = bench_flood(app, manager, dataset_id, page, seconds)
        costs = bench_slot_costs(manager, dataset_id, page)
        big = bench_big_history(app, page, repeats)
        select = bench_select_stored(app, manager, dataset_id, page, repeats)
        page.close()
        page.deleteLater()
        app.processEvents()
        db.close()

    print(f"Training page, fake process: {POINTS_PER_SECOND:,} metric points/s (one metrics_update "
          f"each, step + {len(KEYS)} keys), plus step_update and 2 output lines every "
          f"{FEED_EVERY_MS} ms, for {seconds:.0f} s; heartbeat every {HEARTBEAT_MS} ms\n")
    print("| flood | value |")
    print("|---|---:|")
    for key, value in flood.items():
        print(f"| {key} | {value} |")
    print("\n| CPU per signal, page slots only (mean) | µs |")
    print("|---|---:|")
    for key, value in costs.items():
        print(f"| {key} | {value} |")
    print(f"\n| {BIG_HISTORY:,} points per series in the page's plot | value |")
    print("|---|---:|")
    for key, value in big.items():
        print(f"| {key} | {value} |")
    print(f"\n| selecting a stored run ({STORED_STEPS:,} steps x {STORED_KEYS} keys in SQLite) | value |")
    print("|---|---:|")
    for key, value in select.items():
        print(f"| {key} | {value} |")

    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({
        "flood": flood, "slot_cpu_us": costs, "big_history": big, "select_stored": select,
        "config": {"quick": args.quick, "seconds": seconds, "feed_every_ms": FEED_EVERY_MS,
                   "points_per_second": POINTS_PER_SECOND, "keys_per_point": len(KEYS),
                   "heartbeat_ms": HEARTBEAT_MS, "redraw_ms": REDRAW_MS, "repeats": repeats},
        "env": environment(),
    }, indent=2) + "\n")
    print(f"\nwrote {RESULTS}")


if __name__ == "__main__":
    main()
