"""Issue 14 side by side: the implementation before (``benchmarks/baseline/``) and
now, measured in the same process, alternating (before, now, now, before), so that
a shared machine's load falls on both alike. Ratios are now / before.

    .venv/bin/python benchmarks/bench_responsiveness.py [--quick] [--only NAME,...]
        [--anchor-points 2000000]

Sections (``--only``): ``stream`` (10 000 points/s into the visible plot, from an
empty run and into a 1 000 000-point one), ``page`` (the visible Training page
flooded by a run), ``redraw`` (a synchronous full redraw, smoothing off and on),
``open`` (a stored run of 200 000 and 2 000 000 points: history + plot drawn; and
``MetricsPlot.load_history`` on it before it is cached: the overview drawn, the
whole history drawn, the stalls in between),
``table`` (1 000 experiments: the page built, a step update, a refresh, scrolling),
``start`` (the app started on a database of 1 000 experiments, in a subprocess),
``anchor`` (a run folder written by ``SummaryWriter``: TensorBoard's own
``EventAccumulator`` load vs the app showing the same run).

Stalls are the gaps between the beats of a 5 ms timer (an idle event loop on this
machine is measured too, as the floor). Prints markdown tables and writes
benchmarks/results/responsiveness.json.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
from PyQt6.QtCore import QEventLoop, Qt, QTimer  # noqa: E402
from PyQt6.QtWidgets import QApplication  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE))
from _shared import environment, run_with_heartbeat, synthetic_point  # noqa: E402
from baseline.experiments_model_before import ExperimentsTableModel as ModelBefore  # noqa: E402
from baseline.history_before import get_metric_history_before  # noqa: E402
from baseline.metrics_plot_before import MetricsPlot as PlotBefore  # noqa: E402
from fake_process import FakeProcess  # noqa: E402 (the tests' stand-in for TrainingProcess)

from rave_gui.backend import history_cache  # noqa: E402
from rave_gui.backend.datasets import DatasetManager  # noqa: E402
from rave_gui.backend.training import TrainingManager  # noqa: E402
from rave_gui.core.database import Database  # noqa: E402
from rave_gui.ui.models.experiments_model import ExperimentsTableModel as ModelNow  # noqa: E402
from rave_gui.ui.pages import training as training_page  # noqa: E402
from rave_gui.ui.widgets.metrics_plot import MetricsPlot as PlotNow  # noqa: E402

RESULTS = HERE / "results" / "responsiveness.json"
FEED_EVERY_MS, HEARTBEAT_MS, RATE = 10, 5, 10_000
KEYS = ("loss", "val_loss", "feature_matching", "multiband_spectral_distance", "beta_factor", "lr",
        "fullband_spectral_distance", "regularization", "adversarial", "loss_dis")
SIDES = {"before": (PlotBefore, ModelBefore), "now": (PlotNow, ModelNow)}
ORDER = ("before", "now", "now", "before")


def frames_counter(plot) -> list:
    frames = []
    if hasattr(plot.canvas, "frame_drawn"):
        plot.canvas.frame_drawn.connect(lambda: frames.append(1))
    else:
        plot.canvas.mpl_connect("draw_event", lambda e: frames.append(1))
    return frames


def rave_like(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A loss curve as RAVE's look: a decay, noise of a few % and slow wander."""
    rng = np.random.default_rng(seed)
    steps = np.arange(n, dtype=float) * 50
    trend = 2.0 * np.exp(-np.arange(n) / max(1, n / 4)) + 1.0
    wander = rng.normal(0, 0.01, n).cumsum() / np.sqrt(max(1, n / 1000))
    return steps, trend + wander + rng.normal(0, 0.05, n)


def median_of_sides(runs: dict, key: str):
    return {side: statistics.median(r[key] for r in runs[side]) for side in runs}


