"""Soak: short real `rave train` runs back to back through the RunController, with
random stops and resumes and one app kill; at the end every run's stored history
must equal what its event files say the surviving branch logged, and no process
may be left.

    .venv/bin/python benchmarks/bench_soak.py [--runs 10] [--seed 1] [--quick]

Writes benchmarks/results/soak.json. Exits 1 when a check fails. (CPU, v2_small,
batch 2; about 30 s a run on 2 cores.)
"""
from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "tests"))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PyQt6.QtCore import QCoreApplication  # noqa: E402

from rave_gui.backend import rave_cli  # noqa: E402
from rave_gui.backend.datasets import DatasetManager  # noqa: E402
from rave_gui.backend.events import RunEventsFollower  # noqa: E402
from rave_gui.backend.run_paths import RunPaths  # noqa: E402
from rave_gui.backend.runs import RunController  # noqa: E402
from rave_gui.backend.training import TrainingManager  # noqa: E402
from rave_gui.core.database import Database  # noqa: E402
from rave_gui.core.process_group import process_alive  # noqa: E402

APP = ROOT / "tests" / "test_e2e" / "app_process.py"
TERMINAL = ("stopped", "completed", "failed", "interrupted")


def wait_until(app, predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        app.processEvents()
        if predicate():
            return True
        time.sleep(0.05)
    return False


def stored_vs_events(manager, exp_id) -> dict:
    """Compare the stored history with the event files' stitched view."""
    run_dir = RunPaths.of(manager.get_experiment(exp_id)).run_dir
    truth: dict[tuple[str, int], float] = {}
    for metrics in RunEventsFollower(run_dir).poll(final=True) if run_dir else []:
        for key, value in metrics.items():
            if key != "step":
                truth[(key, metrics["step"])] = float(value)
    stored = {(key, step): value for key, points in manager.get_metric_history(exp_id).items()
              for step, value in points}
    missing = sorted(set(truth) - set(stored))
    extra = sorted(set(stored) - set(truth))
    differ = sorted(k for k in set(truth) & set(stored) if abs(truth[k] - stored[k]) > 1e-6 * max(1, abs(truth[k])))
    return {"points": len(truth), "missing": len(missing), "extra": len(extra), "differ": len(differ),
            "examples": [str(x) for x in (missing + extra + differ)[:5]]}


def leftover_processes(data_dir: Path) -> list[int]:
    import psutil
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        try:
            cmd = " ".join(proc.info["cmdline"] or [])
        except psutil.Error:
            continue
        if str(data_dir) in cmd and "rave_launcher" in cmd and proc.info["status"] != psutil.STATUS_ZOMBIE:
            found.append(proc.pid)
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="4 runs")
    args = parser.parse_args()
    runs = 4 if args.quick else args.runs
    rng = random.Random(args.seed)
    app = QCoreApplication.instance() or QCoreApplication(sys.argv[:1])
    from audio import make_audio_folder

    t_start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="rave-gui-soak-") as tmp:
        root = Path(tmp)
        audio = make_audio_folder(root / "audio", files=4, seconds=8)
        subprocess.run([str(rave_cli.find_rave()), "preprocess", "--input_path", str(audio), "--output_path",
                        str(root / "dataset"), "--channels", "1"], check=True, capture_output=True, timeout=300)
        db_path = root / "soak.sqlite3"
        db = Database(db_path)
        manager = TrainingManager(db, runs_root=root / "runs")
        ds = DatasetManager(db).register(root / "dataset", name="soak")
        base = dict(base_config="v2_small", batch_size=2, device="cpu", val_every=4, log_every=1, dataset_id=ds)
        kill_at = rng.randrange(runs)
        report = []
        for n in range(runs):
            max_steps = rng.randrange(10, 21)
            actions = []
            controller = RunController(manager)
            if n == kill_at:  # the app is SIGKILLed mid-run; a new controller re-attaches
                db.close()
                child = subprocess.Popen([sys.executable, str(APP), str(db_path), str(ds), f"soak {n}",
                                          str(max_steps)], stdout=subprocess.PIPE, text=True,
                                         env=dict(os.environ, PYTHONPATH=str(ROOT)))
                exp_id = int(child.stdout.readline().split("=", 1)[1])
                db = Database(db_path)
                manager = TrainingManager(db, runs_root=root / "runs")
                controller = RunController(manager)
                wait_until(app, lambda: (manager.get_experiment(exp_id)["current_step"] or 0) >= 5, 300)
                os.kill(child.pid, signal.SIGKILL)
                child.wait(10)
                actions.append("app killed")
                attached, _ = controller.reattach_all()
                actions.append("re-attached" if attached == [exp_id] else "NOT re-attached")
            else:
                exp_id = controller.start(dict(base, name=f"soak {n}", max_steps=max_steps))
            if rng.random() < 0.5 and controller.is_live(exp_id):
                stop_at = rng.randrange(3, max_steps - 2)
                wait_until(app, lambda: (controller.live_run(exp_id) is None
                                         or controller.live_run(exp_id).step >= stop_at), 300)
                if controller.is_live(exp_id):
                    controller.stop(exp_id)
                    actions.append(f"stopped near {stop_at}")
                    wait_until(app, lambda: not controller.is_live(exp_id), 120)
                    if manager.get_experiment(exp_id)["status"] == "stopped":
                        controller.resume(exp_id)
                        actions.append("resumed")
            wait_until(app, lambda: not controller.is_live(exp_id), 600)
            controller.stop_all(30)
            exp = manager.get_experiment(exp_id)
            check = stored_vs_events(manager, exp_id)
            report.append({"run": n, "max_steps": max_steps, "actions": actions, "status": exp["status"],
                           "step": exp["current_step"], "error": exp["error"], **check})
            print(f"| {n} | {max_steps} | {', '.join(actions) or '-'} | {exp['status']} | {exp['current_step']} |"
                  f" {check['points']} | {check['missing']}/{check['extra']}/{check['differ']} |", flush=True)
        left = leftover_processes(root)
        pids_alive = [r for r in manager.list_experiments() if process_alive(r["pid"], r["pid_started_at"])]
        db.close()
    ok = (all(r["status"] == "completed" and not (r["missing"] or r["extra"] or r["differ"]) for r in report)
          and not left and not pids_alive)
    result = {"runs": report, "leftover_processes": left, "ok": ok,
              "seconds": round(time.monotonic() - t_start, 1), "cpus": os.cpu_count()}
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "soak.json").write_text(json.dumps(result, indent=2))
    print(f"\n{'ok' if ok else 'FAILED'}: {len(report)} runs in {result['seconds']} s; "
          f"processes left: {len(left)}")
    return 0 if ok else 1


if __name__ == "__main__":
    print("| run | max steps | what happened | status | step | points | missing/extra/differ |\n"
          "|---:|---:|---|---|---:|---:|---|")
    sys.exit(main())
