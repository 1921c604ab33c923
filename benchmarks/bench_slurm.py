"""A run on a Slurm cluster next to one here and one on an SSH host: time to the first point, cost of following.

    .venv/bin/python benchmarks/bench_slurm.py [--seconds 60] [--repeats 3] [--quick]

Real ``rave train`` runs (``v2_small``, batch 2, CPU, ``--log_every 5``,
``--val_every 100``), one at a time, each started through ``RunController.start``
exactly as the app does, on:

* **here**: this computer (no machine);
* **ssh**: an SSH host, a real OpenSSH server on 127.0.0.1
  (``scripts/sshd_for_tests.py``), a machine without Slurm settings;
* **slurm**: a Slurm cluster, a real single-node Slurm on 127.0.0.1
  (``scripts/slurm_for_tests.py``) whose login node is that same sshd; the
  machine's Slurm settings: the cluster's partition, 0 GPUs, 2 CPUs, a 30 min time
  limit, a 60 s margin, the cluster's ``SLURM_CONF`` line as setup.

Every run has its own data folder (so its own ssh master connection) and every
remote run its own work folder on the host: each pays the first-run costs
(connection, launcher and dataset upload). The first round runs here, ssh, slurm
with the following window; each further round (``--repeats``) only measures the
latency, in a rotated order (each kind starts a round once; the medians are
reported). The training's imports are loaded once before (untimed), so that the
first run does not pay the cold disk alone.

* **Latency**: from ``RunController.start(config)`` to the controller's first
  ``metrics_added`` signal, split at the moment the point was written on the
  machine that trains (the ``wall_time`` of its first scalar in the event file):
  before, start-up (prepare, upload, submission, Slurm's queue, Python and RAVE,
  the first 5 steps); after, following (the mirror and the reader; the reader
  returns a step once a newer one is in the file, on every kind of run). Also:
  when the process said it runs (``started_pid``: the local process, the host's
  process, on Slurm when the app saw the job RUNNING), for Slurm when ``sbatch``
  answered and Slurm's own SubmitTime → StartTime (``scontrol``, whole seconds).
* **Following cost** (first round): over ``--seconds`` after the first point, the
  ssh and rsync commands the app runs (its ``run_local`` counted), the mirrors
  (``process.syncs``) and status checks (``process.queries`` for Slurm, the
  ``_status`` checks for SSH) per minute, and the app's CPU as a share of one
  core: this process (all its threads, the Qt loop included) + the ssh and rsync
  clients it ran (``RUSAGE_CHILDREN``) + the ssh master connection (``psutil``).
  The training runs on the same cores meanwhile (as in bench_ssh.py).

Each run is then stopped (``controller.stop``: its stop checkpoint) and followed to
its end; at the very end the cluster and the sshd are stopped and the processes
are checked: nothing of the benchmark may be left running (exit status 1 if so).

Prints markdown tables and writes benchmarks/results/slurm.json.
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "scripts"))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import psutil  # noqa: E402
from bench_ssh import children_cpu, host_steps, make_dataset, master_cpu  # noqa: E402  (shared with bench_ssh)
from PyQt6.QtCore import QCoreApplication, Qt  # noqa: E402
from slurm_for_tests import LoopbackSlurm  # noqa: E402
from sshd_for_tests import LoopbackSSHD  # noqa: E402

# every module a run needs, imported now (not halfway through, while the tree may change)
from rave_gui.backend import rave_cli, remote_process, ssh  # noqa: E402
from rave_gui.backend.datasets import DatasetManager  # noqa: E402
from rave_gui.backend.executors import training_process_class  # noqa: E402
from rave_gui.backend.machines import MachineManager, remote_run  # noqa: E402
from rave_gui.backend.runs import RunController  # noqa: E402
from rave_gui.backend.slurm_process import SlurmTrainingProcess  # noqa: E402
from rave_gui.backend.training import TrainingManager  # noqa: E402
from rave_gui.backend.training_process import TrainingProcess  # noqa: E402
from rave_gui.core.database import Database  # noqa: E402

#: the classes training_process_class hands out, loaded before the first run
PRELOADED = (TrainingProcess, remote_process.RemoteTrainingProcess, SlurmTrainingProcess)
MODES = ("here", "ssh", "slurm")
#: what a training imports, loaded once before the first round (the first run would pay the cold disk alone)
WARM_UP = "import torch, gin, pytorch_lightning, rave, rave.core"
#: every ssh / rsync command the app runs through ``run_local``, by program name
COMMANDS: collections.Counter = collections.Counter()
#: exceptions raised in the processes' threads (PyQt aborts on one unless a hook takes it)
THREAD_ERRORS: list[str] = []
#: the app's folders for ssh master sockets (a leftover master names its folder)
CONTROL_DIRS: list[str] = []


def _counting(original):
    def run_local(argv, *args, **kwargs):
        COMMANDS[Path(argv[0]).name] += 1
        return original(argv, *args, **kwargs)
    return run_local


ssh.run_local = _counting(ssh.run_local)                        # SSHTarget.run
remote_process.run_local = _counting(remote_process.run_local)  # remote_process.rsync


def _excepthook(kind, value, tb) -> None:
    text = "".join(traceback.format_exception(kind, value, tb))
    THREAD_ERRORS.append(text)
    print(text, file=sys.stderr, flush=True)


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def spin(app, until, timeout: float, what: str, alive=lambda: True) -> None:
    deadline = time.monotonic() + timeout
    while not until():
        app.processEvents()
        time.sleep(0.01)
        if not alive():
            raise RuntimeError(f"{what}: the run ended first")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not within {timeout:.0f} s")


def slurm_times(cluster, job_id: str) -> dict:
    """Slurm's own SubmitTime / StartTime of a job (local time, whole seconds)."""
    out = cluster.run("scontrol", "show", "job", "-o", job_id).stdout
    found: dict = {}
    for key in ("SubmitTime", "StartTime", "EndTime", "JobState"):
        match = re.search(rf"\b{key}=(\S+)", out)
        found[key] = match.group(1) if match else None
    for key in ("SubmitTime", "StartTime"):
        try:
            found[key + "_epoch"] = datetime.fromisoformat(found[key]).timestamp()
        except (TypeError, ValueError):
            found[key + "_epoch"] = None
    return found