# -- stream ----------------------------------------------------------------------------------
def stream(app, side: str, seconds: float, preload: int = 0) -> dict:
    plot = SIDES[side][0]()
    plot.resize(1000, 700)
    plot.show()
    if preload:
        steps, loss = rave_like(preload)
        plot.set_history({"loss": (steps, loss), "val_loss": (steps[::100], loss[::100] + 0.1),
                          "lr": (steps, np.full(preload, 1e-3))})
    app.processEvents()
    frames = frames_counter(plot)
    rng = np.random.default_rng(1)
    state = {"step": 0}
    first = preload * 50

    def feed(t0):
        due = int((time.perf_counter() - t0) * RATE) - state["step"]  # catch up on stalls
        batch = [synthetic_point(first + state["step"] + i, rng) for i in range(max(0, due))]
        state["step"] += len(batch)
        if batch:
            plot.update_metrics(batch)

    loop = run_with_heartbeat(app, feed, FEED_EVERY_MS, HEARTBEAT_MS, seconds)
    plot.close()
    plot.deleteLater()
    app.processEvents()
    return {"points_per_second": round(state["step"] / loop.pop("elapsed")), "frames": len(frames),
            "cpu_s": round(loop.pop("cpu"), 2), **loop}


def bench_stream(app, seconds: float) -> dict:
    idle = run_with_heartbeat(app, lambda t0: None, FEED_EVERY_MS, HEARTBEAT_MS, seconds)
    out = {"idle_floor": {k: v for k, v in idle.items() if k.endswith("_ms")}}
    for name, preload in (("from_empty", 0), ("into_1M_points", 1_000_000)):
        runs = {"before": [], "now": []}
        for side in ORDER:
            runs[side].append(stream(app, side, seconds, preload))
        out[name] = runs
    return out


# -- page -----------------------------------------------------------------------------------
def make_world(folder: Path, db_path: Path | None = None):
    folder.mkdir(parents=True, exist_ok=True)
    db = Database(db_path or folder / "bench.sqlite3")
    dataset = folder / "dataset"
    dataset.mkdir(exist_ok=True)
    (dataset / "metadata.yaml").write_text("channels: 1\nlazy: false\nn_seconds: 30.0\nsr: 44100\n")
    (dataset / "data.mdb").write_bytes(b"\0" * 16)
    manager = TrainingManager(db, runs_root=folder / "runs")
    dataset_id = DatasetManager(db).register(dataset, name="voice")
    return db, manager, dataset_id


_KEEP: list = []  # pages stay alive (hidden) to the end: their controller's queued calls may still come


def make_page(side: str, manager):
    plot_cls, model_cls = SIDES[side]
    saved = training_page.MetricsPlot, training_page.ExperimentsTableModel
    training_page.MetricsPlot, training_page.ExperimentsTableModel = plot_cls, model_cls
    try:
        from rave_gui.backend.runs import RunController
        page = training_page.TrainingPage(manager.db, controller=RunController(manager))
    finally:
        training_page.MetricsPlot, training_page.ExperimentsTableModel = saved
    page.resize(1400, 900)
    page.show()
    _KEEP.append(page)
    return page


def _on_metrics_throttled(self, experiment_id: int, metrics: dict) -> None:
    """TrainingPage._on_metrics with the diff proposed to the lead: it looks for the
    run's config.gin (the phase-2 marker) at most once a second, not at every point."""
    if experiment_id == self.selected_id:
        now = time.monotonic()
        if not getattr(self, "_phase_from_gin", True) and now >= getattr(self, "_phase_checked", 0.0) + 1.0:
            self._phase_checked = now
            self._phase_from_gin = self._show_plot_context(self.manager.get_experiment(experiment_id))
        self.plot.update_metrics(metrics)


def flood(app, side: str, seconds: float, folder: Path, page_diff: bool = False) -> dict:
    db, manager, dataset_id = make_world(folder)
    page = make_page(side, manager)
    if page_diff:
        page.controller.metrics_added.disconnect(page._on_metrics)
        page._on_metrics = _on_metrics_throttled.__get__(page)
        page.controller.metrics_added.connect(page._on_metrics)
    exp_id = manager.start_training({"name": "flood", "dataset_id": dataset_id, "max_steps": 100_000_000})
    fake = FakeProcess(exp_id)
    page.controller.adopt(exp_id, fake, device="cpu")
    page.select_experiment(exp_id)
    app.processEvents()
    frames = frames_counter(page.plot)
    rng = np.random.default_rng(1)
    state = {"step": 0, "ticks": 0}

    def feed(t0):
        due = int((time.perf_counter() - t0) * RATE) - state["step"]
        for _ in range(max(0, due)):
            fake.metrics_update.emit(synthetic_point(state["step"], rng))
            state["step"] += 1
        fake.step_update.emit(state["step"], 100_000_000)
        fake.output.emit(f"[rave-gui] step={state['step']} loss={rng.random():.4f}")
        state["ticks"] += 1

    loop = run_with_heartbeat(app, feed, FEED_EVERY_MS, HEARTBEAT_MS, seconds)
    assert page.plot.history["loss"][0].size == state["step"]  # every point reached the plot
    elapsed, cpu = loop.pop("elapsed"), loop.pop("cpu")
    page.close()
    app.processEvents()
    return {"points_per_second": round(state["step"] / elapsed), "frames": len(frames),
            "cpu_percent": round(100 * cpu / elapsed), **loop}


