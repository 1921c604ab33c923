"""Training management: experiment records, metric history, the run queue.

``TrainingManager`` is plain Python over the SQLite database: no Qt object,
usable from a script or a test without a QApplication (importing this module
loads no PyQt6). It keeps records; it never starts, attaches or kills a
process: the ``RunController`` (``runs``) does, and registers each process
here so that ``stop_training`` can ask it to stop. Every status change goes
through ``set_status`` and the state machine in ``run_state``.
``TrainingProcess`` (the QThread that runs ``rave train``) lives in
``training_process``; ``from rave_gui.backend.training import TrainingProcess``
still works and loads it on first use.
"""
from __future__ import annotations

import json
import math
import re
import threading
from pathlib import Path
from typing import Any, Iterable

from rave_gui.backend.names import MAX_NAME
from rave_gui.backend.names import validate_name as _validate_name
from rave_gui.backend.log_parsing import parse_metrics, parse_progress_line  # noqa: F401 (public API)
from rave_gui.backend.rave_cli import BROKEN_CONFIGS, RAVE_CONFIGS, RAVE_MODIFIERS
from rave_gui.backend.run_paths import RunPaths
from rave_gui.backend.training_rules import OVERRIDE_RE  # noqa: F401 (public API)
from rave_gui.backend.training_rules import check_binding as _binding_problem
from rave_gui.backend.run_state import LIVE, RESUMABLE, STATES, TERMINAL, check_transition  # noqa: F401
from rave_gui.core.database import Database
from rave_gui.core.process_group import process_alive
from rave_gui.core.timeutil import now

STATUSES = STATES
DEVICE_RE = re.compile(r"auto|cpu|gpu:\d{1,2}")

DEFAULTS = {"max_steps": 500_000, "batch_size": 8, "learning_rate": 1e-4, "device": "auto",
            "val_every": 10_000, "log_every": 50, "workers": None, "modifiers": [], "overrides": [],
            "base_config": "v2", "stop_on_nan": True}


def validate_name(name: Any) -> str:
    """The run name as RAVE will get it, or ``ValueError`` saying what is wrong
    (the one name rule, ``names.validate_name``, shared with datasets)."""
    return _validate_name(name, "run", MAX_NAME)


def _int_in(config: dict, key: str, low: int, high: int, label: str) -> int:
    value = config.get(key)
    if (isinstance(value, bool) or not isinstance(value, (int, float))
            or (isinstance(value, float) and not math.isfinite(value)) or value != int(value)):
        raise ValueError(f"{label} must be a whole number (got {value!r}).")
    if not low <= value <= high:
        shown = f"{int(value):,}" if abs(value) < 1e15 else f"{value:.3g}"
        raise ValueError(f"{label} must be between {low:,} and {high:,} (got {shown}).")
    return int(value)


def check_binding(binding: str) -> str:
    """One gin binding, stripped, or ``ValueError`` with the rule's sentence
    (``training_rules.check_binding``: the wizard checks with the same rule)."""
    problem = _binding_problem(binding)
    if problem:
        raise ValueError(problem)
    return binding.strip()