class Run:
    """One run of the benchmark: its database, controller, machine, and what was seen."""

    def __init__(self, app, root: Path, mode: str, round_: int, dataset: Path, server, cluster):
        self.app, self.mode, self.round, self.cluster = app, mode, round_, cluster
        self.data_dir = root / f"data-{mode}-{round_}"
        self.db = Database(self.data_dir / "db.sqlite3")
        self.manager = TrainingManager(self.db, gpus=[])
        machines = MachineManager(self.db)
        self.machine_id = None
        if mode != "here":
            slurm = dict(partition=cluster.partition, gpus=0, cpus=2, time="30", margin=60,
                         setup=cluster.shell_setup()) if mode == "slurm" else None
            self.machine_id = machines.add(f"bench {mode}", server.alias, python=sys.executable,
                                           work_dir=str(server.work_dir / f"work-{mode}-{round_}"),
                                           ssh_config=str(server.client_config), slurm=slurm)
        self.dataset_id = DatasetManager(self.db).register(dataset)
        self.controller = RunController(self.manager)
        self.controller.process_factory = self._factory
        CONTROL_DIRS.append(str(ssh.control_dir(self.data_dir)))
        self.marks: dict[str, float] = {}      # monotonic seconds, set in the process's thread
        self.walls: dict[str, float] = {}      # ... and the wall clock at the same moments
        self.calls: dict[str, list] = {"status": [], "mirror": []}   # (when, seconds) of each
        self.points: list[tuple[float, float, int]] = []   # (monotonic, wall, step) of metrics_added
        self.steps: list[tuple[float, int]] = []
        self.warnings: list[str] = []
        self.controller.metrics_added.connect(
            lambda e, m: self.points.append((time.monotonic(), time.time(), int(m["step"]))))
        self.controller.step_changed.connect(lambda e, s, t: self.steps.append((time.monotonic(), s)))
        self.controller.warning.connect(lambda e, text: self.warnings.append(text))
        self.exp_id: int | None = None
        self.process = None

    def _mark(self, name: str) -> None:
        if name not in self.marks:
            self.marks[name], self.walls[name] = time.monotonic(), time.time()

    def _factory(self, manager, experiment_id, **kwargs):
        """The app's own process class; the benchmark only listens and times."""
        cls = training_process_class(manager.get_experiment(experiment_id), manager.db)
        process = cls(manager, experiment_id, **kwargs)
        direct = Qt.ConnectionType.DirectConnection
        process.started_pid.connect(lambda pid: self._mark("started"), type=direct)
        process.output.connect(lambda line: self._mark("submitted")
                               if line.startswith("[rave-gui] submitted Slurm job") else None, type=direct)
        if self.mode != "here":
            for name, key in (("_query" if self.mode == "slurm" else "_status", "status"), ("_mirror", "mirror")):
                def timed(*a, _original=getattr(process, name), _key=key, **k):
                    t = time.perf_counter()
                    try:
                        return _original(*a, **k)
                    finally:
                        self.calls[_key].append((time.monotonic(), time.perf_counter() - t))
                setattr(process, name, timed)
        return process

    def alive(self) -> bool:
        if THREAD_ERRORS:
            raise RuntimeError(f"{self.mode}: an exception in a thread: {THREAD_ERRORS[-1].splitlines()[-1]}")
        return self.controller.is_live(self.exp_id)

    # -- the measurement -----------------------------------------------------------------------
    def measure(self, seconds: float) -> dict:
        try:
            return self._measure(seconds)
        except BaseException:
            if self.exp_id is not None and self.controller.is_live(self.exp_id):  # a failure still stops its run
                try:
                    self.controller.stop(self.exp_id)
                    spin(self.app, lambda: not self.controller.is_live(self.exp_id), 120,
                         f"{self.mode}: the stop after a failure")
                except BaseException:  # noqa: BLE001
                    if hasattr(self.process, "abandon"):
                        self.process.abandon()
                    self.process.wait(20_000)
            raise
        finally:
            target = getattr(self.process, "target", None)
            if target is not None:
                target.close_master()
            folder = ssh.control_dir(self.data_dir)
            if folder.parent != self.data_dir:
                shutil.rmtree(folder, ignore_errors=True)
            self.controller.autostart = False  # the database stays open: the controller's timers may ask it

    def _measure(self, seconds: float) -> dict:
        app, mode = self.app, self.mode
        config = dict(name=f"bench {mode} {self.round}", dataset_id=self.dataset_id, base_config="v2_small",
                      batch_size=2, device="cpu", val_every=100, log_every=5, max_steps=100_000)
        if self.machine_id is not None:
            config["machine_id"] = self.machine_id
        t0, t0_wall = time.monotonic(), time.time()
        self.exp_id = self.controller.start(config)
        self.process = process = self.controller.live_run(self.exp_id).process
        try:
            spin(app, lambda: bool(self.points), 600, f"{mode}: the first point", self.alive)
        except RuntimeError as exc:
            exp = self.manager.get_experiment(self.exp_id)
            raise RuntimeError(f"{exc} ({exp['status']}: {exp.get('error')}; {'; '.join(self.warnings)})") from None
        t_first, t_first_wall, first_step = self.points[0]
        marks = self.marks
        latency = {
            "first_point_s": round(t_first - t0, 2),
            "first_point_step": first_step,
            "first_step_seen_s": round(self.steps[0][0] - t0, 2) if self.steps else None,
            "started_s": round(marks["started"] - t0, 2) if "started" in marks else None,
        }
        if mode == "slurm":
            latency["submitted_s"] = round(marks["submitted"] - t0, 2) if "submitted" in marks else None
            latency["queries_before_running_seen"] = sum(1 for when, _ in self.calls["status"]
                                                         if when <= marks.get("started", 0))

        follow = self._window(seconds) if seconds > 0 else None

        t_stop = time.monotonic()
        self.controller.stop(self.exp_id)
        spin(app, lambda: not self.controller.is_live(self.exp_id), 300, f"{mode}: the stop")
        stop_s = time.monotonic() - t_stop
        process.wait(10_000)
        spin(app, lambda: not any(p.isRunning() for p in self.controller._ending), 30, f"{mode}: the thread's end")
        exp = self.manager.get_experiment(self.exp_id)

        # where the point was written: the host's run folder, or the local one
        run_dir = (remote_run(self.db, self.exp_id) or {}).get("run_dir") if mode != "here" else exp.get("run_dir")
        written = host_steps(Path(run_dir)).get(first_step, {}).get("first") if run_dir else None
        if written is not None:
            latency["point_written_s"] = round(written - t0_wall, 2)
            latency["written_to_app_s"] = round(t_first_wall - written, 2)
        result = {"mode": mode, "round": self.round, "latency": latency, "follow": follow,
                  "stop_to_end_s": round(stop_s, 1), "final_status": exp["status"], "error": exp.get("error"),
                  "warnings": self.warnings}
        if mode == "slurm":
            times = slurm_times(self.cluster, process.job_id)
            info = {"job_id": process.job_id, "jobs": [e["detail"].split()[1] for e in self.manager.get_events(self.exp_id)
                                                         if e["kind"] in ("submitted", "resubmitted")], "job_state": times["JobState"],
                    "submit_time": times["SubmitTime"], "start_time": times["StartTime"],
                    "end_time": times["EndTime"]}
            if times["SubmitTime_epoch"] and times["StartTime_epoch"]:
                info["queued_s"] = round(times["StartTime_epoch"] - times["SubmitTime_epoch"], 1)
                if "started" in self.walls:  # StartTime has whole seconds: +- 1 s
                    info["running_seen_after_start_s"] = round(self.walls["started"] - times["StartTime_epoch"], 1)
                if written is not None:
                    info["start_to_point_written_s"] = round(written - times["StartTime_epoch"], 1)
            result["slurm"] = info
        result["intervals"] = {k: getattr(process, k) for k in ("sync_interval", "status_interval",
                                                                "pending_interval", "events_interval")
                               if hasattr(process, k)}
        return result

    def _window(self, seconds: float) -> dict:
        process = self.process
        target = getattr(process, "target", None)
        pid, m0 = master_cpu(target)
        q0, s0, n0 = getattr(process, "queries", 0), getattr(process, "syncs", 0), dict(COMMANDS)
        step0 = self.steps[-1][1] if self.steps else None
        c0, k0, w0 = time.process_time(), children_cpu(), time.monotonic()
        while time.monotonic() - w0 < seconds:
            self.app.processEvents()
            time.sleep(0.02)
            if not self.alive():
                raise RuntimeError(f"{self.mode}: the run ended during the window "
                                   f"({self.manager.get_experiment(self.exp_id).get('error')})")
        w1 = time.monotonic()
        cpu_app, cpu_children = time.process_time() - c0, children_cpu() - k0
        pid_end, m1 = master_cpu(target)
        wall, minutes = w1 - w0, (w1 - w0) / 60
        ssh_n, rsync_n = COMMANDS["ssh"] - n0.get("ssh", 0), COMMANDS["rsync"] - n0.get("rsync", 0)
        durations = {key: [d for when, d in self.calls[key] if w0 <= when <= w1] for key in self.calls}
        checks = (process.queries - q0) if self.mode == "slurm" else len(durations["status"])
        syncs = getattr(process, "syncs", 0) - s0
        cpu_master = (m1 - m0) if pid is not None and pid == pid_end else 0.0

        def median_ms(values):
            return round(1000 * statistics.median(values), 1) if values else None
        return {
            "window_s": round(wall, 1),
            "steps_in_window": [step0, self.steps[-1][1] if self.steps else None],
            "points_in_window": sum(1 for when, _, _ in self.points if w0 <= when <= w1),
            "ssh_commands": ssh_n, "rsync_commands": rsync_n,
            "commands_per_minute": round((ssh_n + rsync_n) / minutes, 1),
            "status_checks": checks, "status_checks_per_minute": round(checks / minutes, 1),
            "mirrors": syncs, "mirrors_per_minute": round(syncs / minutes, 1),
            "other_commands": ssh_n + rsync_n - checks - syncs,
            "status_ms_median": median_ms(durations["status"]), "mirror_ms_median": median_ms(durations["mirror"]),
            "cpu_app_s": round(cpu_app, 2), "cpu_ssh_rsync_clients_s": round(cpu_children, 2),
            "cpu_master_s": round(cpu_master, 2) if pid is not None else None,
            "cpu_share_of_one_core": round((cpu_app + cpu_children + max(0.0, cpu_master)) / wall, 4),
            "load_avg_1min": round(os.getloadavg()[0], 2),
        }