def bench_page(app, seconds: float, tmp: Path) -> dict:
    runs = {"before": [], "now": [], "now_with_page_diff": []}
    for i, side in enumerate(ORDER + ("now_with_page_diff", "now_with_page_diff")):
        folder = tmp / f"page{i}"
        runs[side].append(flood(app, side.split("_")[0], seconds, folder, page_diff=side != side.split("_")[0]))
    return runs


# -- redraw -----------------------------------------------------------------------------------
def redraw(app, side: str, n: int, smoothing: int, repeats: int) -> float:
    plot = SIDES[side][0]()
    plot.resize(1000, 700)
    plot.show()
    app.processEvents()
    plot.smooth_slider.setValue(smoothing)
    steps, loss = rave_like(n)
    plot.set_history({"loss": (steps, loss), "val_loss": (steps[::100], loss[::100] + 0.2),
                      "feature_matching": (steps, loss / 3), "lr": (steps, 1e-3 * 0.5 ** (steps / steps[-1]))})
    wall = []
    for i in range(repeats):
        # a new point each time, as in a live run, so that no cache hides the work
        plot.update_metrics({"step": steps[-1] + 50 * (i + 1), "loss": 1.0, "feature_matching": 0.3, "lr": 1e-4})
        t0 = time.perf_counter()
        plot.redraw_now()
        wall.append(time.perf_counter() - t0)
    plot.close()
    plot.deleteLater()
    app.processEvents()
    return round(statistics.median(wall) * 1000, 1)


def bench_redraw(app, repeats: int, sizes) -> dict:
    out = {}
    for n in sizes:
        for smoothing in (0, 60):
            row = {"before": [], "now": []}
            for side in ORDER:
                row[side].append(redraw(app, side, n, smoothing, repeats))
            out[f"{n}_smoothing_{smoothing / 100:.1f}"] = {s: statistics.median(v) for s, v in row.items()}
    return out


# -- open a stored run ------------------------------------------------------------------------
def store_run(manager, dataset_id, steps: int, noisy: bool = False) -> int:
    """A completed run of ``steps`` logging steps x 10 keys in the history table."""
    exp_id = manager.start_training({"name": f"stored {steps}", "dataset_id": dataset_id,
                                     "max_steps": steps * 50})
    rng = np.random.default_rng(2)
    curves = [rave_like(steps, seed=k)[1] for k in range(len(KEYS))]
    for start in range(0, steps, 50_000):
        part = range(start, min(steps, start + 50_000))
        if noisy:  # the old benchmark's data: every value uniform in [0, 1) (a worst case to draw)
            manager.update_training_metrics(exp_id, [{"step": (s + 1) * 50, **dict(zip(KEYS, rng.random(len(KEYS))))}
                                                     for s in part])
        else:
            manager.update_training_metrics(exp_id, [{"step": (s + 1) * 50, **{k: float(curves[j][s])
                                                                                for j, k in enumerate(KEYS)}}
                                                     for s in part])
    manager.update_experiment_status(exp_id, "completed")
    return exp_id


def show_run(app, side: str, manager, exp_id: int, plot, cold: bool = False) -> dict:
    if cold:
        history_cache.drop_chunks(manager.db, exp_id)
    t0 = time.perf_counter()
    history = get_metric_history_before(manager, exp_id) if side == "before" else manager.get_metric_history(exp_id)
    t1 = time.perf_counter()
    plot.set_history(history)  # replaces the data and draws (synchronously)
    t2 = time.perf_counter()
    app.processEvents()
    return {"history_ms": round((t1 - t0) * 1000, 1), "plot_drawn_ms": round((t2 - t1) * 1000, 1),
            "total_ms": round((t2 - t0) * 1000, 1)}