class TrainingManager:
    """Experiments in the database, their history, the queue, and the processes
    registered for them (by the ``RunController``)."""

    def __init__(self, db: Database, runs_root: str | Path | None = None,
                 gpus: list[str] | None = None):
        self.db = db
        self.runs_root = Path(runs_root) if runs_root else Path(db.path).parent / "runs"
        self._gpus = gpus
        self._processes: dict[int, Any] = {}
        self._lock = threading.RLock()

    @property
    def gpus(self) -> list[str]:
        """The NVIDIA GPUs of this machine (looked up once)."""
        if self._gpus is None:
            from rave_gui.backend.rave_cli import detect_gpus
            self._gpus = detect_gpus()
        return self._gpus

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
        if isinstance(ds_id, bool) or not isinstance(ds_id, int):
            raise ValueError(f"Dataset {ds_id!r} does not exist; pick one from the Datasets page.")
        dataset = self.db.query_one("SELECT * FROM datasets WHERE id = ?", (ds_id,)) \
            if -2**63 <= ds_id < 2**63 else None
        if dataset is None:
            raise ValueError(f"Dataset {ds_id} does not exist; pick one from the Datasets page.")
        project = cfg.get("project_id")
        if project is not None and (isinstance(project, bool) or not isinstance(project, int)
                                    or not -2**63 <= project < 2**63 or self.db.query_one(
                                        "SELECT id FROM projects WHERE id = ?", (project,)) is None):
            raise ValueError(f"Project {project!r} does not exist.")
        if not isinstance(cfg["base_config"], str) or cfg["base_config"] not in RAVE_CONFIGS:
            raise ValueError(f"Unknown base config {cfg['base_config']!r}; RAVE ships "
                             + ", ".join(RAVE_CONFIGS) + ".")
        if cfg["base_config"] in BROKEN_CONFIGS:
            raise ValueError(BROKEN_CONFIGS[cfg["base_config"]])
        mods = cfg["modifiers"]
        if isinstance(mods, str) or not isinstance(mods, (list, tuple)) or not all(isinstance(m, str) for m in mods):
            raise ValueError("Modifiers must be a list of names.")
        unknown = [m for m in mods if m not in RAVE_MODIFIERS]
        if unknown:
            raise ValueError(f"Unknown modifier(s) {', '.join(map(repr, unknown))}; RAVE ships "
                             + ", ".join(RAVE_MODIFIERS) + ".")
        cfg["modifiers"] = list(dict.fromkeys(mods))
        overrides = cfg["overrides"]
        if isinstance(overrides, str) or not isinstance(overrides, (list, tuple)) \
                or not all(isinstance(o, str) for o in overrides):
            raise ValueError("Overrides must be a list of gin bindings such as PHASE_1_DURATION=200000.")
        cfg["overrides"] = [check_binding(o) for o in overrides]
        cfg["max_steps"] = _int_in(cfg, "max_steps", 1, 100_000_000, "Max steps")
        cfg["batch_size"] = _int_in(cfg, "batch_size", 1, 1024, "Batch size")
        cfg["val_every"] = _int_in(cfg, "val_every", 1, 100_000_000, "Validation interval")
        cfg["log_every"] = _int_in(cfg, "log_every", 1, 1_000_000, "Logging interval")
        if cfg["workers"] is not None:
            cfg["workers"] = _int_in(cfg, "workers", 0, 64, "Workers")
        if not isinstance(cfg["stop_on_nan"], bool):
            raise ValueError("'Stop on NaN' must be true or false.")
        lr = cfg["learning_rate"]
        if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not math.isfinite(lr) or not 0 < lr < 1:
            raise ValueError(f"The learning rate must be a number between 0 and 1 (got {lr!r}).")
        cfg["learning_rate"] = float(lr)
        device = cfg["device"]
        if not isinstance(device, str) or not DEVICE_RE.fullmatch(device):
            raise ValueError(f"Device must be 'auto', 'cpu' or 'gpu:N' (got {device!r}).")
        machine = cfg.get("machine_id")
        if "machine_id" in dataset.keys() and dataset["machine_id"] is not None and dataset["machine_id"] != machine:
            raise ValueError(f"The dataset {dataset['name']} lives on another machine (it was registered by its "
                             "path there): train it on that machine.")
        if machine is not None:  # another machine: its own rules (backend/machines.py)
            from rave_gui.backend.machines import check_machine_device
            cfg["machine_id"] = check_machine_device(self.db, machine, device)
        elif device.startswith("gpu:"):
            index, gpus = int(device[4:]), self.gpus
            if index >= len(gpus):
                found = (f"this computer has {len(gpus)} NVIDIA GPU(s), numbered from 0" if gpus
                         else "no NVIDIA GPU was found on this computer (nvidia-smi lists none)")
                raise ValueError(f"There is no GPU {index}: {found}. Choose 'auto' or 'cpu'.")
        return cfg

    # -- records -------------------------------------------------------------
    def start_training(self, config: dict, status: str = "starting") -> int:
        """Validate ``config`` and create the experiment record: ``starting``
        (the controller launches it now) or ``queued`` (the end of the queue)."""
        if status not in ("starting", "queued"):
            raise ValueError("A new run is either starting or queued.")
        cfg = self.validate_config(config)
        with self.db.transaction() as conn:
            position = None
            if status == "queued":
                position = conn.execute("SELECT coalesce(max(queue_pos), 0) + 1 FROM experiments").fetchone()[0]
            cur = conn.execute(
                "INSERT INTO experiments (project_id, name, dataset_id, config, status, started_at, metrics,"
                " queue_pos) VALUES (?, ?, ?, ?, ?, ?, '{}', ?)",
                (cfg.get("project_id"), cfg["name"], cfg["dataset_id"], json.dumps(cfg), status,
                 now() if status == "starting" else None, position))
            exp_id = int(cur.lastrowid)
            out_dir = self.runs_root / str(exp_id)
            suffix = 1
            while out_dir.exists():  # SQLite reuses the ids of deleted experiments
                out_dir = self.runs_root / f"{exp_id}-{suffix}"
                suffix += 1
            conn.execute("UPDATE experiments SET out_dir = ?, log_path = ? WHERE id = ?",
                         (str(out_dir), str(out_dir / "train.log"), exp_id))
            self._add_event(conn, exp_id, "queued" if status == "queued" else "started", 0)
        return exp_id

    def enqueue_training(self, config: dict) -> int:
        """Validate ``config`` and record it at the end of the queue."""
        return self.start_training(config, status="queued")

    def get_experiment(self, experiment_id: int) -> dict | None:
        row = self.db.query_one("SELECT * FROM experiments WHERE id = ?", (experiment_id,))
        return self._decode(row) if row else None

    def list_experiments(self, project_id: int | None = None) -> list[dict]:
        order = " ORDER BY queue_pos IS NULL, queue_pos, started_at DESC, id DESC"
        if project_id is None:
            rows = self.db.query("SELECT * FROM experiments" + order)
        else:
            rows = self.db.query("SELECT * FROM experiments WHERE project_id = ?" + order, (project_id,))
        return [self._decode(r) for r in rows]

    def delete_experiment(self, experiment_id: int) -> None:
        exp = self.get_experiment(experiment_id)
        if self.is_active(experiment_id) or (exp is not None and exp["status"] in LIVE):
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

    def paths(self, experiment: int | dict) -> RunPaths:
        exp = self.get_experiment(experiment) if isinstance(experiment, int) else experiment
        if exp is None:
            raise ValueError(f"There is no experiment {experiment}.")
        return RunPaths.of(exp)

    # -- status: the one writer ---------------------------------------------------
    def set_status(self, experiment_id: int, status: str, error: str | None = None,
                   event: str | None = None) -> str:
        """Apply one transition of the state machine (``run_state``) and record
        it as an event with the step. Returns the previous status; raises
        ``TransitionError`` (a ``ValueError``) for a transition that is not allowed."""
        with self.db.transaction() as conn:
            row = conn.execute("SELECT status, current_step FROM experiments WHERE id = ?",
                               (experiment_id,)).fetchone()
            if row is None:
                raise ValueError(f"There is no experiment {experiment_id}.")
            old = row["status"]
            check_transition(old, status)
            if status == "starting":
                conn.execute("UPDATE experiments SET status = 'starting', completed_at = NULL, error = NULL,"
                             " queue_pos = NULL, started_at = coalesce(started_at, ?) WHERE id = ?",
                             (now(), experiment_id))
            else:
                done = now() if status in TERMINAL else None
                conn.execute("UPDATE experiments SET status = ?, completed_at = ?, error = ?, queue_pos = NULL"
                             " WHERE id = ?", (status, done, error, experiment_id))
            self._add_event(conn, experiment_id, event or status, row["current_step"], error)
        return old

    def update_experiment_status(self, experiment_id: int, status: str, error: str | None = None) -> None:
        """The design card's name for ``set_status``."""
        self.set_status(experiment_id, status, error)

    def set_process_info(self, experiment_id: int, pid: int | None, started_at: float | None) -> None:
        self.db.execute("UPDATE experiments SET pid = ?, pid_started_at = ? WHERE id = ?",
                        (pid, started_at, experiment_id))

    def set_run_dir(self, experiment_id: int, run_dir: str | Path) -> None:
        self.db.execute("UPDATE experiments SET run_dir = ? WHERE id = ?", (str(run_dir), experiment_id))

    def set_launch_token(self, experiment_id: int, token: str | None) -> None:
        self.db.execute("UPDATE experiments SET launch_token = ? WHERE id = ?", (token, experiment_id))

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

    # -- the queue -----------------------------------------------------------------
    def queued(self) -> list[int]:
        """Queued runs, first to start first."""
        return [r[0] for r in self.db.query(
            "SELECT id FROM experiments WHERE status = 'queued' ORDER BY queue_pos, id")]

    def move_queued(self, experiment_id: int, delta: int) -> None:
        """Move a queued run ``delta`` places (negative: towards the front)."""
        with self.db.transaction() as conn:
            order = [r[0] for r in conn.execute(
                "SELECT id FROM experiments WHERE status = 'queued' ORDER BY queue_pos, id")]
            if experiment_id not in order:
                raise ValueError("Only a queued run can be moved in the queue.")
            index = order.index(experiment_id)
            order.insert(max(0, min(len(order) - 1, index + int(delta))), order.pop(index))
            conn.executemany("UPDATE experiments SET queue_pos = ? WHERE id = ?",
                             [(pos, exp) for pos, exp in enumerate(order, start=1)])

    # -- metrics ---------------------------------------------------------------
    def update_training_metrics(self, experiment_id: int, metrics: dict | Iterable[dict]) -> int:
        """Store metrics: the latest values as JSON on the experiment, every
        point in the history. ``metrics`` is one dict with a ``step`` or a list
        of them. A point sent again for the same key and step replaces the
        stored value (the event files are the truth: a resumed run re-logs the
        steps after its checkpoint); one sent again unchanged is not counted.
        Returns the number of points added or changed."""
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
                if not 0 <= step < 2**62:
                    continue
                step_now = max(step_now, step)
                for key, value in item.items():
                    if key == "step" or isinstance(value, bool) or not isinstance(value, (int, float)):
                        continue
                    try:
                        value = float(value)
                    except OverflowError:
                        continue
                    if not math.isfinite(value):
                        continue
                    points.append((experiment_id, key, step, value))
                    if step >= latest.get("_steps", {}).get(key, -1):
                        latest[key] = value
                        latest.setdefault("_steps", {})[key] = step
            # rowcount counts the rows this statement changed, not those the history
            # cache's triggers delete (total_changes counts both)
            added = conn.executemany("INSERT INTO metric_points (experiment_id, key, step, value) VALUES (?, ?, ?, ?)"
                                     " ON CONFLICT (experiment_id, key, step) DO UPDATE SET value = excluded.value"
                                     " WHERE value != excluded.value", points).rowcount
            latest["step"] = step_now
            conn.execute("UPDATE experiments SET metrics = ?, current_step = ? WHERE id = ?",
                         (json.dumps(latest), step_now, experiment_id))
            if added:  # a live run's history stays packed: opening it later reads no rows
                from rave_gui.backend.history_cache import pack_tails
                pack_tails(self.db, experiment_id)
        return max(0, added)

    def set_current_step(self, experiment_id: int, step: int) -> None:
        self.db.execute("UPDATE experiments SET current_step = max(coalesce(current_step, 0), ?) WHERE id = ?",
                        (int(step), experiment_id))

    def get_metric_history(self, experiment_id: int, keys: Iterable[str] | None = None) -> dict[str, Any]:
        """``{key: [(step, value), ...]}`` of a run, by key then step (``keys``: only
        those). Each list is a ``HistorySeries``: equal to that list of tuples, and
        backed by numpy arrays (``.steps``, ``.values``) read from a columnar cache
        of the history table that triggers keep exact (``history_cache``)."""
        from rave_gui.backend.history_cache import read_history
        return read_history(self.db, experiment_id, keys)

    def last_step(self, experiment_id: int) -> int:
        row = self.db.query_one("SELECT max(step) FROM metric_points WHERE experiment_id = ?", (experiment_id,))
        return int(row[0]) if row and row[0] is not None else 0

    # -- resume ------------------------------------------------------------------
    def resume_training(self, experiment_id: int, max_steps: int | None = None) -> dict:
        """Check that a stopped, failed, interrupted or completed run can go on
        (optionally up to a higher ``max_steps``) and mark it ``starting``; the
        controller then starts a ``TrainingProcess(..., resume=True)``, which
        passes ``--ckpt``. Nothing changes when a check fails. The history after
        the checkpoint it resumes from is dropped: that branch is abandoned and
        the resumed run logs those steps again."""
        exp = self.get_experiment(experiment_id)
        if exp is None:
            raise ValueError(f"There is no experiment {experiment_id}.")
        if self.is_active(experiment_id) or exp["status"] in LIVE:
            raise ValueError("This run is still running." if exp["status"] != "stopping" else
                             "This run is still stopping (saving its checkpoint); resume it in a few seconds.")
        if process_alive(exp.get("pid"), exp.get("pid_started_at")):
            raise ValueError("This run is still stopping (saving its checkpoint); resume it in a few seconds.")
        if exp["status"] not in RESUMABLE:
            raise ValueError(f"A {exp['status']} run cannot be resumed.")
        cfg = dict(exp["config"])
        if max_steps is not None:
            cfg["max_steps"] = max_steps
            cfg["max_steps"] = _int_in(cfg, "max_steps", 1, 100_000_000, "Max steps")
        checkpoint = RunPaths.of(exp).resume_checkpoint()
        if checkpoint is None:
            raise ValueError("This run has no checkpoint to resume from (RAVE writes one at each "
                             "validation, and the app when it stops a run). Start it again as a new run.")
        step = int(exp.get("current_step") or 0)
        from_step = checkpoint.get("step")
        from_step = step if from_step is None else min(int(from_step), step)
        if cfg["max_steps"] <= from_step:
            raise ValueError(f"The run already reached step {from_step:,}; resume it with max steps above "
                             f"{cfg['max_steps']:,}.")
        with self.db.transaction() as conn:
            self.set_status(experiment_id, "starting", event="resumed")
            conn.execute("UPDATE experiments SET config = ?, current_step = ? WHERE id = ?",
                         (json.dumps(cfg), from_step, experiment_id))
            conn.execute("DELETE FROM metric_points WHERE experiment_id = ? AND step > ?",
                         (experiment_id, from_step))
        return self.get_experiment(experiment_id)

    def rewind_history(self, experiment_id: int, from_step: int) -> None:
        """A live run continues from its checkpoint at ``from_step`` in a new process (a
        Slurm job after its time limit): the history after it is dropped, as for a resume."""
        with self.db.transaction() as conn:
            conn.execute("UPDATE experiments SET current_step = ? WHERE id = ?", (int(from_step), experiment_id))
            conn.execute("DELETE FROM metric_points WHERE experiment_id = ? AND step > ?",
                         (experiment_id, int(from_step)))

    # -- after a restart -----------------------------------------------------------
    def recover_runs(self) -> tuple[list[tuple[int, int]], list[int]]:
        """After a start-up: every run marked starting, running or stopping that
        this app holds no process for. Returns ``(alive, interrupted)``: runs
        whose training process still lives (same pid *and* start time), as
        ``(experiment_id, pid)`` to re-attach to; and those ended now because
        their process is gone (their last points read from the event files
        first). Queued runs stay queued."""
        alive, interrupted = [], []
        for row in self.db.query("SELECT * FROM experiments WHERE status IN ('starting', 'running', 'stopping')"):
            exp = self._decode(row)
            if self.is_active(exp["id"]):
                continue
            if exp["config"].get("machine_id") is not None:
                # on another machine: its thread checks pid + start time on the host, off the UI thread
                from rave_gui.backend.machines import remote_pid
                host_pid = remote_pid(self.db, exp["id"])
                if host_pid is not None:
                    alive.append((exp["id"], host_pid))
                    continue
            pid = exp["pid"]
            if process_alive(pid, exp["pid_started_at"]):
                alive.append((exp["id"], pid))
                continue
            self._read_final_points(exp)
            end = self._fit_end_while_away(exp)
            if end is not None:
                self.set_current_step(exp["id"], end)
                self.set_status(exp["id"], "completed")
            elif exp["status"] == "stopping" and self._stop_checkpoint_saved(exp):
                self.set_status(exp["id"], "stopped")
            else:
                has_ckpt = RunPaths.of(exp).resume_checkpoint() is not None
                self.set_status(exp["id"], "interrupted",
                                "The app closed while this run was training and its process is gone. "
                                + ("Resume it to continue from its last checkpoint." if has_ckpt else
                                   "It saved no checkpoint, so it cannot be resumed: start it again."))
                interrupted.append(exp["id"])
            self.set_process_info(exp["id"], None, None)
        return alive, interrupted

    @staticmethod
    def _log_tail(exp: dict, size: int = 65536) -> list[str]:
        try:
            with open(exp["log_path"], "rb") as fh:
                fh.seek(0, 2)
                fh.seek(max(0, fh.tell() - size))
                tail = fh.read().decode("utf-8", "replace")
        except (OSError, TypeError, ValueError):
            return []
        return tail.replace("\r", "\n").split("\n")

    def _fit_end_while_away(self, exp: dict) -> int | None:
        """Did the run reach its end while no app followed it? Its max steps then."""
        from rave_gui.backend.log_parsing import parse_fit_end
        for line in self._log_tail(exp):
            end = parse_fit_end(line)
            if end is not None:
                return int(end)
        return None

    def _stop_checkpoint_saved(self, exp: dict) -> bool:
        return any(c["file"].startswith("stopped-step=") and (c.get("step") or -1) >= (exp["current_step"] or 0)
                   for c in RunPaths.of(exp).checkpoints())

    def _read_final_points(self, exp: dict) -> None:
        """Points a run logged after the app stopped following it."""
        from rave_gui.backend.events import RunEventsFollower
        run_dir = RunPaths.of(exp).run_dir
        if run_dir is not None:
            try:
                self.update_training_metrics(exp["id"], RunEventsFollower(run_dir).poll(final=True))
            except OSError:
                pass

    # -- processes (registered by the RunController) ------------------------------------
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
        """Ask the run's registered process to stop (it saves a stop checkpoint)
        and mark the run ``stopping``; a queued run is taken off the queue
        (``stopped``, it never starts). The process stays registered until it
        has ended. Returns False when no process was registered for it."""
        exp = self.get_experiment(experiment_id)
        if exp is None:
            raise ValueError(f"There is no experiment {experiment_id}.")
        process = self.get_process(experiment_id)
        if exp["status"] == "queued":
            self.set_status(experiment_id, "stopped", event="removed from queue")
        elif exp["status"] in ("starting", "running"):
            self.set_status(experiment_id, "stopping" if process is not None else "stopped")
        if process is not None:
            process.stop()
        return process is not None

    def stop_all(self) -> list[int]:
        stopped = []
        for exp_id in self.active_experiments():
            self.stop_training(exp_id)
            stopped.append(exp_id)
        return stopped


def __getattr__(name: str):
    """``TrainingProcess`` lives here in the design card; loading it (and PyQt6)
    waits until someone asks for it."""
    if name == "TrainingProcess":
        from rave_gui.backend.training_process import TrainingProcess
        return TrainingProcess
    raise AttributeError(name)