def leftovers(root: Path, before: set[int]) -> list[str]:
    """Processes of this benchmark still running: our descendants, and anything whose
    command line or working folder names the benchmark's folder or a master socket's."""
    me = psutil.Process()
    found = {proc.pid: proc for proc in me.children(recursive=True)}
    for proc in psutil.process_iter(["cmdline", "cwd"]):
        try:
            if proc.pid in before or proc.pid == me.pid:
                continue
            text = " ".join(proc.info["cmdline"] or []) + " " + (proc.info["cwd"] or "")
            if str(root) in text or any(folder in text for folder in CONTROL_DIRS):
                found[proc.pid] = proc
        except psutil.Error:
            continue
    out = []
    for pid, proc in sorted(found.items()):
        try:
            if proc.status() != psutil.STATUS_ZOMBIE:
                out.append(f"{pid} {' '.join(proc.cmdline())[:160]}")
        except psutil.Error:
            continue
    return out


def ratio(a, b):
    return round(a / b, 2) if a and b else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0,
                        help="how long each run of the first round is followed after its first point")
    parser.add_argument("--repeats", type=int, default=3, help="rounds of the three runs (latency only after "
                                                                "the first)")
    parser.add_argument("--quick", action="store_true", help="20 s windows, one round")
    args = parser.parse_args()
    seconds, repeats = (20.0, 1) if args.quick else (args.seconds, max(1, args.repeats))
    app = QCoreApplication.instance() or QCoreApplication([])
    sys.excepthook = _excepthook
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _interrupt)
    began = time.monotonic()
    before = {p.pid for p in psutil.process_iter()}
    root = Path(tempfile.mkdtemp(prefix="rave-gui-bench-slurm-"))
    server = LoopbackSSHD(root / "sshd")
    cluster = LoopbackSlurm(root / "slurm", cpus=8)
    results = []
    setup = {}
    try:
        t = time.monotonic()
        server.start()
        server.trust_host_key()
        setup["sshd_start_s"] = round(time.monotonic() - t, 1)
        cluster.start()
        setup["slurm_start_s"] = round(cluster.startup_seconds, 1)
        t = time.monotonic()
        dataset = make_dataset(root)
        setup["preprocess_s"] = round(time.monotonic() - t, 1)
        t = time.monotonic()
        subprocess.run([sys.executable, "-c", WARM_UP], check=True, capture_output=True, timeout=300)
        setup["warm_up_s"] = round(time.monotonic() - t, 1)
        print(f"sshd up in {setup['sshd_start_s']} s, slurm up in {setup['slurm_start_s']} s, "
              f"dataset in {setup['preprocess_s']} s", flush=True)
        for round_ in range(repeats):
            order = MODES[round_ % 3:] + MODES[:round_ % 3]
            for mode in order:
                r = Run(app, root, mode, round_, dataset, server, cluster).measure(seconds if round_ == 0 else 0)
                results.append(r)
                lat, fol = r["latency"], r["follow"]
                print(f"round {round_} {mode}: first point after {lat['first_point_s']} s "
                      f"(step {lat['first_point_step']}, written at {lat.get('point_written_s')} s)"
                      + (f", {fol['commands_per_minute']} commands/min, CPU "
                         f"{100 * fol['cpu_share_of_one_core']:.2f} % of a core" if fol else "")
                      + f"; stopped in {r['stop_to_end_s']} s ({r['final_status']})", flush=True)
    finally:
        cluster.stop()
        server.stop()
    time.sleep(1)
    left = leftovers(root, before)

    first = {m: statistics.median([r["latency"]["first_point_s"] for r in results if r["mode"] == m])
             for m in MODES}
    ratios = {"ssh/here": ratio(first["ssh"], first["here"]), "slurm/here": ratio(first["slurm"], first["here"]),
              "slurm/ssh": ratio(first["slurm"], first["ssh"])}
    out = {"machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "machine": platform.machine(),
                       "load_avg_1min_at_end": round(os.getloadavg()[0], 2)},
           "config": {"quick": args.quick, "seconds": seconds, "repeats": repeats, "base_config": "v2_small",
                      "batch_size": 2, "log_every": 5, "val_every": 100,
                      "slurm": {"gpus": 0, "cpus": 2, "time": "30", "margin": 60}},
           "setup": setup, "first_point_median_s": first, "first_point_ratios": ratios, "runs": results,
           "thread_errors": THREAD_ERRORS, "leftover_processes": left, "total_s": round(time.monotonic() - began, 1)}
    dest = ROOT / "benchmarks" / "results" / "slurm.json"
    dest.write_text(json.dumps(out, indent=2) + "\n")

    def cell(value, unit=" s"):
        return "–" if value is None else f"{value}{unit}"
    print("\n| run | round | start → first point | = start → point written | + written → in the app | "
          "start → runs (`started_pid`) | start → sbatch answered | Slurm queue (Submit → Start) | stop → end |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in sorted(results, key=lambda r: (MODES.index(r["mode"]), r["round"])):
        lat, sl = r["latency"], r.get("slurm", {})
        print(f"| {r['mode']} | {r['round']} | {cell(lat['first_point_s'])} | {cell(lat.get('point_written_s'))} | "
              f"{cell(lat.get('written_to_app_s'))} | {cell(lat['started_s'])} | {cell(lat.get('submitted_s'))} | "
              f"{cell(sl.get('queued_s'))} | {cell(r['stop_to_end_s'])} |")
    print(f"\nmedian start → first point: here {first['here']} s, ssh {first['ssh']} s, slurm {first['slurm']} s; "
          f"ratios ssh/here {ratios['ssh/here']}, slurm/here {ratios['slurm/here']}, "
          f"slurm/ssh {ratios['slurm/ssh']}")
    print("\n| run | window | ssh + rsync commands/min | status checks/min | mirrors/min | other commands | "
          "status / mirror median | CPU (% of a core) | app / clients / master CPU s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        f = r["follow"]
        if f is None:
            continue
        print(f"| {r['mode']} | {f['window_s']} s | {f['commands_per_minute']} | {f['status_checks_per_minute']} | "
              f"{f['mirrors_per_minute']} | {f['other_commands']} | "
              f"{cell(f['status_ms_median'], ' ms')} / {cell(f['mirror_ms_median'], ' ms')} | "
              f"{100 * f['cpu_share_of_one_core']:.2f} | {f['cpu_app_s']} / {f['cpu_ssh_rsync_clients_s']} / "
              f"{cell(f['cpu_master_s'], '')} |")
    print(f"\nleft running afterwards: {left or 'nothing'}; exceptions in threads: {len(THREAD_ERRORS)}")
    print(f"total {out['total_s']} s; wrote {dest}")
    shutil.rmtree(root, ignore_errors=True)
    return 0 if not left and not THREAD_ERRORS else 1


if __name__ == "__main__":
    raise SystemExit(main())
