"""Training management: experiment records, metric history, live processes.

``TrainingManager`` is plain Python over the SQLite database: no Qt object,
usable from a script or a test without a QApplication. ``TrainingProcess``
(the QThread that runs ``rave train``) lives in ``training_process`` and is
re-exported here, as the design card places both in this module.
"""
from __future__ import annotations

import datetime as _dt
import json
import math
import re
import threading
from pathlib import Path
from typing import Any, Iterable

from rave_gui.backend.log_parsing import parse_metrics, parse_progress_line  # noqa: F401 (public API)
from rave_gui.backend.rave_cli import BROKEN_CONFIGS, RAVE_CONFIGS, RAVE_MODIFIERS
from rave_gui.core.database import Database
from rave_gui.core.process import process_alive

STATUSES = ("running", "completed", "failed", "stopped", "interrupted")
TERMINAL = {"completed", "failed", "stopped", "interrupted"}
RESUMABLE = {"failed", "stopped", "interrupted", "completed"}
DEVICE_RE = re.compile(r"^(auto|cpu|gpu:\d{1,2})$")
OVERRIDE_RE = re.compile(r"^[A-Za-z_][\w.]*(/[\w.]+)?\s*=\s*\S.*$")
_BAD_NAME_CHARS = set('/\\:*?<>|') | {chr(c) for c in range(32)} | {"\x7f"}
MAX_NAME = 80

DEFAULTS = {"max_steps": 500_000, "batch_size": 8, "learning_rate": 1e-4, "device": "auto",
            "val_every": 10_000, "log_every": 50, "workers": None, "modifiers": [], "overrides": [],
            "base_config": "v2"}


def now() -> str:
    return _dt.datetime.now().isoformat(timespec="seconds")


def validate_name(name: Any) -> str:
    """The run name as RAVE will get it, or ``ValueError`` saying what is wrong."""
    if not isinstance(name, str) or not name.strip():
        raise ValueError("Give the run a name.")
    name = name.strip()
    if len(name) > MAX_NAME:
        raise ValueError(f"The run name is {len(name)} characters long; keep it under {MAX_NAME}.")
    bad = sorted({c for c in name if c in _BAD_NAME_CHARS})
    if bad:
        shown = " ".join(repr(c)[1:-1] for c in bad)
        raise ValueError(f"The run name cannot contain {shown}: it becomes a folder name.")
    if name[0] in ".-":
        raise ValueError("The run name cannot start with '.' or '-'.")
    return name


def _int_in(config: dict, key: str, low: int, high: int, label: str) -> int:
    value = config.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
        raise ValueError(f"{label} must be a whole number (got {value!r}).")
    value = int(value)
    if not low <= value <= high:
        raise ValueError(f"{label} must be between {low:,} and {high:,} (got {value:,}).")
    return value


