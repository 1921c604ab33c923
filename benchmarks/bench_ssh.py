"""Following a run on another machine: the app's CPU, the bytes on the wire, the latency.

    .venv/bin/python benchmarks/bench_ssh.py [--seconds 180] [--log-every 50,5] [--sync 1.0]

The "host" is a real OpenSSH server on 127.0.0.1 (``scripts/sshd_for_tests.py``);
between the app's ssh and the server sits a byte-counting TCP relay (its own
process), so every byte of the connection is counted, encryption and keep-alives
included. For each logging interval, a real ``rave train`` (``v2_small``, batch 2,
CPU, ``--val_every 100``) is started through ``RunController.start`` with the
machine's id, exactly as the app does, and followed for ``--seconds`` after its
first step; then it is stopped (stop checkpoint) and the numbers are taken:

* **CPU**: the app's process (all its threads, the Qt loop included) + the ssh and
  rsync clients it ran (``RUSAGE_CHILDREN``) + the ssh master connection
  (``psutil``), over the window, as a share of one core.
* **Bytes per minute**: both directions on the relay over the window (the dataset
  upload before it is reported apart). What a poll costs when nothing changed is
  measured too: the same process's check + mirror, with the run stopped.
* **Latency**. What following over SSH adds ("mirror"): from the moment bytes are
  appended to a host event file to the moment they are in the local mirror (a
  watcher of both files' sizes every 0.05 s). And end to end ("total"): from the
  host's event ``wall_time`` (when RAVE's logger wrote the point) to the app's
  ``metrics_added`` signal; it includes what local runs have too: the follower
  returns a step once a newer step is in the file (a step's late tags are never
  split off). Target: a point on the host reaches the app within 5 s.

Prints a markdown table and writes benchmarks/results/ssh.json.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import threading
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "scripts"))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import psutil  # noqa: E402
from audio import make_audio_folder  # noqa: E402  (tests/ helper)
from sshd_for_tests import LoopbackSSHD, free_port  # noqa: E402
from tensorboard.compat.proto import event_pb2  # noqa: E402

from rave_gui.backend import rave_cli  # noqa: E402
from rave_gui.backend.events import version_dirs  # noqa: E402

RELAY = r"""
import json, socket, sys, threading, time
listen, target, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
counts = {"up": 0, "down": 0, "connections": 0}
lock = threading.Lock()
def pump(src, dst, key):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            with lock:
                counts[key] += len(data)
            dst.sendall(data)
    except OSError:
        pass
    for s in (src, dst):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
def writer():
    while True:
        with lock:
            text = json.dumps(counts)
        with open(out + ".tmp", "w") as fh:
            fh.write(text)
        import os; os.replace(out + ".tmp", out)
        time.sleep(0.2)
threading.Thread(target=writer, daemon=True).start()
server = socket.socket(); server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", listen)); server.listen(64)
while True:
    client, _ = server.accept()
    upstream = socket.create_connection(("127.0.0.1", target))
    with lock:
        counts["connections"] += 1
    threading.Thread(target=pump, args=(client, upstream, "up"), daemon=True).start()
    threading.Thread(target=pump, args=(upstream, client, "down"), daemon=True).start()
