"""How late do RAVE's losses reach the app? With the launcher's live flush and without.

    .venv/bin/python benchmarks/bench_latency.py [--steps 40] [--log-every 1,5] [--poll 0.2] [--keep]

A tiny dataset (4 files x 8 s of tones, made by the real ``rave preprocess``) is
made once; then the same short CPU run (``v2_small``, batch 2, ``--gpu -1``,
``--workers 0``, ``--val_every 20``) is launched, for each logging interval
(``RAVE_GUI_LOG_EVERY``, 1 and 5 by default), twice, the way the app launches
it (``rave_cli.train_command(..., launcher=True)``, the launcher's
environment): once with ``RAVE_GUI_FLUSH=1`` (the launcher flushes the
TensorBoard writer after each logging step, at most once per second) and once
with ``RAVE_GUI_FLUSH=0`` (RAVE's own writer). Measured here: without
TensorFlow installed (acids-rave does not need it), tensorboard's stand-in
``GFile`` appends every record to the file as soon as the writer's thread takes
it from its queue, so the points are on disk within the 0.2 s poll either way;
the 120 s ``flush_secs`` only holds records back with TensorFlow's buffered
``tf.io.gfile`` (not installed here, not measured).

While each run goes, ``RunEventsFollower.poll()`` is called every ``--poll``
seconds, as the app's training thread does, and the wall-clock time at which a
step is first returned is noted. After the run, the event files are read again
for each step's ``wall_time`` (``time.time()`` when RAVE's logger wrote the
point: the step's loss terms, or its ``validation``). The latency of a step is
the difference. Points only returned by the final poll after the process ended
count too (that is when the app gets them), and are counted apart: the
follower holds back the newest step until a later one is logged, so the last
step of a run arrives when the process has ended (Lightning's teardown).
Apart from that, a second reader notes when each step's point is first in the
file at all ("on disk"): the writer's flush alone, without the follower's
hold-back.

Prints a markdown table and writes benchmarks/results/latency.json.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
from audio import make_audio_folder  # noqa: E402  (tests/ helper)
from tensorboard.compat.proto import event_pb2  # noqa: E402

from rave_gui.backend import rave_cli  # noqa: E402
from rave_gui.backend.events import RunEventsFollower, is_generator_term, version_dirs  # noqa: E402
from rave_gui.backend.run_paths import find_run_dir  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "latency.json"
CONFIG, BATCH, VAL_EVERY = "v2_small", 2, 20
TARGET_S = 3.0
_HEADER = struct.Struct("<QI")


def make_dataset(root: Path, rave: Path) -> Path:
    audio = make_audio_folder(root / "audio", files=4, seconds=8)
    out = root / "dataset"
    done = subprocess.run([str(rave), "preprocess", "--input_path", str(audio), "--output_path", str(out),
                           "--channels", "1"], capture_output=True, text=True, timeout=600)
    if done.returncode != 0 or not (out / "metadata.yaml").is_file():
        sys.exit(f"rave preprocess failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return out


def step_wall_times(run_dir: Path) -> dict[int, float]:
    """For each step of the run's event files, when RAVE's logger wrote its
    point: the earliest ``wall_time`` among the step's loss terms and
    ``validation`` (the learning rate, logged at the start of a step, is not
    the point the plot waits for)."""
    walls: dict[int, float] = {}
    for version in version_dirs(run_dir):
        for path in sorted(version.glob("events.out.tfevents.*")):
            data = path.read_bytes()
            pos = 0
            while pos + 12 <= len(data):
                length = _HEADER.unpack_from(data, pos)[0]
                end = pos + 12 + length
                if end + 4 > len(data):
                    break
                event = event_pb2.Event.FromString(data[pos + 12:end])
                pos = end + 4
                if not event.HasField("summary"):
                    continue
                for value in event.summary.value:
                    if is_generator_term(value.tag) or value.tag == "validation":
                        walls[event.step] = min(walls.get(event.step, event.wall_time), event.wall_time)
    return walls


def run_once(rave: Path, dataset: Path, work: Path, steps: int, poll_s: float, flush: bool,
             timeout: float, log_every: int) -> dict:
    mode = "flush" if flush else "no_flush"
    out = work / f"{mode}_log{log_every}"
    out.mkdir(parents=True)
    cfg = {"name": f"latency_{mode}", "base_config": CONFIG, "modifiers": [], "overrides": [],
           "device": "cpu", "workers": 0, "max_steps": steps, "batch_size": BATCH, "val_every": VAL_EVERY}
    argv = rave_cli.train_command(rave, cfg, {"path": dataset, "channels": 1}, out, launcher=True)
    env = dict(os.environ, RAVE_GUI_LOG_EVERY=str(log_every), RAVE_GUI_TOKEN=secrets.token_hex(8),
               RAVE_GUI_FLUSH="1" if flush else "0")
    log = out / "train.log"
    seen: dict[int, float] = {}
    on_disk: dict[int, float] = {}
    at_exit: set[int] = set()
    follower = raw = None
    load_start = os.getloadavg()[0]
    with open(log, "wb") as sink:
        t0 = time.monotonic()
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT,
                                   env=env, start_new_session=True)
        try:
            while True:
                exited = process.poll() is not None
                if follower is None:
                    run_dir = find_run_dir(out)
                    if run_dir is not None:
                        follower, raw = RunEventsFollower(run_dir), RunEventsFollower(run_dir)
                if follower is not None:
                    now = time.time()
                    for step, tag, _ in raw.read_points():
                        if is_generator_term(tag) or tag == "validation":
                            on_disk.setdefault(step, now)
                    now = time.time()
                    for point in follower.poll(final=exited):
                        seen.setdefault(point["step"], now)
                        if exited:
                            at_exit.add(point["step"])
                if exited:
                    break
                if time.monotonic() - t0 > timeout:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
                    raise SystemExit(f"{mode}: the run took longer than {timeout:.0f} s; see {log}")
                time.sleep(poll_s)
        except BaseException:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            raise
    wall_s = time.monotonic() - t0
    text = log.read_text(errors="replace")
    if process.returncode != 0 or follower is None:
        raise SystemExit(f"{mode}: rave train failed ({process.returncode}); the end of {log}:\n{text[-3000:]}")
    walls = step_wall_times(follower.run_dir)
    latencies = {step: seen[step] - walls[step] for step in sorted(walls) if step in seen}
    missing = sorted(set(walls) - set(seen))
    values = list(latencies.values())
    running = [v for s, v in latencies.items() if s not in at_exit]
    disk = [on_disk[s] - walls[s] for s in sorted(walls) if s in on_disk]
    return {
        "mode": mode, "flush": flush, "log_every": log_every, "returncode": process.returncode,
        "run_wall_s": round(wall_s, 1),
        "points": len(values), "points_only_at_exit": len(at_exit & set(latencies)),
        "max_while_running_s": round(max(running), 2) if running else None,
        "on_disk_median_s": round(statistics.median(disk), 2) if disk else None,
        "on_disk_max_s": round(max(disk), 2) if disk else None,
        "points_never_returned": len(missing),
        "median_s": round(statistics.median(values), 2) if values else None,
        "p90_s": round(_percentile(values, 0.9), 2) if values else None,
        "max_s": round(max(values), 2) if values else None,
        "min_s": round(min(values), 2) if values else None,
        "latency_by_step_s": {str(s): round(v, 3) for s, v in latencies.items()},
        "load_avg_1min": [round(load_start, 2), round(os.getloadavg()[0], 2)],
        "run_dir": str(follower.run_dir),
    }


def _percentile(values, q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--log-every", default="1,5",
                        help="comma-separated logging intervals to run (default 1,5)")
    parser.add_argument("--poll", type=float, default=0.2, help="seconds between two polls (default 0.2)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds one run may take")
    parser.add_argument("--keep", action="store_true", help="keep the dataset and the runs")
    args = parser.parse_args()
    rave = rave_cli.find_rave()
    work = Path(tempfile.mkdtemp(prefix="rave_gui_latency_"))
    started = time.time()
    try:
        dataset = make_dataset(work, rave)
        intervals = [int(n) for n in args.log_every.split(",") if n.strip()]
        runs = [run_once(rave, dataset, work / "runs", args.steps, args.poll, flush, args.timeout, n)
                for n in intervals for flush in (True, False)]
    finally:
        if not args.keep:
            import shutil
            shutil.rmtree(work, ignore_errors=True)

    print(f"Latency from RAVE writing a point (its event wall_time) to RunEventsFollower.poll() "
          f"returning it, polled every {args.poll} s; {CONFIG}, batch {BATCH}, --gpu -1, "
          f"{args.steps} steps, val_every {VAL_EVERY}:\n")
    print("| log_every | launcher | points | median s | p90 s | max s | max while running s "
          "| only at exit | on disk: median s | on disk: max s | run wall s |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for run in runs:
        label = "flush (RAVE_GUI_FLUSH=1)" if run["flush"] else "no flush (RAVE_GUI_FLUSH=0)"
        print(f"| {run['log_every']} | {label} | {run['points']} | {run['median_s']} | {run['p90_s']} "
              f"| {run['max_s']} | {run['max_while_running_s']} | {run['points_only_at_exit']} "
              f"| {run['on_disk_median_s']} | {run['on_disk_max_s']} | {run['run_wall_s']} |")
    verdicts = {}
    for run in (r for r in runs if r["flush"]):
        verdicts[str(run["log_every"])] = {
            "median_and_max": run["median_s"] is not None and run["median_s"] <= TARGET_S
            and run["max_s"] <= TARGET_S,
            "median_and_max_while_running": run["median_s"] is not None and run["median_s"] <= TARGET_S
            and (run["max_while_running_s"] or 0) <= TARGET_S}
        v = verdicts[str(run["log_every"])]
        print(f"\nlog_every {run['log_every']}, with the flush: median and max <= {TARGET_S} s: "
              f"{'met' if v['median_and_max'] else 'NOT met'}; while running (the last step, "
              f"held back until the process exits, aside): "
              f"{'met' if v['median_and_max_while_running'] else 'NOT met'}")
    ok = verdicts

    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    for run in runs:
        run.pop("run_dir", None)
    RESULTS.write_text(json.dumps({
        "runs": runs, "target_s": TARGET_S, "target_met": ok,
        "config": {"base_config": CONFIG, "batch": BATCH, "steps": args.steps, "val_every": VAL_EVERY,
                   "log_every": args.log_every, "poll_s": args.poll, "device": "cpu (--gpu -1)", "workers": 0,
                   "launcher": "rave_cli.train_command(..., launcher=True)",
                   "dataset": "4 files x 8 s, 44.1 kHz mono tones, rave preprocess --channels 1"},
        "env": {"python": platform.python_version(), "acids-rave": _version("acids-rave"),
                "pytorch-lightning": _version("pytorch-lightning"), "tensorboard": _version("tensorboard"),
                "cpus": os.cpu_count(), "started": started},
    }, indent=2) + "\n")
    print(f"\nwrote {RESULTS}")


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


if __name__ == "__main__":
    main()