def load_run(app, manager, exp_id: int, plot, cold: bool) -> dict:
    """``MetricsPlot.load_history`` (what the Training page calls with the page diff
    proposed in issue 14): the first picture (the whole history, or an overview of a
    run not cached yet) drawn synchronously, then, for an overview, the event loop
    runs (a 5 ms heartbeat measures its stalls) until the whole history is drawn."""
    if cold:
        history_cache.drop_chunks(manager.db, exp_id)
    state = {"loaded": None, "drawn": None, "beats": []}

    def loaded(_):
        state["loaded"] = time.perf_counter()

    def frame():
        if state["loaded"] is not None and not plot.canvas.rendering and state["drawn"] is None:
            state["drawn"] = time.perf_counter()
            loop.quit()

    loop, beat = QEventLoop(), QTimer()
    beat.setTimerType(Qt.TimerType.PreciseTimer)
    beat.timeout.connect(lambda: state["beats"].append(time.perf_counter()))
    plot.history_loaded.connect(loaded)
    plot.canvas.frame_drawn.connect(frame)
    t0 = time.perf_counter()
    plot.load_history(manager, exp_id)
    t1 = time.perf_counter()
    overview = plot.loading
    if overview:
        beat.start(HEARTBEAT_MS)
        QTimer.singleShot(120_000, loop.quit)
        loop.exec()
        beat.stop()
    plot.history_loaded.disconnect(loaded)
    plot.canvas.frame_drawn.disconnect(frame)
    app.processEvents()
    gaps = np.diff([t1] + state["beats"] + [state["drawn"] or time.perf_counter()]) * 1000 if overview else None
    return {"overview": overview, "first_picture_ms": round((t1 - t0) * 1000, 1),
            "whole_history_drawn_ms": round(((state["drawn"] if overview else t1) - t0) * 1000, 1),
            "max_gap_while_loading_ms": round(float(gaps.max()), 1) if overview else None,
            "p99_gap_while_loading_ms": round(float(np.percentile(gaps, 99)), 1) if overview else None}


def median_load(results: list) -> dict:
    return {k: (statistics.median(r[k] for r in results) if isinstance(results[0][k], float) else results[0][k])
            for k in results[0]}


def bench_open(app, tmp: Path, sizes, repeats: int) -> dict:
    db, manager, dataset_id = make_world(tmp / "open")
    plots = {}
    for side in SIDES:
        plots[side] = SIDES[side][0]()
        plots[side].resize(1000, 700)
        plots[side].show()
    app.processEvents()
    out = {}
    cases = [(steps, False) for steps in sizes] + [(sizes[0], True)]
    for steps, noisy in cases:
        t0 = time.perf_counter()
        exp_id = store_run(manager, dataset_id, steps, noisy)
        store_s = time.perf_counter() - t0
        row = {"points": steps * len(KEYS), "store_s": round(store_s, 1)}
        # load_history first: a cold get_metric_history would cache the run
        row["now_load_history_cold"] = median_load([load_run(app, manager, exp_id, plots["now"], cold=True)
                                                    for _ in range(repeats)])
        row["now_load_history_warm"] = median_load([load_run(app, manager, exp_id, plots["now"], cold=False)
                                                    for _ in range(repeats)])
        row["now_cold"] = show_run(app, "now", manager, exp_id, plots["now"], cold=True)
        runs = {"before": [], "now": []}
        for _ in range(repeats):
            for side in ORDER:
                runs[side].append(show_run(app, side, manager, exp_id, plots[side]))
        for side, results in runs.items():
            row[side] = {k: statistics.median(r[k] for r in results) for k in results[0]}
        out[f"{steps * len(KEYS)}{'_uniform_noise' if noisy else ''}"] = row
        manager.delete_experiment(exp_id)
    # the whole Training page: selecting a stored run (history, plot, log, config, checkpoints)
    exp_id = store_run(manager, dataset_id, sizes[0])
    manager.get_metric_history(exp_id)
    select = {}
    for side in SIDES:
        page = make_page(side, manager)
        if side == "before":
            manager.get_metric_history = lambda e, keys=None: get_metric_history_before(manager, e, keys)
        else:
            manager.__dict__.pop("get_metric_history", None)
        other = next(e["id"] for e in manager.list_experiments() if e["id"] != exp_id) \
            if len(manager.list_experiments()) > 1 else None
        wall = []
        for _ in range(repeats):
            if other is not None:
                page.select_experiment(other)
            else:
                page.table.clearSelection()
            app.processEvents()
            t0 = time.perf_counter()
            page.select_experiment(exp_id)
            wall.append(time.perf_counter() - t0)
            app.processEvents()
        select[side] = round(statistics.median(wall) * 1000, 1)
        manager.__dict__.pop("get_metric_history", None)
        page.close()
        app.processEvents()
    out["page_select_ms"] = {"points": sizes[0] * len(KEYS), **select}
    for plot in plots.values():
        plot.close()
    return out  # the database stays open: the pages kept alive may still read it


