"""Where a run on another machine lives there, and the command it runs.

On the host, under the machine's work folder::

    rave-gui/rave_launcher-<hash>.py     the app's launcher (one per version of it)
    datasets/<name>-<fingerprint>/       a copy of a local dataset (fingerprint: its
                                         files' names, sizes and mtimes), marked
                                         complete with .rave-gui-complete
    runs/<experiment folder>-<hash>/     the run's folder (RAVE's out_path): train.log,
                                         pid-TOKEN, exitcode-TOKEN, and RAVE's NAME_<hash>/

On this computer the experiment's own folder mirrors the host's run folder
(train.log, the event files, the checkpoint index, config.gin; not the .ckpt
files), so everything that reads local files works unchanged.

Plain Python.
"""
from __future__ import annotations

import hashlib
import re
from pathlib import Path, PurePosixPath

from rave_gui.backend import rave_cli
from rave_gui.backend.datasets import DATASET_FILES
from rave_gui.backend.ssh import sh_quote

LAUNCHER_DIR = "rave-gui"
# what each poll mirrors (rsync filter rules, anchored at the run's folder)
MIRROR_FILTERS = (
    "--include=/train.log",
    "--include=/*/",
    "--include=/*/version_*/",
    "--include=/*/version_*/events.out.tfevents.*",
    "--include=/*/version_*/checkpoints/",
    "--include=/*/version_*/checkpoints/rave-gui-index.jsonl",
    "--exclude=*",
)


def launcher_name() -> str:
    digest = hashlib.sha1(rave_cli.LAUNCHER.read_bytes()).hexdigest()[:12]
    return f"rave_launcher-{digest}.py"


def run_folder_name(local_out_dir: str | Path) -> str:
    """The run's folder name on the host: the experiment folder's name and a hash of
    its full path (two apps with their own data folders never share one)."""
    local_out_dir = Path(local_out_dir)
    digest = hashlib.sha1(str(local_out_dir.resolve()).encode()).hexdigest()[:8]
    return f"{safe_name(local_out_dir.name)}-{digest}"


def safe_name(name: str, limit: int = 40) -> str:
    return (re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._-") or "x")[:limit]


def dataset_fingerprint(folder: str | Path) -> tuple[str, int]:
    """(fingerprint, total bytes) of a local dataset's files: names, sizes, mtimes."""
    digest = hashlib.sha1()
    total = 0
    for name in DATASET_FILES:
        path = Path(folder) / name
        try:
            stat = path.stat()
        except FileNotFoundError:
            continue
        digest.update(f"{name}\0{stat.st_size}\0{stat.st_mtime_ns}\0".encode())
        total += stat.st_size
    return digest.hexdigest()[:12], total


def dataset_folder_name(dataset_name: str, fingerprint: str) -> str:
    return f"{safe_name(dataset_name)}-{fingerprint}"


def local_of(remote_path: str, remote_out: str, local_out: str | Path) -> Path:
    """The mirror of a path under the host's run folder."""
    try:
        rel = PurePosixPath(remote_path).relative_to(PurePosixPath(remote_out))
    except ValueError:
        rel = PurePosixPath(PurePosixPath(remote_path).name)
    return Path(local_out).joinpath(*rel.parts)


def train_argv(python: str, launcher: str, cfg: dict, dataset_path: str, channels: int, out_dir: str,
               gpus: list[str] | None, cpus: int | None, ckpt: str | None = None) -> list[str]:
    """The argv the host runs: its Python, the launcher, ``train`` and RAVE's flags
    (the host's GPUs decide what ``auto`` means; workers default to its CPUs)."""
    cfg = dict(cfg)
    if cfg.get("workers") is None and cfg.get("device") != "cpu" and (cfg.get("device") != "auto" or gpus):
        cfg["workers"] = min(8, cpus or 8)
    args = rave_cli.train_arguments(cfg, {"path": dataset_path, "channels": channels}, out_dir,
                                    gpus=list(gpus or []), ckpt=ckpt)
    return [python, launcher, "train", *args]


def shell_word(word: str) -> str:
    """A word as a person would type it in the host's shell (``~/`` left unquoted)."""
    return "~/" + sh_quote(word[2:]) if word.startswith("~/") and len(word) > 2 else sh_quote(word)


def display_command(machine: dict, cfg: dict, dataset: dict) -> str:
    """The command a run on ``machine`` runs there, as the confirmation page shows it
    (``cd`` to the run's folder, then ``rave train ...``), with placeholders for what
    the launch decides (the run's folder, the dataset copy's fingerprint)."""
    rave = str(PurePosixPath(machine["python"]).parent / "rave") if "/" in machine["python"] else "rave"
    out, argv = display_argv(machine, cfg, dataset, rave, "")
    argv = [argv[0], *argv[2:]]  # the launcher runs RAVE's own entry point: show `rave train ...`
    return f"cd {shell_word(out)} && " + " ".join(shell_word(w) for w in argv)


def display_argv(machine: dict, cfg: dict, dataset: dict, python: str, launcher: str) -> tuple[str, list[str]]:
    """(the run's folder, the argv) of a run on ``machine`` as shown before it starts,
    with placeholders for what the launch decides (the folder, the dataset copy's
    fingerprint)."""
    work = machine["work_dir"].rstrip("/") or "/"
    if dataset.get("machine_id") == machine["id"]:
        data_path = dataset["path"]
    else:
        data_path = f"{work}/datasets/{safe_name(dataset.get('name') or 'dataset')}-<fingerprint>"
    out = f"{work}/runs/<experiment folder>"
    return out, train_argv(python, launcher, cfg, data_path, int(dataset.get("channels") or 1), out,
                           machine.get("gpus"), machine.get("cpus"))


def ssh_line(machine: dict) -> str:
    """How the person reaches the machine in a terminal."""
    destination = (f"{machine['user']}@" if machine.get("user") else "") + machine["host"]
    parts = ["ssh"]
    if machine.get("ssh_config"):
        parts += ["-F", sh_quote(machine["ssh_config"])]
    if machine.get("port"):
        parts += ["-p", str(machine["port"])]
    return " ".join(parts + [sh_quote(destination)])
