"""A stand-in for ``python rave_launcher.py train ...`` on a test host: fast and
deterministic, same files and lines as the real one.

Run as ``fake_rave.py LAUNCHER train <rave train flags>`` (the machine's "python"
is a tiny script that execs this). It writes what RAVE + the launcher write: the
run folder ``OUT/NAME_<hash>/version_N`` (announced with ``[rave-gui:TOKEN]
run_dir=``), ``config.gin``, an event file with the generator's terms every
``RAVE_GUI_LOG_EVERY`` steps and ``validation`` at each validation, checkpoints
(small files) with ``rave-gui-index.jsonl``, ``step=N/M`` lines, and at the end
Lightning's "`Trainer.fit` stopped" line. SIGINT saves ``stopped-step=N.ckpt``
at the end of the step and exits 0; ``--ckpt RUN`` resumes from the newest
checkpoint's step. ``FAKE_STEP_SECONDS`` sets the pace; ``FAKE_IGNORE_INT`` makes it
ignore SIGINT; every argument and the environment are written to ``OUT/fake-argv-<pid>.json``.
"""
from __future__ import annotations

import glob
import json
import os
import signal
import sys
import time

from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.summary.writer.event_file_writer import EventFileWriter

STOP = {"asked": False}


def flag(args, name, default=None):
    return args[args.index(name) + 1] if name in args else default


def export(args) -> int:
    """``rave export --run RUN --name N --output DIR --fidelity F --streaming``: a small .ts."""
    name, output = flag(args, "--name"), flag(args, "--output")
    os.makedirs(output, exist_ok=True)
    for marker in ("model found", "script model", "save model"):
        print(marker, flush=True)
    with open(os.path.join(output, f"{name}{'_streaming' if '--streaming' in args else ''}.ts"), "wb") as fh:
        fh.write(b"fake torchscript " * 4096)
    print("all good", flush=True)
    return 0


def main() -> int:
    if sys.argv[2:3] == ["export"]:
        return export(sys.argv[3:])
    args = sys.argv[2:]
    token = os.environ.get("RAVE_GUI_TOKEN", "")
    prefix = f"[rave-gui:{token}]" if token.isalnum() else "[rave-gui]"
    name, out = flag(args, "--name"), flag(args, "--out_path")
    max_steps, val_every = int(flag(args, "--max_steps")), int(flag(args, "--val_every"))
    log_every = int(os.environ.get("RAVE_GUI_LOG_EVERY", "50"))
    pace = float(os.environ.get("FAKE_STEP_SECONDS", "0.05"))
    ckpt = flag(args, "--ckpt")
    with open(os.path.join(out, f"fake-argv-{os.getpid()}.json"), "w") as fh:
        json.dump({"argv": sys.argv, "env": {k: v for k, v in os.environ.items() if k.startswith(("RAVE_GUI", "PYTHON"))},
                   "cwd": os.getcwd()}, fh)
    run = os.path.join(out, f"{name}_abc123")
    step = 0
    if ckpt:
        found = sorted(glob.glob(os.path.join(glob.escape(ckpt), "version_*", "checkpoints", "*.ckpt")),
                       key=os.path.getmtime)
        if found:
            with open(found[-1]) as fh:
                step = int(fh.read().strip() or 0)
    version = len(glob.glob(os.path.join(glob.escape(run), "version_*")))
    folder = os.path.join(run, f"version_{version}")
    os.makedirs(os.path.join(folder, "checkpoints"), exist_ok=True)
    with open(os.path.join(run, "config.gin"), "w") as fh:
        fh.write(f"# fake config for {name}\nTRAIN_STEPS = {max_steps}\n")
    writer = EventFileWriter(folder)
    if os.environ.get("FAKE_IGNORE_INT"):  # a training that does not stop in time (a hung step)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    else:
        signal.signal(signal.SIGINT, lambda *_: STOP.update(asked=True))
    print(f"{prefix} run_dir={folder}", flush=True)

    def scalar(tag, value, at):
        writer.add_event(event_pb2.Event(wall_time=time.time(), step=at, summary=summary_pb2.Summary(
            value=[summary_pb2.Summary.Value(tag=tag, simple_value=value)])))

    def save(file, at, validation=None):
        path = os.path.join(folder, "checkpoints", file)
        with open(path, "w") as fh:
            fh.write(str(at))
        with open(os.path.join(folder, "checkpoints", "rave-gui-index.jsonl"), "a") as fh:
            fh.write(json.dumps({"file": file, "step": at, "validation": validation, "time": time.time()}) + "\n")
        return path

    while step < max_steps:
        time.sleep(pace)
        index = step
        step += 1
        if step % log_every == 0:
            scalar("multiband_spectral_distance", 10.0 / step, index)
            scalar("regularization", 0.5, index)
            scalar("lr-Adam", 1e-3, index)
        if step % val_every == 0:
            scalar("validation", 5.0 / step, index)
            save(f"epoch-epoch={index:04d}.ckpt", step, 5.0 / step)
            print(f"{prefix} saved epoch-epoch={index:04d}.ckpt at step={step}", flush=True)
        writer.flush()
        print(f"Epoch {step}: 100%|##########| 1/1 {prefix} step={step}/{max_steps}", flush=True)
        if STOP["asked"]:
            path = save(f"stopped-step={step}.ckpt", step)
            writer.flush()
            print(f"{prefix} checkpoint={path} step={step}", flush=True)
            writer.close()
            return 0
    writer.close()
    print(f"`Trainer.fit` stopped: `max_steps={max_steps}` reached.", flush=True)
    print(f"{prefix} step={step}/{max_steps}", flush=True)
    return int(os.environ.get("FAKE_EXIT", "0"))


if __name__ == "__main__":
    sys.exit(main())