# -- 1 000 experiments ------------------------------------------------------------------------
def make_experiments(manager, dataset_id, n: int) -> list[int]:
    ids = []
    for i in range(n):
        exp_id = manager.start_training({"name": f"run {i:04d} voice-v2 48k", "dataset_id": dataset_id,
                                         "max_steps": 500_000})
        manager.update_training_metrics(exp_id, {"step": 1000 + i, **{k: 1.0 for k in KEYS}})
        manager.update_experiment_status(exp_id, "completed")
        ids.append(exp_id)
    return ids


def timed_events(app, action, repeats: int) -> dict:
    wall = []
    for i in range(repeats):
        t0 = time.perf_counter()
        action(i)
        app.processEvents()
        wall.append(time.perf_counter() - t0)
    return {"median_ms": round(statistics.median(wall) * 1000, 1), "max_ms": round(max(wall) * 1000, 1)}


def table(app, side: str, manager, ids) -> dict:
    t0 = time.perf_counter()
    page = make_page(side, manager)
    app.processEvents()
    built = time.perf_counter() - t0
    model, bar = page.model, page.table.verticalScrollBar()
    live = ids[-1]  # the newest run: the top row
    out = {"page_built_and_shown_ms": round(built * 1000, 1), "rows_in_model": model.rowCount(),
           "step_update": timed_events(app, lambda i: model.set_step(live, 2000 + i), 20),
           "row_update": timed_events(app, lambda i: model.update_experiment(live), 10),
           "refresh": timed_events(app, lambda i: model.refresh(), 10)}
    bar.setValue(0)
    app.processEvents()
    out["scroll_step"] = timed_events(app, lambda i: bar.setValue(bar.value() + 3 * bar.singleStep()), 60)
    out["scroll_page"] = timed_events(app, lambda i: bar.setValue(bar.value() + bar.pageStep()), 30)
    for _ in range(50):  # to the end: every row shown
        bar.setValue(bar.maximum())
        app.processEvents()
    out["rows_shown_after_scrolling_to_the_end"] = model.rowCount()
    out["step_update_all_rows_shown"] = timed_events(app, lambda i: model.set_step(live, 3000 + i), 20)
    page.close()
    app.processEvents()
    return out


def bench_table(app, tmp: Path, n: int) -> dict:
    db, manager, dataset_id = make_world(tmp / "table")
    ids = make_experiments(manager, dataset_id, n)
    out = {"experiments": n}
    for side in ("before", "now"):
        out[side] = table(app, side, manager, ids)
    return out  # the database stays open: the pages kept alive may still read it


# -- app start ---------------------------------------------------------------------------------
START_CHILD = r"""
import json, os, sys, time
T0 = time.time()
sys.path.insert(0, {root!r}); sys.path.insert(0, {bench!r})
from PyQt6.QtCore import QTimer, Qt
from PyQt6.QtWidgets import QApplication
if {before!r}:
    from baseline.experiments_model_before import ExperimentsTableModel
    import rave_gui.ui.pages.training as page
    page.ExperimentsTableModel = ExperimentsTableModel
marks, gaps = {{}}, []
real_exec = QApplication.exec
def exec_(app):
    marks["exec"] = time.time()
    def beat(last=[None]):
        now = time.time()
        marks.setdefault("first_beat", now)
        if last[0] is not None:
            gaps.append(now - last[0])
        last[0] = now
    timer = QTimer(); timer.setTimerType(Qt.TimerType.PreciseTimer); timer.timeout.connect(beat); timer.start(5)
    QTimer.singleShot(3000, app.quit)
    return real_exec()
QApplication.exec = exec_
from rave_gui.app import main
code = main(["--data-dir", {data!r}])
gaps.sort()
print(json.dumps({{"t0": T0, **marks, "max_gap_ms": 1000 * gaps[-1], "p99_gap_ms": 1000 * gaps[int(0.99 * len(gaps))],
                   "code": code}}))
"""


