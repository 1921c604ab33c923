"""The machines a run can train on: "This computer", SSH hosts and Slurm clusters.

A machine is a row of ``machines``: a name, the host (an alias from the
person's ``~/.ssh/config``, or ``host`` with ``user`` and ``port``), optionally an
ssh config file, the remote Python that has ``rave``, and a remote work folder.
No password is ever stored (ssh runs with ``BatchMode=yes``: keys and agents only).
What "Test connection" found (GPUs, CPUs) is kept for the wizard. A Slurm cluster
is an SSH machine (its login node) with ``slurm`` settings (``backend/slurm.py``):
its runs are submitted as batch jobs, and its test adds ``sinfo``.

A run on a machine keeps its remote facts in ``remote_runs`` (``remote_run`` /
``save_remote_run``). Plain Python; only ``test`` and ``register_remote_dataset``
talk to the host (blocking: the UI calls them off its thread).
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from rave_gui.backend.names import validate_name
from rave_gui.backend.run_state import LIVE
from rave_gui.backend.slurm import DEFAULTS, clean_settings
from rave_gui.backend.ssh import SSHError, SSHTarget, control_dir, parse_host
from rave_gui.core.timeutil import now

THIS_COMPUTER = "This computer"
NAME_MAX = 64
_DEVICE_RE = re.compile(r"auto|cpu|gpu:(\d{1,2})")
_FIELDS = ("name", "host", "port", "user", "ssh_config", "python", "work_dir")


def _text_field(value: Any, label: str, example: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"Give the {label} (for example {example}).")
    value = value.strip()
    if any(ord(c) < 32 or c == "\x7f" for c in value):
        raise ValueError(f"The {label} cannot contain control characters or line breaks.")
    if len(value) > 1024:
        raise ValueError(f"The {label} is too long (at most 1,024 characters).")
    return value


def check_machine_device(db, machine_id: Any, device: str) -> int:
    """The machine's id when ``device`` ('auto', 'cpu' or 'gpu:N') exists there;
    ``ValueError`` with a sentence for an unknown machine or a GPU it lacks."""
    if isinstance(machine_id, bool) or not isinstance(machine_id, int) or not -2**63 <= machine_id < 2**63:
        raise ValueError(f"Machine {machine_id!r} does not exist; pick one on the Machines page.")
    row = db.query_one("SELECT * FROM machines WHERE id = ?", (machine_id,))
    if row is None:
        raise ValueError(f"Machine {machine_id} does not exist (it was removed?); pick one on the Machines page.")
    match = _DEVICE_RE.fullmatch(device) if isinstance(device, str) else None
    if match is None:
        raise ValueError(f"Device must be 'auto', 'cpu' or 'gpu:N' (got {device!r}).")
    if match.group(1) is not None:
        machine = MachineManager._decode(row)
        gpus = machine["gpus"]
        index = int(match.group(1))
        if gpus is not None and index >= len(gpus):
            found = (f"{row['name']} has {len(gpus)} NVIDIA GPU(s), numbered from 0" if gpus else
                     f"{row['name']} has no NVIDIA GPU (nvidia-smi lists none)")
            if machine["slurm"]:
                found = f"each job on {row['name']} asks for {len(gpus)} GPU(s) (its Slurm settings)"
            raise ValueError(f"There is no GPU {index}: {found}. Choose 'auto' or 'cpu', or test the "
                             "connection again on the Machines page.")
    return int(machine_id)


class MachineManager:
    def __init__(self, db, data_dir: str | Path | None = None):
        self.db = db
        self.data_dir = Path(data_dir) if data_dir else Path(db.path).parent

    # -- records -------------------------------------------------------------------------
    def _clean(self, fields: dict, current: dict | None = None) -> dict:
        merged = {**(current or {}), **fields}
        clean = {"name": validate_name(merged.get("name"), "machine", NAME_MAX)}
        host_text = _text_field(merged.get("host"), "host", "gpu-box, or me@192.168.1.20:2222")
        host, user, port = parse_host(host_text)
        if merged.get("user"):
            user = _text_field(merged["user"], "user", "me")
            parse_host(f"{user}@{host}")
        if merged.get("port") not in (None, ""):
            port = merged["port"]
            if isinstance(port, str) and port.strip().isdigit():
                port = int(port)
            if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
                raise ValueError(f"{merged['port']!r} is not a port number (1 to 65535).")
        clean.update(host=host, user=user, port=port)
        ssh_config = merged.get("ssh_config") or None
        if ssh_config is not None:
            ssh_config = _text_field(ssh_config, "ssh config file", "~/.ssh/config")
            if not Path(ssh_config).expanduser().is_file():
                raise ValueError(f"The ssh config file {ssh_config} does not exist on this computer.")
        clean["ssh_config"] = ssh_config
        clean["python"] = _text_field(merged.get("python"), "remote Python", "~/venvs/rave/bin/python")
        clean["work_dir"] = _text_field(merged.get("work_dir"), "remote work folder", "~/rave-gui")
        return clean

    def add(self, name: str, host: str, python: str = "python3", work_dir: str = "~/rave-gui",
            ssh_config: str | None = None, port: int | None = None, user: str | None = None,
            slurm: dict | None = None) -> int:
        """Record an SSH host (with ``slurm`` settings: a Slurm cluster's login node);
        ``ValueError`` with a sentence (nothing written) when a field will not do.
        Nothing is contacted: "Test connection" does that."""
        clean = self._clean(dict(name=name, host=host, python=python, work_dir=work_dir,
                                 ssh_config=ssh_config, port=port, user=user))
        settings = json.dumps(clean_settings(slurm)) if slurm is not None else None
        if self.db.query_one("SELECT 1 FROM machines WHERE name = ?", (clean["name"],)):
            raise ValueError(f"A machine named \u201c{clean['name']}\u201d exists already. Choose another name.")
        if clean["name"] == THIS_COMPUTER:
            raise ValueError(f"\u201c{THIS_COMPUTER}\u201d is the name of this computer; choose another.")
        cur = self.db.execute(
            "INSERT INTO machines (name, kind, host, port, user, ssh_config, python, work_dir, created_at, slurm)"
            " VALUES (?, 'ssh', ?, ?, ?, ?, ?, ?, ?, ?)",
            (clean["name"], clean["host"], clean["port"], clean["user"], clean["ssh_config"], clean["python"],
             clean["work_dir"], now(), settings))
        return int(cur.lastrowid)

    def update(self, machine_id: int, **fields) -> None:
        """Change fields (``slurm``: the cluster's settings, merged with the current
        ones; ``None`` makes it a plain SSH host). Refused while a run there would move."""
        slurm_given = "slurm" in fields
        slurm = fields.pop("slurm", None)
        unknown = set(fields) - set(_FIELDS)
        if unknown:
            raise ValueError(f"Unknown machine field(s): {', '.join(sorted(unknown))}.")
        current = self.get(machine_id)
        if current is None:
            raise ValueError(f"There is no machine {machine_id}.")
        clean = self._clean(fields, {k: current[k] for k in _FIELDS})
        clash = self.db.query_one("SELECT id FROM machines WHERE name = ? AND id != ?", (clean["name"], machine_id))
        if clash or clean["name"] == THIS_COMPUTER:
            raise ValueError(f"A machine named \u201c{clean['name']}\u201d exists already. Choose another name.")
        settings = current.get("slurm")
        if slurm_given:
            settings = clean_settings({**(settings or {}), **slurm}) if slurm is not None else None
        blocker = self._live_runs(machine_id)
        moved = any(clean[k] != current[k] for k in ("host", "port", "user", "work_dir", "python")) or \
            (settings is None) != (current.get("slurm") is None)
        if blocker and moved:
            raise ValueError(f"{blocker} Change the host, Python, work folder or kind once it has ended.")
        self.db.execute("UPDATE machines SET name = ?, host = ?, port = ?, user = ?, ssh_config = ?, python = ?,"
                        " work_dir = ?, slurm = ? WHERE id = ?",
                        (*(clean[k] for k in _FIELDS), json.dumps(settings) if settings is not None else None,
                         machine_id))

    def get(self, machine_id: int) -> dict | None:
        row = self.db.query_one("SELECT * FROM machines WHERE id = ?", (machine_id,))
        return self._decode(row) if row else None

    def list(self) -> list[dict]:
        return [self._decode(r) for r in self.db.query("SELECT * FROM machines ORDER BY name COLLATE NOCASE, id")]

    @staticmethod
    def _decode(row) -> dict:
        machine = dict(row)
        try:
            machine["gpus"] = json.loads(machine["gpus"]) if machine.get("gpus") else None
        except ValueError:
            machine["gpus"] = None
        try:
            machine["slurm"] = {**DEFAULTS, **json.loads(machine["slurm"])} if machine.get("slurm") else None
        except ValueError:
            machine["slurm"] = None
        if machine["slurm"]:  # a job gets what the settings ask for, whatever the login node has
            machine["gpus"] = [f"GPU {i} of the job" for i in range(int(machine["slurm"]["gpus"] or 0))]
            machine["cpus"] = int(machine["slurm"]["cpus"])
        return machine

    def _live_runs(self, machine_id: int) -> str | None:
        rows = self.db.query("SELECT status FROM experiments WHERE json_extract(config, '$.machine_id') = ?",
                             (machine_id,))
        live = sum(1 for r in rows if r["status"] in LIVE)
        queued = sum(1 for r in rows if r["status"] == "queued")
        if not live and not queued:
            return None
        parts = ([f"{live} run(s) train there"] if live else []) + ([f"{queued} queued"] if queued else [])
        return "This machine is in use: " + " and ".join(parts) + "."

    def removal_blocker(self, machine_id: int) -> str | None:
        blocker = self._live_runs(machine_id)
        if blocker:
            return blocker + " Stop them (or take them off the queue) first."
        datasets = self.db.query_one("SELECT count(*) FROM datasets WHERE machine_id = ?", (machine_id,))[0]
        if datasets:
            return (f"{datasets} dataset(s) are registered by their path on this machine. Remove them "
                    "on the Datasets page first.")
        return None

    def remove(self, machine_id: int) -> None:
        """Forget a machine (its runs' records stay). Refused while a run uses it."""
        if self.get(machine_id) is None:
            raise ValueError(f"There is no machine {machine_id}.")
        blocker = self.removal_blocker(machine_id)
        if blocker:
            raise ValueError(blocker)
        self.db.execute("DELETE FROM machines WHERE id = ?", (machine_id,))

    # -- reaching it ---------------------------------------------------------------------------
    def target(self, machine: int | dict) -> SSHTarget:
        machine = self.get(machine) if isinstance(machine, int) else machine
        if machine is None:
            raise ValueError("This machine was removed; add it again on the Machines page.")
        return target_of(machine, self.data_dir)

    def test(self, machine_id: int, **kwargs) -> list:
        """Run "Test connection" (blocking, seconds) and keep what it found (GPUs,
        CPUs). Returns the checks (``connection_check.Check``)."""
        from rave_gui.backend.connection_check import test_connection
        machine = self.get(machine_id)
        if machine is None:
            raise ValueError(f"There is no machine {machine_id}.")
        checks = test_connection(self.target(machine), machine["python"], machine["work_dir"],
                                 slurm=machine.get("slurm"), **kwargs)
        self.record_checks(machine_id, checks)
        return checks

    test.__test__ = False

    def record_checks(self, machine_id: int, checks: list) -> None:
        gpu = next((c for c in checks if c.name == "gpus"), None)
        if gpu is None:
            return
        self.db.execute("UPDATE machines SET gpus = ?, cpus = ?, checked_at = ? WHERE id = ?",
                        (json.dumps([g["name"] for g in gpu.data.get("gpus", [])]), gpu.data.get("cpus"),
                         now(), machine_id))

    def register_remote_dataset(self, machine_id: int, path: str, name: str | None = None) -> int:
        """Register a preprocessed dataset that lives on the host, by its path there
        (read over SSH: nothing is copied). It can train only on that machine."""
        from rave_gui.backend.datasets import parse_metadata_text, validate_dataset_name
        from rave_gui.backend.names import name_from_folder
        from rave_gui.backend.remote_scripts import answers, metadata_script, section
        machine = self.get(machine_id)
        if machine is None:
            raise ValueError(f"There is no machine {machine_id}.")
        path = _text_field(path, "dataset folder on the host", "~/data/my-voice")
        if name is not None:
            name = validate_dataset_name(name)
        try:
            result = self.target(machine).run(metadata_script(path), timeout=60)
        except SSHError as exc:
            raise ValueError(str(exc)) from exc
        absolute = answers(result.stdout).get("path")
        if not absolute:
            raise ValueError(f"{path} on {machine['name']} is not a preprocessed RAVE dataset (no "
                             "metadata.yaml and data.mdb there).")
        meta = parse_metadata_text(section(result.stdout, "metadata"), f"{machine['name']}:{absolute}")
        if self.db.query_one("SELECT 1 FROM datasets WHERE path = ? AND machine_id = ?", (absolute, machine_id)):
            raise ValueError(f"{absolute} on {machine['name']} is already registered.")
        name = name or name_from_folder(Path(absolute).name, "dataset", NAME_MAX)
        cur = self.db.execute(
            "INSERT INTO datasets (name, path, num_samples, channels, sample_rate, duration, created_at, machine_id)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (name, absolute, meta["num_samples"], meta["channels"], meta["sample_rate"], meta["duration"], now(),
             machine_id))
        return int(cur.lastrowid)


def target_of(machine: dict, data_dir: str | Path) -> SSHTarget:
    return SSHTarget(machine["host"], user=machine.get("user"), port=machine.get("port"),
                     ssh_config=machine.get("ssh_config"), control_path_dir=str(control_dir(data_dir)))


# -- a run's remote facts -----------------------------------------------------------------------
def remote_run(db, experiment_id: int) -> dict | None:
    row = db.query_one("SELECT * FROM remote_runs WHERE experiment_id = ?", (experiment_id,))
    return dict(row) if row else None


def save_remote_run(db, experiment_id: int, **fields) -> None:
    allowed = {"machine_id", "out_dir", "run_dir", "dataset_path", "pid", "pgid", "pid_start", "token", "job_id"}
    unknown = set(fields) - allowed
    if unknown:
        raise ValueError(f"unknown remote run field(s) {sorted(unknown)}")
    with db.transaction() as conn:
        exists = conn.execute("SELECT 1 FROM remote_runs WHERE experiment_id = ?", (experiment_id,)).fetchone()
        if exists:
            if fields:
                conn.execute(f"UPDATE remote_runs SET {', '.join(f'{k} = ?' for k in fields)} WHERE experiment_id = ?",
                             (*fields.values(), experiment_id))
        else:
            if "out_dir" not in fields:
                raise ValueError("a remote run needs its folder on the host (out_dir)")
            conn.execute(f"INSERT INTO remote_runs (experiment_id, {', '.join(fields)}) VALUES (?, "
                         f"{', '.join('?' * len(fields))})", (experiment_id, *fields.values()))


def remote_pid(db, experiment_id: int) -> int | None:
    """What a run re-attaches to (for ``recover_runs``): the pid of its training on its
    host, or on a Slurm cluster its job id; None when there is none."""
    run = remote_run(db, experiment_id)
    if run and run.get("job_id") and str(run["job_id"]).isdigit():
        return int(run["job_id"])
    return int(run["pid"]) if run and run.get("pid") else None


def is_slurm(machine: dict | None) -> bool:
    return bool(machine and machine.get("slurm"))