class TrainingManager:
    """Experiments in the database and the processes that train them."""

    def __init__(self, db: Database, runs_root: str | Path | None = None):
        self.db = db
        self.runs_root = Path(runs_root) if runs_root else Path(db.path).parent / "runs"
        self._processes: dict[int, Any] = {}
        self._lock = threading.RLock()

    # -- validation ----------------------------------------------------------
    def validate_config(self, config: dict) -> dict:
        """Return a complete, normalised config, or raise ``ValueError``."""
        if not isinstance(config, dict):
            raise ValueError("The training configuration must be a dictionary.")
        cfg = {**DEFAULTS, **{k: v for k, v in config.items() if v is not None}}
        cfg["name"] = validate_name(config.get("name"))
        ds_id = cfg.get("dataset_id")
        if ds_id is None:
            raise ValueError("Choose a dataset to train on.")
        dataset = self.db.query_one("SELECT * FROM datasets WHERE id = ?", (ds_id,))
        if dataset is None:
            raise ValueError(f"Dataset {ds_id} does not exist; pick one from the Datasets page.")
        if cfg.get("project_id") is not None and self.db.query_one(
                "SELECT id FROM projects WHERE id = ?", (cfg["project_id"],)) is None:
            raise ValueError(f"Project {cfg['project_id']} does not exist.")
        if cfg["base_config"] not in RAVE_CONFIGS:
            raise ValueError(f"Unknown base config {cfg['base_config']!r}; RAVE ships "
                             + ", ".join(RAVE_CONFIGS) + ".")
        if cfg["base_config"] in BROKEN_CONFIGS:
            raise ValueError(BROKEN_CONFIGS[cfg["base_config"]])
        mods = cfg["modifiers"]
        if isinstance(mods, str) or not all(isinstance(m, str) for m in mods):
            raise ValueError("Modifiers must be a list of names.")
        unknown = [m for m in mods if m not in RAVE_MODIFIERS]
        if unknown:
            raise ValueError(f"Unknown modifier(s) {', '.join(unknown)}; RAVE ships "
                             + ", ".join(RAVE_MODIFIERS) + ".")
        cfg["modifiers"] = list(dict.fromkeys(mods))
        overrides = cfg["overrides"]
        if isinstance(overrides, str) or not all(isinstance(o, str) for o in overrides):
            raise ValueError("Overrides must be a list of gin bindings such as PHASE_1_DURATION=200000.")
        for binding in overrides:
            if not OVERRIDE_RE.match(binding.strip()):
                raise ValueError(f"{binding!r} is not a gin binding; write it as NAME=value "
                                 "(for example PHASE_1_DURATION=200000).")
        cfg["overrides"] = [o.strip() for o in overrides]
        cfg["max_steps"] = _int_in(cfg, "max_steps", 1, 100_000_000, "Max steps")
        cfg["batch_size"] = _int_in(cfg, "batch_size", 1, 1024, "Batch size")
        cfg["val_every"] = _int_in(cfg, "val_every", 1, 100_000_000, "Validation interval")
        cfg["log_every"] = _int_in(cfg, "log_every", 1, 1_000_000, "Logging interval")
        if cfg["workers"] is not None:
            cfg["workers"] = _int_in(cfg, "workers", 0, 64, "Workers")
        lr = cfg["learning_rate"]
        if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not math.isfinite(lr) or not 0 < lr < 1:
            raise ValueError(f"The learning rate must be a number between 0 and 1 (got {lr!r}).")
        cfg["learning_rate"] = float(lr)
        if not isinstance(cfg["device"], str) or not DEVICE_RE.match(cfg["device"]):
            raise ValueError(f"Device must be 'auto', 'cpu' or 'gpu:N' (got {cfg['device']!r}).")
        return cfg

    # -- records -------------------------------------------------------------
    def start_training(self, config: dict) -> int:
        """Validate ``config`` and create the experiment record ('running')."""
        cfg = self.validate_config(config)
        with self.db.transaction() as conn:
            cur = conn.execute(
                "INSERT INTO experiments (project_id, name, dataset_id, config, status, started_at, metrics)"
                " VALUES (?, ?, ?, ?, 'running', ?, '{}')",
                (cfg.get("project_id"), cfg["name"], cfg["dataset_id"], json.dumps(cfg), now()))
            exp_id = int(cur.lastrowid)
            out_dir = self.runs_root / str(exp_id)
            suffix = 1
            while out_dir.exists():  # SQLite reuses the ids of deleted experiments
                out_dir = self.runs_root / f"{exp_id}-{suffix}"
                suffix += 1
            conn.execute("UPDATE experiments SET out_dir = ?, log_path = ? WHERE id = ?",
                         (str(out_dir), str(out_dir / "train.log"), exp_id))
            self._add_event(conn, exp_id, "started", 0)
        return exp_id

    def get_experiment(self, experiment_id: int) -> dict | None:
        row = self.db.query_one("SELECT * FROM experiments WHERE id = ?", (experiment_id,))
        return self._decode(row) if row else None

    def list_experiments(self, project_id: int | None = None) -> list[dict]:
        if project_id is None:
            rows = self.db.query("SELECT * FROM experiments ORDER BY started_at DESC, id DESC")
        else:
            rows = self.db.query("SELECT * FROM experiments WHERE project_id = ?"
                                 " ORDER BY started_at DESC, id DESC", (project_id,))
        return [self._decode(r) for r in rows]

    def delete_experiment(self, experiment_id: int) -> None:
        if self.is_active(experiment_id):
            raise ValueError("Stop the run before deleting it.")
        self.db.execute("DELETE FROM experiments WHERE id = ?", (experiment_id,))

    @staticmethod
    def _decode(row) -> dict:
        exp = dict(row)
        for key in ("config", "metrics"):
            try:
                exp[key] = json.loads(exp[key]) if exp.get(key) else {}
            except json.JSONDecodeError:
                exp[key] = {}
        return exp

    def update_experiment_status(self, experiment_id: int, status: str, error: str | None = None) -> None:
        if status not in STATUSES:
            raise ValueError(f"Unknown status {status!r}; use one of {', '.join(STATUSES)}.")
        with self.db.transaction() as conn:
            row = conn.execute("SELECT current_step FROM experiments WHERE id = ?", (experiment_id,)).fetchone()
            if row is None:
                raise ValueError(f"There is no experiment {experiment_id}.")
            completed = now() if status in TERMINAL else None
            conn.execute("UPDATE experiments SET status = ?, completed_at = ?, error = ? WHERE id = ?",
                         (status, completed, error, experiment_id))
            if status in TERMINAL:
                self._add_event(conn, experiment_id, status, row["current_step"], error)

    def set_process_info(self, experiment_id: int, pid: int | None, started_at: float | None) -> None:
        self.db.execute("UPDATE experiments SET pid = ?, pid_started_at = ? WHERE id = ?",
                        (pid, started_at, experiment_id))

    def record_event(self, experiment_id: int, kind: str, step: int | None = None, detail: str | None = None):
        with self.db.transaction() as conn:
            self._add_event(conn, experiment_id, kind, step, detail)

    @staticmethod
    def _add_event(conn, experiment_id, kind, step, detail=None) -> None:
        conn.execute("INSERT INTO experiment_events (experiment_id, at, kind, step, detail) VALUES (?,?,?,?,?)",
                     (experiment_id, now(), kind, step, detail))

    def get_events(self, experiment_id: int) -> list[dict]:
        return [dict(r) for r in self.db.query(
            "SELECT at, kind, step, detail FROM experiment_events WHERE experiment_id = ? ORDER BY id",
            (experiment_id,))]

    # -- metrics ---------------------------------------------------------------
    def update_training_metrics(self, experiment_id: int, metrics: dict | Iterable[dict]) -> int:
        """Store metrics: the latest values as JSON on the experiment, every
        point appended to the history. ``metrics`` is one dict with a ``step``
        or a list of them. Points already stored (same key and step) are kept,
        never counted twice. Returns the number of new points."""
        batch = [metrics] if isinstance(metrics, dict) else list(metrics)
        if not batch:
            return 0
        with self.db.transaction() as conn:
            row = conn.execute("SELECT metrics, current_step FROM experiments WHERE id = ?",
                               (experiment_id,)).fetchone()
            if row is None:
                raise ValueError(f"There is no experiment {experiment_id}.")
            latest = json.loads(row["metrics"] or "{}")
            step_now = row["current_step"] or 0
            points = []
            for item in batch:
                raw = item.get("step", step_now)
                try:
                    step = step_now if raw is None else int(raw)
                except (TypeError, ValueError, OverflowError):
                    continue
                step_now = max(step_now, step)
                for key, value in item.items():
                    if key == "step" or isinstance(value, bool) or not isinstance(value, (int, float)):
                        continue
                    value = float(value)
                    if not math.isfinite(value):
                        continue
                    points.append((experiment_id, key, step, value))
                    if step >= latest.get("_steps", {}).get(key, -1):
                        latest[key] = value
                        latest.setdefault("_steps", {})[key] = step
            before = conn.total_changes
            conn.executemany("INSERT OR IGNORE INTO metric_points (experiment_id, key, step, value)"
                             " VALUES (?, ?, ?, ?)", points)
            added = conn.total_changes - before
            latest["step"] = step_now
            conn.execute("UPDATE experiments SET metrics = ?, current_step = ? WHERE id = ?",
                         (json.dumps(latest), step_now, experiment_id))
        return added

    def set_current_step(self, experiment_id: int, step: int) -> None:
        self.db.execute("UPDATE experiments SET current_step = max(coalesce(current_step, 0), ?) WHERE id = ?",
                        (int(step), experiment_id))

    def get_metric_history(self, experiment_id: int, keys: Iterable[str] | None = None) -> dict[str, list]:
        sql = "SELECT key, step, value FROM metric_points WHERE experiment_id = ?"
        params: list = [experiment_id]
        if keys is not None:
            keys = list(keys)
            sql += f" AND key IN ({','.join('?' * len(keys))})"
            params += keys
        history: dict[str, list] = {}
        for key, step, value in self.db.query(sql + " ORDER BY key, step", params):
            history.setdefault(key, []).append((step, value))
        return history

    def last_step(self, experiment_id: int) -> int:
        row = self.db.query_one("SELECT max(step) FROM metric_points WHERE experiment_id = ?", (experiment_id,))
        return int(row[0]) if row and row[0] is not None else 0

    def resume_training(self, experiment_id: int, max_steps: int | None = None) -> dict:
        """Mark a stopped, failed, interrupted or completed run as running again
        (optionally with a higher ``max_steps``); the caller then starts a
        ``TrainingProcess(..., resume=True)``, which passes ``--ckpt``."""
        exp = self.get_experiment(experiment_id)
        if exp is None:
            raise ValueError(f"There is no experiment {experiment_id}.")
        if self.is_active(experiment_id) or exp["status"] == "running":
            raise ValueError("This run is still running.")
        if process_alive(exp.get("pid"), exp.get("pid_started_at")):
            raise ValueError("This run is still stopping (saving its checkpoint); resume it in a few seconds.")
        if exp["status"] not in RESUMABLE:
            raise ValueError(f"A {exp['status']} run cannot be resumed.")
        cfg = dict(exp["config"])
        step = int(exp.get("current_step") or 0)
        if max_steps is not None:
            cfg["max_steps"] = max_steps
            cfg["max_steps"] = _int_in(cfg, "max_steps", 1, 100_000_000, "Max steps")
        if cfg["max_steps"] <= step:
            raise ValueError(f"The run already reached step {step:,}; resume it with max steps above "
                             f"{cfg['max_steps']:,}.")
        with self.db.transaction() as conn:
            conn.execute("UPDATE experiments SET status = 'running', completed_at = NULL, error = NULL,"
                         " config = ? WHERE id = ?", (json.dumps(cfg), experiment_id))
            self._add_event(conn, experiment_id, "resumed", step)
        return self.get_experiment(experiment_id)

    def recover_runs(self) -> tuple[list[tuple[int, int]], list[int]]:
        """After a start-up: every experiment still marked 'running' that this
        app holds no process for. Returns ``(alive, interrupted)``: runs whose
        training process still lives (same pid *and* start time), as
        ``(experiment_id, pid)`` to re-attach to; and those marked
        'interrupted' now because their process is gone."""
        alive, interrupted = [], []
        for row in self.db.query("SELECT id, pid, pid_started_at, log_path, out_dir FROM experiments"
                                 " WHERE status = 'running'"):
            if self.is_active(row["id"]):
                continue
            pid = row["pid"]
            if process_alive(pid, row["pid_started_at"]):
                alive.append((row["id"], pid))
            elif self._finished_while_away(row):
                self.update_experiment_status(row["id"], "completed")
                self.set_process_info(row["id"], None, None)
            else:
                self.update_experiment_status(
                    row["id"], "interrupted",
                    "The app closed while this run was training and its process is gone. "
                    "Resume it to continue from its last checkpoint.")
                self.set_process_info(row["id"], None, None)
                interrupted.append(row["id"])
        return alive, interrupted

    def _finished_while_away(self, row) -> bool:
        """Did the run reach its end while no app followed it? Then its last
        metrics are read from the event files and it counts as completed."""
        from rave_gui.backend.events import RunEventsFollower
        from rave_gui.backend.log_parsing import parse_fit_end
        from rave_gui.backend.training_process import find_run_dir
        try:
            with open(row["log_path"], "rb") as fh:
                fh.seek(0, 2)
                fh.seek(max(0, fh.tell() - 65536))
                tail = fh.read().decode("utf-8", "replace")
        except (OSError, TypeError):
            return False
        if not any(parse_fit_end(line) for line in tail.replace("\r", "\n").split("\n")):
            return False
        run_dir = find_run_dir(row["out_dir"]) if row["out_dir"] else None
        if run_dir is not None:
            self.update_training_metrics(row["id"], RunEventsFollower(run_dir).poll(final=True))
        return True

    # -- processes -------------------------------------------------------------
    def register_process(self, experiment_id: int, process) -> None:
        with self._lock:
            self._processes[experiment_id] = process

    def unregister_process(self, experiment_id: int, process=None) -> None:
        with self._lock:
            if process is None or self._processes.get(experiment_id) is process:
                self._processes.pop(experiment_id, None)

    def get_process(self, experiment_id: int):
        with self._lock:
            return self._processes.get(experiment_id)

    def active_experiments(self) -> list[int]:
        with self._lock:
            return list(self._processes)

    def is_active(self, experiment_id: int) -> bool:
        return self.get_process(experiment_id) is not None

    def stop_training(self, experiment_id: int) -> bool:
        """Stop the run's process (if any), mark it 'stopped', unregister it.
        Returns False when no process was registered for it."""
        with self._lock:
            process = self._processes.pop(experiment_id, None)
        if process is not None:
            process.stop()
        exp = self.get_experiment(experiment_id)
        if exp is None:
            raise ValueError(f"There is no experiment {experiment_id}.")
        if exp["status"] == "running":
            self.update_experiment_status(experiment_id, "stopped")
        return process is not None

    def stop_all(self) -> list[int]:
        stopped = []
        for exp_id in self.active_experiments():
            self.stop_training(exp_id)
            stopped.append(exp_id)
        return stopped


from rave_gui.backend.training_process import TrainingProcess  # noqa: E402,F401  (design: lives here)