def start_app(data: Path, before: bool) -> dict:
    script = START_CHILD.format(root=str(HERE.parent), bench=str(HERE), before=before, data=str(data))
    spawned = time.time()
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "QT_QPA_PLATFORM": os.environ.get("QT_QPA_PLATFORM", "offscreen")})
    line = [ln for ln in done.stdout.splitlines() if ln.startswith("{")]
    if not line:
        raise RuntimeError(f"the app did not start: {done.stderr[-2000:]}")
    r = json.loads(line[-1])
    return {"interpreter_ms": round((r["t0"] - spawned) * 1000), "window_shown_s": round(r["exec"] - spawned, 2),
            "responsive_s": round(r["first_beat"] - spawned, 2), "max_gap_first_3s_ms": round(r["max_gap_ms"], 1),
            "p99_gap_first_3s_ms": round(r["p99_gap_ms"], 1)}


def bench_start(tmp: Path, n: int, rounds: int) -> dict:
    from rave_gui.core import paths
    data = tmp / "start"
    db, manager, dataset_id = make_world(data, paths.database_path(data))
    make_experiments(manager, dataset_id, n)
    db.close()
    runs = {"before": [], "now": []}
    for _ in range(rounds):
        for side in ORDER:
            runs[side].append(start_app(data, side == "before"))
    return {"experiments": n, **{side: {k: statistics.median(r[k] for r in rs) for k in rs[0]}
                                  for side, rs in runs.items()}}


# -- the anchor: TensorBoard's own load of the same run ---------------------------------------------
ANCHOR_TAGS = ("multiband_spectral_distance", "fullband_spectral_distance", "regularization", "beta_factor",
               "feature_matching", "adversarial", "loss_dis", "pred_real")


def write_run(folder: Path, points: int) -> tuple[Path, float]:
    from torch.utils.tensorboard import SummaryWriter
    run = folder / "run_anchor"
    writer = SummaryWriter(str(run / "version_0"), max_queue=100_000, flush_secs=3600)
    steps = points // len(ANCHOR_TAGS)
    values = np.stack([rave_like(steps, seed=k)[1] for k in range(len(ANCHOR_TAGS))], axis=1).tolist()
    t0 = time.perf_counter()
    for i in range(steps):
        step = 50 * i + 49  # RAVE logs every 50 steps
        for tag, value in zip(ANCHOR_TAGS, values[i]):
            writer.add_scalar(tag, value, step)
    writer.close()
    return run, time.perf_counter() - t0


def bench_anchor(app, tmp: Path, points: int) -> dict:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from rave_gui.backend.events import RunEventsFollower
    run, write_s = write_run(tmp, points)
    out = {"points_written": points, "summarywriter_write_s": round(write_s, 1),
           "event_file_mb": round(sum(f.stat().st_size for f in run.rglob("events.*")) / 1e6, 1)}
    t0 = time.perf_counter()
    acc = EventAccumulator(str(run / "version_0"), size_guidance={"scalars": 0})
    acc.Reload()
    read = sum(len(acc.Scalars(tag)) for tag in acc.Tags()["scalars"])
    out["tensorboard_event_accumulator_s"] = round(time.perf_counter() - t0, 2)
    assert read == points, (read, points)
    del acc
    # the app: what it reads from the run folder (RunEventsFollower) into its history table
    db, manager, dataset_id = make_world(tmp / "anchor_app")
    exp_id = manager.start_training({"name": "anchor", "dataset_id": dataset_id, "max_steps": 10 ** 8})
    t0 = time.perf_counter()
    metrics = RunEventsFollower(run).poll(final=True)
    out["app_follower_read_s"] = round(time.perf_counter() - t0, 2)
    t0 = time.perf_counter()
    for start in range(0, len(metrics), 20_000):
        manager.update_training_metrics(exp_id, metrics[start:start + 20_000])
    out["app_store_s"] = round(time.perf_counter() - t0, 1)
    out["app_points_stored"] = db.query_one("SELECT count(*) FROM metric_points WHERE experiment_id = ?",
                                            (exp_id,))[0]
    del metrics
    plots = {side: SIDES[side][0]() for side in SIDES}
    for plot in plots.values():
        plot.resize(1000, 700)
        plot.show()
    app.processEvents()
    out["app_load_history_cold"] = load_run(app, manager, exp_id, plots["now"], cold=True)
    out["app_show_now_cold"] = show_run(app, "now", manager, exp_id, plots["now"], cold=True)
    out["app_show_now_warm"] = show_run(app, "now", manager, exp_id, plots["now"])
    out["app_show_before"] = show_run(app, "before", manager, exp_id, plots["before"])
    tb = out["tensorboard_event_accumulator_s"] * 1000
    out["ratio_tensorboard_over_app"] = {k: round(tb / out[f"app_show_{k}"]["total_ms"], 1)
                                         for k in ("now_warm", "now_cold", "before")}
    cold = out["app_load_history_cold"]
    out["ratio_tensorboard_over_app"]["load_history_cold_first_picture"] = round(tb / cold["first_picture_ms"], 1)
    out["ratio_tensorboard_over_app"]["load_history_cold_whole"] = round(tb / cold["whole_history_drawn_ms"], 1)
    for plot in plots.values():
        plot.close()
    db.close()
    return out


