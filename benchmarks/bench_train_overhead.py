"""Benchmark the app's cost on a real training run: the same short ``rave train``
launched directly and through ``TrainingProcess``, side by side.

    .venv/bin/python benchmarks/bench_train_overhead.py [--rounds 1] [--steps 60] [--quick]

A tiny dataset (4 files x 8 s of tones, ``rave preprocess --channels 1``) is
made once; then each round runs, in an order rotated from round to round:

* **direct** -- ``rave train --config v2_small ... --max_steps N --batch 2
  --workers 0 --val_every 20 --gpu -1`` through ``subprocess.run``, output to a
  file, timed with ``time.monotonic``;
* **app** -- a fresh Database, ``DatasetManager.register``,
  ``TrainingManager.start_training`` and ``TrainingProcess(manager, id)``
  under a ``QCoreApplication`` event loop, timed from ``start()`` until the
  ``finished`` signal reaches the main thread (it runs RAVE through
  ``rave_launcher.py``, with the app's Lightning callbacks, and follows the
  log and the TensorBoard event files while it runs);
* **app, launcher=False** -- the same, running plain ``rave train``: the app
  still follows it, but RAVE runs without the app's callbacks, so
  app/app-plain is the launcher's cost and app-plain/direct the following's.

For each run it records wall seconds, the CPU seconds of the ``rave`` process
(children's rusage), the CPU seconds of this process (for the app runs: the
thread that follows the run plus the event loop), and the CPU seconds every
*other* process on the machine used meanwhile (from ``/proc/stat``), since a
shared machine's load moves a 1-minute run by more than the 2 % looked for.
An untimed 2-step ``rave train`` runs first (``--no-warmup`` skips it) so the
first timed run does not pay for cold file caches.

Prints a markdown table and writes benchmarks/results/train_overhead.json.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from importlib import metadata
from pathlib import Path

from PyQt6.QtCore import QCoreApplication, Qt, QTimer

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
from audio import make_audio_folder  # noqa: E402

from rave_gui.backend import rave_cli  # noqa: E402
from rave_gui.backend.datasets import DatasetManager  # noqa: E402
from rave_gui.backend.training import TrainingManager  # noqa: E402
from rave_gui.backend.training_process import TrainingProcess  # noqa: E402
from rave_gui.core.database import Database  # noqa: E402
from rave_gui.core.signals import app_signals  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "train_overhead.json"
KINDS = ("direct", "app", "app_plain")
LABELS = {"direct": "direct `rave train`", "app": "app (TrainingProcess, launcher)",
          "app_plain": "app, launcher=False"}
BATCH, VAL_EVERY, CONFIG = 2, 20, "v2_small"
CLK_TCK = os.sysconf("SC_CLK_TCK")
#: the app run in progress, so that SIGTERM (say, from `timeout`) does not leave its `rave` behind:
#: TrainingProcess starts it in a session of its own, out of reach of a signal sent to our group
_ACTIVE: dict = {"process": None, "terminated": False}


def _on_sigterm(signum, frame):
    process = _ACTIVE["process"]
    _ACTIVE["terminated"] = True
    if process is not None and process.pid:
        from rave_gui.core.process import end_group
        end_group(process.pid)  # the worker thread then sees the exit and `finished` ends the loop
        return
    raise SystemExit(128 + signum)  # a direct run: subprocess.run kills its child on the way out


# -- what the machine does meanwhile ------------------------------------------------------
def cpu_busy_s() -> tuple[float, float]:
    """Busy and steal CPU seconds of the whole machine since boot (all cores)."""
    with open("/proc/stat") as fh:
        fields = [int(x) for x in fh.readline().split()[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return (user + nice + system + irq + softirq + steal) / CLK_TCK, steal / CLK_TCK


class Snapshot:
    def __init__(self):
        self.t = time.monotonic()
        self.children = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.me = resource.getrusage(resource.RUSAGE_SELF)
        self.busy, self.steal = cpu_busy_s()
        self.load = os.getloadavg()[0]


def usage(a: Snapshot, b: Snapshot) -> dict:
    child = (b.children.ru_utime - a.children.ru_utime) + (b.children.ru_stime - a.children.ru_stime)
    me = (b.me.ru_utime - a.me.ru_utime) + (b.me.ru_stime - a.me.ru_stime)
    wall = b.t - a.t
    others = max(0.0, (b.busy - a.busy) - child - me)
    return {"wall_s": wall, "rave_cpu_s": child, "bench_process_cpu_s": me,
            "other_processes_cpu_s": others, "other_processes_cores": others / wall if wall else 0.0,
            "steal_s": b.steal - a.steal, "load1_start": a.load, "load1_end": b.load}


class LoadSampler(threading.Thread):
    """The 1-minute load average every second, to report its range over each run."""

    def __init__(self):
        super().__init__(daemon=True)
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()

    def run(self):
        while not self._stop.wait(1.0):
            self.samples.append((time.monotonic(), os.getloadavg()[0]))

    def between(self, t0: float, t1: float) -> list[float]:
        return [v for t, v in self.samples if t0 <= t <= t1]

    def stop(self):
        self._stop.set()


# -- the runs -----------------------------------------------------------------------------
def make_dataset(root: Path, rave: Path) -> tuple[Path, float]:
    audio = make_audio_folder(root / "audio", files=4, seconds=8)
    out = root / "dataset"
    t0 = time.monotonic()
    done = subprocess.run([str(rave), "preprocess", "--input_path", str(audio), "--output_path", str(out),
                           "--channels", "1"], capture_output=True, text=True, timeout=600)
    if done.returncode != 0 or not (out / "metadata.yaml").is_file():
        sys.exit(f"rave preprocess failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return out, time.monotonic() - t0


def direct_command(rave: Path, dataset: Path, name: str, out: Path, steps: int) -> list[str]:
    return [str(rave), "train", "--config", CONFIG, "--db_path", str(dataset), "--name", name,
            "--out_path", str(out), "--channels", "1", "--gpu", "-1", "--max_steps", str(steps),
            "--batch", str(BATCH), "--workers", "0", "--val_every", str(VAL_EVERY)]


def run_direct(rave: Path, dataset: Path, work: Path, steps: int, timeout: float, name="direct") -> dict:
    out = work / "out"
    log = work / "train.log"
    work.mkdir(parents=True)
    with open(log, "wb") as sink:
        a = Snapshot()
        done = subprocess.run(direct_command(rave, dataset, name, out, steps), stdin=subprocess.DEVNULL,
                              stdout=sink, stderr=subprocess.STDOUT, timeout=timeout)
        b = Snapshot()
    text = log.read_text(errors="replace")
    ok = done.returncode == 0 and f"`max_steps={steps}` reached" in text
    return {**usage(a, b), "ok": ok, "returncode": done.returncode, "log": str(log),
            "_tail": text[-3000:]}


class TimedTrainingProcess(TrainingProcess):
    """TrainingProcess that notes when the child started and when its exit was seen."""

    child_started = child_exit_seen = finished_emitted = None

    def on_started(self, pid: int) -> None:
        self.child_started = time.monotonic()
        super().on_started(pid)

    def outcome(self, returncode: int):
        self.child_exit_seen = time.monotonic()
        return super().outcome(returncode)


def run_app(app: QCoreApplication, dataset: Path, work: Path, steps: int, timeout: float,
            launcher: bool) -> dict:
    work.mkdir(parents=True)
    db = Database(work / "db.sqlite3")
    try:
        manager = TrainingManager(db, runs_root=work / "runs")
        dataset_id = DatasetManager(db).register(dataset)
        exp_id = manager.start_training(dict(name="app" if launcher else "app_plain", dataset_id=dataset_id,
                                             base_config=CONFIG, max_steps=steps, batch_size=BATCH,
                                             device="cpu", val_every=VAL_EVERY))
        process = TimedTrainingProcess(manager, exp_id, launcher=launcher)
        counts = {"step_update": 0, "metrics_update": 0, "output": 0}
        state: dict = {"result": None, "delivered": None, "timed_out": False}
        process.step_update.connect(lambda s, t: counts.__setitem__("step_update", counts["step_update"] + 1))
        process.metrics_update.connect(lambda m: counts.__setitem__("metrics_update", counts["metrics_update"] + 1))
        process.output.connect(lambda line: counts.__setitem__("output", counts["output"] + 1))

        def emitted(ok, msg):  # in the worker thread, as it emits
            process.finished_emitted = time.monotonic()

        def delivered(ok, msg):  # in the main thread, through the event loop, as the GUI gets it
            state["delivered"] = time.monotonic()
            state["result"] = (ok, msg)
            app.quit()

        def too_long():
            state["timed_out"] = True
            process.stop()

        process.finished.connect(emitted, Qt.ConnectionType.DirectConnection)
        process.finished.connect(delivered, Qt.ConnectionType.QueuedConnection)
        manager.register_process(exp_id, process)
        tick = QTimer()  # lets Python run its signal handlers while Qt waits
        tick.timeout.connect(lambda: None)
        tick.start(200)
        guard = QTimer()
        guard.setSingleShot(True)
        guard.timeout.connect(too_long)
        guard.start(int(timeout * 1000))

        a = Snapshot()
        _ACTIVE["process"] = process
        try:
            process.start()
            app.exec()
            b = Snapshot()  # delivered is the end of the timed span; b is a few µs later
        finally:
            _ACTIVE["process"] = None
        guard.stop()
        tick.stop()
        process.wait(30_000)
        app.processEvents()

        t_end = state["delivered"]
        result = {**usage(a, b), "wall_s": t_end - a.t}
        history = manager.get_metric_history(exp_id)
        exp = manager.get_experiment(exp_id)
        text = Path(exp["log_path"]).read_text(errors="replace") if Path(exp["log_path"]).is_file() else ""
        ok = bool(state["result"] and state["result"][0]) and not state["timed_out"]
        result.update({
            "ok": ok, "message": state["result"][1] if state["result"] else None,
            "returncode": process.returncode, "status": exp["status"], "log": exp["log_path"],
            "until_child_started_s": (process.child_started or t_end) - a.t,
            "child_running_s": ((process.child_exit_seen or t_end) - (process.child_started or a.t)),
            "after_child_exit_s": t_end - (process.child_exit_seen or t_end),
            "finished_queue_delay_ms": 1000 * (t_end - (process.finished_emitted or t_end)),
            "metric_points": sum(len(v) for v in history.values()),
            "metric_keys": sorted(history),
            "metric_steps": sorted({s for v in history.values() for s, _ in v}),
            "val_loss_steps": [s for s, _ in history.get("val_loss", [])],
            "signals": counts, "_tail": text[-3000:],
        })
        return result
    finally:
        db.close()


# -- report -------------------------------------------------------------------------------
def median(values):
    return statistics.median(values) if values else float("nan")


def summarize(rounds: list[dict]) -> dict:
    summary = {}
    for kind in KINDS:
        runs = [r[kind] for r in rounds]
        summary[kind] = {key: median([run[key] for run in runs]) for key in
                         ("wall_s", "rave_cpu_s", "bench_process_cpu_s", "other_processes_cores")}
    pairs = {"app/direct": ("app", "direct"), "app_plain/direct": ("app_plain", "direct"),
             "app/app_plain": ("app", "app_plain")}
    ratios = {}
    for label, (num, den) in pairs.items():
        per_round = [r[num]["wall_s"] / r[den]["wall_s"] for r in rounds]
        cpu = [r[num]["rave_cpu_s"] / r[den]["rave_cpu_s"] for r in rounds if r[den]["rave_cpu_s"]]
        ratios[label] = {"wall_per_round": per_round, "wall_median": median(per_round),
                         "wall_min": min(per_round), "wall_max": max(per_round),
                         "rave_cpu_median": median(cpu)}
    summary["ratios"] = ratios
    return summary


def print_report(rounds, summary, steps, dataset_s, warmup) -> None:
    n = len(rounds)
    print(f"\n{steps}-step `rave train --config {CONFIG} --batch {BATCH} --val_every {VAL_EVERY} "
          f"--workers 0 --gpu -1` on {os.cpu_count()} CPUs, {n} round(s); medians over rounds "
          f"(preprocess {dataset_s:.1f} s; warm-up {'%.1f s' % warmup['wall_s'] if warmup else 'skipped'}).\n")
    print("| run | wall s | x direct | rave CPU s | app-side CPU s | other procs (cores) | "
          "load1 start-end | metric points | ok |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for kind in KINDS:
        s = summary[kind]
        last = rounds[-1][kind]
        ratio = "1" if kind == "direct" else f"{summary['ratios'][kind + '/direct']['wall_median']:.3f}"
        points = "-" if kind == "direct" else str(last["metric_points"])
        app_cpu = "-" if kind == "direct" else f"{s['bench_process_cpu_s']:.2f}"
        oks = all(r[kind]["ok"] for r in rounds)
        print(f"| {LABELS[kind]} | {s['wall_s']:.2f} | {ratio} | {s['rave_cpu_s']:.1f} | {app_cpu} | "
              f"{s['other_processes_cores']:.2f} | {last['load1_start']:.2f}-{last['load1_end']:.2f} | "
              f"{points} | {'yes' if oks else 'NO'} |")
    print()
    print("| ratio | wall, median | wall, min-max | rave CPU, median |")
    print("|---|---:|---:|---:|")
    for label, r in summary["ratios"].items():
        print(f"| {label} | {r['wall_median']:.3f} | {r['wall_min']:.3f}-{r['wall_max']:.3f} | "
              f"{r['rave_cpu_median']:.3f} |")
    print()
    print("| app run, last round | app | app_plain |")
    print("|---|---:|---:|")
    rows = (("start() -> child running, s", "until_child_started_s", "{:.3f}"),
            ("child running (as the app saw it), s", "child_running_s", "{:.2f}"),
            ("child exit -> finished delivered, s", "after_child_exit_s", "{:.3f}"),
            ("finished: emit -> main thread, ms", "finished_queue_delay_ms", "{:.2f}"),
            ("metric points stored", "metric_points", "{}"),
            ("distinct steps with metrics", "metric_steps", "{}"),
            ("val_loss steps", "val_loss_steps", "{}"),
            ("step_update / metrics_update signals", "signals", "{}"))
    for title, key, fmt in rows:
        cells = []
        for kind in ("app", "app_plain"):
            value = rounds[-1][kind][key]
            if key == "metric_steps":
                value = len(value)
            elif key == "signals":
                value = f"{value['step_update']} / {value['metrics_update']}"
            cells.append(fmt.format(value))
        print(f"| {title} | {cells[0]} | {cells[1]} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--quick", action="store_true", help="20 steps, no warm-up")
    parser.add_argument("--no-warmup", action="store_true", help="skip the untimed 2-step run")
    parser.add_argument("--timeout", type=float, default=1200, help="seconds allowed to one run")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (logs, runs)")
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--wait-load", type=float, default=None, metavar="L",
                        help="before each timed run, wait until the 1-minute load average is under L")
    parser.add_argument("--wait-max", type=float, default=600, help="longest such wait, seconds")
    args = parser.parse_args()
    if args.quick:
        args.steps, args.no_warmup = min(args.steps, 20), True

    rave = rave_cli.find_rave()
    signal.signal(signal.SIGTERM, _on_sigterm)
    app = QCoreApplication.instance() or QCoreApplication([])
    app_signals()  # the singleton lives in the main thread, as in the app
    sampler = LoadSampler()
    sampler.start()
    root = Path(tempfile.mkdtemp(prefix="bench_train_"))
    failed = None
    warmup, dataset_s, rounds = None, 0.0, []
    started = time.monotonic()
    load_at_start = os.getloadavg()
    try:
        dataset, dataset_s = make_dataset(root, rave)
        if not args.no_warmup:
            warmup = run_direct(rave, dataset, root / "warmup", 2, args.timeout, name="warmup")
            print(f"warm-up (2 steps, untimed): {warmup['wall_s']:.1f} s", flush=True)
        for i in range(args.rounds):
            order = KINDS[i % 3:] + KINDS[:i % 3]
            results = {}
            for kind in order:
                work = root / f"r{i}_{kind}"
                waited = wait_for_load(args.wait_load, args.wait_max)
                if kind == "direct":
                    res = run_direct(rave, dataset, work, args.steps, args.timeout)
                else:
                    res = run_app(app, dataset, work, args.steps, args.timeout, launcher=(kind == "app"))
                res["load1_samples"] = sampler.between(time.monotonic() - res["wall_s"], time.monotonic())
                res["waited_for_load_s"] = waited
                results[kind] = res
                write_results(args, rounds + [{"order": list(order), **results}], dataset_s, warmup, started,
                              load_at_start, partial=True)
                print(f"round {i + 1}/{args.rounds} {kind:9s} {res['wall_s']:7.2f} s  "
                      f"rave CPU {res['rave_cpu_s']:6.1f} s  others {res['other_processes_cores']:.2f} cores  "
                      f"load1 {res['load1_start']:.2f}->{res['load1_end']:.2f}  {'ok' if res['ok'] else 'FAILED'}",
                      flush=True)
                if _ACTIVE["terminated"]:
                    raise SystemExit(143)
                if not res["ok"]:
                    failed = f"{kind} run of round {i + 1} failed:\n{res['_tail']}"
                    break
            rounds.append({"order": list(order), **results})
            if failed:
                break
    finally:
        sampler.stop()
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    if failed:
        sys.exit(failed)

    summary = write_results(args, rounds, dataset_s, warmup, started, load_at_start, partial=False)
    print_report(rounds, summary, args.steps, dataset_s, warmup)
    shown = args.output.relative_to(Path.cwd()) if args.output.is_relative_to(Path.cwd()) else args.output
    print(f"\nwrote {shown}")


def wait_for_load(limit: float | None, longest: float) -> float:
    if limit is None:
        return 0.0
    t0 = time.monotonic()
    while os.getloadavg()[0] >= limit and time.monotonic() - t0 < longest:
        time.sleep(5)
    return time.monotonic() - t0


def clean(run: dict | None, keep: bool) -> dict | None:
    if run is None:
        return None
    return {k: v for k, v in run.items() if k != "_tail" and (keep or k != "log")}


def write_results(args, rounds, dataset_s, warmup, started, load_at_start, partial: bool) -> dict | None:
    """The JSON file; written after every run too (``partial``), so a run cut short leaves its figures."""
    rounds = [{k: (v if k == "order" else clean(v, args.keep)) for k, v in r.items()} for r in rounds]
    complete = [r for r in rounds if all(kind in r for kind in KINDS)]
    summary = summarize(complete) if complete else None
    results = {
        "partial": partial,
        "config": {"steps": args.steps, "rounds": args.rounds, "base_config": CONFIG, "batch": BATCH,
                   "val_every": VAL_EVERY, "workers": 0, "device": "cpu", "warmup": not args.no_warmup,
                   "wait_load": args.wait_load,
                   "dataset": "4 files x 8 s, 44.1 kHz mono tones, rave preprocess --channels 1",
                   "events_interval_s": TrainingProcess.events_interval,
                   "poll_interval_s": TrainingProcess.poll_interval,
                   "env_differences": "app runs add PYTHONUNBUFFERED=1 and RAVE_GUI_LOG_EVERY=50 to the child's "
                                      "environment; direct runs inherit this process's environment"},
        "summary": summary, "rounds": rounds, "preprocess_s": dataset_s, "warmup": clean(warmup, args.keep),
        "total_s": time.monotonic() - started,
        "env": {"python": platform.python_version(), "acids-rave": metadata.version("acids-rave"),
                "torch": metadata.version("torch"), "pytorch-lightning": metadata.version("pytorch-lightning"),
                "PyQt6": metadata.version("PyQt6"), "machine": platform.machine(), "cpu": cpu_model(),
                "cpus": os.cpu_count(), "load_avg_at_start": load_at_start, "load_avg_now": os.getloadavg()},
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    return summary


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


if __name__ == "__main__":
    main()
