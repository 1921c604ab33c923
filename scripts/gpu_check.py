"""The GPU check: one script for a machine with an NVIDIA GPU and no internet.

    python scripts/gpu_check.py [--steps 500] [--device auto] [--out gpu_check.json] [--rave PATH]

It generates audio, preprocesses it with the real ``rave preprocess``, trains
v2_small for ``--steps`` steps with device ``auto`` through the app's backend
(RunController, no window), checks that ``auto`` chose the GPU (the launch's
``--gpu`` flag and Lightning's own "GPU available ... used" line) and that the
system monitor reads the GPU (NVML: utilisation, memory, the run's own GPU
memory), then runs the same training launched directly with ``rave train``,
and writes one JSON with steps per second both ways and their ratio.

It needs only what the machine brings (its own torch) plus RAVE's packages
(as wheels installed with ``pip --target``, then ``PYTHONPATH``): ``--rave``
names a ``rave`` executable; without it one is made that runs RAVE's own
entry point (``scripts.main_cli``) with this interpreter. On a machine
without a GPU, ``--device cpu --steps 20 --batch 2`` runs the same path (the GPU checks
are then reported as not applicable).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def write_tones(folder: Path, files: int = 16, seconds: float = 10.0, sr: int = 44100) -> Path:
    import numpy as np
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(files):
        t = np.arange(int(seconds * sr)) / sr
        sig = 0.4 * np.sin(2 * math.pi * 110.0 * (i + 2) * t) + 0.05 * rng.standard_normal(t.size)
        data = (np.clip(sig, -1, 1) * 32767).astype("<i2")
        with wave.open(str(folder / f"tone_{i}.wav"), "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(sr)
            out.writeframes(data.tobytes())
    return folder


def rave_executable(given: str | None, work: Path) -> Path:
    if given:
        return Path(given)
    from rave_gui.backend import rave_cli
    try:
        return rave_cli.find_rave()
    except rave_cli.RaveNotFound:
        wrapper = work / "bin" / "rave"  # RAVE's packages without their console script (pip --target)
        wrapper.parent.mkdir(parents=True, exist_ok=True)
        wrapper.write_text(f"#!{sys.executable}\nimport sys\nfrom scripts.main_cli import main\nsys.exit(main())\n")
        wrapper.chmod(0o755)
        return wrapper


def train_through_app(db_path: Path, dataset: Path, steps: int, device: str, runs: Path, batch: int) -> dict:
    from PyQt6.QtCore import QCoreApplication

    from rave_gui.backend.datasets import DatasetManager
    from rave_gui.backend.runs import RunController
    from rave_gui.backend.system_monitor import NVML, run_gpu_memory, sample
    from rave_gui.backend.training import TrainingManager
    from rave_gui.core.database import Database

    app = QCoreApplication.instance() or QCoreApplication(sys.argv[:1])
    db = Database(db_path)
    manager = TrainingManager(db, runs_root=runs)
    ds = DatasetManager(db).register(dataset, name="gpu check")
    controller = RunController(manager)
    nvml = NVML()
    samples, steps_seen = [], []
    controller.step_changed.connect(lambda e, s, t: steps_seen.append((time.monotonic(), s)))
    t0 = time.monotonic()
    exp_id = controller.start(dict(name="gpu check", dataset_id=ds, base_config="v2_small", batch_size=batch,
                                   device=device, max_steps=steps, val_every=max(50, steps // 2), log_every=50))
    slot = controller.live_run(exp_id).device
    next_sample = 0.0
    while controller.is_live(exp_id) and time.monotonic() - t0 < 3600:
        app.processEvents()
        if time.monotonic() >= next_sample:
            s = sample(runs, nvml)
            run = controller.live_run(exp_id)
            pid = getattr(run.process, "pid", None) if run else None
            samples.append({"gpus": [{"index": g.index, "name": g.name, "util": g.utilisation,
                                      "memory_used": g.memory_used, "memory_total": g.memory_total,
                                      "temperature": g.temperature} for g in s.gpus],
                            "run_gpu_memory": run_gpu_memory(s, [pid]) if pid else 0})
            next_sample = time.monotonic() + 2.0
        time.sleep(0.02)
    wall = time.monotonic() - t0
    exp = manager.get_experiment(exp_id)
    log = Path(exp["log_path"]).read_text(errors="replace")
    history = manager.get_metric_history(exp_id)
    controller.stop_all(30)
    db.close()
    moving = [(t, s) for t, s in steps_seen if s > 0]
    rate = ((moving[-1][1] - moving[0][1]) / (moving[-1][0] - moving[0][0])
            if len(moving) > 1 and moving[-1][0] > moving[0][0] else None)
    used = re.search(r"GPU available: (\w+) \((\w+)\), used: (\w+)", log)
    return {"status": exp["status"], "error": exp["error"], "step": exp["current_step"], "wall_s": round(wall, 1),
            "steps_per_s": round(rate, 3) if rate else None, "device_slot": slot,
            "lightning_gpu_line": used.group(0) if used else None,
            "gpu_used": bool(used and used.group(3) == "True"),
            "loss_points": len(history.get("loss", [])), "val_points": len(history.get("val_loss", [])),
            "nvml_available": nvml.available, "nvml_note": "" if nvml.available else nvml.reason,
            "max_gpu_util": max((g["util"] or 0 for s in samples for g in s["gpus"]), default=None),
            "max_run_gpu_memory": max((s["run_gpu_memory"] for s in samples), default=0),
            "samples": len(samples)}


def train_direct(rave: Path, dataset: Path, steps: int, gpu: str, out: Path, batch: int) -> dict:
    argv = [str(rave), "train", "--config", "v2_small", "--db_path", str(dataset), "--name", "direct",
            "--out_path", str(out), "--channels", "1", "--max_steps", str(steps), "--batch", str(batch),
            "--val_every", str(max(50, steps // 2)), "--workers", "0" if gpu == "-1" else "8", "--gpu", gpu]
    t0 = time.monotonic()
    with open(out.parent / "direct.log", "wb") as sink:
        code = subprocess.run(argv, stdout=sink, stderr=subprocess.STDOUT, timeout=3600).returncode
    wall = time.monotonic() - t0
    log = (out.parent / "direct.log").read_text(errors="replace")
    # tqdm's rate at the end of the bar: "12.3it/s", or "4.51s/it" when slower than one a second
    rates = [float(x) if unit == "it/s" else 1 / float(x)
             for x, unit in re.findall(r"(\d+(?:\.\d+)?)(it/s|s/it)", log) if float(x) > 0]
    return {"returncode": code, "wall_s": round(wall, 1), "steps_per_s": round(rates[-1], 3) if rates else None,
            "tail": log[-600:] if code else ""}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--device", default="auto", help="auto (the check), cpu (a dry run without a GPU)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--out", default="gpu_check.json")
    parser.add_argument("--rave", help="a rave executable (default: found, or made from RAVE's packages)")
    args = parser.parse_args()
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="rave-gui-gpu-check-") as tmp:
        work = Path(tmp)
        rave = rave_executable(args.rave, work)
        os.environ["RAVE_GUI_RAVE"] = str(rave)
        audio = write_tones(work / "audio")
        dataset = work / "dataset"
        t0 = time.monotonic()
        subprocess.run([str(rave), "preprocess", "--input_path", str(audio), "--output_path", str(dataset),
                        "--channels", "1"], check=True, capture_output=True, timeout=600)
        preprocess_s = time.monotonic() - t0
        app_run = train_through_app(work / "check.sqlite3", dataset, args.steps, args.device, work / "runs", args.batch)
        gpu_flag = "-1" if args.device == "cpu" else "0"
        direct = train_direct(rave, dataset, args.steps, gpu_flag, work / "direct_out", args.batch)
    try:
        import torch
        torch_info = {"torch": torch.__version__, "cuda": torch.cuda.is_available(),
                      "device_name": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}
    except Exception as exc:  # noqa: BLE001
        torch_info = {"torch": f"unavailable ({exc})"}
    ratio = (round(direct["steps_per_s"] / app_run["steps_per_s"], 3)
             if direct["steps_per_s"] and app_run["steps_per_s"] else None)
    expect_gpu = args.device != "cpu"
    checks = {
        "trained": app_run["status"] == "completed",
        "auto_chose_gpu": (app_run["device_slot"].startswith("gpu:") and app_run["gpu_used"]) if expect_gpu
        else "n/a (cpu dry run)",
        "monitor_reads_gpu": (app_run["nvml_available"] and app_run["max_run_gpu_memory"] > 0) if expect_gpu
        else "n/a (cpu dry run)",
        "direct_ran": direct["returncode"] == 0,
    }
    result = {"when": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started)), "machine": platform.node(),
              "python": platform.python_version(), **torch_info, "steps": args.steps, "device": args.device,
              "preprocess_s": round(preprocess_s, 1), "app": app_run, "direct": direct,
              "direct_over_app_steps_per_s": ratio, "checks": checks,
              "ok": all(v is True or str(v).startswith("n/a") for v in checks.values())}
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(json.dumps({k: result[k] for k in ("checks", "direct_over_app_steps_per_s", "ok")}, indent=2))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