# -- report -------------------------------------------------------------------------------------------
def ratio(now, before) -> str:
    return f"{now / before:.2f}" if before else "-"


def r1(value):
    """Numbers with one decimal at most (medians of two runs are means of two)."""
    if isinstance(value, float):
        return round(value, 1)
    if isinstance(value, dict):
        return {k: r1(v) for k, v in value.items()}
    return value


def gc_passes(r: dict) -> str:
    """Full collections during a case (results from before they were counted: -)."""
    return f"{r['gc_full_passes']} ({r['gc_full_max_ms']})" if "gc_full_passes" in r else "-"


def report(results: dict) -> None:
    results = r1(results)
    if "stream" in results:
        s = results["stream"]
        print(f"\n### 10 000 points/s into the visible plot ({FEED_EVERY_MS} ms batches, "
              f"heartbeat {HEARTBEAT_MS} ms)\n")
        print(f"idle event loop on this machine: max {s['idle_floor']['max_gap_ms']} ms, "
              f"p99 {s['idle_floor']['p99_gap_ms']} ms\n")
        print("| case | side | max gap ms | p99 gap ms | median ms | frames | CPU s | full GC passes (longest ms) |")
        print("|---|---|---:|---:|---:|---:|---:|---:|")
        for case in ("from_empty", "into_1M_points"):
            for side in ("before", "now"):
                for r in s[case][side]:
                    print(f"| {case} | {side} | {r['max_gap_ms']} | {r['p99_gap_ms']} | {r['median_gap_ms']} "
                          f"| {r['frames']} | {r['cpu_s']} | {gc_passes(r)} |")
    if "page" in results:
        print("\n### The visible Training page flooded: 10 000 metric points/s + step updates + log lines\n")
        print("| side | max gap ms | p99 gap ms | median ms | frames | CPU % | full GC passes (longest ms) |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for side in ("before", "now", "now_with_page_diff"):
            for r in results["page"][side]:
                print(f"| {side} | {r['max_gap_ms']} | {r['p99_gap_ms']} | {r['median_gap_ms']} | {r['frames']} "
                      f"| {r['cpu_percent']} | {gc_passes(r)} |")
    if "redraw" in results:
        print("\n### Synchronous full redraw (redraw_now), median ms\n")
        print("| points | smoothing | before | now | now/before |")
        print("|---:|---:|---:|---:|---:|")
        for key, r in results["redraw"].items():
            n, _, w = key.split("_")
            print(f"| {int(n):,} | {w} | {r['before']} | {r['now']} | {ratio(r['now'], r['before'])} |")
    if "open" in results:
        print("\n### Opening a stored run: history + plot drawn, median ms\n")
        print("| points | before | now (cache warm) | now (first open: no cache) | now/before |")
        print("|---|---:|---:|---:|---:|")
        for key, r in results["open"].items():
            if key == "page_select_ms" or not isinstance(r, dict):
                continue
            b, n, c = r["before"], r["now"], r["now_cold"]
            print(f"| {key} | {b['total_ms']} ({b['history_ms']} + {b['plot_drawn_ms']}) | {n['total_ms']} "
                  f"({n['history_ms']} + {n['plot_drawn_ms']}) | {c['total_ms']} ({c['history_ms']} + "
                  f"{c['plot_drawn_ms']}) | {ratio(n['total_ms'], b['total_ms'])} |")
        earlier = results.get("open_before_cold_open_work")
        if earlier:
            print("\nfirst open, no cache, before rows were read without a Python object each: "
                  + ", ".join(f"{key}: {r['now_cold']['total_ms']} ms" for key, r in earlier.items()
                              if isinstance(r, dict) and "now_cold" in r))
        print("\n### MetricsPlot.load_history (the page diff of issue 14), median ms\n")
        print("| points | cache | overview shown first | first picture | whole history drawn "
              "| max gap while loading | p99 gap |")
        print("|---|---|---|---:|---:|---:|---:|")
        for key, r in results["open"].items():
            for cache in ("cold", "warm"):
                m = r.get(f"now_load_history_{cache}") if isinstance(r, dict) else None
                if m:
                    gaps = [m[g] if m[g] is not None else "–" for g in ("max_gap_while_loading_ms",
                                                                           "p99_gap_while_loading_ms")]
                    print(f"| {key} | {cache} | {'yes' if m['overview'] else 'no'} | {m['first_picture_ms']} | "
                          f"{m['whole_history_drawn_ms']} | {gaps[0]} | {gaps[1]} |")
        p = results["open"].get("page_select_ms")
        if p:
            print(f"\nTraining page, select a stored run of {p['points']:,} points: before {p['before']} ms, "
                  f"now {p['now']} ms ({ratio(p['now'], p['before'])})")
    if "table" in results:
        t = results["table"]
        print(f"\n### {t['experiments']:,} experiments: the Training page's table\n")
        print("| measure | before | now |")
        print("|---|---:|---:|")
        for key in t["now"]:
            b, n = t["before"][key], t["now"][key]
            fmt = (lambda v: f"{v['median_ms']} (max {v['max_ms']})") if isinstance(n, dict) else str
            print(f"| {key} | {fmt(b)} | {fmt(n)} |")
    if "start" in results:
        s = results["start"]
        print(f"\n### App start on a database of {s['experiments']:,} experiments (subprocess, median)\n")
        print("| measure | before | now |")
        print("|---|---:|---:|")
        for key in s["now"]:
            print(f"| {key} | {s['before'][key]} | {s['now'][key]} |")
    if "anchor" in results:
        a = results["anchor"]
        print(f"\n### Anchor: a {a['points_written']:,}-point run folder written by SummaryWriter\n")
        print("| measure | value |")
        print("|---|---:|")
        for key, value in a.items():
            print(f"| {key} | {value} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 s streams, smaller runs, fewer repeats")
    parser.add_argument("--only", default="stream,page,redraw,open,table,start,anchor")
    parser.add_argument("--anchor-points", type=int, default=None)
    parser.add_argument("--report", action="store_true", help="print the tables of the last results and exit")
    args = parser.parse_args()
    if args.report:
        report(json.loads(RESULTS.read_text()))
        return
    only = set(args.only.split(","))
    seconds = 2.0 if args.quick else 5.0
    app = QApplication.instance() or QApplication([])
    results: dict = {}
    tmp = Path(tempfile.mkdtemp(prefix="bench_responsiveness_"))
    try:
        if "stream" in only:
            results["stream"] = bench_stream(app, seconds)
        if "page" in only:
            results["page"] = bench_page(app, seconds, tmp)
        if "redraw" in only:
            results["redraw"] = bench_redraw(app, 3 if args.quick else 7,
                                             (1_000, 100_000) if args.quick else (1_000, 100_000, 1_000_000))
        if "open" in only:
            results["open"] = bench_open(app, tmp, (2_000, 20_000) if args.quick else (20_000, 200_000),
                                         2 if args.quick else 3)
        if "table" in only:
            results["table"] = bench_table(app, tmp, 1_000)
        if "start" in only:
            results["start"] = bench_start(tmp, 1_000, 1)
        if "anchor" in only:
            results["anchor"] = bench_anchor(app, tmp, args.anchor_points or (200_000 if args.quick else 2_000_000))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    report(results)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    previous = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    previous.update(results)
    previous["env"] = environment()
    previous["config"] = {"quick": args.quick, "seconds": seconds, "rate": RATE, "feed_every_ms": FEED_EVERY_MS,
                          "heartbeat_ms": HEARTBEAT_MS, "order": ORDER}
    RESULTS.write_text(json.dumps(previous, indent=2) + "\n")
    print(f"\nwrote {RESULTS}")


if __name__ == "__main__":
    main()
