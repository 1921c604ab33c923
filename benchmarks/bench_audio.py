"""Benchmark opening the Audio tab of a run with 100 validations.

    .venv/bin/python benchmarks/bench_audio.py [--validations 100] [--examples 2]

Writes, with torch's SummaryWriter (the writer RAVE's Lightning logger uses), a run
folder whose ``version_0`` event file holds ``--validations`` validations of
``--examples`` examples at 44.1 kHz (n_signal 131072: 2 x 2.97 s per example), each
an ``audio_val`` audio event followed by its ``validation`` scalar, with 20 training
scalars between validations. Then measures:

* ``read_validation_audio`` over the whole run (median of 3);
* ``AudioView.set_run`` until the list holds every validation (the read runs on a
  worker thread: the longest event-loop stall meanwhile is measured with a 5 ms
  heartbeat), and until the newest validation's plots are drawn;
* selecting another validation (decode its audio + draw 4 plots), and a refresh
  that finds nothing new.

Prints a markdown table and writes benchmarks/results/audio.json.
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
from PyQt6.QtCore import Qt, QTimer  # noqa: E402
from PyQt6.QtWidgets import QApplication  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from rave_gui.backend.audio import read_validation_audio  # noqa: E402
from rave_gui.ui.widgets.audio_view import AudioView  # noqa: E402
from _shared import environment  # noqa: E402 (benchmarks/ helper)

RESULTS = Path(__file__).resolve().parent / "results" / "audio.json"
N_SIGNAL, SR = 131072, 44100


def write_run(run: Path, validations: int, examples: int) -> tuple[Path, float]:
    from torch.utils.tensorboard import SummaryWriter
    t0 = time.perf_counter()
    rng = np.random.default_rng(0)
    writer = SummaryWriter(str(run / "version_0"))
    t = np.arange(N_SIGNAL) / SR
    wall = 1_700_000_000.0
    for counter in range(validations):
        step = (counter + 1) * 10_000 - 1
        for k in range(20):
            writer.add_scalar("multiband_spectral_distance", 3.0 / (1 + counter), step - 200 + 10 * k,
                              walltime=wall + k)
        originals = np.stack([0.5 * np.sin(2 * np.pi * (220 + 55 * e) * t) for e in range(examples)])
        recon = originals + (0.2 / (1 + counter)) * rng.standard_normal(originals.shape)
        stream = np.concatenate([originals[:, None], recon[:, None]], -1).reshape(-1).clip(-1, 1)
        wall += 60
        writer.add_audio("audio_val", stream.astype(np.float32), counter, SR, walltime=wall)
        writer.add_scalar("validation", 2.0 / (1 + counter), step, walltime=wall + 0.01)
    writer.close()
    return next((run / "version_0").glob("events.out.tfevents.*")), time.perf_counter() - t0


def wait_until(app, condition, timeout: float = 120.0) -> None:
    end = time.perf_counter() + timeout
    while not condition():
        if time.perf_counter() > end:
            raise TimeoutError("the Audio tab did not finish in time")
        app.processEvents()
        time.sleep(0.001)


def bench_view(app, run: Path, validations: int) -> dict:
    view = AudioView()
    view.resize(1200, 700)
    view.show()
    app.processEvents()
    draws = []
    view.canvas.mpl_connect("draw_event", lambda e: draws.append(time.perf_counter()))
    beats = []
    heartbeat = QTimer()
    heartbeat.setTimerType(Qt.TimerType.PreciseTimer)
    heartbeat.timeout.connect(lambda: beats.append(time.perf_counter()))
    heartbeat.start(5)
    t0 = time.perf_counter()
    view.set_run(str(run), n_signal=N_SIGNAL)
    wait_until(app, lambda: len(view.validations) == validations)
    listed = time.perf_counter() - t0
    wait_until(app, lambda: draws and draws[-1] > t0 + listed - 1e-9)
    drawn = draws[-1] - t0
    heartbeat.stop()
    reading = [b for b in beats if b <= t0 + listed]      # the read, not the first draw after it
    gaps = np.diff(reading) * 1000 if len(reading) > 1 else np.zeros(1)
    assert view.list.count() == validations and view.selected() is view.validations[-1]
    select_ms = []
    for index in (0, validations // 2, validations - 2, 1):
        app.processEvents()
        t1 = time.perf_counter()
        view.select(index)          # decode + set the plots' data, then draw_idle draws
        wait_until(app, lambda: draws[-1] > t1)
        select_ms.append((draws[-1] - t1) * 1000)
    app.processEvents()
    t2 = time.perf_counter()
    view.refresh()
    wait_until(app, lambda: not view._in_flight)
    refresh_ms = (time.perf_counter() - t2) * 1000
    view.set_run(None)
    view.close()
    return {"listed_s": round(listed, 3), "first_plots_drawn_s": round(drawn, 3),
            "max_event_loop_gap_ms_while_reading": round(float(gaps.max()), 1),
            "heartbeats_while_reading": len(reading),
            "select_and_draw_median_ms": round(statistics.median(select_ms), 1),
            "select_and_draw_max_ms": round(max(select_ms), 1),
            "refresh_nothing_new_ms": round(refresh_ms, 1)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--validations", type=int, default=100)
    parser.add_argument("--examples", type=int, default=2)
    args = parser.parse_args()
    app = QApplication.instance() or QApplication(sys.argv)
    with tempfile.TemporaryDirectory() as folder:
        run = Path(folder) / "bench_run_0123456789"
        path, write_s = write_run(run, args.validations, args.examples)
        size_mb = path.stat().st_size / 1e6
        reads = []
        for _ in range(3):
            t0 = time.perf_counter()
            found = read_validation_audio(run, n_signal=N_SIGNAL)
            reads.append(time.perf_counter() - t0)
        assert len(found) == args.validations and found[-1].examples == args.examples
        assert [v.step for v in found] == [(c + 1) * 10_000 - 1 for c in range(args.validations)]
        t0 = time.perf_counter()
        pairs = found[-1].pairs
        decode_ms = (time.perf_counter() - t0) * 1000
        assert len(pairs) == args.examples
        view = bench_view(app, run, args.validations)
    result = {"environment": environment(), "validations": args.validations, "examples": args.examples,
              "n_signal": N_SIGNAL, "sample_rate": SR, "event_file_mb": round(size_mb, 1),
              "write_with_summarywriter_s": round(write_s, 2),
              "read_validation_audio_median_s": round(statistics.median(reads), 3),
              "read_validation_audio_runs_s": [round(r, 3) for r in reads],
              "decode_one_validation_ms": round(decode_ms, 1), "audio_view": view}
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    rows = [("event file", f"{size_mb:.1f} MB ({args.validations} validations x {args.examples} examples)"),
            ("read_validation_audio (median of 3)", f"{result['read_validation_audio_median_s'] * 1000:.0f} ms"),
            ("decode one validation's pairs", f"{decode_ms:.1f} ms"),
            ("AudioView: set_run until all listed", f"{view['listed_s'] * 1000:.0f} ms"),
            ("AudioView: until the newest's plots are drawn", f"{view['first_plots_drawn_s'] * 1000:.0f} ms"),
            ("longest event-loop stall while reading", f"{view['max_event_loop_gap_ms_while_reading']} ms"),
            ("select another validation until drawn (median)", f"{view['select_and_draw_median_ms']} ms"),
            ("refresh with nothing new", f"{view['refresh_nothing_new_ms']} ms")]
    print(f"\nAudio tab, machine: {os.cpu_count()} CPUs, load {result['environment']['load_avg_1min']}\n")
    print("| measure | value |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")
    print(f"\nwrote {RESULTS.relative_to(Path.cwd()) if RESULTS.is_relative_to(Path.cwd()) else RESULTS}")


if __name__ == "__main__":
    main()