"""


_RELAYS: list[subprocess.Popen] = []


def make_dataset(root: Path) -> Path:
    audio = make_audio_folder(root / "audio", files=4, seconds=8)
    out = root / "dataset"
    subprocess.run([str(rave_cli.find_rave()), "preprocess", "--input_path", str(audio), "--output_path", str(out),
                    "--channels", "1"], check=True, capture_output=True, timeout=600)
    return out


def read_counts(path: Path) -> dict:
    for _ in range(50):
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            time.sleep(0.05)
    return {"up": 0, "down": 0, "connections": 0}


def host_steps(run_dir: Path) -> dict[int, dict]:
    """For each step of the host's event files: when its first and last scalar were
    written (``wall_time``)."""
    import struct
    times: dict[int, list[float]] = {}
    for version in version_dirs(run_dir):
        for path in sorted(version.glob("events.out.tfevents.*")):
            data = path.read_bytes()
            pos = 0
            while pos + 12 <= len(data):
                length = struct.unpack_from("<Q", data, pos)[0]
                payload = data[pos + 12: pos + 12 + length]
                pos += 12 + length + 4
                event = event_pb2.Event.FromString(payload)
                if any(v.HasField("simple_value") for v in event.summary.value):
                    times.setdefault(event.step, []).append(event.wall_time)
    return {step: {"first": min(stamps), "last": max(stamps)} for step, stamps in times.items()}


def master_cpu(target) -> tuple[int | None, float]:
    """(pid, CPU seconds) of ``target``'s ssh master connection; (None, 0) without one."""
    pid = target.master_pid() if target is not None else None
    if pid is None:
        return None, 0.0
    try:
        t = psutil.Process(pid).cpu_times()
        return pid, t.user + t.system
    except psutil.Error:
        return pid, 0.0


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_once(app, root: Path, server, dataset: Path, log_every: int, seconds: float, sync: float) -> dict:
    from rave_gui.backend.datasets import DatasetManager
    from rave_gui.backend.machines import MachineManager, remote_run
    from rave_gui.backend.remote_process import RemoteTrainingProcess
    from rave_gui.backend.runs import RunController
    from rave_gui.backend.training import TrainingManager
    from rave_gui.core.database import Database

    RemoteTrainingProcess.sync_interval = sync
    relay_port = free_port()
    counts_file = root / f"relay-{log_every}.json"
    relay = subprocess.Popen([sys.executable, "-c", RELAY, str(relay_port), str(server.port), str(counts_file)])
    _RELAYS.append(relay)
    import socket
    deadline = time.monotonic() + 30
    while True:  # until the relay listens
        try:
            socket.create_connection(("127.0.0.1", relay_port), timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    config = root / f"bench-ssh-config-{log_every}"
    config.write_text(server.client_config.read_text() + "\n".join([
        "", "Host bench-relay", "  HostName 127.0.0.1", f"  Port {relay_port}", f"  User {server.user}",
        f"  IdentityFile \"{server.client_key}\"", "  IdentitiesOnly yes",
        f"  UserKnownHostsFile \"{server.known_hosts}\"",
        "  IdentityAgent none", "  LogLevel ERROR", ""]))
    key = server.known_hosts.read_text().splitlines()[0].split(" ", 1)[1]
    with open(server.known_hosts, "a") as fh:  # the relay shows the server's key on its own port
        fh.write(f"[127.0.0.1]:{relay_port} {key}\n")
    db = Database(root / f"data-{log_every}" / "db.sqlite3")
    machines = MachineManager(db)
    machine_id = machines.add("bench host", "bench-relay", python=sys.executable,
                              work_dir=str(server.work_dir / f"work-{log_every}"), ssh_config=str(config))
    target = machines.target(machine_id)
    manager = TrainingManager(db, gpus=[])
    dataset_id = DatasetManager(db).register(dataset)
    controller = RunController(manager)
    arrivals: dict[int, float] = {}
    steps_seen: list[int] = []
    warnings: list[str] = []
    controller.metrics_added.connect(lambda e, m: arrivals.setdefault(int(m["step"]), time.time()))
    controller.step_changed.connect(lambda e, s, t: steps_seen.append(s))
    controller.warning.connect(lambda e, text: warnings.append(text))
    exp_id = controller.start(dict(name=f"bench every {log_every}", dataset_id=dataset_id, base_config="v2_small",
                                   batch_size=2, device="cpu", val_every=100, log_every=log_every,
                                   max_steps=100_000, machine_id=machine_id))
    process = controller.live_run(exp_id).process
    timings = {"status": [], "mirror": []}
    for name in ("_status", "_mirror"):
        original = getattr(process, name)

        def timed(*a, _original=original, _key=name.strip("_"), **k):
            t0 = time.perf_counter()
            try:
                return _original(*a, **k)
            finally:
                timings[_key].append(time.perf_counter() - t0)
        setattr(process, name, timed)
    # what the SSH path adds: when bytes appended to a host event file are in the
    # mirror (a watcher of both files' sizes every 0.05 s; instrumentation of the
    # benchmark, not part of the app)
    mirror_lags: list[float] = []
    stop_watch = threading.Event()

    def watch() -> None:
        pending: dict[Path, list[tuple[int, float]]] = {}   # host file -> [(size, when seen)]
        seen: dict[Path, int] = {}
        while not stop_watch.is_set():
            record = remote_run(db, exp_id)
            exp = manager.get_experiment(exp_id)
            if record and record.get("run_dir") and exp.get("run_dir"):
                host_run, local_run = Path(record["run_dir"]), Path(exp["run_dir"])
                now = time.time()
                for path in host_run.glob("version_*/events.out.tfevents.*"):
                    size = path.stat().st_size
                    if size > seen.get(path, 0):
                        seen[path] = size
                        pending.setdefault(path, []).append((size, now))
                    mirror = local_run / path.relative_to(host_run)
                    have = mirror.stat().st_size if mirror.exists() else 0
                    waiting = pending.get(path, [])
                    while waiting and waiting[0][0] <= have:
                        mirror_lags.append(now - waiting.pop(0)[1])
            time.sleep(0.05)
    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    t_launch = time.monotonic()
    while not steps_seen:
        app.processEvents()
        time.sleep(0.02)
        if not controller.is_live(exp_id) or time.monotonic() - t_launch > 600:
            relay.terminate()
            raise RuntimeError(f"the run did not start: {manager.get_experiment(exp_id)['error']} "
                               + "; ".join(warnings))
    upload = read_counts(counts_file)
    pid, m0 = master_cpu(target)
    c0, k0, w0, s0 = time.process_time(), children_cpu(), time.monotonic(), process.syncs
    while time.monotonic() - w0 < seconds:
        app.processEvents()
        time.sleep(0.02)
    wall = time.monotonic() - w0
    cpu_app, cpu_children = time.process_time() - c0, children_cpu() - k0
    pid_end, m1 = master_cpu(target)
    end_counts = read_counts(counts_file)
    syncs = process.syncs - s0
    moved = {k: end_counts[k] - upload[k] for k in ("up", "down")}

    stop_watch.set()
    watcher.join(5)
    controller.stop(exp_id)
    while controller.is_live(exp_id):
        app.processEvents()
        time.sleep(0.02)
    process.wait(10_000)
    # what a poll costs when nothing changes: the same check + mirror, the run stopped
    before = read_counts(counts_file)
    idle_n = 20
    t0 = time.perf_counter()
    for _ in range(idle_n):
        process._status()
        process._mirror()
    idle_s = (time.perf_counter() - t0) / idle_n
    after = read_counts(counts_file)
    idle_bytes = (after["up"] + after["down"] - before["up"] - before["down"]) / idle_n

    run_dir = Path(remote_run(db, exp_id)["run_dir"])
    host = host_steps(run_dir)
    rows = []
    for step, t_app in sorted(arrivals.items()):
        info = host.get(step)
        if info is not None:
            rows.append({"step": step, "total_s": round(t_app - info["first"], 3)})
    total = [r["total_s"] for r in rows]
    lags = sorted(mirror_lags)
    target.close_master()
    relay.terminate()
    relay.wait(10)
    controller.autostart = False  # the database stays open: the controller's timers may still ask it
    minutes = wall / 60
    return {
        "log_every": log_every, "sync_interval_s": sync, "window_s": round(wall, 1),
        "steps_in_window": [min(steps_seen), max(steps_seen)],
        "cpu_app_s": round(cpu_app, 2), "cpu_ssh_rsync_clients_s": round(cpu_children, 2),
        "cpu_master_s": round(m1 - m0, 2) if pid == pid_end else None,
        "cpu_share_of_one_core": round((cpu_app + cpu_children + max(0.0, m1 - m0)) / wall, 4),
        "bytes_per_minute": round((moved["up"] + moved["down"]) / minutes),
        "bytes_up_per_minute": round(moved["up"] / minutes), "bytes_down_per_minute": round(moved["down"] / minutes),
        "dataset_upload_bytes": upload["up"] + upload["down"],
        "syncs": syncs, "syncs_per_minute": round(syncs / minutes, 1),
        "status_ms_median": round(1000 * statistics.median(timings["status"]), 1),
        "mirror_ms_median": round(1000 * statistics.median(timings["mirror"]), 1),
        "idle_poll_ms": round(1000 * idle_s, 1), "idle_poll_bytes": round(idle_bytes),
        "points": len(rows),
        "mirror_latency_median_s": round(statistics.median(lags), 2) if lags else None,
        "mirror_latency_p90_s": round(lags[int(0.9 * (len(lags) - 1))], 2) if lags else None,
        "mirror_latency_max_s": round(lags[-1], 2) if lags else None,
        "mirror_samples": len(lags),
        "total_latency_median_s": round(statistics.median(total), 2) if total else None,
        "total_latency_max_s": round(max(total), 2) if total else None,
        "latency_by_step": rows,
        "warnings": warnings,
        "load_avg_1min": round(os.getloadavg()[0], 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=180.0, help="how long each run is followed")
    parser.add_argument("--log-every", default="50,5", help="logging intervals, one run each")
    parser.add_argument("--sync", type=float, default=1.0, help="seconds between two polls of the host")
    args = parser.parse_args()
    from PyQt6.QtCore import QCoreApplication
    app = QCoreApplication.instance() or QCoreApplication([])
    root = Path(tempfile.mkdtemp(prefix="rave-gui-bench-ssh-"))
    server = LoopbackSSHD(root / "sshd").start()
    server.trust_host_key()
    results = []
    try:
        dataset = make_dataset(root)
        for every in [int(x) for x in args.log_every.split(",")]:
            results.append(run_once(app, root, server, dataset, every, args.seconds, args.sync))
            r = results[-1]
            print(f"log every {every}: CPU {100 * r['cpu_share_of_one_core']:.2f} % of a core, "
                  f"{r['bytes_per_minute']:,} B/min, mirror latency median {r['mirror_latency_median_s']} s "
                  f"max {r['mirror_latency_max_s']} s, total median {r['total_latency_median_s']} s "
                  f"({r['points']} points)", flush=True)
    finally:
        for relay in _RELAYS:
            relay.terminate()
            relay.wait(10)
        server.stop()
    out = {"machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "machine": platform.machine()},
           "runs": results}
    dest = ROOT / "benchmarks" / "results" / "ssh.json"
    dest.write_text(json.dumps(out, indent=2) + "\n")
    print("\n| log every | window s | steps | CPU (% of a core) | bytes/min (up+down) | idle poll | "
          "polls/min | mirror latency median / p90 / max | total latency median / max |")
    print("|---:|---:|---|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(f"| {r['log_every']} | {r['window_s']} | {r['steps_in_window'][0]}-{r['steps_in_window'][1]} | "
              f"{100 * r['cpu_share_of_one_core']:.2f} | {r['bytes_per_minute']:,} | "
              f"{r['idle_poll_ms']} ms, {r['idle_poll_bytes']:,} B | {r['syncs_per_minute']} | "
              f"{r['mirror_latency_median_s']} / {r['mirror_latency_p90_s']} / {r['mirror_latency_max_s']} s | "
              f"{r['total_latency_median_s']} / {r['total_latency_max_s']} s |")
    print(f"\nwrote {dest}")
    import shutil
    shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
